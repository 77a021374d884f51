"""The IBKR gateway's costs at the retention caps: `python -m testkit.ibkr.bench`.

* store write: one batch as a placement makes it (one track, one journal row, one outbox item)
  into a store already holding MAX_TERMINAL_TRACKS ended orders and MAX_JOURNAL executions;
  the periodic prune at the caps;
* submit: the wall time of `submit` over the fake TWS (real socket) with 5,000 completed and
  200 open orders at IB and the store at its caps, and the IB requests each submit makes."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from domain.execution import ExecKind, ExecutionEvent
from testkit.ibkr.replay import gateway_over
from testkit.ibkr.tws import FakeTWS
from venues.ibkr.models import IbkrOrder
from venues.ibkr.store import MAX_JOURNAL, MAX_TERMINAL_TRACKS, Batch, StateStore
from venues.ibkr.translator import OrderTrack, Phase
from worker.connection import exit_now


def _fill(n: int) -> ExecutionEvent:
    return ExecutionEvent(
        intent_id=f"acct-{n % MAX_TERMINAL_TRACKS:06d}-desk-order",
        kind=ExecKind.FILL,
        venue_order_id=str(900_000_000 + n),
        exec_id=f"{n:08x}.{n:08x}.01.01",
        last_qty=100,
        last_px=190.0 + n % 7,
        cum_qty=100,
        venue_time="2025-06-10T13:30:00+00:00",
        commission=0.35,
    )


def _track(n: int) -> OrderTrack:
    fill = _fill(n)
    accepted = ExecutionEvent(intent_id=fill.intent_id, kind=ExecKind.ACCEPTED, venue_order_id=fill.venue_order_id, leaves_qty=100, text="Submitted")
    return OrderTrack(
        intent_id=fill.intent_id, quantity=100, symbol="AAPL", side="BUY", account="acct", order_ref=f"rig/acct/{fill.intent_id}", client_id=17,
        order_id=n + 1, perm_id=900_000_000 + n, phase=Phase.FILLED, cum_qty=100, status_filled=100, last_status="Filled",
        exec_ids=[fill.exec_id or ""], applied={(fill.exec_id or "")[:-3]: fill.exec_id or ""}, events=[accepted, fill],
        commissions={fill.exec_id or "": 0.35}, seen_by_broker=True, placed_at=1.75e9,
    )  # fmt: skip


def fill_store(directory: Path) -> None:
    store = StateStore(directory)
    tracks = [_track(n) for n in range(MAX_TERMINAL_TRACKS)]
    store.write_now(Batch(tracks=[(t.intent_id, True, t.model_dump_json()) for t in tracks], journal=[_fill(n) for n in range(MAX_JOURNAL)]))
    store.close()


def bench_store() -> None:
    directory = Path(tempfile.mkdtemp())
    fill_store(directory)
    store = StateStore(directory)
    store.load()
    times = []
    for n in range(200):
        track = OrderTrack(intent_id=f"new-{n}", quantity=100, symbol="AAPL", side="BUY", phase=Phase.ACCEPTED)
        event = _fill(MAX_JOURNAL + n)
        times.append(store.write_now(Batch(tracks=[(track.intent_id, False, track.model_dump_json())], journal=[event], outbox_add=[(n + 1, "{}")])))
    started = time.perf_counter()
    store.prune_now()
    prune = time.perf_counter() - started
    size = sum(p.stat().st_size for p in directory.iterdir())
    store.close()
    print(
        f"store write at the caps ({MAX_TERMINAL_TRACKS} ended orders, {MAX_JOURNAL} executions, {size / 1e6:.1f} MB): "
        f"median {statistics.median(times) * 1000:.2f} ms, p95 {sorted(times)[int(len(times) * 0.95)] * 1000:.2f} ms per batch "
        f"(fsync'd, on the store's thread); prune {prune * 1000:.0f} ms"
    )


async def bench_submit(completed: int = 5000, working: int = 200, submits: int = 50) -> None:
    directory = Path(tempfile.mkdtemp())
    fill_store(directory)
    tws = FakeTWS()
    for n in range(completed):
        tws.add_order(f"old-{n}", "AAPL", "BUY", 100, 190.0, status="Filled", client_id=17, order_id=100_000 + n)
    for n in range(working):
        tws.add_order(f"open-{n}", "MSFT", "SELL", 100, 420.0, status="Submitted", client_id=17, order_id=200_000 + n)
    gateway = gateway_over(tws, directory)
    await gateway.start()
    await gateway.submit(IbkrOrder(intent_id="warm", account="desk1", symbol="AAPL", side="BUY", quantity=100, limit_price=190.0))
    before = len(tws.requests)
    times = []
    for n in range(submits):
        started = time.perf_counter()
        await gateway.submit(IbkrOrder(intent_id=f"new-{n}", account="desk1", symbol="AAPL", side="BUY", quantity=100, limit_price=190.0))
        times.append(time.perf_counter() - started)
    asked = Counter(r[0] for r in tws.requests[before:])
    await gateway.stop()
    await tws.stop()
    per = {k: v / submits for k, v in sorted(asked.items())}
    print(
        f"submit with {completed} completed + {working} open orders at IB and the store at its caps: "
        f"median {statistics.median(times) * 1000:.1f} ms, p95 {sorted(times)[int(len(times) * 0.95)] * 1000:.1f} ms; IB requests per submit: {per}"
    )


if __name__ == "__main__":
    bench_store()
    asyncio.run(bench_submit())
    exit_now(0)
