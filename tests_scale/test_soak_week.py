"""The soak (issue 22): a simulated week on one long-lived account — `make test-scale`.

Five sessions of the London Stock Exchange's calendar (XLON, from exchange_calendars), Friday
2026-03-27 to Thursday 04-02, then Good Friday and Easter Monday (holidays) until Tuesday's open:
a weekend with the clocks going forward (BST from Sunday 03-29), two holidays, 500 desk orders a
session and three mark moves, the rig's own de-risk when the book grows. No XNYS week has both a
holiday and a DST change (US changes fall on weekends far from its holidays): the week scenarios
(scenarios/week_*.yaml) cover XNYS in two parts. The account is the rig's long-lived kind (it
continues as new many times) driven the deterministic way, by its timeline, so two runs can be
compared: it runs time-skipped twice on a dev server of its own (SQLite) with `python -m worker`
processes — undisturbed, then through two worker SIGKILLs (each while the worker provably holds
the account's or an order's task: tests/evidence.py) and one server SIGKILL and restart.

It shows, from the orders' own fills and the account's records:
- each day's P&L = that day's fills and mark changes (value at the close − value at the BOD + the
  day's cash, at the roll's closing marks), and BOD(d+1) = close(d) (positions and marks);
- every DAY order closed by its day's close: all orders final, none filled after its day, the
  expired ones counted by that day's roll, no open order at the next open;
- no cycle on the weekend and the holidays; Friday → Monday slept as 62.5 h of elapsed time;
- the account's history (per run) and carried state bounded — the maxima printed;
- the same run digest twice; the wall time of each run printed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from cli.scenarios import time_skipping_client
from domain.enums import CancelReason, Side
from protocol.contract import QUERY_STATE, SCENARIO_WORKFLOW, risk_workflow_id
from protocol.messages import RiskResult, RiskView
from protocol.order_record import OrderSnapshot
from scenarios.spec import ScenarioReport
from tests.evidence import Held, hold_work, interrupted
from tests.test_crash_equivalence import DevServer, WorkerProcess, reconnect

SYMBOLS = ("AAPL", "MSFT", "XOM", "KO", "JPM", "PFE")
SESSIONS = ("2026-03-27", "2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02")
NO_SESSION = ("2026-03-28", "2026-03-29", "2026-04-03", "2026-04-04", "2026-04-05", "2026-04-06")
ORDERS_PER_DAY = 500
FRIDAY_TO_MONDAY = timedelta(hours=62, minutes=30)  # 16:30 GMT → 08:00 BST: 63.5 h of wall clock less the hour lost
MAX_EVENTS_PER_RUN = 10_240  # Temporal warns from here; a run continues as new long before
MAX_CARRIED_BYTES = 2 * 1024 * 1024  # the payload limit
RUN_TIMEOUT = 1_500.0  # seconds of wall time for one run, faults included


def soak_spec() -> dict[str, Any]:
    """The week as a scenario: the book, three mark moves a session, 500 random desk orders a session."""
    rng = random.Random("soak-week marks")
    marks = {s: 100.0 + i for i, s in enumerate(SYMBOLS)}
    events: list[dict[str, Any]] = [{"day": 1, "at": "08:00", "exposure": {"marks": dict(marks)}}]
    for day in range(1, len(SESSIONS) + 1):
        for at in ("10:00", "14:00", "16:20"):
            marks = {s: round(max(5.0, v * (1 + rng.uniform(-0.02, 0.02))), 2) for s, v in marks.items()}
            events.append({"day": day, "at": at, "exposure": {"marks": dict(marks)}})
    return {
        "name": "soak_week",
        "description": "issue 22's soak: a week of XLON sessions, 500 desk orders a session, a weekend with the DST change, Easter's holidays",
        "seed": 11,
        "calendar": "XLON",
        "date": SESSIONS[0],
        "start": "08:00",
        "stop": "2026-04-07 07:59",  # through Good Friday, the weekend and Easter Monday, before Tuesday's open
        "rules": {"fills": {"other": 0.5, "partial_fill_probability": 0.3, "cancel_cross_probability": 0.0}},
        "positions": [{"symbol": s, "bucket": "LT", "quantity": 1000, "avg_cost": 100.0, "mark": 100.0 + i} for i, s in enumerate(SYMBOLS)],
        "events": events,
        "random_orders": {
            "seed": 5,
            "count": ORDERS_PER_DAY,
            "start": "12:25",
            "every_seconds": 29,
            "symbols": list(SYMBOLS),
            "max_quantity": 300,
            "days": len(SESSIONS),
        },
        "expect": [{"desk_orders": {"filled_min": 100, "rejected_min": 0}}]
        + [{"day": d, "session": {"open": "08:00", "close": "16:30"}} for d in range(1, len(SESSIONS) + 1)]
        + [{"date": day, "cycles": 0} for day in NO_SESSION],
    }


class Soak:
    def __init__(self, directory: Path) -> None:
        self.server = DevServer(directory)
        self.queue = f"soak-{uuid.uuid4().hex[:8]}"
        self.workers: list[WorkerProcess] = []
        self.client: Client | None = None

    async def start(self) -> Client:
        await self.server.start()
        self.client = await reconnect(self.server.address)
        await self.new_worker()
        return self.client

    async def new_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.server.address, self.queue)
        await worker.polling
        self.workers.append(worker)
        return worker

    async def stop(self) -> None:
        for worker in self.workers:
            await worker.kill()
        await self.server.stop()


async def account_of(client: Client, scenario: WorkflowHandle) -> str:
    """The scenario's account workflow id, from its history (the child it started)."""
    while True:
        async for event in scenario.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                return event.start_child_workflow_execution_initiated_event_attributes.workflow_id
        await asyncio.sleep(0.1)


