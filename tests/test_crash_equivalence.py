"""Crash equivalence (DESIGN.md §3 "Run digest"): a scenario gives the same digest undisturbed and
while its worker is SIGKILLed three times (a fresh worker process takes over each time) and the
dev server is SIGKILLed and restarted once on the same SQLite file; and with two workers on the
task queue, one of them SIGKILLed mid-day.

Each experiment has its own dev server (`worker/server.py` `start`: the rig's dynamic config, a
SQLite file), its own task queue and worker processes (`python -m worker`, the image's entry
point), and runs the scenario time-skipped, as `rig scenarios` does.

Where the faults strike. A time-skipped day lasts about a second, so the faults are placed on the
account's own progress, not on the wall clock: the account's commands (timers, calls to its
orders, markers, search attributes…) are the same sequence on every run — exactly what replay
checks — so "right after the account's n-th command" is the same moment of the day in every run.
The undisturbed run lists the commands issued mid-day (their exchange time, from the account's
time-skipped workflow time, at least two cycles before the stop); a seeded draw (seed: the
scenario's name) picks which ones the faults follow — the server restart one of the account's
calls to its orders, so that call is in flight while the server is down. The test polls the
account's history and strikes as soon as that command is there — for the server, while a call
is in flight; for a worker, once the worker to kill holds the account (ran its latest task) —
and each fault waits until the previous one shows in the history (below). Nothing moves while no
worker runs, so every later fault still finds the account mid-day.

Each fault must hit work in flight: right before it, the account's history is not complete and
its latest command is one the undisturbed run issued before the stop; afterwards, its history
shows a workflow task that timed out or failed, or an activity that was retried, after the point
where the fault struck. Two exceptions, where nothing is retried although the fault did hit:
a server restart takes a fraction of a second and the SDK retries its calls across it — then the
account's call in flight when the server died must have completed after the restart, on the
same history; and a worker killed between two of the account's tasks whose next task went to the
task queue, not to the dead worker's sticky queue — then that task must have run on another
worker than the killed one, which ran the account's task before (the takeover).

The experiments run concurrently (a module fixture); each test awaits its own. A worker kill
costs about 10 s of wall time: the account's next workflow task waits out the dead worker's
sticky queue (the SDK's 10 s schedule-to-start timeout), an in-flight call to its orders its
heartbeat timeout (10 s).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.scenarios import plan_scenario
from cli.scenarios import time_skipping_client
from protocol.contract import SCENARIO_WORKFLOW
from scenarios.spec import ScenarioReport
from tests.drills import free_port, wait_polling, worker_process
from worker import server
from worker.connection import Unreachable, connect

SCENARIOS = ("full_day", "random_flow")
WORKER_KILLS = 3
TWO_WORKERS_SCENARIO = "random_flow"
RUN_TIMEOUT = 240.0  # seconds of wall time for one run, faults included
MARGIN = timedelta(minutes=2)  # faults follow commands issued at least this long before the stop

COMMAND_EVENTS = {
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
RETRY_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
}
CLOSED_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
}


# ── the experiment's own dev server and worker processes ──────────────────────────────────────
class DevServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.db = directory / "temporal.sqlite"
        self.log = directory / "server.log"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> DevServer:
        self.proc = await asyncio.to_thread(server.start, "127.0.0.1", self.port, self.db, log=self.log)
        return self

    async def kill_and_restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait)
        await self.start()

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(server.stop, self.proc)


async def reconnect(address: str) -> Client:
    """A client of the restarted server: while it opens its port it may reset connections, which
    a user's first connect reports at once (worker/connection.py) but a restart drill waits out."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await connect(target_host=address, namespace="default")
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class WorkerProcess:
    """`python -m worker` on the experiment's queue. Its output is drained (the last lines kept)
    so a chatty worker never blocks on a full pipe."""

    def __init__(self, address: str, queue: str) -> None:
        self.proc: subprocess.Popen = worker_process(address, queue)
        self.lines: collections.deque[str] = collections.deque(maxlen=50)
        self.polling = asyncio.ensure_future(self._wait_polling())

    async def _wait_polling(self) -> None:
        await wait_polling(self.proc)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None  # worker_process pipes its output
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def serves(self, identity: str) -> bool:  # the SDK's default worker identity is "<pid>@<host>"
        return identity.startswith(f"{self.proc.pid}@")

    async def kill(self) -> str:
        """SIGKILL; "" if it was running, else how it had ended (and its last lines)."""
        ended = self.proc.poll()
        if ended is None:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait)
        return "" if ended is None else f"worker {self.proc.pid} had exited ({ended}) before its kill: {list(self.lines)[-5:]}"


