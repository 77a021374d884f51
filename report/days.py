"""The report's days (a calendar account's run): P&L by day, each close's roll event, and each
day's decision log (its changes) — all the days kept, or a day or a range of days."""

from __future__ import annotations

import html
from collections.abc import Callable

from domain.days import DayRecord
from protocol.messages import DecisionRecord, RiskResult


def in_range(day: str, days: tuple[str, str] | None) -> bool:
    return days is None or days[0] <= day <= days[1]


def _changes(decisions: list[DecisionRecord]) -> list[DecisionRecord]:
    return [d for i, d in enumerate(decisions) if i == 0 or d.intents or d.mode is not decisions[i - 1].mode or d.regime != decisions[i - 1].regime]


def render_days(
    result: RiskResult,
    days: tuple[str, str] | None,
    table: Callable[..., str],
    num: Callable[..., str],
) -> str:
    """The Days section (empty for a run without a calendar)."""
    if not result.days and not result.day_logs:
        return ""
    esc = html.escape
    shown: list[DayRecord] = [d for d in result.days if in_range(d.date, days)]
    span = "every day kept" if days is None else (days[0] if days[0] == days[1] else f"{days[0]} to {days[1]}")
    total = sum(d.pnl.daily for d in shown)
    parts = [f"<h2>Days</h2><p>{len(shown)} sessions ({esc(span)}), daily P&amp;L {total:,.2f} in all; each closed by its roll.</p>"]
    parts.append(
        table(
            [
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
                "roll",
            ],
            [
                [
                    f"<td id='day-{esc(d.date)}'>{esc(d.date)}</td>",
                    esc(f"{d.open}–{d.close}" + (" (half day)" if d.early_close else "")),
                    num(d.pnl.daily),
                    num(d.pnl.realized),
                    num(d.pnl.unrealized),
                    num(d.daily_loss_pct),
                    num(d.positions, 0),
                    num(d.expired, 0),
                    num(d.tally.cycles, 0),
                    esc(d.worst_mode.value if d.worst_mode else ""),
                    num(d.tally.fills, 0),
                    esc(d.trading_state.value),
                    esc(d.rolled_at.replace("T", " ")[:19]),
                ]
                for d in shown
            ],
        )
    )
    parts.append(
        "<h3>Roll events</h3><ul>"
        + "".join(
            f"<li>{esc(d.rolled_at.replace('T', ' ')[:19])}: the {esc(d.date)} session closed — P&amp;L {d.pnl.daily:,.2f}, "
            f"{d.expired} DAY orders expired, the next day's BOD {d.positions} positions"
            + (f" at the closing marks {esc(', '.join(f'{s} {m:,.2f}' for s, m in d.marks.items()))}" if d.marks else "")
            + f"; trading state {esc(d.trading_state.value)} carried on</li>"
            for d in shown
        )
        + "</ul>"
    )
    for log in result.day_logs:
        if not in_range(log.date, days):
            continue
        changes = _changes(log.decisions)
        parts.append(f"<h3>Decision log {esc(log.date)}</h3><p>{len(changes)} of {len(log.decisions)} stored records: the changes.</p>")
        parts.append(
            table(
                ["time", "regime", "mode", "reason", "gross %", "daily P&L", "decision"],
                [
                    [
                        esc(d.exchange_time),
                        esc(d.regime),
                        esc(d.mode.value),
                        esc(d.reason),
                        num(d.gross_pct),
                        num(d.pnl.daily if d.pnl else 0.0),
                        esc(d.sentence),
                    ]
                    for d in changes
                ],
                row_class=lambda r: f"mode-{r[2]}",
            )
        )
    return "\n".join(parts)