async def days_closed(client: Client, account_id: str) -> int:
    try:
        view = await client.get_workflow_handle(account_id).query(QUERY_STATE, result_type=RiskView, rpc_timeout=timedelta(seconds=5))
    except RPCError:
        return -1  # a worker frozen or gone, a server restarting: asked again
    except Exception:  # noqa: BLE001 — a query the worker could not answer in time
        return -1
    return len(view.days)


async def run_week(soak: Soak, faults: bool) -> tuple[ScenarioReport, float, list[str], list[Held]]:
    """One run of the week; with `faults`, a worker SIGKILL on Monday and on Wednesday (each
    while the worker holds a task of the account or an order) and a server restart on Tuesday."""
    assert soak.client is not None
    started = time.monotonic()
    handle = await time_skipping_client(soak.client).start_workflow(
        SCENARIO_WORKFLOW, soak_spec(), id=f"soak-{uuid.uuid4().hex[:8]}", task_queue=soak.queue, result_type=ScenarioReport
    )
    notes: list[str] = []
    held: list[Held] = []
    if faults:
        account_id = await account_of(soak.client, handle)
        for closed, fault in ((1, "worker"), (2, "server"), (3, "worker")):
            while await days_closed(soak.client, account_id) < closed:
                assert time.monotonic() - started < RUN_TIMEOUT, f"the week never reached day {closed + 1}"
                await asyncio.sleep(0.2)
            notes.append(await strike(soak, fault, account_id, held))
    client = soak.client
    report: ScenarioReport = await asyncio.wait_for(client.get_workflow_handle(handle.id, result_type=ScenarioReport).result(), RUN_TIMEOUT)
    return report, time.monotonic() - started, notes, held


async def strike(soak: Soak, fault: str, account_id: str, held: list[Held]) -> str:
    """A server restart, or a worker SIGKILLed while it holds a task of the account (the task is
    checked afterwards: it timed out or ran again on the next worker)."""
    assert soak.client is not None
    if fault == "server":
        await soak.server.kill_and_restart()
        soak.client = await reconnect(soak.server.address)
        return "server SIGKILLed and restarted on its SQLite file"
    worker = soak.workers[-1]
    holding = await hold_work(soak.client, worker.proc, lambda: [account_id], timeout=120.0)
    await worker.kill()
    await soak.new_worker()
    held += holding
    return f"worker {worker.proc.pid} SIGKILLed holding {[h.kind + ' ' + (h.name or str(h.scheduled_event_id)) for h in holding]}"


