"""Per-instrument trading profiles for the day generator: volatility, spread, activity, depth.

Derived from the universe entry (group, reference price, average daily volume) with a small
seeded jitter, so two instruments of a group differ a little and a seed fixes them all.
The shapes follow what US large caps look like: spreads of a cent for most names and a few
basis points for high-priced, thinly traded ones; more odd lots the higher the price; a
trade count of roughly ADV over a typical print size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.rules import Instrument

DEFAULT_ADV = 1_000_000  # shares/day when the universe does not say
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600

# Annualized volatility by group (typical of 2023–24); other groups get DEFAULT_VOLATILITY.
GROUP_VOLATILITY: dict[str, float] = {
    "TECH_HARDWARE": 0.26, "SOFTWARE": 0.25, "SEMICONDUCTORS": 0.45, "BANKS": 0.24,
    "INSURANCE": 0.22, "ASSET_MANAGERS": 0.24, "PHARMA": 0.20, "BIOTECH": 0.28,
    "MED_DEVICES": 0.21, "OIL_GAS": 0.25, "UTILITIES": 0.18, "RETAIL": 0.22,
    "CONSUMER_STAPLES": 0.15, "AUTOS": 0.34, "AIRLINES": 0.38, "INDUSTRIALS": 0.23,
    "MATERIALS": 0.24, "REITS": 0.22, "TELECOM": 0.19, "MEDIA": 0.32,
    "INDEX_ETF": 0.14, "SECTOR_ETF": 0.19,
}  # fmt: skip
DEFAULT_VOLATILITY = 0.30
ETF_GROUPS = frozenset({"INDEX_ETF", "SECTOR_ETF"})
# Listing venues of the universe's names (SIP participant ids: Q Nasdaq, N NYSE, P NYSE Arca),
# as of 2024; a name not here lists on N or Q by the seeded draw. The listing decides the tape.
LISTING: dict[str, str] = {
    "AAPL": "Q", "MSFT": "Q", "NVDA": "Q", "AMD": "Q", "AMGN": "Q", "GILD": "Q", "NFLX": "Q",
    "HON": "Q", "LIN": "Q", "TROW": "Q", "UAL": "Q", "QQQ": "Q", "SPY": "P", "XLE": "P", "XLF": "P",
    "DELL": "N", "ORCL": "N", "JPM": "N", "BAC": "N", "AIG": "N", "MET": "N", "BLK": "N", "PFE": "N",
    "MRK": "N", "MDT": "N", "SYK": "N", "XOM": "N", "CVX": "N", "DUK": "N", "NEE": "N", "WMT": "N",
    "TGT": "N", "KO": "N", "PG": "N", "F": "N", "GM": "N", "DAL": "N", "CAT": "N", "DOW": "N",
    "PLD": "N", "O": "N", "T": "N", "VZ": "N", "DIS": "N",
}  # fmt: skip


@dataclass(frozen=True)
class Profile:
    symbol: str
    open_price: float
    volatility: float  # annualized
    spread_cents: int  # typical quoted spread, ≥ 1
    prints_per_day: float  # at scale 1
    mean_depth_lots: float  # mean displayed size at the touch, in round lots
    odd_lot_share: float  # share of prints below 100 shares
    listing_venue: str  # where the opening and closing crosses print


def profile(instrument: Instrument, rng: np.random.Generator) -> Profile:
    price = instrument.reference_price
    adv = getattr(instrument, "adv", None) or DEFAULT_ADV
    group = instrument.group
    etf = group in ETF_GROUPS
    volatility = GROUP_VOLATILITY.get(group, DEFAULT_VOLATILITY) * rng.uniform(0.85, 1.15)
    spread_bps = (0.3 if etf else 0.6) * (price / 100) ** 0.3 * (20e6 / adv) ** 0.25 * rng.uniform(0.8, 1.25)
    spread_cents = max(1, round(price * min(spread_bps, 15.0) / 100))
    typical_size = float(np.clip(20_000 / price, 40, 400))
    # The day opens near yesterday's close (the reference price) with a small gap.
    open_price = round(price * float(np.exp(rng.normal(0, volatility / np.sqrt(252) * 0.3))), 2)
    return Profile(
        symbol=instrument.symbol,
        open_price=open_price,
        volatility=float(volatility),
        spread_cents=int(spread_cents),
        prints_per_day=adv / typical_size,
        mean_depth_lots=float(np.clip(3_000 / price, 1.5, 300)),
        odd_lot_share=float(np.clip(0.25 + price / 1_600, 0.25, 0.75)),
        listing_venue=_listing(instrument.symbol, etf, rng),
    )


def _listing(symbol: str, etf: bool, rng: np.random.Generator) -> str:
    drawn = "P" if etf else ("N" if rng.random() < 0.5 else "Q")  # drawn always: the stream stays the same
    return LISTING.get(symbol, drawn)
