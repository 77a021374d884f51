"""Issue 9: many orders on one account. No burst of them can stall it (here); 3,000 open at once
(tests_scale/test_three_thousand_orders.py, `make test-scale`): the per-cycle fan-out stays under
the server's per-workflow limits, the account keeps cycling and its history stays bounded.

Each test runs its own worker process (`python -m worker`, as deployed) on its own task queue:
an account wedged here cannot take the session's shared worker down with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client

from protocol.contract import (
    ORDER_WORKFLOW,
    RISK_WORKFLOW,
    UPDATE_SET_SESSION,
    account_task_queue,
    risk_workflow_id,
)
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from protocol.messages import RiskInput
from tests.accounts import intent, with_fills
from tests.drills import ended, wait_polling, worker_process
from tests.faults import drain, until_view

SYMBOLS = ("AAPL", "MSFT", "XOM", "KO", "JPM", "CVX", "WMT", "DUK")


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """History length of every run of the workflow (visibility lists the runs, describe counts)."""
    runs = [wf async for wf in client.list_workflows(f'WorkflowId="{workflow_id}"')]
    return [(await client.get_workflow_handle(workflow_id, run_id=r.run_id).describe()).history_length for r in runs]


async def failed_tasks(client: Client, workflow_id: str) -> list[str]:
    """Why the account's workflow tasks failed (latest run), if they did: a wedged account says so at once."""
    events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    return [
        e.workflow_task_failed_event_attributes.failure.message[:300]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    ]  # new events arrived: benign


@asynccontextmanager
async def own_worker(env, prefix: str, account: str) -> AsyncIterator[tuple[Client, str, list[str]]]:
    """`python -m worker` on a task queue of this test's (its output drained into the log it yields),
    and a client of the session's server; the worker is killed when the test ends."""
    address = env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"{prefix}-{account}"
    proc = worker_process(address, queue)
    try:
        await wait_polling(proc)
        log: list[str] = []
        drain(proc, log)
        yield client, queue, log
    finally:
        await ended(proc)


async def open_passive_account(client: Client, config, account: str, queue: str):
    """Orders of one share that never fill, on a large equity: no limit refuses any of them."""
    rules = with_fills(config, 1, other=0.0, partial_fill_probability=0.0, cancel_cross_probability=0.0)
    return await client.start_workflow(
        RISK_WORKFLOW,
        RiskInput(account=account, config=rules, equity=1e10, start_exchange_time="11:00", synthetic=True),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(queue),
    )


def raw_order(config, account: str, n: int) -> dict:
    symbol = SYMBOLS[n % len(SYMBOLS)]
    return intent(account, f"m{n:04d}", symbol=symbol, quantity=1, limit_price=config.universe.by_symbol[symbol].reference_price)


async def test_a_burst_of_orders_larger_than_the_workers_task_slots_cannot_starve_its_account(env, config, account):
    """150 desk orders at once on one worker (100 workflow-task slots by default): each order's
    first workflow task holds a slot while its pre-trade (a local activity) waits for the
    account's Update, which needs a workflow task — and a slot — of its own."""
    async with own_worker(env, "burst", account) as (client, queue, _log):
        handle = await open_passive_account(client, config, account, queue)
        started = time.monotonic()
        await asyncio.gather(
            *[client.start_workflow(ORDER_WORKFLOW, raw_order(config, account, n), id=f"{account}-m{n:04d}", task_queue=queue) for n in range(150)]
        )
        view = await until_view(
            client, account, lambda v: v.open_order_count == 150, timeout=60, what="150 orders of a burst judged by their account"
        )
        print(f"\na burst of 150 orders judged in {time.monotonic() - started:.1f}s")
        assert not view.lost
        await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "16:29:58"}, result_type=str)
        await until_view(client, account, lambda v: not v.open_order_count, timeout=60, what="the burst expired at the close")
