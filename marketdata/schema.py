"""The day file set: one trading day of L1 quotes and prints for a set of symbols.

    DIR/quotes.parquet   L1 quotes (top of book after each update)
    DIR/prints.parquet   prints (reported trades)
    DIR/day.json         the manifest (`DayManifest`)

quotes.parquet
    ts_event   timestamp[ns, tz=UTC]   when the quote took effect (Databento's ts_event)
    symbol     string (dictionary-encoded)
    bid, ask   float64                 dollars, > 0 and < 10,000,000 (a crossed quote, bid > ask, is
                                       kept and flagged: consolidated data has them briefly)
    bid_size   int64                   shares displayed at the bid, ≥ 0
    ask_size   int64                   shares displayed at the ask, ≥ 0

prints.parquet
    ts_event   timestamp[ns, tz=UTC]
    symbol     string (dictionary-encoded)
    price      float64                 dollars, > 0 and < 10,000,000 (sub-penny allowed)
    size       int64                   shares, > 0
    venue      string (dictionary)     SIP participant id: "D" = FINRA ADF/TRF (off-exchange),
                                       else an exchange ("Q" Nasdaq, "N" NYSE, "P" Arca, "Z" BZX…)
    conditions string (dictionary)     sale condition characters, e.g. "", "@", "I", "@ TI"; read
                                       on the symbol's SIP plan (manifest `tapes`, else CTA)

Rows are sorted by (symbol, ts_event); rows with the same symbol and time keep their order in
the file, which is the order they happened in (the truth tick's tie-break). `write_day` sorts
(stably); a reader accepts a file that is not sorted (the feed's index sorts it, stably), plain
strings for the dictionary columns, any timestamp unit or zone (converted to ns UTC), any
floating type for prices and any integer type for sizes. Anything else is refused when the day is
opened, with one line naming the file, the column and what was expected: an integer `ts_event`
(epoch numbers are ambiguous), integer prices (Databento's fixed-point 1e-9 integers are
converted on import), nulls, prices that are not > 0 and < $10,000,000, sizes below 0 or above ten
billion shares.

day.json
    the manifest (`DayManifest`): date, time zone, session, symbols, origin, row counts; for
    each symbol its SIP plan (`tapes`: CTA or UTP, which sale-condition table applies) and its
    round lot (`round_lots`; else from the day's first quote by the round-lot tiers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from datetime import date as Date
from enum import Enum
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from domain.base import Frozen
from domain.conditions import SipPlan
from domain.marketdata import Shock

FORMAT = "rig-marketdata/1"
QUOTES_FILE = "quotes.parquet"
PRINTS_FILE = "prints.parquet"
MANIFEST_FILE = "day.json"

TS = pa.timestamp("ns", tz="UTC")
SYMBOL = pa.dictionary(pa.int32(), pa.string())

QUOTES_SCHEMA = pa.schema(
    [
        ("ts_event", TS),
        ("symbol", SYMBOL),
        ("bid", pa.float64()),
        ("ask", pa.float64()),
        ("bid_size", pa.int64()),
        ("ask_size", pa.int64()),
    ]
)
PRINTS_SCHEMA = pa.schema(
    [
        ("ts_event", TS),
        ("symbol", SYMBOL),
        ("price", pa.float64()),
        ("size", pa.int64()),
        ("venue", SYMBOL),
        ("conditions", SYMBOL),
    ]
)
DICTIONARY_COLUMNS = {QUOTES_FILE: ["symbol"], PRINTS_FILE: ["symbol", "venue", "conditions"]}


class DayOrigin(str, Enum):
    GENERATED = "GENERATED"
    RECORDED = "RECORDED"  # written from elsewhere (another system, a capture)
    DATABENTO = "DATABENTO"  # imported from DBN files


class DayManifest(Frozen):
    format: str = FORMAT
    date: date
    time_zone: str = "America/New_York"
    open: str = Field("09:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    close: str = Field("16:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    symbols: list[str]
    origin: DayOrigin
    seed: int | None = None
    scale: float | None = None
    shocks: list[Shock] = Field(default_factory=list)
    quotes: int = 0  # row counts, for a reader's sanity check
    prints: int = 0
    tapes: dict[str, SipPlan] = Field(default_factory=dict)  # symbol → the SIP plan its prints are reported on (else CTA)
    round_lots: dict[str, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)  # symbol → round lot (else by price tier)

    def local(self, hhmm: str, on: Date | None = None) -> datetime:
        """An exchange wall time ("HH:MM" or "HH:MM:SS") on the day (or `on`) as an aware datetime."""
        return datetime.combine(on or self.date, time.fromisoformat(hhmm), tzinfo=ZoneInfo(self.time_zone))


@dataclass(frozen=True)
class Day:
    manifest: DayManifest
    quotes: pa.Table
    prints: pa.Table


def _as_dictionary(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    if array.type != SYMBOL:
        array = array.cast(SYMBOL)
    return array


class DayDataError(ValueError):
    """A column that is not what the schema says: `str()` is one line naming it."""


PRICE_COLUMNS = {QUOTES_FILE: ("bid", "ask"), PRINTS_FILE: ("price",)}
SIZE_COLUMNS = {QUOTES_FILE: ("bid_size", "ask_size"), PRINTS_FILE: ("size",)}
POSITIVE_SIZES = {PRINTS_FILE: ("size",)}
# Bounds a view's arithmetic stays finite within (a 1e308 print once turned a mark into an
# infinity, sent as null, that the account failed every task decoding): no listed share trades
# near $10 million, nor does a quote show ten billion shares.
MAX_PRICE = 10_000_000.0
MAX_SIZE = 10_000_000_000


def _type_problem(field: pa.Field, actual: pa.DataType) -> str | None:
    """Why a column's stored type cannot stand for the schema's (None: it can, cast it)."""
    expected = field.type
    if pa.types.is_timestamp(expected):
        if not pa.types.is_timestamp(actual):
            return f"is {actual}, expected {expected} (epoch numbers are ambiguous: store a timestamp)"
        if actual.tz is None:
            return f"is {actual} without a time zone, expected {expected}"
        return None
    if pa.types.is_dictionary(expected):
        value = actual.value_type if pa.types.is_dictionary(actual) else actual
        return None if pa.types.is_string(value) or pa.types.is_large_string(value) else f"is {value}, expected strings"
    if pa.types.is_floating(expected):
        return None if pa.types.is_floating(actual) else f"is {actual}, expected {expected} dollars"
    if pa.types.is_integer(expected):
        return None if pa.types.is_integer(actual) else f"is {actual}, expected {expected} shares"
    return None if actual == expected else f"is {actual}, expected {expected}"


def normalize(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of `schema` in its types (dictionary strings, ns UTC times), one chunk each, rows
    in the table's order. Raises DayDataError naming a missing column or one stored as another type."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise DayDataError(f"missing column(s) {', '.join(missing)}; expected {', '.join(schema.names)}")
    columns = []
    for field in schema:
        column = table.column(field.name)
        if problem := _type_problem(field, column.type):
            raise DayDataError(f"column {field.name} {problem}")
        if pa.types.is_dictionary(field.type):
            columns.append(_as_dictionary(column))
            continue
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        columns.append(array if array.type == field.type else array.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def check_values(table: pa.Table, file: str) -> None:
    """Every row a view can hold: no nulls, prices finite and > 0, sizes ≥ 0 (a print's > 0).
    Raises DayDataError naming the column, how many rows fail and the first of them."""
    for name in table.column_names:
        if table.column(name).null_count:
            raise DayDataError(f"column {name}: {table.column(name).null_count} null value(s)")
    for name in PRICE_COLUMNS[file]:
        values = table.column(name).to_numpy()
        if table.num_rows and not (values.min() > 0 and values.max() < MAX_PRICE):  # a NaN fails min > 0
            _refuse(name, ~((values > 0) & (values < MAX_PRICE)), values, f"not a finite price > 0 and below {MAX_PRICE:,.0f}")
    for name in SIZE_COLUMNS[file]:
        values = table.column(name).to_numpy()
        floor = 1 if name in POSITIVE_SIZES.get(file, ()) else 0
        if table.num_rows and values.min() < floor:
            _refuse(name, values < floor, values, f"below {floor} shares")
        if table.num_rows and values.max() > MAX_SIZE:
            _refuse(name, values > MAX_SIZE, values, f"above {MAX_SIZE:,} shares")


def _refuse(name: str, bad: np.ndarray, values: np.ndarray, why: str) -> None:
    rows = np.flatnonzero(bad)
    raise DayDataError(f"column {name}: {rows.size} row(s) {why} (first: row {int(rows[0])}, {values[rows[0]]!r})")


def sort_order(table: pa.Table) -> np.ndarray | None:
    """Row order by (symbol, ts_event), stable (equal keys keep file order); None if sorted."""
    if table.num_rows < 2:
        return None
    symbols = _as_dictionary(table.column("symbol"))
    # Rank codes by symbol text so the order is the same whatever the dictionary's order.
    names = np.array(symbols.dictionary.to_pylist(), dtype=object)
    rank_of_code = np.argsort(np.argsort(names, kind="stable"), kind="stable")
    rank = rank_of_code[symbols.indices.to_numpy(zero_copy_only=False)]
    ts = time_ns(table)
    d_rank, d_ts = np.diff(rank), np.diff(ts)
    if np.all((d_rank > 0) | ((d_rank == 0) & (d_ts >= 0))):
        return None
    return np.lexsort((ts, rank))


def sort_rows(table: pa.Table) -> pa.Table:
    order = sort_order(table)
    return table if order is None else table.take(pa.array(order))


def time_ns(table: pa.Table) -> np.ndarray:
    """ts_event as int64 nanoseconds since the epoch."""
    column = table.column("ts_event")
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.cast(pa.int64()).to_numpy(zero_copy_only=False)


def empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
