"""Issue 25's look-back controls (domain/controls/lookback.py), pure: the message limit counting new
orders, cancels and replaces (the rig's too), replaces passing the duplicate and rate checks like new
orders, the order-to-trade alarm, the repeated-execution throttle — and the state they keep bounded
and readable from a run carried before it had them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.controls import (
    ControlsState,
    MessageKind,
    OrderTicket,
    check_controls,
    check_message,
    check_replacement,
    order_to_trade_alarm,
    record_fill,
    record_message,
    record_order,
)
from domain.controls.lookback import ACTIVITY_BUCKETS, CONTROLS, MAX_EXECUTIONS_KEPT
from domain.enums import RejectReason, Side, TradingState
from domain.rules import (
    ControlsRule,
    DuplicateOrderRule,
    MessageRateRule,
    OrderRateRule,
    OrderToTradeRule,
    RepeatedExecutionRule,
)

BUY, SELL = Side.BUY, Side.SELL
MESSAGES = ControlsRule(message_rate=MessageRateRule(max_messages=3, window_seconds=1.0))


def ticket(at: float, quantity: int = 100, limit: float | None = 100.0) -> OrderTicket:
    return OrderTicket(symbol="AAPL", side=BUY, quantity=quantity, limit_price=limit, at=at)


def desk(order: OrderTicket, state: ControlsState, rule: ControlsRule):
    return check_controls(
        order, intended_duplicate=False, truth_tick=100.0, position=0, open_same_side=0, mark=100.0, equity=1e6, state=state, rule=rule
    )


# ----- message rate -----


def test_new_cancel_and_replace_all_count_and_only_cancels_pass_over_the_limit():
    state = ControlsState()
    state = record_order(state, ticket(10.0), MESSAGES)  # a desk new order
    state = record_message(state, 10.2, MESSAGES)  # a cancel
    state = record_message(state, 10.4, MESSAGES)  # the rig's de-risk order
    refusal, state = desk(ticket(10.5, quantity=7), state, MESSAGES)
    assert refusal is not None and refusal[0] is RejectReason.MESSAGE_RATE and "3 messages (new, cancel, replace) in the last 1 s" in refusal[1]
    refusal, _ = check_message(MessageKind.REPLACE, 10.5, state, MESSAGES.message_rate)
    assert refusal is not None and refusal[0] is RejectReason.MESSAGE_RATE
    assert check_message(MessageKind.CANCEL, 10.5, state, MESSAGES.message_rate)[0] is None  # a cancel only lowers risk
    # Half-open window: at 11.0 the message of 10.0 is out, and one more goes.
    assert desk(ticket(11.0, quantity=8), state, MESSAGES)[0] is None


def test_a_refused_message_is_not_counted():
    state = ControlsState()
    for at in (0.0, 0.1, 0.2):
        state = record_message(state, at, MESSAGES)
    for at in (0.3, 0.4, 0.5, 0.6, 0.7):  # refused (never recorded): they do not keep the window full
        assert desk(ticket(at, quantity=int(at * 10)), state, MESSAGES)[0] is not None
    assert desk(ticket(1.05, quantity=99), state, MESSAGES)[0] is None


def test_the_message_state_keeps_at_most_the_limit():
    state = ControlsState()
    for i in range(50):
        state = record_message(state, i * 0.01, MESSAGES)
    assert len(state.message_times) == 3
    assert record_message(ControlsState(), 1.0, ControlsRule()).message_times == []  # off: nothing kept


# ----- replaces pass the duplicate and rate checks like new orders -----

RATE_AND_DUPLICATES = ControlsRule(order_rate=OrderRateRule(max_orders=2, window_seconds=60), duplicative_orders=DuplicateOrderRule(window_seconds=5))


def replacement(order: OrderTicket, state: ControlsState, rule: ControlsRule):
    return check_replacement(order, truth_tick=100.0, position=0, open_same_side=0, mark=100.0, equity=1e6, state=state, rule=rule)


def test_a_replacement_that_changes_nothing_is_duplicative_and_replaces_count_for_the_order_rate():
    state = record_order(ControlsState(), ticket(0.0), RATE_AND_DUPLICATES)
    refusal, _ = replacement(ticket(1.0), state, RATE_AND_DUPLICATES)
    assert refusal is not None and refusal[0] is RejectReason.DUPLICATIVE_ORDER
    moved = ticket(1.0, limit=100.5)
    refusal, state = replacement(moved, state, RATE_AND_DUPLICATES)
    assert refusal is None
    state = record_order(state, moved, RATE_AND_DUPLICATES)
    refusal, _ = replacement(ticket(2.0, limit=101.0), state, RATE_AND_DUPLICATES)
    assert refusal is not None and refusal[0] is RejectReason.ORDER_RATE  # the new order and the replace fill the window


# ----- order-to-trade alarm -----

OTR = OrderToTradeRule(max_ratio=10, window_seconds=600, min_messages=20)
OTR_RULE = ControlsRule(order_to_trade=OTR)


def test_order_to_trade_alarms_once_per_window_above_the_ratio():
    state = ControlsState()
    for i in range(30):
        state = record_message(state, float(i), OTR_RULE)
    _, state = record_fill(state, "AAPL", BUY, 30.0, OTR_RULE, desk=True)
    _, state = record_fill(state, "AAPL", BUY, 31.0, OTR_RULE, desk=True)
    alarm, state = order_to_trade_alarm(state, 40.0, OTR)
    assert alarm is not None and alarm.kind == "ORDER_TO_TRADE" and "ratio 15.0 (30 messages, 2 fills in 600 s) is above 10" in alarm.text
    assert order_to_trade_alarm(state, 100.0, OTR)[0] is None  # not again within the window
    for i in range(30):
        state = record_message(state, 700.0 + i, OTR_RULE)
    alarm, _ = order_to_trade_alarm(state, 740.0, OTR)  # the old messages and fills are out; 30 / no fill
    assert alarm is not None and "30 messages, 0 fills" in alarm.text


def test_order_to_trade_stays_quiet_under_the_ratio_or_the_minimum():
    state = ControlsState()
    for i in range(15):
        state = record_message(state, float(i), OTR_RULE)
    assert order_to_trade_alarm(state, 20.0, OTR)[0] is None  # 15 < min_messages
    for i in range(15, 40):
        state = record_message(state, float(i), OTR_RULE)
    for i in range(4):
        _, state = record_fill(state, "MSFT", SELL, 40.0 + i, OTR_RULE, desk=False)  # the rig's fills count here
    assert order_to_trade_alarm(state, 50.0, OTR)[0] is None  # 40 / 4 = 10: at the ratio, not over


# ----- repeated executions -----

REPEATED = ControlsRule(repeated_executions=RepeatedExecutionRule(max_fills=3, window_seconds=60))


def test_repeated_fills_in_one_symbol_and_side_throttle_the_account():
    state = ControlsState()
    for at, symbol, side in ((0.0, "AAPL", BUY), (10.0, "AAPL", SELL), (20.0, "MSFT", BUY), (30.0, "AAPL", BUY)):
        throttle, state = record_fill(state, symbol, side, at, REPEATED, desk=True)
        assert throttle is None
    _, state = record_fill(state, "AAPL", BUY, 35.0, REPEATED, desk=False)  # the rig's fill: not counted
    throttle, state = record_fill(state, "AAPL", BUY, 40.0, REPEATED, desk=True)
    assert throttle is not None and (throttle.symbol, throttle.side, throttle.fills) == ("AAPL", BUY, 3)
    request = throttle.request(TradingState.ACTIVE)
    assert request is not None and (request.state, request.by) == (TradingState.REDUCING, CONTROLS)
    assert request.reason == "REPEATED_EXECUTIONS: 3 BUY fills in AAPL within 60 s reach the limit of 3"
    assert throttle.request(TradingState.HALTED) is None and throttle.request(TradingState.REDUCING) is None
    # A minute after the first fill it is out of the window: two left, no throttle.
    assert record_fill(state, "AAPL", BUY, 61.0, REPEATED, desk=False)[0] is None
    assert record_fill(ControlsState(), "AAPL", BUY, 0.0, ControlsRule(), desk=True) == (None, ControlsState())


# ----- bounded, and readable from before -----


def test_a_state_carried_before_issue_25_still_loads():
    old = {"order_times": [1.0], "recent_orders": [{"symbol": "AAPL", "side": "BUY", "quantity": 5, "limit_price": None, "at": 1.0}]}
    state = ControlsState.model_validate(old)
    assert state.message_times == [] and state.activity == [] and state.executions == []


EVERYTHING = ControlsRule(
    message_rate=MessageRateRule(max_messages=50, window_seconds=1.0),
    order_to_trade=OrderToTradeRule(max_ratio=5, window_seconds=60, min_messages=10),
    repeated_executions=RepeatedExecutionRule(max_fills=1_000, window_seconds=3_600),
)


@given(events=st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.booleans(), st.integers(0, 5_000)), max_size=600))
def test_the_state_stays_bounded_at_any_rate(events):
    state, now = ControlsState(), 0.0
    for is_fill, symbol, buy, step_ms in events:
        now += step_ms / 1000
        if is_fill:
            _, state = record_fill(state, f"S{symbol}", BUY if buy else SELL, now, EVERYTHING, desk=True)
        else:
            state = record_message(state, now, EVERYTHING)
        _, state = order_to_trade_alarm(state, now, EVERYTHING.order_to_trade)
        assert len(state.message_times) <= 50 and len(state.activity) <= ACTIVITY_BUCKETS + 1 and len(state.executions) <= MAX_EXECUTIONS_KEPT
        if not is_fill:  # pruned to the window whenever a message is recorded
            assert all(now - t < 1.0 for t in state.message_times)
