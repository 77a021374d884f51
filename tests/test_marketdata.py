"""Market data's pure core (domain/marketdata.py, domain/conditions.py): real prints on the SIP
tables, round lots, weights, truth tick, GRPAN, marks, stale-data gates, and the account's current
matching path, on hand-built prints; Hypothesis properties. Matching where the data is:
tests/test_marketdata_matching.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.conditions import CTA_CONDITIONS, ROUND_LOT_TIERS, TABLES, LastSale, RoundLotTier, SipPlan, last_sale, round_lot
from domain.enums import Side
from domain.market import quote_from_mark
from domain.marketdata import (
    L1,
    TRF_VENUE,
    FeedSource,
    FeedSpec,
    MarketDataReason,
    MarketDataRule,
    MarkSource,
    Print,
    Shock,
    grpan,
    hard_derisk_gate,
    is_real_print,
    market_view,
    print_weight,
    real_flags,
    simulated_view,
    soft_derisk_gate,
    truth_tick,
)
from domain.matching import Liquidity, match_order, match_passive, take

T0 = datetime(2024, 6, 3, 18, 0, tzinfo=UTC)  # 14:00 New York


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pr(price: float, size: int = 100, venue: str = "Q", conditions: str = "", t: float = 0.0, symbol: str = "AAPL") -> Print:
    return Print(symbol=symbol, price=price, size=size, venue=venue, conditions=conditions, time=at(t))


def l1(bid: float = 99.99, ask: float = 100.01, bid_size: int = 500, ask_size: int = 300, t: float = 0.0) -> L1:
    return L1(symbol="AAPL", bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size, time=at(t))


# --- real prints ------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", list(SipPlan))
def test_codes_that_never_update_last_keep_a_print_from_being_real(plan):
    never = {code for code, c in TABLES[plan].items() if c.last is LastSale.NO}
    assert {"I", "C", "N", "T", "U", "H", "7", "V", "M", "Q"} <= never
    assert ("W" in never) is (plan is SipPlan.UTP) and ("B" in never) is (plan is SipPlan.CTA)  # the average-price trade
    for code in never | {"W"}:  # W, unknown to CTA, counts as not updating last there too
        assert not is_real_print(pr(100.0, conditions=code), plan=plan)
        assert not is_real_print(pr(100.0, conditions=f"@ {code}"), plan=plan)  # also among other codes
        assert not is_real_print(pr(100.0, size=5000, venue="N", conditions=f"F{code}"), plan=plan, first_of_day=True)


@pytest.mark.parametrize("conditions", ["", "@", " ", "@ F", "F", "6", "@  X", "5", "9"])
def test_regular_and_last_updating_conditions_are_real(conditions):
    for plan in SipPlan:
        assert is_real_print(pr(100.0, conditions=conditions), plan=plan)


def test_b_is_read_per_plan():
    # CTA: average-price trade (never last); UTP: bunched trade (last eligible).
    assert not is_real_print(pr(100.0, conditions="B"), plan=SipPlan.CTA)
    assert is_real_print(pr(100.0, conditions="B"), plan=SipPlan.UTP)


@pytest.mark.parametrize(("plan", "code"), [(SipPlan.CTA, "Z"), (SipPlan.CTA, "R"), (SipPlan.UTP, "Z"), (SipPlan.UTP, "G"), (SipPlan.UTP, "R")])
def test_z_g_r_update_last_only_as_the_first_eligible_trade_of_the_day(plan, code):
    late = pr(9.50, conditions=code, t=60)
    assert not is_real_print(late, plan=plan) and is_real_print(late, plan=plan, first_of_day=True)
    # After a regular print: not the first, never the truth tick (the probe: Z at 9.50 after 10.00).
    assert truth_tick([pr(10.00, t=0), late], plan=plan).price == 10.00
    # The first eligible trade of the day: it sets the last sale.
    assert truth_tick([pr(9.40, conditions="T", t=-100), late], plan=plan).price == 9.50  # Form T does not count
    # Only the first one: a second late report is not the first of the day any more.
    assert truth_tick([late, pr(9.60, conditions=code, t=61)], plan=plan).price == 9.50
    assert real_flags([pr(9.60, conditions=code, t=61), late], plan=plan) == [False, True]  # by time, not input order


def test_a_late_z_print_after_a_regular_one_is_never_the_truth_tick():
    # The probe, on the default (CTA) table: a Z at 9.50 after a regular 10.00.
    assert truth_tick([pr(10.00, t=0), pr(9.50, conditions="Z", t=60)]).price == 10.00


def test_unknown_codes_do_not_update_last():
    assert last_sale("J", SipPlan.CTA) is LastSale.NO
    assert last_sale("G", SipPlan.CTA) is LastSale.NO  # G is on the UTP table only


def test_odd_lot_condition_is_not_real_whatever_the_size():
    assert not is_real_print(pr(100.0, size=99, conditions="I"))
    assert not is_real_print(pr(100.0, size=50, conditions="@ I"))


@pytest.mark.parametrize(("size", "real"), [(1, False), (19, False), (20, True), (21, True), (100, True)])
def test_prints_below_twenty_shares_are_not_real(size, real):
    assert is_real_print(pr(100.0, size=size)) is real


def test_min_size_is_configurable():
    assert is_real_print(pr(100.0, size=20), min_size=20)
    assert not is_real_print(pr(100.0, size=20), min_size=50)


# --- round lots -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "lot"),
    [(1.0, 100), (250.0, 100), (250.01, 40), (1_000.0, 40), (1_000.01, 10), (10_000.0, 10), (10_000.01, 1), (600_000.0, 1)],
)
def test_round_lot_tiers_are_the_sec_2024_ones(price, lot):
    assert round_lot(price) == lot


def test_round_lot_tiers_are_data_in_the_rule():
    tiers = (RoundLotTier(up_to=100.0, lot=100), RoundLotTier(up_to=None, lot=10))
    rule = MarketDataRule(round_lot_tiers=tiers)
    assert round_lot(150.0, rule.round_lot_tiers) == 10
    with pytest.raises(ValueError):
        MarketDataRule(round_lot_tiers=(RoundLotTier(up_to=100.0, lot=100),))  # no unbounded tier
    with pytest.raises(ValueError):
        MarketDataRule(round_lot_tiers=(RoundLotTier(up_to=500.0, lot=40), RoundLotTier(up_to=100.0, lot=100), RoundLotTier(up_to=None, lot=1)))


def test_min_print_size_binds_where_a_round_lot_is_smaller():
    # A $1,500 stock trades in round lots of 10: a 10-share print is a round lot (no "I"), yet
    # smaller than min_print_size 20, so it never sets the truth tick.
    assert round_lot(1_500.0) == 10
    prints = [pr(1_500.00, size=20, t=0), pr(1_510.00, size=10, t=1)]
    assert truth_tick(prints).price == 1_500.00
    assert truth_tick(prints, min_size=10).price == 1_510.00


# --- weights ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue", "size", "weight"),
    [
        ("Q", 100, 1.0), ("N", 37, 1.0), ("P", 350, 1.0), ("Z", 12_345, 1.0),  # exchanges: always 1
        (TRF_VENUE, 100, 1.0), (TRF_VENUE, 200, 1.0),  # TRF: exactly 100 or 200
        (TRF_VENUE, 300, 0.4), (TRF_VENUE, 500, 0.4), (TRF_VENUE, 10_000, 0.4),  # TRF round lots ≥ 300
        (TRF_VENUE, 20, 0.2), (TRF_VENUE, 99, 0.2), (TRF_VENUE, 150, 0.2), (TRF_VENUE, 250, 0.2), (TRF_VENUE, 301, 0.2),
    ],
)  # fmt: skip
def test_weights(venue, size, weight):
    assert print_weight(pr(100.0, size=size, venue=venue)) == pytest.approx(weight)


@pytest.mark.parametrize(("size", "weight"), [(40, 1.0), (80, 1.0), (120, 0.4), (400, 0.4), (100, 0.2), (45, 0.2)])
def test_trf_weights_follow_the_symbols_round_lot(size, weight):
    assert print_weight(pr(400.0, size=size, venue=TRF_VENUE), lot=40) == pytest.approx(weight)


# --- truth tick -------------------------------------------------------------------------------


def test_truth_tick_is_the_latest_real_print():
    prints = [pr(100.00, t=0), pr(100.05, t=2), pr(100.02, t=1)]
    assert truth_tick(prints).price == 100.05


def test_truth_tick_skips_odd_lots_small_and_condition_coded_prints():
    prints = [
        pr(100.00, t=0),
        pr(101.00, size=50, conditions="I", t=1),
        pr(102.00, size=10, t=2),
        pr(103.00, size=5000, venue=TRF_VENUE, conditions="W", t=3),
        pr(104.00, conditions="T", t=4),
    ]
    assert truth_tick(prints).price == 100.00


def test_truth_tick_tie_goes_to_the_later_print_in_input_order():
    assert truth_tick([pr(100.00, t=5), pr(100.01, t=5)]).price == 100.01
    assert truth_tick([pr(100.01, t=5), pr(100.00, t=5)]).price == 100.00


def test_no_real_print_no_truth_tick():
    assert truth_tick([]) is None
    assert truth_tick([pr(100.0, size=10), pr(100.0, conditions="I")]) is None


# --- GRPAN ------------------------------------------------------------------------------------


def test_grpan_is_the_weighted_mode():
    prints = [pr(10.00, t=0), pr(10.00, t=1), pr(10.01, t=2)]
    g = grpan(prints)
    assert g.price == 10.00
    assert g.prints == 3


def test_grpan_ties_go_to_the_price_traded_most_recently():
    assert grpan([pr(10.00, t=0), pr(10.10, t=1)]).price == 10.10
    assert grpan([pr(10.10, t=0), pr(10.00, t=1)]).price == 10.00
    # Equal totals, the later price's last print decides even if it also traded first.
    assert grpan([pr(10.10, t=0), pr(10.00, t=1), pr(10.10, t=2), pr(10.00, t=3)]).price == 10.00


def test_grpan_weights_trf_prints():
    # Three TRF prints of 150 shares (0.2 each = 0.6) lose to one exchange print (1.0).
    prints = [pr(10.00, size=150, venue=TRF_VENUE, t=i) for i in range(3)] + [pr(10.20, t=0.5)]
    assert grpan(prints).price == 10.20
    # Three TRF 300-share prints (0.4 each = 1.2) beat it.
    prints = [pr(10.00, size=300, venue=TRF_VENUE, t=i) for i in range(3)] + [pr(10.20, t=0.5)]
    assert grpan(prints).price == 10.00


def test_grpan_uses_only_the_last_fifteen_real_prints():
    old = [pr(10.00, t=i) for i in range(10)]
    recent = [pr(10.50 + (i % 2) * 0.01, t=100 + i) for i in range(15)]
    g = grpan(old + recent)
    assert g.prints == 15
    assert g.price == 10.50  # 8 prints at 10.50 against 7 at 10.51
    assert grpan(old + recent, window=30).price == 10.00  # 10 at 10.00 beat 8 at 10.50


def test_grpan_ignores_prints_that_are_not_real():
    prints = [pr(10.00, t=0), pr(10.30, size=10, t=1), pr(10.30, conditions="I", size=99, t=2), pr(10.30, conditions="4", t=3)]
    g = grpan(prints)
    assert (g.price, g.prints, g.concentration) == (10.00, 1, 1.0)


def test_concentration_is_the_weight_share_within_four_cents():
    prints = [
        pr(10.00, t=0), pr(10.00, t=1), pr(10.00, t=2),  # mode: 3.0
        pr(10.04, t=3),  # inside the band (edge): 1.0
        pr(9.96, size=300, venue=TRF_VENUE, t=4),  # inside (edge), TRF round lot: 0.4
        pr(10.05, t=5),  # outside: 1.0
        pr(9.90, size=150, venue=TRF_VENUE, t=6),  # outside, TRF odd size: 0.2
    ]  # fmt: skip
    g = grpan(prints)
    assert g.price == 10.00
    assert g.concentration == pytest.approx((3 + 1 + 0.4) / (3 + 1 + 0.4 + 1 + 0.2))


def test_grpan_band_is_configurable():
    prints = [pr(10.00, t=0), pr(10.00, t=1), pr(10.10, t=2)]
    assert grpan(prints, band=0.04).concentration == pytest.approx(2 / 3)
    assert grpan(prints, band=0.10).concentration == pytest.approx(1.0)


def test_no_real_print_no_grpan():
    assert grpan([pr(10.0, size=5)]) is None


# --- views and marks --------------------------------------------------------------------------


def test_mark_is_the_truth_tick_when_there_is_one():
    v = market_view("AAPL", at(10), l1(), [pr(100.00, t=4)], reference_price=90.0)
    assert (v.mark, v.mark_source, v.mark_stale, v.mark_clamped) == (100.00, MarkSource.TRUTH_TICK, False, False)
    assert v.truth_tick == 100.00 and v.grpan == 100.00 and v.concentration == 1.0
    assert v.print_age_seconds == pytest.approx(6.0) and v.mark_age_seconds == pytest.approx(6.0)
    assert v.l1_age_seconds == pytest.approx(10.0)
    assert v.collar_reference == 100.00


def test_a_fresh_truth_tick_outside_the_fresh_bid_ask_is_clamped_into_it():
    v = market_view("AAPL", at(10), l1(99.98, 100.02), [pr(100.05, t=4)], reference_price=90.0)
    assert (v.mark, v.mark_source, v.mark_clamped) == (100.02, MarkSource.TRUTH_TICK, True)
    v = market_view("AAPL", at(10), l1(99.98, 100.02), [pr(99.90, t=4)], reference_price=90.0)
    assert (v.mark, v.mark_clamped) == (99.98, True)
    # A stale L1 is no current bid/ask: the fresh truth tick stands.
    v = market_view("AAPL", at(100), l1(99.98, 100.02, t=0), [pr(100.05, t=90)], reference_price=90.0)
    assert (v.mark, v.mark_source, v.mark_clamped) == (100.05, MarkSource.TRUTH_TICK, False)


def test_mark_falls_back_to_the_mid_then_the_reference():
    odd_only = [pr(100.5, size=50, conditions="I")]
    v = market_view("AAPL", at(10), l1(99.98, 100.02), odd_only, reference_price=90.0)
    assert (v.mark, v.mark_source, v.mark_stale) == (100.0, MarkSource.MID, False)
    assert v.truth_tick is None and v.grpan is None and v.print_age_seconds is None
    v = market_view("AAPL", at(10), None, odd_only, reference_price=90.0)
    assert (v.mark, v.mark_source, v.mark_stale, v.mark_age_seconds) == (90.0, MarkSource.REFERENCE, True, None)
    assert v.l1 is None and v.l1_age_seconds is None and v.collar_reference is None
    with pytest.raises(ValueError):
        market_view("AAPL", at(10), None, [], reference_price=None)


def test_a_stale_truth_tick_gives_way_to_a_fresh_mid():
    # The probe: a 2-hour-old print at 10.00, a fresh L1 of 9.00 × 9.02.
    v = market_view("AAPL", at(7200), l1(9.00, 9.02, t=7195), [pr(10.00, t=0)], reference_price=12.0)
    assert (v.mark, v.mark_source, v.mark_stale) == (9.01, MarkSource.MID, False)
    assert v.mark_age_seconds == pytest.approx(5.0) and v.print_age_seconds == pytest.approx(7200.0)


def test_nothing_fresh_gives_the_newest_mark_flagged_stale_with_its_age():
    v = market_view("AAPL", at(1000), l1(9.00, 9.02, t=600), [pr(10.00, t=0)], reference_price=12.0)
    assert (v.mark, v.mark_source, v.mark_stale) == (9.01, MarkSource.MID, True)
    assert v.mark_age_seconds == pytest.approx(400.0)
    assert v.collar_reference is None
    v = market_view("AAPL", at(1000), l1(9.00, 9.02, t=0), [pr(10.00, t=600)], reference_price=12.0)
    assert (v.mark, v.mark_source, v.mark_stale, v.mark_age_seconds) == (10.00, MarkSource.TRUTH_TICK, True, 400.0)


def test_a_view_never_looks_ahead():
    prints = [pr(100.00, t=0), pr(105.00, t=11)]
    v = market_view("AAPL", at(10), l1(t=12), prints, reference_price=90.0)
    assert v.truth_tick == 100.00
    assert v.l1 is None  # the quote is stamped after as_of
    assert market_view("AAPL", at(11), None, prints, 90.0).truth_tick == 105.00  # at as_of: visible


def test_a_view_ignores_other_symbols():
    v = market_view("AAPL", at(10), None, [pr(50.0, symbol="MSFT")], reference_price=90.0)
    assert v.mark_source is MarkSource.REFERENCE


def test_simulated_view_follows_quote_from_mark():
    for mark in (12.0, 100.0, 190.37, 880.0):
        v = simulated_view("AAPL", mark, T0)
        q = quote_from_mark(mark)
        assert (v.truth_tick, v.l1.bid, v.l1.ask) == (q.truth_tick, q.bid, q.ask)
        assert v.source is FeedSource.MARKS and v.mark_source is MarkSource.TRUTH_TICK
        assert soft_derisk_gate(v).may_act and hard_derisk_gate(v).may_act


# --- stale-data gates -------------------------------------------------------------------------


def test_soft_needs_a_fresh_real_print():
    rule = MarketDataRule()
    fresh = market_view("AAPL", at(300), l1(t=290), [pr(100.0, t=0)], 90.0)
    stale = market_view("AAPL", at(301), l1(t=290), [pr(100.0, t=0)], 90.0)
    assert soft_derisk_gate(fresh, rule).may_act
    gate = soft_derisk_gate(stale, rule)
    assert not gate.may_act and gate.reason is MarketDataReason.STALE_DATA
    assert "301 s old" in gate.detail and "300" in gate.detail
    none = soft_derisk_gate(market_view("AAPL", at(1), l1(), [], 90.0), rule)
    assert none.reason is MarketDataReason.STALE_DATA and "no real print" in none.detail


def test_hard_needs_a_fresh_l1():
    rule = MarketDataRule()
    assert hard_derisk_gate(market_view("AAPL", at(60), l1(t=0), [], 90.0), rule).may_act
    gate = hard_derisk_gate(market_view("AAPL", at(61), l1(t=0), [pr(100.0, t=60)], 90.0), rule)
    assert not gate.may_act and gate.reason is MarketDataReason.STALE_DATA and "L1 61 s old" in gate.detail
    assert not hard_derisk_gate(market_view("AAPL", at(1), None, [], 90.0), rule).may_act


def test_gate_limits_come_from_the_rule():
    v = market_view("AAPL", at(100), l1(t=0), [pr(100.0, t=0)], 90.0)
    assert not hard_derisk_gate(v, MarketDataRule()).may_act
    assert hard_derisk_gate(v, MarketDataRule(l1_max_age_seconds=120)).may_act
    assert not soft_derisk_gate(v, MarketDataRule(print_max_age_seconds=30)).may_act


def test_rule_defaults_and_validation():
    rule = MarketDataRule()
    assert (rule.print_max_age_seconds, rule.l1_max_age_seconds) == (300, 60)
    assert (rule.min_print_size, rule.grpan_window, rule.grpan_band) == (20, 15, 0.04)
    assert (rule.reprice_ticks_soft, rule.reprice_ticks_hard, rule.round_lot_tiers) == (5, 2, ROUND_LOT_TIERS)
    with pytest.raises(ValueError):
        MarketDataRule(reprice_ticks_hard=0)
    with pytest.raises(ValueError):
        MarketDataRule(l1_max_age_seconds=0)
    with pytest.raises(ValueError):
        MarketDataRule(queue_fill_probability=1.5)


def test_feed_spec_needs_its_source_settings():
    assert FeedSpec().source is FeedSource.MARKS
    with pytest.raises(ValueError):
        FeedSpec(source=FeedSource.RECORDED)
    with pytest.raises(ValueError):
        FeedSpec(source=FeedSource.GENERATED)
    assert Shock(at="14:00", move_pct=-5).applies_to("ANY")
    assert Shock(at="14:00", symbols="ALL", move_pct=-5).symbols == "all"
    assert Shock(at="14:00", symbols="AAPL", move_pct=-5).symbols == ("AAPL",)
    assert Shock.model_validate({"at": "14:00", "symbols": ["AAPL", "MSFT"], "move_pct": 3}).applies_to("MSFT")
    assert not Shock(at="14:00", symbols=("AAPL",), move_pct=-5).applies_to("MSFT")
    with pytest.raises(ValueError):
        Shock(at="25:00", move_pct=1)


# --- matching: the account's current path (domain/matching.py `match_order`) ---------------------------------------------------------------------------------


def test_marketable_buy_takes_the_ask_up_to_its_size():
    m = take(Side.BUY, 100.05, 1000, 1, l1(ask=100.01, ask_size=300))
    assert (m.quantity, m.price, m.liquidity) == (300, 100.01, Liquidity.TAKE)
    m = take(Side.BUY, 100.01, 200, 1, l1(ask=100.01, ask_size=300))
    assert (m.quantity, m.price) == (200, 100.01)


def test_marketable_sell_hits_the_bid_in_whole_lots():
    m = take(Side.SELL, 99.90, 1000, 100, l1(bid=99.99, bid_size=250))
    assert (m.quantity, m.price) == (200, 99.99)
    assert take(Side.SELL, 99.90, 1000, 100, l1(bid=99.99, bid_size=50)).quantity == 0


def test_market_order_takes_the_touch_and_needs_an_l1():
    assert take(Side.SELL, None, 100, 1, l1()).price == 99.99
    assert match_order(Side.BUY, None, 100, 1, None, [], T0, random.Random(1)).quantity == 0


def test_a_limit_behind_the_touch_is_not_marketable():
    assert take(Side.BUY, 100.00, 100, 1, l1(ask=100.01)).quantity == 0
    assert take(Side.SELL, 100.00, 100, 1, l1(bid=99.99)).quantity == 0


def test_passive_fills_from_volume_traded_through_the_limit():
    prints = [pr(99.98, size=150, t=1), pr(99.97, size=100, t=2)]  # both below a 100.00 buy
    m = match_passive(Side.BUY, 100.00, 1000, 1, prints, T0, random.Random(1), queue_fill_probability=0.0)
    assert (m.quantity, m.price, m.liquidity) == (250, 100.00, Liquidity.PASSIVE)


def test_passive_at_the_limit_depends_on_the_queue_draw():
    prints = [pr(100.00, size=400, t=1)]
    reached = match_passive(Side.SELL, 100.00, 300, 1, prints, T0, random.Random(1), queue_fill_probability=1.0)
    assert (reached.quantity, reached.price) == (300, 100.00)
    missed = match_passive(Side.SELL, 100.00, 300, 1, prints, T0, random.Random(1), queue_fill_probability=0.0)
    assert missed.quantity == 0 and "queue" in missed.detail


def test_passive_ignores_trf_late_and_earlier_prints_and_prints_away_from_the_limit():
    prints = [
        pr(99.90, size=500, venue=TRF_VENUE, t=1),  # off-exchange
        pr(99.90, size=500, conditions="W", t=2),  # average price: not the book
        pr(99.90, size=500, t=-1),  # before the last check
        pr(100.02, size=500, t=3),  # above a 100.00 buy: not at or through
    ]  # fmt: skip
    m = match_passive(Side.BUY, 100.00, 100, 1, prints, T0, random.Random(1), queue_fill_probability=1.0)
    assert m.quantity == 0


def test_passive_counts_odd_lots_and_rounds_to_lots():
    prints = [pr(11.98, size=60, conditions="I", t=1), pr(11.98, size=190, t=2)]
    m = match_passive(Side.BUY, 12.00, 1000, 100, prints, T0, random.Random(1), queue_fill_probability=0.0)
    assert m.quantity == 200  # 250 traded through, whole lots of 100


def test_match_order_takes_when_marketable_else_rests():
    rng = random.Random(3)
    prints = [pr(99.95, size=100, t=1)]
    take = match_order(Side.BUY, 100.05, 1000, 1, l1(ask=100.01, ask_size=300), prints, T0, rng)
    assert (take.quantity, take.price, take.liquidity) == (300, 100.01, Liquidity.TAKE)
    rest = match_order(Side.BUY, 100.00, 1000, 1, l1(ask=100.01), prints, T0, rng)
    assert (rest.quantity, rest.price, rest.liquidity) == (100, 100.00, Liquidity.PASSIVE)


def test_the_same_stream_gives_the_same_match():
    prints = [pr(100.00, size=400, t=1)]
    first = [match_passive(Side.BUY, 100.00, 100, 1, prints, T0, random.Random(f"7|o{i}|2")) for i in range(20)]
    again = [match_passive(Side.BUY, 100.00, 100, 1, prints, T0, random.Random(f"7|o{i}|2")) for i in range(20)]
    assert first == again
    assert {m.quantity for m in first} == {0, 100}  # both outcomes of the queue draw occur


# --- properties -------------------------------------------------------------------------------

NEVER_LAST = {code for code, c in CTA_CONDITIONS.items() if c.last is LastSale.NO}
CONDITION_CHARS = sorted(NEVER_LAST | {"@", " ", "F", "O", "6", "Z", "X"})
prices = st.integers(min_value=9_90, max_value=10_10).map(lambda c: c / 100)
print_strategy = st.builds(
    pr,
    price=prices,
    size=st.one_of(st.integers(1, 99), st.sampled_from([100, 200, 300, 500, 1000]), st.integers(1, 20_000)),
    venue=st.sampled_from(["Q", "N", "Z", TRF_VENUE]),
    conditions=st.text(alphabet=CONDITION_CHARS, max_size=4),
    t=st.integers(0, 5).map(float),  # few distinct times: many simultaneous prints
)


@given(st.lists(print_strategy, max_size=40))
def test_prop_an_odd_lot_or_condition_coded_print_never_becomes_the_truth_tick(prints):
    tick = truth_tick(prints)
    if tick is not None:
        assert tick.size >= 20
        assert not (set(tick.conditions) & NEVER_LAST)
        if last_sale(tick.conditions) is LastSale.FIRST:  # only as the day's first eligible trade
            assert all(last_sale(p.conditions) is LastSale.NO for p in prints if p.time < tick.time)
    assert (tick is None) == (not any(real_flags(prints)))


@given(st.lists(print_strategy, max_size=40), st.randoms(use_true_random=False))
def test_prop_grpan_is_invariant_to_order_within_equal_timestamps(prints, rnd):
    # First-of-day-only codes are out: which of two simultaneous prints came first is their
    # file order, and it decides whether a Z is the day's first eligible trade.
    prints = [p for p in prints if last_sale(p.conditions) is not LastSale.FIRST]
    shuffled = list(prints)
    rnd.shuffle(shuffled)
    shuffled.sort(key=lambda p: p.time)  # same times in order; simultaneous prints in any order
    assert grpan(shuffled) == grpan(prints)


@given(st.lists(print_strategy, max_size=40), st.floats(0, 0.5))
def test_prop_concentration_is_a_share(prints, band):
    g = grpan(prints, band=band)
    if g is not None:
        assert 0 < g.concentration <= 1
        assert g.price in {round(p.price, 6) for p, real in zip(prints, real_flags(prints), strict=True) if real}


@settings(max_examples=200)
@given(
    side=st.sampled_from(list(Side)),
    limit=st.one_of(st.none(), prices),
    remaining=st.integers(0, 5_000),
    lot=st.sampled_from([1, 100]),
    bid=prices,
    spread=st.integers(1, 5),
    sizes=st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)),
    prints=st.lists(print_strategy, max_size=20),
    seed=st.integers(0, 2**32),
    queue=st.floats(0, 1),
)
def test_prop_matching_never_overfills_nor_fills_worse_than_the_limit(side, limit, remaining, lot, bid, spread, sizes, prints, seed, queue):
    remaining = remaining // lot * lot
    book = L1(symbol="AAPL", bid=bid, ask=round(bid + spread / 100, 2), bid_size=sizes[0], ask_size=sizes[1], time=T0)
    m = match_order(side, limit, remaining, lot, book, prints, at(-1), random.Random(seed), MarketDataRule(queue_fill_probability=queue))
    assert 0 <= m.quantity <= remaining
    assert m.quantity % lot == 0 or m.quantity == remaining
    if m.quantity:
        assert m.price is not None
        if limit is not None:
            assert m.price <= limit + 1e-9 if side is Side.BUY else m.price >= limit - 1e-9
        if m.liquidity is Liquidity.TAKE:
            assert m.price == (book.ask if side is Side.BUY else book.bid)
            assert m.quantity <= (book.ask_size if side is Side.BUY else book.bid_size)
    else:
        assert m.price is None
