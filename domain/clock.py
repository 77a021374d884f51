"""The regime clock: exchange-local time → regime and minutes to close.

Outside session hours (before the open, or at/after the close) the regime is OUTSIDE_SESSION
and `minutes_to_close` is 0 after the close and the minutes until the close before the open.
The rules give the hours: a calendar account reads one day's (domain/sessions.py
`session_rules`), where a date without a session has open == close and is outside all day.
Regime starts may be anchored to the open or the close (`close - 15m`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from domain.enums import SESSION_REGIMES, Regime
from domain.rules import RiskRules, start_minute


class ClockReading(BaseModel):
    exchange_time: str  # HH:MM:SS, exchange-local
    regime: Regime
    minutes_to_close: float
    in_session: bool


def minutes_of(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60 + t.microsecond / 60_000_000


def to_exchange_time(moment: datetime, rules: RiskRules) -> datetime:
    """An aware instant as exchange-local wall time (time zone from the rules)."""
    if moment.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return moment.astimezone(ZoneInfo(rules.session.time_zone))


def read_clock(local: time, rules: RiskRules) -> ClockReading:
    minute = minutes_of(local)
    open_m, close_m = rules.session.open_minute, rules.session.close_minute
    to_close = max(0.0, close_m - minute)
    stamp = local.strftime("%H:%M:%S")
    if minute < open_m or minute >= close_m:
        return ClockReading(exchange_time=stamp, regime=Regime.OUTSIDE_SESSION, minutes_to_close=to_close, in_session=False)
    current = SESSION_REGIMES[0]
    for regime in SESSION_REGIMES:
        if minute >= start_minute(rules.regimes[regime].start, open_m, close_m):
            current = regime
    return ClockReading(exchange_time=stamp, regime=current, minutes_to_close=to_close, in_session=True)


class ClockAnchor(BaseModel):
    """A virtual trading day (scenario and test accounts): this exchange-local moment was this
    workflow instant; the exchange clock then runs with workflow time."""

    exchange: datetime  # naive, exchange-local
    workflow: datetime  # aware


def exchange_now(workflow_now: datetime, rules: RiskRules, anchor: ClockAnchor | None) -> datetime:
    """Exchange-local wall time (naive). Live accounts (no anchor) read workflow time in the
    exchange time zone, so DST changes are applied as the exchange applies them; a virtual day
    runs on from its anchor as an instant, so a virtual week crosses a DST change the same way
    (within a day, where no DST change falls, this is the anchor plus the elapsed time)."""
    if anchor is None:
        return to_exchange_time(workflow_now, rules).replace(tzinfo=None)
    start = exchange_instant(anchor.exchange, rules).astimezone(UTC)  # in UTC: aware arithmetic in one zone is wall-clock
    return to_exchange_time(start + (workflow_now - anchor.workflow), rules).replace(tzinfo=None)


def between(start: datetime, end: datetime, rules: RiskRules) -> timedelta:
    """Elapsed time between two exchange-local wall times (naive), DST changes counted: the night
    a clock goes back lasts an hour longer."""
    zone = ZoneInfo(rules.session.time_zone)
    return end.replace(tzinfo=zone).astimezone(UTC) - start.replace(tzinfo=zone).astimezone(UTC)


def seconds_to_next_cycle(local: datetime, cycle_seconds: int) -> float:
    """Cycles fall on whole multiples of cycle_seconds of exchange time (16:15:00, 16:16:00…)."""
    into = (local - datetime.combine(local.date(), time(0))).total_seconds() % cycle_seconds
    return cycle_seconds - into


def on_boundary(local: datetime, cycle_seconds: int) -> bool:
    return (local - datetime.combine(local.date(), time(0))).total_seconds() % cycle_seconds == 0


def next_change(local: datetime, rules: RiskRules, extra: list[time]) -> datetime:
    """The next exchange-local moment at which the regime can change (a regime start, the open,
    the close) or one of `extra` (due events, a stop) falls — the end of a quiet stretch."""
    day = local.date()
    open_m, close_m = rules.session.open_minute, rules.session.close_minute
    minutes = [open_m, close_m, *(start_minute(r.start, open_m, close_m) for r in rules.regimes.values())]
    moments = [datetime.combine(day, time(0)) + timedelta(minutes=m) for m in minutes] + [datetime.combine(day, t) for t in extra]
    later = [m for m in moments if m > local]
    return min(later) if later else datetime.combine(day, time(0)) + timedelta(days=1)


def exchange_instant(local: datetime, rules: RiskRules) -> datetime:
    """An exchange-local wall time (naive) as an aware instant in the exchange time zone."""
    return local.replace(tzinfo=ZoneInfo(rules.session.time_zone))


def parse_hms(text: str) -> time:
    """HH:MM[:SS] (already validated by the models that carry it)."""
    parts = [int(p) for p in text.split(":")]
    return time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)
