"""Matching where the data is (domain/matching.py): the arrival against the L1 as of the arrival,
queue ahead at the order's price, prints after the arrival, a cross at the window's end; and
Hypothesis properties (never more than remains, never worse than the limit, deterministic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Side
from domain.marketdata import L1
from domain.matching import (
    Liquidity,
    Resting,
    arrive,
    book_execution,
    crossed_by,
    queue_ahead,
    trade_prints,
)

T0 = datetime(2024, 6, 3, 18, 0, tzinfo=UTC)


def l1(bid: float = 99.99, ask: float = 100.01, bid_size: int = 500, ask_size: int = 300) -> L1:
    return L1(symbol="AAPL", bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size, time=T0)


# --- arrival ----------------------------------------------------------------------------------


def test_a_marketable_arrival_takes_the_touch_up_to_its_size_and_rests_the_rest_alone():
    met = arrive(Side.BUY, 100.05, 1000, 1, l1(ask=100.01, ask_size=300))
    assert (met.take.quantity, met.take.price, met.take.liquidity) == (300, 100.01, Liquidity.TAKE)
    assert met.resting == Resting(ahead=0)  # a price level of its own
    met = arrive(Side.SELL, 99.90, 1000, 100, l1(bid=99.99, bid_size=250))
    assert (met.take.quantity, met.take.price) == (200, 99.99)  # whole lots


@pytest.mark.parametrize(
    ("side", "limit", "ahead"),
    [
        (Side.BUY, 99.99, 500),  # at the bid: the bid's displayed size is ahead
        (Side.BUY, 100.00, 0),  # inside the spread: a new best bid, nobody ahead
        (Side.BUY, 99.95, 500),  # behind the bid: L1 shows no deeper, the touch size is the estimate
        (Side.SELL, 100.01, 300),
        (Side.SELL, 100.00, 0),
        (Side.SELL, 100.10, 300),
    ],
)
def test_a_passive_arrival_has_the_displayed_size_at_its_price_ahead(side, limit, ahead):
    met = arrive(side, limit, 100, 1, l1())
    assert met.take.quantity == 0 and met.resting == Resting(ahead=ahead)
    assert queue_ahead(side, limit, l1()) == ahead
    assert queue_ahead(side, limit, None) == 0


def test_a_market_order_takes_the_touch_and_without_an_l1_waits():
    assert arrive(Side.SELL, None, 100, 1, l1()).take.price == 99.99
    met = arrive(Side.BUY, None, 100, 1, None)
    assert met.take.quantity == 0 and met.resting is None


# --- prints after the arrival ------------------------------------------------------------------


def test_volume_at_the_limit_works_off_the_queue_first():
    rest = Resting(ahead=500)
    r = trade_prints(Side.BUY, 100.00, 1000, 1, rest, [100.00, 100.00], [300, 100])
    assert r.match.quantity == 0 and r.resting == Resting(ahead=100)
    r = trade_prints(Side.BUY, 100.00, 1000, 1, rest, [100.00, 100.00, 100.00], [300, 100, 400])
    assert (r.match.quantity, r.match.price, r.match.liquidity) == (300, 100.00, Liquidity.PASSIVE)
    assert r.resting == Resting(ahead=0)


def test_volume_through_the_limit_fills_and_clears_the_queue():
    r = trade_prints(Side.BUY, 100.00, 1000, 1, Resting(ahead=5000), [100.00, 99.98, 100.00], [200, 150, 100])
    # 200 at the limit (ahead 5,000 left), then 150 below it: the level was taken, 150 + the later 100 fill.
    assert (r.match.quantity, r.resting) == (250, Resting(ahead=0))
    r = trade_prints(Side.SELL, 50.00, 300, 100, Resting(ahead=0), [50.02, 49.99], [250, 1000])
    assert r.match.quantity == 200 and r.match.price == 50.00  # whole lots; the 49.99 print is not at or through a 50.00 sell


def test_a_fill_never_exceeds_what_remains():
    r = trade_prints(Side.BUY, 100.00, 120, 100, Resting(), [99.0], [10_000])
    assert r.match.quantity == 120  # completes the order: a partial lot is fine then


def test_a_resting_order_the_quote_moved_through_fills_at_its_limit():
    m = crossed_by(Side.BUY, 100.05, 1000, 1, l1(bid=99.98, ask=100.00, ask_size=400))
    assert (m.quantity, m.price, m.liquidity) == (400, 100.05, Liquidity.PASSIVE)
    assert crossed_by(Side.SELL, 100.05, 1000, 1, l1()).quantity == 0  # bid 99.99 below a 100.05 sell
    assert crossed_by(Side.SELL, 100.05, 1000, 1, None).quantity == 0


@pytest.mark.parametrize(
    ("conditions", "venue", "book"),
    [("", "Q", True), ("@", "N", True), ("F", "Z", True), ("I", "Q", True), ("FI", "P", True), ("", "D", False),
     ("W", "Q", False), ("Z", "Q", False), ("T", "Q", False), ("4", "N", False), ("6", "N", True)],
)  # fmt: skip
def test_only_lit_book_executions_count(conditions, venue, book):
    assert book_execution(conditions, venue) is book


# --- properties -------------------------------------------------------------------------------

prices = st.integers(min_value=9_90, max_value=10_10).map(lambda c: c / 100)


@settings(max_examples=300)
@given(
    side=st.sampled_from(list(Side)),
    limit=prices,
    remaining=st.integers(0, 5_000),
    lot=st.sampled_from([1, 40, 100]),
    ahead=st.integers(0, 3_000),
    tape=st.lists(st.tuples(prices, st.integers(1, 2_000)), max_size=30),
    bid=prices,
    spread=st.integers(1, 5),
    sizes=st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)),
)
def test_prop_never_more_than_remains_never_worse_than_the_limit(side, limit, remaining, lot, ahead, tape, bid, spread, sizes):
    book = L1(symbol="AAPL", bid=bid, ask=round(bid + spread / 100, 2), bid_size=sizes[0], ask_size=sizes[1], time=T0)
    price, size = [p for p, _ in tape], [s for _, s in tape]
    r = trade_prints(side, limit, remaining, lot, Resting(ahead=ahead), price, size)
    assert r == trade_prints(side, limit, remaining, lot, Resting(ahead=ahead), price, size)  # deterministic
    met = arrive(side, limit, remaining, lot, book)
    cross = crossed_by(side, limit, remaining, lot, book)
    for m in (r.match, met.take, cross):
        assert 0 <= m.quantity <= remaining
        assert m.quantity % lot == 0 or m.quantity == remaining
        if m.quantity:
            assert m.price is not None and (m.price <= limit + 1e-9 if side is Side.BUY else m.price >= limit - 1e-9)
    # At-limit volume never reaches the order before `ahead` has traded there (nothing through).
    gap = [(limit - p) if side is Side.BUY else (p - limit) for p in price]
    if all(g <= 1e-9 for g in gap):
        at_volume = sum(s for g, s in zip(gap, size, strict=True) if abs(g) <= 1e-9)
        assert r.match.quantity <= max(0, at_volume - ahead)
        assert r.resting.ahead == max(0, ahead - at_volume)
