"""Evidence, from the server, that a drill's fault hit work in flight.

A worker's identity is the SDK's default, `<pid>@<host>`; the server records it on the workflow
tasks it starts and completes and on the activities it runs. A worker that is frozen (SIGSTOP)
keeps its open polls: the server hands them tasks it cannot run, which is the work a kill then
interrupts. `hold_work` freezes a worker until it provably holds such a task; `interrupted` reads
back, after the fault, that each held task timed out or was retried elsewhere.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client
from temporalio.service import RPCError


def identity_of(proc: subprocess.Popen) -> str:
    return f"{proc.pid}@{socket.gethostname()}"


@dataclass(frozen=True)
class Held:
    """A task the server handed to a worker: a workflow task (by the event id of its scheduling)
    or an activity (by its activity id)."""

    workflow_id: str
    run_id: str
    kind: str  # "workflow task" | "activity"
    scheduled_event_id: int = 0
    activity_id: str = ""
    name: str = ""


async def events_of(client: Client, workflow_id: str, run_id: str | None = None) -> list:
    return [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]


def _unfinished_workflow_tasks(events: list, identity: str) -> list[int]:
    """Scheduled ids of workflow tasks started by `identity` that it never completed (a frozen
    worker's are still open, or timed out already)."""
    started = {
        e.workflow_task_started_event_attributes.scheduled_event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and e.workflow_task_started_event_attributes.identity == identity
    }
    completed = {
        e.workflow_task_completed_event_attributes.scheduled_event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.workflow_task_completed_event_attributes.identity == identity
    }
    return sorted(started - completed)


async def held_by(client: Client, workflow_ids: list[str], identity: str) -> list[Held]:
    """What `identity` holds among these workflows: workflow tasks it started and never completed,
    and activities the server says it is running (pending, STARTED, last worker = identity)."""
    held: list[Held] = []
    for workflow_id in workflow_ids:
        try:
            desc = await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            continue
        run_id = desc.run_id
        for scheduled in _unfinished_workflow_tasks(await events_of(client, workflow_id, run_id), identity):
            held.append(Held(workflow_id, run_id, "workflow task", scheduled_event_id=scheduled))
        for activity in desc.raw_description.pending_activities:
            if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and activity.last_worker_identity == identity:
                held.append(Held(workflow_id, run_id, "activity", activity_id=activity.activity_id, name=activity.activity_type.name))
    return held


async def hold_work(
    client: Client,
    proc: subprocess.Popen,
    workflow_ids: Callable[[], list[str]],
    nudge: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 60.0,
) -> list[Held]:
    """Freeze `proc` (SIGSTOP) until the server has handed it work among `workflow_ids()`; the
    worker stays frozen (the caller kills it or sends SIGCONT). `nudge` makes more work (a signal,
    new orders). A worker frozen while busy has no poll open at the server: it is let go for a
    moment and frozen again. Fails, naming the worker, if no work ever reaches it."""
    identity = identity_of(proc)
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGSTOP)
        for _ in range(8):
            if nudge is not None:
                await nudge()
            await asyncio.sleep(0.25)
            held = await held_by(client, workflow_ids(), identity)
            if held:
                return held
        assert time.monotonic() < deadline, f"worker {identity}, frozen again and again for {timeout:.0f}s, was never handed a task"
        proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.3)


def _activity_ids(events: list) -> dict[int, str]:
    return {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def timed_out_or_retried(events: list, held: Held) -> bool:
    """After the fault, the held task timed out, or the activity ran again (attempt > 1)."""
    if held.kind == "workflow task":
        return any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
            and e.workflow_task_timed_out_event_attributes.scheduled_event_id == held.scheduled_event_id
            for e in events
        )
    scheduled = [event_id for event_id, activity_id in _activity_ids(events).items() if activity_id == held.activity_id]
    return any(
        (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
            and e.activity_task_started_event_attributes.attempt > 1
        )
        or (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
            and e.activity_task_timed_out_event_attributes.scheduled_event_id in scheduled
        )
        for e in events
    )


