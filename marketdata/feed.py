"""Feeds: symbols' `MarketView`s as of an exchange time, L1 at a moment, prints in a window.

    feed = open_feed(spec, universe, session, rule)     # spec: domain.marketdata.FeedSpec
    snap = feed.snapshot(["AAPL", "MSFT"], as_of)      # columnar; snap["AAPL"] builds one MarketView
    prints = feed.prints_between("AAPL", since, now)   # list[Print], since < time ≤ now
    quote = feed.l1_at("AAPL", arrival)                # the L1 in force at that moment
    prices, sizes = feed.book_prints("AAPL", since, now)  # book executions, for matching

Sources, one interface:
- `MarkFeed`  the simulated feed from marks (domain.marketdata.simulated_view): always fresh.
- `DayFeed`   over a recorded file set (`load_index(dir)`) or a generated day (`generated_index`).

A `DayFeed` answers from an index built once per day and process (cached): numpy columns of
quote and print times (µs, rounded up from ns, so a print stamped after `as_of` is never
visible), prices, sizes; per print whether it is real (the symbol's SIP plan's sale-condition
table, the first-eligible-trade-of-the-day rule, `min_print_size`), its GRPAN weight (the
symbol's round lot) and whether it executed against a lit book (matching). A snapshot is one
binary search (`searchsorted`) per column for the whole batch of symbols and GRPAN over the batch
in array form (symbols with simultaneous prints go through the pure core); it stays columnar —
a `MarketView` is built only for the symbol asked for. A view equals
`domain.marketdata.market_view` over the same data (tests/test_marketdata_io.py checks it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pyarrow as pa

from domain.conditions import (
    DEFAULT_PLAN,
    LastSale,
    SipPlan,
    last_sale,
    round_lot,
)
from domain.marketdata import (
    BAND_SLACK,
    L1,
    TRF_VENUE,
    FeedSource,
    FeedSpec,
    GeneratedDay,
    Grpan,
    MarketDataRule,
    MarketView,
    Print,
    grpan_of_real,
    mark_of,
    simulated_view,
)
from domain.matching import book_execution
from domain.rules import Session, Universe
from marketdata.files import read_day
from marketdata.schema import MANIFEST_FILE, PRINTS_FILE, QUOTES_FILE, Day, DayManifest, time_ns

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NO, YES, FIRST = 0, 1, 2  # LastSale as small integers for the columns
CLASS_CODE = {LastSale.NO: NO, LastSale.YES: YES, LastSale.FIRST: FIRST}


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

    def snapshot(self, symbols: Iterable[str], as_of: datetime) -> Mapping[str, MarketView]: ...

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
    """As-of answers for a batch of symbol codes (numpy arrays, one entry per code)."""

    has_l1: np.ndarray
    l1_us: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    has_print: np.ndarray
    last_real: np.ndarray  # the latest real print's row among the real prints (0 without one)
    print_us: np.ndarray
    truth: np.ndarray


class GrpanColumns(NamedTuple):
    price: np.ndarray
    concentration: np.ndarray
    prints: np.ndarray


def index_key(rule: MarketDataRule) -> tuple:
    """What of the rule an index is built for."""
    return (rule.min_print_size, rule.round_lot_tiers)


class DayIndex:
    """A day's quotes and prints as numpy columns for as-of lookups (built once, read-only).

    Rows are in (symbol, time) order, simultaneous rows in file order. Each row has a key
    `code << 47 | ns since the day's first row` (codes in symbol order), so one `searchsorted`
    answers "the last row at or before t" for a whole batch of symbols. Times go out rounded up
    to the microsecond: a row is visible at `t` (a µs datetime) exactly when its ns time is at
    or before `t`. Per print: real or not, GRPAN weight, book execution or not (see the module
    docstring). Crossed quotes are counted (`crossed`) and flagged, not dropped. The day's rows
    are checked when its files are read (`marketdata/files.py`)."""

    def __init__(self, day: Day, rule: MarketDataRule = MarketDataRule()) -> None:
        self.manifest: DayManifest = day.manifest
        self.key = index_key(rule)
        self.min_print_size = rule.min_print_size
        quotes, prints = day.quotes, day.prints
        q_names, p_names = _names(quotes), _names(prints)
        self.symbols: list[str] = sorted(set(q_names) | set(p_names))
        if len(self.symbols) >= MAX_SYMBOLS:
            raise ValueError(f"a day holds at most {MAX_SYMBOLS - 1} symbols")
        self.code_of: dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        n = len(self.symbols)
        tapes = self.manifest.tapes
        self.plans: list[SipPlan] = [tapes.get(s, DEFAULT_PLAN) for s in self.symbols]
        q_ns, p_ns = time_ns(quotes), time_ns(prints)
        stamps = [int(a.min()) for a in (q_ns, p_ns) if a.size]
        self.base_ns = min(stamps) if stamps else 0
        quotes, self.q_ns, self.q_key = self._in_key_order(quotes, q_names, q_ns)
        prints, self.p_ns, self.p_key = self._in_key_order(prints, p_names, p_ns)

        self.q_bid, self.q_ask = _numpy(quotes, "bid"), _numpy(quotes, "ask")
        self.q_bid_size, self.q_ask_size = _numpy(quotes, "bid_size"), _numpy(quotes, "ask_size")
        self.q_start = _starts(self.q_key, n)
        self.crossed = int(np.count_nonzero(self.q_bid > self.q_ask))  # kept and flagged, never dropped
        self.lots = np.array([self._round_lot(code, rule) for code in range(n)] or [100], dtype=np.int64)

        self.p_price, self.p_size = _numpy(prints, "price"), _numpy(prints, "size")
        venue, conditions = _dictionary(prints, "venue"), _dictionary(prints, "conditions")
        self.venues: list[str] = venue.dictionary.to_pylist()
        self.conditions: list[str] = conditions.dictionary.to_pylist()
        self.p_venue = venue.indices.to_numpy(zero_copy_only=False)
        self.p_conditions = conditions.indices.to_numpy(zero_copy_only=False)
        self.p_start = _starts(self.p_key, n)
        p_code = self.p_key >> OFFSET_BITS

        # The domain's rules per distinct (plan, conditions) value, spread over the rows with one
        # gather each: row value = utp × |conditions| + conditions code.
        utp = np.array([plan is SipPlan.UTP for plan in self.plans] or [False], dtype=np.int64)[p_code]
        pair = utp * max(len(self.conditions), 1) + self.p_conditions
        is_trf = np.array([v == TRF_VENUE for v in self.venues] or [False], dtype=bool)[self.p_venue]
        plans = (SipPlan.CTA, SipPlan.UTP)
        klass = np.array([CLASS_CODE[last_sale(c, plan)] for plan in plans for c in self.conditions] or [YES], dtype=np.int8)[pair]
        # Last-sale eligible: YES, or the symbol's first candidate of the day when it is FIRST-only.
        eligible = klass == YES
        candidates = np.flatnonzero(klass != NO)
        codes = p_code[candidates]
        eligible[candidates[np.flatnonzero(np.diff(codes, prepend=-1))]] = True  # rows are in symbol order
        books = np.array([book_execution(c, "", plan) for plan in plans for c in self.conditions] or [True], dtype=bool)
        self.p_book = ~is_trf & books[pair]

        real = eligible & (self.p_size >= rule.min_print_size)
        self.r_row = np.flatnonzero(real)
        self.r_us = _ceil_us(self.p_ns[self.r_row])
        self.r_key = self.p_key[self.r_row]
        self.r_price = np.round(self.p_price[self.r_row], 6)  # domain.marketdata.price_key
        r_code = self.r_key >> OFFSET_BITS
        self.r_units = _units(self.p_size[self.r_row], is_trf[self.r_row], self.lots[r_code])
        self.r_start = _starts(self.r_key, n)
        # Symbols with simultaneous real prints (to the µs, as Print times say) take the pure
        # core's path for GRPAN.
        self.ties = np.zeros(n, dtype=bool)
        self.ties[r_code[np.flatnonzero((np.diff(self.r_us) == 0) & (np.diff(r_code) == 0))]] = True

    def _round_lot(self, code: int, rule: MarketDataRule) -> int:
        """The manifest's round lot for the symbol, else its price tier's by the day's first
        quote (or print): the average closing price is not in a day's files."""
        symbol = self.symbols[code]
        if symbol in self.manifest.round_lots:
            return self.manifest.round_lots[symbol]
        row = int(self.q_start[code])
        if row < self.q_start[code + 1]:
            return round_lot((float(self.q_bid[row]) + float(self.q_ask[row])) / 2, rule.round_lot_tiers)
        return 100

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

    def lookup(self, codes: np.ndarray, t_us: int) -> Lookup:
        """The latest L1 and truth tick at or before `t_us` for each code."""
        keys = (codes << OFFSET_BITS) + self._offset(t_us)
        zeros = np.zeros(codes.size)
        if self.q_key.size:
            qi = self.q_key.searchsorted(keys, "right") - 1
            has_q = qi >= self.q_start[codes]  # else the row belongs to an earlier symbol
            qi = np.where(has_q, qi, 0)
            quotes = (has_q, _ceil_us(self.q_ns[qi]), self.q_bid[qi], self.q_ask[qi], self.q_bid_size[qi], self.q_ask_size[qi])
        else:
            quotes = (np.zeros(codes.size, dtype=bool), zeros, zeros, zeros, zeros, zeros)
        if not self.r_key.size:
            return Lookup(*quotes, np.zeros(codes.size, dtype=bool), np.zeros(codes.size, dtype=np.int64), zeros, zeros)
        j = self.r_key.searchsorted(keys, "right") - 1
        has_r = j >= self.r_start[codes]
        last = np.where(has_r, j, 0)
        return Lookup(*quotes, has_r, last, self.r_us[last], self.r_price[last])

    def grpan(self, codes: np.ndarray, found: Lookup, window: int, band: float) -> GrpanColumns:
        """GRPAN and its concentration for each code of a lookup, in array form (`weighted_mode`)."""
        if not self.r_price.size:
            zeros = np.zeros(codes.size)
            return GrpanColumns(zeros, zeros, zeros.astype(np.int64))
        start = self.r_start[codes]
        # The window, oldest first: up to `window` real prints ending at the latest.
        slots = found.last_real[:, None] - np.arange(window - 1, -1, -1)
        filled = (slots >= start[:, None]) & found.has_print[:, None]
        slots = np.where(filled, slots, 0)
        prices = self.r_price[slots]
        units = np.where(filled, self.r_units[slots], 0)
        # Each slot's price total; the best total, then the latest slot.
        totals = ((prices[:, :, None] == prices[:, None, :]) * units[:, None, :]).sum(axis=2)
        best = np.where(filled, totals * (window + 1) + np.arange(window), -1).argmax(axis=1)
        mode = prices[np.arange(codes.size), best]
        near = ((np.abs(prices - mode[:, None]) <= band + BAND_SLACK) * units).sum(axis=1)
        return GrpanColumns(mode, near / np.maximum(units.sum(axis=1), 1), filled.sum(axis=1))

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

    def quote_row_at(self, code: int, t_us: int) -> int | None:
        """The symbol's quote row in force at t (the last at or before it), if any."""
        row = int(self.q_key.searchsorted(self.key_of(code, t_us), "right")) - 1
        return row if row >= int(self.q_start[code]) else None


