"""Market data's pure core: L1 quotes, prints, the truth tick, GRPAN, marks, stale-data gates,
and matching a simulated venue's orders against the market (DESIGN.md §3 "Market data").

No I/O, no clock, no randomness of its own: workflows import it; the feed (`marketdata/`)
computes its snapshots with these same functions.

Prints
  A *real* print is one that may set the last sale: size ≥ 20 shares, not an odd lot
  (condition ``I``) and none of the conditions that do not update last (`NON_LAST_CONDITIONS`).
  Sale conditions travel as a string of condition characters ("", "I", "@ T"…; spaces and
  ``@``, the regular-sale code, are ignored). Venue codes are the SIP participant ids; FINRA's
  trade reporting facilities report as ``D`` (the SIP's id for the FINRA ADF/TRFs), so
  ``venue == "D"`` means an off-exchange (TRF) print.

Weights (GRPAN)
  1.0 for exchange prints and for TRF prints of exactly 100 or 200 shares; 0.4 for other TRF
  round lots (≥ 300, multiples of 100); 0.2 for any other TRF size. Computed in integer units of
  0.2 so sums and ties are exact.

Truth tick and GRPAN
  The truth tick is the latest real print (by time; equal times → the later one in input
  order). GRPAN is the weighted mode of the prices of the last 15 real prints (equal weight →
  the price traded most recently); its concentration is the share of the window's weight within
  ±$0.04 of it. Prints with equal timestamps are put in a canonical order (price, size, venue,
  conditions) for GRPAN, so simultaneous prints give the same GRPAN whatever order they came in.

Marks
  The mark for exposure is the truth tick, else the L1 mid, else the instrument's reference
  price; `MarketView.mark_source` records which.

Stale data (`MarketDataRule`)
  SOFT de-risk may act on a symbol only while its truth tick is at most
  `print_max_age_seconds` old (no real print at all is stale too); HARD only while its L1 is at
  most `l1_max_age_seconds` old. Otherwise the gate answers `STALE_DATA` with a sentence.

Matching (the simulated venue with market data; `match_order`)
  - Marketable (buy limit ≥ ask, sell limit ≤ bid, or MARKET): fills at the touch (ask for a
    buy, bid for a sell) up to the displayed size there; the rest keeps working. This is judged
    at every attempt against the current L1, so a working order the market has moved through
    takes the touch at its next attempt (a simplification: one fill price per attempt).
  - Passive: fills from the exchange prints after the order's last check (``since``) that
    traded at or through its limit, always at the limit. Volume that traded *through* the limit
    would have taken the order first (price priority), so it fills for sure; volume *at* the
    limit reaches the order only if its queue position was reached, decided by one draw from
    the order's own stream against `queue_fill_probability`. TRF prints are not counted (they
    never touched a lit book) nor are prints with a condition that does not update last (they
    are not executions against the book at that price); odd lots are counted.
  - Quantities are whole lots unless the fill completes the order; a fill never exceeds the
    remaining quantity and is never at a price worse than the limit.
  - Without market data (the simulated feed from marks) the mode probabilities of
    `domain/venue.py` stay the model: the caller decides which one applies (`FeedSource`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from domain.enums import Side
from domain.market import half_spread


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Shares = Annotated[int, Field(ge=0)]

# ---------------------------------------------------------------------------------------------
# Vocabulary and constants

MIN_REAL_PRINT_SIZE = 20  # shares; smaller prints never set the truth tick
ODD_LOT = "I"
TRF_VENUE = "D"  # SIP participant id of the FINRA ADF/TRFs: every off-exchange print
ROUND_LOT = 100  # shares (the pre-2025 round lot; TRF weights are defined on it)
GRPAN_WINDOW = 15  # last real prints
GRPAN_BAND = 0.04  # dollars either side of GRPAN that count toward its concentration
WEIGHT_UNIT = 0.2  # weights are whole multiples of this (exact sums, exact ties)
BAND_SLACK = 1e-9  # so a price exactly $0.04 away counts despite binary floats

# Sale conditions that do not update the last sale price (CTA/UTP conventions).
NON_LAST_CONDITIONS: frozenset[str] = frozenset(
    {
        "W",  # average price trade
        "B",  # bunched trade (UTP) / average price trade (CTA)
        "C",  # cash sale (same-day settlement)
        "N",  # next day trade
        "T",  # Form T: extended hours trade
        "U",  # extended hours trade reported late / out of sequence
        "H",  # price variation trade
        "4",  # derivatively priced
        "P",  # prior reference price
        "7",  # qualified contingent trade (QCT)
        "V",  # contingent trade
        "M",  # market center official close
        "Q",  # market center official open
    }
)
# A print is not real if it carries any of these.
EXCLUDED_CONDITIONS: frozenset[str] = NON_LAST_CONDITIONS | {ODD_LOT}


class MarkSource(str, Enum):
    TRUTH_TICK = "TRUTH_TICK"
    MID = "MID"
    REFERENCE = "REFERENCE"


class FeedSource(str, Enum):
    """Where a view came from. MARKS is the simulated feed (no prints, no depth): the venue
    keeps the mode probabilities there; the others carry real L1 and prints."""

    MARKS = "MARKS"
    RECORDED = "RECORDED"
    GENERATED = "GENERATED"


class MarketDataReason(str, Enum):
    STALE_DATA = "STALE_DATA"


class Liquidity(str, Enum):
    """How a match happened: took the displayed touch, or rested and was traded against."""

    TAKE = "TAKE"
    PASSIVE = "PASSIVE"


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
    """Market-data settings (to sit in RiskRules as `market_data`)."""

    print_max_age_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 300.0
    l1_max_age_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    min_print_size: Annotated[int, Field(gt=0)] = MIN_REAL_PRINT_SIZE
    grpan_window: Annotated[int, Field(gt=0)] = GRPAN_WINDOW
    grpan_band: Annotated[float, Field(ge=0, allow_inf_nan=False)] = GRPAN_BAND
    # Chance that volume printed at an order's limit reached its place in the queue.
    queue_fill_probability: Annotated[float, Field(ge=0, le=1)] = 0.5


class MarketView(Frozen):
    """One symbol's market as of an exchange time: what exposure, de-risk and the venue read.

    `truth_tick`/`grpan` are None without a real print; `l1` is None before the first quote.
    Ages are seconds from the data's time to `as_of` (None when there is no such data)."""

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

    @property
    def bid(self) -> float | None:
        return self.l1.bid if self.l1 else None

    @property
    def ask(self) -> float | None:
        return self.l1.ask if self.l1 else None

    @property
    def mid(self) -> float | None:
        return self.l1.mid if self.l1 else None


