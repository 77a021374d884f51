"""Exposure + decision for 10,000 positions and 50,000 open orders, against a plain-loop floor.

The floor reads every position and every order once (the least any exposure calculation must
do); the ratio says how much the real calculation costs on top. Aim: within 3×.
"""

from __future__ import annotations

import random
import statistics
import time

from bench.support import BEFORE
from config.load import load_rules
from domain.enums import Bucket, Regime, Side
from domain.exposure import compute_exposure
from domain.models import OpenOrder, Position
from domain.policy import decide, decision_input
from domain.rules import Instrument, RigConfig, Universe

POSITIONS = 10_000
ORDERS = 50_000
ROUNDS = 5


def synthetic_book(seed: int = 7) -> tuple[RigConfig, float, list[Position], list[OpenOrder], dict[str, float]]:
    rng = random.Random(seed)
    groups = [f"G{i:02d}" for i in range(22)]
    symbols = [f"S{i:04d}" for i in range(POSITIONS // 2)]
    universe = Universe(
        groups=groups,
        instruments=[Instrument(symbol=s, group=groups[i % 22], bucket=Bucket.LT, lot_size=1, reference_price=50.0) for i, s in enumerate(symbols)],
    )
    config = RigConfig(rules=load_rules(), universe=universe)
    marks = {s: rng.uniform(5, 500) for s in symbols}
    positions = [Position(symbol=s, bucket=b, quantity=rng.randint(-2000, 2000) or 1) for s in symbols for b in Bucket]
    orders = [
        OpenOrder(
            intent_id=f"o{i}",
            symbol=(_s := rng.choice(symbols)),
            bucket=rng.choice(list(Bucket)),
            side=rng.choice(list(Side)),
            remaining=rng.randint(1, 500),
        )
        for i in range(ORDERS)
    ]
    gross = sum(abs(p.quantity) * marks[p.symbol] for p in positions)
    return config, gross / 1.1, positions, orders, marks


def floor_loop(positions: list[Position], orders: list[OpenOrder], marks: dict[str, float]) -> float:
    """Touch each field the calculation needs, once per position and order, reading them the
    fastest way the calculation does (the model's field dict); sum something from each."""
    total = 0.0
    lt, buy = Bucket.LT, Side.BUY
    for p in positions:
        f = p.__dict__
        total += abs(f["quantity"] * marks[f["symbol"]]) + (f["bucket"] is lt)
    for o in orders:
        f = o.__dict__
        total += f["remaining"] + (f["side"] is buy) + (f["bucket"] is lt) + len(f["symbol"])
    return total


def timed(fn) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> dict[str, float]:
    config, equity, positions, orders, marks = synthetic_book()

    def exposure_and_decision() -> None:
        exposure = compute_exposure(equity, positions, orders, marks, config)
        decide(decision_input(exposure, Regime.MID, 200.0), config.rules)

    floor = timed(lambda: floor_loop(positions, orders, marks))
    real = timed(exposure_and_decision)
    ratio = real / floor
    print(f"core: exposure+decision for {POSITIONS:,} positions and {ORDERS:,} open orders")
    print(f"  floor (plain loop over positions and orders): {floor * 1000:8.2f} ms")
    print(f"  exposure + decision:                          {real * 1000:8.2f} ms")
    print(f"  ratio: {ratio:.2f}x (before the rewrite {BEFORE['core_ratio']}x; aim ≤ 3x) — {'OK' if ratio <= 3 else 'ABOVE AIM'}")
    return {"floor_ms": floor * 1000, "real_ms": real * 1000, "ratio": ratio}


if __name__ == "__main__":
    run()
