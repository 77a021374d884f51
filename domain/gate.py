"""The account's pre-trade gate: what one request is judged against, in one place. Pure.

A desk order passes, in order: the trading state (HALTED refuses every desk order, REDUCING all
but reduce-only ones), its own shape, the pre-trade controls (restricted list, max quantity,
price collar, max position, duplicates, order rate — domain/controls.py), and the account with
the order added (domain/pretrade.py). The risk workflow calls these from update handlers, one at
a time (handlers without awaits never interleave), so no two orders can jointly breach a limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.controls import (
    ControlsState,
    OrderTicket,
    TopOfBook,
    check_controls,
    check_max_order_quantity,
    check_max_position,
    check_price_collar,
    check_replacement,
    check_restricted,
    record_order,
)
from domain.enums import Regime, RejectReason, RiskMode, Side, TradingState
from domain.exposure import Exposure, compute_exposure
from domain.ledger import Ledger
from domain.models import Intent, OpenOrder, Quote
from domain.pretrade import Verdict, judge, parse_intent, refuse
from domain.rules import RigConfig


@dataclass
class GateContext:
    account: str
    ledger: Ledger
    mode: RiskMode
    regime: Regime
    quote_of: Callable[[str], Quote]
    config: RigConfig
    trading_state: TradingState = TradingState.ACTIVE
    controls: ControlsState = ControlsState()  # updated when a desk order is approved
    now_seconds: float = 0.0  # workflow time, for the rolling windows of the controls
    # The price collar's reference per symbol: with market data the fresh mark, None when nothing
    # is fresh (the collar refuses). Unset: the quote's truth tick (the simulated feed's mark).
    collar_reference_of: Callable[[str], float | None] | None = None
    # Issue 25's inputs (quote sanity, price band, MARKET collar, ADV share, self-cross) and the
    # replace judged as a new order. False: the gate as before (a run recorded before the wiring).
    wired: bool = False
    # The symbol's L1 now, its age at the check (domain/controls `top_of_book`). Unset: the quote.
    top_of: Callable[[str], TopOfBook | None] | None = None
    # The firm's limits as this account's allocation of them (workflows/account/firm.py): an intent,
    # and the order it replaces, to a refusal or None. Unset: the account belongs to no firm.
    firm_check: Callable[[Intent, str | None], tuple[RejectReason, str] | None] | None = None

    def firm_refusal(self, intent: Intent, replacing: str | None = None) -> tuple[RejectReason, str] | None:
        return self.firm_check(intent, replacing) if self.firm_check is not None else None

    def top(self, symbol: str) -> TopOfBook | None:
        if self.top_of is not None:
            return self.top_of(symbol)
        quote = self.quote_of(symbol)
        return TopOfBook(bid=quote.bid, ask=quote.ask, age_seconds=0.0)

    def adv(self, symbol: str) -> int:
        instrument = self.config.universe.by_symbol.get(symbol)
        return instrument.adv if instrument is not None else 0

    def resting(self, symbol: str, excluding: str | None = None) -> list[OpenOrder]:
        """The account's open orders in `symbol`, one by one with their limits (self-cross): read
        only while that control is on."""
        if not self.config.rules.controls.self_cross.enabled:
            return []
        return [
            o.footprint
            for o in self.ledger.open_orders()
            if o.footprint.symbol == symbol and not o.synthetic and o.intent_id != excluding and o.replacement is None
        ]

    def collar_reference(self, symbol: str) -> float | None:
        if self.collar_reference_of is not None:
            return self.collar_reference_of(symbol)
        return self.quote_of(symbol).truth_tick

    def exposure(self) -> Exposure:
        positions, orders = self.ledger.positions(), self.ledger.footprints()
        symbols = dict.fromkeys([p.symbol for p in positions] + [o.symbol for o in orders])
        marks = {s: self.quote_of(s).truth_tick for s in symbols}
        return compute_exposure(self.ledger.s.equity, positions, orders, marks, self.config)

    def symbol_position(self, symbol: str) -> int:
        return sum(p.quantity for p in self.ledger.positions() if p.symbol == symbol)

    def open_on_side(self, symbol: str, side: Side, excluding: str | None = None) -> int:
        return sum(o.remaining for o in self.ledger.footprints(excluding=excluding) if o.symbol == symbol and o.side is side)


def _trading_state_refusal(intent: Intent | None, state: TradingState) -> Verdict | None:
    if state is TradingState.HALTED:
        return refuse(RejectReason.HALTED, "the account is HALTED (kill switch): no desk orders until it is resumed", intent)
    if state is TradingState.REDUCING and (intent is None or not intent.reduce_only):
        return refuse(RejectReason.REDUCING_ONLY, "the account is REDUCING: only reduce-only desk orders are accepted", intent)
    return None


def _session_refusal(intent: Intent, ctx: GateContext) -> Verdict | None:
    """Between sessions (a calendar's night, weekend or holiday) desk orders wait for the open,
    unless the rules take them (`session.orders_outside_session`; a clock-time session does)."""
    if ctx.regime is Regime.OUTSIDE_SESSION and not ctx.config.rules.session.accepts_orders_outside:
        return refuse(RejectReason.OUTSIDE_SESSION, "outside the trading session: desk orders are accepted from the open", intent)
    return None


def gate_desk_intent(raw: Mapping[str, Any], ctx: GateContext) -> Verdict:
    """A desk's new order: its shape, then the account with the order added."""
    parsed = parse_intent(raw, ctx.config)
    if isinstance(parsed, Verdict):
        return parsed
    if refusal := _trading_state_refusal(parsed, ctx.trading_state) or _session_refusal(parsed, ctx):
        return refusal
    if parsed.account != ctx.account:
        return refuse(RejectReason.BAD_ACCOUNT, f"account {parsed.account[:80]!r} is not {ctx.account!r}", parsed)
    intent = parsed.model_copy(update={"issued_in_mode": ctx.mode})
    ticket = OrderTicket(symbol=intent.symbol, side=intent.side, quantity=intent.quantity, limit_price=intent.limit_price, at=ctx.now_seconds)
    rule = ctx.config.rules.controls
    quote = ctx.quote_of(intent.symbol)
    control, pruned = check_controls(
        ticket,
        intended_duplicate=intent.intended_duplicate,
        truth_tick=ctx.collar_reference(intent.symbol),
        position=ctx.symbol_position(intent.symbol),
        open_same_side=ctx.open_on_side(intent.symbol, intent.side),
        mark=quote.truth_tick,
        equity=ctx.ledger.s.equity,
        state=ctx.controls,
        rule=rule,
        top=ctx.top(intent.symbol) if ctx.wired else None,
        l1_max_age_seconds=ctx.config.rules.market_data.l1_max_age_seconds,
        adv=ctx.adv(intent.symbol) if ctx.wired else 0,
        resting=ctx.resting(intent.symbol) if ctx.wired else (),
    )
    ctx.controls = pruned
    control = control or ctx.firm_refusal(intent)
    if control is not None:
        return refuse(control[0], control[1], intent)
    verdict = _judge(intent, ctx, replacing_id=None)
    if verdict.approved:
        ctx.controls = record_order(pruned, ticket, rule)
    return verdict


def gate_replacement(original_id: str, raw: Mapping[str, Any], ctx: GateContext, expected_id: str) -> Verdict:
    """A cancel/replace: the replacement in full, instead of the original (FIX semantics)."""
    entry = ctx.ledger.s.open_orders.get(original_id)
    if entry is None or entry.intent is None or entry.synthetic:
        return refuse(RejectReason.MALFORMED_INTENT, f"{original_id} is not an open order of this account")
    if entry.replacement is not None:
        return refuse(RejectReason.MALFORMED_INTENT, f"{original_id} is being replaced by {entry.replacement} already")
    parsed = parse_intent(raw, ctx.config, rig_fields=True)
    if isinstance(parsed, Verdict):
        return parsed
    original = entry.intent
    same = (parsed.account, parsed.symbol, parsed.side, parsed.bucket, parsed.replaces, parsed.intent_id)
    if same != (original.account, original.symbol, original.side, original.bucket, original_id, expected_id):
        return refuse(
            RejectReason.MALFORMED_INTENT, f"a replacement keeps account, symbol, side and bucket, replaces {original_id} and is {expected_id}"
        )
    if parsed.kind.is_derisk and not entry.own:
        return refuse(RejectReason.MALFORMED_INTENT, "only the risk cycle's own orders are replaced as de-risk intents")
    if not entry.own and (refusal := _trading_state_refusal(parsed, ctx.trading_state) or _session_refusal(parsed, ctx)):
        return refusal
    if not entry.own and ctx.wired:
        return _judge_desk_replacement(parsed, ctx, original_id)
    if not entry.own and (control := _stateless_controls(parsed, ctx, original_id) or ctx.firm_refusal(parsed, original_id)):
        return refuse(control[0], control[1], parsed)
    # The replacement is a new order: issued in the mode in force now (an escalation's, HARD).
    return _judge(parsed.model_copy(update={"issued_in_mode": ctx.mode}), ctx, replacing_id=original_id)


def _judge_desk_replacement(intent: Intent, ctx: GateContext, original_id: str) -> Verdict:
    """A desk replace is a new order for the controls (RTS 6: every order checked; the duplicate,
    order-rate and message-rate checks included), judged without the order it replaces; recorded
    as sent once approved."""
    rule = ctx.config.rules.controls
    ticket = OrderTicket(symbol=intent.symbol, side=intent.side, quantity=intent.quantity, limit_price=intent.limit_price, at=ctx.now_seconds)
    control, pruned = check_replacement(
        ticket,
        truth_tick=ctx.collar_reference(intent.symbol),
        position=ctx.symbol_position(intent.symbol),
        open_same_side=ctx.open_on_side(intent.symbol, intent.side, excluding=original_id),
        mark=ctx.quote_of(intent.symbol).truth_tick,
        equity=ctx.ledger.s.equity,
        state=ctx.controls,
        rule=rule,
        top=ctx.top(intent.symbol),
        l1_max_age_seconds=ctx.config.rules.market_data.l1_max_age_seconds,
        adv=ctx.adv(intent.symbol),
        resting=ctx.resting(intent.symbol, excluding=original_id),
    )
    ctx.controls = pruned
    control = control or ctx.firm_refusal(intent, original_id)
    if control is not None:
        return refuse(control[0], control[1], intent)
    verdict = _judge(intent.model_copy(update={"issued_in_mode": ctx.mode}), ctx, replacing_id=original_id)
    if verdict.approved:
        ctx.controls = record_order(pruned, ticket, rule)
    return verdict


def _stateless_controls(intent: Intent, ctx: GateContext, replacing_id: str) -> tuple[RejectReason, str] | None:
    """A replacement passes the same controls as a new order, but for the look-back ones
    (duplicates and rate), which count new orders."""
    rule = ctx.config.rules.controls
    quote = ctx.quote_of(intent.symbol)
    return (
        check_restricted(intent.symbol, rule.restricted)
        or check_max_order_quantity(intent.symbol, intent.quantity, rule.max_order_quantity)
        or check_price_collar(intent.limit_price, ctx.collar_reference(intent.symbol), rule.price_collar)
        or check_max_position(
            intent.symbol,
            intent.side,
            intent.quantity,
            position=ctx.symbol_position(intent.symbol),
            open_same_side=ctx.open_on_side(intent.symbol, intent.side, excluding=replacing_id),
            mark=quote.truth_tick,
            equity=ctx.ledger.s.equity,
            rule=rule.max_position,
        )
    )


def _judge(intent: Intent, ctx: GateContext, replacing_id: str | None) -> Verdict:
    replacing = ctx.ledger.s.open_orders[replacing_id].footprint if replacing_id else None
    return judge(
        intent,
        exposure=ctx.exposure(),
        positions=ctx.ledger.positions(),
        open_orders=ctx.ledger.footprints(excluding=replacing_id),
        quote=ctx.quote_of(intent.symbol),
        mode=ctx.mode,
        regime=ctx.regime,
        config=ctx.config,
        replacing=replacing,
    )
