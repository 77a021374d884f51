"""What the risk workflow asks of its orders, as activities: start them (arrival awaited),
deliver the simulated venue's executions, cancel and replace them, read them back.

The account never waits on another workflow with a bare timer: under time skipping a timer is
skipped at once, while an activity in flight holds the clock. So every wait for an order
happens here, with a deadline; an order that is gone or silent comes back `Reconciled` from the
server (its status and its recorded fills), never as an exception that stalls the cycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.client_ops import (
    cancel_via_client,
    reconcile_order,
    replace_via_client,
    start_order_awaiting_arrival,
)
from domain.enums import PriceRule, ReconcileStatus
from domain.order import OrderReport
from protocol.contract import (
    QUERY_STATE,
    UPDATE_CANCEL,
    UPDATE_RIG_CANCEL,
    UPDATE_RIG_REPLACE,
    UPDATE_VENUE_EXECUTIONS,
    risk_workflow_id,
)
from protocol.messages import (
    CancelResult,
    ReplaceRequest,
    ReplaceResult,
    RigReplaceRequest,
    RiskView,
)
from protocol.order_commands import CancelOrders, Delivery, ReplaceOrder, ReplaceOrders, StartOrders, VenueStep
from protocol.order_record import Reconciled

ORDER_DEADLINE_SECONDS = 20.0  # how long one order may take to answer before it is read back
CONCURRENCY = 64
HEARTBEAT_EVERY_SECONDS = 2.0
T = TypeVar("T")


async def _bounded(items: list[T], call: Callable[[T], Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> Any:
        async with gate:
            return await call(item)

    return await asyncio.gather(*[one(i) for i in items])


async def _heartbeating(work: Awaitable[T]) -> T:
    """Run `work`, heartbeating meanwhile: a worker killed mid-call is noticed after the calls'
    heartbeat timeout (workflows/account/orders.py CALL_HEARTBEAT), not after their 2-minute start-to-close."""
    task = asyncio.ensure_future(work)
    try:
        while not (await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS))[0]:
            activity.heartbeat()
        return task.result()
    except BaseException:
        task.cancel()
        raise


class AccountCalls:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    async def start_orders(self, batch: StartOrders) -> list[Reconciled]:
        return await _heartbeating(
            _bounded(batch.intents, lambda raw: start_order_awaiting_arrival(self._client, self._task_queue, raw, ORDER_DEADLINE_SECONDS))
        )

    @activity.defn
    async def deliver_executions(self, step: VenueStep) -> list[Reconciled]:
        return await _heartbeating(self._deliver_executions(step))

    async def _deliver_executions(self, step: VenueStep) -> list[Reconciled]:
        delivered = await _bounded(step.deliveries, self._deliver)
        audited = await _bounded(step.audit, lambda intent_id: reconcile_order(self._client, intent_id))
        return delivered + audited

    async def _deliver(self, delivery: Delivery) -> Reconciled:
        handle = self._client.get_workflow_handle(delivery.intent_id)
        try:
            report = await asyncio.wait_for(
                handle.execute_update(UPDATE_VENUE_EXECUTIONS, delivery.events, result_type=OrderReport), ORDER_DEADLINE_SECONDS
            )
            return Reconciled(intent_id=delivery.intent_id, status=ReconcileStatus.RUNNING, report=only_delivered_fills(report, delivery))
        except (TimeoutError, WorkflowUpdateFailedError, RPCError):
            return await reconcile_order(self._client, delivery.intent_id)

    @activity.defn
    async def cancel_orders(self, batch: CancelOrders) -> list[CancelResult]:
        return await _heartbeating(
            _bounded(batch.orders, lambda o: cancel_via_client(self._client, o.intent_id, o.request, UPDATE_RIG_CANCEL if o.rig else UPDATE_CANCEL))
        )

    @activity.defn
    async def replace_orders(self, batch: ReplaceOrders) -> list[ReplaceResult]:
        return await _heartbeating(_bounded(batch.orders, self._replace))

    async def _replace(self, order: ReplaceOrder) -> ReplaceResult:
        if order.kind is None:
            return await replace_via_client(self._client, order.intent_id, ReplaceRequest(quantity=order.quantity, limit_price=order.limit_price))
        request = RigReplaceRequest(
            quantity=order.quantity, limit_price=order.limit_price, kind=order.kind, price_rule=order.price_rule or PriceRule.GIVEN
        )
        return await replace_via_client(self._client, order.intent_id, request, UPDATE_RIG_REPLACE)

    @activity.defn
    async def account_view(self, account: str) -> RiskView:
        """An account's state, for a scenario that must say where it stood."""
        return await self._client.get_workflow_handle(risk_workflow_id(account)).query(QUERY_STATE, result_type=RiskView)

    def all(self) -> list:
        return [self.start_orders, self.deliver_executions, self.cancel_orders, self.replace_orders, self.account_view]


def only_delivered_fills(report: OrderReport, delivery: Delivery) -> OrderReport:
    """The order's answer with the fills of this delivery only (and any fill one of them
    corrects): the account has booked the earlier ones, and an answer carrying every fill of a
    busy order grew past the payload limit over a day. A retried delivery answers its own again."""
    delivered = {e.exec_id for e in delivery.events if e.exec_id}
    corrected = {f.corrects for f in report.fills if f.fill_id in delivered and f.corrects}
    return report.model_copy(update={"fills": [f for f in report.fills if f.fill_id in delivered or f.fill_id in corrected]})
