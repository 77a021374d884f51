"""The IBKR venue activities on their own task queue (default `risk-rig-ibkr`).

    ibkr_submit(order: IbkrOrder) -> list[ExecutionEvent]          idempotent by intent (orderRef); the whole history
    ibkr_cancel(intent_id: str) -> list[ExecutionEvent]            idempotent; the whole history; UNKNOWN_ORDER if IB has no such order
    ibkr_cancel_confirmed(IbkrCancel) -> CancelOutcome             cancel, wait for IB's last word: a verdict (for a replace)
    ibkr_modify(IbkrModify) -> ModifyOutcome                       IB's native modify (same order, new total / limit)
    ibkr_order_status(intent_id: str) -> VenueOrderStatus          asks IB (open, completed orders, executions)
    ibkr_executions_since(exec_cursor: str | None) -> list[ExecutionEvent]   FILLs / CORRECTIONs after that exec id

While the gateway is between connections the activities fail with the retryable
`IbkrNotConnected`; a cancel IB cannot accept from this client id fails non-retryable
`IbkrCannotCancel`. The worker runs activities only (no workflows): the order workflow on the
rig's queue calls them with `task_queue=RIG_IBKR_TASK_QUEUE`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from domain.execution import ExecutionEvent, VenueOrderStatus
from venues.ibkr.gateway import CannotCancel, IbkrGateway, NotConnected
from venues.ibkr.models import (
    IBKR_CANCEL,
    IBKR_CANCEL_CONFIRMED,
    IBKR_EXECUTIONS_SINCE,
    IBKR_MODIFY,
    IBKR_ORDER_STATUS,
    IBKR_SUBMIT,
    CancelOutcome,
    IbkrCancel,
    IbkrModify,
    IbkrOrder,
    ModifyOutcome,
)

__all__ = [
    "IBKR_CANCEL",
    "IBKR_CANCEL_CONFIRMED",
    "IBKR_EXECUTIONS_SINCE",
    "IBKR_MODIFY",
    "IBKR_ORDER_STATUS",
    "IBKR_SUBMIT",
    "IbkrActivities",
    "build_ibkr_worker",
]

T = TypeVar("T")


async def _call(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except NotConnected as err:
        raise ApplicationError(str(err), type="IbkrNotConnected", next_retry_delay=timedelta(seconds=2)) from None
    except CannotCancel as err:
        raise ApplicationError(str(err), type="IbkrCannotCancel", non_retryable=True) from None


class IbkrActivities:
    def __init__(self, gateway: IbkrGateway) -> None:
        self.gateway = gateway

    @activity.defn(name=IBKR_SUBMIT)
    async def submit(self, order: IbkrOrder) -> list[ExecutionEvent]:
        return await _call(lambda: self.gateway.submit(order))

    @activity.defn(name=IBKR_CANCEL)
    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        return await _call(lambda: self.gateway.cancel(intent_id))

    @activity.defn(name=IBKR_CANCEL_CONFIRMED)
    async def cancel_confirmed(self, request: IbkrCancel) -> CancelOutcome:
        return await _call(lambda: self.gateway.cancel_confirmed(request))

    @activity.defn(name=IBKR_MODIFY)
    async def modify(self, request: IbkrModify) -> ModifyOutcome:
        return await _call(lambda: self.gateway.modify(request))

    @activity.defn(name=IBKR_ORDER_STATUS)
    async def order_status(self, intent_id: str) -> VenueOrderStatus:
        return await _call(lambda: self.gateway.order_status(intent_id))

    @activity.defn(name=IBKR_EXECUTIONS_SINCE)
    async def executions_since(self, exec_cursor: str | None) -> list[ExecutionEvent]:
        return await self.gateway.executions_since(exec_cursor)

    def all(self) -> list[Any]:
        return [self.submit, self.cancel, self.cancel_confirmed, self.modify, self.order_status, self.executions_since]


def build_ibkr_worker(client: Client, gateway: IbkrGateway, task_queue: str | None = None, **worker_options: Any) -> Worker:
    return Worker(client, task_queue=task_queue or gateway.settings.task_queue, activities=IbkrActivities(gateway).all(), **worker_options)
