import math

import pytest

from domain.enums import Bucket, RejectReason, RiskMode, Side
from domain.models import AccountSnapshot, OpenOrder, Position
from domain.pretrade import RawIntent, check_order
from tests.builders import CONFIG, EQUITY, exposure_of, lt_mm_positions, marks_for


def check(mode=RiskMode.NORMAL, positions=None, orders=(), **fields):
    positions = lt_mm_positions(60, 10) if positions is None else positions
    orders = list(orders)
    base = dict(intent_id="i-1", account="acct", symbol="AAPL", side="BUY", quantity=10, limit_price=100.0)
    raw = RawIntent(**(base | fields))
    marks = marks_for(positions, orders)
    if isinstance(raw.symbol, str):
        marks[raw.symbol] = 100.0  # every test price is $100
    snapshot = AccountSnapshot(equity=EQUITY, positions=positions, open_orders=orders, marks=marks)
    return check_order(raw, snapshot, exposure_of(positions, orders), mode, CONFIG)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (dict(side="SIDEWAYS"), RejectReason.BAD_SIDE),
        (dict(side=None), RejectReason.BAD_SIDE),
        (dict(order_type="STOP"), RejectReason.BAD_ORDER_TYPE),
        (dict(quantity=0), RejectReason.BAD_QUANTITY),
        (dict(quantity=-5), RejectReason.BAD_QUANTITY),
        (dict(quantity=1.5), RejectReason.BAD_QUANTITY),
        (dict(quantity="10"), RejectReason.BAD_QUANTITY),
        (dict(quantity=math.nan), RejectReason.BAD_QUANTITY),
        (dict(symbol="NOPE"), RejectReason.UNKNOWN_SYMBOL),
        (dict(symbol="F", quantity=150, limit_price=12.0), RejectReason.NOT_LOT_MULTIPLE),
        (dict(limit_price=math.nan), RejectReason.BAD_PRICE),
        (dict(limit_price=math.inf), RejectReason.BAD_PRICE),
        (dict(limit_price=0), RejectReason.BAD_PRICE),
        (dict(limit_price=None), RejectReason.BAD_PRICE),
        (dict(bucket="HFT"), RejectReason.BAD_BUCKET),
        (dict(account=""), RejectReason.BAD_ACCOUNT),
        (dict(intent_id=None), RejectReason.MALFORMED_INTENT),
        (dict(quantity=60_000, limit_price=100.0), RejectReason.MAX_ORDER_NOTIONAL),
    ],
)
def test_malformed_intents_are_refused_with_their_own_reason(fields, reason):
    verdict = check(**fields)
    assert not verdict.approved and verdict.reason is reason, verdict.message


def test_a_plain_order_passes_in_normal():
    verdict = check()
    assert verdict.approved and verdict.risk_increasing and verdict.intent.bucket is Bucket.LT


@pytest.mark.parametrize("mode", [RiskMode.THROTTLE_NEW_ORDERS, RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK])
def test_risk_increasing_orders_are_refused_outside_normal_with_the_mode_as_reason(mode):
    verdict = check(mode=mode)
    assert not verdict.approved and verdict.reason is RejectReason.for_mode(mode)


@pytest.mark.parametrize("mode", list(RiskMode))
def test_reducing_orders_pass_in_every_mode(mode):
    verdict = check(mode=mode, side="SELL", quantity=100)
    assert verdict.approved and not verdict.risk_increasing


def test_reduce_only_that_would_increase_is_refused():
    verdict = check(side="BUY", reduce_only=True)
    assert verdict.reason is RejectReason.REDUCE_ONLY_WOULD_INCREASE


def test_potential_gross_may_not_reach_the_hard_cap():
    positions = lt_mm_positions(85, 25)  # 110% gross; LT potential room 5%
    # Buying 2000 XOM (LT) @ 100 = 20% → potential 130%: reaches the cap.
    verdict = check(positions=positions, symbol="XOM", quantity=2000, limit_price=100.0)
    assert verdict.reason is RejectReason.HARD_CAP, verdict.message
    ok = check(positions=positions, symbol="XOM", quantity=400, limit_price=100.0)
    assert ok.approved, ok.message


def test_bucket_potential_may_not_exceed_its_max():
    positions = lt_mm_positions(85, 10)
    verdict = check(positions=positions, symbol="XOM", quantity=600, limit_price=100.0)  # LT → 91%
    assert verdict.reason is RejectReason.BUCKET_MAX, verdict.message
    assert check(positions=positions, symbol="XOM", quantity=500, limit_price=100.0).approved  # exactly 90%


def test_open_orders_count_toward_the_worst_case():
    positions = lt_mm_positions(80, 10)
    orders = [OpenOrder(intent_id="o", symbol="XOM", bucket=Bucket.LT, side=Side.BUY, remaining=900)]
    verdict = check(positions=positions, orders=orders, symbol="XOM", quantity=200, limit_price=100.0)
    assert verdict.reason is RejectReason.BUCKET_MAX


def test_sell_against_a_long_with_open_buys_still_counts_the_worst_case():
    positions = [Position(symbol="AAPL", bucket=Bucket.LT, quantity=100)]
    # Long 100 with buy 50 open: a sell of 100 leaves the worst case at 150 — not increasing.
    orders = [OpenOrder(intent_id="o", symbol="AAPL", bucket=Bucket.LT, side=Side.BUY, remaining=50)]
    assert check(positions=positions, orders=orders, mode=RiskMode.HARD_DERISK, side="SELL", quantity=100).approved
    # A sell of 300 flips the worst case to short 200: increasing, refused in HARD.
    assert not check(positions=positions, orders=orders, mode=RiskMode.HARD_DERISK, side="SELL", quantity=300).approved
