"""Import Databento DBN files (schemas `trades`, `mbp-1`, `cmbp-1`) into a day (`schema.py`).

    day = import_dbn([Path("xnas-20240603.trades.dbn.zst"), Path("equs-20240603.mbp-1.dbn.zst")])
    write_day(day, "days/2024-06-03")

- Quotes: an NBBO built across publishers. Each MBP-1 record's top level (`levels[0]`) is its
  publisher's best bid and offer after the event; the NBBO is the highest bid and the lowest
  offer over every publisher's latest, each side's size summed over the publishers at that
  price. A row is written when the NBBO changes and both sides are priced (it may be crossed
  or locked across venues, as the SIP's can be: the index flags crossed rows). CMBP-1 records
  (Databento's consolidated BBO) are taken as they are, the consolidated feed used as one venue.
- Prints: trade records (`TradeMsg`) and MBP-1/CMBP-1 records with action TRADE; one trade seen
  in two files (same instrument, publisher, ts_event, sequence, price, size) is kept once.
- Prices are DBN fixed-point (1e-9 dollars) → float dollars; times stay ns UTC (`ts_event`).
- Venue: the publisher's venue as a SIP participant id (`PUBLISHER_MIC`, `MIC_TO_SIP`); the
  FINRA/Nasdaq and FINRA/NYSE TRFs become "D". A publisher of unknown venue — a consolidated
  publisher included — becomes "D" too: its prints are weighted as the FINRA class (0.2/0.4 for
  odd sizes and larger lots) and never count as lit-book executions, never like a lit exchange.
- Conditions: DBN's trades, MBP-1 and CMBP-1 schemas carry no sale conditions, so the import
  cannot mark late, out-of-sequence or average-price trades (Z, L, W, 4…): every print is
  regular ("") but those below the symbol's round lot, marked odd lot ("I") as the SIPs mark
  them. The round lot comes from the price tiers (`domain/conditions.py`) on the symbol's first
  trade of the file (the tiers want last month's average close, which DBN does not carry).
  The tape (CTA/UTP) of each symbol is not in these schemas either: pass `tapes` to say it,
  else the reader takes CTA.
- Symbols: from the metadata's symbology mappings (raw symbol → instrument id for the day),
  or from symbol-mapping records in a live capture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import databento_dbn as dbn
import pyarrow as pa

from domain.conditions import ODD_LOT, ROUND_LOT_TIERS, RoundLotTier, SipPlan, round_lot
from domain.marketdata import TRF_VENUE
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
CONSOLIDATED = -1  # the book key of CMBP-1 records: one venue, the consolidated BBO


def venue_of(publisher_id: int) -> str:
    """The SIP participant id of a publisher's venue; unknown (or consolidated) → the FINRA class."""
    return MIC_TO_SIP.get(PUBLISHER_MIC.get(int(publisher_id), ""), TRF_VENUE)


def _records(path: Path) -> Iterable[Any]:
    compression: Any = dbn.Compression.ZSTD if path.suffix == ".zst" else dbn.Compression.NONE  # the stubs type members as str
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


Top = tuple[int | None, int | None, int, int]  # bid px, ask px (fixed point; None: that side is empty), sizes


class Nbbo:
    """Each publisher's latest top of book per instrument, and the NBBO over them."""

    def __init__(self) -> None:
        self.tops: dict[int, dict[int, Top]] = {}
        self.last: dict[int, Top] = {}

    def update(self, instrument: int, book: int, top: Top) -> Top | None:
        """Record one book's top; the instrument's NBBO when it changed and has both sides."""
        tops = self.tops.setdefault(instrument, {})
        tops[book] = top
        bids = [(t[0], t[2]) for t in tops.values() if t[0] is not None]
        asks = [(t[1], t[3]) for t in tops.values() if t[1] is not None]
        if not bids or not asks:
            return None
        bid = max(px for px, _ in bids)
        ask = min(px for px, _ in asks)
        nbbo = (bid, ask, sum(sz for px, sz in bids if px == bid), sum(sz for px, sz in asks if px == ask))
        if self.last.get(instrument) == nbbo:
            return None
        self.last[instrument] = nbbo
        return nbbo


