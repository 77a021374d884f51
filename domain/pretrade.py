"""Pre-trade checks: parse what a user sent into an Intent, then gate it against the account.

Every refusal has its own RejectReason. Reduce-only orders and de-risk intents pass in any mode
(they cannot add exposure); risk-increasing orders need NORMAL mode and must keep potential gross
below the hard cap and the bucket's potential at or under its max.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.enums import Bucket, IntentKind, OrderType, PriceRule, RejectReason, RiskMode, Side
from domain.exposure import Exposure, worst_case_quantity
from domain.models import AccountSnapshot, Intent
from domain.policy import over, reaches
from domain.rules import RigConfig


class RawIntent(BaseModel):
    """What arrives from a CLI or a client: loosely typed on purpose, so that a malformed intent
    becomes a REJECTED order with a reason rather than a workflow task failing to decode."""

    model_config = ConfigDict(extra="allow")

    intent_id: Any = None
    account: Any = None
    symbol: Any = None
    side: Any = None
    quantity: Any = None
    order_type: Any = "LIMIT"
    limit_price: Any = None
    bucket: Any = None
    reduce_only: Any = False
    kind: Any = "NEW"
    replaces: Any = None
    price_rule: Any = "GIVEN"
    issued_in_mode: Any = "NORMAL"


class Verdict(BaseModel):
    approved: bool
    reason: RejectReason | None = None
    message: str
    risk_increasing: bool = False
    intent: Intent | None = None


def _refuse(reason: RejectReason, message: str, intent: Intent | None = None) -> Verdict:
    return Verdict(approved=False, reason=reason, message=message, intent=intent)


def _enum(cls: type, value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        return None


def parse_intent(raw: RawIntent, config: RigConfig) -> Intent | Verdict:
    """The order's own shape: side, type, quantity, lots, symbol, price, notional."""
    if not isinstance(raw.intent_id, str) or not raw.intent_id:
        return _refuse(RejectReason.MALFORMED_INTENT, "intent_id must be a non-empty string")
    if not isinstance(raw.account, str) or not raw.account:
        return _refuse(RejectReason.BAD_ACCOUNT, "account must be a non-empty string")
    side = _enum(Side, raw.side)
    if side is None:
        return _refuse(RejectReason.BAD_SIDE, f"side must be BUY or SELL, got {raw.side!r}")
    order_type = _enum(OrderType, raw.order_type)
    if order_type is None:
        return _refuse(RejectReason.BAD_ORDER_TYPE, f"order_type must be LIMIT or MARKET, got {raw.order_type!r}")
    qty = raw.quantity
    if isinstance(qty, bool) or not isinstance(qty, (int, float)) or not math.isfinite(qty) or qty != int(qty) or qty <= 0:
        return _refuse(RejectReason.BAD_QUANTITY, f"quantity must be a whole number > 0, got {qty!r}")
    instrument = config.universe.by_symbol.get(raw.symbol) if isinstance(raw.symbol, str) else None
    if instrument is None:
        return _refuse(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {raw.symbol!r}")
    if int(qty) % instrument.lot_size:
        return _refuse(RejectReason.NOT_LOT_MULTIPLE, f"quantity {int(qty)} is not a multiple of {raw.symbol}'s lot {instrument.lot_size}")
    price = raw.limit_price
    if order_type is OrderType.LIMIT:
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
            return _refuse(RejectReason.BAD_PRICE, f"limit_price must be a finite number > 0, got {price!r}")
    elif price is not None:
        return _refuse(RejectReason.BAD_PRICE, "a MARKET order has no limit_price")
    bucket = instrument.bucket if raw.bucket is None else _enum(Bucket, raw.bucket)
    if bucket is None:
        return _refuse(RejectReason.BAD_BUCKET, f"bucket must be LT or MM_PURE, got {raw.bucket!r}")
    kind = _enum(IntentKind, raw.kind) or IntentKind.NEW
    intent = Intent(
        intent_id=raw.intent_id,
        account=raw.account,
        symbol=instrument.symbol,
        bucket=bucket,
        side=side,
        quantity=int(qty),
        order_type=order_type,
        limit_price=float(price) if price is not None else None,
        kind=kind,
        reduce_only=bool(raw.reduce_only) or kind.is_derisk,
        price_rule=_enum(PriceRule, raw.price_rule) or PriceRule.GIVEN,
        issued_in_mode=_enum(RiskMode, raw.issued_in_mode) or RiskMode.NORMAL,
        replaces=raw.replaces if isinstance(raw.replaces, str) else None,
    )
    notional = intent.quantity * (intent.limit_price or instrument.reference_price)
    if notional > config.rules.orders.max_order_notional:
        return _refuse(
            RejectReason.MAX_ORDER_NOTIONAL,
            f"notional {notional:,.2f} is above the max order notional {config.rules.orders.max_order_notional:,.2f}",
            intent,
        )
    return intent


def check_order(
    raw: RawIntent,
    account: AccountSnapshot,
    exposure: Exposure,
    mode: RiskMode,
    config: RigConfig,
) -> Verdict:
    parsed = parse_intent(raw, config)
    if isinstance(parsed, Verdict):
        return parsed
    intent = parsed
    mark = account.marks.get(intent.symbol) or config.universe.by_symbol[intent.symbol].reference_price
    qty = sum(p.quantity for p in account.positions if p.key == intent.key)
    buy = sum(o.remaining for o in account.open_orders if o.key == intent.key and o.side is Side.BUY)
    sell = sum(o.remaining for o in account.open_orders if o.key == intent.key and o.side is Side.SELL)
    before = worst_case_quantity(qty, buy, sell) * mark
    if intent.side is Side.BUY:
        buy += intent.quantity
    else:
        sell += intent.quantity
    after = worst_case_quantity(qty, buy, sell) * mark
    increasing = after > before + 1e-9
    if not increasing:
        return Verdict(approved=True, message="reduce-only: passes in any mode", intent=intent)
    if intent.reduce_only:
        return _refuse(
            RejectReason.REDUCE_ONLY_WOULD_INCREASE,
            f"reduce-only order would raise {intent.symbol}/{intent.bucket.value} worst case from {before:,.2f} to {after:,.2f}",
            intent,
        )
    if not mode.allows_new_risk:
        return _refuse(RejectReason.for_mode(mode), f"new risk is refused in {mode.value}", intent)
    rules = config.rules
    potential_after_pct = (exposure.potential - before + after) / exposure.equity * 100.0
    if reaches(potential_after_pct, rules.hard_cap_pct):
        return _refuse(
            RejectReason.HARD_CAP,
            f"potential gross after the order {potential_after_pct:.2f}% would reach the hard cap {rules.hard_cap_pct:g}%",
            intent,
        )
    bucket = exposure.buckets[intent.bucket]
    bucket_after_pct = (bucket.potential - before + after) / exposure.equity * 100.0
    if over(bucket_after_pct, bucket.max_pct):
        return _refuse(
            RejectReason.BUCKET_MAX,
            f"{intent.bucket.value} potential after the order {bucket_after_pct:.2f}% would exceed its max {bucket.max_pct:g}%",
            intent,
        )
    return Verdict(approved=True, risk_increasing=True, message=f"approved; potential gross after {potential_after_pct:.2f}%", intent=intent)
