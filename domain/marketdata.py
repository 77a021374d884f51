"""Market data's pure core: L1 quotes, prints, real prints, the truth tick, GRPAN, views with
their marks, stale-data gates (DESIGN.md §3 "Market data").

No I/O, no clock, no randomness of its own: workflows import it; the feed (`marketdata/`)
computes its snapshots with these same rules. Sale-condition tables and round lots are data in
`domain/conditions.py`, marks in `domain/marks.py`, matching a simulated venue's orders against
the market in `domain/matching.py`.

Prints
  A *real* print is one that may set the last sale: size ≥ `min_print_size` shares and last-sale
  eligible on its symbol's SIP plan (CTA or UTP tables: no odd lot ``I``, none of the codes that
  do not update last; Z, G, R, P, 4… only as the first eligible trade of the day). Sale conditions
  travel as a string of condition characters ("", "I", "@ T"…; spaces and ``@``, the regular-sale
  code, are ignored). Venue codes are the SIP participant ids; FINRA's trade reporting facilities
  report as ``D``, so ``venue == "D"`` means an off-exchange (TRF) print.

Weights (GRPAN)
  1.0 for exchange prints and for TRF prints of exactly one or two round lots; 0.4 for other TRF
  round lots (three or more, whole lots); 0.2 for any other TRF size. The round lot is the
  symbol's (100 shares below $250; `domain/conditions.py`). Integer units of 0.2: exact sums.

Truth tick and GRPAN
  The truth tick is the latest real print (by time; equal times → the later one in input
  order). GRPAN is the weighted mode of the prices of the last 15 real prints (equal weight →
  the price traded most recently); its concentration is the share of the window's weight within
  ±$0.04 of it. Prints with equal timestamps are put in a canonical order (price, size, venue,
  conditions) for GRPAN, so simultaneous prints give the same GRPAN whatever order they came in.

Marks (`domain/marks.py`)
  The truth tick while fresh and inside the current bid/ask (clamped otherwise), else the mid of
  a fresh L1, else the last mark flagged stale with its age; the collar reference is the fresh
  mark or None (fail closed). `MarketView` carries the mark's source, age and flags.

Stale data (`MarketDataRule`)
  SOFT de-risk may act on a symbol only while its truth tick is at most
  `print_max_age_seconds` old (no real print at all is stale too); HARD only while its L1 is at
  most `l1_max_age_seconds` old. Otherwise the gate answers `STALE_DATA` with a sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    Field,
    field_validator,
    model_validator,
)

from domain.base import Frozen
from domain.conditions import (
    DEFAULT_PLAN,
    ODD_LOT,
    ROUND_LOT_TIERS,
    LastSale,
    RoundLotTier,
    SipPlan,
    check_tiers,
    eligible_in_order,
    last_sale,
)
from domain.market import half_spread
from domain.marks import Mark, MarkSource, collar_reference_at, fresh_mark

__all__ = ["ODD_LOT", "MarkSource", "SipPlan"]  # re-exported: callers name them from here


Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Shares = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]

# ---------------------------------------------------------------------------------------------
# Vocabulary and constants

MIN_REAL_PRINT_SIZE = 20  # shares; smaller prints never set the truth tick
TRF_VENUE = "D"  # SIP participant id of the FINRA ADF/TRFs: every off-exchange print
ROUND_LOT = 100  # shares: the round lot of a stock at $250 or less (most of them)
GRPAN_WINDOW = 15  # last real prints
GRPAN_BAND = 0.04  # dollars either side of GRPAN that count toward its concentration
WEIGHT_UNIT = 0.2  # weights are whole multiples of this (exact sums, exact ties)
BAND_SLACK = 1e-9  # so a price exactly $0.04 away counts despite binary floats


class FeedSource(str, Enum):
    """Where a view came from. MARKS is the simulated feed (no prints, no depth): the venue
    keeps the mode probabilities there; the others carry real L1 and prints."""

    MARKS = "MARKS"
    RECORDED = "RECORDED"
    GENERATED = "GENERATED"


class MarketDataReason(str, Enum):
    STALE_DATA = "STALE_DATA"


# ---------------------------------------------------------------------------------------------
# Models


class L1(Frozen):
    """Top of book: best bid and offer with their displayed sizes (shares)."""

    symbol: str
    bid: Price
    ask: Price
    bid_size: Shares
    ask_size: Shares
    time: AwareDatetime

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def crossed(self) -> bool:
        """Bid above ask: happens briefly in consolidated data; flagged, never hidden."""
        return self.bid > self.ask


class Print(Frozen):
    """A reported trade: price, shares, venue (SIP participant id) and sale conditions."""

    symbol: str
    price: Price
    size: Annotated[int, Field(gt=0)]
    venue: str
    conditions: str = ""
    time: AwareDatetime


class Grpan(NamedTuple):
    price: float
    concentration: float  # in [0, 1]
    prints: int  # real prints in the window (≤ the window size)


class MarketDataRule(Frozen):
    """Market-data settings (in RiskRules as `market_data`)."""

    # Freshness: SOFT and the truth tick as a mark need a real print this recent; HARD and the
    # L1 mid as a mark need an L1 this recent.
    print_max_age_seconds: Seconds = 300.0
    l1_max_age_seconds: Seconds = 60.0
    min_print_size: Annotated[int, Field(gt=0)] = MIN_REAL_PRINT_SIZE
    grpan_window: Annotated[int, Field(gt=0, le=100)] = GRPAN_WINDOW
    grpan_band: Annotated[float, Field(ge=0, allow_inf_nan=False)] = GRPAN_BAND
    # Round lot by the stock's average closing price (SEC Rule 600(b) as amended in 2024).
    round_lot_tiers: tuple[RoundLotTier, ...] = ROUND_LOT_TIERS
    # A resting de-risk order is repriced once the price it would get now (SOFT: truth tick ∓
    # offset; HARD: the bid/ask) has moved away from its limit by more than this many ticks.
    reprice_ticks_soft: Annotated[int, Field(ge=1, le=10_000)] = 5
    reprice_ticks_hard: Annotated[int, Field(ge=1, le=10_000)] = 2
    # The path before the exchange step (runs recorded before it replay on it): the chance
    # that volume printed at an order's limit reached its place in the queue.
    queue_fill_probability: Annotated[float, Field(ge=0, le=1)] = 0.5

    @field_validator("round_lot_tiers")
    @classmethod
    def _tiers(cls, value: tuple[RoundLotTier, ...]) -> tuple[RoundLotTier, ...]:
        return check_tiers(value)


class MarketView(Frozen):
    """One symbol's market as of an exchange time: what exposure, de-risk and the venue read.

    `truth_tick`/`grpan` are None without a real print; `l1` is None before the first quote.
    Ages are seconds from the data's time to `as_of` (None when there is no such data). The mark
    (`domain/marks.py`) carries its source, its age and whether it is stale or was clamped."""

    symbol: str
    as_of: AwareDatetime
    source: FeedSource
    l1: L1 | None = None
    truth_tick: float | None = None
    truth_tick_time: AwareDatetime | None = None
    grpan: float | None = None
    concentration: float | None = None
    grpan_prints: int = 0
    print_age_seconds: float | None = None
    l1_age_seconds: float | None = None
    mark: Price
    mark_source: MarkSource
    mark_age_seconds: float | None = None
    mark_stale: bool = False
    mark_clamped: bool = False

    @property
    def bid(self) -> float | None:
        return self.l1.bid if self.l1 else None

    @property
    def ask(self) -> float | None:
        return self.l1.ask if self.l1 else None

    @property
    def mid(self) -> float | None:
        return self.l1.mid if self.l1 else None

    @property
    def collar_reference(self) -> float | None:
        """The price collar's reference: the fresh mark; None when nothing is fresh (refuse)."""
        return None if self.mark_stale else self.mark

    def collar_reference_at(self, now: datetime, rule: MarketDataRule) -> float | None:
        """The reference judged at `now`, a pre-trade check between two views: None once the
        mark has aged past its source's freshness limit (the collar then refuses)."""
        limit = rule.print_max_age_seconds if self.mark_source is MarkSource.TRUTH_TICK else rule.l1_max_age_seconds
        return collar_reference_at(self.collar_reference, self.mark_age_seconds, self.as_of, now, limit)


