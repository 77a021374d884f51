"""The day file set: one trading day of L1 quotes and prints for a set of symbols.

    DIR/quotes.parquet   L1 quotes (top of book after each update)
    DIR/prints.parquet   prints (reported trades)
    DIR/day.json         the manifest (`DayManifest`)

quotes.parquet
    ts_event   timestamp[ns, tz=UTC]   when the quote took effect (Databento's ts_event)
    symbol     string (dictionary-encoded)
    bid, ask   float64                 dollars, > 0 (rows without both sides are ignored)
    bid_size   int64                   shares displayed at the bid, ≥ 0
    ask_size   int64                   shares displayed at the ask, ≥ 0

prints.parquet
    ts_event   timestamp[ns, tz=UTC]
    symbol     string (dictionary-encoded)
    price      float64                 dollars, > 0 (sub-penny allowed)
    size       int64                   shares, > 0
    venue      string (dictionary)     SIP participant id: "D" = FINRA ADF/TRF (off-exchange),
                                       else an exchange ("Q" Nasdaq, "N" NYSE, "P" Arca, "Z" BZX…)
    conditions string (dictionary)     sale condition characters, e.g. "", "@", "I", "@ TI"

Rows are sorted by (symbol, ts_event); rows with the same symbol and time keep their order in
the file, which is the order they happened in (the truth tick's tie-break). `write_day` sorts
(stably); a reader accepts a file that is not sorted (the feed's index sorts it, stably), plain
strings for the dictionary columns, and any timestamp unit or zone (converted to ns UTC). Prices are float64 dollars (Databento's fixed-point
1e-9 integers are converted on import).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

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


class DayManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    date: date
    time_zone: str = "America/New_York"
    open: str = Field("09:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    close: str = Field("16:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    symbols: list[str]
    origin: DayOrigin
    seed: int | None = None
    scale: float | None = None
    shocks: list[Shock] = []
    quotes: int = 0  # row counts, for a reader's sanity check
    prints: int = 0

    def local(self, hhmm: str, on: date | None = None) -> datetime:
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


def normalize(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Columns of `schema` in its types (dictionary strings, ns UTC times), one chunk each, rows
    in the table's order. Raises ValueError naming a missing column."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}; expected {', '.join(schema.names)}")
    columns = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            columns.append(_as_dictionary(column))
            continue
        if pa.types.is_timestamp(field.type) and column.type.tz is None:
            raise ValueError(f"{field.name}: timestamps must carry a time zone (stored as UTC)")
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        columns.append(array if array.type == field.type else array.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


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
