"""What every control shares: the refusal, the order as the controls see it, the top of book, and
the guards that keep arithmetic on outside numbers finite (a control fails closed, never raises)."""

from __future__ import annotations

import math
from datetime import datetime

from domain.base import Frozen
from domain.enums import RejectReason, Side
from domain.marketdata import MarketView
from domain.models import Quote

Refusal = tuple[RejectReason, str]

# Shares: far beyond any real order or position; clamping to it keeps float conversions finite.
MAX_QUANTITY = 10**15


class OrderTicket(Frozen):
    """An order as the controls see it — what and when; the duplicate guard keeps the accepted ones."""

    symbol: str
    side: Side
    quantity: int
    limit_price: float | None  # None: MARKET
    at: float  # workflow time, seconds


class TopOfBook(Frozen):
    """The L1 an order is judged against: best bid and offer, their displayed sizes (None: the feed
    does not give them) and the quote's age in seconds at the check (None: unknown). Unlike
    `marketdata.L1` it holds any numbers: judging a broken quote is the point."""

    bid: float
    ask: float
    bid_size: int | None = None
    ask_size: int | None = None
    age_seconds: float | None = None

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    def far_touch(self, side: Side) -> float:
        """What an order on `side` pays to trade now: a buy the ask, a sell the bid."""
        return self.ask if side is Side.BUY else self.bid


def top_of_book(view: MarketView | None, quote: Quote, now: datetime) -> TopOfBook | None:
    """The L1 the controls judge at `now`: the market's view with its age carried to `now` (None:
    no L1 yet); without market data, the simulated quote (always fresh, no sizes)."""
    if view is None:
        return TopOfBook(bid=quote.bid, ask=quote.ask, age_seconds=0.0)
    l1 = view.l1
    if l1 is None:
        return None
    age = (view.l1_age_seconds or 0.0) + max(0.0, (now - view.as_of).total_seconds())
    return TopOfBook(bid=l1.bid, ask=l1.ask, bid_size=l1.bid_size, ask_size=l1.ask_size, age_seconds=age)


def clamp(quantity: int) -> int:
    return max(-MAX_QUANTITY, min(MAX_QUANTITY, quantity))


def positive(value: float | None) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def within(at: float, now: float, window: float) -> bool:
    """`at` lies in the half-open window (now − window, now]."""
    return math.isfinite(at) and 0 <= now - at < window
