"""Writes full_day.json: a day of 20 de-risk orders through the IBKR adapter (deterministic).

    .venv/bin/python tests/ibkr/make_full_day.py

Orders are SOFT/HARD de-risk limits (sells of longs, buys of shorts) placed through the day,
filled in partial chunks; some are canceled by the rig (one cancel crossed by a fill), some end
at the close canceled by IB (DAY), a couple see informational error codes, and IB Gateway
restarts mid-day while fills happen."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SYMBOLS = {"AAPL": 190.0, "MSFT": 420.0, "XOM": 110.0, "KO": 62.0, "JPM": 198.0, "CVX": 155.0, "PG": 168.0, "NVDA": 121.0}


def build() -> dict:
    rng = random.Random(20250602)
    steps: list[dict] = []
    orders: list[dict[str, Any]] = []
    for n in range(1, 21):
        symbol = rng.choice(sorted(SYMBOLS))
        side = "SELL" if rng.random() < 0.75 else "BUY"
        quantity = rng.randint(1, 10) * 100
        price = round(SYMBOLS[symbol] * (1 + rng.uniform(-0.004, 0.004)), 2)
        # chunks that fill it (or part of it)
        fate = rng.choices(["fill", "cancel", "expire", "cross"], weights=[10, 4, 4, 2])[0]
        target = quantity if fate == "fill" else rng.randint(0, quantity // 100 - 1) * 100 if fate != "cross" else quantity - 100
        chunks = []
        left = target
        while left > 0:
            chunk = min(left, rng.randint(1, 4) * 100)
            chunks.append(chunk)
            left -= chunk
        orders.append({"id": f"d{n:02d}", "symbol": symbol, "side": side, "quantity": quantity, "price": price, "fate": fate, "chunks": chunks})

    pending: list[tuple[str, int, float]] = []  # fills not yet delivered: (intent, shares, price)
    outage_at = 11
    for index, order in enumerate(orders):
        submit: dict = {
            "submit": {
                "intent_id": order["id"],
                "symbol": order["symbol"],
                "side": order["side"],
                "quantity": order["quantity"],
                "limit_price": order["price"],
            },
            "returns": ["ACCEPTED"],
        }
        if index in (3, 14):
            submit["on_place"] = [
                {"cb": "error", "code": 10349, "message": "Order TIF was set to DAY based on order preset."},
                {"cb": "openOrder", "status": "Submitted"},
                {"cb": "orderStatus", "status": "Submitted"},
            ]
        steps.append(submit)
        pending += [(order["id"], chunk, order["price"]) for chunk in order["chunks"]]
        # deliver some of what is pending, in a shuffled but per-order ordered way
        rng.shuffle(pending)
        pending.sort(key=lambda p: int(p[0][1:]))  # keep each order's chunks in order
        take = rng.randint(0, len(pending))
        if index == outage_at:
            take = len(pending)  # everything pending executes while IB Gateway is down
        batch, pending = pending[:take], pending[take:]
        if index == outage_at:
            steps.append({"drop_connection": True, "down": True})
            steps.append({"while_down": [{"cb": "fill", "order": i, "shares": s, "price": p} for i, s, p in batch]})
            steps.append({"tws_up": True})
        elif batch:
            steps.append({"tws": [{"cb": "fill", "order": i, "shares": s, "price": p} for i, s, p in batch]})
    if pending:
        steps.append({"tws": [{"cb": "fill", "order": i, "shares": s, "price": p} for i, s, p in pending]})
    for order in orders:
        if order["fate"] == "cancel":
            steps.append({"cancel": order["id"]})
        elif order["fate"] == "cross":
            # the last 100 shares execute while the cancel is pending: too late to cancel, FILLED
            steps.append(
                {
                    "cancel": order["id"],
                    "on_cancel": [
                        {"cb": "orderStatus", "status": "PendingCancel"},
                        {"cb": "execDetails", "shares": 100, "price": order["price"]},
                        {"cb": "orderStatus", "status": "Filled"},
                        {"cb": "error", "code": 10148, "message": "OrderId that needs to be cancelled cannot be cancelled, state: Filled."},
                    ],
                }
            )
    closing = [{"cb": "cancelled", "order": o["id"], "message": "Cancelled by system: DAY order expired"} for o in orders if o["fate"] == "expire"]
    steps.append({"tws": closing})
    steps.append({"reconcile": True})
    steps.append({"executions_since": None})
    return {
        "race": "a full day of de-risk orders",
        "description": "20 de-risk limit orders over the day, partial fills, rig cancels (one crossed by a fill), DAY expiry at the close, informational 10349s, and an IB Gateway restart with fills while it is down.",
        "handling": "Every order ends FILLED or CANCELED, each execution is applied once, and the positions the rig books from the events equal the broker's executions.",
        "orders": orders,
        "steps": steps,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("full_day.json")
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {out}")
