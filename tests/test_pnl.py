import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.enums import Bucket, Side
from domain.pnl import (
    BodCsvError,
    BodPosition,
    MissingMark,
    PnlBook,
    PnlTotals,
    daily_loss_pct,
    fill_bod_marks,
    parse_bod_csv,
    summarize,
)
from tests.builders import CONFIG

UNIVERSE = CONFIG.universe
LT, MM = Bucket.LT, Bucket.MM_PURE
BUY, SELL = Side.BUY, Side.SELL


def book_of(*fills, bod=()):
    book = PnlBook.from_bod(bod)
    for symbol, bucket, side, qty, price in fills:
        book = book.apply(symbol, bucket, side, qty, price)
    return book


def pnl(book, marks, equity=1_000_000.0):
    return summarize(book, marks, UNIVERSE, equity)


# ----- cost basis, hand-computed -----


def test_buys_average_the_cost():
    book = book_of(("AAPL", LT, BUY, 100, 10.0), ("AAPL", LT, BUY, 300, 14.0))
    entry = book.entry("AAPL", LT)
    assert (entry.quantity, entry.avg_cost, entry.realized, entry.cash) == (400, 13.0, 0.0, -5200.0)
    assert pnl(book, {"AAPL": 15.0}).account == PnlTotals(realized=0.0, unrealized=800.0, daily=800.0)


def test_partial_sell_realizes_against_the_average_and_keeps_it():
    book = book_of(("AAPL", LT, BUY, 100, 10.0), ("AAPL", LT, BUY, 300, 14.0), ("AAPL", LT, SELL, 100, 16.0))
    entry = book.entry("AAPL", LT)
    assert (entry.quantity, entry.avg_cost, entry.realized) == (300, 13.0, 300.0)  # (16 − 13) × 100
    # unrealized (15 − 13) × 300 = 600; daily = 300 × 15 − 0 + (−5200 + 1600) = 900 = 300 + 600
    assert pnl(book, {"AAPL": 15.0}).account == PnlTotals(realized=300.0, unrealized=600.0, daily=900.0)


def test_closing_to_flat_leaves_no_average_cost():
    book = book_of(("AAPL", LT, BUY, 100, 10.0), ("AAPL", LT, SELL, 100, 9.0))
    entry = book.entry("AAPL", LT)
    assert (entry.quantity, entry.avg_cost, entry.realized) == (0, 0.0, -100.0)
    assert pnl(book, {"AAPL": 50.0}).account == PnlTotals(realized=-100.0, unrealized=0.0, daily=-100.0)


def test_a_fill_through_zero_closes_at_the_average_then_opens_at_the_fill_price():
    book = book_of(("AAPL", LT, BUY, 100, 10.0), ("AAPL", LT, SELL, 150, 12.0))
    entry = book.entry("AAPL", LT)
    assert (entry.quantity, entry.avg_cost, entry.realized) == (-50, 12.0, 200.0)
    # short 50 at 12 marked at 11: +50
    assert pnl(book, {"AAPL": 11.0}).account == PnlTotals(realized=200.0, unrealized=50.0, daily=250.0)


def test_shorts_are_symmetric():
    book = book_of(("MSFT", LT, SELL, 100, 20.0), ("MSFT", LT, SELL, 100, 22.0))
    assert (book.entry("MSFT", LT).quantity, book.entry("MSFT", LT).avg_cost) == (-200, 21.0)
    book = book.apply("MSFT", LT, BUY, 50, 19.0)  # covers 50: (21 − 19) × 50
    assert (book.entry("MSFT", LT).quantity, book.entry("MSFT", LT).realized) == (-150, 100.0)
    assert pnl(book, {"MSFT": 20.0}).account.unrealized == 150.0  # (20 − 21) × −150
    book = book.apply("MSFT", LT, BUY, 200, 25.0)  # covers 150 at a loss of 4 each, then long 50 at 25
    entry = book.entry("MSFT", LT)
    assert (entry.quantity, entry.avg_cost, entry.realized) == (50, 25.0, -500.0)


def test_marks_moving_change_unrealized_only():
    book = book_of(("NVDA", LT, BUY, 10, 800.0))
    assert [pnl(book, {"NVDA": m}).account.unrealized for m in (800.0, 850.0, 760.0)] == [0.0, 500.0, -400.0]
    assert {pnl(book, {"NVDA": m}).account.realized for m in (800.0, 850.0, 760.0)} == {0.0}


