"""What the account asks of the market (`activities/market.py`): quotes from its marks, or the
views (and, for accounts recorded before the exchange step, the raw prints) of a named feed."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from domain.base import Record
from domain.marketdata import FeedSpec, MarketDataRule, MarketView, Print
from domain.rules import Session, Universe


class QuoteRequest(Record):
    marks: dict[str, float]


class MarketRequest(Record):
    feed: FeedSpec
    universe: Universe
    session: Session
    rule: MarketDataRule
    symbols: list[str]
    as_of: AwareDatetime
    prints_since: dict[str, AwareDatetime] = Field(default_factory=dict)  # symbol → the last cycle's time


class MarketSnapshot(Record):
    views: dict[str, MarketView]
    prints: dict[str, list[Print]] = Field(default_factory=dict)