async def orders_of(client: Client, account: str) -> list[OrderSnapshot]:
    ids = [wf.id async for wf in client.list_workflows(f'WorkflowType="OrderWorkflow" AND Account="{account}"')]
    gate = asyncio.Semaphore(32)

    async def one(order_id: str) -> OrderSnapshot:
        async with gate:
            return await client.get_workflow_handle(order_id, result_type=OrderSnapshot).result()

    return list(await asyncio.gather(*[one(i) for i in dict.fromkeys(ids)]))


def day_of_fill(fill_id: str, order_day: int, first_cycles: list[int]) -> int:
    """The session of a fill (1-based): its cycle (`…/C<cycle>`), or its order's day (an arrival)."""
    tag = fill_id.rsplit("/", 1)[1]
    if not tag.startswith("C"):
        return order_day
    cycle = int(tag[1:])
    return max(d for d, first in enumerate(first_cycles, start=1) if first <= cycle)


def day_of_order(intent_id: str, account: str, first_cycles: list[int]) -> int:
    own = intent_id.removeprefix(f"{account}-")
    if own.startswith("d") and "r" in own:  # a desk order of the random block: d<day>r<n>
        return int(own[1 : own.index("r")])
    cycle = int(own.split("-")[0].removeprefix("c"))  # the risk cycle's own: c<cycle>-H|S-…
    return max(d for d, first in enumerate(first_cycles, start=1) if first <= cycle)


async def account_runs(client: Client, account_id: str) -> list[tuple[int, int]]:
    """Per run of the account's continue-as-new chain: (events, bytes carried into the next run)."""
    runs: list[tuple[int, int]] = []
    run_id = (await client.get_workflow_handle(account_id).describe()).raw_description.workflow_execution_info.first_run_id
    while run_id:
        events = [e async for e in client.get_workflow_handle(account_id, run_id=run_id).fetch_history_events()]
        last = events[-1]
        carried, run_id = 0, ""
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            attrs = last.workflow_execution_continued_as_new_event_attributes
            carried, run_id = sum(len(p.data) for p in attrs.input.payloads), attrs.new_execution_run_id
        runs.append((len(events), carried))
    return runs