def test_buckets_are_separate_books():
    book = book_of(("AAPL", LT, BUY, 100, 10.0), ("AAPL", MM, SELL, 100, 11.0))
    assert (book.entry("AAPL", LT).quantity, book.entry("AAPL", MM).quantity) == (100, -100)
    assert book.entry("AAPL", LT).realized == book.entry("AAPL", MM).realized == 0.0


# ----- beginning of day and daily P&L -----

BOD = [
    BodPosition(symbol="AAPL", bucket=LT, quantity=1000, avg_cost=150.0, mark=180.0),
    BodPosition(symbol="SPY", bucket=MM, quantity=-100, avg_cost=500.0, mark=500.0),
]


def test_daily_pnl_is_against_the_bod_marks():
    book = PnlBook.from_bod(BOD)
    day = pnl(book, {"AAPL": 185.0, "SPY": 500.0})
    aapl = day.positions[0]
    assert (aapl.unrealized, aapl.daily, aapl.realized) == (35_000.0, 5_000.0, 0.0)  # yesterday's 30,000 is not today's
    book = book.apply("AAPL", LT, SELL, 400, 190.0)
    aapl = pnl(book, {"AAPL": 185.0, "SPY": 500.0}).positions[0]
    # realized (190 − 150) × 400 = 16,000; unrealized (185 − 150) × 600 = 21,000; at BOD (180 − 150) × 1000 = 30,000
    assert (aapl.realized, aapl.unrealized) == (16_000.0, 21_000.0)
    assert aapl.daily == 16_000.0 + 21_000.0 - 30_000.0 == 600 * 185.0 - 1000 * 180.0 + 400 * 190.0


def test_a_bod_position_without_a_mark_takes_the_previous_close_or_is_refused():
    """Issue 22: 10,000 AAPL at avg cost 230 valued at its cost instead of yesterday's close (190)
    booked yesterday's 400,000 loss as today's and fired DAILY_LOSS_HARD at the open."""
    row = BodPosition(symbol="AAPL", bucket=LT, quantity=10_000, avg_cost=230.0)
    with pytest.raises(MissingMark) as info:
        fill_bod_marks([BOD[0], row])
    assert info.value.index == 1 and "AAPL/LT has no mark" in str(info.value)
    with pytest.raises(ValueError, match="needs a mark"):
        PnlBook.from_bod([row])  # never valued at its cost silently
    (filled,) = fill_bod_marks([row], {"AAPL": 190.0})
    assert pnl(PnlBook.from_bod([filled]), {"AAPL": 190.0}).account.daily == 0.0


def test_daily_loss_pct():
    assert daily_loss_pct(-15_000.0, 1_000_000.0) == 1.5
    assert daily_loss_pct(2_000.0, 1_000_000.0) == 0.0
    assert daily_loss_pct(math.nan, 1_000_000.0) == math.inf  # cannot be measured: fails closed
    assert daily_loss_pct(-1.0, 0.0) == math.inf
    book = PnlBook.from_bod([BodPosition(symbol="AAPL", bucket=LT, quantity=1000, avg_cost=150.0, mark=180.0)])
    assert pnl(book, {"AAPL": 165.0}).daily_loss_pct == 1.5  # lost 15,000 of 1,000,000 today


def test_next_day_starts_from_the_close():
    book = PnlBook.from_bod(BOD).apply("AAPL", LT, SELL, 400, 190.0).apply("SPY", MM, BUY, 100, 505.0)
    tomorrow = book.next_day({"AAPL": 186.0})  # SPY is flat: dropped; AAPL marked at the close
    assert list(tomorrow.positions) == ["AAPL/LT"]
    entry = tomorrow.entry("AAPL", LT)
    assert (entry.quantity, entry.avg_cost, entry.bod_mark, entry.realized, entry.cash) == (600, 150.0, 186.0, 0.0, 0.0)
    assert pnl(tomorrow, {"AAPL": 186.0}).account.daily == 0.0


def test_with_bod_position_replaces_one_entry():
    book = PnlBook.from_bod(BOD).with_bod_position(BodPosition(symbol="AAPL", bucket=LT, quantity=50, avg_cost=100.0, mark=101.0))
    assert book.entry("AAPL", LT).quantity == 50 and book.entry("SPY", MM).quantity == -100


# ----- roll-ups -----


