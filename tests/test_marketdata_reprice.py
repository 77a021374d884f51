"""Repricing resting de-risk orders (domain/reprice.py) when the market moves away: SOFT and
HARD thresholds in ticks, a falling market, stale data skipped, escalation SOFT → HARD."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.enums import IntentKind, PriceRule, RiskMode, Side
from domain.marketdata import L1, MarketDataRule, Print, market_view
from domain.reprice import RestingDerisk, on_tick, plan_reprices, tick_size

T0 = datetime(2024, 6, 3, 18, 0, tzinfo=UTC)
RULE = MarketDataRule(reprice_ticks_soft=5, reprice_ticks_hard=2)
OFFSET = 0.01


def view(bid: float, ask: float, last: float, l1_age: float = 1.0, print_age: float = 1.0, symbol: str = "AAPL"):
    now = T0 + timedelta(seconds=1000)
    quote = L1(symbol=symbol, bid=bid, ask=ask, bid_size=500, ask_size=500, time=now - timedelta(seconds=l1_age))
    tick = Print(symbol=symbol, price=last, size=100, venue="Q", time=now - timedelta(seconds=print_age))
    return market_view(symbol, now, quote, [tick], reference_price=last)


def order(limit: float, side: Side = Side.SELL, kind: IntentKind = IntentKind.HARD_DERISK, intent_id: str = "o1", symbol: str = "AAPL"):
    return RestingDerisk(intent_id=intent_id, symbol=symbol, side=side, kind=kind, limit_price=limit)


def test_a_hard_sell_left_at_an_old_bid_in_a_falling_market_is_repriced_to_the_bid():
    plan = plan_reprices([order(100.00)], {"AAPL": view(99.90, 99.91, 99.90)}, RiskMode.HARD_DERISK, RULE, OFFSET)
    [r] = plan.reprices
    assert (r.intent_id, r.old_price, r.price, r.kind, r.price_rule) == ("o1", 100.00, 99.90, IntentKind.HARD_DERISK, PriceRule.AT_BID)
    assert r.ticks_away == pytest.approx(10)


def test_hard_leaves_orders_the_market_has_not_left_by_more_than_its_ticks():
    views = {"AAPL": view(99.98, 99.99, 99.98)}
    assert plan_reprices([order(100.00)], views, RiskMode.HARD_DERISK, RULE, OFFSET).reprices == []  # 2 ticks: not more than 2
    views = {"AAPL": view(99.97, 99.98, 99.97)}
    assert len(plan_reprices([order(100.00)], views, RiskMode.HARD_DERISK, RULE, OFFSET).reprices) == 1  # 3 ticks


def test_a_market_moving_toward_the_order_is_left_alone():
    # A sell below a rising bid is about to fill; a buy above a falling ask too.
    assert plan_reprices([order(100.00)], {"AAPL": view(100.20, 100.21, 100.20)}, RiskMode.HARD_DERISK, RULE, OFFSET).reprices == []
    buy = order(100.00, side=Side.BUY)
    assert plan_reprices([buy], {"AAPL": view(99.50, 99.51, 99.50)}, RiskMode.HARD_DERISK, RULE, OFFSET).reprices == []
    [r] = plan_reprices([buy], {"AAPL": view(100.10, 100.11, 100.10)}, RiskMode.HARD_DERISK, RULE, OFFSET).reprices
    assert (r.price, r.price_rule) == (100.11, PriceRule.AT_ASK)


def test_soft_reprices_to_the_fresh_truth_tick_less_the_offset_past_its_threshold():
    soft = order(100.00, kind=IntentKind.SOFT_DERISK)
    assert plan_reprices([soft], {"AAPL": view(99.95, 99.97, 99.96)}, RiskMode.SOFT_DERISK, RULE, OFFSET).reprices == []  # target 99.95: 5 ticks
    [r] = plan_reprices([soft], {"AAPL": view(99.80, 99.82, 99.81)}, RiskMode.SOFT_DERISK, RULE, OFFSET).reprices
    assert (r.price, r.kind, r.price_rule) == (99.80, IntentKind.SOFT_DERISK, PriceRule.NEAR_TRUTH_TICK)
    # HARD orders are HARD's business: SOFT leaves them.
    assert plan_reprices([order(100.00)], {"AAPL": view(99.00, 99.01, 99.00)}, RiskMode.SOFT_DERISK, RULE, OFFSET).reprices == []


def test_in_hard_a_working_soft_order_goes_to_the_touch_whatever_the_distance():
    soft = order(99.99, kind=IntentKind.SOFT_DERISK)
    [r] = plan_reprices([soft], {"AAPL": view(99.98, 99.99, 99.99)}, RiskMode.HARD_DERISK, RULE, OFFSET).reprices
    assert (r.price, r.kind, r.why) == (99.98, IntentKind.HARD_DERISK, "SOFT → HARD at the touch")


def test_stale_data_is_skipped_with_the_gates_reason_and_desk_orders_are_never_touched():
    views = {"AAPL": view(99.00, 99.01, 99.00, l1_age=61)}
    plan = plan_reprices([order(100.00)], views, RiskMode.HARD_DERISK, RULE, OFFSET)
    assert plan.reprices == [] and "STALE" not in plan.skipped["AAPL"] and "L1 61 s old" in plan.skipped["AAPL"]
    soft = order(100.00, kind=IntentKind.SOFT_DERISK)
    plan = plan_reprices([soft], {"AAPL": view(99.00, 99.01, 99.00, print_age=301)}, RiskMode.SOFT_DERISK, RULE, OFFSET)
    assert plan.reprices == [] and "301 s old" in plan.skipped["AAPL"]
    plan = plan_reprices([order(100.00, symbol="MSFT")], {}, RiskMode.HARD_DERISK, RULE, OFFSET)
    assert plan.skipped == {"MSFT": "MSFT: no market data"}
    desk = order(100.00, kind=IntentKind.NEW)
    assert plan_reprices([desk], {"AAPL": view(90.0, 90.01, 90.0)}, RiskMode.HARD_DERISK, RULE, OFFSET) == plan_reprices(
        [], {}, RiskMode.HARD_DERISK, RULE, OFFSET
    )
    assert plan_reprices([order(100.0)], {"AAPL": view(90.0, 90.01, 90.0)}, RiskMode.NORMAL, RULE, OFFSET).reprices == []


def test_a_falling_market_keeps_hard_repriced_cycle_after_cycle():
    # The bid falls 3 cents a cycle: each cycle the resting HARD sell is 3 ticks away, over 2.
    limit = 100.00
    prices = []
    for cycle in range(1, 6):
        bid = round(100.00 - 0.03 * cycle, 2)
        plan = plan_reprices([order(limit)], {"AAPL": view(bid, bid + 0.01, bid)}, RiskMode.HARD_DERISK, RULE, OFFSET)
        [r] = plan.reprices
        limit = r.price
        prices.append(limit)
    assert prices == [99.97, 99.94, 99.91, 99.88, 99.85]


@pytest.mark.parametrize(
    ("price", "side", "expected"), [(99.955, Side.SELL, 99.96), (99.955, Side.BUY, 99.95), (0.51234, Side.SELL, 0.5124), (12.0, Side.BUY, 12.0)]
)
def test_soft_prices_go_onto_the_tick_grid_never_more_aggressive(price, side, expected):
    assert on_tick(price, side) == expected
    assert tick_size(0.99) == 0.0001 and tick_size(1.0) == 0.01