class DataGate(Frozen):
    """May de-risk act on this symbol's data? If not, the reason code and a sentence."""

    symbol: str
    may_act: bool
    reason: MarketDataReason | None = None
    detail: str = ""


class Match(Frozen):
    """A venue match: `quantity` shares at `price` (0 and None: nothing filled, `detail` says why)."""

    quantity: Shares = 0
    price: float | None = None
    liquidity: Liquidity | None = None
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


def condition_codes(conditions: str) -> frozenset[str]:
    """The condition characters of a conditions string (blank and '@', regular sale, dropped)."""
    return frozenset(conditions) - {" ", "@"}


def is_real_condition(conditions: str) -> bool:
    return not (condition_codes(conditions) & EXCLUDED_CONDITIONS)


def is_real_print(p: Print, min_size: int = MIN_REAL_PRINT_SIZE) -> bool:
    return p.size >= min_size and is_real_condition(p.conditions)


def weight_units(venue: str, size: int) -> int:
    """A print's GRPAN weight in units of `WEIGHT_UNIT` (5 = 1.0, 2 = 0.4, 1 = 0.2)."""
    if venue != TRF_VENUE or size in (ROUND_LOT, 2 * ROUND_LOT):
        return 5
    if size >= 3 * ROUND_LOT and size % ROUND_LOT == 0:
        return 2
    return 1


def print_weight(p: Print) -> float:
    return weight_units(p.venue, p.size) * WEIGHT_UNIT


# ---------------------------------------------------------------------------------------------
# Truth tick and GRPAN


def truth_tick(prints: Sequence[Print], min_size: int = MIN_REAL_PRINT_SIZE) -> Print | None:
    """The latest real print; equal times → the later one in input order."""
    best: Print | None = None
    for p in prints:
        if is_real_print(p, min_size) and (best is None or p.time >= best.time):
            best = p
    return best


def _canonical(p: Print) -> tuple:
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
    prints: Iterable[Print],
    window: int = GRPAN_WINDOW,
    band: float = GRPAN_BAND,
    min_size: int = MIN_REAL_PRINT_SIZE,
) -> Grpan | None:
    real = sorted((p for p in prints if is_real_print(p, min_size)), key=_canonical)[-window:]
    return weighted_mode([price_key(p.price) for p in real], [weight_units(p.venue, p.size) for p in real], band)


# ---------------------------------------------------------------------------------------------
# Views and marks


def choose_mark(truth: float | None, mid: float | None, reference_price: float | None) -> tuple[float, MarkSource]:
    """The mark for exposure: the truth tick, else the L1 mid, else the reference price."""
    if truth is not None:
        return truth, MarkSource.TRUTH_TICK
    if mid is not None:
        return round(mid, 6), MarkSource.MID
    if reference_price is not None:
        return reference_price, MarkSource.REFERENCE
    raise ValueError("no truth tick, no L1 and no reference price: nothing to mark with")


def age_seconds(as_of: datetime, then: datetime | None) -> float | None:
    return None if then is None else (as_of - then).total_seconds()


