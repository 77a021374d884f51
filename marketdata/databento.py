"""Import Databento DBN files (schemas `trades` and `mbp-1`) into a day (`schema.py`).

    day = import_dbn([Path("xnas-20240603.trades.dbn.zst"), Path("xnas-20240603.mbp-1.dbn.zst")])
    write_day(day, "days/2024-06-03")

- Quotes: every MBP-1 record's top level (`levels[0]`) after the event, when both sides are
  priced; records that leave the top of book unchanged are dropped.
- Prints: trade records (`TradeMsg`) and MBP-1 records with action TRADE; one trade seen in
  both (same instrument, publisher, ts_event, sequence, price, size) is kept once.
- Prices are DBN fixed-point (1e-9 dollars) → float dollars; times stay ns UTC (`ts_event`).
- Venue: the publisher's venue as a SIP participant id (`PUBLISHER_MIC`, `MIC_TO_SIP`); the
  FINRA/Nasdaq and FINRA/NYSE TRFs become "D". Consolidated publishers have no venue: "".
- Conditions: DBN's trades schema carries no sale conditions, so a print below 100 shares is
  marked odd lot ("I", as the SIP marks odd lots) and every other print is "" (regular).
  Prints with a non-last-updating condition cannot be recognized from DBN trades.
- Symbols: from the metadata's symbology mappings (raw symbol → instrument id for the day),
  or from symbol-mapping records in a live capture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import databento_dbn as dbn
import pyarrow as pa

from domain.marketdata import ODD_LOT, ROUND_LOT, TRF_VENUE
from marketdata.schema import PRINTS_SCHEMA, QUOTES_SCHEMA, Day, DayManifest, DayOrigin, sort_rows

# Databento publisher id → venue (ISO MIC), for the US equity publishers.
PUBLISHER_MIC: dict[int, str] = {
    2: "XNAS", 3: "XBOS", 4: "XPSX", 5: "BATS", 6: "BATY", 7: "EDGA", 8: "EDGX", 9: "XNYS",
    10: "XCIS", 11: "XASE", 12: "XCHI", 13: "XCIS", 14: "XCIS", 15: "MEMX", 16: "EPRL",
    17: "FINN", 18: "FINC", 19: "FINY", 38: "IEXG", 39: "XCHI", 40: "XCIS", 41: "IEXG",
    42: "EPRL", 43: "ARCX", 44: "XNYS", 45: "XNYS", 46: "XNAS", 47: "XNAS", 48: "XCHI",
    49: "XCIS", 50: "IEXG", 51: "EPRL", 52: "XNAS", 53: "XNYS", 54: "FINN", 55: "FINY",
    56: "FINC", 62: "XCHI", 63: "XCIS", 64: "IEXG", 65: "EPRL", 66: "XNAS", 67: "XNYS",
    68: "FINN", 69: "FINY", 70: "FINC", 71: "BATS", 72: "BATY", 73: "EDGA", 74: "EDGX",
    75: "XBOS", 76: "XPSX", 77: "MEMX", 78: "XASE", 79: "ARCX", 80: "LTSE", 81: "XNAS",
    82: "FINN", 83: "FINC", 86: "XBOS", 87: "XPSX", 88: "XBOS", 89: "XPSX", 91: "XCIS",
    92: "XNYS",
}  # fmt: skip
# ISO MIC → SIP participant id (the venue codes of the day files).
MIC_TO_SIP: dict[str, str] = {
    "XASE": "A", "XBOS": "B", "XCIS": "C", "FINN": TRF_VENUE, "FINC": TRF_VENUE, "FINY": TRF_VENUE,
    "EPRL": "H", "EDGA": "J", "EDGX": "K", "LTSE": "L", "XCHI": "M", "XNYS": "N", "ARCX": "P",
    "XNAS": "Q", "MEMX": "U", "IEXG": "V", "XPSX": "X", "BATY": "Y", "BATS": "Z",
}  # fmt: skip

PRICE_SCALE = dbn.FIXED_PRICE_SCALE  # fixed-point units per dollar; dividing rounds correctly
CHUNK = 1 << 20


def venue_of(publisher_id: int) -> str:
    return MIC_TO_SIP.get(PUBLISHER_MIC.get(int(publisher_id), ""), "")


def _records(path: Path) -> Iterable[object]:
    compression = dbn.Compression.ZSTD if path.suffix == ".zst" else dbn.Compression.NONE
    decoder = dbn.DBNDecoder(compression=compression)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield from decoder.write_and_decode(chunk)


def _mapped(metadata: dbn.Metadata, day: date | None) -> dict[int, str]:
    """instrument id → raw symbol from the metadata's mappings (for `day`, or any day)."""
    ids: dict[int, str] = {}
    for raw, intervals in (metadata.mappings or {}).items():
        for interval in intervals:
            if day is None or interval["start_date"] <= day < interval["end_date"]:
                ids[int(interval["symbol"])] = raw
    return ids