async def interrupted(client: Client, held: list[Held]) -> list[str]:
    """Each held task, read back after the fault: [] when every one timed out or was retried;
    else what was not."""
    missing = []
    for h in held:
        if not timed_out_or_retried(await events_of(client, h.workflow_id, h.run_id), h):
            missing.append(f"{h.kind} {h.name or h.scheduled_event_id} of {h.workflow_id} neither timed out nor was retried")
    return missing


async def completed_activity(client: Client, held: Held, identity: str) -> bool:
    """The held activity completed, on its first attempt, by `identity` (a drained worker)."""
    events = await events_of(client, held.workflow_id, held.run_id)
    scheduled = [event_id for event_id, activity_id in _activity_ids(events).items() if activity_id == held.activity_id]
    started = {
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        and e.activity_task_started_event_attributes.attempt == 1
    }
    return any(
        e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.started_event_id in started
        and e.activity_task_completed_event_attributes.identity == identity
        for e in events
    )


async def identities_that_completed(client: Client, workflow_ids: list[str]) -> set[str]:
    """Every worker identity that completed a workflow task or an activity of these workflows."""
    seen: set[str] = set()
    for workflow_id in workflow_ids:
        async for wf in client.list_workflows(f'WorkflowId="{workflow_id}"'):
            for e in await events_of(client, workflow_id, wf.run_id):
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    seen.add(e.workflow_task_completed_event_attributes.identity)
                elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    seen.add(e.activity_task_completed_event_attributes.identity)
    return seen


async def activity_in_flight(client: Client, proc: subprocess.Popen, workflow_ids: list[str], timeout: float = 30.0) -> Held:
    """Freeze `proc` at a moment it is running an activity (sampled: stop, look, go on) and
    return that activity; the worker stays frozen."""
    identity = identity_of(proc)
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGSTOP)
        running = [h for h in await held_by(client, workflow_ids, identity) if h.kind == "activity"]
        if running:
            return running[0]
        proc.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline, f"worker {identity} ran no activity of {workflow_ids} in {timeout:.0f}s"
        await asyncio.sleep(0.03)


def closed_after(events: list, held: Held, after: int) -> bool:
    """The held workflow task was closed (completed, failed or timed out) only after event
    `after`: it was still in flight when the history stood there (a server killed at that point)."""
    closing = (
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    )
    ids = [
        e.event_id
        for e in events
        if e.event_type in closing
        and (
            e.workflow_task_completed_event_attributes.scheduled_event_id
            or e.workflow_task_failed_event_attributes.scheduled_event_id
            or e.workflow_task_timed_out_event_attributes.scheduled_event_id
        )
        == held.scheduled_event_id
    ]
    return bool(ids) and min(ids) > after


async def finished_or_why(client: Client, handles: list, finish: Callable[[Any], Awaitable[Any]], timeout: float, account_id: str) -> list:
    """Every order's end (`finish` of each handle) within `timeout`; past it, fails saying what the
    server shows: the orders still open and the tail of the account's history (a stall under load
    is then readable from CI's output, not guessed)."""
    try:
        return await asyncio.wait_for(asyncio.gather(*[finish(h) for h in handles]), timeout=timeout)
    except TimeoutError:
        account = await events_of(client, account_id)
        tail = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in account[-12:]]
        timed_out = sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT for e in account)
        open_orders = []
        for h in handles:
            events = await events_of(client, h.id)
            last = EventType.Name(events[-1].event_type).removeprefix("EVENT_TYPE_") if events else "none"
            if not last.startswith("WORKFLOW_EXECUTION_"):
                open_orders.append(f"{h.id}({len(events)} events, last {last})")
        raise AssertionError(
            f"not every order ended within {timeout:.0f} s: open {open_orders[:10]} of {len(handles)}; "
            f"account: {len(account)} events, {timed_out} workflow task(s) timed out, last {tail}"
        ) from None
