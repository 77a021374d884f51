"""Fresh marks and the price collar's reference (domain/marks.py, domain/controls.py): the issue's
probes — a stale truth tick against a fresh L1, a collar with no fresh reference — and the
collar judged between two cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.controls import check_price_collar
from domain.enums import RejectReason
from domain.marketdata import L1, MarketDataRule, MarkSource, Print, market_view
from domain.marks import collar_reference_at, fresh_mark
from domain.rules import PriceCollarRule

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
COLLAR = PriceCollarRule(band_pct=5)
RULE = MarketDataRule()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def probe(l1_age: float = 5.0, print_age: float = 7200.0):
    """The issue's probe: a print at 10.00 `print_age` old, an L1 of 9.00 × 9.02 `l1_age` old."""
    now = at(7200)
    quote = L1(symbol="X", bid=9.00, ask=9.02, bid_size=500, ask_size=500, time=now - timedelta(seconds=l1_age))
    tick = Print(symbol="X", price=10.00, size=100, venue="N", time=now - timedelta(seconds=print_age))
    return market_view("X", now, quote, [tick], reference_price=12.0)


def test_a_two_hour_old_print_does_not_mark_against_a_fresh_l1():
    v = probe()
    assert (v.mark, v.mark_source, v.mark_stale) == (9.01, MarkSource.MID, False)


def test_the_collar_holds_limits_to_the_fresh_reference():
    reference = probe().collar_reference
    assert reference == 9.01
    # BUY 10.40 is 15% through the market: refused; SELL 9.00 at the live bid: passes.
    refusal = check_price_collar(10.40, reference, COLLAR)
    assert refusal is not None and refusal[0] is RejectReason.PRICE_COLLAR
    assert check_price_collar(9.00, reference, COLLAR) is None


def test_the_collar_fails_closed_when_nothing_is_fresh():
    v = probe(l1_age=600, print_age=7200)
    assert v.mark_stale and v.collar_reference is None and v.mark == 9.01  # exposure still has a (stale) mark
    refusal = check_price_collar(9.01, v.collar_reference, COLLAR)
    assert refusal is not None and refusal[0] is RejectReason.PRICE_COLLAR and "no fresh reference" in refusal[1]
    nothing = market_view("X", at(0), None, [], reference_price=12.0)
    assert nothing.mark_source is MarkSource.REFERENCE and check_price_collar(12.0, nothing.collar_reference, COLLAR) is not None
    assert check_price_collar(12.0, None, PriceCollarRule()) is None  # the collar off: nothing to refuse
    assert check_price_collar(None, None, COLLAR) is None  # a MARKET order has no limit to hold


def test_a_view_ages_into_staleness_between_two_cycles():
    v = probe(l1_age=5)
    ref, age = v.collar_reference, v.mark_age_seconds
    assert collar_reference_at(ref, age, v.as_of, v.as_of + timedelta(seconds=55), RULE.l1_max_age_seconds) == 9.01
    assert collar_reference_at(ref, age, v.as_of, v.as_of + timedelta(seconds=56), RULE.l1_max_age_seconds) is None
    assert collar_reference_at(None, None, v.as_of, v.as_of, 60) is None
    # The view's own: a mid is held to the L1's limit, a truth tick to the print's.
    assert v.collar_reference_at(v.as_of + timedelta(seconds=55), RULE) == 9.01
    assert v.collar_reference_at(v.as_of + timedelta(seconds=56), RULE) is None
    tick = probe(print_age=10)
    assert tick.mark_source is MarkSource.TRUTH_TICK and tick.mark == 9.02  # clamped to the ask
    assert tick.collar_reference_at(tick.as_of + timedelta(seconds=290), RULE) == 9.02
    assert tick.collar_reference_at(tick.as_of + timedelta(seconds=291), RULE) is None


@pytest.mark.parametrize(
    ("truth", "print_age", "bid", "ask", "l1_age", "expected"),
    [
        (10.00, 10, 9.99, 10.01, 5, (10.00, MarkSource.TRUTH_TICK, False, False)),
        (10.05, 10, 9.99, 10.01, 5, (10.01, MarkSource.TRUTH_TICK, False, True)),  # clamped to the ask
        (10.05, 10, 10.01, 9.99, 5, (10.01, MarkSource.TRUTH_TICK, False, True)),  # a crossed quote clamps into its range
        (10.05, 400, 9.99, 10.01, 5, (10.00, MarkSource.MID, False, False)),
        (10.05, 400, 9.99, 10.01, 70, (10.00, MarkSource.MID, True, False)),  # the L1 is the newer: its mid, stale
        (10.05, 50, None, None, None, (10.05, MarkSource.TRUTH_TICK, False, False)),
        (None, None, None, None, None, (12.0, MarkSource.REFERENCE, True, False)),
    ],
)
def test_fresh_mark_table(truth, print_age, bid, ask, l1_age, expected):
    m = fresh_mark(truth=truth, print_age=print_age, bid=bid, ask=ask, l1_age=l1_age, reference_price=12.0,
                   print_max_age_seconds=300, l1_max_age_seconds=60)  # fmt: skip
    assert (m.price, m.source, m.stale, m.clamped) == expected
    assert m.collar_reference == (None if m.stale else m.price)
