"""Repricing resting de-risk orders when the market moves away (DESIGN.md §3). Pure.

Each cycle, for the rig's own working de-risk orders, the price each would get if it were
issued now — HARD: the bid (a sell) or the ask (a buy) of a fresh L1; SOFT: the fresh truth
tick (the mark, clamped into a fresh bid/ask) ∓ the SOFT offset — is compared with its limit. When the market has moved *away* from the
order (below a sell's limit, above a buy's) by more than `reprice_ticks_hard` /
`reprice_ticks_soft` ticks, the order is to be cancel/replaced at that price. Toward the order
it is left alone (it is about to fill). In HARD, a SOFT order still working is repriced to the
touch whatever the distance (the escalation, SOFT → HARD). In SOFT, HARD orders are left alone.
A symbol whose data is stale for the mode is skipped with the gate's reason (STALE_DATA).

Ticks are Regulation NMS Rule 612's: $0.01 at $1.00 and up, $0.0001 below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pydantic import Field

from domain.base import Frozen
from domain.enums import IntentKind, PriceRule, RiskMode, Side
from domain.marketdata import MarketDataRule, MarketView, hard_derisk_gate, soft_derisk_gate


class RestingDerisk(Frozen):
    """One of the rig's own working de-risk orders, as the planner needs it."""

    intent_id: str
    symbol: str
    side: Side
    kind: IntentKind
    limit_price: float


class Reprice(Frozen):
    """Cancel/replace `intent_id` at `price` (the replacement is of `kind`, priced by `price_rule`)."""

    intent_id: str
    symbol: str
    side: Side
    old_price: float
    price: float
    kind: IntentKind
    price_rule: PriceRule
    ticks_away: float
    why: str


class RepricePlan(Frozen):
    reprices: list[Reprice] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)  # symbol → why it was not looked at (stale data)


def tick_size(price: float) -> float:
    return 0.01 if price >= 1.0 else 0.0001


def on_tick(price: float, side: Side) -> float:
    """The price rounded onto the tick grid, never more aggressive than asked (a sell rounds up,
    a buy down) — a SOFT price stays at or beyond its offset."""
    tick = tick_size(price)
    steps = price / tick
    steps = math.ceil(steps - 1e-6) if side is Side.SELL else math.floor(steps + 1e-6)
    return round(steps * tick, 4)


def plan_reprices(
    orders: Iterable[RestingDerisk],
    views: Mapping[str, MarketView],
    mode: RiskMode,
    rule: MarketDataRule,
    soft_offset: float,
) -> RepricePlan:
    """Which of `orders` to reprice in `mode`, and to what (see the module docstring)."""
    if mode not in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK):
        return RepricePlan()
    hard = mode is RiskMode.HARD_DERISK
    gate = hard_derisk_gate if hard else soft_derisk_gate
    threshold = rule.reprice_ticks_hard if hard else rule.reprice_ticks_soft
    reprices: list[Reprice] = []
    skipped: dict[str, str] = {}
    for order in orders:
        if not order.kind.is_derisk or (not hard and order.kind is IntentKind.HARD_DERISK):
            continue
        view = views.get(order.symbol)
        verdict = gate(view, rule) if view is not None else None
        if verdict is None or not verdict.may_act or view is None:
            skipped[order.symbol] = verdict.detail if verdict else f"{order.symbol}: no market data"
            continue
        target = _target(order.side, view, hard, soft_offset)
        if target is None:
            skipped[order.symbol] = f"{order.symbol}: no price to reprice to"
            continue
        price, price_rule = target
        away = (order.limit_price - price) if order.side is Side.SELL else (price - order.limit_price)
        ticks = away / tick_size(price)
        escalate = hard and order.kind is IntentKind.SOFT_DERISK
        if not escalate and ticks <= threshold + 1e-6:
            continue
        why = "SOFT → HARD at the touch" if escalate else f"market {ticks:.0f} ticks away (more than {threshold})"
        reprices.append(
            Reprice(
                intent_id=order.intent_id,
                symbol=order.symbol,
                side=order.side,
                old_price=order.limit_price,
                price=price,
                kind=IntentKind.HARD_DERISK if hard else IntentKind.SOFT_DERISK,
                price_rule=price_rule,
                ticks_away=round(ticks, 4),
                why=why,
            )
        )
    return RepricePlan(reprices=reprices, skipped=skipped)


def _target(side: Side, view: MarketView, hard: bool, soft_offset: float) -> tuple[float, PriceRule] | None:
    if hard:
        if view.l1 is None:
            return None
        return (view.l1.bid, PriceRule.AT_BID) if side is Side.SELL else (view.l1.ask, PriceRule.AT_ASK)
    # The SOFT gate passed: the mark is the fresh truth tick (clamped into a fresh bid/ask).
    raw = view.mark - soft_offset if side is Side.SELL else view.mark + soft_offset
    return on_tick(raw, side), PriceRule.NEAR_TRUTH_TICK
