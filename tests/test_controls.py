import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.controls import (
    ControlsState,
    OrderTicket,
    check_controls,
    check_duplicate,
    check_max_order_quantity,
    check_max_position,
    check_order_rate,
    check_price_collar,
    check_restricted,
    record_order,
)
from domain.enums import RejectReason, Side
from domain.rules import (
    ControlsRule,
    DuplicateOrderRule,
    MaxOrderQuantityRule,
    MaxPositionRule,
    OrderRateRule,
    PriceCollarRule,
    RestrictedListRule,
)

BUY, SELL = Side.BUY, Side.SELL


# ----- restricted list -----


def test_restricted_list():
    rule = RestrictedListRule(symbols=["GME", "AMC"])
    assert check_restricted("AAPL", rule) is None
    reason, message = check_restricted("GME", rule)
    assert reason is RejectReason.RESTRICTED_SYMBOL and "GME is on the restricted list" in message
    assert check_restricted("GME", RestrictedListRule()) is None


# ----- max order quantity -----

QTY = MaxOrderQuantityRule(default=1000, per_symbol={"NVDA": 200, "SPY": 5000})


@pytest.mark.parametrize(
    ("symbol", "quantity", "refused", "words"),
    [
        ("AAPL", 1000, False, None),
        ("AAPL", 1001, True, "quantity 1,001 is above the max order quantity 1,000"),
        ("NVDA", 200, False, None),
        ("NVDA", 201, True, "quantity 201 is above NVDA's max order quantity 200"),
        ("SPY", 5000, False, None),  # an override may be above the default
        ("SPY", 5001, True, "SPY's max order quantity 5,000"),
        ("AAPL", 10**40, True, "above the max order quantity 1,000"),  # absurd: refused, no overflow
    ],
)
def test_max_order_quantity(symbol, quantity, refused, words):
    result = check_max_order_quantity(symbol, quantity, QTY)
    assert (result is not None) is refused
    if refused:
        assert result[0] is RejectReason.MAX_ORDER_QUANTITY and words in result[1]


def test_max_order_quantity_off():
    assert check_max_order_quantity("AAPL", 10**9, MaxOrderQuantityRule()) is None
    assert check_max_order_quantity("NVDA", 201, MaxOrderQuantityRule(per_symbol={"NVDA": 300})) is None


# ----- price collar -----

COLLAR = PriceCollarRule(band_pct=5)


@pytest.mark.parametrize(
    ("limit", "refused"),
    [(199.5, False), (199.51, True), (180.5, False), (180.49, True), (190.0, False), (None, False)],  # None: MARKET
)
def test_price_collar_at_and_past_the_band(limit, refused):
    result = check_price_collar(limit, 190.0, COLLAR)
    assert (result is not None) is refused
    if refused:
        reason, message = result
        assert reason is RejectReason.PRICE_COLLAR
        assert f"limit {limit:,.2f}" in message and "truth tick 190.00" in message and "5% price collar" in message


@pytest.mark.parametrize(("limit", "tick"), [(190.0, math.nan), (190.0, 0.0), (190.0, -1.0), (math.nan, 190.0), (1e308, 1e-300)])
def test_price_collar_fails_closed(limit, tick):
    assert check_price_collar(limit, tick, COLLAR)[0] is RejectReason.PRICE_COLLAR


def test_price_collar_off():
    assert check_price_collar(1000.0, 190.0, PriceCollarRule()) is None


# ----- max position -----

POSITION = MaxPositionRule(max_pct=25, per_symbol={"SPY": 50})  # 25% of 1,000,000 at $100 = 2,500 shares


def max_position(symbol="AAPL", side=BUY, quantity=500, position=1000, open_same_side=1000, mark=100.0, equity=1_000_000.0, rule=POSITION):
    return check_max_position(symbol, side, quantity, position=position, open_same_side=open_same_side, mark=mark, equity=equity, rule=rule)


def test_max_position_at_the_limit_with_open_orders_on_the_same_side():
    assert max_position(quantity=500) is None  # 1000 + 1000 open + 500 = 2500 = 25%
    reason, message = max_position(quantity=501)
    assert reason is RejectReason.MAX_POSITION
    assert "2,501 shares (25.01% of equity), above the max position 25%" in message and "AAPL" in message


