"""Commissions and fees (domain/costs.py), pure: hand-checked fills against published schedules, the
per-order minimum and caps across partial fills, fees on sells only, rebates negative, the broker's
reported figure replacing the computed one, and the rounding rules."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.load import load_rules
from domain.costs import (
    BrokerCommission,
    CommissionRule,
    CostError,
    CostSchedule,
    CostSource,
    ExchangeFeeRule,
    FillCost,
    RegulatoryFeeRule,
    cost_of_fill,
)
from domain.enums import Side
from domain.matching import Liquidity
from tests.test_production_profile import PRODUCTION

BUY, SELL = Side.BUY, Side.SELL
ADD, REMOVE = Liquidity.PASSIVE, Liquidity.TAKE  # adding liquidity, removing it

# IBKR Pro Fixed (US stocks): USD 0.005 per share, at least USD 1.00, at most 1% of trade value.
FIXED = CostSchedule(commission=CommissionRule(per_share=0.005, min_per_order=1.0, max_pct_of_notional=1.0))
# IBKR Pro Tiered (≤ 300,000 shares a month) with a taker fee, a maker rebate, clearing and the 2026 regulatory fees.
TIERED = CostSchedule(
    commission=CommissionRule(per_share=0.0035, min_per_order=0.35, max_pct_of_notional=1.0),
    exchange=ExchangeFeeRule(remove_per_share=0.0030, add_per_share=-0.0020),
    clearing_per_share=0.0002,
    regulatory=RegulatoryFeeRule(sec_fee_per_million=20.60, taf_per_share=0.000195, taf_max_per_trade=9.79),
)


@pytest.mark.parametrize(
    ("quantity", "price", "commission"),
    [(100, 25.0, 1.00), (1_000, 25.0, 5.00), (1_000, 0.25, 2.50)],  # IBKR's own Fixed examples: the minimum, per share, the 1% cap
)
def test_ibkr_fixed_examples(quantity, price, commission):
    cost = cost_of_fill(quantity, price, BUY, REMOVE, FIXED)
    assert (cost.commission, cost.total) == (commission, commission)


def test_a_tiered_sell_hand_checked():
    # SELL 1,000 @ 50 taking liquidity: 3.50 commission + 3.00 exchange + 0.20 clearing
    # + SEC 50,000 × 20.60 / 1e6 = 1.03 + TAF 1,000 × 0.000195 = 0.195 → up to 0.20.
    cost = cost_of_fill(1_000, 50.0, SELL, REMOVE, TIERED)
    assert cost == FillCost(commission=3.50, exchange=3.00, clearing=0.20, sec_fee=1.03, taf=0.20, total=7.93)


def test_regulatory_fees_are_on_sells_only_and_a_rebate_is_negative():
    bought = cost_of_fill(1_000, 50.0, BUY, ADD, TIERED)
    assert (bought.sec_fee, bought.taf) == (0.0, 0.0)
    assert bought.exchange == -2.00 and bought.total == pytest.approx(3.50 - 2.00 + 0.20)


def test_taf_is_capped_per_trade_and_small_fees_round_up_to_a_cent():
    big = cost_of_fill(100_000, 10.0, SELL, REMOVE, TIERED)
    assert (big.taf, big.sec_fee) == (9.79, 20.60)  # 19.50 capped; 1,000,000 × 20.60 / 1e6
    small = cost_of_fill(1, 100.0, SELL, REMOVE, TIERED)
    assert (small.sec_fee, small.taf) == (0.01, 0.01)  # 0.00206 and 0.000195, each up to the next cent


def test_the_minimum_is_per_order_charged_on_the_first_fill():
    first = cost_of_fill(10, 10.0, BUY, REMOVE, TIERED)
    second = cost_of_fill(10, 10.0, BUY, REMOVE, TIERED, order_shares_before=10, order_notional_before=100.0)
    assert (first.commission, second.commission) == (0.35, 0.0)  # 20 shares × 0.0035 = 0.07: still the minimum
    late = cost_of_fill(100, 10.0, BUY, REMOVE, TIERED, order_shares_before=100, order_notional_before=1_000.0)
    assert late.commission == 0.35  # 200 shares: 0.70 for the order, 0.35 of it charged already


def test_a_max_per_order_in_dollars_caps_the_order():
    schedule = CostSchedule(commission=CommissionRule(per_notional_bps=10.0, max_per_order=20.0))
    assert cost_of_fill(1_000, 100.0, BUY, REMOVE, schedule).commission == 20.0  # 10 bps of 100,000 = 100, capped
    assert cost_of_fill(10, 100.0, BUY, REMOVE, schedule).commission == 1.0


def test_a_broker_figure_replaces_the_computed_one():
    all_in = cost_of_fill(1_000, 50.0, SELL, REMOVE, TIERED, broker_commission=4.21)
    assert all_in == FillCost(commission=4.21, total=4.21, source=CostSource.BROKER)
    only = TIERED.model_copy(update={"broker_commission": BrokerCommission.COMMISSION_ONLY})
    cost = cost_of_fill(1_000, 50.0, SELL, REMOVE, only, broker_commission=1.00)
    assert (cost.commission, cost.sec_fee, cost.taf, cost.total, cost.source) == (1.00, 1.03, 0.20, 5.43, CostSource.BROKER)


def test_no_schedule_costs_nothing():
    assert cost_of_fill(1_000, 50.0, SELL, REMOVE, CostSchedule()) == FillCost()


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ((0, 10.0), {}, "fill quantity"),
        ((True, 10.0), {}, "fill quantity"),
        ((10, float("nan")), {}, "fill price"),
        ((10, -1.0), {}, "fill price"),
        ((10, 10.0), {"order_shares_before": -5}, "earlier fills"),
        ((10, 10.0), {"broker_commission": float("inf")}, "broker's commission"),
    ],
)
def test_a_fill_that_makes_no_sense_is_refused_in_one_line(args, kwargs, words):
    with pytest.raises(CostError, match=words):
        cost_of_fill(*args, BUY, REMOVE, TIERED, **kwargs)


def test_the_production_profile_charges_costs():
    schedule = load_rules(PRODUCTION).costs
    cost = cost_of_fill(1_000, 50.0, SELL, REMOVE, schedule)
    assert cost.commission > 0 and cost.sec_fee == 1.03 and cost.taf == 0.20 and cost.total > cost.commission


@given(
    fills=st.lists(st.tuples(st.integers(1, 5_000), st.integers(1, 500)), min_size=1, max_size=8),
    side=st.sampled_from([BUY, SELL]),
    liquidity=st.sampled_from([ADD, REMOVE]),
)
def test_an_orders_fills_add_up_to_its_commission_and_each_total_is_its_parts(fills, side, liquidity):
    shares, notional, paid = 0, 0.0, Decimal(0)
    for quantity, price in fills:  # whole-dollar prices: the order's notional is exact in binary
        cost = cost_of_fill(quantity, float(price), side, liquidity, TIERED, order_shares_before=shares, order_notional_before=notional)
        assert cost.commission >= 0 and Decimal(repr(cost.total)) == sum(
            Decimal(repr(x)) for x in (cost.commission, cost.exchange, cost.clearing, cost.sec_fee, cost.taf)
        )
        assert cost.exchange <= 0 if liquidity is ADD else cost.exchange >= 0  # a rebate when posting, a fee when taking (a share or two rounds to 0)
        assert str(cost.exchange) != "-0.0"
        assert (cost.sec_fee > 0) == (side is SELL)
        shares += quantity
        notional += quantity * price
        paid += Decimal(repr(cost.commission))
    # The order's commission by the schedule's words: 0.0035 a share, at least 0.35, at most 1% of the notional.
    expected = min(max(Decimal("0.0035") * shares, Decimal("0.35")), Decimal(repr(notional)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert paid == expected
