"""`make bench-scale`: the cost curve, not a point. The day's wall time at 50, 200 and 1,000
positions, and orders/s at bursts of 100, 500 and 2,000 (each beside the no-op workflow burst
of the same size on the same server), as a small table with the cost per unit, so where the
curve stops being linear shows as a per-unit cost that grows. Each row gets a fresh embedded
server, so no row pays for the history the rows before it left in SQLite.

`python -m bench.scale --days 50,200 --bursts 100` runs a subset.
"""

from __future__ import annotations

import argparse
import asyncio

from bench import day, noop, orders
from bench.support import embedded_server, percentile
from worker.connection import exit_now
from worker.main import build_worker

DAYS = (50, 200, 1_000)
BURSTS = (100, 500, 2_000)


async def day_row(positions: int) -> dict:
    async with embedded_server() as client, build_worker(client, day.QUEUE):
        wall, result, cost = await day.full_day(client, positions)
    starts = cost.activity_seconds.get("start_orders", 0.0)
    return {
        "positions": positions,
        "wall": wall,
        "intents": len(result.intents),
        "runs": cost.runs,
        "events": cost.events,
        "updates": cost.updates,
        "start_orders": starts,
        "outcomes": day.day_summary(result),
    }


async def burst_rows(n: int) -> list[dict]:
    """The no-op burst, the orders as shipped (the worker polls the orders' queue and the
    accounts' queue, each with slots of its own), and the account served by a second worker."""
    async with embedded_server() as client:
        base = await noop.burst(client, n)
        shared = await orders.burst(client, n, tag="shared")
        own = await orders.burst(client, n, tag="own", own_queue=True)
    return [{"n": n, "noop": base, "orders": shared, "queue": "shipped"}, {"n": n, "noop": base, "orders": own, "queue": "apart"}]


def print_days(rows: list[dict]) -> None:
    print("day (09:30 → 16:30 time-skipped, 118% gross: SOFT at 16:15, HARD 10% chunks from 16:28)")
    print(
        f"  {'positions':>9} {'wall s':>7} {'ms/position':>11} {'× linear':>8} {'orders':>7} {'start_orders s':>14} "
        f"{'ms/order':>8} {'runs':>4} {'events':>7} {'updates':>7}"
    )
    first = rows[0]["wall"] / rows[0]["positions"] if rows else 1.0
    for r in rows:
        per = r["wall"] / r["positions"]
        per_order = r["start_orders"] / r["intents"] * 1000 if r["intents"] else float("nan")
        print(
            f"  {r['positions']:>9,} {r['wall']:>7.1f} {per * 1000:>11.1f} {per / first:>8.2f} {r['intents']:>7,} {r['start_orders']:>14.1f} "
            f"{per_order:>8.1f} {r['runs']:>4} {r['events']:>7,} {r['updates']:>7,}"
        )
    for r in rows:
        print(f"    {r['positions']:,}: {r['outcomes']}")


BURST_HEADER = (
    f"  {'orders':>6} {'account':>7} {'no-op wf/s':>10} {'orders/s':>8} {'ratio':>5} {'ms/order':>8} {'× linear':>8} "
    f"{'WORKING p50 s':>13} {'p99 s':>6} {'CPU ms/order (worker+server)':>28} {'no-op CPU':>11} {'runs':>4} {'events/run':>14}"
)


def burst_line(r: dict, first: dict[str, float]) -> str:
    base, got, n = r["noop"], r["orders"], r["n"]
    per = 1000 / got.rate if got.rate else float("inf")
    first.setdefault(r["queue"], per)
    cpu = f"{got.cpu.worker / n * 1000:.1f}+{got.cpu.server / n * 1000:.1f}"
    noop_cpu = f"{base.cpu.worker / n * 1000:.1f}+{base.cpu.server / n * 1000:.1f}"
    events = "/".join(str(length) for _, length in got.runs)
    return (
        f"  {n:>6,} {r['queue']:>7} {base.rate:>10.1f} {got.rate:>8.1f} {got.rate / base.rate:>5.2f} {per:>8.1f} "
        f"{per / first[r['queue']]:>8.2f} {percentile(got.latencies, 50) / 1000:>13.1f} {percentile(got.latencies, 99) / 1000:>6.1f} "
        f"{cpu:>28} {noop_cpu:>11} {len(got.runs):>4} {events:>14}"
    )


def burst_notes(r: dict) -> str:
    got = r["orders"]
    extra = [f"outcomes {dict(got.states)}"] if set(got.states) != {"FILLED"} else []
    if got.stalled:
        extra.insert(0, f"STALLED ({got.stalled})")
    tasks = ", ".join(f"{k} task(s): {v}" for k, v in sorted(got.shapes.tasks.items()))
    return f"    {r['n']:,} {r['queue']}: workflow tasks per order (sampled) {tasks}" + ("; " + "; ".join(extra) if extra else "")


def print_bursts_head() -> None:
    print("bursts (MARKET orders, certain fills, one account) beside the no-op burst of the same size")
    print("  account 'shipped': the worker as deployed (orders on its task queue, accounts on '<queue>-accounts' with")
    print("  workflow task slots of their own); 'apart': the account served by a second worker in the same process")
    print(BURST_HEADER, flush=True)


async def main(days: tuple[int, ...] = DAYS, bursts: tuple[int, ...] = BURSTS) -> None:
    day_rows = [await day_row(p) for p in days]
    if day_rows:
        print_days(day_rows)
        print(flush=True)
    if bursts:
        print_bursts_head()
    first: dict[str, float] = {}
    notes = []
    for n in bursts:
        for row in await burst_rows(n):
            print(burst_line(row, first), flush=True)
            notes.append(burst_notes(row))
    for note in notes:
        print(note)


def sizes(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=sizes, default=DAYS, help="positions per day, comma-separated (empty: none)")
    parser.add_argument("--bursts", type=sizes, default=BURSTS, help="burst sizes, comma-separated (empty: none)")
    args = parser.parse_args()
    asyncio.run(main(args.days, args.bursts))
    exit_now(0)