def test_max_position_short_side():
    assert max_position(side=SELL, quantity=500, position=-2000, open_same_side=0) is None
    assert "-2,501 shares" in max_position(side=SELL, quantity=501, position=-2000, open_same_side=0)[1]


def test_max_position_ignores_open_orders_on_the_other_side():
    # Long 2000 with a 10,000-share sell resting: the buy of 500 takes the buy-side worst case to 2500.
    assert max_position(quantity=500, position=2000, open_same_side=0) is None


def test_an_order_toward_flat_passes_even_over_the_limit():
    assert max_position(side=SELL, quantity=100, position=5000, open_same_side=0) is None
    assert max_position(side=BUY, quantity=100, position=-5000, open_same_side=0) is None


def test_max_position_per_symbol_override_and_off():
    assert max_position(symbol="SPY", quantity=3000) is None  # 5000 shares = 50%
    assert max_position(symbol="SPY", quantity=3001) is not None
    assert max_position(quantity=10**6, rule=MaxPositionRule()) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mark=math.nan),
        dict(mark=0.0),
        dict(equity=0.0),
        dict(equity=math.inf),
        dict(quantity=10**40),
        dict(position=10**40, open_same_side=10**40),
    ],
)
def test_max_position_absurd_inputs_refuse_without_error(kwargs):
    assert max_position(**kwargs)[0] is RejectReason.MAX_POSITION


# ----- order rate -----

RATE = OrderRateRule(max_orders=3, window_seconds=60)


def test_order_rate_refuses_the_order_past_the_limit():
    refusal, kept = check_order_rate(30.0, [0.0, 10.0, 20.0], RATE)
    assert refusal[0] is RejectReason.ORDER_RATE
    assert "3 orders in the last 60 s reach the order rate limit of 3 per 60 s" in refusal[1]
    assert kept == [0.0, 10.0, 20.0]
    refusal, kept = check_order_rate(30.0, [10.0, 20.0], RATE)  # the third in the window passes
    assert refusal is None and kept == [10.0, 20.0]


def test_order_rate_window_rolls_and_prunes():
    refusal, kept = check_order_rate(60.0, [0.0, 10.0, 20.0], RATE)  # 0.0 is exactly 60 s old: outside
    assert refusal is None and kept == [10.0, 20.0]
    assert check_order_rate(1000.0, [-5000.0, 1.0, 999.0], RATE) == (None, [999.0])
    refusal, kept = check_order_rate(100.0, [float(t) for t in range(50, 100)] * 200, RATE)
    assert refusal is not None and kept == [99.0, 99.0, 99.0]  # bounded by the limit whatever came in


def test_order_rate_off_keeps_nothing():
    assert check_order_rate(5.0, [1.0, 2.0, 3.0, 4.0], OrderRateRule()) == (None, [])


@given(gaps=st.lists(st.floats(min_value=0, max_value=40, allow_nan=False), max_size=60))
def test_order_rate_never_lets_more_than_the_limit_into_any_window(gaps):
    now, times, accepted = 0.0, [], []
    for gap in gaps:
        now += gap
        refusal, times = check_order_rate(now, times, RATE)
        assert len(times) <= RATE.max_orders
        if refusal is None:
            accepted.append(now)
            times = [*times, now]
    for t in accepted:
        assert sum(1 for u in accepted if t - 60 < u <= t) <= 3


# ----- duplicative orders -----

DUP = DuplicateOrderRule(window_seconds=5)


def ticket(at, symbol="AAPL", side=BUY, quantity=100, limit_price=190.0):
    return OrderTicket(symbol=symbol, side=side, quantity=quantity, limit_price=limit_price, at=at)


def test_duplicate_within_the_window_is_refused():
    refusal, kept = check_duplicate(ticket(10.0), [ticket(6.0)], DUP)
    reason, message = refusal
    assert reason is RejectReason.DUPLICATIVE_ORDER
    assert "BUY 100 AAPL @ 190.00 repeats an order 4 s ago, within the 5 s duplicate window" in message
    assert "intended_duplicate" in message
    assert kept == [ticket(6.0)]