class DataGate(Frozen):
    """May de-risk act on this symbol's data? If not, the reason code and a sentence."""

    symbol: str
    may_act: bool
    reason: MarketDataReason | None = None
    detail: str = ""


class Shock(Frozen):
    """A scripted move for the generator: from `at` (exchange time HH:MM[:SS]) the price level of
    `symbols` (or all) moves by `move_pct` percent over `over_seconds`."""

    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
    symbols: Literal["all"] | tuple[str, ...] = "all"
    move_pct: Annotated[float, Field(gt=-100, allow_inf_nan=False)] = 0.0
    over_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    # A silent tape: no prints for this many seconds from `at` while quotes go on (the truth
    # tick goes stale: SOFT de-risk must wait, HARD still acts on the fresh L1).
    silence_prints_seconds: Annotated[int, Field(ge=0, le=86_400)] = 0
    # A crossed book: quotes show bid above ask for this many seconds from `at` (quote sanity's case).
    cross_quotes_seconds: Annotated[int, Field(ge=0, le=86_400)] = 0

    @field_validator("symbols", mode="before")
    @classmethod
    def _spelled(cls, value: object) -> object:
        # YAML writes `all`, `ALL`, `AAPL` or `[AAPL, MSFT]`: all mean what they say.
        if isinstance(value, str):
            return "all" if value.lower() == "all" else (value,)
        return value

    def applies_to(self, symbol: str) -> bool:
        return self.symbols == "all" or symbol in self.symbols


