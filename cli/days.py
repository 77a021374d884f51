"""An account's days on the terminal (a calendar account): `rig account show ACCOUNT --day DATE`
or `--day FROM..TO` — each closed session's P&L as its roll fixed it, the roll events, and the
session under way with its P&L so far; a single closed day also shows its closing marks and the
next day's beginning-of-day book. And `--calendar` for `rig account open`."""

from __future__ import annotations

import re
from datetime import date

from pydantic import ValidationError

from cli.errors import EXIT_BAD_INPUT, UserError
from cli.tables import table
from domain.calendars import CALENDAR_ZONES
from domain.days import DayRecord
from domain.rules import RigConfig, RiskRules
from protocol.messages import RiskView
from protocol.parse import first_error

DAY_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")


def parse_days(text: str) -> tuple[str, str]:
    """`DATE` or `FROM..TO` (inclusive) → (first, last); a bad one is a one-line error."""
    found = DAY_RANGE.match(text.strip())
    if found is None:
        raise UserError(f"--day {text[:40]!r}: give a date (2026-11-23) or a range (2026-11-23..2026-11-27)", EXIT_BAD_INPUT)
    first, last = found.group(1), found.group(2) or found.group(1)
    for day in (first, last):
        try:
            date.fromisoformat(day)
        except ValueError:
            raise UserError(f"--day: {day} is not a calendar date", EXIT_BAD_INPUT) from None
    if last < first:
        raise UserError(f"--day: {last} is before {first}", EXIT_BAD_INPUT)
    return first, last


def with_calendar(config: RigConfig, calendar: str) -> RigConfig:
    """The rules on a calendar's sessions and hours (its time zone; regimes must be anchored)."""
    raw = config.rules.model_dump(mode="json")
    raw["session"] = raw["session"] | {
        "calendar": calendar,
        "time_zone": CALENDAR_ZONES.get(calendar, raw["session"]["time_zone"]),
        "open": None,
        "close": None,
    }
    try:
        return config.model_copy(update={"rules": RiskRules.model_validate(raw)})
    except ValidationError as err:
        raise UserError(f"--calendar {calendar[:20]}: {first_error(err, '(rules)')}", EXIT_BAD_INPUT) from None


def _row(day: DayRecord) -> list[object]:
    worst = day.worst_mode
    return [
        day.date,
        f"{day.open}–{day.close}" + (" (early)" if day.early_close else ""),
        f"{day.pnl.daily:,.2f}",
        f"{day.pnl.realized:,.2f}",
        f"{day.pnl.unrealized:,.2f}",
        f"{day.daily_loss_pct:.2f}",
        day.positions,
        day.expired,
        day.tally.cycles,
        worst.value if worst else "",
        day.tally.fills,
        day.trading_state.value,
        day.rolled_at.replace("T", " ")[:19],
    ]


HEADERS = [
    "date",
    "session",
    "daily P&L",
    "realized",
    "unrealized",
    "loss %",
    "positions",
    "expired",
    "cycles",
    "worst mode",
    "fills",
    "trading",
    "rolled at",
]


def print_days(view: RiskView, first: str, last: str) -> None:
    if view.session is None:
        raise UserError(f"account {view.account} has no calendar: its session never rolls (open it with --calendar XNYS)", EXIT_BAD_INPUT)
    days = [d for d in view.days if first <= d.date <= last]
    rows = [_row(d) for d in days]
    current = view.session.current
    if current is not None and first <= current <= last and view.pnl is not None:
        t = view.pnl.account
        today = view.session.today
        hours = f"{today.open}–{today.close}" if today is not None and today.date == current else ""
        rows.append([current, hours, f"{t.daily:,.2f}", f"{t.realized:,.2f}", f"{t.unrealized:,.2f}", f"{view.pnl.daily_loss_pct:.2f}",
                     len([p for p in view.positions if p.quantity]), "", "", view.mode.value, "", view.trading_state.value, "(under way)"])  # fmt: skip
    kept = f"{view.days[0].date}..{view.days[-1].date}" if view.days else "none yet"
    print(f"days {first}..{last} of {view.account} ({view.session.calendar}; closed sessions kept: {kept}):")
    if not rows:
        print(f"  no session of {first}..{last} is known: a weekend or holiday, before the account opened, or older than the days kept")
        return
    print(table(HEADERS, rows))
    for day in days:
        print(
            f"  roll {day.date} at {day.rolled_at.replace('T', ' ')[:19]}: realized before it {day.realized_prior:,.2f}; next day's BOD {day.positions} positions"
        )
    if len(days) == 1 and (days[0].marks or days[0].bod_next):
        day = days[0]
        print(f"\nclosing marks {day.date}:\n" + table(["symbol", "mark"], [[s, f"{m:.4f}"] for s, m in day.marks.items()]))
        print(
            "\nnext day's beginning-of-day book:\n"
            + table(
                ["symbol", "bucket", "qty", "avg cost", "mark"],
                [[b.symbol, b.bucket.value, b.quantity, f"{b.avg_cost:.4f}", f"{b.mark or 0:.4f}"] for b in day.bod_next],
            )
        )
