"""Helpers for order tests: an account's risk workflow with test rules, and order submission."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from domain.rules import RigConfig
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    RISK_WORKFLOW,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput
from protocol.order_record import OrderSnapshot
from tests.conftest import TASK_QUEUE

ORDER_TEST_CYCLE_SECONDS = 1


def with_fills(config: RigConfig, cycle_seconds: int | None = None, **fills: float) -> RigConfig:
    rules = config.rules.model_copy(update={"fills": config.rules.fills.model_copy(update=fills)})
    if cycle_seconds is not None:
        rules = rules.model_copy(update={"risk_cycle": rules.risk_cycle.model_copy(update={"cycle_seconds": cycle_seconds})})
    return config.model_copy(update={"rules": rules})


async def open_account(
    env: WorkflowEnvironment, account: str, config: RigConfig, start: str = "11:00", seed: int = 3, **fills: float
) -> WorkflowHandle:
    """The account's risk workflow on real time with one-second cycles: orders submitted by a
    test land at a predictable exchange time (a time-skipped account would race ahead of them)."""
    with env.with_time_skipping_disabled():
        return await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(
                account=account, config=with_fills(config, ORDER_TEST_CYCLE_SECONDS, **fills), seed=seed, start_exchange_time=start, synthetic=True
            ),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )


def intent(account: str, name: str, **fields: Any) -> dict[str, Any]:
    base = {"intent_id": f"{account}-{name}", "account": account, "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 190.0}
    return base | fields


async def submit(client: Client, raw: dict[str, Any]) -> WorkflowHandle:
    return await client.start_workflow(
        ORDER_WORKFLOW,
        raw,
        id=raw["intent_id"],
        task_queue=TASK_QUEUE,
        result_type=OrderSnapshot,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def finish(handle: WorkflowHandle) -> OrderSnapshot:
    result = await handle.result()
    return result if isinstance(result, OrderSnapshot) else OrderSnapshot.model_validate(result)


async def wait_state(handle: WorkflowHandle, states, timeout: float = 30.0) -> OrderSnapshot:
    """The order's snapshot once its state is one of `states` (polled); fails with the last state."""
    deadline = time.monotonic() + timeout
    while True:
        snap = await handle.query(QUERY_STATE, result_type=OrderSnapshot)
        if snap.state in states or time.monotonic() > deadline:
            assert snap.state in states, f"{handle.id} never reached {states}: {snap.state}"
            return snap
        await asyncio.sleep(0.05)