def test_roll_ups_by_symbol_bucket_group_and_account():
    book = book_of(
        ("AAPL", LT, BUY, 100, 100.0),
        ("DELL", LT, BUY, 10, 50.0),
        ("AAPL", MM, SELL, 20, 100.0),
        ("SPY", MM, BUY, 5, 500.0),
        ("SPY", MM, SELL, 5, 510.0),  # realized 50
    )
    day = pnl(book, {"AAPL": 110.0, "DELL": 45.0, "SPY": 520.0}, equity=100_000.0)
    assert [(p.symbol, p.bucket) for p in day.positions] == [("AAPL", LT), ("AAPL", MM), ("DELL", LT), ("SPY", MM)]
    assert day.by_symbol == {
        "AAPL": PnlTotals(realized=0.0, unrealized=1000.0 - 200.0, daily=800.0),
        "DELL": PnlTotals(realized=0.0, unrealized=-50.0, daily=-50.0),
        "SPY": PnlTotals(realized=50.0, unrealized=0.0, daily=50.0),
    }
    assert day.by_bucket == {
        LT: PnlTotals(realized=0.0, unrealized=950.0, daily=950.0),
        MM: PnlTotals(realized=50.0, unrealized=-200.0, daily=-150.0),
    }
    assert list(day.by_group) == UNIVERSE.groups  # every group, in the universe's order
    assert day.by_group["TECH_HARDWARE"] == PnlTotals(realized=0.0, unrealized=750.0, daily=750.0)
    assert day.by_group["INDEX_ETF"] == PnlTotals(realized=50.0, unrealized=0.0, daily=50.0)
    assert day.by_group["BANKS"] == PnlTotals()
    assert day.account == PnlTotals(realized=50.0, unrealized=750.0, daily=800.0)
    assert day.daily_loss_pct == 0.0 and day.fallback_marks == []


def test_a_missing_mark_falls_back_to_the_last_price():
    book = book_of(("AAPL", LT, BUY, 100, 100.0), ("AAPL", LT, BUY, 100, 104.0))
    day = pnl(book, {"AAPL": math.nan})
    assert (day.positions[0].mark, day.account.unrealized, day.fallback_marks) == (104.0, 400.0, ["AAPL"])  # (104 − 102) × 200
    assert pnl(book, {}).fallback_marks == ["AAPL"]


# ----- the book as a value -----


def test_books_are_immutable_and_survive_json():
    empty = PnlBook()
    one = empty.apply("AAPL", LT, BUY, 100, 10.0)
    assert empty.positions == {} and one.entry("AAPL", LT).quantity == 100
    assert PnlBook.model_validate_json(one.model_dump_json()) == one


def test_apply_fills_equals_one_by_one():
    fills = [("AAPL", LT, BUY, 100, 10.0), ("MSFT", LT, SELL, 5, 400.0), ("AAPL", LT, SELL, 150, 11.0)]

    class F:
        def __init__(self, symbol, bucket, side, quantity, price):
            self.symbol, self.bucket, self.side, self.quantity, self.price = symbol, bucket, side, quantity, price

    assert PnlBook().apply_fills(F(*f) for f in fills) == book_of(*fills)
    assert PnlBook().apply_fill(F(*fills[0])) == book_of(fills[0])


@pytest.mark.parametrize(
    ("quantity", "price"), [(0, 10.0), (-5, 10.0), (True, 10.0), (10**30, 10.0), (1.5, 10.0), (10, math.nan), (10, 0.0), (10, math.inf)]
)
def test_a_fill_that_is_not_a_fill_is_refused(quantity, price):
    with pytest.raises(ValueError, match="fill"):
        PnlBook().apply("AAPL", LT, BUY, quantity, price)


# ----- property: P&L is cash plus positions at the marks -----

SYMBOLS = ("AAPL", "MSFT", "SPY")
prices = st.integers(100, 50_000).map(lambda cents: cents / 100)
bod_rows = st.lists(
    st.builds(
        BodPosition,
        symbol=st.sampled_from(SYMBOLS),
        bucket=st.sampled_from(list(Bucket)),
        quantity=st.integers(-1000, 1000),
        avg_cost=prices,
        mark=prices,  # a BOD row has a mark (issue 22)
    ),
    max_size=4,
    unique_by=lambda r: (r.symbol, r.bucket),
)
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("fill"), st.sampled_from(SYMBOLS), st.sampled_from(list(Bucket)), st.sampled_from(list(Side)), st.integers(1, 2000), prices
        ),
        st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), prices),
    ),
    max_size=30,
)


