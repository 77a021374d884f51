"""An order's venue seam: what an order asks of its venue directly — to be placed (a replacement,
or any order at a broker), to be canceled, whether a replacement would pass the venue's own
checks. The simulated exchange answers as local activities (venues/sim/activities.py, pure); a
broker through its gateway's activities on the gateway's own task queue (venues/ibkr).

A broker's cancel comes back with a verdict (`CancelOutcome`): final (CANCELED, EXPIRED, FILLED,
REJECTED — what filled will not change), still pending, refused, or an order the broker does not
know. A gateway that stays away is no verdict: the order keeps its state and the account's audit
reads it back.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.execution import ExecKind, ExecutionEvent
    from domain.models import Intent
    from protocol.messages import PretradeReply, VenueKind
    from venues.ibkr.models import (
        DEFAULT_IBKR_TASK_QUEUE,
        IBKR_CANCEL_CONFIRMED,
        IBKR_SUBMIT,
        CancelOutcome,
        CancelVerdict,
        IbkrCancel,
        IbkrOrder,
    )
    from venues.sim.activities import sim_cancel, sim_precheck, sim_submit

LOCAL = timedelta(seconds=10)
GATEWAY_CALL = timedelta(seconds=60)
GATEWAY_GIVES_UP = timedelta(minutes=10)
BROKER_CANCEL_WAIT = 5.0  # seconds the gateway waits for the broker's last word on a cancel
BROKER_LAST_WORD = 30.0  # … and when asked again for it, before a replacement may be placed
# The gateway's activities run on its own task queue (the IB session lives there); a gateway that
# stays away past the schedule-to-close is no answer, never a stuck order.
GATEWAY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), non_retryable_error_types=["IbkrCannotCancel"])


class OrderVenue:
    def __init__(self, reply: PretradeReply) -> None:
        self._reply = reply
        self.broker = reply.venue is VenueKind.IBKR
        self._queue = reply.venue_task_queue or DEFAULT_IBKR_TASK_QUEUE

    async def submit(self, intent: Intent, cum_qty: int) -> list[ExecutionEvent]:
        if self.broker:
            return await self._gateway_events(IBKR_SUBMIT, _ibkr_order(intent))
        return await workflow.execute_local_activity(sim_submit, self._reply.sim_order(cum_qty=cum_qty), start_to_close_timeout=LOCAL)

    async def cancel(self, intent_id: str, cum_qty: int, wait: float = BROKER_CANCEL_WAIT) -> CancelOutcome | None:
        """The venue's answer to a cancel; None when the broker's gateway did not answer. A broker's
        gateway waits up to `wait` seconds for the broker's last word (asked again, it never sends
        the cancel twice); the wait is the activity's, so a time-skipped clock holds meanwhile."""
        if self.broker:
            return await self._gateway_cancel(intent_id, wait)
        events = await workflow.execute_local_activity(sim_cancel, self._reply.sim_order(cum_qty=cum_qty), start_to_close_timeout=LOCAL)
        filled = sum(e.last_qty for e in events if e.kind is ExecKind.FILL)
        verdict = CancelVerdict.FILLED if filled else CancelVerdict.CANCELED
        return CancelOutcome(intent_id=intent_id, verdict=verdict, cum_qty=cum_qty + filled, events=events)

    async def precheck(self, replacement: Intent) -> str | None:
        """What the venue would refuse about a replacement before anything changes (the simulated
        venue's collar); a broker checks the replacement itself when it is placed."""
        if self.broker:
            return None
        order = self._reply.sim_order().model_copy(update={"intent": replacement, "cum_qty": 0})
        refusal: str | None = await workflow.execute_local_activity(sim_precheck, order, start_to_close_timeout=LOCAL)
        return refusal

    async def _gateway_events(self, activity: str, arg: IbkrOrder) -> list[ExecutionEvent]:
        try:
            events: list[ExecutionEvent] = await workflow.execute_activity(
                activity,
                arg,
                result_type=list[ExecutionEvent],
                task_queue=self._queue,
                start_to_close_timeout=GATEWAY_CALL,
                schedule_to_close_timeout=GATEWAY_GIVES_UP,
                retry_policy=GATEWAY_RETRY,
            )
            return events
        except ActivityError as err:
            workflow.logger.error("broker gateway %s for %s failed: %s", activity, arg.intent_id, err.cause or err)
            return []

    async def _gateway_cancel(self, intent_id: str, wait: float) -> CancelOutcome | None:
        try:
            outcome: CancelOutcome = await workflow.execute_activity(
                IBKR_CANCEL_CONFIRMED,
                IbkrCancel(intent_id=intent_id, wait_seconds=wait),
                result_type=CancelOutcome,
                task_queue=self._queue,
                start_to_close_timeout=GATEWAY_CALL,
                schedule_to_close_timeout=GATEWAY_GIVES_UP,
                retry_policy=GATEWAY_RETRY,
            )
            return outcome
        except ActivityError as err:
            workflow.logger.error("broker gateway cancel of %s failed: %s", intent_id, err.cause or err)
            return None


def _ibkr_order(intent: Intent) -> IbkrOrder:
    return IbkrOrder(
        intent_id=intent.intent_id,
        account=intent.account,
        symbol=intent.symbol,
        side=intent.side.value,
        quantity=intent.quantity,
        order_type=intent.order_type.value,
        limit_price=intent.limit_price,
    )
