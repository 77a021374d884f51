"""The de-risk playbook (DESIGN.md §3): reduce-only intents, deterministic in content and order.

- Size: bring gross to the regime tolerance minus the buffer, or a breached bucket to its max;
  on a daily-loss row, gross to `loss_target_gross_pct`. Each intent is clipped to a share of
  the instrument's average daily volume per cycle (`liquidity`), when configured.
- Symbols the cycle may not act on (stale market data) are skipped.
- Order: positions by descending |notional|, ties by symbol then bucket.
- SOFT: LIMIT at truth tick ∓ offset. HARD: at bid (sells) / ask (buys), in chunks of
  `hard_chunk_fraction` of the position as it stood when HARD began (lot-rounded up, ≥ 1 lot),
  so repeated steps with certain fills reach any target within ⌈1/chunk⌉ steps.
- The risk cycle's own open de-risk orders already cover part of the excess: no duplicates are
  stacked. A desk's reduce-only order is not coverage (it may rest far from the market all day).
- Reduce-only against everything working: a de-risk intent plus every open order on the same
  side of that position (the desk's included) never takes the position past zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from domain.enums import (
    Bucket,
    DecisionReason,
    IntentKind,
    OrderType,
    PriceRule,
    RiskMode,
    Side,
)
from domain.exposure import Exposure
from domain.liquidity import clip_to_adv
from domain.models import Intent, OpenOrder, Position, PositionKey, Quote
from domain.policy import Decision
from domain.rules import RigConfig

GROSS_REASONS = (
    DecisionReason.HARD_CAP_BREACH,
    DecisionReason.CLOSE_OVER_TOLERANCE,
    DecisionReason.OVER_REGIME_TOLERANCE,
)
LOSS_REASONS = (DecisionReason.DAILY_LOSS_HARD, DecisionReason.DAILY_LOSS_SOFT)


def derisk_intent_id(account: str, cycle: int, mode: RiskMode, symbol: str, bucket: Bucket) -> str:
    step = "H" if mode is RiskMode.HARD_DERISK else "S"
    return f"{account}-c{cycle:06d}-{step}-{symbol}-{bucket.value}"


def round_price(price: float) -> float:
    return round(price + 0.0, 2)


def ceil_lots(quantity: float, lot: int) -> int:
    return max(lot, math.ceil(quantity / lot - 1e-9) * lot)


def reducing_open_quantity(position_qty: int, orders: Sequence[OpenOrder], *, own_only: bool) -> int:
    """Open quantity working against this position's sign: the risk cycle's own de-risk orders
    (`own_only`, what counts as coverage), or every order on that side (what a new reduce-only
    intent must leave room for)."""
    reducing_side = Side.SELL if position_qty > 0 else Side.BUY
    return sum(o.remaining for o in orders if o.side is reducing_side and (o.kind.is_derisk or not own_only))


def derisk_price(side: Side, quote: Quote, mode: RiskMode, offset: float) -> tuple[float, PriceRule]:
    if mode is RiskMode.HARD_DERISK:
        return (quote.bid, PriceRule.AT_BID) if side is Side.SELL else (quote.ask, PriceRule.AT_ASK)
    price = quote.truth_tick - offset if side is Side.SELL else quote.truth_tick + offset
    return round_price(price), PriceRule.NEAR_TRUTH_TICK


def plan_derisk(
    *,
    account: str,
    cycle: int,
    decision: Decision,
    exposure: Exposure,
    positions: Sequence[Position],
    open_orders: Sequence[OpenOrder],
    quotes: Mapping[str, Quote],
    config: RigConfig,
    hard_base: Mapping[PositionKey, int] | None = None,
    blocked: Mapping[str, str] | None = None,
) -> list[Intent]:
    """`blocked`: symbols the cycle may not act on now (stale market data), with the reason."""
    mode = decision.mode
    if mode not in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK):
        return []
    rules = config.rules
    instruments = config.universe.by_symbol
    equity = exposure.equity
    marks = {symbol: quote.truth_tick for symbol, quote in quotes.items()}

    gross_excess = 0.0
    if decision.reason in GROSS_REASONS:
        target = (decision.tolerance_pct - rules.derisk.buffer_pct) / 100.0 * equity
        gross_excess = exposure.gross - target
    elif decision.reason in LOSS_REASONS:
        gross_excess = exposure.gross - rules.derisk.loss_target_gross_pct / 100.0 * equity
    bucket_excess = {b: exposure.buckets[b].current - exposure.buckets[b].max for b in Bucket}

    orders_by_key: dict[PositionKey, list[OpenOrder]] = {}
    for order in open_orders:
        orders_by_key.setdefault(order.key, []).append(order)

    qty_by_key: dict[PositionKey, int] = {}
    for pos in positions:
        qty_by_key[pos.key] = qty_by_key.get(pos.key, 0) + pos.quantity
    # What the cycle's own open de-risk orders will already take off, and what all working
    # orders on the reducing side leave to take.
    covered: dict[PositionKey, int] = {}
    room: dict[PositionKey, int] = {}
    for key, qty in qty_by_key.items():
        if qty == 0:
            continue
        orders = orders_by_key.get(key, [])
        covered[key] = min(abs(qty), reducing_open_quantity(qty, orders, own_only=True))
        room[key] = max(0, abs(qty) - reducing_open_quantity(qty, orders, own_only=False))
        amount = covered[key] * marks[key[0]]
        gross_excess -= amount
        bucket_excess[key[1]] -= amount

    ranked = sorted(
        ((key, qty) for key, qty in qty_by_key.items() if qty != 0),
        key=lambda item: (-abs(item[1] * marks[item[0][0]]), item[0][0], item[0][1].value),
    )
    intents: list[Intent] = []
    for (symbol, bucket), qty in ranked:
        needed = max(gross_excess, bucket_excess[bucket])
        if needed <= 1e-9 or symbol in (blocked or {}):
            continue
        lot = instruments[symbol].lot_size
        mark = marks[symbol]
        available = room[(symbol, bucket)] // lot * lot
        take = min(ceil_lots(needed / mark, lot), available)
        if mode is RiskMode.HARD_DERISK:
            base = (hard_base or {}).get((symbol, bucket)) or abs(qty)
            take = min(take, ceil_lots(rules.derisk.hard_chunk_fraction * base, lot))
        take = clip_to_adv(
            take,
            instruments[symbol].adv,
            rules.liquidity.adv_share_per_cycle,
            lot,
            mode=mode,
            minutes_to_close=decision.inputs.minutes_to_close,
            residual_minutes=rules.liquidity.residual_minutes,
        )
        if take <= 0:
            continue
        side = Side.SELL if qty > 0 else Side.BUY
        price, rule = derisk_price(side, quotes[symbol], mode, rules.derisk.truth_tick_offset)
        intents.append(
            Intent(
                intent_id=derisk_intent_id(account, cycle, mode, symbol, bucket),
                account=account,
                symbol=symbol,
                bucket=bucket,
                side=side,
                quantity=take,
                order_type=OrderType.LIMIT,
                limit_price=price,
                kind=IntentKind.HARD_DERISK if mode is RiskMode.HARD_DERISK else IntentKind.SOFT_DERISK,
                reduce_only=True,
                price_rule=rule,
                issued_in_mode=mode,
            )
        )
        reduced = take * mark
        gross_excess -= reduced
        bucket_excess[bucket] -= reduced
    return intents
