"""The shape of the fill-at-arrival path, read from histories: how many workflow tasks an order
takes and what it costs its account. Issue 13 brought an order that fills at arrival down to
one workflow task with one local activity: the pre-trade update, whose answer carries the
simulated venue's arrival (run at the account with the verdict, applied to its book there);
these numbers must not grow back unnoticed.

The order's counts and the account's update and signal counts are exact (the design: lower the
pins when the path gets cheaper); the account's workflow tasks are a bound (a busy account
batches several updates into one task). Orders go one after the other, so each order's
own cost is counted, not a burst's batching.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from domain.enums import OrderState
from protocol.contract import (
    QUERY_STATE,
    RISK_WORKFLOW,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput, RiskView
from tests.accounts import finish, intent, submit, with_fills
from tests.conftest import TASK_QUEUE

ORDERS = 4

# Pinned: what the fill-at-arrival path reaches now (issue 13). Raise only with a reason.
ORDER_WORKFLOW_TASKS = 1  # start → pre-trade with the arrival (one local activity) → FILLED
ORDER_LOCAL_ACTIVITIES = 1  # request_pretrade: the simulated venue's arrival runs at the account with the verdict
ORDER_HISTORY_EVENTS = 7  # started, 3 task events, 1 marker, 1 search-attribute upsert, completed
ORDER_SEARCH_ATTRIBUTE_UPSERTS = 1  # Account, the intent's attributes and the state, once at the end of the first task
# Per order, on the account: the pre-trade update (accepted + completed), nothing else — the
# account applied the arrival with the verdict, so the order sends no report.
ACCOUNT_UPDATES_ACCEPTED = 1
ACCOUNT_UPDATES_COMPLETED = 1
ACCOUNT_SIGNALS = 0
# The update takes one workflow task of the account when orders come one at a time.
ACCOUNT_WORKFLOW_TASKS_PER_ORDER = 1
ACCOUNT_EVENTS_PER_ORDER = 5  # 2 update events + 1 task × 3 events
# Once for the first order: it ends the account's quiet sleep (timer canceled) for a wait until
# the next cycle time (timer started). The account runs hour-long cycles here, so no cycle of
# its own falls inside the test; with one-minute cycles a cycle (a timer, a task, perhaps a
# quotes marker: ~6 events) is shared by all the orders of that minute.
ACCOUNT_WAKE_EVENTS = 2
CYCLE_SECONDS = 3600


def _name(event_type: EventType.ValueType) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def _types(handle: WorkflowHandle) -> list[str]:
    return [_name(e.event_type) async for e in handle.fetch_history_events()]


async def _quiet(account: WorkflowHandle, timeout: float = 10.0) -> list[str]:
    """The account's history once its first cycle is done and it sleeps (a timer, nothing since)."""
    seen: list[str] = []
    for _ in range(int(timeout / 0.1)):
        types = await _types(account)
        if types == seen and types[-1] == "TIMER_STARTED":
            return types
        seen = types
        await asyncio.sleep(0.1)
    raise AssertionError(f"the account never went quiet: {seen[-5:]}")


async def _settled(account: WorkflowHandle, intent_ids: set[str], timeout: float = 10.0) -> None:
    """Until the account has recorded each order as closed."""
    for _ in range(int(timeout / 0.05)):
        view = await account.query(QUERY_STATE, result_type=RiskView)
        if not intent_ids & {o.intent_id for o in view.open_orders}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the account never closed {sorted(intent_ids)}")


async def _open_account(env, account: str, config) -> WorkflowHandle:
    with env.with_time_skipping_disabled():  # real time: the hour-long cycle never comes
        return await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=with_fills(config, CYCLE_SECONDS, other=1.0), start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )


async def test_fill_at_arrival_is_one_workflow_task_and_one_update_on_the_account(env, client, worker, config, account):
    account_handle = await _open_account(env, account, config)
    before = Counter(await _quiet(account_handle))
    orders = []
    for i in range(ORDERS):
        handle = await submit(client, intent(account, f"shape{i}", order_type="MARKET", limit_price=None, quantity=10))
        snap = await finish(handle)
        assert snap.state is OrderState.FILLED, snap.history
        orders.append(handle)
    await _settled(account_handle, {h.id for h in orders})
    after = Counter(await _types(account_handle))

    for handle in orders:
        types = Counter(await _types(handle))
        shape = dict(sorted(types.items()))
        assert types["WORKFLOW_TASK_COMPLETED"] == ORDER_WORKFLOW_TASKS, f"{handle.id}: {shape}"
        assert types["WORKFLOW_TASK_SCHEDULED"] == ORDER_WORKFLOW_TASKS, f"{handle.id}: a task failed or timed out: {shape}"
        assert types["MARKER_RECORDED"] == ORDER_LOCAL_ACTIVITIES, shape
        assert types["ACTIVITY_TASK_SCHEDULED"] == types["TIMER_STARTED"] == types["SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED"] == 0, shape
        assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == ORDER_SEARCH_ATTRIBUTE_UPSERTS, shape
        assert sum(types.values()) <= ORDER_HISTORY_EVENTS, shape

    grown = after - before
    per_order = {k: v / ORDERS for k, v in sorted(grown.items())}
    assert grown["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"] == ACCOUNT_UPDATES_ACCEPTED * ORDERS, per_order
    assert grown["WORKFLOW_EXECUTION_UPDATE_COMPLETED"] == ACCOUNT_UPDATES_COMPLETED * ORDERS, per_order
    assert grown["WORKFLOW_EXECUTION_SIGNALED"] == ACCOUNT_SIGNALS * ORDERS, per_order
    assert grown["ACTIVITY_TASK_SCHEDULED"] == 0, f"the account ran an activity for orders that filled at arrival: {per_order}"
    assert grown["WORKFLOW_TASK_SCHEDULED"] <= ACCOUNT_WORKFLOW_TASKS_PER_ORDER * ORDERS, per_order
    assert sum(grown.values()) <= ACCOUNT_EVENTS_PER_ORDER * ORDERS + ACCOUNT_WAKE_EVENTS, per_order
    print(
        f"per order: order {sum(types.values())} events in {ORDER_WORKFLOW_TASKS} task; account {sum(grown.values()) / ORDERS:.2f} events: {per_order}"
    )
