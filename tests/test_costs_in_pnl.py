"""Costs booked through the account's book (domain/ledger.py → domain/pnl.py): each fill's cost
against the day, P&L gross / costs / net, the loss rows on net, the digest unchanged at zero cost."""

from __future__ import annotations

import pytest

from config.load import CONFIG_DIR, load_config
from domain.costs import CostSchedule, sim_liquidity
from domain.enums import Bucket, OrderType, Side
from domain.ledger import BookState, Ledger
from domain.matching import Liquidity
from domain.models import Fill, Intent
from domain.pnl import PnlBook, PnlTotals, summarize
from tests.builders import CONFIG
from venues.sim.model import ARRIVAL

PRODUCTION = load_config(CONFIG_DIR / "profiles" / "production.yaml").rules.costs


def _ledger(schedule: CostSchedule, *, at_the_data: bool = False) -> Ledger:
    ledger = Ledger(BookState(equity=1_000_000.0))
    ledger.costs, ledger.matched_at_the_data = schedule, lambda: at_the_data
    return ledger


def _order(ledger: Ledger, intent_id: str, side: Side, quantity: int, order_type: OrderType = OrderType.LIMIT) -> None:
    intent = Intent(
        intent_id=intent_id, account="a", symbol="AAPL", bucket=Bucket.LT, side=side, quantity=quantity,
        limit_price=100.0 if order_type is OrderType.LIMIT else None, order_type=order_type,
    )  # fmt: skip
    ledger.reserve(intent, own=False, cycle=1, expires_at="")


def _fill(fill_id: str, side: Side, quantity: int, price: float = 100.0, commission: float | None = None) -> Fill:
    return Fill(
        fill_id=fill_id, intent_id=fill_id.split("/")[0], symbol="AAPL", bucket=Bucket.LT, side=side, quantity=quantity, price=price,
        commission=commission,
    )  # fmt: skip


def test_the_arrival_tag_is_the_sim_venues():
    assert ARRIVAL == "A"
    assert sim_liquidity("o1/A", market_order=False, at_the_data=True) is Liquidity.TAKE
    assert sim_liquidity("o1/C3", market_order=False, at_the_data=True) is Liquidity.PASSIVE
    assert sim_liquidity("o1/C3", market_order=True, at_the_data=True) is Liquidity.TAKE
    assert sim_liquidity("o1/C3", market_order=False, at_the_data=False) is Liquidity.TAKE


def test_zero_schedule_books_nothing_and_the_digest_item_reads_as_before():
    ledger = _ledger(CostSchedule())
    _order(ledger, "o1", Side.BUY, 100)
    ledger.apply_fill(_fill("o1/A", Side.BUY, 100), cycle=1, exchange_time="10:00:00")
    totals = summarize(ledger.pnl, {"AAPL": 101.0}, CONFIG.universe, 1_000_000.0).account
    assert totals.costs == 0.0 and totals.net == totals.daily == 100.0
    assert set(totals.shown()) == {"realized", "unrealized", "daily"}


def test_production_costs_buy_then_sell_passive_and_taking():
    ledger = _ledger(PRODUCTION, at_the_data=True)
    _order(ledger, "b", Side.BUY, 1000)
    _order(ledger, "s", Side.SELL, 1000)
    ledger.apply_fill(_fill("b/A", Side.BUY, 1000), cycle=1, exchange_time="10:00:00")  # takes
    ledger.apply_fill(_fill("s/C2", Side.SELL, 1000, 101.0), cycle=2, exchange_time="10:01:00")  # rests: rebate
    # buy: commission 3.50 + take 3.00 + clearing 0.20 = 6.70
    # sell: commission 3.50 − rebate 2.00 + clearing 0.20 + SEC 101,000 × 20.60/1e6 = 2.0806 → 2.09 + TAF 0.195 → 0.20 = 3.99
    summary = summarize(ledger.pnl, {"AAPL": 101.0}, CONFIG.universe, 1_000_000.0)
    assert summary.account.costs == pytest.approx(6.70 + 3.99)
    assert summary.account.daily == pytest.approx(1000.0)
    assert summary.account.net == pytest.approx(1000.0 - 10.69)
    assert summary.by_symbol["AAPL"].costs == pytest.approx(10.69)
    assert "costs" in summary.account.shown()


def test_the_minimum_is_charged_once_per_order():
    ledger = _ledger(PRODUCTION)
    _order(ledger, "b", Side.BUY, 20)
    for i in range(4):
        ledger.apply_fill(_fill(f"b/C{i}", Side.BUY, 5), cycle=i, exchange_time="10:00:00")
    # 20 shares × 0.0035 = 0.07 < min 0.35, capped at 1% of 2,000 = 20: 0.35 once; take 0.0030×5 = 0.015 → 0.02 each; clearing 0.001 → 0.00
    assert ledger.pnl.entry("AAPL", Bucket.LT).costs == pytest.approx(0.35 + 4 * 0.02)


def test_a_broker_commission_replaces_the_computed_one():
    ledger = _ledger(CostSchedule())  # shipped rules: the broker's figure still counts (IBKR fills)
    _order(ledger, "i", Side.BUY, 100)
    ledger.apply_fill(_fill("i/0001", Side.BUY, 100, commission=1.25), cycle=1, exchange_time="10:00:00")
    assert ledger.pnl.entry("AAPL", Bucket.LT).costs == pytest.approx(1.25)


def test_the_loss_rows_read_net():
    book = PnlBook().apply("AAPL", Bucket.LT, Side.BUY, 1000, 100.0, cost=10_000.0)
    summary = summarize(book, {"AAPL": 100.0}, CONFIG.universe, 1_000_000.0)
    assert summary.account.daily == 0.0 and summary.daily_loss_pct == pytest.approx(1.0)


def test_the_roll_fixes_the_days_costs_and_starts_again():
    book = PnlBook().apply("AAPL", Bucket.LT, Side.BUY, 100, 100.0, cost=2.5)
    tomorrow, day = book.close_day({"AAPL": 100.0})
    assert day.costs == 2.5 and tomorrow.entry("AAPL", Bucket.LT).costs == 0.0
    assert PnlTotals(daily=1.0, costs=2.5).net == -1.5