class GeneratedDay(Frozen):
    """The generator's recipe: same recipe and universe ⇒ the same rows."""

    seed: int
    date: date
    shocks: tuple[Shock, ...] = ()
    # Activity as a share of each instrument's real trade count (ADV / typical print size);
    # 0.05 ≈ 380k prints and 1.2M quotes for the 44-instrument universe.
    scale: Annotated[float, Field(gt=0, le=1)] = 0.05


class FeedSpec(Frozen):
    """Which feed a workflow's activities read (travels in workflow input; plain data).

    MARKS: the simulated feed from the account's marks. RECORDED: a day's file set in `path`.
    GENERATED: a seeded day (`generated`). `replay_on` replays a recorded or generated day onto
    another date at the same exchange wall-clock times (a scenario's virtual day)."""

    source: FeedSource = FeedSource.MARKS
    path: str | None = None
    generated: GeneratedDay | None = None
    replay_on: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> FeedSpec:
        if self.source is FeedSource.RECORDED and not self.path:
            raise ValueError("a RECORDED feed needs `path` (a day's directory)")
        if self.source is FeedSource.GENERATED and self.generated is None:
            raise ValueError("a GENERATED feed needs `generated` (seed, date, shocks)")
        return self


# ---------------------------------------------------------------------------------------------
# Prints: real prints, weights


def real_flags(prints: Sequence[Print], min_size: int = MIN_REAL_PRINT_SIZE, plan: SipPlan = DEFAULT_PLAN) -> list[bool]:
    """Which of one symbol's prints of the day (in any order) are real: last-sale eligible on
    the plan's table — a first-of-day-only code counts when no eligible print came before it
    that day (by time, equal times in input order) — and at least `min_size` shares."""
    order = sorted(range(len(prints)), key=lambda i: prints[i].time)
    eligible = eligible_in_order(last_sale(prints[i].conditions, plan) for i in order)
    real = [False] * len(prints)
    for i, ok in zip(order, eligible, strict=True):
        real[i] = ok and prints[i].size >= min_size
    return real


def is_real_print(p: Print, min_size: int = MIN_REAL_PRINT_SIZE, plan: SipPlan = DEFAULT_PLAN, first_of_day: bool = False) -> bool:
    """One print on its own: `first_of_day` says no eligible print came before it today."""
    verdict = last_sale(p.conditions, plan)
    eligible = verdict is LastSale.YES or (verdict is LastSale.FIRST and first_of_day)
    return eligible and p.size >= min_size


