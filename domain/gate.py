"""The account's pre-trade gate: what one request is judged against, in one place. Pure.

The risk workflow calls these from its update handlers, one at a time (handlers without awaits
never interleave), so no two orders can jointly breach a limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain.enums import Regime, RejectReason, RiskMode
from domain.exposure import Exposure, compute_exposure
from domain.ledger import Ledger
from domain.models import Intent, Quote
from domain.pretrade import Verdict, judge, parse_intent, refuse
from domain.rules import RigConfig


class GateContext:
    def __init__(self, *, account: str, ledger: Ledger, mode: RiskMode, regime: Regime,
                 quote_of: Callable[[str], Quote], config: RigConfig) -> None:
        self.account, self.ledger, self.mode, self.regime = account, ledger, mode, regime
        self.quote_of, self.config = quote_of, config

    def exposure(self) -> Exposure:
        positions, orders = self.ledger.positions(), self.ledger.footprints()
        symbols = dict.fromkeys([p.symbol for p in positions] + [o.symbol for o in orders])
        marks = {s: self.quote_of(s).truth_tick for s in symbols}
        return compute_exposure(self.ledger.s.equity, positions, orders, marks, self.config)


def gate_desk_intent(raw: Mapping[str, Any], ctx: GateContext) -> Verdict:
    """A desk's new order: its shape, then the account with the order added."""
    parsed = parse_intent(raw, ctx.config)
    if isinstance(parsed, Verdict):
        return parsed
    if parsed.account != ctx.account:
        return refuse(RejectReason.BAD_ACCOUNT, f"account {parsed.account[:80]!r} is not {ctx.account!r}", parsed)
    intent = parsed.model_copy(update={"issued_in_mode": ctx.mode})
    return _judge(intent, ctx, replacing_id=None)


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
        return refuse(RejectReason.MALFORMED_INTENT, f"a replacement keeps account, symbol, side and bucket, replaces {original_id} and is {expected_id}")
    if parsed.kind.is_derisk and not entry.own:
        return refuse(RejectReason.MALFORMED_INTENT, "only the risk cycle's own orders are replaced as de-risk intents")
    # The replacement is a new order: issued in the mode in force now (an escalation's, HARD).
    return _judge(parsed.model_copy(update={"issued_in_mode": ctx.mode}), ctx, replacing_id=original_id)


def _judge(intent: Intent, ctx: GateContext, replacing_id: str | None) -> Verdict:
    replacing = ctx.ledger.s.open_orders[replacing_id].footprint if replacing_id else None
    return judge(
        intent, exposure=ctx.exposure(), positions=ctx.ledger.positions(), open_orders=ctx.ledger.footprints(),
        quote=ctx.quote_of(intent.symbol), mode=ctx.mode, regime=ctx.regime, config=ctx.config, replacing=replacing,
    )