class Stepper:
    """Holds the day still while the test looks: a time-skipped day runs in well under a second of
    wall time once its quiet stretches are slept through, faster than the test can read a history.
    The workers are SIGSTOPped while the test reads, and run for STEP between two reads: a fault
    strikes at a moment the account cannot have left, and no window of the day is missed."""

    STEP = 0.02

    def __init__(self, workers: Callable[[], list[WorkerProcess]]) -> None:
        self.workers = workers
        self.held = False

    def _signal(self, sig: int) -> None:
        for w in self.workers():
            if w.polling.done() and w.proc.poll() is None:  # a fresh worker starts unhindered
                w.proc.send_signal(sig)

    def hold(self) -> None:
        self._signal(signal.SIGSTOP)
        self.held = True

    def release(self) -> None:
        self._signal(signal.SIGCONT)
        self.held = False

    async def pace(self) -> None:
        """Between two reads: the workers run for one step (or, when not held, a short wait)."""
        if not self.held:
            await asyncio.sleep(0.002)
            return
        await asyncio.to_thread(self._step)

    def _step(self) -> None:
        """In a thread of its own: a busy event loop (the other experiments share it) cannot
        stretch the step and let the day run away."""
        self._signal(signal.SIGCONT)
        time.sleep(self.STEP)
        self._signal(signal.SIGSTOP)


FREE_RUNNING = Stepper(list)


# ── the account's history ─────────────────────────────────────────────────────────────────────
class AccountHistory:
    """The account's events along its continue-as-new chain, each with its position (the events
    of earlier runs plus its event id), read from the histories themselves (no visibility lag)."""

    def __init__(self, client: Client, account_id: str) -> None:
        self.client, self.account_id = client, account_id
        self.done: list[list[Any]] = []  # the events of finished runs
        self.run_id: str | None = None

    async def read(self) -> list[tuple[int, Any]]:
        if self.run_id is None:  # from the chain's first run
            latest = [e async for e in self.client.get_workflow_handle(self.account_id).fetch_history_events()]
            self.run_id = latest[0].workflow_execution_started_event_attributes.first_execution_run_id
        events = [e async for e in self.client.get_workflow_handle(self.account_id, run_id=self.run_id).fetch_history_events()]
        while events and events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            self.done.append(events)
            self.run_id = events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            events = [e async for e in self.client.get_workflow_handle(self.account_id, run_id=self.run_id).fetch_history_events()]
        positioned, base = [], 0
        for run_events in [*self.done, events]:
            positioned += [(base + e.event_id, e) for e in run_events]
            base += len(run_events)
        return positioned


