"""Render a RiskResult as one self-contained HTML page: chart, decision log, orders with links
into the Temporal UI, and the exposure breakdown at the close (buckets and every group); for a
calendar account's run, its days (P&L by day, the roll events, each day's log: report/days.py)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

from protocol.messages import RiskResult
from report.chart import render_svg, series
from report.days import render_days

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#2e7d32}.fail{color:#b71c1c}
.mode-NORMAL{background:#e8f5e9}.mode-THROTTLE_NEW_ORDERS{background:#fff8e1}.mode-SOFT_DERISK{background:#ffe0b2}
.mode-HARD_DERISK{background:#ffcdd2}svg{max-width:100%;height:auto}
"""


def _table(headers: list[str], rows: list[list[str]], row_class: Callable[[list[str]], str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cls = f' class="{row_class(row)}"' if row_class else ""
        cells = "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(value: float, digits: int = 2) -> str:
    return f'<td class="n">{value:,.{digits}f}</td>'


def render(
    result: RiskResult,
    *,
    title: str,
    ui_workflow: Callable[[str], str],
    verdict: tuple[bool, list[str]] | None = None,
    days: tuple[str, str] | None = None,
) -> str:
    """`days`: a calendar account's run shows those days only (first, last; inclusive)."""
    data = series(result)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}</style></head><body>"]
    parts.append(
        f"<h1>{esc(title)}</h1><p>account <code>{esc(result.account)}</code> — {len(result.decisions)} decisions, "
        f"{len(result.intents)} de-risk intents, {len(result.fills)} fills</p>"
    )
    if result.digest:  # DESIGN §3: the run's fingerprint, the same for the same scenario and seed
        parts.append(f"<p>run digest <code id='run-digest'>{esc(result.digest)}</code></p>")
    if verdict is not None:
        passed, failures = verdict
        parts.append(f"<p class='{'pass' if passed else 'fail'}'><b>{'PASSED' if passed else 'FAILED'}</b></p>")
        if failures:
            parts.append("<ul>" + "".join(f"<li>{esc(f)}</li>" for f in failures) + "</ul>")
    parts.append(render_days(result, days, _table, _num))
    parts.append("<h2>The day</h2>" + render_svg(data))
    parts.append(f"<script type='application/json' id='chart-data'>{json.dumps(data)}</script>")

    changes = [
        d
        for i, d in enumerate(result.decisions)
        if i == 0 or d.intents or d.mode is not result.decisions[i - 1].mode or d.regime != result.decisions[i - 1].regime
    ]
    parts.append(
        f"<h2>Decision log</h2><p>{len(changes)} of {len(result.decisions)} cycles: the first, each change of mode or regime, and each cycle that issued intents.</p>"
    )
    parts.append(
        _table(
            ["time", "regime", "mode", "reason", "gross %", "after %", "potential %", "decision"],
            [
                [
                    esc(d.exchange_time),
                    esc(d.regime),
                    esc(d.mode.value),
                    esc(d.reason),
                    _num(d.gross_pct),
                    _num(d.gross_pct_after),
                    _num(d.potential_pct),
                    esc(d.sentence),
                ]
                for d in changes
            ],
            row_class=lambda r: f"mode-{r[2]}",
        )
    )

    issued = {r.intent.intent_id: r for r in result.intents}
    rows = []
    for intent_id, outcome in result.outcomes.items():
        record = issued.get(intent_id)
        intent = record.intent if record else None
        rule = intent.price_rule.value if intent else ""
        price = f"{intent.limit_price:.2f}" if intent and intent.limit_price else ""
        why = outcome.reject_reason or outcome.cancel_reason
        rows.append(
            [
                f"<a href='{esc(ui_workflow(intent_id))}'>{esc(intent_id)}</a>",
                esc(record.exchange_time if record else ""),
                esc(intent.side.value if intent else ""),
                _num(outcome.quantity, 0),
                esc(price),
                esc(rule),
                esc(outcome.state.value),
                _num(outcome.filled_quantity, 0),
                esc(why.value if why else ""),
            ]
        )
    parts.append(
        "<h2>Orders</h2>"
        + (
            _table(["intent id (Temporal UI)", "issued", "side", "qty", "limit", "price rule", "final state", "filled", "reason"], rows)
            if rows
            else "<p>No orders.</p>"
        )
    )

    e = result.final_exposure
    if e is not None:
        parts.append(
            f"<h2>Exposure at the close</h2><p>gross {e.gross_exposure_pct:.2f}% (long {e.long_gross_pct:.2f}%, short "
            f"{e.short_gross_pct:.2f}%), potential {e.potential_exposure_pct:.2f}%, open-order potential "
            f"{e.open_orders_potential.pct:.2f}% over {e.open_orders_potential.open_order_count} orders; equity {e.equity:,.0f}</p>"
        )
        parts.append(
            _table(
                ["bucket", "current", "current %", "potential", "potential %", "target %", "max %"],
                [
                    [
                        esc(b.value),
                        _num(x.current),
                        _num(x.current_pct),
                        _num(x.potential),
                        _num(x.potential_pct),
                        _num(x.target_pct, 0),
                        _num(x.max_pct, 0),
                    ]
                    for b, x in e.buckets.items()
                ],
            )
        )
        parts.append(
            "<h3>Groups</h3>"
            + _table(
                ["group", "current", "current %", "potential", "potential %"],
                [[esc(g), _num(x.current), _num(x.current_pct), _num(x.potential), _num(x.potential_pct)] for g, x in e.group_exposure.items()],
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write(path: Path, page: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
