"""Issue 25's per-order controls (domain/controls/orders.py, rig.py), pure: quote sanity, the price band,
the MARKET collar, size vs ADV, notional per symbol, self-cross, and the rig's own orders checked and
clipped — each with its passing case at the limit and its refusal, and the shipped rules changing
nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.controls import (
    ControlsState,
    OrderTicket,
    RigOrder,
    TopOfBook,
    check_adv_share,
    check_controls,
    check_market_collar,
    check_price_band,
    check_quote,
    check_rig_order,
    check_self_cross,
    check_symbol_notional,
    clip_rig_quantity,
    top_of_book,
)
from domain.enums import Bucket, RejectReason, Side
from domain.marketdata import simulated_view
from domain.models import OpenOrder, Quote
from domain.rules import (
    AdvShareRule,
    ControlsRule,
    MarketCollarRule,
    MaxOrderQuantityRule,
    PriceBandRule,
    QuoteSanityRule,
    RigOrdersRule,
    SelfCrossRule,
    SymbolNotionalRule,
)

BUY, SELL = Side.BUY, Side.SELL
CLEAN = TopOfBook(bid=99.9, ask=100.1, bid_size=300, ask_size=200, age_seconds=1.0)
MAX_AGE = 60.0


# ----- quote sanity -----


@pytest.mark.parametrize(
    ("top", "words"),
    [
        (None, "no L1 quote"),
        (TopOfBook(bid=100.2, ask=100.1), "crossed: bid 100.2000 above ask 100.1000"),
        (TopOfBook(bid=100.0, ask=100.0), "locked: bid = ask = 100.0000"),
        (TopOfBook(bid=99.9, ask=100.1, bid_size=0, ask_size=200), "zero size"),
        (TopOfBook(bid=0.0, ask=100.1), "not finite and > 0"),
        (TopOfBook(bid=-1.0, ask=100.1), "not finite and > 0"),
        (TopOfBook(bid=math.nan, ask=100.1), "not finite and > 0"),
        (TopOfBook(bid=99.9, ask=100.1, age_seconds=60.5), "60.5 s old (limit 60 s)"),
        (TopOfBook(bid=99.9, ask=100.1, age_seconds=math.inf), "old"),
    ],
)
def test_a_quote_that_cannot_be_traded_on_is_refused(top, words):
    reason, message = check_quote(top, MAX_AGE)
    assert reason is RejectReason.BAD_QUOTE and words in message


def test_a_clean_quote_passes_even_without_sizes_or_age_and_at_the_age_limit():
    assert check_quote(CLEAN, MAX_AGE) is None
    assert check_quote(TopOfBook(bid=99.9, ask=100.1), MAX_AGE) is None  # a feed without sizes
    assert check_quote(CLEAN.model_copy(update={"age_seconds": 60.0}), MAX_AGE) is None


# ----- price band (limits vs the L1 mid) -----

BAND = PriceBandRule(band_pct=2)


def test_price_band_holds_a_limit_to_the_fresh_mid():
    assert check_price_band(102.0, CLEAN, MAX_AGE, BAND) is None  # exactly 2% from the mid 100
    reason, message = check_price_band(102.5, CLEAN, MAX_AGE, BAND)
    assert reason is RejectReason.PRICE_BAND and "2.50% from the L1 mid 100.0000" in message
    assert check_price_band(None, None, MAX_AGE, BAND) is None  # MARKET: the collar's job
    assert check_price_band(500.0, None, MAX_AGE, PriceBandRule()) is None  # off


def test_price_band_fails_closed_without_a_fresh_quote():
    for top in (None, CLEAN.model_copy(update={"age_seconds": 61.0}), TopOfBook(bid=0.0, ask=100.0)):
        reason, message = check_price_band(100.0, top, MAX_AGE, BAND)
        assert reason is RejectReason.PRICE_BAND and "no fresh L1" in message


# ----- the MARKET collar -----

COLLAR = MarketCollarRule(band_pct=1)


def test_a_market_buy_is_collared_against_the_ask_and_a_sell_against_the_bid():
    wide = TopOfBook(bid=97.0, ask=101.5, age_seconds=0.0)
    reason, message = check_market_collar(BUY, None, wide, 100.0, MAX_AGE, COLLAR)
    assert reason is RejectReason.PRICE_COLLAR and "the ask 101.5000 is 1.50% from the reference 100.0000" in message
    reason, message = check_market_collar(SELL, None, wide, 100.0, MAX_AGE, COLLAR)
    assert reason is RejectReason.PRICE_COLLAR and "the bid 97.0000" in message
    assert check_market_collar(BUY, None, TopOfBook(bid=99.0, ask=101.0), 100.0, MAX_AGE, COLLAR) is None  # exactly 1%
    assert check_market_collar(BUY, 150.0, wide, 100.0, MAX_AGE, COLLAR) is None  # a LIMIT: the price collar's job


def test_a_market_order_without_a_fresh_quote_or_reference_is_refused():
    stale = CLEAN.model_copy(update={"age_seconds": 120.0})
    for top, reference, words in ((None, 100.0, "no fresh L1"), (stale, 100.0, "no fresh L1"), (CLEAN, None, "no fresh reference")):
        reason, message = check_market_collar(BUY, None, top, reference, MAX_AGE, COLLAR)
        assert reason is RejectReason.PRICE_COLLAR and words in message
    assert check_market_collar(BUY, None, None, None, MAX_AGE, MarketCollarRule()) is None  # off: MARKET as before


# ----- size vs ADV, notional per symbol -----


def test_adv_share():
    rule = AdvShareRule(max_share=0.05)
    assert check_adv_share("AAPL", 50_000, 1_000_000, rule) is None  # exactly 5%
    reason, message = check_adv_share("AAPL", 50_001, 1_000_000, rule)
    assert reason is RejectReason.ADV_SHARE and "5.00% of AAPL's ADV 1,000,000, above the 5.00% limit" in message
    assert check_adv_share("AAPL", 10**40, 1_000_000, rule)[0] is RejectReason.ADV_SHARE  # absurd: refused, no overflow
    assert check_adv_share("AAPL", 1, 0, rule)[0] is RejectReason.ADV_SHARE  # no ADV: fails closed
    assert check_adv_share("AAPL", 10**9, 1, AdvShareRule()) is None


def test_symbol_notional_counts_the_position_and_open_orders_and_lets_reductions_pass():
    rule = SymbolNotionalRule(max_notional=100_000)
    # 500 held + 300 open buys + 200 = 1,000 × 100 = 100,000: at the limit.
    assert check_symbol_notional("AAPL", BUY, 200, position=500, open_same_side=300, mark=100.0, rule=rule) is None
    reason, message = check_symbol_notional("AAPL", BUY, 201, position=500, open_same_side=300, mark=100.0, rule=rule)
    assert reason is RejectReason.MAX_SYMBOL_NOTIONAL and "1,001 shares = 100,100.00" in message
    assert check_symbol_notional("AAPL", SELL, 400, position=5_000, open_same_side=0, mark=100.0, rule=rule) is None  # reduces
    assert check_symbol_notional("AAPL", SELL, 1_200, position=-500, open_same_side=0, mark=100.0, rule=rule)[0] is RejectReason.MAX_SYMBOL_NOTIONAL
    assert check_symbol_notional("AAPL", BUY, 1, position=0, open_same_side=0, mark=math.nan, rule=rule)[0] is RejectReason.MAX_SYMBOL_NOTIONAL


# ----- self-cross -----


def resting(side: Side, limit: float | None, symbol: str = "AAPL", name: str = "r1", remaining: int = 100) -> OpenOrder:
    return OpenOrder(intent_id=name, symbol=symbol, bucket=Bucket.LT, side=side, remaining=remaining, limit_price=limit)


SELF = SelfCrossRule(enabled=True)


@pytest.mark.parametrize(
    ("side", "limit", "book", "refused"),
    [
        (BUY, 100.0, [resting(SELL, 100.0)], True),  # at its own resting sell: would trade with itself
        (BUY, 100.5, [resting(SELL, 100.0)], True),
        (BUY, 99.99, [resting(SELL, 100.0)], False),
        (SELL, 100.0, [resting(BUY, 100.0)], True),
        (SELL, 100.01, [resting(BUY, 100.0)], False),
        (BUY, None, [resting(SELL, 150.0)], True),  # MARKET against any resting opposite
        (BUY, 1.0, [resting(SELL, None)], True),  # a resting MARKET crosses anything
        (BUY, 100.0, [resting(BUY, 100.0)], False),  # same side
        (BUY, 100.0, [resting(SELL, 100.0, symbol="MSFT")], False),  # another symbol
        (BUY, 100.0, [resting(SELL, 100.0, remaining=0)], False),  # nothing left
    ],
)
def test_self_cross(side, limit, book, refused):
    refusal = check_self_cross("AAPL", side, limit, book, SELF)
    assert (refusal is not None) == refused
    if refused:
        assert refusal[0] is RejectReason.SELF_CROSS and "the account's own resting" in refusal[1]
    assert check_self_cross("AAPL", side, limit, book, SelfCrossRule()) is None


# ----- all desk controls in one call -----


def ticket(side=BUY, quantity=100, limit=100.0, at=10.0) -> OrderTicket:
    return OrderTicket(symbol="AAPL", side=side, quantity=quantity, limit_price=limit, at=at)


def desk(order: OrderTicket, rule: ControlsRule, **overrides: Any) -> Any:
    facts: dict[str, Any] = dict(
        intended_duplicate=False, truth_tick=100.0, position=0, open_same_side=0, mark=100.0, equity=1e6, state=ControlsState(), rule=rule,
        top=CLEAN, adv=1_000_000, resting=(),
    )  # fmt: skip
    return check_controls(order, **(facts | overrides))


def test_the_shipped_rules_refuse_nothing_new_whatever_the_quote():
    crossed = TopOfBook(bid=101.0, ask=99.0, bid_size=0, ask_size=0, age_seconds=1e6)
    for order in (ticket(), ticket(limit=None), ticket(side=SELL, quantity=10**6, limit=500.0)):
        refusal, _ = desk(order, ControlsRule(), top=crossed, adv=0, resting=[resting(SELL, 1.0)])
        assert refusal is None


@pytest.mark.parametrize(
    ("rule", "order", "overrides", "reason"),
    [
        (ControlsRule(quote_sanity=QuoteSanityRule(enabled=True)), ticket(), {"top": TopOfBook(bid=100.2, ask=100.1)}, RejectReason.BAD_QUOTE),
        (ControlsRule(quote_sanity=QuoteSanityRule(enabled=True)), ticket(), {"top": None}, RejectReason.BAD_QUOTE),
        (ControlsRule(price_band=BAND), ticket(limit=103.0), {}, RejectReason.PRICE_BAND),
        (ControlsRule(market_collar=COLLAR), ticket(limit=None), {"top": TopOfBook(bid=95.0, ask=105.0)}, RejectReason.PRICE_COLLAR),
        (ControlsRule(adv_share=AdvShareRule(max_share=0.01)), ticket(quantity=10_001), {}, RejectReason.ADV_SHARE),
        (ControlsRule(symbol_notional=SymbolNotionalRule(max_notional=5_000)), ticket(quantity=51), {}, RejectReason.MAX_SYMBOL_NOTIONAL),
        (ControlsRule(self_cross=SELF), ticket(limit=100.0), {"resting": [resting(SELL, 99.0)]}, RejectReason.SELF_CROSS),
    ],
)
def test_each_new_control_refuses_through_check_controls(rule, order, overrides, reason):
    refusal, _ = desk(order, rule, **overrides)
    assert refusal is not None and refusal[0] is reason, refusal
    assert desk(order, ControlsRule(), **overrides)[0] is None  # the same order under the shipped rules


# ----- the rig's own orders -----

ON = ControlsRule(
    quote_sanity=QuoteSanityRule(enabled=True),
    price_band=PriceBandRule(band_pct=5),
    market_collar=COLLAR,
    max_order_quantity=MaxOrderQuantityRule(default=1_000),
    rig_orders=RigOrdersRule(size_limits=True),
)


def rig(order: RigOrder, top: TopOfBook | None, rule: ControlsRule = ON, reference: float | None = 100.0):
    return check_rig_order(order, top=top, reference=reference, rule=rule, max_order_notional=50_000.0, l1_max_age_seconds=MAX_AGE)


HARD_SELL = RigOrder(symbol="AAPL", side=SELL, quantity=400, limit_price=99.9)


def test_a_hard_sell_is_refused_on_a_crossed_quote_and_passes_on_the_next_clean_one():
    crossed = TopOfBook(bid=99.9, ask=99.5, bid_size=500, ask_size=500, age_seconds=0.5)
    reason, message = rig(HARD_SELL, crossed)
    assert reason is RejectReason.BAD_QUOTE and "crossed" in message
    assert rig(HARD_SELL, CLEAN) is None


def test_the_rig_checks_band_collar_and_size_and_the_shipped_rules_check_nothing():
    blown = TopOfBook(bid=50.0, ask=150.0, age_seconds=0.0)  # a HARD sell at a bid half the mid
    assert rig(RigOrder(symbol="AAPL", side=SELL, quantity=100, limit_price=50.0), blown)[0] is RejectReason.PRICE_BAND
    assert rig(RigOrder(symbol="AAPL", side=BUY, quantity=100, limit_price=None), blown)[0] is RejectReason.PRICE_COLLAR
    assert rig(HARD_SELL.model_copy(update={"quantity": 1_001}), CLEAN)[0] is RejectReason.MAX_ORDER_QUANTITY
    assert rig(HARD_SELL.model_copy(update={"quantity": 600}), CLEAN)[0] is RejectReason.MAX_ORDER_NOTIONAL  # 59,940 > 50,000
    for order in (HARD_SELL.model_copy(update={"quantity": 10**6}), RigOrder(symbol="AAPL", side=BUY, quantity=1, limit_price=None)):
        assert rig(order, TopOfBook(bid=101.0, ask=99.0, bid_size=0), rule=ControlsRule(), reference=None) is None


def test_a_rig_order_is_clipped_to_the_size_limits_in_whole_lots():
    assert clip_rig_quantity("AAPL", 5_000, 99.9, 1, rule=ON, max_order_notional=50_000.0) == 500  # 50,000 // 99.9
    assert clip_rig_quantity("AAPL", 5_000, 10.0, 100, rule=ON, max_order_notional=50_000.0) == 1_000  # max quantity, whole lots
    assert clip_rig_quantity("AAPL", 5_000, 99.9, 1_000, rule=ON, max_order_notional=50_000.0) == 0  # not one lot fits
    assert clip_rig_quantity("AAPL", 5_000, 99.9, 1, rule=ControlsRule(), max_order_notional=1.0) == 5_000  # off


@given(
    bid=st.floats(0.01, 1_000.0),
    spread=st.floats(-5.0, 5.0),
    bid_size=st.integers(0, 1_000),
    ask_size=st.integers(0, 1_000),
    age=st.floats(0.0, 120.0),
)
def test_quote_sanity_passes_exactly_the_two_sided_fresh_uncrossed_quotes(bid, spread, bid_size, ask_size, age):
    top = TopOfBook(bid=bid, ask=bid + spread, bid_size=bid_size, ask_size=ask_size, age_seconds=age)
    tradable = top.ask > top.bid > 0 and bid_size > 0 and ask_size > 0 and age <= MAX_AGE
    assert (check_quote(top, MAX_AGE) is None) == tradable


def test_top_of_book_from_a_view_carries_its_age_and_from_the_simulated_quote_is_fresh():
    then = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    view = simulated_view("AAPL", 190.0, then)
    top = top_of_book(view, Quote(truth_tick=190.0, bid=189.98, ask=190.02), then + timedelta(seconds=75))
    assert top is not None and (top.bid, top.ask, top.age_seconds) == (view.l1.bid, view.l1.ask, 75.0)
    assert check_quote(top, MAX_AGE) == (RejectReason.BAD_QUOTE, "L1 is 75 s old (limit 60 s)")
    assert top_of_book(view.model_copy(update={"l1": None}), Quote(truth_tick=1, bid=1, ask=1), then) is None
    assert top_of_book(None, Quote(truth_tick=190.0, bid=189.98, ask=190.02), then) == TopOfBook(bid=189.98, ask=190.02, age_seconds=0.0)