def market_view(
    symbol: str,
    as_of: datetime,
    l1: L1 | None,
    prints: Sequence[Print],
    reference_price: float | None,
    rule: MarketDataRule = MarketDataRule(),
    source: FeedSource = FeedSource.RECORDED,
) -> MarketView:
    """A symbol's view as of `as_of` from its latest L1 and its prints so far. Anything stamped
    after `as_of` is ignored (no look-ahead); prints of other symbols too."""
    if l1 is not None and (l1.symbol != symbol or l1.time > as_of):
        l1 = None
    seen = [p for p in prints if p.symbol == symbol and p.time <= as_of]
    tick = truth_tick(seen, rule.min_print_size)
    g = grpan(seen, rule.grpan_window, rule.grpan_band, rule.min_print_size)
    truth = tick.price if tick else None
    mark, mark_source = choose_mark(truth, l1.mid if l1 else None, reference_price)
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
        print_age_seconds=age_seconds(as_of, tick.time if tick else None),
        l1_age_seconds=age_seconds(as_of, l1.time if l1 else None),
        mark=mark,
        mark_source=mark_source,
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


# ---------------------------------------------------------------------------------------------
# Matching against market data


def _whole_lots(quantity: int, remaining: int, lot: int) -> int:
    quantity = max(0, min(quantity, remaining))
    return quantity if quantity == remaining else quantity // lot * lot


def is_marketable(side: Side, limit_price: float | None, l1: L1) -> bool:
    if limit_price is None:
        return True
    return limit_price >= l1.ask if side is Side.BUY else limit_price <= l1.bid


def match_marketable(side: Side, limit_price: float | None, remaining: int, lot: int, l1: L1 | None) -> Match:
    """Take the displayed touch: a buy at the ask up to the ask size, a sell at the bid up to
    the bid size. `limit_price` None is a MARKET order."""
    if remaining <= 0:
        return Match(detail="nothing remaining")
    if l1 is None:
        return Match(detail="no L1 quote")
    if not is_marketable(side, limit_price, l1):
        return Match(detail="not marketable")
    touch, shown = (l1.ask, l1.ask_size) if side is Side.BUY else (l1.bid, l1.bid_size)
    quantity = _whole_lots(shown, remaining, lot)
    if quantity == 0:
        return Match(detail=f"displayed {shown} at {touch:.2f} is less than a lot")
    return Match(quantity=quantity, price=touch, liquidity=Liquidity.TAKE, detail=f"took {quantity} of {shown} displayed at {touch:.2f}")


def counts_for_passive(p: Print) -> bool:
    """Exchange prints that executed against a book (odd lots included)."""
    return p.venue != TRF_VENUE and not (condition_codes(p.conditions) & NON_LAST_CONDITIONS)


def match_passive(
    side: Side,
    limit_price: float,
    remaining: int,
    lot: int,
    prints: Iterable[Print],
    since: datetime,
    rng: random.Random,
    queue_fill_probability: float = MarketDataRule().queue_fill_probability,
) -> Match:
    """A resting limit against the prints after `since`: volume through the limit fills for
    sure, volume at the limit if the queue draw says our place was reached; at the limit."""
    reached = rng.random() < queue_fill_probability  # always one draw: a stable stream
    if remaining <= 0:
        return Match(detail="nothing remaining")
    through = at = 0
    for p in prints:
        if p.time <= since or not counts_for_passive(p):
            continue
        gap = limit_price - p.price if side is Side.BUY else p.price - limit_price
        if gap > 1e-9:
            through += p.size
        elif gap > -1e-9:
            at += p.size
    available = through + (at if reached else 0)
    quantity = _whole_lots(available, remaining, lot)
    if quantity == 0:
        why = "queue not reached" if at and not reached else "no prints at or through the limit"
        return Match(detail=f"{why} (through {through}, at {at})")
    return Match(
        quantity=quantity,
        price=limit_price,
        liquidity=Liquidity.PASSIVE,
        detail=f"{through} traded through, {at} at {limit_price:.2f}{' (queue reached)' if reached and at else ''}",
    )


def match_order(
    side: Side,
    limit_price: float | None,
    remaining: int,
    lot: int,
    l1: L1 | None,
    prints: Iterable[Print],
    since: datetime,
    rng: random.Random,
    rule: MarketDataRule = MarketDataRule(),
) -> Match:
    """One venue attempt: marketable now → take the touch; else rest and match the prints since
    the last attempt. On arrival pass `since` = now (no prints yet)."""
    if l1 is not None and is_marketable(side, limit_price, l1):
        return match_marketable(side, limit_price, remaining, lot, l1)
    if limit_price is None:
        return Match(detail="MARKET order without an L1 quote")
    return match_passive(side, limit_price, remaining, lot, prints, since, rng, rule.queue_fill_probability)
