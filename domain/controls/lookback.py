"""The controls that look back in time over workflow seconds: order rate and duplicative orders (issue
16); message rate, the order-to-trade alarm and the repeated-execution throttle (issue 25).

The account keeps one `ControlsState`, pruned on every check and bounded at every setting: what a
control can never need again (outside its window, beyond its limit) is dropped, and a control that is
off keeps nothing. Windows are half-open: an event `window_seconds` old or older is outside.

What is recorded when:
  - `record_order` once a desk order (new or replacement) is approved: the order rate, the duplicate
    guard and a message sent;
  - `record_message` for every other message sent: a cancel (desk or rig), the rig's own new orders and
    replaces — counted, never refused;
  - `record_fill` for every fill: the order-to-trade ratio counts them all, the repeated-execution
    throttle the desk's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum

from pydantic import Field

from domain.base import Frozen
from domain.controls.base import OrderTicket, Refusal, clamp, within
from domain.enums import RejectReason, Side, TradingState
from domain.events import TradingStateRequest
from domain.rules import (
    ControlsRule,
    DuplicateOrderRule,
    MessageRateRule,
    OrderRateRule,
    OrderToTradeRule,
    RepeatedExecutionRule,
)

# Duplicates kept for the look-back: with an order-rate limit the window holds far fewer.
MAX_RECENT_ORDERS = 1000
# The order-to-trade window is counted in this many buckets (exact to 1/60 of the window, and a
# bounded state at any message rate).
ACTIVITY_BUCKETS = 60
MAX_EXECUTIONS_KEPT = 2000
CONTROLS = "controls"  # who a trading-state change made by a control names


class MessageKind(str, Enum):
    NEW = "NEW"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"


class ActivityBucket(Frozen):
    start: float  # workflow time, a whole multiple of the bucket's width
    messages: int = 0
    fills: int = 0


class Execution(Frozen):
    symbol: str
    side: Side
    at: float


class ControlsState(Frozen):
    """What the account keeps for the look-back controls, pruned on every check."""

    order_times: list[float] = Field(default_factory=list)
    recent_orders: list[OrderTicket] = Field(default_factory=list)
    message_times: list[float] = Field(default_factory=list)
    activity: list[ActivityBucket] = Field(default_factory=list)
    executions: list[Execution] = Field(default_factory=list)
    order_to_trade_alarmed_at: float | None = None


class ControlAlarm(Frozen):
    """An alarm a control raises (the account records it with its cycle and time)."""

    kind: str
    text: str
    symbol: str | None = None


class Throttle(Frozen):
    """The repeated-execution throttle fired: the account should go REDUCING, for `reason`."""

    symbol: str
    side: Side
    fills: int
    reason: str

    def request(self, current: TradingState) -> TradingStateRequest | None:
        """The trading-state change to make: REDUCING from ACTIVE only (an operator's HALTED or
        REDUCING stands)."""
        if current is not TradingState.ACTIVE:
            return None
        return TradingStateRequest(state=TradingState.REDUCING, by=CONTROLS, reason=self.reason[:500])


# ----- order rate and duplicates (desk orders) -----


def check_order_rate(now: float, order_times: Sequence[float], rule: OrderRateRule) -> tuple[Refusal | None, list[float]]:
    """At most `max_orders` accepted orders in (now − window, now]: refused when the window
    already holds `max_orders`. Returns the times kept: those in the window, the latest
    `max_orders` of them (older ones can never decide a later check)."""
    limit = rule.max_orders
    if limit is None:
        return None, []
    window = rule.window_seconds
    kept = sorted(t for t in order_times if within(t, now, window))[-limit:]
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
    kept = [r for r in recent if within(r.at, order.at, window)][-MAX_RECENT_ORDERS:]
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
                f"{order.side.value} {clamp(order.quantity):,} {order.symbol} {price} repeats an order "
                f"{order.at - earlier.at:g} s ago, within the {window:g} s duplicate window "
                "(set intended_duplicate: true if meant)",
            ), kept
    return None, kept


# ----- messages -----


def check_message_rate(now: float, message_times: Sequence[float], rule: MessageRateRule) -> tuple[Refusal | None, list[float]]:
    """At most `max_messages` messages in (now − window, now]: one more is refused when the window
    holds `max_messages` already. Returns the times kept (the latest `max_messages` in the window)."""
    limit = rule.max_messages
    if limit is None:
        return None, []
    window = rule.window_seconds
    kept = sorted(t for t in message_times if within(t, now, window))[-limit:]
    if len(kept) >= limit:
        return (
            RejectReason.MESSAGE_RATE,
            f"{len(kept)} messages (new, cancel, replace) in the last {window:g} s reach the message limit of {limit} per {window:g} s",
        ), kept
    return None, kept


def check_message(kind: MessageKind, now: float, state: ControlsState, rule: MessageRateRule) -> tuple[Refusal | None, ControlsState]:
    """A desk message about to be sent: a new order or a replace over the limit is refused; a cancel
    never is (it only lowers risk). Returns the state pruned."""
    refusal, kept = check_message_rate(now, state.message_times, rule)
    pruned = state.model_copy(update={"message_times": kept})
    return (None if kind is MessageKind.CANCEL else refusal), pruned


def _bucket_width(rule: OrderToTradeRule) -> float:
    return rule.window_seconds / ACTIVITY_BUCKETS


def _activity(buckets: Sequence[ActivityBucket], at: float, rule: OrderToTradeRule, *, messages: int = 0, fills: int = 0) -> list[ActivityBucket]:
    """The buckets still in the window at `at`, with `messages` and `fills` added to `at`'s bucket."""
    if rule.max_ratio is None:
        return []
    width = _bucket_width(rule)
    start = math.floor(at / width) * width if math.isfinite(at) else 0.0
    kept = [b for b in buckets if b.start + width > at - rule.window_seconds and b.start <= at]
    if messages or fills:
        if kept and kept[-1].start == start:
            last = kept[-1]
            kept[-1] = last.model_copy(update={"messages": last.messages + messages, "fills": last.fills + fills})
        else:
            kept.append(ActivityBucket(start=start, messages=messages, fills=fills))
    return kept[-(ACTIVITY_BUCKETS + 1) :]


