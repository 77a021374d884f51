"""The rig's own orders are checked too (RTS 6 Art. 15(2): all orders sent): a de-risk intent or an
escalation's replacement that fails a check is not sent — the cycle records the refusal with its reason
and plans again next cycle, on the next quote. Desk-only controls (restricted list, duplicates, rates,
position limits, self-cross) do not apply: de-risk must be able to reduce whatever the desk holds."""

from __future__ import annotations

from domain.base import Frozen
from domain.controls.base import Refusal, TopOfBook, positive
from domain.controls.orders import check_market_collar, check_max_notional, check_max_order_quantity, check_price_band, check_quote
from domain.enums import RejectReason, Side
from domain.rules import ControlsRule


class RigOrder(Frozen):
    """A de-risk intent or a replacement the rig is about to send."""

    symbol: str
    side: Side
    quantity: int
    limit_price: float | None  # None: MARKET


def check_rig_order(
    order: RigOrder,
    *,
    top: TopOfBook | None,
    reference: float | None,
    rule: ControlsRule,
    max_order_notional: float,
    l1_max_age_seconds: float,
) -> Refusal | None:
    """In order: quote sanity (BAD_QUOTE), the price band of a limit against the fresh L1 (PRICE_BAND),
    the MARKET collar (PRICE_COLLAR), then — with `rig_orders.size_limits` — max order quantity and max
    order notional (the limit, or a MARKET order's far touch). Each only while it is on: with the
    shipped rules nothing here refuses, and the rig's orders go as before."""
    refusal = None
    if rule.quote_sanity.enabled:
        refusal = check_quote(top, l1_max_age_seconds)
    refusal = (
        refusal
        or check_price_band(order.limit_price, top, l1_max_age_seconds, rule.price_band)
        or check_market_collar(order.side, order.limit_price, top, reference, l1_max_age_seconds, rule.market_collar)
    )
    if refusal or not rule.rig_orders.size_limits:
        return refusal
    price = order.limit_price if order.limit_price is not None else (top.far_touch(order.side) if top is not None else None)
    if price is None or not positive(price):
        return RejectReason.MAX_ORDER_NOTIONAL, f"cannot value the rig's {order.side.value} {order.symbol}: no limit and no L1"
    return check_max_order_quantity(order.symbol, order.quantity, rule.max_order_quantity) or check_max_notional(
        order.quantity, price, max_order_notional
    )


def clip_rig_quantity(symbol: str, quantity: int, price: float, lot_size: int, *, rule: ControlsRule, max_order_notional: float) -> int:
    """A de-risk step sized to pass the size limits (with `rig_orders.size_limits`): the largest whole
    number of lots ≤ `quantity` within max_order_quantity and max_order_notional at `price`, so the step
    goes smaller instead of being refused every cycle; 0 when not even one lot fits. Off: `quantity`."""
    if not rule.rig_orders.size_limits or quantity <= 0:
        return quantity
    limit = rule.max_order_quantity.limit_for(symbol)
    clipped = min(quantity, limit) if limit is not None else quantity
    if positive(price):
        clipped = min(clipped, int(max_order_notional // price))
    lot = max(1, lot_size)
    return max(0, clipped // lot * lot)
