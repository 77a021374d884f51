"""Pre-trade: parse what a user sent into an Intent, then judge it against the account.

A desk order is judged on the account *with the order added* (DESIGN.md §3 Pre-trade):
- reduce-only (FIX ExecInst E): the order plus the account's other open reduce-only orders on
  the same side of that (symbol, bucket) never takes the position past zero;
- a risk-increasing order (it raises the key's worst case) needs NORMAL mode and must not make
  row 5 of the policy table fire: potential reaching the hard cap, potential above the regime
  tolerance, or a bucket's potential above its max — the throttle prevents the breach;
- MARKET orders are valued at the current quote (the touch), never a static reference price.
Every refusal has its own RejectReason and a sentence with the numbers. Nothing here raises on
any input: what cannot be judged is MALFORMED_INTENT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from domain.enums import (
    Bucket,
    IntentKind,
    OrderType,
    PriceRule,
    Regime,
    RejectReason,
    RiskMode,
    Side,
)
from domain.exposure import Exposure, worst_case_quantity
from domain.limits import MAX_PRICE, positive_amount, short_text, whole_number
from domain.models import Intent, OpenOrder, Position, Quote
from domain.policy import over, reaches
from domain.rules import RigConfig

# What a desk may set on an intent, and what belongs to the rig (risk cycle, replace path).
DESK_FIELDS = (
    "intent_id",
    "account",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "bucket",
    "reduce_only",
    "intended_duplicate",
)
RIG_FIELDS = ("kind", "price_rule", "issued_in_mode", "replaces")


class Verdict(BaseModel):
    approved: bool
    reason: RejectReason | None = None
    message: str
    risk_increasing: bool = False
    intent: Intent | None = None


def refuse(reason: RejectReason, message: str, intent: Intent | None = None) -> Verdict:
    return Verdict(approved=False, reason=reason, message=message, intent=intent)


def _enum(cls: type, value: Any) -> Any:
    try:
        return cls(value)
    except (ValueError, TypeError):
        return None


def parse_intent(raw: Any, config: RigConfig, *, rig_fields: bool = False) -> Intent | Verdict:
    """The order's own shape. `rig_fields`: the rig's own paths (risk cycle, replace) may set
    kind, price_rule, issued_in_mode and replaces; a desk intent that sets one is refused."""
    if not isinstance(raw, Mapping):
        return refuse(RejectReason.MALFORMED_INTENT, f"intent must be a JSON object, got {type(raw).__name__}")
    allowed = DESK_FIELDS + RIG_FIELDS if rig_fields else DESK_FIELDS
    for name in raw:
        if name not in allowed:
            owner = "the rig's (risk cycle, replace path)" if name in RIG_FIELDS else "not an intent field"
            return refuse(RejectReason.MALFORMED_INTENT, f"field {str(name)[:40]!r} is {owner}; a desk intent may set {', '.join(DESK_FIELDS)}")
    if problem := short_text(raw.get("intent_id"), "intent_id"):
        return refuse(RejectReason.MALFORMED_INTENT, problem)
    if problem := short_text(raw.get("account"), "account"):
        return refuse(RejectReason.BAD_ACCOUNT, problem)
    side = _enum(Side, raw.get("side"))
    if side is None:
        return refuse(RejectReason.BAD_SIDE, f"side must be BUY or SELL, got {_short(raw.get('side'))}")
    order_type = _enum(OrderType, raw.get("order_type", OrderType.LIMIT.value))
    if order_type is None:
        return refuse(RejectReason.BAD_ORDER_TYPE, f"order_type must be LIMIT or MARKET, got {_short(raw.get('order_type'))}")
    qty = raw.get("quantity")
    if problem := whole_number(qty, "quantity"):
        return refuse(RejectReason.BAD_QUANTITY, problem)
    symbol = raw.get("symbol")
    instrument = config.universe.by_symbol.get(symbol) if isinstance(symbol, str) else None
    if instrument is None:
        return refuse(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {_short(symbol)}")
    assert isinstance(qty, int | float)  # whole_number let only these through
    quantity = int(qty)
    if quantity % instrument.lot_size:
        return refuse(RejectReason.NOT_LOT_MULTIPLE, f"quantity {quantity} is not a multiple of {instrument.symbol}'s lot {instrument.lot_size}")
    price = raw.get("limit_price")
    if order_type is OrderType.LIMIT:
        if problem := positive_amount(price, "limit_price", high=MAX_PRICE):
            return refuse(RejectReason.BAD_PRICE, problem)
    elif price is not None:
        return refuse(RejectReason.BAD_PRICE, "a MARKET order has no limit_price")
    bucket = instrument.bucket if raw.get("bucket") is None else _enum(Bucket, raw.get("bucket"))
    if bucket is None:
        return refuse(RejectReason.BAD_BUCKET, f"bucket must be LT or MM_PURE, got {_short(raw.get('bucket'))}")
    for flag in ("reduce_only", "intended_duplicate"):
        if not isinstance(raw.get(flag, False), bool):
            return refuse(RejectReason.MALFORMED_INTENT, f"{flag} must be true or false, got {_short(raw.get(flag))}")
    kind = _enum(IntentKind, raw.get("kind", IntentKind.NEW.value))
    price_rule = _enum(PriceRule, raw.get("price_rule", PriceRule.GIVEN.value))
    issued = _enum(RiskMode, raw.get("issued_in_mode", RiskMode.NORMAL.value))
    replaces = raw.get("replaces")
    if kind is None or price_rule is None or issued is None or not (replaces is None or isinstance(replaces, str)):
        return refuse(RejectReason.MALFORMED_INTENT, "kind, price_rule, issued_in_mode or replaces is not one of the rig's values")
    return Intent(
        intent_id=raw["intent_id"],
        account=raw["account"],
        symbol=instrument.symbol,
        bucket=bucket,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=float(price) if price is not None else None,
        kind=kind,
        reduce_only=bool(raw.get("reduce_only", False)) or kind.is_derisk,
        price_rule=price_rule,
        issued_in_mode=issued,
        replaces=replaces,
        intended_duplicate=bool(raw.get("intended_duplicate", False)),
    )


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**18 else "an integer too large"
    return text if len(text) <= 40 else text[:37] + "..."


def order_price(intent: Intent, quote: Quote) -> float:
    """What the order is worth per share now: its limit, or the touch for a MARKET order."""
    if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
        return intent.limit_price
    return quote.ask if intent.side is Side.BUY else quote.bid


def same_side_open(orders: Sequence[OpenOrder], intent: Intent, *, reduce_only: bool) -> int:
    return sum(
        o.remaining
        for o in orders
        if o.key == intent.key and o.side is intent.side and o.intent_id != intent.intent_id and (o.reduce_only or not reduce_only)
    )


def judge(
    intent: Intent,
    *,
    exposure: Exposure,
    positions: Sequence[Position],
    open_orders: Sequence[OpenOrder],
    quote: Quote,
    mode: RiskMode,
    regime: Regime,
    config: RigConfig,
    replacing: OpenOrder | None = None,
) -> Verdict:
    """The intent against the account; `open_orders` (any granularity: one per order, or one per
    (symbol, bucket, side, kind, reduce-only) as the ledger aggregates them) include neither the
    intent nor `replacing`. With `replacing` (a cancel/replace), the intent is judged *instead of*
    that open order: risk is "increasing" only if the replacement raises the worst case above
    what the original held."""
    rules = config.rules
    price = order_price(intent, quote)
    notional = intent.quantity * price
    if notional > rules.orders.max_order_notional:
        return refuse(
            RejectReason.MAX_ORDER_NOTIONAL,
            f"notional {notional:,.2f} ({intent.quantity:,} × {price:,.2f}) is above the max order notional {rules.orders.max_order_notional:,.2f}",
            intent,
        )
    position = sum(p.quantity for p in positions if p.key == intent.key)
    reducing = _judge_reduce_only(intent, position, open_orders) if intent.reduce_only else None
    if reducing is not None and not reducing.approved:
        return reducing
    # A reduce-only order that passed is judged like any other on the worst case too: with
    # non-reduce-only orders working on its side, it can raise potential (long 1,300 with a
    # SELL 2,100 working: a reduce-only SELL 1,200 takes the worst case from 1,300 to 2,000).
    mark = quote.truth_tick
    buy = sum(o.remaining for o in open_orders if o.key == intent.key and o.side is Side.BUY)
    sell = sum(o.remaining for o in open_orders if o.key == intent.key and o.side is Side.SELL)
    was = replacing.remaining if replacing is not None else 0
    before = (
        worst_case_quantity(
            position, buy + (was if replacing and replacing.side is Side.BUY else 0), sell + (was if replacing and replacing.side is Side.SELL else 0)
        )
        * mark
    )
    buy += intent.quantity if intent.side is Side.BUY else 0
    sell += intent.quantity if intent.side is Side.SELL else 0
    after = worst_case_quantity(position, buy, sell) * mark
    if after <= before + 1e-9:
        return reducing or Verdict(approved=True, message="does not raise the worst case: passes in any mode", intent=intent)
    if not mode.allows_new_risk:
        why = "reduce-only, but with the orders working on its side it raises the worst case: " if reducing else ""
        return refuse(RejectReason.for_mode(mode), f"{why}new risk is refused in {mode.value}", intent)
    return _judge_row5(intent, exposure, before, after, regime, config)


def _judge_reduce_only(intent: Intent, position: int, open_orders: Sequence[OpenOrder]) -> Verdict:
    reducing_side = Side.SELL if position > 0 else Side.BUY
    if position == 0 or intent.side is not reducing_side:
        return refuse(
            RejectReason.REDUCE_ONLY_WOULD_INCREASE,
            f"reduce-only {intent.side.value} on {intent.symbol}/{intent.bucket.value} with position {position:+,} would add exposure",
            intent,
        )
    working = same_side_open(open_orders, intent, reduce_only=True)
    if working + intent.quantity > abs(position):
        return refuse(
            RejectReason.REDUCE_ONLY_WOULD_FLIP,
            f"reduce-only {intent.side.value} {intent.quantity:,} plus {working:,} already working would take "
            f"{intent.symbol}/{intent.bucket.value} from {position:+,} past zero",
            intent,
        )
    return Verdict(
        approved=True, message=f"reduce-only: {intent.quantity + working:,} of {abs(position):,} working; passes in any mode", intent=intent
    )


def _judge_row5(intent: Intent, exposure: Exposure, before: float, after: float, regime: Regime, config: RigConfig) -> Verdict:
    """Row 5 of the policy table, applied to the account with the order added."""
    rules = config.rules
    equity = exposure.equity
    potential_pct = (exposure.potential - before + after) / equity * 100.0
    tolerance = rules.regime_rule(regime).gross_tolerance_pct
    if reaches(potential_pct, rules.hard_cap_pct):
        return refuse(
            RejectReason.HARD_CAP,
            f"potential gross with the order {potential_pct:.2f}% would reach the hard cap {rules.hard_cap_pct:g}%",
            intent,
        )
    if over(potential_pct, tolerance):
        return refuse(
            RejectReason.REGIME_TOLERANCE,
            f"potential gross with the order {potential_pct:.2f}% would exceed the {regime.value} tolerance {tolerance:g}%",
            intent,
        )
    bucket = exposure.buckets[intent.bucket]
    bucket_pct = (bucket.potential - before + after) / equity * 100.0
    if over(bucket_pct, bucket.max_pct):
        return refuse(
            RejectReason.BUCKET_MAX,
            f"{intent.bucket.value} potential with the order {bucket_pct:.2f}% would exceed its max {bucket.max_pct:g}%",
            intent,
        )
    return Verdict(approved=True, risk_increasing=True, message=f"approved; potential gross with the order {potential_pct:.2f}%", intent=intent)
