"""Sessions from the trading calendar (issue 22), against the real calendar data of
`exchange_calendars`: the week of Thanksgiving 2026 on XNYS (a holiday on Thursday, a half day on
Friday), the DST change of 2026-11-01, the rules' anchored regimes and the calendar table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import pytest

from activities.calendar import read_sessions
from config.load import load_config
from domain.calendars import CALENDAR_ZONES, EXCLUDED_CALENDARS
from domain.clock import ClockAnchor, between, exchange_now, read_clock
from domain.enums import Regime, RejectReason, RiskMode
from domain.gate import GateContext, gate_desk_intent
from domain.ledger import BookState, Ledger
from domain.market import quote_from_mark
from domain.rules import RiskRules, RuleError
from domain.sessions import SessionWindow, session_rules

CONFIG = load_config()
NY = "America/New_York"


def xnys_rules(**session: object) -> RiskRules:
    raw = CONFIG.rules.model_dump(mode="json")
    raw["session"] = {"time_zone": NY, "calendar": "XNYS"} | session
    return RiskRules.model_validate(raw)


RULES = xnys_rules()
THANKSGIVING_WEEK = read_sessions("XNYS", NY, date(2026, 11, 22), date(2026, 11, 29))


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}")


def reading(day: str, hhmm: str, window: SessionWindow = THANKSGIVING_WEEK, rules: RiskRules = RULES):
    moment = at(day, hhmm)
    return read_clock(moment.time(), session_rules(rules, window.on(moment.date())))


def test_the_calendar_table_is_the_librarys():
    names = set(xcals.get_calendar_names(include_aliases=False))
    assert set(CALENDAR_ZONES) == names - set(EXCLUDED_CALENDARS)
    assert {name: str(xcals.get_calendar(name, start="2026-01-05", end="2026-02-27").tz) for name in CALENDAR_ZONES} == CALENDAR_ZONES


def test_thanksgiving_week_from_the_calendar():
    sessions = {s.date: (s.open, s.close, s.early_close) for s in THANKSGIVING_WEEK.sessions}
    assert sessions == {
        "2026-11-23": ("09:30", "16:00", False),
        "2026-11-24": ("09:30", "16:00", False),
        "2026-11-25": ("09:30", "16:00", False),
        "2026-11-27": ("09:30", "13:00", True),  # the day after Thanksgiving: a half day
    }  # Thanksgiving (11-26) and the weekends: no session
    assert THANKSGIVING_WEEK.covers(date(2026, 11, 26)) and THANKSGIVING_WEEK.on(date(2026, 11, 26)) is None


def test_a_half_day_moves_late_and_close_with_its_close():
    assert [reading("2026-11-25", t).regime for t in ("09:30", "10:00", "15:44", "15:45", "15:58", "16:00")] == [
        Regime.OPEN_EARLY, Regime.MID, Regime.MID, Regime.LATE, Regime.CLOSE, Regime.OUTSIDE_SESSION,
    ]  # fmt: skip
    assert [reading("2026-11-27", t).regime for t in ("12:44", "12:45", "12:57", "12:58", "13:00", "15:45")] == [
        Regime.MID, Regime.LATE, Regime.LATE, Regime.CLOSE, Regime.OUTSIDE_SESSION, Regime.OUTSIDE_SESSION,
    ]  # fmt: skip
    assert reading("2026-11-27", "12:30").minutes_to_close == 30


def test_clock_time_regimes_do_not_move_on_a_half_day():
    """The clock-time form stays valid: LATE at 16:15 never comes on a 13:00 close (what anchoring is for)."""
    raw = RULES.model_dump(mode="json")
    raw["session"] |= {"open": "09:30", "close": "16:30"}
    raw["regimes"]["LATE"]["start"], raw["regimes"]["CLOSE"]["start"] = "16:15", "16:28"
    rules = RiskRules.model_validate(raw)
    assert reading("2026-11-27", "12:59", rules=rules).regime is Regime.MID
    assert reading("2026-11-25", "16:15", rules=rules).regime is Regime.LATE  # the override's 16:30 close on a full day


def test_a_holiday_has_no_session_and_refuses_desk_orders():
    assert {reading("2026-11-26", t).regime for t in ("00:00", "09:30", "11:00", "15:59", "23:59")} == {Regime.OUTSIDE_SESSION}
    holiday = CONFIG.model_copy(update={"rules": session_rules(RULES, THANKSGIVING_WEEK.on(date(2026, 11, 26)))})
    context = GateContext(
        account="a",
        ledger=Ledger(BookState(equity=1_000_000)),
        mode=RiskMode.NORMAL,
        regime=read_clock(at("2026-11-26", "11:00").time(), holiday.rules).regime,
        quote_of=lambda s: quote_from_mark(100.0),
        config=holiday,
    )
    order = {"intent_id": "a-1", "account": "a", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 100.0}
    verdict = gate_desk_intent(order, context)
    assert (verdict.approved, verdict.reason) == (False, RejectReason.OUTSIDE_SESSION)
    open_day = CONFIG.model_copy(update={"rules": session_rules(RULES, THANKSGIVING_WEEK.on(date(2026, 11, 27)))})
    context.config, context.regime = open_day, read_clock(at("2026-11-27", "11:00").time(), open_day.rules).regime
    assert gate_desk_intent(order | {"intent_id": "a-2"}, context).approved


def test_without_a_calendar_orders_outside_the_session_are_still_accepted():
    assert CONFIG.rules.session.accepts_orders_outside and not RULES.session.accepts_orders_outside
    assert xnys_rules(orders_outside_session=True).session.accepts_orders_outside


def test_overrides_keep_a_calendars_early_close():
    rules = xnys_rules(open="09:30", close="16:30")
    assert session_rules(rules, THANKSGIVING_WEEK.on(date(2026, 11, 25))).session.close == "16:30"
    assert session_rules(rules, THANKSGIVING_WEEK.on(date(2026, 11, 27))).session.close == "13:00"


def test_dst_ends_between_two_sessions():
    """2026-11-01: New York goes back an hour. Friday's close to Monday's open is 65.5 hours of
    wall clock and 66.5 hours of elapsed time; a virtual clock anchored on Friday reads 09:30 on
    Monday after those 66.5 hours, as the exchange's clock does."""
    window = read_sessions("XNYS", NY, date(2026, 10, 29), date(2026, 11, 3))
    assert [s.date for s in window.sessions] == ["2026-10-29", "2026-10-30", "2026-11-02", "2026-11-03"]
    friday_close, monday_open = at("2026-10-30", "16:00"), at("2026-11-02", "09:30")
    assert between(friday_close, monday_open, RULES) == timedelta(hours=66, minutes=30)
    anchor = ClockAnchor(exchange=friday_close, workflow=datetime(2030, 1, 1, tzinfo=UTC))
    assert exchange_now(anchor.workflow + timedelta(hours=66, minutes=30), RULES, anchor) == monday_open
    assert reading("2026-11-02", "09:30", window).regime is Regime.OPEN_EARLY


