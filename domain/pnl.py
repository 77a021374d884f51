"""P&L by average cost per (symbol, bucket), rolled up per symbol, bucket, group and account.

Cost basis (average cost):
- A fill that adds to a position (or opens one) moves the average cost to the quantity-weighted
  average of the old cost and the fill price.
- A fill that reduces a position realizes (price − average cost) × quantity closed for a long,
  (average cost − price) × quantity closed for a short; the average cost of what is left does
  not change, and a position that goes flat has no average cost (0).
- A fill that crosses zero is two steps: close the whole position at its average cost (realizing
  as above), then open the rest at the fill price. Reduce-only rules keep the rig's own orders
  from flipping, but a desk order can.

Valuation, per position with mark m, quantity q and average cost c:
- unrealized = (m − c) × q;
- realized = what fills realized since the beginning of the day (BOD);
- daily P&L, the desk's standard "value now − value at BOD − net cash spent today":
      daily = q × m − q_bod × m_bod + cash_today
  where q_bod, m_bod are the BOD snapshot's quantity and mark (the previous close) and
  cash_today is today's net cash from fills (sells +, buys −). A BOD row must have a mark: one
  without takes the account's previous close (`fill_bod_marks`), or it is refused — never valued
  at its average cost, which would book yesterday's whole move as today's P&L. It equals realized_today + (unrealized now − unrealized at BOD), with
  unrealized at BOD = (m_bod − c_bod) × q_bod — and it does not depend on the cost method.
- Costs (commissions and fees, domain/costs.py) are booked per fill against the day: `daily` stays
  gross, `costs` is the day's sum and net = daily − costs. The daily loss for the policy table's
  loss rows is max(0, −net) as % of equity.

The daily roll (`close_day`, at each session's close): the day's P&L is fixed at the closing
marks; tomorrow's BOD is the closing positions at those marks; realized P&L moves to the prior
days (`realized_prior`) and today's realized and cash start again at zero. So the days add up:
Σ daily over the days = value at the end − value at the first BOD + all cash (tests/test_pnl.py).

Marks come from the caller (the account's marks: truth tick, mid, or reference price). A
symbol without a usable mark (missing, not finite, ≤ 0) is valued at its last known price — the
last fill or the BOD mark — and listed in `PnlSummary.fallback_marks`.

Everything here is pure and deterministic: books are immutable (each apply returns a new book,
copying at most one entry per (symbol, bucket) — a few dozen), dicts keep a fixed order, no
set is iterated.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from pydantic import Field

from domain.base import Frozen
from domain.enums import Bucket, Side
from domain.models import position_key
from domain.rules import Universe

# Bounds on what a book accepts: beyond them a number is a typo, and floats would overflow.
MAX_QUANTITY = 10**12  # shares
MAX_PRICE = 1e9
MAX_BOD_ROWS = 5_000  # positions in a beginning-of-day snapshot (a large desk's whole book)
MAX_BOD_CSV_BYTES = 1024 * 1024  # its CSV: 5,000 rows of ~40 bytes, with room for comments


class CostBasis(Frozen):
    """One (symbol, bucket) of the book: position, average cost, and what today did to it."""

    symbol: str
    bucket: Bucket
    quantity: int = 0  # signed: long > 0, short < 0
    avg_cost: float = 0.0  # 0 when flat
    realized: float = 0.0  # realized since the beginning of the day
    cash: float = 0.0  # today's net cash from fills: sells +, buys −
    bod_quantity: int = 0
    bod_mark: float = 0.0  # the BOD snapshot's mark (its avg cost when it had none)
    last_price: float = 0.0  # last fill price, else the BOD mark: the fallback mark
    costs: float = 0.0  # today's commissions and fees on this entry's fills (domain/costs.py)

    @property
    def key(self) -> str:
        return position_key(self.symbol, self.bucket)


class BodPosition(Frozen):
    """A row of the beginning-of-day snapshot."""

    symbol: str
    bucket: Bucket
    quantity: int = Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)
    avg_cost: float = Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)
    mark: float | None = Field(default=None, gt=0, le=MAX_PRICE, allow_inf_nan=False)


class FillLike(Protocol):
    """What the book reads from a fill (domain.models.Fill has these)."""

    symbol: str
    bucket: Bucket
    side: Side
    quantity: int
    price: float


def _step(entry: CostBasis, signed_qty: int, price: float, cost: float = 0.0) -> CostBasis:
    """The book entry after one fill of `signed_qty` (buy > 0) at `price` that cost `cost`."""
    q, avg, realized = entry.quantity, entry.avg_cost, entry.realized
    new_q = q + signed_qty
    if q == 0 or (q > 0) == (signed_qty > 0):  # opens or adds
        new_avg = (abs(q) * avg + abs(signed_qty) * price) / abs(new_q)
    else:  # reduces, closes, or crosses zero
        closed = min(abs(signed_qty), abs(q))
        realized += closed * (price - avg) * (1 if q > 0 else -1)
        if new_q == 0:
            new_avg = 0.0
        elif (new_q > 0) == (q > 0):
            new_avg = avg
        else:  # crossed zero: the rest opens at the fill price
            new_avg = price
    fields = entry.__dict__ | {
        "quantity": new_q,
        "avg_cost": new_avg,
        "realized": realized,
        "cash": entry.cash - signed_qty * price,
        "last_price": price,
        "costs": entry.costs + cost,
    }
    return CostBasis.model_construct(**fields)  # the fields are computed from validated ones


def _checked_fill(quantity: object, price: object) -> tuple[int, float]:
    # The account's fills come from its venue and were validated on the way in; a book must
    # still never turn garbage into numbers.
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        raise ValueError(f"fill quantity must be a whole number in 1..{MAX_QUANTITY}, got {quantity!r}")
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not (math.isfinite(price) and 0 < price <= MAX_PRICE):
        raise ValueError(f"fill price must be a finite number in (0, {MAX_PRICE:g}], got {price!r}")
    return quantity, float(price)


class PnlBook(Frozen):
    """Cost basis of every (symbol, bucket) the account held at BOD or traded today.

    Immutable: `apply`/`apply_fill`/`apply_fills` return a new book. Entries stay when a
    position goes flat (their realized P&L and cash are today's); `next_day` drops them.
    """

    positions: dict[str, CostBasis] = Field(default_factory=dict)
    realized_prior: float = 0.0  # realized P&L of the days already closed (the roll moves today's here)

    @classmethod
    def from_bod(cls, rows: Iterable[BodPosition]) -> PnlBook:
        book: dict[str, CostBasis] = {}
        for row in rows:
            key = position_key(row.symbol, row.bucket)
            if key in book:
                raise ValueError(f"{key} appears twice in the beginning-of-day snapshot")
            book[key] = _bod_entry(row)
        return cls(positions=book)

    def with_bod_position(self, row: BodPosition) -> PnlBook:
        """Replace one (symbol, bucket) by a BOD row: a position set from outside (a scenario's
        injected exposure) is booked as if held since the beginning of the day."""
        return self._with(self.positions | {position_key(row.symbol, row.bucket): _bod_entry(row)})

    def _with(self, positions: dict[str, CostBasis]) -> PnlBook:
        return PnlBook.model_construct(positions=positions, realized_prior=self.realized_prior)

    def entry(self, symbol: str, bucket: Bucket) -> CostBasis:
        return self.positions.get(position_key(symbol, bucket)) or CostBasis(symbol=symbol, bucket=bucket)

    def apply(self, symbol: str, bucket: Bucket, side: Side, quantity: int, price: float, cost: float = 0.0) -> PnlBook:
        qty, px = _checked_fill(quantity, price)
        updated = _step(self.entry(symbol, bucket), qty * side.sign, px, cost if math.isfinite(cost) else 0.0)
        return self._with(self.positions | {updated.key: updated})

    def apply_fill(self, fill: FillLike, cost: float = 0.0) -> PnlBook:
        """One fill; `cost`: what it cost (commissions and fees), booked against today's P&L."""
        return self.apply(fill.symbol, fill.bucket, fill.side, fill.quantity, fill.price, cost)

    def apply_fills(self, fills: Iterable[FillLike]) -> PnlBook:
        """Many fills in order, copying the book once."""
        book = dict(self.positions)
        for fill in fills:
            qty, px = _checked_fill(fill.quantity, fill.price)
            key = position_key(fill.symbol, fill.bucket)
            current = book.get(key) or CostBasis(symbol=fill.symbol, bucket=fill.bucket)
            book[key] = _step(current, qty * fill.side.sign, px)
        return self._with(book)

    def next_day(self, close_marks: Mapping[str, float]) -> PnlBook:
        """Tomorrow's book: open positions become the BOD snapshot at these marks (their last
        price where a mark is missing); realized P&L and cash start again at zero."""
        return self.close_day(close_marks)[0]

    def close_day(self, close_marks: Mapping[str, float]) -> tuple[PnlBook, DayPnl]:
        """The roll at a session's close: the day's P&L at the closing marks, and tomorrow's book —
        the closing positions as its BOD at those marks, today's realized moved to the prior days."""
        totals, marks, fallback = PnlTotals(), {}, []
        for entry in self.positions.values():
            mark, is_fallback = _mark(entry, close_marks)
            if is_fallback and entry.symbol not in fallback:
                fallback.append(entry.symbol)
            marks[entry.symbol] = mark
            totals += value_position(entry, mark, UNKNOWN_GROUP).totals
        rows = [
            BodPosition(symbol=e.symbol, bucket=e.bucket, quantity=e.quantity, avg_cost=e.avg_cost, mark=marks[e.symbol])
            for e in self.positions.values()
            if e.quantity != 0
        ]
        tomorrow = PnlBook.from_bod(rows).model_copy(update={"realized_prior": self.realized_prior + totals.realized})
        day = DayPnl(
            realized=totals.realized,
            unrealized=totals.unrealized,
            daily=totals.daily,
            costs=totals.costs,
            marks=marks,
            fallback_marks=fallback,
            bod=rows,
        )
        return tomorrow, day


class DayPnl(Frozen):
    """One session's P&L as the roll fixed it at the close."""

    realized: float  # realized that day
    unrealized: float  # at the closing marks
    daily: float  # value at the close − value at the BOD + the day's net cash (gross of costs)
    costs: float = 0.0  # that day's commissions and fees; net = daily − costs
    marks: dict[str, float]  # the closing marks of every symbol the day held or traded
    fallback_marks: list[str] = Field(default_factory=list)  # symbols closed at their last price for want of a mark
    bod: list[BodPosition] = Field(default_factory=list)  # the next day's beginning-of-day book: closing positions at closing marks


class MissingMark(ValueError):
    """A beginning-of-day row without a mark, and no previous close to take: `index` is the row's."""

    def __init__(self, index: int, row: BodPosition) -> None:
        super().__init__(f"{row.symbol}/{row.bucket.value} has no mark and the account has no previous close for it: give its closing mark")
        self.index = index


def fill_bod_marks(rows: Sequence[BodPosition], previous_close: Mapping[str, float] | None = None) -> list[BodPosition]:
    """Every row with a mark: its own, else the previous close of its symbol; else MissingMark."""
    filled = []
    for index, row in enumerate(rows):
        if row.mark is None:
            mark = (previous_close or {}).get(row.symbol)
            if mark is None:
                raise MissingMark(index, row)
            row = row.model_copy(update={"mark": mark})
        filled.append(row)
    return filled


def _bod_entry(row: BodPosition) -> CostBasis:
    if row.mark is None:  # refused where the row came in (fill_bod_marks); never valued at cost
        raise ValueError(f"{row.symbol}/{row.bucket.value}: a beginning-of-day position needs a mark")
    mark = row.mark
    return CostBasis(
        symbol=row.symbol,
        bucket=row.bucket,
        quantity=row.quantity,
        avg_cost=row.avg_cost if row.quantity else 0.0,
        bod_quantity=row.quantity,
        bod_mark=mark,
        last_price=mark,
    )


def _mark(entry: CostBasis, marks: Mapping[str, float]) -> tuple[float, bool]:
    """(mark, is_fallback)."""
    mark = marks.get(entry.symbol)
    if isinstance(mark, (int, float)) and not isinstance(mark, bool) and math.isfinite(mark) and mark > 0:
        return float(mark), False
    return entry.last_price, True


# ----- valuation and roll-ups -----


class PnlTotals(Frozen):
    """Gross figures (`daily` before costs), today's `costs`, and `net` = daily − costs."""

    realized: float = 0.0
    unrealized: float = 0.0
    daily: float = 0.0
    costs: float = 0.0

    @property
    def net(self) -> float:
        return self.daily - self.costs

    def __add__(self, other: PnlTotals) -> PnlTotals:
        return PnlTotals.model_construct(
            realized=self.realized + other.realized,
            unrealized=self.unrealized + other.unrealized,
            daily=self.daily + other.daily,
            costs=self.costs + other.costs,
        )

    def shown(self) -> dict[str, float]:
        """As a record (the run digest): costs only when there are any, so a day without costs
        reads exactly as before costs existed."""
        return self.model_dump(exclude=None if self.costs else {"costs"})


class PositionPnl(Frozen):
    symbol: str
    bucket: Bucket
    group: str
    quantity: int
    avg_cost: float
    mark: float
    realized: float
    unrealized: float
    daily: float
    costs: float = 0.0

    @property
    def totals(self) -> PnlTotals:
        return PnlTotals.model_construct(realized=self.realized, unrealized=self.unrealized, daily=self.daily, costs=self.costs)


_BUCKET_ORDER = {bucket: i for i, bucket in enumerate(Bucket)}
UNKNOWN_GROUP = "(no group)"  # a symbol the universe does not list (a BOD row loaded without it)


class PnlSummary(Frozen):
    equity: float
    account: PnlTotals
    daily_loss_pct: float  # the policy table's input: the NET loss (after costs) as a positive % of equity, 0 on a gain
    positions: list[PositionPnl]  # by symbol, then bucket
    by_symbol: dict[str, PnlTotals]  # symbols with an entry, sorted
    by_bucket: dict[Bucket, PnlTotals]  # every bucket
    by_group: dict[str, PnlTotals]  # every universe group, in its order, zero groups included
    fallback_marks: list[str]  # symbols valued at their last price for want of a mark
    realized_prior: float = 0.0  # realized P&L of the days already closed (account level)


def value_position(entry: CostBasis, mark: float, group: str) -> PositionPnl:
    return PositionPnl(
        symbol=entry.symbol,
        bucket=entry.bucket,
        group=group,
        quantity=entry.quantity,
        avg_cost=entry.avg_cost,
        mark=mark,
        realized=entry.realized,
        unrealized=(mark - entry.avg_cost) * entry.quantity,
        daily=entry.quantity * mark - entry.bod_quantity * entry.bod_mark + entry.cash,
        costs=entry.costs,
    )


def daily_loss_pct(daily_pnl: float, equity: float) -> float:
    """Loss as a positive % of equity (0 on a gain). A P&L or equity that cannot be measured
    (NaN, equity ≤ 0) reads as an infinite loss: the loss rows fail closed."""
    if math.isnan(daily_pnl) or not (math.isfinite(equity) and equity > 0):
        return math.inf
    return max(0.0, -daily_pnl) / equity * 100.0


def summarize(book: PnlBook, marks: Mapping[str, float], universe: Universe, equity: float) -> PnlSummary:
    group_of = universe.group_of
    entries = sorted(book.positions.values(), key=lambda e: (e.symbol, _BUCKET_ORDER[e.bucket]))
    positions: list[PositionPnl] = []
    fallback: list[str] = []
    for entry in entries:
        mark, is_fallback = _mark(entry, marks)
        if is_fallback and entry.symbol not in fallback:
            fallback.append(entry.symbol)
        positions.append(value_position(entry, mark, group_of.get(entry.symbol, UNKNOWN_GROUP)))

    zero = PnlTotals()
    account = zero
    by_symbol: dict[str, PnlTotals] = {}
    by_bucket: dict[Bucket, PnlTotals] = {bucket: zero for bucket in Bucket}
    by_group: dict[str, PnlTotals] = {group: zero for group in universe.groups}
    for pos in positions:
        t = pos.totals
        account += t
        by_symbol[pos.symbol] = by_symbol.get(pos.symbol, zero) + t
        by_bucket[pos.bucket] += t
        by_group[pos.group] = by_group.get(pos.group, zero) + t
    return PnlSummary(
        equity=equity,
        account=account,
        daily_loss_pct=daily_loss_pct(account.net, equity),
        positions=positions,
        by_symbol=by_symbol,
        by_bucket=by_bucket,
        by_group=by_group,
        fallback_marks=fallback,
        realized_prior=book.realized_prior,
    )


# ----- the beginning-of-day snapshot as CSV -----

BOD_COLUMNS = ("symbol", "bucket", "quantity", "avg_cost", "mark")
BOD_REQUIRED = BOD_COLUMNS[:4]


class BodCsvError(ValueError):
    """A snapshot that cannot be read; `line` is 1-based, `column` a header name (or None)."""

    def __init__(self, line: int, column: str | None, problem: str) -> None:
        where = f"line {line}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")
        self.line = line
        self.column = column
        self.problem = problem


