"""Temporal client calls made on a workflow's behalf: start orders, cancel/replace them, make
sure an account's risk workflow exists. Each is idempotent, so activity retries are safe."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.rules import RigConfig
from workflows.contract import ORDER_WORKFLOW, QUERY_STATE, RISK_WORKFLOW, UPDATE_CANCEL, UPDATE_REPLACE, risk_workflow_id
from workflows.messages import CancelRequest, CancelResult, OrderSnapshot, ReplaceRequest, ReplaceResult, RiskInput


class StartOrders(BaseModel):
    intents: list[dict[str, Any]]  # raw intents: the order workflow validates them itself


class CancelOrder(BaseModel):
    intent_id: str
    request: CancelRequest


class ReplaceOrder(BaseModel):
    intent_id: str
    request: ReplaceRequest


async def cancel_via_client(client: Client, intent_id: str, request: CancelRequest) -> CancelResult:
    """Cancel through the update; a closed order answers from its final state (a repeat gets
    the first answer, a terminal order a clear refusal)."""
    handle = client.get_workflow_handle(intent_id)
    try:
        return await handle.execute_update(UPDATE_CANCEL, request, result_type=CancelResult)
    except (WorkflowUpdateFailedError, RPCError) as err:
        snap = await handle.query(QUERY_STATE, result_type=OrderSnapshot)
        if snap.cancel_result is not None:
            return snap.cancel_result
        return CancelResult(intent_id=intent_id, accepted=False, state=snap.state, filled_quantity=snap.filled_quantity, message=_refusal(snap, "cancel", err))


async def replace_via_client(client: Client, intent_id: str, request: ReplaceRequest) -> ReplaceResult:
    handle = client.get_workflow_handle(intent_id)
    try:
        return await handle.execute_update(UPDATE_REPLACE, request, result_type=ReplaceResult)
    except (WorkflowUpdateFailedError, RPCError) as err:
        snap = await handle.query(QUERY_STATE, result_type=OrderSnapshot)
        return ReplaceResult(intent_id=intent_id, accepted=False, state=snap.state, filled_quantity=snap.filled_quantity, message=_refusal(snap, "replace", err))


def _refusal(snap: OrderSnapshot, action: str, err: Exception) -> str:
    if snap.state.is_terminal:
        return f"order {snap.intent_id} is already {snap.state.value}: nothing to {action}"
    cause = getattr(err, "cause", None)
    return str(cause or err)


def order_summary(raw: dict[str, Any]) -> str:
    """The UI's one-line summary, e.g. "SELL 500 ABC @ 101.24 LIMIT — SOFT_DERISK"."""
    price = raw.get("limit_price")
    priced = f"@ {price:.2f} LIMIT" if isinstance(price, (int, float)) else str(raw.get("order_type") or "MARKET")
    kind = raw.get("kind") or "NEW"
    replaces = f" (replaces {raw['replaces']})" if raw.get("replaces") else ""
    return f"{raw.get('side')} {raw.get('quantity')} {raw.get('symbol')} {priced} — {kind}{replaces}"


async def start_order(client: Client, task_queue: str, raw_intent: dict[str, Any]) -> None:
    """Start an OrderWorkflow with id = intent_id; an existing one (running or closed) wins."""
    try:
        await client.start_workflow(
            ORDER_WORKFLOW,
            raw_intent,
            id=raw_intent["intent_id"],
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=order_summary(raw_intent),
        )
    except WorkflowAlreadyStartedError:
        pass  # closed with this id already: the intent was executed once, that is the order


class OrderClientActivities:
    def __init__(self, client: Client, task_queue: str, default_config: RigConfig) -> None:
        self._client = client
        self._task_queue = task_queue
        self._default_config = default_config

    @activity.defn
    async def start_orders(self, batch: StartOrders) -> None:
        # Concurrently: a HARD step over a wide book starts hundreds of orders in one batch.
        await asyncio.gather(*[start_order(self._client, self._task_queue, raw) for raw in batch.intents])

    @activity.defn
    async def cancel_order(self, order: CancelOrder) -> CancelResult:
        return await cancel_via_client(self._client, order.intent_id, order.request)

    @activity.defn
    async def replace_order(self, order: ReplaceOrder) -> ReplaceResult:
        return await replace_via_client(self._client, order.intent_id, order.request)

    @activity.defn
    async def ensure_account(self, account: str) -> None:
        """Start the account's risk workflow with the worker's config unless it runs already."""
        await self._client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=self._default_config),
            id=risk_workflow_id(account),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Risk entity of account {account}",
        )

    def all(self) -> list:
        return [self.start_orders, self.cancel_order, self.replace_order, self.ensure_account]