@pytest.mark.parametrize(
    ("session", "regimes", "key", "problem"),
    [
        ({"calendar": "XNAS"}, {}, "session.calendar", "not a calendar this rig knows"),
        ({"calendar": "XLON"}, {}, "session.time_zone", "is not the XLON calendar's (Europe/London)"),
        ({"calendar": None, "open": None}, {}, "session.open", "required without a calendar"),
        ({}, {"LATE": "15:45"}, "regimes.LATE.start", "is a clock time"),
        ({}, {"OPEN_EARLY": "open + 5m"}, "regimes.OPEN_EARLY.start", "must be 'open'"),
        ({}, {"LATE": "close - 1m"}, "regimes.CLOSE.start", "does not come after"),
        ({}, {"MID": "close - 20m", "LATE": "open + 60m"}, "regimes.LATE.start", "does not come after"),
    ],
)
def test_calendar_rules_are_checked(session, regimes, key, problem):
    raw = CONFIG.rules.model_dump(mode="json")
    raw["session"] = {"time_zone": NY, "calendar": "XNYS"} | session
    for regime, start in regimes.items():
        raw["regimes"][regime]["start"] = start
    with pytest.raises(ValueError) as info:
        RiskRules.model_validate(raw)
    error = info.value.errors()[0]["ctx"]["error"] if hasattr(info.value, "errors") else info.value
    assert isinstance(error, RuleError) and (error.key, problem in error.problem) == (key, True), error
