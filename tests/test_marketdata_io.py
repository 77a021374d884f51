"""Market data I/O (marketdata/): the Parquet file set, the generator, the feeds' as-of
semantics and their agreement with the pure core, the Databento importer and the CLI."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import sys
from collections.abc import Sequence
from types import SimpleNamespace

import databento_dbn as dbn
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from config.load import load_config
from domain.conditions import TABLES, LastSale, SipPlan, last_sale
from domain.marketdata import (
    L1,
    TRF_VENUE,
    FeedSource,
    FeedSpec,
    GeneratedDay,
    MarketDataRule,
    MarkSource,
    Print,
    Shock,
    grpan,
    market_view,
    truth_tick,
)
from marketdata.feed import (
    DayFeed,
    DayIndex,
    MarkFeed,
    UnknownSymbol,
    load_index,
    open_feed,
    reference_prices,
)
from marketdata.files import DayFileError, check_day, read_day, write_day
from marketdata.generator import generate_day
from marketdata.schema import (
    MANIFEST_FILE,
    PRINTS_FILE,
    PRINTS_SCHEMA,
    QUOTES_FILE,
    QUOTES_SCHEMA,
    Day,
    DayManifest,
    DayOrigin,
)

CONFIG = load_config()
SESSION = CONFIG.rules.session
UNIVERSE = CONFIG.universe
REFS = reference_prices(UNIVERSE)
DATE = dt.date(2024, 6, 3)
NY = dt.timezone(dt.timedelta(hours=-4))  # June: EDT
SYMBOLS = ["AAPL", "BLK", "F", "SPY"]
RECIPE = GeneratedDay(seed=11, date=DATE, scale=0.01)


def local(hhmmss: str, day: dt.date = DATE) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss), tzinfo=NY)


@pytest.fixture(scope="module")
def day() -> Day:
    return generate_day(RECIPE, UNIVERSE, SESSION, symbols=SYMBOLS)


@pytest.fixture(scope="module")
def feed(day: Day) -> DayFeed:
    return DayFeed(DayIndex(day), REFS, source=FeedSource.GENERATED)


# --- the file set -----------------------------------------------------------------------------


def test_parquet_round_trip(day, tmp_path):
    write_day(day, tmp_path)
    back = read_day(tmp_path)
    assert back.quotes.equals(day.quotes)
    assert back.prints.equals(day.prints)
    assert back.manifest == day.manifest
    assert back.quotes.schema == QUOTES_SCHEMA and back.prints.schema == PRINTS_SCHEMA
    assert pq.read_schema(tmp_path / QUOTES_FILE).field("ts_event").type == pa.timestamp("ns", tz="UTC")


def test_manifest_says_what_the_day_is(day, tmp_path):
    write_day(day, tmp_path)
    m = DayManifest.model_validate_json((tmp_path / MANIFEST_FILE).read_text())
    assert (m.date, m.time_zone, m.open, m.close) == (DATE, "America/New_York", "09:30", "16:30")
    assert m.symbols == SYMBOLS and m.origin is DayOrigin.GENERATED and m.seed == 11
    assert (m.quotes, m.prints) == (day.quotes.num_rows, day.prints.num_rows)


def test_a_foreign_file_may_be_unsorted_and_plainly_typed(day, tmp_path):
    write_day(day, tmp_path)
    prints = day.prints
    plain = pa.table(
        {
            "ts_event": prints["ts_event"].cast(pa.timestamp("us", tz="America/New_York")),
            "symbol": prints["symbol"].cast(pa.string()),
            "price": prints["price"], "size": prints["size"].cast(pa.int32()),
            "venue": prints["venue"].cast(pa.string()), "conditions": prints["conditions"].cast(pa.string()),
        }
    )  # fmt: skip
    shuffled = plain.take(pa.array(np.random.default_rng(1).permutation(plain.num_rows)))
    pq.write_table(shuffled, tmp_path / PRINTS_FILE)
    foreign = DayFeed(load_index(tmp_path), REFS)
    reference = DayFeed(DayIndex(day), REFS)
    for hhmm in ("09:45", "12:00", "16:29"):
        assert foreign.snapshot(SYMBOLS, local(hhmm)) == reference.snapshot(SYMBOLS, local(hhmm))


@pytest.mark.parametrize(
    ("file", "column", "values", "says"),
    [
        (
            QUOTES_FILE,
            "bid",
            lambda a: np.where(np.arange(a.size) == 3, 0.0, a),
            "bid: 1 row(s) not a finite price > 0 and below 10,000,000 (first: row 3",
        ),
        (QUOTES_FILE, "ask", lambda a: np.where(np.arange(a.size) % 2 == 0, np.nan, a), "ask:"),
        (PRINTS_FILE, "price", lambda a: np.where(np.arange(a.size) == 0, np.inf, a), "price: 1 row(s) not a finite price > 0"),
        (
            PRINTS_FILE,
            "price",
            lambda a: np.where(np.arange(a.size) == 2, 1e308, a),
            "price: 1 row(s) not a finite price > 0 and below 10,000,000 (first: row 2",
        ),
        (QUOTES_FILE, "bid_size", lambda a: np.where(np.arange(a.size) == 5, -100, a), "bid_size: 1 row(s) below 0 shares"),
        (QUOTES_FILE, "ask_size", lambda a: np.where(np.arange(a.size) == 1, 2**62, a), "ask_size: 1 row(s) above 10,000,000,000 shares"),
        (PRINTS_FILE, "size", lambda a: np.where(np.arange(a.size) == 5, 0, a), "size: 1 row(s) below 1 shares"),
    ],
)
def test_a_day_with_values_no_view_can_hold_is_refused_in_one_line(day, tmp_path, file, column, values, says):
    write_day(day, tmp_path)
    table = pq.read_table(tmp_path / file)
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, column, pa.array(values(table[column].to_numpy()))), tmp_path / file)
    with pytest.raises(DayFileError) as err:
        read_day(tmp_path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(tmp_path / file)) and says in text


@pytest.mark.parametrize(
    ("file", "column", "stored", "says"),
    [
        (PRINTS_FILE, "ts_event", lambda c: c.cast(pa.int64()), "column ts_event is int64, expected timestamp[ns, tz=UTC]"),
        (
            QUOTES_FILE,
            "ts_event",
            lambda c: c.cast(pa.timestamp("ns")),
            "column ts_event is timestamp[ns] without a time zone, expected timestamp[ns, tz=UTC]",
        ),
        (PRINTS_FILE, "price", lambda c: pa.array(np.rint(c.to_numpy() * 1e9).astype(np.int64)), "column price is int64, expected double dollars"),
        (QUOTES_FILE, "bid_size", lambda c: c.cast(pa.float64()), "column bid_size is double, expected int64 shares"),
        (PRINTS_FILE, "venue", lambda c: c.cast(pa.string()).cast(pa.binary()), "column venue is binary, expected strings"),
    ],
)
def test_a_column_stored_as_another_type_is_refused_naming_file_column_and_type(day, tmp_path, file, column, stored, says):
    write_day(day, tmp_path)
    table = pq.read_table(tmp_path / file)
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, column, stored(table[column].combine_chunks())), tmp_path / file)
    with pytest.raises(DayFileError) as err:
        read_day(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / file}: {says}") and "\n" not in str(err.value)
    with pytest.raises(DayFileError):
        check_day(tmp_path)  # a scenario's load checks the same


def test_crossed_quotes_are_kept_and_flagged(day):
    quotes = day.quotes
    bid, ask = quotes["bid"].to_numpy().copy(), quotes["ask"].to_numpy()
    bid[:3] = ask[:3] + 0.05
    index = DayIndex(Day(day.manifest, quotes.set_column(2, "bid", pa.array(bid)), day.prints))
    assert index.crossed == 3
    assert DayIndex(day).crossed == 0


# --- the generator ----------------------------------------------------------------------------


def test_same_seed_same_rows_and_same_bytes(day, tmp_path):
    again = generate_day(RECIPE, UNIVERSE, SESSION, symbols=SYMBOLS)
    assert again.quotes.equals(day.quotes) and again.prints.equals(day.prints)
    write_day(day, tmp_path / "a")
    write_day(again, tmp_path / "b")
    for name in (QUOTES_FILE, PRINTS_FILE, MANIFEST_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_seed_another_day(day):
    other = generate_day(RECIPE.model_copy(update={"seed": 12}), UNIVERSE, SESSION, symbols=SYMBOLS)
    assert not other.prints.equals(day.prints)
    assert not other.quotes.equals(day.quotes)


def test_each_symbol_has_its_own_stream(day):
    alone = generate_day(RECIPE, UNIVERSE, SESSION, symbols=["BLK"])
    mine = day.prints.filter(pa.compute.equal(day.prints["symbol"].cast(pa.string()), "BLK"))
    assert alone.prints["price"].equals(mine["price"]) and alone.prints["ts_event"].equals(mine["ts_event"])


def test_a_generated_day_looks_like_a_market(day):
    q, p = day.quotes.to_pydict(), day.prints.to_pydict()
    lots, tapes = day.manifest.round_lots, day.manifest.tapes
    assert lots == {"AAPL": 100, "BLK": 40, "F": 100, "SPY": 40}  # by reference price: the SEC tiers
    assert tapes == {"AAPL": SipPlan.UTP, "BLK": SipPlan.CTA, "F": SipPlan.CTA, "SPY": SipPlan.CTA}  # by listing
    opening, closing = local("09:30"), local("16:30")
    assert min(q["ts_event"]) == opening and max(q["ts_event"]) <= closing  # the book opens with the session
    assert all(b < a for b, a in zip(q["bid"], q["ask"]))
    assert all(size % lots[s] == 0 and size > 0 for size, s in zip(q["bid_size"] + q["ask_size"], q["symbol"] * 2))
    assert min(p["ts_event"]) >= opening - dt.timedelta(minutes=30) and max(p["ts_event"]) <= closing
    venues, conds = p["venue"], p["conditions"]
    assert 0.25 < venues.count(TRF_VENUE) / len(venues) < 0.6
    assert all(("I" in c) == (size < lots[s]) for c, size, s, t in zip(conds, p["size"], p["symbol"], p["ts_event"]) if t >= opening)
    assert any(lots[s] <= size < 100 and "I" not in c for c, size, s in zip(conds, p["size"], p["symbol"]))  # 40–99 on BLK: round or mixed lots
    never = sum(1 for c, s in zip(conds, p["symbol"]) if set(c) - {"I", "T", "U", "M", "Q"} and last_sale(c, tapes[s]) is LastSale.NO)
    assert 0.004 < never / len(conds) < 0.04
    assert all(set(c) & {"T", "U"} for c, t in zip(conds, p["ts_event"]) if t < opening)  # pre-market: Form T
    for symbol in SYMBOLS:
        times = [t for t, s in zip(p["ts_event"], p["symbol"]) if s == symbol]
        assert all(a < b for a, b in itertools.pairwise(times))  # strictly increasing per symbol


def test_the_generator_emits_every_code_of_each_tape_with_realistic_shares():
    whole = generate_day(GeneratedDay(seed=2, date=DATE, scale=0.05), UNIVERSE, SESSION)
    tapes = whole.manifest.tapes
    counts: dict[SipPlan, dict[str, int]] = {plan: {} for plan in SipPlan}
    for c, s in zip(whole.prints["conditions"].to_pylist(), whole.prints["symbol"].to_pylist(), strict=True):
        for code in set(c) - {" "} or {"@"}:
            counts[tapes[s]][code] = counts[tapes[s]].get(code, 0) + 1
    for plan in SipPlan:
        assert set(TABLES[plan]) <= set(counts[plan]), f"{plan.value}: never emitted {set(TABLES[plan]) - set(counts[plan])}"
        total = sum(n for code, n in counts[plan].items() if code not in {"F", "I"})
        assert counts[plan]["@"] / total > 0.85  # regular sales dominate
        for code in ("Z", "R", "L", "W") + (("G",) if plan is SipPlan.UTP else ()):
            assert 0 < counts[plan][code] / total < 0.01, (plan, code)
    # The late reports carry an older price: the truth tick never takes it (after the day's first trade).
    feed = DayFeed(DayIndex(whole), REFS)
    late = [(s, t) for s, c, t in zip(whole.prints["symbol"].to_pylist(), whole.prints["conditions"].to_pylist(),
                                      whole.prints["ts_event"].to_pylist()) if c in {"Z", "G", "R"} and t > local("10:00")]  # fmt: skip
    for symbol, t in late[:50]:
        v = feed.snapshot([symbol], t)[symbol]
        assert v.truth_tick_time is None or v.truth_tick_time < t


def test_a_shock_moves_the_price_by_about_the_scripted_percent():
    shocked = GeneratedDay(seed=5, date=DATE, scale=0.01, shocks=(Shock(at="14:00", symbols=("AAPL",), move_pct=-5),))
    calm = shocked.model_copy(update={"shocks": ()})
    views = {}
    for name, recipe in (("shocked", shocked), ("calm", calm)):
        f = DayFeed(DayIndex(generate_day(recipe, UNIVERSE, SESSION, symbols=["AAPL", "SPY"])), REFS)
        views[name] = {hhmm: f.snapshot(["AAPL", "SPY"], local(hhmm)) for hhmm in ("13:59", "14:10")}
    before = views["shocked"]["13:59"]["AAPL"].mark / views["calm"]["13:59"]["AAPL"].mark
    after = views["shocked"]["14:10"]["AAPL"].mark / views["calm"]["14:10"]["AAPL"].mark
    assert before == pytest.approx(1.0, abs=0.003)
    assert after == pytest.approx(0.95, abs=0.003)
    assert views["shocked"]["14:10"]["SPY"] == views["calm"]["14:10"]["SPY"]  # not scripted: untouched


def test_a_shock_on_all_moves_the_whole_universe():
    recipe = GeneratedDay(seed=5, date=DATE, scale=0.005, shocks=(Shock(at="11:00", move_pct=8, over_seconds=30),))
    f = DayFeed(DayIndex(generate_day(recipe, UNIVERSE, SESSION)), REFS)
    symbols = [i.symbol for i in UNIVERSE.instruments]
    before, after = f.snapshot(symbols, local("10:58")), f.snapshot(symbols, local("11:05"))
    moves = [after[s].mark / before[s].mark - 1 for s in symbols]
    assert np.median(moves) == pytest.approx(0.08, abs=0.01)


def test_bad_recipes_are_refused():
    with pytest.raises(ValueError, match="outside the session"):
        generate_day(GeneratedDay(seed=1, date=DATE, shocks=(Shock(at="17:00", move_pct=1),)), UNIVERSE, SESSION, ["AAPL"])
    with pytest.raises(ValueError, match="not in the universe"):
        generate_day(GeneratedDay(seed=1, date=DATE, shocks=(Shock(at="14:00", symbols=("NOPE",), move_pct=1),)), UNIVERSE, SESSION)
    with pytest.raises(ValueError, match="not in the universe"):
        generate_day(RECIPE, UNIVERSE, SESSION, symbols=["NOPE"])


# --- as-of semantics --------------------------------------------------------------------------

T = dt.datetime(2024, 6, 3, 18, 0, tzinfo=dt.UTC)  # 14:00 New York
T_NS = int(T.timestamp()) * 1_000_000_000


def hand_day(prints: list[tuple], quotes: Sequence[tuple] = ()) -> Day:
    """prints: (ns after T, price, size, venue, conditions); quotes: (ns after T, bid, ask)."""
    p = pa.table(
        {
            "ts_event": pa.array([T_NS + r[0] for r in prints], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "symbol": ["AAPL"] * len(prints), "price": [float(r[1]) for r in prints], "size": [r[2] for r in prints],
            "venue": [r[3] for r in prints], "conditions": [r[4] for r in prints],
        }
    )  # fmt: skip
    q = pa.table(
        {
            "ts_event": pa.array([T_NS + r[0] for r in quotes], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "symbol": pa.array(["AAPL"] * len(quotes), pa.string()), "bid": pa.array([r[1] for r in quotes], pa.float64()),
            "ask": pa.array([r[2] for r in quotes], pa.float64()), "bid_size": pa.array([100] * len(quotes), pa.int64()),
            "ask_size": pa.array([200] * len(quotes), pa.int64()),
        }
    )  # fmt: skip
    from marketdata.schema import normalize

    manifest = DayManifest(date=DATE, symbols=["AAPL"], origin=DayOrigin.RECORDED)
    return Day(manifest, normalize(q, QUOTES_SCHEMA), normalize(p, PRINTS_SCHEMA))


US = dt.timedelta(microseconds=1)


def test_no_print_after_as_of_is_ever_visible():
    index = DayIndex(hand_day([(0, 100.00, 100, "Q", ""), (500, 101.00, 100, "Q", ""), (2_000, 102.00, 100, "Q", "")],
                              [(0, 99.99, 100.01), (1_000, 100.99, 101.01)]))  # fmt: skip
    f = DayFeed(index, REFS)
    v = f.snapshot(["AAPL"], T)["AAPL"]
    assert v.truth_tick == 100.00 and v.l1.bid == 99.99  # the print 500 ns later is not visible
    v = f.snapshot(["AAPL"], T + US)["AAPL"]
    assert v.truth_tick == 101.00 and v.l1.bid == 100.99  # visible from the next microsecond
    assert v.truth_tick_time <= T + US and v.l1.time <= T + US
    assert [p.price for p in f.prints_between("AAPL", T - US, T)] == [100.00]  # start < time ≤ end
    assert [p.price for p in f.prints_between("AAPL", T, T + 2 * US)] == [101.00, 102.00]
    assert f.prints_between("AAPL", T + 2 * US, T + dt.timedelta(hours=1)) == []
    before = f.snapshot(["AAPL"], T - US)["AAPL"]
    assert before.l1 is None and before.truth_tick is None and before.mark_source is MarkSource.REFERENCE


def test_views_never_see_the_future_of_a_generated_day(feed):
    rng = np.random.default_rng(3)
    opening = local("09:00")
    for seconds in rng.integers(0, 8 * 3600, 40):
        as_of = opening + dt.timedelta(seconds=int(seconds), microseconds=int(rng.integers(0, 10**6)))
        for v in feed.snapshot(SYMBOLS, as_of).values():
            assert v.truth_tick_time is None or v.truth_tick_time <= as_of
            assert v.l1 is None or v.l1.time <= as_of
            assert v.print_age_seconds is None or v.print_age_seconds >= 0
        recent = feed.prints_between("AAPL", as_of - dt.timedelta(minutes=1), as_of)
        assert all(as_of - dt.timedelta(minutes=1) < p.time <= as_of for p in recent)


def test_the_feed_agrees_with_the_pure_core(day, feed):
    rows = day.prints.to_pylist()
    quotes = day.quotes.to_pylist()
    for symbol in ("AAPL", "BLK", "F"):
        mine = [Print(symbol=r["symbol"], price=r["price"], size=r["size"], venue=r["venue"], conditions=r["conditions"],
                      time=r["ts_event"]) for r in rows if r["symbol"] == symbol]  # fmt: skip
        my_quotes = [r for r in quotes if r["symbol"] == symbol]
        for hhmm in ("09:29:59", "09:30:00", "09:30:02", "09:31", "11:00", "13:37:12", "16:30", "17:00"):
            as_of = local(hhmm)
            seen = [r for r in my_quotes if r["ts_event"] <= as_of]
            book = L1(**{k: v for k, v in seen[-1].items() if k != "ts_event"}, time=seen[-1]["ts_event"]) if seen else None
            plan, lot = day.manifest.tapes[symbol], day.manifest.round_lots[symbol]
            expected = market_view(symbol, as_of, book, mine, REFS[symbol], source=FeedSource.GENERATED, plan=plan, lot=lot)
            got = feed.snapshot([symbol], as_of)[symbol]
            ages = ("print_age_seconds", "l1_age_seconds", "mark_age_seconds")
            assert got.model_dump(exclude=set(ages)) == expected.model_dump(exclude=set(ages)), (symbol, hhmm)
            for age in ages:
                assert getattr(got, age) == pytest.approx(getattr(expected, age), abs=1e-6)


def test_simultaneous_prints_grpan_by_content_truth_tick_by_file_order():
    rows = [(0, 10.00, 100, "Q", ""), (1_000, 10.20, 100, "Q", ""), (1_000, 10.00, 100, "N", ""), (1_000, 10.20, 100, "Z", "")]
    window = MarketDataRule(grpan_window=3)
    one = DayFeed(DayIndex(hand_day(rows)), REFS, window)
    other = DayFeed(DayIndex(hand_day([rows[0], rows[3], rows[1], rows[2]])), REFS, window)
    a, b = one.snapshot(["AAPL"], T + US)["AAPL"], other.snapshot(["AAPL"], T + US)["AAPL"]
    assert (a.grpan, a.concentration) == (b.grpan, b.concentration)
    prints = one.prints_between("AAPL", T - US, T + US)
    assert a.grpan == grpan(prints, window=3).price == 10.20
    assert a.truth_tick == 10.20 and b.truth_tick == 10.00  # the last of the simultaneous ones in the file
    assert truth_tick(prints).price == a.truth_tick


def test_a_replayed_day_keeps_its_wall_clock(day):
    index = DayIndex(day)
    original = DayFeed(index, REFS)
    later = dt.date(2024, 12, 2)  # after the switch to EST: same wall clock, another UTC offset
    replayed = DayFeed(index, REFS, replay_on=later)
    est = dt.timezone(dt.timedelta(hours=-5))
    for hhmm in ("09:30", "12:00", "16:29"):
        a = original.snapshot(SYMBOLS, local(hhmm))
        b = replayed.snapshot(SYMBOLS, dt.datetime.combine(later, dt.time.fromisoformat(hhmm), tzinfo=est))
        for s in SYMBOLS:
            assert (a[s].mark, a[s].grpan, a[s].l1_age_seconds) == (b[s].mark, b[s].grpan, b[s].l1_age_seconds)
            if b[s].truth_tick_time:
                assert b[s].truth_tick_time.astimezone(est).time() == a[s].truth_tick_time.astimezone(NY).time()


def test_symbols_without_data():
    f = DayFeed(DayIndex(hand_day([(0, 100.0, 100, "Q", "")])), REFS)
    v = f.snapshot(["MSFT"], T)["MSFT"]
    assert (v.mark, v.mark_source) == (REFS["MSFT"], MarkSource.REFERENCE)
    with pytest.raises(UnknownSymbol):
        f.snapshot(["NOPE"], T)
    assert f.prints_between("NOPE", T, T + US) == []
    with pytest.raises(ValueError):
        f.snapshot(["AAPL"], T.replace(tzinfo=None))


# --- sources ----------------------------------------------------------------------------------


def test_open_feed_serves_every_source(day, tmp_path):
    write_day(day, tmp_path)
    marks = open_feed(FeedSpec(), UNIVERSE, SESSION, marks={"AAPL": 187.5})
    assert isinstance(marks, MarkFeed)
    v = marks.snapshot(["AAPL", "MSFT"], T)
    assert v["AAPL"].truth_tick == 187.5 and v["MSFT"].truth_tick == REFS["MSFT"]
    assert marks.prints_between("AAPL", T, T + US) == []
    recorded = open_feed(FeedSpec(source=FeedSource.RECORDED, path=str(tmp_path)), UNIVERSE, SESSION)
    generated = open_feed(FeedSpec(source=FeedSource.GENERATED, generated=RECIPE.model_copy(update={"scale": 0.002})), UNIVERSE, SESSION)
    assert recorded.snapshot(["AAPL"], local("12:00"))["AAPL"].source is FeedSource.RECORDED
    assert generated.snapshot(["NVDA"], local("12:00"))["NVDA"].source is FeedSource.GENERATED
    again = open_feed(FeedSpec(source=FeedSource.GENERATED, generated=RECIPE.model_copy(update={"scale": 0.002})), UNIVERSE, SESSION)
    assert again.index is generated.index  # generated once per process
    assert open_feed(FeedSpec(source=FeedSource.RECORDED, path=str(tmp_path)), UNIVERSE, SESSION).index is recorded.index


# --- Databento --------------------------------------------------------------------------------


def test_databento_dbn_import(tmp_path):
    from marketdata.databento import import_dbn

    open_ns = int(dt.datetime(2024, 6, 3, 13, 30, tzinfo=dt.UTC).timestamp()) * 10**9
    mapping = SimpleNamespace(raw_symbol="AAPL", intervals=[SimpleNamespace(start_date=DATE, end_date=DATE + dt.timedelta(days=1), symbol="15")])

    def metadata(schema):
        return dbn.Metadata(dataset="EQUS.ALL", start=open_ns, stype_in=dbn.SType.RAW_SYMBOL,
                            stype_out=dbn.SType.INSTRUMENT_ID, schema=schema, symbols=["AAPL"], mappings=[mapping])  # fmt: skip

    def trade(publisher, ns, price, size, sequence):
        return dbn.TradeMsg(publisher_id=publisher, instrument_id=15, ts_event=open_ns + ns, price=int(price * 10**9), size=size,
                            action=dbn.Action.TRADE, side=dbn.Side.BID, depth=0, ts_recv=open_ns + ns + 10, sequence=sequence)  # fmt: skip

    def book(ns, bid, ask, action=dbn.Action.ADD, price=0.0, size=0, sequence=0):
        return dbn.MBP1Msg(publisher_id=66, instrument_id=15, ts_event=open_ns + ns, price=int(price * 10**9), size=size, action=action,
                           side=dbn.Side.ASK, depth=0, ts_recv=open_ns + ns + 10, sequence=sequence,
                           levels=dbn.BidAskPair(bid_px=int(bid * 10**9), ask_px=int(ask * 10**9), bid_sz=300, ask_sz=200))  # fmt: skip

    trades = tmp_path / "trades.dbn"
    trades.write_bytes(b"".join(bytes(r) for r in (metadata(dbn.Schema.TRADES), trade(66, 1_000, 190.13, 100, 1),
                                                   trade(68, 2_000, 190.125, 45, 2), trade(9, 3_000, 190.12, 300, 3))))  # fmt: skip
    mbp = tmp_path / "mbp1.dbn"
    mbp.write_bytes(b"".join(bytes(r) for r in (metadata(dbn.Schema.MBP_1), book(0, 190.12, 190.13), book(500, 190.12, 190.13),
                                                book(1_000, 190.12, 190.13, dbn.Action.TRADE, 190.13, 100, 1), book(4_000, 190.11, 190.13))))  # fmt: skip
    day = import_dbn([trades, mbp])
    assert day.manifest.date == DATE and day.manifest.symbols == ["AAPL"] and day.manifest.origin is DayOrigin.DATABENTO
    p = day.prints.to_pydict()
    assert p["price"] == [190.13, 190.125, 190.12]  # the trade seen in both files is kept once
    assert p["venue"] == ["Q", TRF_VENUE, "N"]  # Nasdaq, FINRA/Nasdaq TRF, NYSE
    assert p["conditions"] == ["", "I", ""]  # under 100 shares: odd lot
    q = day.quotes.to_pydict()
    assert (q["bid"], q["ask"]) == ([190.12, 190.11], [190.13, 190.13])  # unchanged tops dropped
    write_day(day, tmp_path / "day")
    v = DayFeed(load_index(tmp_path / "day"), REFS).snapshot(["AAPL"], local("09:30:00.000004"))["AAPL"]
    assert (v.truth_tick, v.l1.bid, v.grpan) == (190.12, 190.11, 190.12)


def test_databento_nbbo_is_built_across_publishers_and_unknown_venues_weigh_as_finra(tmp_path):
    from marketdata.databento import import_dbn, venue_of

    open_ns = int(dt.datetime(2024, 6, 3, 13, 30, tzinfo=dt.UTC).timestamp()) * 10**9
    mapping = SimpleNamespace(raw_symbol="AAPL", intervals=[SimpleNamespace(start_date=DATE, end_date=DATE + dt.timedelta(days=1), symbol="15")])
    metadata = dbn.Metadata(dataset="EQUS.ALL", start=open_ns, stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID,
                            schema=dbn.Schema.MBP_1, symbols=["AAPL"], mappings=[mapping])  # fmt: skip

    def top(publisher, ns, bid, ask, bid_sz, ask_sz, action=dbn.Action.ADD, price=0.0, size=0):
        def px(v):
            return dbn.UNDEF_PRICE if v is None else int(v * 10**9)

        return dbn.MBP1Msg(publisher_id=publisher, instrument_id=15, ts_event=open_ns + ns, price=int(price * 10**9), size=size,
                           action=action, side=dbn.Side.ASK, depth=0, ts_recv=open_ns + ns + 10, sequence=ns,
                           levels=dbn.BidAskPair(bid_px=px(bid), ask_px=px(ask), bid_sz=bid_sz, ask_sz=ask_sz))  # fmt: skip

    records = [
        top(66, 1_000, 190.10, 190.14, 300, 200),  # Nasdaq
        top(9, 2_000, 190.11, 190.13, 100, 100),  # NYSE improves both sides
        top(66, 3_000, 190.11, 190.13, 400, 500),  # Nasdaq joins both: sizes summed at the best
        top(9, 4_000, None, 190.15, 0, 100),  # NYSE's bid goes away, its ask backs off
        top(99, 5_000, 190.12, 190.16, 50, 50, dbn.Action.TRADE, 190.12, 77),  # an unknown publisher
    ]
    path = tmp_path / "mbp1.dbn"
    path.write_bytes(b"".join(bytes(r) for r in (metadata, *records)))
    day = import_dbn([path])
    q = day.quotes.to_pydict()
    assert list(zip(q["bid"], q["ask"], q["bid_size"], q["ask_size"], strict=True)) == [
        (190.10, 190.14, 300, 200), (190.11, 190.13, 100, 100), (190.11, 190.13, 500, 600),
        (190.11, 190.13, 400, 500), (190.12, 190.13, 50, 500),
    ]  # fmt: skip
    assert day.prints.to_pydict()["venue"] == [TRF_VENUE]  # unknown → the FINRA class, not a lit exchange
    assert day.prints.to_pydict()["conditions"] == ["I"]  # 77 < a round lot of 100 at $190
    assert day.manifest.round_lots == {"AAPL": 100} and day.manifest.tapes == {}
    assert venue_of(999) == TRF_VENUE and venue_of(66) == "Q" and venue_of(68) == TRF_VENUE
    # Databento's consolidated BBO (CMBP-1) is one venue: taken as it is.
    cmbp = dbn.CMBP1Msg(rtype=dbn.RType.CMBP_1, publisher_id=95, instrument_id=15, ts_event=open_ns + 9_000, price=0, size=0,
                        action=dbn.Action.ADD, side=dbn.Side.BID, ts_recv=open_ns + 9_010,
                        levels=dbn.ConsolidatedBidAskPair(bid_px=190_050_000_000, ask_px=190_070_000_000, bid_sz=900, ask_sz=800,
                                                          bid_pb=66, ask_pb=9))  # fmt: skip
    only = tmp_path / "cmbp1.dbn"
    only.write_bytes(b"".join(bytes(r) for r in (metadata, cmbp)))
    q = import_dbn([only]).quotes.to_pydict()
    assert (q["bid"], q["ask"], q["bid_size"], q["ask_size"]) == ([190.05], [190.07], [900], [800])


# --- CLI --------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    from cli import market
    from cli.errors import UserError

    parser = argparse.ArgumentParser(prog="rig")
    market.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["market", *argv])
    try:
        return asyncio.run(args.run_without_client(args))
    except UserError as err:  # as cli.main does: one line on stderr, and its code
        print(f"error: {err}", file=sys.stderr)
        return err.code


def test_cli_generate_and_show(tmp_path, capsys):
    out = tmp_path / "d"
    assert run_cli("generate", "--seed", "3", "--out", str(out), "--scale", "0.002", "--shock", "14:00:AAPL,MSFT:-5") == 0
    assert "44 symbols" in capsys.readouterr().out
    assert read_day(out).manifest.shocks == [Shock(at="14:00", symbols=("AAPL", "MSFT"), move_pct=-5)]
    assert run_cli("show", "AAPL", "--at", "14:05", "--from", str(out)) == 0
    text = capsys.readouterr().out
    for words in ("L1", "truth tick", "GRPAN", "concentration", "mark", "collar ref", "SOFT gate", "HARD gate", "age"):
        assert words in text
    assert run_cli("show", "AAPL", "--at", "09:10", "--seed", "3", "--scale", "0.002", "--json") == 0
    assert '"mark_source": "REFERENCE"' in capsys.readouterr().out
    assert run_cli("show", "NOPE", "--at", "12:00", "--from", str(out)) == 2
    with pytest.raises(SystemExit):
        run_cli("generate", "--seed", "3", "--out", str(out), "--shock", "14:00-5")


def test_cli_bad_output_and_bad_files_give_one_line(tmp_path, capsys):
    assert run_cli("generate", "--seed", "3", "--out", "/proc/nope", "--scale", "0.002") == 2
    text = capsys.readouterr().err
    assert text.startswith("error: cannot write /proc/nope") and text.count("\n") == 1 and "Traceback" not in text
    out = tmp_path / "d"
    assert run_cli("generate", "--seed", "3", "--out", str(out), "--scale", "0.002") == 0
    capsys.readouterr()
    table = pq.read_table(out / PRINTS_FILE)
    pq.write_table(table.set_column(0, "ts_event", table["ts_event"].cast(pa.int64())), out / PRINTS_FILE)
    assert run_cli("show", "AAPL", "--at", "12:00", "--from", str(out)) == 2
    text = capsys.readouterr().err
    assert (
        text
        == f"error: {out / PRINTS_FILE}: column ts_event is int64, expected timestamp[ns, tz=UTC] (epoch numbers are ambiguous: store a timestamp)\n"
    )
    crossed = tmp_path / "crossed"
    assert run_cli("generate", "--seed", "3", "--out", str(crossed), "--scale", "0.002") == 0
    table = pq.read_table(crossed / QUOTES_FILE)
    bid = table["bid"].to_numpy().copy()
    bid[:2] = table["ask"].to_numpy()[:2] + 0.01
    pq.write_table(table.set_column(2, "bid", pa.array(bid)), crossed / QUOTES_FILE)
    capsys.readouterr()
    assert run_cli("show", "AAPL", "--at", "12:00", "--from", str(crossed)) == 0
    assert "flag        2 crossed quote(s) (bid above ask) in the day" in capsys.readouterr().out
    assert run_cli("show", "AAPL", "--at", "12:00", "--from", str(tmp_path / "none")) == 2
    text = capsys.readouterr().err
    assert text.startswith("error: ") and text.count("\n") == 1


def test_a_scenarios_market_files_are_checked_when_it_loads(day, tmp_path, monkeypatch):
    import activities.scenarios
    from activities.scenarios import plan_scenario

    monkeypatch.setattr(activities.scenarios, "SCENARIO_DIR", tmp_path)  # a market day lives inside the scenarios folder
    folder = tmp_path / "day"
    write_day(day, folder)
    spec = {"name": "bad_market", "start": "10:00", "stop": "10:05", "market": {"file": "day"}, "expect": [{"at": "10:00", "mode": "NORMAL"}]}
    assert plan_scenario(spec).market.path == str(folder)
    table = pq.read_table(folder / QUOTES_FILE)
    pq.write_table(table.set_column(0, "ts_event", table["ts_event"].cast(pa.int64())), folder / QUOTES_FILE)
    with pytest.raises(ValueError) as err:
        plan_scenario(spec)
    assert str(err.value) == (
        f"scenario bad_market: market file day: {folder / QUOTES_FILE}: column ts_event is int64, "
        "expected timestamp[ns, tz=UTC] (epoch numbers are ambiguous: store a timestamp)"
    )
