"""What the account's clock asks of the trading calendar, and what a daily roll tells its history
(`activities/calendar.py` answers both)."""

from __future__ import annotations

from pydantic import Field

from domain.base import Record
from domain.enums import TradingState
from domain.sessions import DATE_PATTERN, WINDOW_DAYS


class SessionsRequest(Record):
    calendar: str = Field(max_length=16)
    time_zone: str = Field(max_length=64)
    first: str = Field(pattern=DATE_PATTERN)
    days: int = Field(default=WINDOW_DAYS, gt=0, le=62)


class RollNotice(Record):
    """What a daily roll did, as the marker `daily_roll` shows it in the account's history."""

    account: str
    date: str
    close: str
    daily: float
    realized: float
    unrealized: float
    positions: int
    expired: int
    next_session: str | None
    trading_state: TradingState

    def sentence(self) -> str:
        nxt = f"; next session {self.next_session}" if self.next_session else ""
        return (
            f"daily roll {self.account} {self.date} at {self.close}: P&L {self.daily:,.2f} (realized {self.realized:,.2f}, "
            f"unrealized {self.unrealized:,.2f}), {self.positions} positions into tomorrow's BOD, {self.expired} DAY orders expired, "
            f"trading state {self.trading_state.value}{nxt}"
        )
