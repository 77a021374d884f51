"""Feeds: a symbol's `MarketView` as of an exchange time, and the prints between two times.

    feed = open_feed(spec, universe, session)          # spec: domain.marketdata.FeedSpec
    views = feed.snapshot(["AAPL", "MSFT"], as_of)     # dict[str, MarketView]
    prints = feed.prints_between("AAPL", since, now)   # list[Print], since < time ≤ now

Sources, one interface:
- `MarkFeed`  the simulated feed from marks (domain.marketdata.simulated_view): always fresh.
- `DayFeed`   over a recorded file set (`load_index(dir)`) or a generated day (`generated_index`).

A `DayFeed` answers from an index built once per day and process (cached): numpy columns of
quote and print times (µs, rounded up from ns, so a print stamped after `as_of` is never
visible), prices, sizes, and the real prints with their GRPAN weights, classified by the
domain's own rules. A snapshot is one binary search (`searchsorted`) per column for the whole
batch of symbols, never a scan; GRPAN over the batch is the domain's `weighted_mode` in array
form (symbols with simultaneous prints go through `grpan` itself), and the mark is
`choose_mark`'s — a feed's view equals `domain.marketdata.market_view` over the same data
(tests/test_marketdata_io.py checks it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pyarrow as pa

from domain.marketdata import (
    BAND_SLACK,
    L1,
    ROUND_LOT,
    TRF_VENUE,
    FeedSource,
    FeedSpec,
    GeneratedDay,
    Grpan,
    MarketDataRule,
    MarketView,
    Print,
    choose_mark,
    grpan,
    is_real_condition,
    simulated_view,
)
from domain.rules import Session, Universe
from marketdata.files import read_day
from marketdata.schema import MANIFEST_FILE, PRINTS_FILE, QUOTES_FILE, Day, DayManifest, time_ns

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("feed times must be timezone-aware (exchange time)")
    return (moment - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class UnknownSymbol(KeyError):
    """A symbol with neither data in the feed nor a reference price."""


class Feed(Protocol):
    source: FeedSource

    def snapshot(self, symbols: Iterable[str], as_of: datetime) -> dict[str, MarketView]: ...

    def prints_between(self, symbol: str, start: datetime, end: datetime) -> list[Print]: ...


# ---------------------------------------------------------------------------------------------
# The simulated feed


class MarkFeed:
    """Today's simulated feed: each symbol's mark (else its reference price) as a fresh truth
    tick with bid/ask ±1 bp. No prints: passive orders keep the mode probabilities."""

    source = FeedSource.MARKS

    def __init__(self, marks: Mapping[str, float], reference_prices: Mapping[str, float] | None = None) -> None:
        self.marks = dict(marks)
        self.reference_prices = reference_prices or {}

    def snapshot(self, symbols: Iterable[str], as_of: datetime) -> dict[str, MarketView]:
        to_us(as_of)  # refuses a naive time, like every feed
        views = {}
        for symbol in symbols:
            mark = self.marks.get(symbol, self.reference_prices.get(symbol))
            if mark is None:
                raise UnknownSymbol(symbol)
            views[symbol] = simulated_view(symbol, mark, as_of)
        return views

    def prints_between(self, symbol: str, start: datetime, end: datetime) -> list[Print]:
        return []


# ---------------------------------------------------------------------------------------------
# The index of a day

# A row's key: its symbol code above the nanoseconds since the day's first row (2^47 ns ≈ 39 h),
# so rows sorted by (symbol, time) have increasing keys and one searchsorted serves all symbols.
OFFSET_BITS = 47
MAX_SYMBOLS = 1 << (63 - OFFSET_BITS)


class Lookup(NamedTuple):
    """As-of answers for a batch of symbols (Python lists, one entry per symbol)."""

    has_l1: list[bool]
    l1_us: list[int]
    bid: list[float]
    ask: list[float]
    bid_size: list[int]
    ask_size: list[int]
    has_print: list[bool]
    print_us: list[int]
    truth: list[float]
    grpan: list[float]
    concentration: list[float]
    grpan_prints: list[int]


class DayIndex:
    """A day's quotes and prints as numpy columns for as-of lookups (built once, read-only).

    Rows are in (symbol, time) order, simultaneous rows in file order. Each row has a key
    `code << 47 | ns since the day's first row` (codes in symbol order), so one `searchsorted`
    answers "the last row at or before t" for a whole batch of symbols. Times go out rounded up
    to the microsecond: a row is visible at `t` (a µs datetime) exactly when its ns time is at
    or before `t`. Real prints (the domain's rule, applied per distinct condition string) are
    copied out with their GRPAN weight units and `price_key`ed prices."""

    def __init__(self, day: Day, min_print_size: int) -> None:
        self.manifest: DayManifest = day.manifest
        self.min_print_size = min_print_size
        # Rows a view could not hold are dropped and counted: one-sided or zero quotes, prints
        # without a price or size (recorded data has them; a snapshot must never fail on them).
        quotes = _valid(day.quotes, ("bid", "ask"), ("bid_size", "ask_size"))
        prints = _valid(day.prints, ("price", "size"), ())
        self.dropped = {"quotes": day.quotes.num_rows - quotes.num_rows, "prints": day.prints.num_rows - prints.num_rows}
        q_names, p_names = _names(quotes), _names(prints)
        self.symbols: list[str] = sorted(set(q_names) | set(p_names))
        if len(self.symbols) >= MAX_SYMBOLS:
            raise ValueError(f"a day holds at most {MAX_SYMBOLS - 1} symbols")
        self.code_of: dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        q_ns, p_ns = time_ns(quotes), time_ns(prints)
        stamps = [int(a.min()) for a in (q_ns, p_ns) if a.size]
        self.base_ns = min(stamps) if stamps else 0
        quotes, self.q_ns, self.q_key = self._in_key_order(quotes, q_names, q_ns)
        prints, self.p_ns, self.p_key = self._in_key_order(prints, p_names, p_ns)
        n = len(self.symbols)

        self.q_bid, self.q_ask = _numpy(quotes, "bid"), _numpy(quotes, "ask")
        self.q_bid_size, self.q_ask_size = _numpy(quotes, "bid_size"), _numpy(quotes, "ask_size")
        self.q_start = _starts(self.q_key, n)

        self.p_price, self.p_size = _numpy(prints, "price"), _numpy(prints, "size")
        venue, conditions = _dictionary(prints, "venue"), _dictionary(prints, "conditions")
        self.venues: list[str] = venue.dictionary.to_pylist()
        self.conditions: list[str] = conditions.dictionary.to_pylist()
        self.p_venue = venue.indices.to_numpy(zero_copy_only=False)
        self.p_conditions = conditions.indices.to_numpy(zero_copy_only=False)
        self.p_start = _starts(self.p_key, n)

        # The domain's rules per distinct value, spread over the rows.
        real_condition = np.array([is_real_condition(c) for c in self.conditions] or [True], dtype=bool)
        is_trf = np.array([v == TRF_VENUE for v in self.venues] or [False], dtype=bool)
        real = (self.p_size >= min_print_size) & real_condition[self.p_conditions]
        self.r_row = np.flatnonzero(real)
        self.r_us = _ceil_us(self.p_ns[self.r_row])
        self.r_key = self.p_key[self.r_row]
        self.r_price = np.round(self.p_price[self.r_row], 6)  # domain.marketdata.price_key
        self.r_units = _units(self.p_size[self.r_row], is_trf[self.p_venue[self.r_row]])
        r_code = self.r_key >> OFFSET_BITS
        self.r_start = _starts(self.r_key, n)
        # Symbols with simultaneous real prints (to the µs, as Print times say) take the pure
        # core's path for GRPAN.
        self.ties = np.zeros(n, dtype=bool)
        self.ties[r_code[np.flatnonzero((np.diff(self.r_us) == 0) & (np.diff(r_code) == 0))]] = True

    def _in_key_order(self, table: pa.Table, names: list[str], ns: np.ndarray) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """The table in (symbol, time) order — sorted stably if it is not — with each row's
        time (ns) and key."""
        if table.num_rows == 0:
            return table, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if int(ns.max()) - self.base_ns >= 1 << OFFSET_BITS:
            raise ValueError("a day's rows span more than 39 hours")
        lut = np.array([self.code_of[name] for name in names], dtype=np.int64)
        key = lut[_dictionary(table, "symbol").indices.to_numpy(zero_copy_only=False)]
        # In place (a day's columns are large): code << 47 | (ns - base), the offset < 2^47.
        np.left_shift(key, OFFSET_BITS, out=key)
        key += ns
        key -= self.base_ns
        if key.size > 1 and bool((key[1:] < key[:-1]).any()):
            order = np.argsort(key, kind="stable")
            table, ns, key = table.take(pa.array(order)), ns[order], key[order]
        return table, ns, key

    def _offset(self, t_us: int) -> int:
        # Before the day's first row → just below every key of the code; after → its last key.
        return min(max(t_us * 1000 - self.base_ns, -1), (1 << OFFSET_BITS) - 1)

    def key_of(self, code: int, t_us: int) -> int:
        return (code << OFFSET_BITS) + self._offset(t_us)

    def lookup(self, codes: np.ndarray, t_us: int, window: int, band: float) -> Lookup:
        """The latest L1, truth tick and GRPAN at or before `t_us` for each code."""
        keys = (codes << OFFSET_BITS) + self._offset(t_us)
        zeros = [0] * codes.size
        if self.q_key.size:
            qi = self.q_key.searchsorted(keys, "right") - 1
            has_q = qi >= self.q_start[codes]  # else the row belongs to an earlier symbol
            qi = np.where(has_q, qi, 0)
            quotes = [_ceil_us(self.q_ns[qi]).tolist()] + [a[qi].tolist() for a in (self.q_bid, self.q_ask, self.q_bid_size, self.q_ask_size)]
            has_l1 = has_q.tolist()
        else:
            quotes, has_l1 = [zeros] * 5, [False] * codes.size
        if self.r_key.size:
            j = self.r_key.searchsorted(keys, "right") - 1
            start = self.r_start[codes]
            has_r = j >= start
            last = np.where(has_r, j, 0)
            # The GRPAN window, oldest first: up to `window` real prints ending at j.
            slots = last[:, None] - np.arange(window - 1, -1, -1)
            filled = (slots >= start[:, None]) & has_r[:, None]
            slots = np.where(filled, slots, 0)
            prices = self.r_price[slots]
            units = np.where(filled, self.r_units[slots], 0)
            # weighted_mode: each slot's price total; the best total, then the latest slot.
            totals = ((prices[:, :, None] == prices[:, None, :]) * units[:, None, :]).sum(axis=2)
            best = np.where(filled, totals * (window + 1) + np.arange(window), -1).argmax(axis=1)
            mode = prices[np.arange(codes.size), best]
            near = ((np.abs(prices - mode[:, None]) <= band + BAND_SLACK) * units).sum(axis=1)
            concentration = near / np.maximum(units.sum(axis=1), 1)
            prints = [
                has_r.tolist(), self.r_us[last].tolist(), self.r_price[last].tolist(), mode.tolist(),
                concentration.tolist(), filled.sum(axis=1).tolist(),
            ]  # fmt: skip
        else:
            prints = [[False] * codes.size, zeros, zeros, zeros, zeros, zeros]
        return Lookup(has_l1, *quotes, *prints)

    def real_prints_for_grpan(self, code: int, t_us: int, window: int) -> list[Print]:
        """A symbol's real prints from its GRPAN window's first time up to t (ties included)."""
        a = int(self.r_start[code])
        end = int(self.r_key.searchsorted(self.key_of(code, t_us), "right"))
        if end <= a:
            return []
        first = int(self.r_us[a:end].searchsorted(self.r_us[max(a, end - window)], "left")) + a
        return [self.print_at(int(row)) for row in self.r_row[first:end]]

    def print_at(self, row: int, shift_us: int = 0) -> Print:
        return Print(
            symbol=self.symbols[int(self.p_key[row]) >> OFFSET_BITS],
            price=float(self.p_price[row]),
            size=int(self.p_size[row]),
            venue=self.venues[self.p_venue[row]],
            conditions=self.conditions[self.p_conditions[row]],
            time=from_us(-(-int(self.p_ns[row]) // 1000) + shift_us),
        )

    def rows_between(self, code: int, start_us: int, end_us: int) -> range:
        """A symbol's print rows with start < time ≤ end."""
        lo, hi = int(self.p_start[code]), int(self.p_start[code + 1])
        a = int(self.p_key.searchsorted(self.key_of(code, start_us), "right"))
        b = int(self.p_key.searchsorted(self.key_of(code, end_us), "right"))
        return range(min(max(a, lo), hi), min(max(b, lo), hi))


def _ceil_us(ns: np.ndarray) -> np.ndarray:
    return -((-ns) // 1000)


def _valid(table: pa.Table, positive: tuple[str, ...], non_negative: tuple[str, ...]) -> pa.Table:
    """The rows whose `positive` columns are > 0 and `non_negative` ones ≥ 0, all finite."""
    columns = [(_numpy(table, name), name in positive) for name in positive + non_negative]
    # Usually every row is fine: two reductions per column tell (a NaN fails `min > 0`).
    if table.num_rows == 0 or all((v.min() > 0 if strict else v.min() >= 0) and v.max() < np.inf for v, strict in columns):
        return table
    ok = np.ones(table.num_rows, dtype=bool)
    for v, strict in columns:
        ok &= ((v > 0) if strict else (v >= 0)) & (v < np.inf)
    return table.filter(pa.array(ok))


def _array(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _numpy(table: pa.Table, name: str) -> np.ndarray:
    return _array(table, name).to_numpy(zero_copy_only=False)


def _dictionary(table: pa.Table, name: str) -> pa.DictionaryArray:
    array = _array(table, name)
    return array if pa.types.is_dictionary(array.type) else array.dictionary_encode()


def _names(table: pa.Table) -> list[str]:
    return _dictionary(table, "symbol").dictionary.to_pylist() if table.num_rows else []


def _starts(key: np.ndarray, n: int) -> np.ndarray:
    """Each code's first row in key order, and one past the last row at [n]."""
    return key.searchsorted(np.arange(n + 1, dtype=np.int64) << OFFSET_BITS, "left")


def _units(size: np.ndarray, trf: np.ndarray) -> np.ndarray:
    """`weight_units` over arrays: 5 off TRF or TRF 100/200; 2 TRF round lots ≥ 300; else 1."""
    units = np.where((size >= 3 * ROUND_LOT) & (size % ROUND_LOT == 0), 2, 1)
    units = np.where((size == ROUND_LOT) | (size == 2 * ROUND_LOT), 5, units)
    return np.where(trf, units, 5).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# The feed over a day


class DayFeed:
    """As-of views over a day (recorded or generated). `replay_on` moves the day onto another
    date at the same exchange wall times; views are stamped in the caller's time."""

    def __init__(
        self,
        index: DayIndex,
        reference_prices: Mapping[str, float] | None = None,
        rule: MarketDataRule = MarketDataRule(),
        source: FeedSource = FeedSource.RECORDED,
        replay_on: date | None = None,
    ) -> None:
        if rule.min_print_size != index.min_print_size:
            raise ValueError("the index was built for another min_print_size")
        self.index = index
        self.reference_prices = reference_prices or {}
        self.rule = rule
        self.source = source
        self.shift_us = 0
        if replay_on is not None:
            m = index.manifest
            self.shift_us = to_us(m.local(m.open, on=replay_on)) - to_us(m.local(m.open))

    @property
    def manifest(self) -> DayManifest:
        return self.index.manifest

    def snapshot(self, symbols: Iterable[str], as_of: datetime) -> dict[str, MarketView]:
        t = to_us(as_of) - self.shift_us
        symbols = list(symbols)
        index, rule, shift = self.index, self.rule, self.shift_us
        codes = [index.code_of.get(s, -1) for s in symbols]
        known = np.array([c for c in codes if c >= 0], dtype=np.int64)
        found = index.lookup(known, t, rule.grpan_window, rule.grpan_band) if known.size else None
        views: dict[str, MarketView] = {}
        k = 0
        for symbol, code in zip(symbols, codes):
            l1 = truth = tick_time = print_age = l1_age = None
            g: Grpan | None = None
            if code >= 0:
                if found.has_l1[k]:
                    q_us = found.l1_us[k]
                    # Built without re-validation: the index holds checked, typed columns (see DayIndex).
                    l1 = L1.model_construct(
                        symbol=symbol,
                        bid=float(found.bid[k]),
                        ask=float(found.ask[k]),
                        bid_size=int(found.bid_size[k]),
                        ask_size=int(found.ask_size[k]),
                        time=from_us(q_us + shift),
                    )
                    l1_age = (t - q_us) / 1e6
                if found.has_print[k]:
                    p_us = found.print_us[k]
                    truth, tick_time, print_age = found.truth[k], from_us(p_us + shift), (t - p_us) / 1e6
                    if index.ties[code]:
                        real = index.real_prints_for_grpan(code, t, rule.grpan_window)
                        g = grpan(real, rule.grpan_window, rule.grpan_band, rule.min_print_size)
                    else:
                        g = Grpan(found.grpan[k], found.concentration[k], found.grpan_prints[k])
                k += 1
            reference = self.reference_prices.get(symbol)
            if truth is None and l1 is None and reference is None:
                raise UnknownSymbol(symbol)
            mark, mark_source = choose_mark(truth, (l1.bid + l1.ask) / 2 if l1 else None, reference)
            views[symbol] = MarketView.model_construct(
                symbol=symbol,
                as_of=as_of,
                source=self.source,
                l1=l1,
                truth_tick=None if truth is None else float(truth),
                truth_tick_time=tick_time,
                grpan=float(g.price) if g else None,
                concentration=float(g.concentration) if g else None,
                grpan_prints=int(g.prints) if g else 0,
                print_age_seconds=None if print_age is None else float(print_age),
                l1_age_seconds=None if l1_age is None else float(l1_age),
                mark=float(mark),
                mark_source=mark_source,
            )
        return views

    def prints_between(self, symbol: str, start: datetime, end: datetime) -> list[Print]:
        """A symbol's prints with start < time ≤ end (every print, real or not), oldest first."""
        code = self.index.code_of.get(symbol)
        if code is None:
            return []
        rows = self.index.rows_between(code, to_us(start) - self.shift_us, to_us(end) - self.shift_us)
        return [self.index.print_at(row, self.shift_us) for row in rows]


# ---------------------------------------------------------------------------------------------
# Opening feeds, with a per-process cache of indexed days

_CACHE_SIZE = 8  # indexed days kept per process (~100 MB each at scale 0.05; concurrent scenarios each use one)
_cache: OrderedDict[tuple, DayIndex] = OrderedDict()
_lock = threading.Lock()


def _cached(key: tuple, build: Callable[[], DayIndex]) -> DayIndex:
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        index = build()
        _cache[key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return index


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def load_index(directory: Path | str, min_print_size: int = MarketDataRule().min_print_size) -> DayIndex:
    """The indexed day in `directory`, read once per process (again if its files change)."""
    directory = Path(directory).resolve()
    stamp = tuple((st.st_mtime_ns, st.st_size) for st in (directory.joinpath(f).stat() for f in (QUOTES_FILE, PRINTS_FILE, MANIFEST_FILE)))
    return _cached(("files", str(directory), stamp, min_print_size), lambda: DayIndex(read_day(directory), min_print_size))


def generated_index(recipe: GeneratedDay, universe: Universe, session: Session, min_print_size: int = MarketDataRule().min_print_size) -> DayIndex:
    """The generated day for `recipe`, generated once per process."""
    from marketdata.generator import generate_day, universe_key

    key = ("generated", recipe, universe_key(universe), session.time_zone, session.open, session.close, min_print_size)
    return _cached(key, lambda: DayIndex(generate_day(recipe, universe, session), min_print_size))


def reference_prices(universe: Universe) -> dict[str, float]:
    return {i.symbol: i.reference_price for i in universe.instruments}


def open_feed(
    spec: FeedSpec,
    universe: Universe,
    session: Session,
    rule: MarketDataRule = MarketDataRule(),
    marks: Mapping[str, float] | None = None,
) -> Feed:
    """The feed a spec names. `marks` feed the simulated source (the account's marks)."""
    refs = reference_prices(universe)
    if spec.source is FeedSource.MARKS:
        return MarkFeed(marks or {}, refs)
    if spec.source is FeedSource.RECORDED:
        index = load_index(spec.path, rule.min_print_size)
    else:
        index = generated_index(spec.generated, universe, session, rule.min_print_size)
    return DayFeed(index, refs, rule, spec.source, spec.replay_on)
