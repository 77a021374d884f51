"""The day's chart as inline SVG (matplotlib, no network at view time)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from protocol.messages import RiskResult

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
        "intents": [
            {"time": r.exchange_time, "intent_id": r.intent.intent_id, "symbol": r.intent.symbol, "price": r.intent.limit_price}
            for r in result.intents
        ],
        "fills": [{"time": f.exchange_time, "fill_id": f.fill_id, "symbol": f.symbol, "price": f.price} for f in result.fills],
        "pnl_daily": [round(x.pnl.daily, 2) if x.pnl else 0.0 for x in d],
        # With a market: the price path of every symbol the day traded (de-risk orders drawn on it).
        "prices": {s: [[t, round(p, 4)] for t, p in path] for s, path in result.price_path.items() if s in _traded(result)},
    }


def _traded(result: RiskResult) -> set[str]:
    return {r.intent.symbol for r in result.intents} | {f.symbol for f in result.fills}


def _label(minute: float) -> str:
    return f"{int(minute // 60):02d}:{int(minute % 60):02d}"


def render_svg(data: dict) -> str:
    """Exposure over the day; under it the day's P&L; with a market, the traded symbols' prices."""
    x = [minutes(t) for t in data["time"]]
    panels = 3 if data["prices"] else 2
    fig, axes = plt.subplots(
        panels, 1, figsize=(11, 4.6 + 2.2 * (panels - 1)), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 2][:panels]}
    )
    ax = axes[0]
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
    ax.scatter(
        ft, [after_at.get(f["time"], gross_at.get(f["time"], 0)) for f in data["fills"]], marker="o", color="#263238", s=9, zorder=6, label="fill"
    )
    for mode, color in MODE_COLORS.items():
        ax.fill_between([], [], color=color, label=mode)
    ax.set_ylabel("% of equity")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    _pnl_panel(axes[1], x, data["pnl_daily"])
    if data["prices"]:
        _price_panel(axes[2], data)
    span = max(x) - min(x) if x else 0
    step = 30 if span > 180 else 10 if span > 40 else 5 if span > 10 else 1
    ticks = [t for t in range(int(min(x)) // step * step, int(max(x)) + step + 1, step) if min(x) - 1 <= t <= max(x) + 1] if x else []
    axes[-1].set_xticks(ticks, [_label(t) for t in ticks], rotation=0, fontsize=8)
    axes[-1].set_xlim(min(x) - 1 if x else 0, max(x) + 1 if x else 1)
    axes[-1].set_xlabel("exchange time")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # same day, same bytes
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _pnl_panel(ax, x: list[float], daily: list[float]) -> None:
    ax.plot(x, daily, color="#37474f", lw=1.4, label="daily P&L")
    ax.fill_between(x, daily, 0, where=[v < 0 for v in daily], color="#ef9a9a", alpha=0.6, lw=0)
    ax.fill_between(x, daily, 0, where=[v >= 0 for v in daily], color="#a5d6a7", alpha=0.6, lw=0)
    ax.axhline(0, color="#9e9e9e", lw=0.8)
    ax.set_ylabel("P&L")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)


def _price_panel(ax, data: dict) -> None:
    """Each traded symbol's mark, as % change from its first mark (one scale for all), with its
    de-risk orders (▼ at their limit) and fills (●)."""
    for symbol, path in sorted(data["prices"].items()):
        base = path[0][1]
        (line,) = ax.plot([minutes(t) for t, _ in path], [(p / base - 1) * 100 for _, p in path], lw=1.1, label=symbol)
        orders = [i for i in data["intents"] if i["symbol"] == symbol and i["price"]]
        ax.scatter([minutes(i["time"]) for i in orders], [(i["price"] / base - 1) * 100 for i in orders], marker="v", s=20, color=line.get_color())
        fills = [f for f in data["fills"] if f["symbol"] == symbol]
        ax.scatter([minutes(f["time"]) for f in fills], [(f["price"] / base - 1) * 100 for f in fills], marker="o", s=9, color="#263238", zorder=5)
    ax.set_ylabel("price, % from first mark")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=6)
