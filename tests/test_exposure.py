import pytest

from domain.enums import Bucket, Side
from domain.exposure import compute_exposure, worst_case_quantity
from domain.models import OpenOrder, Position
from tests.builders import CONFIG


def test_formulas_against_hand_computed_numbers():
    # E = 1,000,000. AAPL long 1000 @ 200 (LT), XOM short 500 @ 100 (LT), SPY long 100 @ 500 (MM).
    positions = [
        Position(symbol="AAPL", bucket=Bucket.LT, quantity=1000),
        Position(symbol="XOM", bucket=Bucket.LT, quantity=-500),
        Position(symbol="SPY", bucket=Bucket.MM_PURE, quantity=100),
    ]
    orders = [
        # AAPL: sell 1000 and buy 500 open: worst max(|1000+500|, |1000-1000|) = 1500 → 300,000
        OpenOrder(intent_id="o1", symbol="AAPL", bucket=Bucket.LT, side=Side.SELL, remaining=1000),
        OpenOrder(intent_id="o2", symbol="AAPL", bucket=Bucket.LT, side=Side.BUY, remaining=500),
        # New symbol, no position: buy 200 @ 50 → potential 10,000
        OpenOrder(intent_id="o3", symbol="KO", bucket=Bucket.LT, side=Side.BUY, remaining=200),
    ]
    marks = {"AAPL": 200.0, "XOM": 100.0, "SPY": 500.0, "KO": 50.0}
    e = compute_exposure(1_000_000.0, positions, orders, marks, CONFIG)
    assert e.long == pytest.approx(250_000)  # 200,000 + 50,000
    assert e.short == pytest.approx(50_000)
    assert e.gross_exposure_pct == pytest.approx(30.0)
    assert e.long_gross_pct == pytest.approx(25.0)
    assert e.short_gross_pct == pytest.approx(5.0)
    # potential: AAPL 300,000 + XOM 50,000 + SPY 50,000 + KO 10,000
    assert e.potential == pytest.approx(410_000)
    assert e.potential_exposure_pct == pytest.approx(41.0)
    lt = e.buckets[Bucket.LT]
    assert (lt.current, lt.potential) == (pytest.approx(250_000), pytest.approx(360_000))
    assert (lt.target, lt.target_pct, lt.max, lt.max_pct) == (800_000, 80, 900_000, 90)
    mm = e.buckets[Bucket.MM_PURE]
    assert (mm.current_pct, mm.potential_pct, mm.target_pct, mm.max_pct) == (5.0, 5.0, 20, 30)
    assert len(e.group_exposure) == 22
    assert e.group_exposure["TECH_HARDWARE"].current == pytest.approx(200_000)
    assert e.group_exposure["TECH_HARDWARE"].potential == pytest.approx(300_000)
    assert e.group_exposure["CONSUMER_STAPLES"].potential_pct == pytest.approx(1.0)
    assert e.group_exposure["AIRLINES"].current == 0  # zero groups are included
    assert e.open_orders_potential.amount == pytest.approx(110_000)
    assert e.open_orders_potential.pct == pytest.approx(11.0)
    assert e.open_orders_potential.open_order_count == 3


def test_potential_is_worst_case_not_all_fill():
    # long 100, sell 100 and buy 50 open: worst is 150, not 50 (DESIGN.md).
    assert worst_case_quantity(100, 50, 100) == 150
    assert worst_case_quantity(-100, 0, 30) == 130
    assert worst_case_quantity(0, 0, 0) == 0


def test_equity_must_be_positive():
    with pytest.raises(ValueError, match="equity"):
        compute_exposure(0.0, [], [], {}, CONFIG)
