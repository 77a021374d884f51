"""The regime clock: exchange-local time → regime and minutes to close.

Outside session hours (before the open, or at/after the close) the regime is OUTSIDE_SESSION
and `minutes_to_close` is 0 after the close and the minutes until the close before the open.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from domain.enums import SESSION_REGIMES, Regime
from domain.rules import RiskRules, minute_of_day


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
        if minute >= minute_of_day(rules.regimes[regime].start):
            current = regime
    return ClockReading(exchange_time=stamp, regime=current, minutes_to_close=to_close, in_session=True)
