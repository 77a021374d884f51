"""A closed session as the daily roll recorded it (an account with a calendar). Pure.

The roll at each close fixes the day: its P&L at the closing marks, the next day's
beginning-of-day book, what the close expired, how the day's cycles decided. The account keeps
the last `DAYS_KEPT` of these — only the newest with their marks and book, at most
`DAYS_WITH_BOOK` days and `BOOK_ROWS_KEPT` rows in all, so the carried state stays bounded by size
whatever the universe — and the run digest folds each one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.enums import RiskMode, TradingState
from domain.pnl import BodPosition, PnlTotals

DAYS_KEPT = 60  # closed sessions an account remembers (about three months)
DAYS_WITH_BOOK = 10  # … of which the newest keep their closing marks and next day's book,
BOOK_ROWS_KEPT = 10_000  # … as long as these hold this many marks and rows in all


class DayTally(BaseModel):
    """What a session's cycles did, counted as they ran (the decision log itself is bounded)."""

    first_cycle: int = 0  # the session's first cycle number (0: none ran yet)
    cycles: int = 0  # cycle times, quiet repeats included
    modes: dict[RiskMode, int] = {}  # cycle times in each mode
    fills: int = 0  # fills applied


class DayRecord(BaseModel):
    date: str  # the session's date (exchange-local)
    open: str  # HH:MM, the hours the account traded
    close: str
    early_close: bool = False
    rolled_at: str  # exchange-local ISO time of the roll (at or just after the close)
    equity: float
    pnl: PnlTotals  # the day's realized, unrealized at the close, and daily P&L
    daily_loss_pct: float
    realized_prior: float  # realized P&L of the days before this one
    marks: dict[str, float] = {}  # closing marks (the newest DAYS_WITH_BOOK days only)
    bod_next: list[BodPosition] = []  # the next day's beginning-of-day book (likewise)
    positions: int  # positions held at the close
    expired: int  # DAY orders the close expired
    tally: DayTally = Field(default_factory=DayTally)
    trading_state: TradingState  # carried into the next session unchanged

    @property
    def worst_mode(self) -> RiskMode | None:
        order = list(RiskMode)
        return max(self.tally.modes, key=order.index) if self.tally.modes else None

    def without_book(self) -> DayRecord:
        return self.model_copy(update={"marks": {}, "bod_next": []})


def keep_days(days: list[DayRecord], record: DayRecord) -> None:
    """Append a closed session: the last DAYS_KEPT kept, the newest with their books while those
    stay within DAYS_WITH_BOOK days and BOOK_ROWS_KEPT rows (the newest always keeps its own)."""
    days.append(record)
    del days[:-DAYS_KEPT]
    rows = 0
    for i in range(len(days) - 1, -1, -1):
        rows += len(days[i].marks) + len(days[i].bod_next)
        if (i < len(days) - DAYS_WITH_BOOK or rows > BOOK_ROWS_KEPT) and i < len(days) - 1 and (days[i].marks or days[i].bod_next):
            days[i] = days[i].without_book()
