"""A seeded, realistic trading day of L1 quotes and prints for a universe, with scripted shocks.

Per instrument (`profiles.py`: volatility, spread, activity, depth from group, price and ADV):
- The price is a random walk per second with fat tails (Student t, 5 degrees of freedom), its
  volatility following the day's U shape; a shock moves its level by `move_pct` over
  `over_seconds` from `at` and brings a burst of activity that decays over ~15 minutes.
- Quotes arrive with a U-shaped intensity (busy open and close, quiet lunch), at least one
  every 5 s on average; the spread is the instrument's (≥ 1¢), wider just after the open;
  displayed sizes are round lots. The first quote is at the open, none before it.
- Prints arrive with the same U shape. Exchange prints trade at the touch; FINRA TRF prints
  (venue "D": 36% of prints of a round lot or more, half of the odd lots; ~44% in all) at the
  touch, the midpoint or with sub-penny price improvement. Sizes mix odd lots (below the
  stock's round lot — 100 shares up to $250, 40 up to $1,000, 10 up to $10,000, else 1 —
  condition "I", more of them the higher the price), one and two round lots, larger round
  lots, mixed lots and blocks; displayed sizes are whole round lots.
- Sale conditions: every code of the symbol's SIP table (`domain/conditions.py`; Nasdaq-listed
  symbols print on the UTP tape, the others on CTA) with a share like a real day's (`SPECIAL`):
  intermarket sweeps (F) on 15% of exchange prints; late and out-of-sequence reports (Z, L, G,
  R) at a price minutes old; trades that do not update last (W, B on CTA, C, N, H, 4, P, 7, V)
  at a price away from the market, mostly off-exchange; the rest at the market. Pre-market
  prints in the 30 minutes before the open are Form T ("T", some "U"); the opening cross prints
  "O" then the official open "Q" at the listing venue, the closing cross "6", the official
  close "M" and the corrected consolidated close "9" just before the close.

Every instrument draws from its own stream seeded by (seed, symbol): same recipe and universe
⇒ identical rows (and identical file bytes), and adding an instrument changes no other's day.
Timestamps are whole microseconds, strictly increasing per symbol.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from domain.conditions import ROUND_LOT_TIERS, TABLES, RoundLotTier, SipPlan, plan_of_listing, round_lot
from domain.marketdata import TRF_VENUE, GeneratedDay, Shock
from domain.rules import Instrument, Session, Universe
from marketdata.profiles import TRADING_SECONDS_PER_YEAR, Profile, profile
from marketdata.schema import PRINTS_SCHEMA, QUOTES_SCHEMA, TS, Day, DayManifest, DayOrigin

DEFAULT_DAY = date(2024, 6, 3)  # a Monday: the date a generated day gets unless told
PREOPEN_SECONDS = 1800
MIN_QUOTES_PER_SECOND = 1 / 5

# Exchanges (SIP participant ids) and their share of on-exchange prints.
EXCHANGES = {
    "Q": 0.24, "N": 0.14, "P": 0.12, "Z": 0.11, "K": 0.11, "U": 0.07, "V": 0.05, "Y": 0.04,
    "J": 0.03, "X": 0.02, "B": 0.02, "H": 0.02, "A": 0.01, "C": 0.01, "M": 0.01,
}  # fmt: skip
VENUES = [*EXCHANGES, TRF_VENUE]
TRF_CODE = VENUES.index(TRF_VENUE)
TRF_SHARE = 0.36  # of round-lot-or-larger prints; odd lots go off-exchange half the time
TRF_ODD_SHARE = 0.5

REGULAR, ISO, ODD, ODD_ISO, FORM_T, FORM_T_ODD, LATE_EXT, OPEN_CROSS, OFFICIAL_OPEN, CLOSE_CROSS, OFFICIAL_CLOSE, CORRECTED_CLOSE = range(12)
CONDITIONS = ["@", "F", "I", "FI", "T", "TI", "U", "O", "Q", "6", "M", "9"]
# How a special code's print is priced: at the market, late (a price minutes old, reported now),
# or away from the market (average-price, prior-reference, derivatively priced… trades).
AT, LATE, OFF = range(3)
# The rarest codes (acquisitions, splits, stopped stock, reopenings, placeholders…) at one print in
# ten thousand: more often than a real tape, so that a generated day holds each of them.
RARE = 0.0001
# Sale conditions besides the session's own (above): share of regular-session prints of a round
# lot or more, and how they are priced. The shares are of the order a large cap's consolidated
# tape shows (out-of-sequence and average-price reports a few per thousand, the rest rarer); they
# are the generator's assumption, not measured here.
SPECIAL: dict[SipPlan, dict[str, tuple[float, int]]] = {
    SipPlan.CTA: {
        "Z": (0.003, LATE), "L": (0.0005, LATE), "R": (0.0001, LATE),
        "B": (0.0008, OFF), "W": (0.003, OFF), "4": (0.002, OFF), "7": (0.001, OFF), "P": (0.001, OFF),
        "C": (0.0001, OFF), "N": (0.0001, OFF), "H": (0.0001, OFF), "V": (0.0002, OFF),
        "X": (0.0005, AT), "K": (RARE, AT), "E": (RARE, AT), "5": (RARE, AT),
    },
    SipPlan.UTP: {
        "Z": (0.003, LATE), "L": (0.0005, LATE), "G": (0.0002, LATE), "R": (0.0001, LATE),
        "W": (0.003, OFF), "4": (0.002, OFF), "7": (0.001, OFF), "P": (0.001, OFF),
        "C": (0.0001, OFF), "N": (0.0001, OFF), "H": (0.0001, OFF), "V": (0.0002, OFF),
        "B": (0.0002, AT), "X": (0.0005, AT), "K": (RARE, AT), "A": (RARE, AT), "D": (RARE, AT),
        "S": (RARE, AT), "Y": (RARE, AT), "1": (RARE, AT), "5": (RARE, AT),
        "E": (RARE, AT), "8": (RARE, AT),  # placeholders on the UTP table: never seen on a real tape
    },
}  # fmt: skip
SPECIAL_FIRST = len(CONDITIONS)
CONDITIONS += sorted({code for table in SPECIAL.values() for code in table})
SESSION_CODES = {"@", "F", "I", "T", "U", "O", "Q", "6", "M", "9"}
# Every code of both tables is emitted (the session's own or a special one).
assert {c for t in TABLES.values() for c in t} <= SESSION_CODES | set(CONDITIONS), "a table code the generator never emits"


def universe_key(universe: Universe) -> tuple:
    """What the generator reads from a universe, hashable (cache key)."""
    return tuple((i.symbol, i.group, i.reference_price, getattr(i, "adv", None)) for i in universe.instruments)


def _stream(seed: int, symbol: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed % 2**64, zlib.crc32(symbol.encode())]))


class DayClock:
    """Seconds on the generator's grid: 0 = 30 minutes before the open; the open at PREOPEN_SECONDS."""

    def __init__(self, recipe: GeneratedDay, session: Session) -> None:
        zone = ZoneInfo(session.time_zone)
        open_, close = session.hours()  # a calendar's session: the day's hours, set by the account
        self.open = datetime.combine(recipe.date, time.fromisoformat(open_), tzinfo=zone)
        self.close = datetime.combine(recipe.date, time.fromisoformat(close), tzinfo=zone)
        self.session_seconds = int((self.close - self.open).total_seconds())
        self.start = self.open - timedelta(seconds=PREOPEN_SECONDS)
        self.start_us = (self.start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self.end = PREOPEN_SECONDS + self.session_seconds  # grid second of the close

    def grid_second(self, hhmmss: str) -> float:
        at = datetime.combine(self.open.date(), time.fromisoformat(hhmmss), tzinfo=self.open.tzinfo)
        return (at - self.start).total_seconds()

    def us_at(self, hhmmss: str) -> int:
        """This exchange time of the day on the rows' clock (`us`: microseconds on the grid)."""
        return int(self.grid_second(hhmmss) * 1_000_000)


def _u_shape(x: np.ndarray, length: float) -> np.ndarray:
    """Relative activity over session seconds: busy first and last half hours."""
    return 1 + 2.5 * np.exp(-x / 1800) + 1.5 * np.exp(-(length - x) / 1800)


def _sample_times(rng: np.random.Generator, count: int, grid: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """`count` times (grid seconds, float) drawn from a piecewise-constant intensity."""
    cdf = np.concatenate(([0.0], np.cumsum(intensity)))
    cdf /= cdf[-1]
    edges = np.append(grid, grid[-1] + 1)
    return np.sort(np.interp(rng.random(count), cdf, edges))


def _strict_us(seconds: np.ndarray) -> np.ndarray:
    """Sorted float seconds → strictly increasing whole microseconds."""
    us = np.floor(np.sort(seconds) * 1e6).astype(np.int64)
    step = np.arange(us.size, dtype=np.int64)
    return np.maximum.accumulate(us - step) + step


class PricePath(NamedTuple):
    """A symbol's day on the grid of whole seconds: its efficient price and trading intensity."""

    price: np.ndarray  # dollars, per grid second
    session: np.ndarray  # grid seconds of the session (open ≤ s < close)
    intensity: np.ndarray  # relative activity per session second (U shape × shock bursts)
    boost: float  # activity of the day relative to a day without shocks


def _path(prof: Profile, rng: np.random.Generator, clock: DayClock, shocks: list[Shock]) -> PricePath:
    """Fat-tailed steps with U-shaped volatility, shocks as level ramps, anchored at the open."""
    length = clock.session_seconds
    grid = np.arange(clock.end + 1, dtype=np.float64)  # whole seconds, pre-open included
    base = _u_shape(np.clip(grid - PREOPEN_SECONDS, 0, length), length)
    burst = np.ones_like(grid)
    level = np.zeros_like(grid)
    for shock in shocks:
        at = clock.grid_second(shock.at)
        after = grid >= at
        burst[after] += 3 * np.exp(-(grid[after] - at) / 900)
        ramp = np.clip((grid - at) / shock.over_seconds, 0, 1) if shock.over_seconds else after.astype(float)
        level += math.log1p(shock.move_pct / 100) * ramp
    sigma = prof.volatility / math.sqrt(TRADING_SECONDS_PER_YEAR)
    vol_shape = np.where(grid < PREOPEN_SECONDS, 0.7, np.sqrt(base / base[PREOPEN_SECONDS:].mean()))
    steps = rng.standard_t(5, grid.size - 1) / math.sqrt(5 / 3) * sigma * vol_shape[1:]
    walk = np.concatenate(([0.0], np.cumsum(steps))) + level
    session = slice(PREOPEN_SECONDS, -1)
    intensity = (base * burst)[session]
    return PricePath(
        price=prof.open_price * np.exp(walk - walk[PREOPEN_SECONDS]),
        session=grid[session],
        intensity=intensity,
        boost=float(intensity.sum() / base[session].sum()),
    )


def _quotes(prof: Profile, rng: np.random.Generator, clock: DayClock, path: PricePath, scale: float, lot: int) -> dict:
    expected = max(3 * prof.prints_per_day * scale, MIN_QUOTES_PER_SECOND * clock.session_seconds) * path.boost
    seconds = _sample_times(rng, max(int(rng.poisson(expected)), 1), path.session, path.intensity)
    seconds[0] = PREOPEN_SECONDS  # the book opens with the session
    us = _strict_us(seconds)
    second = np.minimum(us // 1_000_000, clock.end)
    widen = 1 + 1.5 * np.exp(-(second - PREOPEN_SECONDS) / 600)  # wide just after the open
    spread = np.maximum(1, np.rint(prof.spread_cents * widen)).astype(np.int64) + (rng.random(us.size) < 0.15)
    bid_c = np.maximum(1, np.floor(path.price[second] * 100 - spread / 2 + 0.5)).astype(np.int64)
    depth = 1 / max(1.0, prof.mean_depth_lots * 100 / lot)  # the same depth in shares, in whole round lots
    return {
        "us": us,
        "bid_c": bid_c,
        "ask_c": bid_c + spread,
        "bid_size": rng.geometric(depth, us.size).astype(np.int64) * lot,
        "ask_size": rng.geometric(depth, us.size).astype(np.int64) * lot,
    }


def _session_prints(prof: Profile, rng: np.random.Generator, path: PricePath, quotes: dict, scale: float, lot: int, plan: SipPlan) -> dict:
    """Regular-session prints priced off the prevailing quote (prices in 1/10,000 dollars)."""
    n = max(int(rng.poisson(prof.prints_per_day * scale * path.boost)), 1)
    us = _strict_us(_sample_times(rng, n, path.session, path.intensity))
    qi = np.maximum(quotes["us"].searchsorted(us, "right") - 1, 0)
    bid4, ask4 = quotes["bid_c"][qi] * 100, quotes["ask_c"][qi] * 100
    buy = rng.random(n) < 0.5
    size = _print_sizes(rng, rng.random(n) < prof.odd_lot_share, lot)
    odd = size < lot
    trf = rng.random(n) < np.where(odd, TRF_ODD_SHARE, TRF_SHARE)
    # Exchanges print at the touch; TRF prints at the touch, the midpoint or sub-penny inside.
    style = rng.random(n)
    improve = rng.integers(1, 50, n)
    mid4 = (bid4 + ask4) // 2
    improved4 = np.where(buy, np.maximum(ask4 - improve, mid4), np.minimum(bid4 + improve, mid4))
    price4 = np.where(trf & (style >= 0.35), np.where(style < 0.7, mid4, improved4), np.where(buy, ask4, bid4))
    venue = np.where(trf, TRF_CODE, rng.choice(len(EXCHANGES), n, p=_shares()))
    iso = ~trf & (rng.random(n) < 0.15)
    cond = np.where(odd, np.where(iso, ODD_ISO, ODD), np.where(iso, ISO, REGULAR))
    _special(rng, path, plan, ~odd, us, cond, price4, size, venue, lot)
    return {"us": us, "price4": price4, "size": size, "venue": venue, "cond": cond}


def _special(
    rng: np.random.Generator,
    path: PricePath,
    plan: SipPlan,
    eligible: np.ndarray,
    us: np.ndarray,
    cond: np.ndarray,
    price4: np.ndarray,
    size: np.ndarray,
    venue: np.ndarray,
    lot: int,
) -> None:
    """Give some round-lot prints a special sale condition, priced as the code says (in place)."""
    table = SPECIAL[plan]
    codes = list(table)
    shares = np.array([table[c][0] for c in codes])
    pick = eligible & (rng.random(us.size) < shares.sum())
    k = int(pick.sum())
    if not k:
        return
    chosen = rng.choice(len(codes), k, p=shares / shares.sum())
    where = np.flatnonzero(pick)
    cond[where] = [SPECIAL_FIRST + CONDITIONS[SPECIAL_FIRST:].index(codes[c]) for c in chosen]
    style = np.array([table[codes[c]][1] for c in chosen])
    late, off = where[style == LATE], where[style == OFF]
    # Late reports: the price of 30 s to 10 min ago, to the cent.
    then = np.maximum(us[late] // 1_000_000 - rng.integers(30, 600, late.size), 0)
    price4[late] = np.rint(path.price[then] * 100).astype(np.int64) * 100
    # Away from the market: an earlier price with noise, in whole lots, mostly off-exchange.
    earlier = np.maximum(us[off] // 1_000_000 - rng.integers(300, 3600, off.size), 0)
    price4[off] = np.rint(path.price[earlier] * (1 + rng.normal(0, 0.003, off.size)) * 100).astype(np.int64) * 100
    size[off] = rng.integers(1, 50, off.size) * lot
    venue[off] = np.where(rng.random(off.size) < 0.85, TRF_CODE, venue[off])


def _premarket_prints(prof: Profile, rng: np.random.Generator, path: PricePath, scale: float, lot: int) -> dict:
    """Form T prints in the half hour before the open (a few reported late: "U")."""
    m = int(rng.poisson(max(0.01 * prof.prints_per_day * scale, 3)))
    us = _strict_us(rng.uniform(0, PREOPEN_SECONDS - 1, m))
    odd = (rng.random(m) < prof.odd_lot_share) & (lot > 1)
    return {
        "us": us,
        "price4": np.rint(path.price[us // 1_000_000] * 100 + rng.integers(-2, 3, m)).astype(np.int64) * 100,
        "size": np.where(odd, rng.integers(1, max(lot, 2), m), rng.integers(1, 10, m) * lot),
        "venue": np.where(rng.random(m) < 0.6, TRF_CODE, VENUES.index("Q")),
        "cond": np.where(rng.random(m) < 0.05, LATE_EXT, np.where(odd, FORM_T_ODD, FORM_T)),
    }


def _crosses(prof: Profile, rng: np.random.Generator, clock: DayClock, path: PricePath, lot: int) -> dict:
    """The opening cross ("O") and official open ("Q") a few seconds after the open; the closing
    cross ("6"), official close ("M") and corrected consolidated close ("9") at the listing venue
    in the last second before the close."""
    opening = int((PREOPEN_SECONDS + rng.uniform(1, 5)) * 1e6)
    closing = (clock.end - 1) * 1_000_000
    sizes = rng.integers(50, 500, 2) * lot
    open4 = round(path.price[opening // 1_000_000] * 100) * 100
    close4 = round(path.price[clock.end - 1] * 100) * 100
    return {
        "us": np.array([opening, opening + 1, closing, closing + 1, closing + 2], dtype=np.int64),
        "price4": np.array([open4, open4, close4, close4, close4], dtype=np.int64),
        "size": np.array([sizes[0], sizes[0], sizes[1], sizes[1], sizes[1]], dtype=np.int64),
        "venue": np.full(5, VENUES.index(prof.listing_venue)),
        "cond": np.array([OPEN_CROSS, OFFICIAL_OPEN, CLOSE_CROSS, OFFICIAL_CLOSE, CORRECTED_CLOSE]),
    }


def _symbol_day(
    prof: Profile, rng: np.random.Generator, clock: DayClock, shocks: list[Shock], scale: float, lot: int, plan: SipPlan
) -> tuple[dict, dict]:
    path = _path(prof, rng, clock, shocks)
    quotes = _quotes(prof, rng, clock, path, scale, lot)
    session = _session_prints(prof, rng, path, quotes, scale, lot, plan)
    prints = _merge([_premarket_prints(prof, rng, path, scale, lot), session, _crosses(prof, rng, clock, path, lot)])
    return _crossed(quotes, clock, shocks), _silenced(prints, clock, shocks)


def _crossed(quotes: dict, clock: DayClock, shocks: list[Shock]) -> dict:
    """Quotes a shock crosses: bid and ask swapped (bid above ask), after the prints were drawn from
    the sound book. Without such a shock the quotes are returned as they are."""
    windows = [(clock.us_at(s.at), clock.us_at(s.at) + s.cross_quotes_seconds * 1_000_000) for s in shocks if s.cross_quotes_seconds]
    if not windows:
        return quotes
    cross = np.zeros(quotes["us"].size, dtype=bool)
    for start, end in windows:
        cross |= (quotes["us"] >= start) & (quotes["us"] < end)
    return quotes | {"bid_c": np.where(cross, quotes["ask_c"], quotes["bid_c"]), "ask_c": np.where(cross, quotes["bid_c"], quotes["ask_c"])}


def _silenced(prints: dict, clock: DayClock, shocks: list[Shock]) -> dict:
    """Drop the prints a shock silences (the tape goes quiet; quotes are untouched)."""
    keep = np.ones(prints["us"].size, dtype=bool)
    for shock in shocks:
        if shock.silence_prints_seconds:
            start = clock.us_at(shock.at)
            keep &= ~((prints["us"] >= start) & (prints["us"] < start + shock.silence_prints_seconds * 1_000_000))
    return {key: value[keep] for key, value in prints.items()}


def _shares() -> np.ndarray:
    shares = np.array(list(EXCHANGES.values()))
    return shares / shares.sum()


def _print_sizes(rng: np.random.Generator, small: np.ndarray, lot: int) -> np.ndarray:
    """Shares per print: `small` ones under 100 shares (odd lots where below the round lot),
    the others one or two round lots, 3–9 lots, mixed lots or blocks of 10–99 lots."""
    n = small.size
    small_size = np.minimum(rng.geometric(1 / 25, n), 99)
    kind = rng.random(n)
    lots = np.select(
        [kind < 0.45, kind < 0.57, kind < 0.69, kind < 0.92],
        [1, 2, rng.integers(3, 10, n), 0],
        default=rng.integers(10, 100, n),  # blocks
    )
    mixed = rng.integers(lot + 1, 10 * lot + 1, n) if lot > 1 else rng.integers(2, 10, n)  # not a whole number of lots, mostly
    round_size = np.where(lots == 0, mixed, lots * lot)
    return np.where(small & (lot > 1), np.maximum(small_size, 1), round_size).astype(np.int64)


def _merge(parts: list[dict]) -> dict:
    merged = {key: np.concatenate([np.asarray(p[key]) for p in parts]) for key in parts[0]}
    order = np.argsort(merged["us"], kind="stable")
    merged = {key: value[order] for key, value in merged.items()}
    us = merged["us"]
    step = np.arange(us.size, dtype=np.int64)
    merged["us"] = np.maximum.accumulate(us - step) + step
    return merged


def generate_day(
    recipe: GeneratedDay,
    universe: Universe,
    session: Session,
    tiers: tuple[RoundLotTier, ...] = ROUND_LOT_TIERS,
    *,
    symbols: Iterable[str] | None = None,
) -> Day:
    """The day `recipe` describes for the universe's instruments (or only `symbols`); round lots
    by the instruments' reference prices on `tiers`."""
    clock = DayClock(recipe, session)
    known = {i.symbol for i in universe.instruments}
    for shock in recipe.shocks:
        at = clock.grid_second(shock.at)
        if not PREOPEN_SECONDS <= at < clock.end:
            raise ValueError(f"shock at {shock.at} is outside the session {session.open}–{session.close}")
        if shock.symbols != "all" and (unknown := sorted(set(shock.symbols) - known)):
            raise ValueError(f"shock at {shock.at}: not in the universe: {', '.join(unknown)}")
    wanted = set(symbols) if symbols is not None else None
    instruments: list[Instrument] = sorted((i for i in universe.instruments if wanted is None or i.symbol in wanted), key=lambda i: i.symbol)
    if wanted is not None and len(instruments) != len(wanted):
        unknown = sorted(wanted - {i.symbol for i in instruments})
        raise ValueError(f"not in the universe: {', '.join(unknown)}")
    if not instruments:
        raise ValueError("no instruments to generate")
    q_parts, p_parts = [], []
    tapes: dict[str, SipPlan] = {}
    lots: dict[str, int] = {}
    for code, inst in enumerate(instruments):
        rng = _stream(recipe.seed, inst.symbol)
        prof = profile(inst, rng)
        shocks = [s for s in recipe.shocks if s.applies_to(inst.symbol)]
        tapes[inst.symbol] = plan_of_listing(prof.listing_venue)
        lots[inst.symbol] = round_lot(inst.reference_price, tiers)
        quotes, prints = _symbol_day(prof, rng, clock, shocks, recipe.scale, lots[inst.symbol], tapes[inst.symbol])
        quotes["code"] = np.full(quotes["us"].size, code, dtype=np.int32)
        prints["code"] = np.full(prints["us"].size, code, dtype=np.int32)
        q_parts.append(quotes)
        p_parts.append(prints)
    names = pa.array([i.symbol for i in instruments], pa.string())
    quotes, prints = _concat(q_parts), _concat(p_parts)
    manifest = DayManifest(
        date=recipe.date, time_zone=session.time_zone, open=session.open, close=session.close,
        symbols=[i.symbol for i in instruments], origin=DayOrigin.GENERATED, seed=recipe.seed,
        scale=recipe.scale, shocks=list(recipe.shocks),
        quotes=int(quotes["us"].size), prints=int(prints["us"].size), tapes=tapes, round_lots=lots,
    )  # fmt: skip
    q_table = pa.Table.from_arrays(
        [
            _timestamps(quotes["us"], clock),
            pa.DictionaryArray.from_arrays(pa.array(quotes["code"]), names),
            pa.array(quotes["bid_c"] / 100),
            pa.array(quotes["ask_c"] / 100),
            pa.array(quotes["bid_size"]),
            pa.array(quotes["ask_size"]),
        ],
        schema=QUOTES_SCHEMA,
    )
    p_table = pa.Table.from_arrays(
        [
            _timestamps(prints["us"], clock),
            pa.DictionaryArray.from_arrays(pa.array(prints["code"]), names),
            pa.array(prints["price4"] / 10_000),
            pa.array(prints["size"].astype(np.int64)),
            pa.DictionaryArray.from_arrays(pa.array(prints["venue"].astype(np.int32)), pa.array(VENUES)),
            pa.DictionaryArray.from_arrays(pa.array(prints["cond"].astype(np.int32)), pa.array(CONDITIONS)),
        ],
        schema=PRINTS_SCHEMA,
    )
    return Day(manifest=manifest, quotes=q_table, prints=p_table)


def _concat(parts: list[dict]) -> dict:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _timestamps(us: np.ndarray, clock: DayClock) -> pa.Array:
    return pa.array((us + clock.start_us) * 1000, pa.int64()).cast(TS)