@given(bod=bod_rows, steps=steps)
def test_pnl_is_cash_plus_positions_at_the_marks(bod, steps):
    """Tracked independently of the book: quantities, cash and marks. At every step the change of
    realized + unrealized equals the change of cash plus positions valued at the marks, and the
    daily P&L equals value now − value at BOD + today's cash."""
    marks = {s: 100.0 for s in SYMBOLS} | {r.symbol: r.mark for r in bod}
    qty = {(r.symbol, r.bucket): r.quantity for r in bod}
    bod_value = sum(r.quantity * r.mark for r in bod)
    cash = 0.0
    book = PnlBook.from_bod(bod)

    def value(marks):
        return sum(q * marks[s] for (s, _), q in qty.items())

    def check(book, marks, previous):
        day = pnl(book, marks)
        total = day.account.realized + day.account.unrealized
        scale = 1.0 + sum(abs(q) * marks[s] for (s, _), q in qty.items()) + abs(cash)
        assert math.isclose(day.account.daily, value(marks) - bod_value + cash, rel_tol=1e-9, abs_tol=1e-9 * scale)
        for entry in book.positions.values():
            assert entry.quantity == qty.get((entry.symbol, entry.bucket), 0)
        if previous is not None:
            before_total, before_cash, before_value = previous
            assert math.isclose(total - before_total, (cash - before_cash) + (value(marks) - before_value), rel_tol=1e-9, abs_tol=1e-9 * scale)
        return total, cash, value(marks)

    state = check(book, marks, None)
    for step in steps:
        if step[0] == "fill":
            _, symbol, bucket, side, q, price = step
            book = book.apply(symbol, bucket, side, q, price)
            qty[(symbol, bucket)] = qty.get((symbol, bucket), 0) + side.sign * q
            cash -= side.sign * q * price
        else:
            _, symbol, price = step
            marks = marks | {symbol: price}
        state = check(book, marks, state)


# ----- the daily roll (issue 22): days add up, tomorrow starts from today's close -----

days_of_steps = st.lists(st.tuples(steps, st.dictionaries(st.sampled_from(SYMBOLS), prices, min_size=len(SYMBOLS))), min_size=1, max_size=5)


@given(bod=bod_rows, days=days_of_steps)
def test_days_add_up_and_each_bod_is_the_previous_close(bod, days):
    """Over any days of fills and marks, each rolled at its close: Σ daily P&L = value at the end −
    value at the first BOD + all cash (the P&L since the account opened, whatever the days); each
    day's BOD is the previous close — its positions at its closing marks — so a day that does
    nothing makes 0; realized P&L moves to the prior days and sums with today's to the total."""
    qty = {(r.symbol, r.bucket): r.quantity for r in bod}
    first_value = sum(r.quantity * r.mark for r in bod)
    cash = realized = daily_sum = 0.0
    book = PnlBook.from_bod(bod)
    for day_steps, close_marks in days:
        for step in day_steps:
            if step[0] == "fill":
                _, symbol, bucket, side, q, price = step
                book = book.apply(symbol, bucket, side, q, price)
                qty[(symbol, bucket)] = qty.get((symbol, bucket), 0) + side.sign * q
                cash -= side.sign * q * price
        at_close = pnl(book, close_marks).account
        tomorrow, day = book.close_day(close_marks)
        assert math.isclose(day.daily, at_close.daily, rel_tol=1e-9, abs_tol=1e-6) and math.isclose(day.realized, at_close.realized, abs_tol=1e-6)
        daily_sum += day.daily
        realized += day.realized
        # BOD(d+1) = close(d): every open position, at its closing mark; nothing realized yet; a quiet day makes 0.
        assert {(e.symbol, e.bucket): (e.bod_quantity, e.bod_mark, e.realized, e.cash) for e in tomorrow.positions.values()} == {
            key: (q, close_marks[key[0]], 0.0, 0.0) for key, q in qty.items() if q
        }
        assert [(r.symbol, r.bucket, r.quantity, r.mark) for r in day.bod] == [
            (e.symbol, e.bucket, e.quantity, e.bod_mark) for e in tomorrow.positions.values()
        ]
        assert pnl(tomorrow, close_marks).account.daily == 0.0
        assert math.isclose(tomorrow.realized_prior, realized, abs_tol=1e-6)
        book = tomorrow
        end_marks = close_marks
    scale = 1.0 + sum(abs(q) * end_marks[s] for (s, _), q in qty.items()) + abs(cash)
    total = sum(q * end_marks[s] for (s, _), q in qty.items()) - first_value + cash
    assert math.isclose(daily_sum, total, rel_tol=1e-9, abs_tol=1e-9 * scale)