def weight_units(venue: str, size: int, lot: int = ROUND_LOT) -> int:
    """A print's GRPAN weight in units of `WEIGHT_UNIT` (5 = 1.0, 2 = 0.4, 1 = 0.2)."""
    if venue != TRF_VENUE or size in (lot, 2 * lot):
        return 5
    if size >= 3 * lot and size % lot == 0:
        return 2
    return 1


def print_weight(p: Print, lot: int = ROUND_LOT) -> float:
    return weight_units(p.venue, p.size, lot) * WEIGHT_UNIT


# ---------------------------------------------------------------------------------------------
# Truth tick and GRPAN


def truth_tick(prints: Sequence[Print], min_size: int = MIN_REAL_PRINT_SIZE, plan: SipPlan = DEFAULT_PLAN) -> Print | None:
    """The latest real print of one symbol's day so far; equal times → the later one in input order."""
    best: Print | None = None
    for p, real in zip(prints, real_flags(prints, min_size, plan), strict=True):
        if real and (best is None or p.time >= best.time):
            best = p
    return best


def _canonical(p: Print) -> tuple[datetime, float, int, str, str]:
    return (p.time, p.price, p.size, p.venue, p.conditions)


def price_key(price: float) -> float:
    """Prices compare at a millionth of a dollar (1.1 + 2.2 and 3.3 are the same price)."""
    return round(price, 6)


def weighted_mode(prices: Sequence[float], units: Sequence[int], band: float = GRPAN_BAND) -> Grpan | None:
    """GRPAN of a window given oldest first, prices already `price_key`ed: the price with the most
    weight (equal weight → the one traded last) and the share of weight within ±`band` of it."""
    totals: dict[float, int] = {}
    last_seen: dict[float, int] = {}
    for i, (price, unit) in enumerate(zip(prices, units, strict=True)):
        totals[price] = totals.get(price, 0) + unit
        last_seen[price] = i
    if not totals:
        return None
    mode = max(totals, key=lambda k: (totals[k], last_seen[k]))
    whole = sum(totals.values())
    near = sum(w for k, w in totals.items() if abs(k - mode) <= band + BAND_SLACK)
    return Grpan(price=mode, concentration=near / whole, prints=len(prices))


def grpan(
    prints: Sequence[Print],
    window: int = GRPAN_WINDOW,
    band: float = GRPAN_BAND,
    min_size: int = MIN_REAL_PRINT_SIZE,
    plan: SipPlan = DEFAULT_PLAN,
    lot: int = ROUND_LOT,
) -> Grpan | None:
    """GRPAN of one symbol's day so far (its real prints' last `window`)."""
    return grpan_of_real([p for p, ok in zip(prints, real_flags(prints, min_size, plan), strict=True) if ok], window, band, lot)


def grpan_of_real(real: Iterable[Print], window: int = GRPAN_WINDOW, band: float = GRPAN_BAND, lot: int = ROUND_LOT) -> Grpan | None:
    """GRPAN of prints already known to be real: the last `window` in canonical order."""
    last = sorted(real, key=_canonical)[-window:]
    return weighted_mode([price_key(p.price) for p in last], [weight_units(p.venue, p.size, lot) for p in last], band)


# ---------------------------------------------------------------------------------------------
# Views and marks


def age_seconds(as_of: datetime, then: datetime | None) -> float | None:
    return None if then is None else (as_of - then).total_seconds()


def mark_of(
    truth: float | None,
    print_age: float | None,
    l1: L1 | None,
    l1_age: float | None,
    reference_price: float | None,
    rule: MarketDataRule,
) -> Mark:
    return fresh_mark(
        truth=truth,
        print_age=print_age,
        bid=l1.bid if l1 else None,
        ask=l1.ask if l1 else None,
        l1_age=l1_age,
        reference_price=reference_price,
        print_max_age_seconds=rule.print_max_age_seconds,
        l1_max_age_seconds=rule.l1_max_age_seconds,
    )


