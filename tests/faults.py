"""Helpers for liveness tests: reset a workflow to a chosen workflow task, wait on an account's
view, read a history's event types."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError

from protocol.contract import QUERY_STATE, risk_workflow_id
from protocol.messages import RiskView


async def completed_tasks(client: Client, workflow_id: str, run_id: str | None = None) -> list[int]:
    """Event ids of the run's WorkflowTaskCompleted events, oldest first."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return [e.event_id async for e in handle.fetch_history_events() if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]


async def reset(client: Client, workflow_id: str, which: str = "last", run_id: str | None = None, reason: str = "test reset") -> str:
    """Temporal's reset of the (latest) run to its first or last completed workflow task; the new run id."""
    if run_id is None:
        run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    tasks = await completed_tasks(client, workflow_id, run_id)
    assert tasks, f"{workflow_id} never completed a workflow task"
    point = tasks[0] if which == "first" else tasks[-1]
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=point,
            request_id=str(uuid.uuid4()),
        )
    )
    return response.run_id


async def view_of(client: Client, account: str) -> RiskView:
    return await client.get_workflow_handle(risk_workflow_id(account)).query(QUERY_STATE, result_type=RiskView)


async def until_view(client: Client, account: str, condition: Callable[[RiskView], bool], timeout: float = 30.0, what: str = "") -> RiskView:
    """The account's view once `condition` holds (polled); fails with the last view otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    view, error = None, None
    while True:
        try:
            view = await view_of(client, account)
            if condition(view):
                return view
        except RPCError as err:  # an account that does not answer its query: polled again until the deadline
            error = err
        if asyncio.get_running_loop().time() > deadline:
            if view is None:
                raise AssertionError(f"{what or 'condition'} not reached in {timeout:.0f}s: the account never answered ({error})")
            raise AssertionError(
                f"{what or 'condition'} not reached in {timeout:.0f}s: cycle {view.cycle}, "
                f"{len(view.open_orders)} open {[o.intent_id for o in view.open_orders][:10]}, "
                f"lost {[(o.intent_id, o.lost_cause) for o in view.lost][:10]}"
            )
        await asyncio.sleep(0.1)


async def cycles_advance(client: Client, account: str, by: int = 3, timeout: float = 20.0) -> RiskView:
    """The account keeps cycling: its cycle count moves on by `by`."""
    start = (await view_of(client, account)).cycle
    return await until_view(client, account, lambda v: v.cycle >= start + by, timeout, f"{by} more cycles after cycle {start}")


def drain(proc, into: list[str]) -> None:
    """Read a worker process's output for good (into `into`): a worker whose stdout pipe fills
    up blocks on its next log line, which looks exactly like a hung worker."""
    import threading

    threading.Thread(target=lambda: into.extend(f"[{proc.pid}] {line}" for line in proc.stdout), daemon=True).start()