def _side(px: int, size: int) -> tuple[int | None, int]:
    return (None, 0) if px == dbn.UNDEF_PRICE else (px, size)


def import_dbn(
    paths: Iterable[Path | str],
    day: date | None = None,
    time_zone: str = "America/New_York",
    open: str = "09:30",
    close: str = "16:30",
    symbols: Iterable[str] | None = None,
    publisher_venue: Mapping[int, str] | None = None,
    tapes: Mapping[str, SipPlan] | None = None,
    tiers: tuple[RoundLotTier, ...] = ROUND_LOT_TIERS,
) -> Day:
    """One day from DBN files; `day` defaults to the first file's start date (exchange time)."""
    wanted = set(symbols) if symbols is not None else None
    names: dict[int, str] = {}
    quotes: dict[str, list] = {name: [] for name in QUOTES_SCHEMA.names}
    prints: dict[str, list] = {name: [] for name in PRINTS_SCHEMA.names}
    seen_trades: set[tuple] = set()
    nbbo = Nbbo()

    def venue(publisher_id: int) -> str:
        if publisher_venue is not None and int(publisher_id) in publisher_venue:
            return publisher_venue[int(publisher_id)]
        return venue_of(publisher_id)

    def add_print(rec: Any, symbol: str) -> None:
        key = (rec.instrument_id, int(rec.publisher_id), rec.ts_event, getattr(rec, "sequence", 0), rec.price, rec.size)
        if key in seen_trades or rec.size <= 0 or rec.price == dbn.UNDEF_PRICE:
            return
        seen_trades.add(key)
        for name, value in zip(PRINTS_SCHEMA.names, (rec.ts_event, symbol, rec.price / PRICE_SCALE, rec.size, venue(rec.publisher_id), "")):
            prints[name].append(value)

    def add_quote(rec: Any, symbol: str, top: Top | None) -> None:
        if top is None:
            return
        bid, ask, bid_sz, ask_sz = top
        assert bid is not None and ask is not None
        for name, value in zip(QUOTES_SCHEMA.names, (rec.ts_event, symbol, bid / PRICE_SCALE, ask / PRICE_SCALE, bid_sz, ask_sz)):
            quotes[name].append(value)

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
            elif isinstance(rec, (dbn.MBP1Msg, dbn.CMBP1Msg)):
                if rec.action == dbn.Action.TRADE:
                    add_print(rec, symbol)
                top = rec.levels[0]
                book = CONSOLIDATED if isinstance(rec, dbn.CMBP1Msg) else int(rec.publisher_id)
                state = (*_side(top.bid_px, top.bid_sz), *_side(top.ask_px, top.ask_sz))
                add_quote(rec, symbol, nbbo.update(rec.instrument_id, book, (state[0], state[2], state[1], state[3])))
    if day is None:
        raise ValueError("no DBN metadata found: cannot tell the day")
    lots = _odd_lots(prints, tiers)
    q_table = sort_rows(_table(quotes, QUOTES_SCHEMA))
    p_table = sort_rows(_table(prints, PRINTS_SCHEMA))
    present = set(quotes["symbol"]) | set(prints["symbol"])
    manifest = DayManifest(
        date=day, time_zone=time_zone, open=open, close=close,
        symbols=sorted(present), origin=DayOrigin.DATABENTO,
        quotes=q_table.num_rows, prints=p_table.num_rows,
        tapes={s: p for s, p in (tapes or {}).items() if s in present}, round_lots=lots,
    )  # fmt: skip
    return Day(manifest=manifest, quotes=q_table, prints=p_table)


def _odd_lots(prints: dict[str, list], tiers: tuple[RoundLotTier, ...]) -> dict[str, int]:
    """Each symbol's round lot by its first trade's price tier; prints below it marked "I"."""
    lots: dict[str, int] = {}
    for symbol, price in zip(prints["symbol"], prints["price"], strict=True):
        lots.setdefault(symbol, round_lot(price, tiers))
    prints["conditions"] = [ODD_LOT if size < lots[symbol] else "" for symbol, size in zip(prints["symbol"], prints["size"], strict=True)]
    return lots


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