def market_view(
    symbol: str,
    as_of: datetime,
    l1: L1 | None,
    prints: Sequence[Print],
    reference_price: float | None,
    rule: MarketDataRule = MarketDataRule(),
    source: FeedSource = FeedSource.RECORDED,
    plan: SipPlan = DEFAULT_PLAN,
    lot: int = ROUND_LOT,
) -> MarketView:
    """A symbol's view as of `as_of` from its latest L1 and its day's prints so far. Anything
    stamped after `as_of` is ignored (no look-ahead); prints of other symbols too."""
    if l1 is not None and (l1.symbol != symbol or l1.time > as_of):
        l1 = None
    seen = [p for p in prints if p.symbol == symbol and p.time <= as_of]
    tick = truth_tick(seen, rule.min_print_size, plan)
    g = grpan(seen, rule.grpan_window, rule.grpan_band, rule.min_print_size, plan, lot)
    truth = tick.price if tick else None
    print_age = age_seconds(as_of, tick.time if tick else None)
    l1_age = age_seconds(as_of, l1.time if l1 else None)
    mark = mark_of(truth, print_age, l1, l1_age, reference_price, rule)
    return MarketView(
        symbol=symbol,
        as_of=as_of,
        source=source,
        l1=l1,
        truth_tick=truth,
        truth_tick_time=tick.time if tick else None,
        grpan=g.price if g else None,
        concentration=g.concentration if g else None,
        grpan_prints=g.prints if g else 0,
        print_age_seconds=print_age,
        l1_age_seconds=l1_age,
        mark=mark.price,
        mark_source=mark.source,
        mark_age_seconds=mark.age_seconds,
        mark_stale=mark.stale,
        mark_clamped=mark.clamped,
    )


SIMULATED_DISPLAYED_SIZE = 1_000_000  # the simulated feed has no depth: the touch never limits


def simulated_view(symbol: str, mark: float, as_of: datetime, displayed_size: int = SIMULATED_DISPLAYED_SIZE) -> MarketView:
    """The simulated feed's rule (domain/market.py): truth tick = mark, bid/ask ±1 bp (≥ 1¢),
    all stamped `as_of` (always fresh); GRPAN = the mark, fully concentrated."""
    half = half_spread(mark)
    price = round(mark, 2)
    l1 = L1(
        symbol=symbol,
        bid=round(mark - half, 2),
        ask=round(mark + half, 2),
        bid_size=displayed_size,
        ask_size=displayed_size,
        time=as_of,
    )
    return MarketView(
        symbol=symbol,
        as_of=as_of,
        source=FeedSource.MARKS,
        l1=l1,
        truth_tick=price,
        truth_tick_time=as_of,
        grpan=price,
        concentration=1.0,
        grpan_prints=1,
        print_age_seconds=0.0,
        l1_age_seconds=0.0,
        mark=price,
        mark_source=MarkSource.TRUTH_TICK,
        mark_age_seconds=0.0,
    )


# ---------------------------------------------------------------------------------------------
# Stale-data gates


def soft_derisk_gate(view: MarketView, rule: MarketDataRule = MarketDataRule()) -> DataGate:
    """SOFT prices off the truth tick: it needs a real print no older than the rule allows."""
    age = view.print_age_seconds
    if age is None:
        return _stale(view.symbol, "no real print yet")
    if age > rule.print_max_age_seconds:
        return _stale(view.symbol, f"last real print {age:.0f} s old (limit {rule.print_max_age_seconds:g} s)")
    return DataGate(symbol=view.symbol, may_act=True)


def hard_derisk_gate(view: MarketView, rule: MarketDataRule = MarketDataRule()) -> DataGate:
    """HARD hits the bid / lifts the offer: it needs a fresh L1."""
    age = view.l1_age_seconds
    if age is None:
        return _stale(view.symbol, "no L1 quote yet")
    if age > rule.l1_max_age_seconds:
        return _stale(view.symbol, f"L1 {age:.0f} s old (limit {rule.l1_max_age_seconds:g} s)")
    return DataGate(symbol=view.symbol, may_act=True)


def _stale(symbol: str, why: str) -> DataGate:
    return DataGate(symbol=symbol, may_act=False, reason=MarketDataReason.STALE_DATA, detail=f"{symbol}: {why}")
