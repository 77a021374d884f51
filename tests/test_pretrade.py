import math

import pytest

from domain.enums import Bucket, Regime, RejectReason, RiskMode, Side
from domain.models import OpenOrder, Position, Quote
from domain.pretrade import Verdict, judge, parse_intent
from tests.builders import CONFIG, exposure_of, lt_mm_positions

QUOTE = Quote(truth_tick=100.0, bid=99.99, ask=100.01)  # every test price is $100


def check(mode=RiskMode.NORMAL, positions=None, orders=(), regime=Regime.MID, quote=QUOTE, **fields):
    positions = lt_mm_positions(60, 10) if positions is None else positions
    orders = list(orders)
    base = dict(intent_id="i-1", account="acct", symbol="AAPL", side="BUY", quantity=10, limit_price=100.0)
    parsed = parse_intent({k: v for k, v in (base | fields).items() if v is not ...}, CONFIG)
    if isinstance(parsed, Verdict):
        return parsed
    return judge(
        parsed, exposure=exposure_of(positions, orders), positions=positions, open_orders=orders, quote=quote, mode=mode, regime=regime, config=CONFIG
    )


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


# ── issue 11: reduce-only never flips, desk intents cannot set the rig's fields, row 5 with the order ──
LONG_1000 = [Position(symbol="AAPL", bucket=Bucket.LT, quantity=1000)]


@pytest.mark.parametrize("mode", [RiskMode.NORMAL, RiskMode.HARD_DERISK])
def test_reduce_only_oversize_is_refused_in_any_mode(mode):
    verdict = check(positions=LONG_1000, mode=mode, side="SELL", quantity=1900, reduce_only=True)
    assert verdict.reason is RejectReason.REDUCE_ONLY_WOULD_FLIP, verdict.message
    assert "past zero" in verdict.message and "+1,000" in verdict.message
    assert check(positions=LONG_1000, mode=mode, side="SELL", quantity=1000, reduce_only=True).approved


def test_reduce_only_counts_the_other_open_reduce_only_orders_on_that_side():
    working = [OpenOrder(intent_id="r1", symbol="AAPL", bucket=Bucket.LT, side=Side.SELL, remaining=700, reduce_only=True)]
    assert check(positions=LONG_1000, orders=working, side="SELL", quantity=300, reduce_only=True).approved
    verdict = check(positions=LONG_1000, orders=working, side="SELL", quantity=400, reduce_only=True)
    assert verdict.reason is RejectReason.REDUCE_ONLY_WOULD_FLIP and "700 already working" in verdict.message
    # A desk order that is not reduce-only does not use up the reduce-only room.
    plain = [OpenOrder(intent_id="p1", symbol="AAPL", bucket=Bucket.LT, side=Side.SELL, remaining=700)]
    assert check(positions=LONG_1000, orders=plain, side="SELL", quantity=1000, reduce_only=True).approved


@pytest.mark.parametrize("field", ["kind", "price_rule", "issued_in_mode", "replaces"])
def test_a_desk_intent_may_not_set_the_rigs_fields(field):
    value = {"kind": "SOFT_DERISK", "price_rule": "AT_BID", "issued_in_mode": "HARD_DERISK", "replaces": "x"}[field]
    verdict = check(**{field: value})
    assert verdict.reason is RejectReason.MALFORMED_INTENT and repr(field) in verdict.message


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (dict(quantity=10**400), RejectReason.BAD_QUANTITY),
        (dict(quantity=-(10**400)), RejectReason.BAD_QUANTITY),
        (dict(limit_price=10**400), RejectReason.BAD_PRICE),
        (dict(limit_price="NaN"), RejectReason.BAD_PRICE),
        (dict(limit_price=1e300), RejectReason.BAD_PRICE),
        (dict(quantity=True), RejectReason.BAD_QUANTITY),
        (dict(symbol="ÄÖÜ"), RejectReason.UNKNOWN_SYMBOL),
        (dict(limit_prize=100.0), RejectReason.MALFORMED_INTENT),
        (dict(reduce_only="yes"), RejectReason.MALFORMED_INTENT),
        (dict(intent_id="x" * 500), RejectReason.MALFORMED_INTENT),
    ],
)
def test_absurd_values_are_refused_before_any_arithmetic(fields, reason):
    verdict = check(**fields)
    assert not verdict.approved and verdict.reason is reason, verdict.message
    assert len(verdict.message) < 300  # a 400-digit number is not echoed back


def test_row5_is_applied_with_the_order_added_in_close():
    # CLOSE: tolerance 100%. 95% gross: a buy of 6% would take potential to 101%: refused before the breach.
    positions = lt_mm_positions(70, 25)
    verdict = check(positions=positions, regime=Regime.CLOSE, symbol="XOM", quantity=600)
    assert verdict.reason is RejectReason.REGIME_TOLERANCE and "CLOSE tolerance 100%" in verdict.message
    assert check(positions=positions, regime=Regime.CLOSE, symbol="XOM", quantity=500).approved  # exactly 100%


def test_market_orders_are_valued_at_the_quote_not_a_reference_price():
    expensive = Quote(truth_tick=1000.0, bid=999.9, ask=1000.1)
    verdict = check(order_type="MARKET", limit_price=None, quantity=26_000, quote=expensive)
    assert verdict.reason is RejectReason.MAX_ORDER_NOTIONAL and "1,000.10" in verdict.message


def test_a_replacement_is_judged_instead_of_the_original():
    original = OpenOrder(intent_id="o4", symbol="XOM", bucket=Bucket.LT, side=Side.BUY, remaining=300)
    positions = lt_mm_positions(60, 10)
    parsed = parse_intent(dict(intent_id="o4.R1", account="acct", symbol="XOM", side="BUY", quantity=200, limit_price=100.0), CONFIG)
    down = judge(
        parsed,
        exposure=exposure_of(positions, [original]),
        positions=positions,
        open_orders=[],
        quote=QUOTE,
        mode=RiskMode.THROTTLE_NEW_ORDERS,
        regime=Regime.MID,
        config=CONFIG,
        replacing=original,
    )
    assert down.approved, "downsizing a working buy lowers the worst case: passes in THROTTLE"
    up = judge(
        parsed.model_copy(update={"quantity": 400}),
        exposure=exposure_of(positions, [original]),
        positions=positions,
        open_orders=[],
        quote=QUOTE,
        mode=RiskMode.THROTTLE_NEW_ORDERS,
        regime=Regime.MID,
        config=CONFIG,
        replacing=original,
    )
    assert up.reason is RejectReason.MODE_THROTTLE_NEW_ORDERS