def import_dbn(
    paths: Iterable[Path | str],
    day: date | None = None,
    time_zone: str = "America/New_York",
    open: str = "09:30",
    close: str = "16:30",
    symbols: Iterable[str] | None = None,
    publisher_venue: Mapping[int, str] | None = None,
) -> Day:
    """One day from DBN files; `day` defaults to the first file's start date (exchange time)."""
    wanted = set(symbols) if symbols is not None else None
    names: dict[int, str] = {}
    quotes: dict[str, list] = {name: [] for name in QUOTES_SCHEMA.names}
    prints: dict[str, list] = {name: [] for name in PRINTS_SCHEMA.names}
    seen_trades: set[tuple] = set()
    last_top: dict[int, tuple] = {}

    def venue(publisher_id: int) -> str:
        if publisher_venue is not None and int(publisher_id) in publisher_venue:
            return publisher_venue[int(publisher_id)]
        return venue_of(publisher_id)

    def add_print(rec: object, symbol: str) -> None:
        key = (rec.instrument_id, int(rec.publisher_id), rec.ts_event, rec.sequence, rec.price, rec.size)
        if key in seen_trades or rec.size <= 0 or rec.price == dbn.UNDEF_PRICE:
            return
        seen_trades.add(key)
        for name, value in zip(
            PRINTS_SCHEMA.names,
            (rec.ts_event, symbol, rec.price / PRICE_SCALE, rec.size, venue(rec.publisher_id),
             ODD_LOT if rec.size < ROUND_LOT else ""),
        ):  # fmt: skip
            prints[name].append(value)

    for path in paths:
        for rec in _records(Path(path)):
            if isinstance(rec, dbn.Metadata):
                if day is None:
                    start = datetime.fromtimestamp(rec.start / 1e9, tz=UTC)
                    day = start.astimezone(ZoneInfo(time_zone)).date()
                names.update(_mapped(rec, day))
                continue
            if isinstance(rec, dbn.SymbolMappingMsg):
                names[rec.instrument_id] = rec.stype_in_symbol
                continue
            symbol = names.get(rec.instrument_id)
            if symbol is None or (wanted is not None and symbol not in wanted):
                continue
            if isinstance(rec, dbn.TradeMsg):
                add_print(rec, symbol)
            elif isinstance(rec, dbn.MBP1Msg):
                if rec.action == dbn.Action.TRADE:
                    add_print(rec, symbol)
                top = rec.levels[0]
                if dbn.UNDEF_PRICE in (top.bid_px, top.ask_px):
                    continue
                state = (top.bid_px, top.ask_px, top.bid_sz, top.ask_sz)
                if last_top.get(rec.instrument_id) == state:
                    continue
                last_top[rec.instrument_id] = state
                for name, value in zip(
                    QUOTES_SCHEMA.names,
                    (rec.ts_event, symbol, top.bid_px / PRICE_SCALE, top.ask_px / PRICE_SCALE, top.bid_sz, top.ask_sz),
                ):
                    quotes[name].append(value)
    if day is None:
        raise ValueError("no DBN metadata found: cannot tell the day")
    q_table = sort_rows(_table(quotes, QUOTES_SCHEMA))
    p_table = sort_rows(_table(prints, PRINTS_SCHEMA))
    manifest = DayManifest(
        date=day, time_zone=time_zone, open=open, close=close,
        symbols=sorted(set(quotes["symbol"]) | set(prints["symbol"])), origin=DayOrigin.DATABENTO,
        quotes=q_table.num_rows, prints=p_table.num_rows,
    )  # fmt: skip
    return Day(manifest=manifest, quotes=q_table, prints=p_table)


def _table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        elif pa.types.is_dictionary(field.type):
            arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