def parse_bod_csv(text: str, universe: Universe | None = None, previous_close: Mapping[str, float] | None = None) -> list[BodPosition]:
    """Parse `symbol,bucket,quantity,avg_cost[,mark]` (a header line, columns in any order).

    Blank lines and lines starting with '#' are skipped; rows with quantity 0 are skipped (no
    position). With a universe, symbols must be in it. One row per (symbol, bucket). A position
    without a mark takes `previous_close` of its symbol (the account's last closing mark); with
    none it is refused at its line, column 'mark'.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    rows: list[BodPosition] = []
    first_line: dict[str, int] = {}
    for record in _records(reader):
        line = reader.line_num
        cells = [cell.strip() for cell in record]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = _header(cells, line)
            continue
        if len(cells) != len(header):
            raise BodCsvError(line, None, f"{len(cells)} fields, the header has {len(header)}")
        if len(first_line) >= MAX_BOD_ROWS:
            raise BodCsvError(line, None, f"more than {MAX_BOD_ROWS:,} rows")
        values = dict(zip(header, cells))
        row = _bod_row(values, line, universe)
        key = position_key(row.symbol, row.bucket)
        if key in first_line:
            raise BodCsvError(line, "symbol", f"{row.symbol[:40]}/{row.bucket.value} already on line {first_line[key]}")
        first_line[key] = line
        if row.quantity:
            try:
                row = fill_bod_marks([row], previous_close)[0]
            except MissingMark as err:
                raise BodCsvError(line, "mark", str(err)) from None
            rows.append(row)
    if header is None:
        raise BodCsvError(1, None, f"no header; expected {','.join(BOD_REQUIRED)}[,mark]")
    return rows


def _records(reader: Any) -> Iterator[list[str]]:
    """The reader's rows; a malformed one (a field over the csv module's size limit, a stray
    quote) is a BodCsvError at its line, not a csv.Error."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise BodCsvError(reader.line_num, None, f"not a CSV row: {str(err)[:80]}") from None
        yield record


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _header(cells: Sequence[str], line: int) -> list[str]:
    names = [cell.lower() for cell in cells]
    for name in names:
        if name not in BOD_COLUMNS:
            raise BodCsvError(line, name[:40], f"unknown column; expected {','.join(BOD_REQUIRED)}[,mark]")
        if names.count(name) > 1:
            raise BodCsvError(line, name, "column appears twice")
    for name in BOD_REQUIRED:
        if name not in names:
            raise BodCsvError(line, name, "missing column")
    return names


