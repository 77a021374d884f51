"""Trading sessions as data: what an account with a calendar knows of the days ahead. Pure.

The calendar library is never called here (nor anywhere in workflow code): an activity
(activities/calendar.py) reads `exchange_calendars` and answers a `SessionWindow` — every session
from one date through another, each with its open and close in exchange-local time and whether
it closes early. The account carries one window (a few weeks, bounded) and asks for the next
before it runs out. A date inside the window without a session is a holiday or a weekend.

`session_rules` turns the account's rules into one day's: the session's hours for that date (the
rules' `open`/`close` override a calendar's regular hours, never an early close), so everything
that reads the rules — the regime clock, the gate, the cycle — sees that day's session, and
regimes anchored to the close (`close - 15m`) move with a half day. A date without a session
reads as a session that never opens.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime, time, timedelta

from pydantic import Field

from domain.base import Frozen
from domain.rules import HHMM_PATTERN, RiskRules, parse_hhmm

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
WINDOW_DAYS = 21  # calendar days an account asks for at a time: about 15 sessions
MAX_WINDOW_SESSIONS = 64  # what a window may hold (bounds the carried state)
REFRESH_DAYS = 7  # ask for the next window when fewer calendar days than this are left in it
NO_SESSION = "00:00"  # a date without a session: open == close, the session never opens


class SessionDay(Frozen):
    """One session: its date and its hours in exchange-local time."""

    date: str = Field(pattern=DATE_PATTERN)
    open: str = Field(pattern=HHMM_PATTERN)
    close: str = Field(pattern=HHMM_PATTERN)
    early_close: bool = False  # a half day: closes before the calendar's regular close

    @property
    def day(self) -> Date:
        return Date.fromisoformat(self.date)

    def open_at(self) -> datetime:
        return datetime.combine(self.day, parse_hhmm(self.open))

    def close_at(self) -> datetime:
        return datetime.combine(self.day, parse_hhmm(self.close))


class SessionWindow(Frozen):
    """Every session of `calendar` from `first` through `through` (dates, inclusive)."""

    calendar: str = Field(max_length=16)
    first: str = Field(pattern=DATE_PATTERN)
    through: str = Field(pattern=DATE_PATTERN)
    sessions: list[SessionDay] = Field(default_factory=list, max_length=MAX_WINDOW_SESSIONS)

    def covers(self, day: Date) -> bool:
        return self.first <= day.isoformat() <= self.through

    def on(self, day: Date) -> SessionDay | None:
        """The session on `day` (None: no session that day — or a day the window does not cover)."""
        text = day.isoformat()
        return next((s for s in self.sessions if s.date == text), None)

    def current_or_next(self, local: datetime) -> SessionDay | None:
        """The session under way at `local` or the next one (None: beyond the window)."""
        return next((s for s in self.sessions if s.close_at() > local), None)

    def next_open(self, local: datetime) -> SessionDay | None:
        """The first session that opens after `local`."""
        return next((s for s in self.sessions if s.open_at() > local), None)

    def after(self, day: str) -> SessionDay | None:
        """The first session after the date `day`."""
        return next((s for s in self.sessions if s.date > day), None)

    def needs_refresh(self, calendar: str, local: datetime) -> bool:
        """Not this calendar's, or fewer than REFRESH_DAYS of it left after `local`'s date."""
        if self.calendar != calendar or not self.covers(local.date()):
            return True
        return Date.fromisoformat(self.through) - local.date() < timedelta(days=REFRESH_DAYS)


def window_start(local: datetime) -> Date:
    """The first date a new window covers: the day before (a session under way past midnight is
    not possible here, but a roll due from yesterday's close is)."""
    return local.date() - timedelta(days=1)


def session_hours(rules: RiskRules, day: SessionDay) -> tuple[str, str]:
    """The hours the account trades on this session: the calendar's, or the rules' overrides —
    an early close stays early."""
    session = rules.session
    open_ = session.open or day.open
    close = day.close if day.early_close or session.close is None else session.close
    if open_ >= close:  # an override that leaves nothing of a short day: the calendar's own hours
        return day.open, day.close
    return open_, close


def session_rules(rules: RiskRules, day: SessionDay | None) -> RiskRules:
    """The rules for one date: the session's hours set (a copy; the regimes, anchored or not, are
    read against them by domain/clock.py). `None`: a date without a session."""
    open_, close = session_hours(rules, day) if day is not None else (NO_SESSION, NO_SESSION)
    session = rules.session.model_copy(update={"open": open_, "close": close})
    return rules.model_copy(update={"session": session})


def at_time(day: Date, hhmm: str) -> datetime:
    return datetime.combine(day, parse_hhmm(hhmm))


def midnight(day: Date) -> datetime:
    return datetime.combine(day, time(0))