def commands(events: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The events the account's own commands wrote: the same sequence on every run, while the
    workflow-task events around them vary with timeouts and retries."""
    return [(p, e) for p, e in events if e.event_type in COMMAND_EVENTS]


def retried(event: Any) -> bool:
    return event.event_type in RETRY_EVENTS or (
        event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and event.activity_task_started_event_attributes.attempt > 1
    )


def describe_event(event: Any) -> str:
    name = EventType.Name(event.event_type)[len("EVENT_TYPE_") :]
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        name += f" {event.activity_task_scheduled_event_attributes.activity_type.name}"
    return name


class ExchangeClock:
    """The account's exchange time at an event of its history: a scenario account's workflow time
    is time-skipped in step with its exchange clock, from the day's start at its first event."""

    def __init__(self, events: list[tuple[int, Any]], start: str) -> None:
        self.began = events[0][1].event_time.ToDatetime()
        self.start = hms(start)

    def at(self, event: Any) -> datetime:
        return self.start + (event.event_time.ToDatetime() - self.began)


def hms(text: str) -> datetime:
    return datetime.strptime(text if text.count(":") == 2 else f"{text}:00", "%H:%M:%S")


# ── runs and faults ───────────────────────────────────────────────────────────────────────────
@dataclass
class Fault:
    kind: str  # "worker" or "server"
    command: int  # it struck once the account had issued this many commands…
    doing: str  # … this one
    exchange_time: str  # the account's exchange time then
    position: int  # the account's history position then
    in_flight: list[int] = field(default_factory=list)  # positions of the account's calls in flight then
    killed: str = ""  # a worker fault: the killed worker's identity prefix, "<pid>@"


@dataclass
class Run:
    report: ScenarioReport
    wall: float
    account_id: str
    faults: list[Fault] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # per fault: the retried or timed-out task after it
    after: list[str] = field(default_factory=list)  # per fault: the account's events after it (diagnostics)
    notes: list[str] = field(default_factory=list)  # what the strikes saw (a worker already gone…)


async def account_of(handle: WorkflowHandle, stepper: Stepper = FREE_RUNNING) -> str:
    """The scenario's account workflow id, from its StartChildWorkflowExecutionInitiated event."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async for event in handle.fetch_history_events():
                if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                    return event.start_child_workflow_execution_initiated_event_attributes.workflow_id
        except RPCError:
            pass
        await stepper.pace()
    raise AssertionError(f"{handle.id} started no account")


ACTIVITY_CLOSES = (
    "activity_task_completed_event_attributes",
    "activity_task_failed_event_attributes",
    "activity_task_timed_out_event_attributes",
    "activity_task_canceled_event_attributes",
)


def closes(position: int, event: Any) -> int | None:
    """The position of the call (activity) this event closes, if it closes one."""
    for name in ACTIVITY_CLOSES:
        if event.HasField(name):
            return position - event.event_id + getattr(event, name).scheduled_event_id
    return None


def calls_in_flight(events: list[tuple[int, Any]]) -> list[int]:
    """Positions of the account's calls to its orders (activities) scheduled and not yet closed:
    a retryable activity's history shows its start only when it closes."""
    closed = {closes(p, e) for p, e in events} - {None}
    return [p for p, e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and p not in closed]


def held_by(events: list[tuple[int, Any]]) -> str:
    """The identity of the worker that started the account's latest workflow task."""
    return next(
        (
            e.workflow_task_started_event_attributes.identity
            for _, e in reversed(events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        ),
        "",
    )


async def wait_for_command(
    history: AccountHistory, n: int, stepper: Stepper, call_in_flight: bool = False, ready: Callable[[list], bool] = lambda events: True
) -> list[tuple[int, Any]]:
    """Poll until the account has issued its n-th command (and, if asked, has a call to its orders
    in flight, and `ready(events)` holds); its history then."""

    def reached(events: list) -> bool:
        return len(commands(events)) >= n and (not call_in_flight or bool(calls_in_flight(events))) and ready(events)

    events = await poll_history(history, stepper, lambda events: reached(events) or events[-1][1].event_type in CLOSED_EVENTS)
    if events is None:
        raise AssertionError(f"{history.account_id} never issued command {n}")
    if not reached(events):
        raise AssertionError(f"{history.account_id} closed before command {n}" + (" with a call in flight" if call_in_flight else ""))
    return events


async def poll_history(history: AccountHistory, stepper: Stepper, done: Callable[[list], bool]) -> list[tuple[int, Any]] | None:
    """The account's history once `done(events)` holds (None after RUN_TIMEOUT); between reads the
    stepper lets the workers run a step, and reads while the server restarts are retried."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        try:
            events = await history.read()
        except RPCError:  # the server restarting
            await asyncio.sleep(0.05)
            continue
        if done(events):
            return events
        await stepper.pace()
    return None


async def result_of(handle: WorkflowHandle) -> ScenarioReport:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        try:
            return await asyncio.wait_for(handle.result(), timeout=max(1.0, deadline - time.monotonic()))
        except RPCError:  # the server restarting under a long poll
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@dataclass
class Plan:
    faults: list[tuple[int, str]]  # (n, kind): strike once the account has issued its n-th command
    times: list[datetime]  # the exchange time of each command, from the undisturbed run


async def run_scenario(
    client: Client,
    name: str,
    queue: str,
    tag: str,
    plan: Plan | None = None,
    strike=None,
    ready: Callable[[str, list], bool] = lambda kind, events: True,
    stepper: Stepper = FREE_RUNNING,
) -> Run:
    """One time-skipped run of `name` on `queue`. For each (n, kind) of the plan: once the previous
    fault shows in the history, the account has issued its n-th command and `ready(kind, events)`
    (e.g. the worker to kill holds the account), it must be mid-day (its history open, its latest
    command one the undisturbed run issued before the stop), and `strike(fault, events)` is awaited
    at once."""
    spec = plan_scenario(name).spec
    started = time.monotonic()
    if plan:  # held from the start: the day moves only in steps until the last fault struck
        stepper.hold()
    handle = await time_skipping_client(client).start_workflow(
        SCENARIO_WORKFLOW,
        name,
        id=f"scenario-{name}-{tag}-{time.time_ns()}",
        task_queue=queue,
        result_type=ScenarioReport,
    )
    account_id = await account_of(handle, stepper)
    history = AccountHistory(client, account_id)
    done: list[Fault] = []
    for n, kind in plan.faults if plan else ():
        assert plan is not None  # faults come only with a plan
        if done:  # the previous fault shows in the history before this one strikes: one fault, one window
            await wait_for_evidence(history, done[-1], stepper)
        events = await wait_for_command(history, n, stepper, call_in_flight=kind == "server", ready=functools.partial(ready, kind))
        issued = commands(events)
        when = plan.times[len(issued) - 1]  # the same command sequence on every run: the same moment of the day
        assert events[-1][1].event_type not in CLOSED_EVENTS and when < hms(spec.stop), (
            f"{account_id}: at command {n} the day was over (command {len(issued)} of the undisturbed run came at {when:%H:%M:%S})"
        )
        fault = Fault(kind, len(issued), describe_event(issued[-1][1]), f"{when:%H:%M:%S}", events[-1][0], calls_in_flight(events))
        fresh = await strike(fault, events)
        if fresh is not None:  # a new client after a server restart: the old one reconnects with a backoff
            history.client = fresh
        done.append(fault)
    stepper.release()
    report = await result_of(handle)
    run = Run(report=report, wall=time.monotonic() - started, account_id=account_id, faults=done)
    if done:
        events = await AccountHistory(client, account_id).read()
        run.evidence = evidence(events, done)
        run.after = [after_fault(events, f) for f in done]
    return run


def evidence(events: list[tuple[int, Any]], faults: list[Fault]) -> list[str]:
    """Per fault, what shows it hit work in flight, from the account's history after the point
    where it struck and before the next fault struck (the next one waits for it)."""
    marks = [f.position for f in faults] + [events[-1][0] + 1]
    return [evidence_of(events, fault, [(p, e) for p, e in events if marks[k] < p < marks[k + 1]]) for k, fault in enumerate(faults)]


def evidence_of(events: list[tuple[int, Any]], fault: Fault, after: list[tuple[int, Any]]) -> str:
    """A workflow task that timed out or failed, or an activity retried, among the events `after`
    the fault. A server restart of a fraction of a second may leave none — the SDK retries its
    calls across the outage — so for a restart it is enough that the account's call in flight when
    the server died (scheduled, not closed) closed after the restart, on the same history; for a
    worker, that another worker took the account over (`takeover`). "" when none."""
    retry = next(((p, e) for p, e in after if retried(e)), None)
    if retry is not None:
        p, e = retry
        attempt = e.activity_task_started_event_attributes.attempt if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED else 0
        return f"event {p} {describe_event(e)}" + (f" (attempt {attempt})" if attempt else "")
    survived = (
        next(((call, p, e) for p, e in after if (call := closes(p, e)) is not None and call in fault.in_flight), None)
        if fault.kind == "server"
        else None
    )
    if survived is not None:
        call, p, e = survived
        return f"{describe_event(dict(events)[call])} (event {call}) in flight at the kill, closed after the restart: event {p} {describe_event(e)}"
    return takeover(events, fault, after) if fault.kind == "worker" else ""


async def wait_for_evidence(history: AccountHistory, fault: Fault, stepper: Stepper) -> None:
    """Until the fault's evidence is in the account's history (or the account closed)."""
    await poll_history(
        history,
        stepper,
        lambda events: (
            bool(evidence_of(events, fault, [(p, e) for p, e in events if p > fault.position])) or events[-1][1].event_type in CLOSED_EVENTS
        ),
    )


def takeover(events: list[tuple[int, Any]], fault: Fault, after: list[tuple[int, Any]]) -> str:
    """A worker killed while it held the account (its latest task ran there) and no task of it
    was started or retried: the account's next task went to the task queue rather than the dead
    worker's sticky queue. The work it held — the account's state, rebuilt from history — was
    then taken over by another worker: its next task ran there."""

    def started_by(e: Any) -> str:
        return e.workflow_task_started_event_attributes.identity if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED else ""

    held = next((started_by(e) for p, e in reversed(events) if p <= fault.position and started_by(e)), "")
    nxt = next(((p, started_by(e)) for p, e in after if started_by(e)), None)
    if not fault.killed or not held.startswith(fault.killed) or nxt is None or nxt[1].startswith(fault.killed):
        return ""
    return f"the account's next task (event {nxt[0]}) ran on {nxt[1]}, taking the account over from the killed {held}"


def after_fault(events: list[tuple[int, Any]], fault: Fault, limit: int = 30) -> str:
    """What the account's history shows after a fault struck (for a failure message)."""
    return ", ".join(f"{p} {describe_event(e)}" for p, e in events if p > fault.position)[: limit * 40]


def fault_plan(name: str, mid_day: list[int], calls: list[int], worker_kills: int = WORKER_KILLS, server_restarts: int = 1) -> list[tuple[int, str]]:
    """Seeded (by the scenario's name): after which of the account's mid-day commands each fault
    strikes — a server restart after one of its calls to its orders — in order."""
    rng = random.Random(f"crash-equivalence|{name}")
    restarts = sorted(rng.sample(calls, server_restarts))
    kills = sorted(rng.sample([n for n in mid_day if n not in restarts], worker_kills))
    return sorted([(n, "worker") for n in kills] + [(n, "server") for n in restarts])


async def plan_from(client: Client, name: str, undisturbed: Run, **counts: int) -> Plan:
    """The fault plan over the undisturbed run's mid-day commands: issued after the day's first
    event was applied (the second command on) and at least MARGIN before the stop. A server
    restart follows a call to the account's orders (an activity): while the server is down, that
    call and the orders' work are in flight."""
    spec = plan_scenario(name).spec
    events = await AccountHistory(client, undisturbed.account_id).read()
    clock, stop = ExchangeClock(events, spec.start), hms(spec.stop)
    issued = commands(events)
    times = [clock.at(e) for _, e in issued]
    assert stop <= times[-1] < stop + MARGIN, f"{name}: the account completed at {times[-1]:%H:%M:%S}, not at its stop {spec.stop}"
    mid_day = [n for n, when in enumerate(times, 1) if n > 1 and when <= stop - MARGIN]
    calls = [n for n in mid_day if issued[n - 1][1].event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    return Plan(fault_plan(name, mid_day, calls, **counts), times)


# ── the experiments ───────────────────────────────────────────────────────────────────────────
@dataclass
class Experiment:
    undisturbed: Run
    disturbed: Run
    workers: int  # worker processes that served the disturbed run


async def crash_experiment(name: str, directory: Path) -> Experiment:
    """Undisturbed, then with three worker kills and one server restart, on one server."""
    dev = DevServer(directory)
    await dev.start()
    workers: list[WorkerProcess] = []
    try:
        client = await connect(target_host=dev.address, namespace="default")
        queue = f"crash-{name}"
        workers.append(WorkerProcess(dev.address, queue))
        await workers[0].polling
        undisturbed = await run_scenario(client, name, queue, "undisturbed")
        started, notes = len(workers), []

        def ready(kind: str, events: list) -> bool:  # a worker fault kills the worker that holds the account
            return kind == "server" or workers[-1].serves(held_by(events))

        async def strike(fault: Fault, _events: list) -> Client | None:
            if fault.kind == "server":
                await dev.kill_and_restart()
                return await reconnect(dev.address)
            fault.killed = f"{workers[-1].proc.pid}@"
            notes.append(await workers[-1].kill())
            workers.append(WorkerProcess(dev.address, queue))  # takes over once it polls
            return None

        disturbed = await run_scenario(
            client, name, queue, "crashes", await plan_from(client, name, undisturbed), strike, ready, Stepper(lambda: workers[-1:])
        )
        disturbed.notes = [n for n in notes if n]
        return Experiment(undisturbed, disturbed, workers=len(workers) - started + 1)
    finally:
        for w in workers:
            await w.kill()
        await dev.stop()


async def two_workers_experiment(name: str, directory: Path) -> Experiment:
    """Two workers on the queue; mid-day, the one that ran the account's latest task is killed."""
    dev = DevServer(directory)
    await dev.start()
    workers: list[WorkerProcess] = []
    try:
        client = await connect(target_host=dev.address, namespace="default")
        queue = f"two-workers-{name}"
        workers += [WorkerProcess(dev.address, queue), WorkerProcess(dev.address, queue)]
        await asyncio.gather(*[w.polling for w in workers])
        undisturbed = await run_scenario(client, name, queue, "undisturbed")

        notes: list[str] = []

        async def strike(fault: Fault, events: list) -> None:
            identity = held_by(events)
            serving = [w for w in workers if w.serves(identity)]
            assert serving, f"the account's latest task ran on {identity}, not on one of the two workers"
            fault.killed = f"{serving[0].proc.pid}@"
            notes.append(await serving[0].kill())

        plan = await plan_from(client, name, undisturbed, worker_kills=1, server_restarts=0)
        disturbed = await run_scenario(client, name, queue, "one-killed", plan, strike=strike, stepper=Stepper(lambda: workers))
        disturbed.notes = [n for n in notes if n]
        return Experiment(undisturbed, disturbed, workers=2)
    finally:
        for w in workers:
            await w.kill()
        await dev.stop()


@pytest_asyncio.fixture(scope="module")
async def experiments(tmp_path_factory) -> AsyncIterator[dict[str, asyncio.Task]]:
    tasks = {name: asyncio.create_task(crash_experiment(name, tmp_path_factory.mktemp(f"crash-{name}"))) for name in SCENARIOS}
    tasks["two_workers"] = asyncio.create_task(two_workers_experiment(TWO_WORKERS_SCENARIO, tmp_path_factory.mktemp("two-workers")))
    yield tasks
    for task in tasks.values():
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


def describe(name: str, e: Experiment, what: str) -> str:
    lines = [
        f"{name}: undisturbed {e.undisturbed.wall:.1f}s wall, {what} {e.disturbed.wall:.1f}s wall "
        f"({e.workers} worker processes); digests {e.undisturbed.report.digest} / {e.disturbed.report.digest}"
    ]
    for fault, evidence in zip(e.disturbed.faults, e.disturbed.evidence):
        lines.append(
            f"  {fault.kind} SIGKILLed at {fault.exchange_time}, after the account's command {fault.command} "
            f"({fault.doing}) → {evidence or 'NO retried or timed-out task after it'}"
        )
    return "\n".join(lines)


def problems(name: str, e: Experiment) -> list[str]:
    found = []
    for label, run in (("undisturbed", e.undisturbed), ("disturbed", e.disturbed)):
        if not run.report.passed:
            found.append(f"the {label} run failed: {run.report.failures}")
    if e.disturbed.report.digest != e.undisturbed.report.digest:
        found.append(f"the digest changed through the faults: undisturbed {e.undisturbed.report.digest}, disturbed {e.disturbed.report.digest}")
    for f, ev, after in zip(e.disturbed.faults, e.disturbed.evidence, e.disturbed.after):
        if not ev:
            found.append(
                f"the {f.kind} fault at {f.exchange_time} (after command {f.command}) hit no work in flight: "
                f"no retried or timed-out task after it; the account's history after it: {after}"
            )
    found += e.disturbed.notes
    return [f"{name}: {p}" for p in found]


def fail_on(found: list[str]) -> None:
    """Fail with the messages alone: no traceback to format (see tests/test_scenarios.py)."""
    if found:
        pytest.fail("\n".join(found), pytrace=False)


def show(capsys, text: str) -> None:
    """The wall times and faults, on the terminal even when output is captured (`make test`)."""
    with capsys.disabled():
        print("\n" + text, flush=True)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_same_digest_through_worker_kills_and_a_server_restart(experiments, scenario_runs, capsys, name):
    e: Experiment = await experiments[name]
    show(capsys, describe(name, e, f"{WORKER_KILLS} worker kills + 1 server restart"))
    kinds = [f.kind for f in e.disturbed.faults]
    found = problems(name, e)
    if (kinds.count("worker"), kinds.count("server"), e.workers) != (WORKER_KILLS, 1, WORKER_KILLS + 1):
        found.append(f"{name}: faults {kinds} with {e.workers} worker processes")
    session, _ = await scenario_runs[name]  # another server, an in-process worker: the same digest
    if session.digest != e.undisturbed.report.digest:
        found.append(f"{name}: the session's run gave {session.digest}, this server's {e.undisturbed.report.digest}")
    fail_on(found)


async def test_same_digest_with_two_workers_one_killed_mid_day(experiments, capsys):
    e: Experiment = await experiments["two_workers"]
    show(capsys, describe(TWO_WORKERS_SCENARIO, e, "two workers, one killed"))
    found = problems(TWO_WORKERS_SCENARIO, e)
    if len(e.disturbed.faults) != 1:
        found.append(f"{TWO_WORKERS_SCENARIO}: {len(e.disturbed.faults)} faults, not one")
    fail_on(found)
