"""Temporal client operations on orders, shared by the CLI and by the rig's activities.

Each is idempotent (ids are intent ids) and never raises for an order that is gone: a closed or
missing workflow comes back as a clear answer, so no caller retries "not found" forever.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.enums import OrderState, ReconcileStatus
from domain.order import OrderReport
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    SA_ACCOUNT,
    UPDATE_ARRIVAL,
    UPDATE_CANCEL,
    UPDATE_REPLACE,
)
from protocol.messages import CancelRefusal, CancelRequest, CancelResult, ReplaceRequest, ReplaceResult
from protocol.order_record import OrderSnapshot, Reconciled
from protocol.parse import first_line

QUERY_TIMEOUT = timedelta(seconds=10)


def is_gone(err: BaseException) -> bool:
    """Not found, or closed: nothing more will come from that workflow run."""
    if isinstance(err, RPCError):
        return err.status == RPCStatusCode.NOT_FOUND or "already completed" in str(err)
    return False


async def reconcile_order(client: Client, intent_id: str) -> Reconciled:
    """Status from describe; state and fills from the order's own query (a closed workflow is
    replayed by a worker to answer it), so the fills its history recorded come back once each."""
    handle = client.get_workflow_handle(intent_id)
    try:
        desc = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return Reconciled(intent_id=intent_id, status=ReconcileStatus.NOT_FOUND, cause="no such workflow")
        raise
    status = ReconcileStatus(desc.status.name) if desc.status else ReconcileStatus.UNKNOWN
    cause = status.lower()
    if status is ReconcileStatus.TERMINATED:
        cause = "terminated from outside"
    try:
        snap = await asyncio.wait_for(handle.query(QUERY_STATE, result_type=OrderSnapshot, rpc_timeout=QUERY_TIMEOUT), QUERY_TIMEOUT.total_seconds())
    except Exception as err:  # noqa: BLE001 — an order that cannot answer is reported as such
        return Reconciled(intent_id=intent_id, status=status, cause=f"{cause}; state unreadable: {first_line(err, 200)}")
    return Reconciled(intent_id=intent_id, status=status, report=snap.report(released=snap.released), cause=cause)


def order_summary(raw: dict[str, Any]) -> str:
    """The UI's one-line summary, e.g. "SELL 500 ABC @ 101.24 LIMIT — SOFT_DERISK"."""
    price = raw.get("limit_price")
    priced = (
        f"@ {price:.2f} LIMIT"
        if isinstance(price, (int, float)) and not isinstance(price, bool) and abs(price) < 1e12
        else str(raw.get("order_type") or "MARKET")[:20]
    )
    kind = str(raw.get("kind") or "NEW")[:20]
    replaces = f" (replaces {str(raw['replaces'])[:80]})" if raw.get("replaces") else ""
    return f"{str(raw.get('side'))[:10]} {str(raw.get('quantity'))[:20]} {str(raw.get('symbol'))[:20]} {priced} — {kind}{replaces}"


def _start_options(raw: dict[str, Any], task_queue: str) -> dict[str, Any]:
    account = raw.get("account")
    attributes = TypedSearchAttributes([SearchAttributePair(SA_ACCOUNT, account)]) if isinstance(account, str) and 0 < len(account) <= 200 else None
    return dict(
        id=raw["intent_id"],
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=order_summary(raw),
        search_attributes=attributes,
    )


async def start_order(client: Client, task_queue: str, raw_intent: dict[str, Any]) -> None:
    """Start an OrderWorkflow with id = intent_id; an existing one (running or closed) wins."""
    try:
        await client.start_workflow(ORDER_WORKFLOW, raw_intent, **_start_options(raw_intent, task_queue))
    except WorkflowAlreadyStartedError:
        pass  # closed with this id already: the intent was executed once, that is the order