def check_days(result: RiskResult, orders: list[OrderSnapshot], spec: dict[str, Any]) -> list[str]:
    """Each day's P&L and BOD from the orders' own fills and the roll's closing marks."""
    days = result.days
    assert [d.date for d in days] == list(SESSIONS), [d.date for d in days]
    logged = {log.date for log in result.day_logs}
    assert not logged & set(NO_SESSION) and logged <= set(SESSIONS), logged
    first_cycles = [d.tally.first_cycle for d in days]
    account = result.account
    positions = {(p["symbol"], p["bucket"]): p["quantity"] for p in spec["positions"]}
    bod_marks = {p["symbol"]: p["mark"] for p in spec["positions"]}
    cash: dict[int, float] = defaultdict(float)
    moved: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    expired: dict[int, int] = defaultdict(int)
    for order in orders:
        assert order.state.is_terminal, (order.intent_id, order.state)
        day = day_of_order(order.intent_id, account, first_cycles)
        expired[day] += order.cancel_reason is CancelReason.EXPIRED_DAY
        for fill in order.fills:
            fill_day = day_of_fill(fill.fill_id, day, first_cycles)
            assert fill_day == day, f"{fill.fill_id} of a day-{day} order filled on day {fill_day}: a DAY order outlived its close"
            sign = 1 if fill.side is Side.BUY else -1
            cash[day] -= sign * fill.quantity * fill.price
            moved[day][(fill.symbol, fill.bucket.value)] += sign * fill.quantity
    lines = []
    bod = dict(positions)
    for n, record in enumerate(days, start=1):
        value_bod = sum(q * bod_marks[s] for (s, _), q in bod.items())
        for key, quantity in moved[n].items():
            positions[key] = positions.get(key, 0) + quantity
        value_close = sum(q * record.marks[s] for (s, _), q in positions.items() if q)
        expected = value_close - value_bod + cash[n]
        assert abs(expected - record.pnl.daily) <= 1e-6 * max(1.0, abs(value_close)), (record.date, expected, record.pnl.daily)
        bod_next = {(b.symbol, b.bucket.value): (b.quantity, b.mark) for b in record.bod_next}
        assert bod_next == {k: (q, record.marks[k[0]]) for k, q in positions.items() if q}, (record.date, bod_next)  # BOD(d+1) = close(d)
        assert record.expired == expired[n], (record.date, record.expired, expired[n])
        lines.append(
            f"{record.date}: P&L {record.pnl.daily:,.2f} = close {value_close:,.2f} − BOD {value_bod:,.2f} + cash {cash[n]:,.2f}; "
            f"{sum(1 for o in orders if day_of_order(o.intent_id, account, first_cycles) == n)} orders, {record.tally.fills} fills, "
            f"{record.expired} expired at the close, {record.tally.cycles} cycles"
        )
        bod, bod_marks = {k: q for k, q in positions.items() if q}, dict(record.marks)
    return lines


@pytest.mark.timeout(3_600)
async def test_a_week_under_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    soak = Soak(tmp_path)
    try:
        client = await soak.start()
        quiet, quiet_wall, _, _ = await run_week(soak, faults=False)
        faulted, faulted_wall, notes, held = await run_week(soak, faults=True)
        client = soak.client or client
        assert len(held) >= 2 and not await interrupted(client, held), await interrupted(client, held)  # each kill hit work in flight
        for report in (quiet, faulted):
            assert report.passed, report.failures
        assert faulted.digest == quiet.digest, f"undisturbed {quiet.digest}, through the faults {faulted.digest}"
        account_id = risk_workflow_id(faulted.account)
        result = await client.get_workflow_handle(account_id, result_type=RiskResult).result()
        orders = await orders_of(client, faulted.account)
        desk = [o for o in orders if "-d" in o.intent_id]
        assert len(desk) == ORDERS_PER_DAY * len(SESSIONS), len(desk)
        lines = check_days(result, orders, soak_spec())
        for view_day in result.day_logs[1:]:
            first = view_day.decisions[0]
            assert first.exchange_time == "08:00:00" and first.potential_pct == first.gross_pct, (view_day.date, first)  # no order over the night
        timers = [
            e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            async for run in client.list_workflows(f'WorkflowId="{account_id}"')
            async for e in client.get_workflow_handle(account_id, run_id=run.run_id).fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
        ]
        assert any(FRIDAY_TO_MONDAY - timedelta(seconds=1) <= t <= FRIDAY_TO_MONDAY for t in timers), sorted(timers)[-3:]
        runs = await account_runs(client, account_id)
        most_events, most_carried = max(e for e, _ in runs), max(c for _, c in runs)
        assert most_events <= MAX_EVENTS_PER_RUN and most_carried <= MAX_CARRIED_BYTES, (most_events, most_carried)
        with capsys.disabled():
            print(
                f"\nsoak week (XLON {SESSIONS[0]}..{SESSIONS[-1]}, holidays 04-03 and 04-06, BST from 03-29): {len(orders)} orders ({len(desk)} desk)"
            )
            print(*lines, sep="\n")
            print(f"account: {len(runs)} runs, at most {most_events:,} events in a run and {most_carried:,} bytes carried into the next")
            print(f"digest {quiet.digest} both runs; wall {quiet_wall:.0f} s undisturbed, {faulted_wall:.0f} s through: {'; '.join(notes)}")
    finally:
        await soak.stop()