def test_a_loss_on_monday_does_not_count_on_tuesday():
    """Issue 22: a desk that lost 1.5% on Monday started Tuesday already past the throttle."""
    monday = PnlBook.from_bod([BodPosition(symbol="AAPL", bucket=LT, quantity=10_000, avg_cost=100.0, mark=100.0)])
    monday = monday.apply("AAPL", LT, SELL, 5_000, 98.0)  # realizes −10,000
    assert pnl(monday, {"AAPL": 99.0}).daily_loss_pct == 1.5  # −10,000 realized, −5,000 on what is left
    tuesday, day = monday.close_day({"AAPL": 99.0})
    assert (day.realized, day.unrealized, day.daily) == (-10_000.0, -5_000.0, -15_000.0)
    assert day.bod == [BodPosition(symbol="AAPL", bucket=LT, quantity=5_000, avg_cost=100.0, mark=99.0)]
    summary = pnl(tuesday, {"AAPL": 99.0})
    assert (summary.daily_loss_pct, summary.account.realized, summary.realized_prior) == (0.0, 0.0, -10_000.0)
    assert pnl(tuesday, {"AAPL": 99.5}).account.daily == 2_500.0  # Tuesday's own move only


# ----- the beginning-of-day CSV -----


def test_bod_csv_parses():
    text = (
        "\ufeffsymbol,bucket,quantity,avg_cost,mark\n# yesterday's close\n\nAAPL,LT,1000,150.25,180\n spy , mm_pure , -100 , 500 ,\nMSFT,LT,0,400,\n"
    )
    assert parse_bod_csv(text, UNIVERSE, previous_close={"SPY": 498.5}) == [
        BodPosition(symbol="AAPL", bucket=LT, quantity=1000, avg_cost=150.25, mark=180.0),
        BodPosition(symbol="SPY", bucket=MM, quantity=-100, avg_cost=500.0, mark=498.5),  # no mark: the previous close
    ]  # a flat row is no position (and needs no mark)


def test_bod_csv_mark_column_may_be_left_out_with_a_previous_close_and_columns_may_come_in_any_order():
    assert parse_bod_csv("quantity,symbol,avg_cost,bucket\n5,AAPL,10,LT\n", previous_close={"AAPL": 11.0}) == [
        BodPosition(symbol="AAPL", bucket=LT, quantity=5, avg_cost=10.0, mark=11.0)
    ]


def test_a_bod_csv_row_without_a_mark_and_no_previous_close_is_refused_at_its_line_and_column():
    text = "symbol,bucket,quantity,avg_cost,mark\nAAPL,LT,1000,150,180\nSPY,MM_PURE,-100,500,\n"
    with pytest.raises(BodCsvError) as info:
        parse_bod_csv(text, UNIVERSE, previous_close={"AAPL": 181.0})
    assert (info.value.line, info.value.column) == (3, "mark")
    assert str(info.value).startswith("line 3, column 'mark': SPY/MM_PURE has no mark")


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("", 1, None, "no header"),
        ("symbol,bucket,quantity\nAAPL,LT,5\n", 1, "avg_cost", "missing column"),
        ("symbol,bucket,quantity,avg_cost,price\n", 1, "price", "unknown column"),
        ("symbol,bucket,quantity,avg_cost,symbol\n", 1, "symbol", "column appears twice"),
        ("symbol,bucket,quantity,avg_cost,mark\nAAPL,LT,5,10,10\nMSFT,LT,abc,10,10\n", 3, "quantity", "'abc' is not a whole number"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,LT,1.5,10\n", 2, "quantity", "'1.5' is not a whole number"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,LT,10000000000000,10\n", 2, "quantity", "beyond"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,LT,5,ten\n", 2, "avg_cost", "'ten' is not a number"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,LT,5,-10\n", 2, "avg_cost", "finite price > 0"),
        ("symbol,bucket,quantity,avg_cost,mark\nAAPL,LT,5,10,nan\n", 2, "mark", "finite price > 0"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,HFT,5,10\n", 2, "bucket", "'HFT' is not one of LT, MM_PURE"),
        ("symbol,bucket,quantity,avg_cost\nZZZZ,LT,5,10\n", 2, "symbol", "unknown symbol 'ZZZZ'"),
        ("symbol,bucket,quantity,avg_cost\n,LT,5,10\n", 2, "symbol", "empty"),
        ("symbol,bucket,quantity,avg_cost,mark\nAAPL,LT,5,10,10\n\nAAPL,LT,6,11,11\n", 4, "symbol", "AAPL/LT already on line 2"),
        ("symbol,bucket,quantity,avg_cost\nAAPL,LT,5\n", 2, None, "3 fields, the header has 4"),
    ],
)
def test_bod_csv_errors_name_the_line_and_the_column(text, line, column, problem):
    with pytest.raises(BodCsvError) as info:
        parse_bod_csv(text, UNIVERSE)
    assert (info.value.line, info.value.column) == (line, column)
    assert problem in info.value.problem
    assert str(info.value).startswith(f"line {line}" + (f", column {column!r}" if column else ""))
