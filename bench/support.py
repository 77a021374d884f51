"""Shared bench plumbing: an embedded server on a free port, percentiles, history reading, and
the one way a figure is printed — beside its baseline from the same run, the figure measured
before the issue-13 rewrite, and its aim."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from worker import server
from worker.connection import connect

T = TypeVar("T")

# `make bench` on this machine before the issue-13 rewrite (signal round trips, a task per cycle),
# the same benches: kept so every run prints where it started from.
BEFORE = {
    "noop_wf_s": 79.7,
    "orders_s": 22.6,
    "ratio": 0.28,
    "burst_working_p50_ms": 11_700.0,
    "burst_working_p99_ms": 21_400.0,
    "day_200_s": 30.3,
    "reaction_p50_ms": 247.0,
    "reaction_p99_ms": 662.0,
    "core_ratio": 2.42,
}
AIMS = {"ratio": 0.7, "day_200_s": 10.0, "reaction_p99_ms": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SERVER_PIDS: list[int] = []


@contextlib.asynccontextmanager
async def embedded_server() -> AsyncIterator[Client]:
    """The same server `make server` runs (SQLite with WAL, deploy/dynamicconfig/rig.yaml)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = server.start("127.0.0.1", port, Path(tmp) / "bench.sqlite")
        _SERVER_PIDS.append(proc.pid)
        try:
            yield await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        finally:
            _SERVER_PIDS.remove(proc.pid)
            server.stop(proc)


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Cpu:
    """CPU seconds spent between start and stop: this process (bench client + worker, Python)
    and the dev server (Go). On a shared machine wall time measures the neighbours too; CPU
    seconds per workflow much less so."""

    def __init__(self) -> None:
        self.worker = self.server = 0.0

    def __enter__(self) -> Cpu:
        t = os.times()
        self._worker0 = t.user + t.system
        self._server0 = _proc_cpu(_SERVER_PIDS[-1]) if _SERVER_PIDS else float("nan")
        return self

    def __exit__(self, *_: object) -> None:
        t = os.times()
        self.worker = t.user + t.system - self._worker0
        self.server = (_proc_cpu(_SERVER_PIDS[-1]) if _SERVER_PIDS else float("nan")) - self._server0

    def per(self, n: int) -> str:
        return f"{self.worker / n * 1000:.1f} ms worker + {self.server / n * 1000:.1f} ms server"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def bounded(items: Iterable[T], call: Callable[[T], Awaitable[Any]], limit: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with gate:
            return await call(item)

    return await asyncio.gather(*[one(i) for i in items])


# The server refuses more than ~1,200 concurrent long polls per namespace (a workflow result is
# one): a 2,000 burst waits on its results at most this many at a time.
RESULT_WAITERS = 500


class Stalled(Exception):
    """A burst that stopped making progress: `done` of its `total` workflows had finished."""

    def __init__(self, done: int, total: int, seconds: float) -> None:
        super().__init__(f"stalled: {done} of {total} done, none for {STALL_SECONDS:.0f} s, after {seconds:.0f} s")
        self.done, self.total, self.seconds = done, total, seconds


STALL_SECONDS = 60.0  # no workflow of a burst finished for this long: it is stuck, not slow


async def results(handles: list[Any], stall_seconds: float = STALL_SECONDS) -> list[Any]:
    """Every workflow's result, or Stalled once none has finished for `stall_seconds`."""
    done = 0
    started = time.monotonic()

    async def wait(handle: Any) -> Any:
        nonlocal done
        result = await handle.result()
        done += 1
        return result

    task = asyncio.ensure_future(bounded(handles, wait, RESULT_WAITERS))
    seen, last_progress = -1, time.monotonic()
    try:
        while not task.done():
            await asyncio.wait([task], timeout=1.0)
            if done != seen:
                seen, last_progress = done, time.monotonic()
            elif time.monotonic() - last_progress > stall_seconds:
                raise Stalled(done, len(handles), time.monotonic() - started)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


STARTERS = 256  # concurrent start requests: a 2,000 burst at once times out in the server's queue


async def start_all(client: Client, workflow: str, args: list[Any], ids: list[str], queue: str, **kwargs: Any) -> list[Any]:
    """Start every workflow as fast as the server takes them (a burst), in order."""
    return await bounded(list(zip(args, ids)), lambda a: client.start_workflow(workflow, a[0], id=a[1], task_queue=queue, **kwargs), STARTERS)


def sample(items: list[T], most: int) -> list[T]:
    """At most `most` items spread evenly over the list (the start, middle and end of a burst)."""
    if len(items) <= most:
        return items
    step = len(items) / most
    return [items[int(i * step)] for i in range(most)]


# ── histories ───────────────────────────────────────────────────────────────────────────────
def event_name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def event_time(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime().timestamp() if event.event_time.seconds else float("nan")


async def history(client: Client, workflow_id: str, run_id: str | None = None) -> list[HistoryEvent]:
    return [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]


def upserted(event: HistoryEvent, key: str) -> Any:
    """The value a search-attribute upsert event sets for `key` (None if it does not set it)."""
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    return json.loads(fields[key].data) if key in fields else None


class OrderShape:
    """What an order's history says: when it reached the venue, how many workflow tasks it took,
    and when its first task was picked up and completed (server times, epoch seconds)."""

    def __init__(self, working_at: float | None, tasks: int, first_started: float | None, first_completed: float | None) -> None:
        self.working_at, self.tasks = working_at, tasks
        self.first_started, self.first_completed = first_started, first_completed


async def order_shape(client: Client, intent_id: str) -> OrderShape:
    working = started = completed = None
    tasks = 0
    for event in await history(client, intent_id):
        name = event_name(event)
        if name == "WORKFLOW_TASK_STARTED" and started is None:
            started = event_time(event)
        elif name == "WORKFLOW_TASK_COMPLETED":
            tasks += 1
            completed = completed or event_time(event)
        elif working is None and name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            if upserted(event, "OrderState") in ("WORKING", "PARTIAL_FILL", "FILLED"):
                working = event_time(event)  # first OrderState past ACCEPTED
    return OrderShape(working, tasks, started, completed)


async def closed_at(client: Client, workflow_id: str) -> float | None:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return desc.close_time.timestamp() if desc.close_time else None


async def account_runs(client: Client, workflow_id: str) -> list[tuple[str, int]]:
    """Every run of a workflow id (continue-as-new chain), oldest first: (run id, history length)."""
    runs = [(w.start_time, w.run_id, w.history_length) async for w in client.list_workflows(f'WorkflowId="{workflow_id}"')]
    return [(run_id, length) for _, run_id, length in sorted(runs)]


# ── printing ────────────────────────────────────────────────────────────────────────────────
def verdict(ok: bool) -> str:
    return "OK" if ok else "BELOW AIM"


def figure(label: str, value: str, *, baseline: str = "", before: str = "", aim: str = "", ok: bool | None = None, note: str = "") -> None:
    """One figure per line: the value, then its baseline from the same run, the figure before
    the rewrite, the aim and the verdict (those that apply), then a note."""
    parts = [f"  {label:<38} {value:>22}"]
    if baseline:
        parts.append(f"baseline {baseline}")
    if before:
        parts.append(f"before rewrite {before}")
    if aim:
        parts.append(f"aim {aim}" + (f" — {verdict(ok)}" if ok is not None else ""))
    if note:
        parts.append(note)
    print("  |  ".join(parts))


def now() -> float:
    return datetime.now().timestamp()