def record_message(state: ControlsState, at: float, rule: ControlsRule) -> ControlsState:
    """A message sent at `at` (new, cancel or replace; desk or rig), for the message rate and the
    order-to-trade ratio (each only while it is on)."""
    limit = rule.message_rate.max_messages
    times = sorted([t for t in state.message_times if within(t, at, rule.message_rate.window_seconds)] + [at])[-limit:] if limit is not None else []
    return state.model_copy(update={"message_times": times, "activity": _activity(state.activity, at, rule.order_to_trade, messages=1)})


def record_order(state: ControlsState, order: OrderTicket, rule: ControlsRule) -> ControlsState:
    """The state once a desk `order` (new or replacement) is approved: its time for the rate limit,
    itself for the duplicate guard, and a message sent (each only while that control is on)."""
    times = [*state.order_times, order.at] if rule.order_rate.max_orders is not None else []
    recent = ([*state.recent_orders, order])[-MAX_RECENT_ORDERS:] if rule.duplicative_orders.window_seconds is not None else []
    return record_message(state.model_copy(update={"order_times": times, "recent_orders": recent}), order.at, rule)


# ----- fills -----


def record_fill(state: ControlsState, symbol: str, side: Side, at: float, rule: ControlsRule, *, desk: bool) -> tuple[Throttle | None, ControlsState]:
    """A fill at `at`: counted for the order-to-trade ratio; a desk order's fill also for the
    repeated-execution throttle, which fires when the window holds `max_fills` fills in this symbol
    and side (this one included)."""
    activity = _activity(state.activity, at, rule.order_to_trade, fills=1)
    repeated: RepeatedExecutionRule = rule.repeated_executions
    limit = repeated.max_fills
    if limit is None:
        return None, state.model_copy(update={"activity": activity, "executions": []})
    window = repeated.window_seconds
    executions = [e for e in state.executions if within(e.at, at, window)]
    if desk:
        executions.append(Execution(symbol=symbol, side=side, at=at))
    executions = executions[-MAX_EXECUTIONS_KEPT:]
    pruned = state.model_copy(update={"activity": activity, "executions": executions})
    count = sum(1 for e in executions if e.symbol == symbol and e.side is side)
    if desk and count >= limit:
        reason = f"REPEATED_EXECUTIONS: {count} {side.value} fills in {symbol} within {window:g} s reach the limit of {limit}"
        return Throttle(symbol=symbol, side=side, fills=count, reason=reason), pruned
    return None, pruned


def order_to_trade_alarm(state: ControlsState, now: float, rule: OrderToTradeRule) -> tuple[ControlAlarm | None, ControlsState]:
    """The order-to-trade ratio over the window (messages / fills; no fill counts as one): an alarm
    when it exceeds `max_ratio` with at least `min_messages` sent — at most once per window."""
    limit = rule.max_ratio
    if limit is None:
        return None, state.model_copy(update={"activity": [], "order_to_trade_alarmed_at": None})
    buckets = _activity(state.activity, now, rule)
    pruned = state.model_copy(update={"activity": buckets})
    messages = sum(b.messages for b in buckets)
    fills = sum(b.fills for b in buckets)
    ratio = messages / max(fills, 1)
    last = state.order_to_trade_alarmed_at
    if messages < rule.min_messages or ratio <= limit or (last is not None and within(last, now, rule.window_seconds)):
        return None, pruned
    text = f"order-to-trade ratio {ratio:,.1f} ({messages:,} messages, {fills:,} fills in {rule.window_seconds:g} s) is above {limit:g}"
    return ControlAlarm(kind="ORDER_TO_TRADE", text=text), pruned.model_copy(update={"order_to_trade_alarmed_at": now})