def _bod_row(values: dict[str, str], line: int, universe: Universe | None) -> BodPosition:
    symbol = values["symbol"].upper()
    if not symbol:
        raise BodCsvError(line, "symbol", "empty")
    if universe is not None and symbol not in universe.by_symbol:
        raise BodCsvError(line, "symbol", f"unknown symbol {_shown(symbol)}")
    try:
        bucket = Bucket(values["bucket"].upper())
    except ValueError:
        raise BodCsvError(line, "bucket", f"{_shown(values['bucket'])} is not one of {', '.join(b.value for b in Bucket)}") from None
    quantity = _whole(values["quantity"], line)
    avg_cost = _price(values["avg_cost"], line, "avg_cost")
    raw_mark = values.get("mark", "")
    mark = _price(raw_mark, line, "mark") if raw_mark else None
    return BodPosition(symbol=symbol, bucket=bucket, quantity=quantity, avg_cost=avg_cost, mark=mark)


def _whole(text: str, line: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BodCsvError(line, "quantity", f"{_shown(text)} is not a whole number") from None
    if abs(value) > MAX_QUANTITY:
        raise BodCsvError(line, "quantity", f"{_shown(text)} is beyond ±{MAX_QUANTITY:,}")
    return value


def _price(text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BodCsvError(line, column, f"{_shown(text)} is not a number") from None
    if not math.isfinite(value) or value <= 0 or value > MAX_PRICE:
        raise BodCsvError(line, column, f"{_shown(text)} must be a finite price > 0 and ≤ {MAX_PRICE:,.0f}")
    return value
