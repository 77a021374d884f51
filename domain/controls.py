"""Pre-trade controls besides exposure (DESIGN.md §3; rules `controls`), one check per control.

Each check is pure and returns None (passes) or a `Refusal` — (reject code, message naming the
limit and the numbers). The two controls that look back in time (order rate, duplicative orders)
also return the caller's recent-order state pruned to the window, so an account's state stays
bounded; the caller records an order there (`record_order`) only once it is finally approved.

What these apply to is the caller's call: desk orders; the risk cycle's de-risk intents are never
blocked. The caller has validated the intent's shape (side, whole quantity > 0, finite limit).
Numbers are still bounded before any arithmetic, and a reference the check needs but cannot
trust (a NaN truth tick, equity ≤ 0) refuses with the control's code: a control fails closed.

Boundaries: a limit is reached, not broken, at exactly its value — "passes at the limit". Windows
are half-open: an order `window_seconds` old or older is outside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from domain.enums import RejectReason, Side
from domain.policy import over
from domain.rules import (
    ControlsRule,
    DuplicateOrderRule,
    MaxOrderQuantityRule,
    MaxPositionRule,
    OrderRateRule,
    PriceCollarRule,
    RestrictedListRule,
)

Refusal = tuple[RejectReason, str]

# Shares: far beyond any real order or position; clamping to it keeps float conversions finite.
MAX_QUANTITY = 10**15
# Duplicates kept for the look-back: with an order-rate limit the window holds far fewer.
MAX_RECENT_ORDERS = 1000


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderTicket(Frozen):
    """An order as the controls see it — what and when; the duplicate guard keeps the accepted ones."""

    symbol: str
    side: Side
    quantity: int
    limit_price: float | None  # None: MARKET
    at: float  # workflow time, seconds


class ControlsState(Frozen):
    """What the account keeps for the look-back controls, pruned on every check."""

    order_times: list[float] = []
    recent_orders: list[OrderTicket] = []


def _clamp(quantity: int) -> int:
    return max(-MAX_QUANTITY, min(MAX_QUANTITY, quantity))


def _positive(value: float | None) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _within(at: float, now: float, window: float) -> bool:
    return math.isfinite(at) and 0 <= now - at < window


# ----- stateless controls -----


def check_restricted(symbol: str, rule: RestrictedListRule) -> Refusal | None:
    if symbol in rule.symbols:
        return RejectReason.RESTRICTED_SYMBOL, f"{symbol} is on the restricted list ({len(rule.symbols)} symbols)"
    return None


def check_max_order_quantity(symbol: str, quantity: int, rule: MaxOrderQuantityRule) -> Refusal | None:
    limit = rule.limit_for(symbol)
    if limit is None or quantity <= limit:
        return None
    which = f"{symbol}'s max order quantity" if symbol in rule.per_symbol else "the max order quantity"
    return RejectReason.MAX_ORDER_QUANTITY, f"quantity {_clamp(quantity):,} is above {which} {limit:,}"


def check_price_collar(limit_price: float | None, truth_tick: float | None, rule: PriceCollarRule) -> Refusal | None:
    """A LIMIT more than `band_pct` % away from the truth tick, either side (a fat finger either
    way: a buy far through the market trades badly, one far below is a typo). MARKET: no limit.
    With market data the reference is the fresh mark (`MarketView.collar_reference`: the truth
    tick clamped into the bid/ask, else the mid); None when nothing is fresh — the collar refuses."""
    band = rule.band_pct
    if band is None or limit_price is None:
        return None
    if truth_tick is None:
        return RejectReason.PRICE_COLLAR, f"no fresh reference price (truth tick or L1 mid) to hold the limit to the {band:g}% collar"
    if not _positive(truth_tick):
        return RejectReason.PRICE_COLLAR, f"no usable truth tick ({truth_tick!r}) to hold the limit to the {band:g}% collar"
    if not _positive(limit_price):
        return RejectReason.PRICE_COLLAR, f"limit price {limit_price!r} is not a finite price > 0"
    off_pct = abs(limit_price - truth_tick) / truth_tick * 100.0
    if over(off_pct, band):
        return (
            RejectReason.PRICE_COLLAR,
            f"limit {limit_price:,.2f} is {off_pct:.2f}% from the truth tick {truth_tick:,.2f}, outside the {band:g}% price collar",
        )
    return None


def check_max_position(
    symbol: str,
    side: Side,
    quantity: int,
    *,
    position: int,
    open_same_side: int,
    mark: float,
    equity: float,
    rule: MaxPositionRule,
) -> Refusal | None:
    """The symbol's position (all buckets) after this order and every open order on its side
    fill, valued at the mark, against `max_pct` % of equity. An order that brings that worst case
    closer to flat passes even over the limit: it does not add to the position."""
    limit_pct = rule.limit_for(symbol)
    if limit_pct is None:
        return None
    if not (_positive(mark) and _positive(equity)):
        return RejectReason.MAX_POSITION, f"cannot value {symbol}'s position (mark {mark!r}, equity {equity!r})"
    sign = side.sign
    before = _clamp(position) + sign * _clamp(open_same_side)
    after = before + sign * _clamp(quantity)
    if abs(after) <= abs(before):
        return None
    after_pct = abs(after) * mark / equity * 100.0
    if over(after_pct, limit_pct):
        return (
            RejectReason.MAX_POSITION,
            f"{symbol} position after the order and open {side.value.lower()}s would be {after:,} shares "
            f"({after_pct:.2f}% of equity), above the max position {limit_pct:g}%",
        )
    return None


# ----- look-back controls -----


def check_order_rate(now: float, order_times: Sequence[float], rule: OrderRateRule) -> tuple[Refusal | None, list[float]]:
    """At most `max_orders` accepted orders in (now − window, now]: refused when the window
    already holds `max_orders`. Returns the times kept: those in the window, the latest
    `max_orders` of them (older ones can never decide a later check)."""
    limit = rule.max_orders
    if limit is None:
        return None, []
    window = rule.window_seconds
    kept = sorted(t for t in order_times if _within(t, now, window))[-limit:]
    if len(kept) >= limit:
        return (
            RejectReason.ORDER_RATE,
            f"{len(kept)} orders in the last {window:g} s reach the order rate limit of {limit} per {window:g} s",
        ), kept
    return None, kept


def _same_price(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a))


def check_duplicate(
    order: OrderTicket, recent: Sequence[OrderTicket], rule: DuplicateOrderRule, *, intended_duplicate: bool = False
) -> tuple[Refusal | None, list[OrderTicket]]:
    """Same symbol, side, quantity and price as an order accepted less than `window_seconds`
    ago. Returns the orders kept (those in the window, the latest MAX_RECENT_ORDERS)."""
    window = rule.window_seconds
    if window is None:
        return None, []
    kept = [r for r in recent if _within(r.at, order.at, window)][-MAX_RECENT_ORDERS:]
    if intended_duplicate:
        return None, kept
    for earlier in reversed(kept):
        if (
            earlier.symbol == order.symbol
            and earlier.side is order.side
            and earlier.quantity == order.quantity
            and _same_price(earlier.limit_price, order.limit_price)
        ):
            price = "MARKET" if order.limit_price is None else f"@ {order.limit_price:,.2f}"
            return (
                RejectReason.DUPLICATIVE_ORDER,
                f"{order.side.value} {_clamp(order.quantity):,} {order.symbol} {price} repeats an order "
                f"{order.at - earlier.at:g} s ago, within the {window:g} s duplicate window "
                "(set intended_duplicate: true if meant)",
            ), kept
    return None, kept


# ----- all controls, in one call -----


def check_controls(
    order: OrderTicket,
    *,
    intended_duplicate: bool,
    truth_tick: float | None,
    position: int,
    open_same_side: int,
    mark: float,
    equity: float,
    state: ControlsState,
    rule: ControlsRule,
) -> tuple[Refusal | None, ControlsState]:
    """Every control in a fixed order — restricted list, max order quantity, price collar, max
    position, duplicative order, order rate — stopping at the first refusal. Returns it and the
    pruned state (record the order with `record_order` once it is approved)."""
    rate_refusal, times = check_order_rate(order.at, state.order_times, rule.order_rate)
    duplicate_refusal, recent = check_duplicate(order, state.recent_orders, rule.duplicative_orders, intended_duplicate=intended_duplicate)
    pruned = ControlsState(order_times=times, recent_orders=recent)
    refusal = (
        check_restricted(order.symbol, rule.restricted)
        or check_max_order_quantity(order.symbol, order.quantity, rule.max_order_quantity)
        or check_price_collar(order.limit_price, truth_tick, rule.price_collar)
        or check_max_position(
            order.symbol,
            order.side,
            order.quantity,
            position=position,
            open_same_side=open_same_side,
            mark=mark,
            equity=equity,
            rule=rule.max_position,
        )
        or duplicate_refusal
        or rate_refusal
    )
    return refusal, pruned


def record_order(state: ControlsState, order: OrderTicket, rule: ControlsRule) -> ControlsState:
    """The state once `order` is approved: its time for the rate limit, itself for the
    duplicate guard (each only while that control is on)."""
    times = [*state.order_times, order.at] if rule.order_rate.max_orders is not None else []
    recent = ([*state.recent_orders, order])[-MAX_RECENT_ORDERS:] if rule.duplicative_orders.window_seconds is not None else []
    return ControlsState(order_times=times, recent_orders=recent)
