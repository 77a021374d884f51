"""What every control shares: the refusal, the order as the controls see it, the top of book, and
the guards that keep arithmetic on outside numbers finite (a control fails closed, never raises)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from domain.enums import RejectReason, Side

Refusal = tuple[RejectReason, str]

# Shares: far beyond any real order or position; clamping to it keeps float conversions finite.
MAX_QUANTITY = 10**15


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderTicket(Frozen):
    """An order as the controls see it — what and when; the duplicate guard keeps the accepted ones."""

    symbol: str
    side: Side
    quantity: int
    limit_price: float | None  # None: MARKET
    at: float  # workflow time, seconds


class TopOfBook(Frozen):
    """The L1 an order is judged against: best bid and offer, their displayed sizes (None: the feed
    does not give them) and the quote's age in seconds at the check (None: unknown)."""

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


def clamp(quantity: int) -> int:
    return max(-MAX_QUANTITY, min(MAX_QUANTITY, quantity))


def positive(value: float | None) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def within(at: float, now: float, window: float) -> bool:
    """`at` lies in the half-open window (now − window, now]."""
    return math.isfinite(at) and 0 <= now - at < window
