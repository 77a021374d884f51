"""The day's chart as inline SVG (matplotlib, no network at view time)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from protocol.messages import RiskResult  # noqa: E402

MODE_COLORS = {"NORMAL": "#e8f5e9", "THROTTLE_NEW_ORDERS": "#fff8e1", "SOFT_DERISK": "#ffe0b2", "HARD_DERISK": "#ffcdd2"}


def minutes(hms: str) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 60 + m + s / 60


def series(result: RiskResult) -> dict:
    """The numbers the chart draws; embedded next to it so they can be checked."""
    d = result.decisions
    return {
        "time": [x.exchange_time for x in d],
        "gross_pct": [round(x.gross_pct, 6) for x in d],
        "gross_pct_after": [round(x.gross_pct_after, 6) for x in d],
        "potential_pct": [round(x.potential_pct, 6) for x in d],
        "tolerance_pct": [x.tolerance_pct for x in d],
        "mode": [x.mode.value for x in d],
        "hard_cap_pct": result.hard_cap_pct,
        "intents": [{"time": r.exchange_time, "intent_id": r.intent.intent_id} for r in result.intents],
        "fills": [{"time": f.exchange_time, "fill_id": f.fill_id} for f in result.fills],
    }


def _label(minute: float) -> str:
    return f"{int(minute // 60):02d}:{int(minute % 60):02d}"


def render_svg(data: dict) -> str:
    x = [minutes(t) for t in data["time"]]
    fig, ax = plt.subplots(figsize=(11, 4.6), dpi=100)
    start = 0
    for i in range(1, len(x) + 1):  # shaded bands for each run of one mode
        if i == len(x) or data["mode"][i] != data["mode"][start]:
            end = x[i] if i < len(x) else x[-1] + 1
            ax.axvspan(x[start], end, color=MODE_COLORS[data["mode"][start]], lw=0)
            start = i
    ax.plot(x, data["gross_pct_after"], color="#1565c0", lw=1.8, label="gross %")
    ax.plot(x, data["potential_pct"], color="#6a1b9a", lw=1.2, ls="--", label="potential %")
    ax.step(x, data["tolerance_pct"], where="post", color="#2e7d32", lw=1.2, label="regime tolerance %")
    ax.axhline(data["hard_cap_pct"], color="#b71c1c", lw=1.2, ls=":", label=f"hard cap {data['hard_cap_pct']:g}%")
    gross_at = dict(zip(data["time"], data["gross_pct"]))
    after_at = dict(zip(data["time"], data["gross_pct_after"]))
    it = [minutes(i["time"]) for i in data["intents"]]
    ax.scatter(it, [gross_at.get(i["time"], 0) for i in data["intents"]], marker="v", color="#e65100", s=22, zorder=5, label="de-risk intent")
    ft = [minutes(f["time"]) for f in data["fills"]]
    ax.scatter(ft, [after_at.get(f["time"], gross_at.get(f["time"], 0)) for f in data["fills"]], marker="o", color="#263238", s=9, zorder=6, label="fill")
    for mode, color in MODE_COLORS.items():
        ax.fill_between([], [], color=color, label=mode)
    ticks = [t for t in range(int(min(x)) // 30 * 30, int(max(x)) + 31, 30)] if x else []
    ax.set_xticks(ticks, [_label(t) for t in ticks], rotation=0, fontsize=8)
    ax.set_xlim(min(x) - 1 if x else 0, max(x) + 1 if x else 1)
    ax.set_ylabel("% of equity")
    ax.set_xlabel("exchange time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # same day, same bytes
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]