def _ceil_us(ns: np.ndarray) -> np.ndarray:
    return -((-ns) // 1000)


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


def _units(size: np.ndarray, trf: np.ndarray, lot: np.ndarray) -> np.ndarray:
    """`weight_units` over arrays: 5 off TRF or TRF of one or two round lots; 2 TRF whole lots
    of three or more; else 1 (computed on the TRF rows only)."""
    units = np.full(size.size, 5, dtype=np.int64)
    rows = np.flatnonzero(trf)
    if rows.size:
        s, lots = size[rows], lot[rows]
        units[rows] = np.where((s == lots) | (s == 2 * lots), 5, np.where((s >= 3 * lots) & (s % lots == 0), 2, 1))
    return units


# ---------------------------------------------------------------------------------------------
# The feed over a day


BATCHES_KEPT = 64  # symbol lists a feed remembers the codes of


class Snapshot(Mapping[str, MarketView]):
    """Views of a batch of symbols as of one time, columnar: `snap[symbol]` builds that one
    `MarketView` (and keeps it); the batch's GRPAN is computed when the first view is built.
    Iterating gives the symbols asked for."""

    def __init__(self, feed: DayFeed, symbols: tuple[str, ...], as_of: datetime, t_us: int) -> None:
        self._feed, self._symbols, self._as_of, self._t = feed, symbols, as_of, t_us
        self._codes, self._slot = feed.batch(symbols)
        self.found = feed.index.lookup(self._codes, t_us) if self._codes.size else None
        self._grpan: GrpanColumns | None = None
        self._built: dict[str, MarketView] = {}

    def __len__(self) -> int:
        return len(self._symbols)

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def __getitem__(self, symbol: str) -> MarketView:
        view = self._built.get(symbol)
        if view is None:
            if symbol not in self._symbols:
                raise KeyError(symbol)
            k = self._slot.get(symbol)
            if k is not None and self._grpan is None and self.found is not None:
                rule = self._feed.rule
                self._grpan = self._feed.index.grpan(self._codes, self.found, rule.grpan_window, rule.grpan_band)
            view = self._built[symbol] = self._feed.view_from(symbol, k, self._as_of, self._t, self.found, self._grpan)
        return view


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
        if index_key(rule) != index.key:
            raise ValueError("the index was built for another min_print_size or other round-lot tiers")
        self.index = index
        self.reference_prices = reference_prices or {}
        self.rule = rule
        self.source = source
        self._batches: dict[tuple[str, ...], tuple[np.ndarray, dict[str, int]]] = {}
        self.shift_us = 0
        if replay_on is not None:
            m = index.manifest
            self.shift_us = to_us(m.local(m.open, on=replay_on)) - to_us(m.local(m.open))

    @property
    def manifest(self) -> DayManifest:
        return self.index.manifest

    def snapshot(self, symbols: Iterable[str], as_of: datetime) -> Snapshot:
        return Snapshot(self, tuple(symbols), as_of, to_us(as_of) - self.shift_us)

    def batch(self, symbols: tuple[str, ...]) -> tuple[np.ndarray, dict[str, int]]:
        """The codes of the symbols with data and each one's slot (kept: a cycle asks for the
        same symbols again and again). Raises UnknownSymbol for one with no data nor reference."""
        found = self._batches.get(symbols)
        if found is None:
            slot: dict[str, int] = {}
            for symbol in symbols:
                if symbol in self.index.code_of:
                    slot.setdefault(symbol, len(slot))
                elif symbol not in self.reference_prices:
                    raise UnknownSymbol(symbol)
            found = np.array([self.index.code_of[s] for s in slot], dtype=np.int64), slot
            if len(self._batches) >= BATCHES_KEPT:
                self._batches.clear()
            self._batches[symbols] = found
        return found

    def view_from(self, symbol: str, k: int | None, as_of: datetime, t: int, found: Lookup | None, grpans: GrpanColumns | None) -> MarketView:
        """One symbol's view from a snapshot's columns (`k` its slot; None: no data for it)."""
        index, rule, shift = self.index, self.rule, self.shift_us
        l1 = truth = tick_time = print_age = l1_age = None
        g: Grpan | None = None
        if k is not None and found is not None:
            code = index.code_of[symbol]
            if found.has_l1[k]:
                q_us = int(found.l1_us[k])
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
                p_us = int(found.print_us[k])
                truth, tick_time, print_age = float(found.truth[k]), from_us(p_us + shift), (t - p_us) / 1e6
                if index.ties[code]:
                    lot = int(index.lots[code])
                    g = grpan_of_real(index.real_prints_for_grpan(code, t, rule.grpan_window), rule.grpan_window, rule.grpan_band, lot)
                elif grpans is not None:
                    g = Grpan(float(grpans.price[k]), float(grpans.concentration[k]), int(grpans.prints[k]))
        mark = mark_of(truth, print_age, l1, l1_age, self.reference_prices.get(symbol), rule)
        return MarketView.model_construct(
            symbol=symbol,
            as_of=as_of,
            source=self.source,
            l1=l1,
            truth_tick=truth,
            truth_tick_time=tick_time,
            grpan=g.price if g else None,
            concentration=g.concentration if g else None,
            grpan_prints=g.prints if g else 0,
            print_age_seconds=print_age,
            l1_age_seconds=l1_age,
            mark=float(mark.price),
            mark_source=mark.source,
            mark_age_seconds=mark.age_seconds,
            mark_stale=mark.stale,
            mark_clamped=mark.clamped,
        )

    def prints_between(self, symbol: str, start: datetime, end: datetime) -> list[Print]:
        """A symbol's prints with start < time ≤ end (every print, real or not), oldest first."""
        code = self.index.code_of.get(symbol)
        if code is None:
            return []
        rows = self.index.rows_between(code, to_us(start) - self.shift_us, to_us(end) - self.shift_us)
        return [self.index.print_at(row, self.shift_us) for row in rows]

    def real_between(self, symbol: str, start: datetime, end: datetime) -> list[bool]:
        """For `prints_between`'s prints: which are real (the index's verdict, first-of-day rule included)."""
        code = self.index.code_of.get(symbol)
        if code is None:
            return []
        span = self.index.rows_between(code, to_us(start) - self.shift_us, to_us(end) - self.shift_us)
        rows, real = np.arange(span.start, span.stop), self.index.r_row
        at = np.minimum(real.searchsorted(rows), max(real.size - 1, 0))
        return [bool(x) for x in (real[at] == rows)] if real.size else [False] * rows.size

    def book_prints(self, symbol: str, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Prices and sizes of a symbol's book executions with start < time ≤ end, oldest first."""
        code = self.index.code_of.get(symbol)
        if code is None:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        rows = self.index.rows_between(code, to_us(start) - self.shift_us, to_us(end) - self.shift_us)
        window = slice(rows.start, rows.stop)
        book = self.index.p_book[window]
        return self.index.p_price[window][book], self.index.p_size[window][book]

    def l1_at(self, symbol: str, moment: datetime) -> L1 | None:
        """The symbol's L1 in force at `moment` (the last quote at or before it)."""
        index = self.index
        code = index.code_of.get(symbol)
        row = None if code is None else index.quote_row_at(code, to_us(moment) - self.shift_us)
        if row is None:
            return None
        return L1.model_construct(
            symbol=symbol,
            bid=float(index.q_bid[row]),
            ask=float(index.q_ask[row]),
            bid_size=int(index.q_bid_size[row]),
            ask_size=int(index.q_ask_size[row]),
            time=from_us(int(_ceil_us(index.q_ns[row : row + 1])[0]) + self.shift_us),
        )

    def lot_of(self, symbol: str) -> int:
        code = self.index.code_of.get(symbol)
        return 100 if code is None else int(self.index.lots[code])


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


def load_index(directory: Path | str, rule: MarketDataRule = MarketDataRule()) -> DayIndex:
    """The indexed day in `directory`, read and checked once per process (again if its files change)."""
    directory = Path(directory).resolve()
    stamp = tuple((st.st_mtime_ns, st.st_size) for st in (directory.joinpath(f).stat() for f in (QUOTES_FILE, PRINTS_FILE, MANIFEST_FILE)))
    return _cached(("files", str(directory), stamp, index_key(rule)), lambda: DayIndex(read_day(directory), rule))


def generated_index(recipe: GeneratedDay, universe: Universe, session: Session, rule: MarketDataRule = MarketDataRule()) -> DayIndex:
    """The generated day for `recipe`, generated once per process."""
    from marketdata.generator import generate_day, universe_key

    key = ("generated", recipe, universe_key(universe), session.time_zone, session.open, session.close, index_key(rule))
    return _cached(key, lambda: DayIndex(generate_day(recipe, universe, session, rule.round_lot_tiers), rule))


def reference_prices(universe: Universe) -> dict[str, float]:
    return {i.symbol: i.reference_price for i in universe.instruments}


def open_day_feed(spec: FeedSpec, universe: Universe, session: Session, rule: MarketDataRule = MarketDataRule()) -> DayFeed:
    """The day feed a RECORDED or GENERATED spec names."""
    refs = reference_prices(universe)
    if spec.source is FeedSource.RECORDED:
        assert spec.path is not None
        index = load_index(spec.path, rule)
    elif spec.source is FeedSource.GENERATED:
        assert spec.generated is not None
        index = generated_index(spec.generated, universe, session, rule)
    else:
        raise ValueError("the simulated feed from marks has no day to replay")
    return DayFeed(index, refs, rule, spec.source, spec.replay_on)


def open_feed(
    spec: FeedSpec,
    universe: Universe,
    session: Session,
    rule: MarketDataRule = MarketDataRule(),
    marks: Mapping[str, float] | None = None,
) -> Feed:
    """The feed a spec names. `marks` feed the simulated source (the account's marks)."""
    if spec.source is FeedSource.MARKS:
        return MarkFeed(marks or {}, reference_prices(universe))
    return open_day_feed(spec, universe, session, rule)