async def start_order_awaiting_arrival(client: Client, task_queue: str, raw_intent: dict[str, Any], deadline: float) -> Reconciled:
    """Start the order (or find it) and wait, up to `deadline` seconds, for its arrival at the
    venue — one round trip: the arrival update rides in the order's first workflow task."""
    intent_id = raw_intent["intent_id"]
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(ORDER_WORKFLOW, raw_intent, **_start_options(raw_intent, task_queue))
    try:
        report = await asyncio.wait_for(
            client.execute_update_with_start_workflow(UPDATE_ARRIVAL, start_workflow_operation=operation, result_type=OrderReport),
            deadline,
        )
        return Reconciled(intent_id=intent_id, status=ReconcileStatus.RUNNING, report=report)
    except (TimeoutError, WorkflowAlreadyStartedError, WorkflowUpdateFailedError, RPCError) as err:
        found = await reconcile_order(client, intent_id)  # closed already, or silent: read it back
        if not found.cause or found.alive:
            return found
        return found.model_copy(update={"cause": f"{found.cause} (arrival: {type(err).__name__})"})


async def cancel_via_client(client: Client, intent_id: str, request: CancelRequest, update: str = UPDATE_CANCEL) -> CancelResult:
    """Cancel through the update; a closed order answers from its final state (a repeat gets
    the first answer, a terminal order a clear refusal, a missing one says so)."""
    handle = client.get_workflow_handle(intent_id)
    try:
        return await handle.execute_update(update, request, result_type=CancelResult)
    except (WorkflowUpdateFailedError, RPCError) as err:
        return await _refused_cancel(client, intent_id, err)


async def _refused_cancel(client: Client, intent_id: str, err: Exception) -> CancelResult:
    try:  # a closed order that was canceled gives its first answer again: cancel is idempotent
        snap = await client.get_workflow_handle(intent_id).query(QUERY_STATE, result_type=OrderSnapshot, rpc_timeout=QUERY_TIMEOUT)
        if snap.cancel_result is not None:
            return snap.cancel_result
    except Exception:  # noqa: BLE001 — missing or unreadable: answered below
        pass
    found = await reconcile_order(client, intent_id)
    if found.report is None:
        return CancelResult(
            intent_id=intent_id,
            accepted=False,
            state=OrderState.REJECTED,
            filled_quantity=0,
            message=f"no order {intent_id}: {found.cause}",
            refusal=CancelRefusal.ORDER_CLOSED,
        )
    snap_state = found.report.state
    refusal = CancelRefusal.ORDER_CLOSED if snap_state.is_terminal else None
    return CancelResult(
        intent_id=intent_id,
        accepted=False,
        state=snap_state,
        filled_quantity=found.report.filled_quantity,
        message=_refusal_text(intent_id, snap_state, "cancel", err),
        refusal=refusal,
        report=found.report,
    )


async def replace_via_client(client: Client, intent_id: str, request: ReplaceRequest, update: str = UPDATE_REPLACE) -> ReplaceResult:
    handle = client.get_workflow_handle(intent_id)
    try:
        return await handle.execute_update(update, request, result_type=ReplaceResult)
    except (WorkflowUpdateFailedError, RPCError) as err:
        found = await reconcile_order(client, intent_id)
        state = found.report.state if found.report else OrderState.REJECTED
        filled = found.report.filled_quantity if found.report else 0
        message = _refusal_text(intent_id, state, "replace", err) if found.report else f"no order {intent_id}: {found.cause}"
        return ReplaceResult(
            intent_id=intent_id,
            accepted=False,
            state=state,
            filled_quantity=filled,
            message=message,
            refusal=CancelRefusal.ORDER_CLOSED if state.is_terminal or not found.report else None,
            report=found.report,
        )


def _refusal_text(intent_id: str, state: OrderState, action: str, err: Exception) -> str:
    if state.is_terminal:
        return f"order {intent_id} is already {state.value}: nothing to {action}"
    return first_line(err)  # a TimeoutError's str() is empty: its type
