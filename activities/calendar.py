"""The trading calendar, read from `exchange_calendars` (the field's library) where workflow code
never runs: an account with `session.calendar` asks for its sessions ahead as data (a local
activity, so the answer is recorded in its history and replay reads the same days), and each
daily roll leaves a marker named `daily_roll` in the history — the event to look for in the UI.

The library (and pandas under it) is imported on first use, in the activity, never by a workflow.
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.calendars import CALENDAR_ZONES
from domain.sessions import MAX_WINDOW_SESSIONS, SessionDay, SessionWindow
from protocol.sessions import RollNotice, SessionsRequest

MARGIN = timedelta(days=7)  # the calendar is built a little wider than asked (its own bounds checked)


def read_sessions(calendar: str, time_zone: str, first: date, through: date) -> SessionWindow:
    """Every session of `calendar` from `first` through `through`, hours in `time_zone` (which
    must be the calendar's). ValueError with one line when the library cannot answer."""
    import exchange_calendars as xcals  # heavy (pandas): loaded by the worker on first use only

    if CALENDAR_ZONES.get(calendar) != time_zone:
        raise ValueError(f"calendar {calendar!r} with time zone {time_zone!r}: not a calendar of this rig in that zone (domain/calendars.py)")
    try:
        with warnings.catch_warnings():  # pandas' "non-vectorized DateOffset" notes, once per calendar built
            warnings.simplefilter("ignore", category=Warning)
            cal = xcals.get_calendar(calendar, start=(first - MARGIN).isoformat(), end=(through + MARGIN).isoformat())
    except Exception as err:  # noqa: BLE001 — the library's bounds ("holidays only recorded to …") as one line
        raise ValueError(f"calendar {calendar}: {str(err).splitlines()[0][:200]}") from None
    early = {d.date() for d in cal.early_closes}
    sessions = []
    for label in cal.sessions_in_range(first.isoformat(), through.isoformat()):
        opens, closes = cal.session_open(label).tz_convert(time_zone), cal.session_close(label).tz_convert(time_zone)
        sessions.append(
            SessionDay(date=label.date().isoformat(), open=opens.strftime("%H:%M"), close=closes.strftime("%H:%M"), early_close=label.date() in early)
        )
    if len(sessions) > MAX_WINDOW_SESSIONS:
        raise ValueError(f"{len(sessions)} sessions from {first} through {through}: ask for fewer days")
    return SessionWindow(calendar=calendar, first=first.isoformat(), through=through.isoformat(), sessions=sessions)


@activity.defn
def exchange_sessions(request: SessionsRequest) -> SessionWindow:
    """The account's sessions ahead: `days` calendar days from `first`."""
    first = date.fromisoformat(request.first)
    try:
        return read_sessions(request.calendar, request.time_zone, first, first + timedelta(days=request.days - 1))
    except ValueError as err:
        raise ApplicationError(str(err), type="CalendarError", non_retryable=True) from None


@activity.defn
async def daily_roll(notice: RollNotice) -> str:
    """The roll's marker: a local activity the account runs once per close, so the history holds
    one `daily_roll` event per session with what it did (the account did the roll itself)."""
    sentence = notice.sentence()
    activity.logger.info(sentence)
    return sentence


def calendar_activities() -> list[Any]:
    return [exchange_sessions, daily_roll]