def test_duplicate_outside_the_window_passes_and_is_pruned():
    assert check_duplicate(ticket(11.0), [ticket(6.0)], DUP) == (None, [])  # exactly 5 s old: outside


@pytest.mark.parametrize(
    "other",
    [ticket(9.0, symbol="MSFT"), ticket(9.0, side=SELL), ticket(9.0, quantity=101), ticket(9.0, limit_price=190.01), ticket(9.0, limit_price=None)],
)
def test_a_different_order_is_no_duplicate(other):
    assert check_duplicate(ticket(10.0), [other], DUP)[0] is None


def test_market_orders_can_duplicate():
    assert check_duplicate(ticket(10.0, limit_price=None), [ticket(9.0, limit_price=None)], DUP)[0] is not None


def test_intended_duplicate_passes():
    refusal, kept = check_duplicate(ticket(10.0), [ticket(6.0)], DUP, intended_duplicate=True)
    assert refusal is None and kept == [ticket(6.0)]


def test_duplicate_guard_off():
    assert check_duplicate(ticket(10.0), [ticket(9.9)], DuplicateOrderRule()) == (None, [])


# ----- all controls together -----

RULE = ControlsRule(
    max_order_quantity=QTY,
    price_collar=COLLAR,
    max_position=POSITION,
    order_rate=RATE,
    duplicative_orders=DUP,
    restricted=RestrictedListRule(symbols=["GME"]),
)


def controls(order, state=ControlsState(), rule=RULE, **kw):
    facts = dict(intended_duplicate=False, truth_tick=190.0, position=0, open_same_side=0, mark=190.0, equity=1_000_000.0) | kw
    return check_controls(order, state=state, rule=rule, **facts)


def test_default_controls_pass_everything():
    state = ControlsState(order_times=[1.0] * 100, recent_orders=[ticket(9.0)])
    refusal, pruned = controls(ticket(10.0, quantity=10**6, limit_price=1e6), state=state, rule=ControlsRule())
    assert refusal is None and pruned == ControlsState()


@pytest.mark.parametrize(
    ("order", "kw", "reason"),
    [
        (ticket(10.0, symbol="GME", quantity=10**6), {}, RejectReason.RESTRICTED_SYMBOL),  # first in order
        (ticket(10.0, quantity=1001, limit_price=500.0), {}, RejectReason.MAX_ORDER_QUANTITY),
        (ticket(10.0, limit_price=500.0), {}, RejectReason.PRICE_COLLAR),
        (ticket(10.0, quantity=1000), dict(position=1000), RejectReason.MAX_POSITION),
        (ticket(10.0), dict(state=ControlsState(recent_orders=[ticket(9.0)])), RejectReason.DUPLICATIVE_ORDER),
        (ticket(10.0), dict(state=ControlsState(order_times=[8.0, 9.0, 9.5])), RejectReason.ORDER_RATE),
        (ticket(10.0), {}, None),
    ],
)
def test_check_controls_stops_at_the_first_refusal(order, kw, reason):
    refusal, _ = controls(order, **kw)
    assert (refusal and refusal[0]) == reason


def test_state_round_trip_through_record_order():
    state = ControlsState()
    for at in (0.0, 1.0, 2.0):
        refusal, state = controls(ticket(at, quantity=100 + int(at)), state=state)
        assert refusal is None
        state = record_order(state, ticket(at, quantity=100 + int(at)), RULE)
    refusal, state = controls(ticket(3.0, quantity=50), state=state)
    assert refusal[0] is RejectReason.ORDER_RATE and state.order_times == [0.0, 1.0, 2.0]
    refusal, state = controls(ticket(61.5, quantity=102), state=state)
    # 60 s later the rate window has room again and the duplicate window has emptied.
    assert refusal is None and state == ControlsState(order_times=[2.0], recent_orders=[])
    assert record_order(state, ticket(61.5), ControlsRule()) == ControlsState()  # controls off: nothing kept
