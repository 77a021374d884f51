"""What an order asks of its account and of other orders, as local activities of the order's
own workflow task: one round trip each, and an order that fills at arrival finishes in one task.

- pre-trade: an Update on `risk-<account>` whose update id is `<intent id>@<order run id>` (the
  server dedupes a retried request of the run; the account's ledger answers any other repeat, a
  reset order's included, with its record of the order);
- a replace's full check, the same way (update id = the replacement's intent id);
- reports: a signal (fire and forget; the account reconciles whatever it misses);
- the replacement order: started with its arrival awaited in the same call.
A missing or closed account is an answer (UNKNOWN_ACCOUNT), never a retry loop.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.client_ops import is_gone, start_order_awaiting_arrival
from domain.enums import RejectReason
from protocol.account_requests import AccountPretrade, AccountReplaceCheck, AccountReport, StartReplacement
from protocol.contract import (
    ACCOUNT_BUSY,
    SIGNAL_ORDER_REPORT,
    UPDATE_PRETRADE,
    UPDATE_REPLACE_CHECK,
    risk_workflow_id,
)
from protocol.messages import PretradeReply
from protocol.order_record import Reconciled

ARRIVAL_DEADLINE_SECONDS = 20.0


class OrderCalls:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    async def request_pretrade(self, call: AccountPretrade) -> PretradeReply:
        # Update id = intent id @ the order's run: a retried request of the same run is deduped by
        # the server, while a reset order (a new run) reaches the handler, which answers with the
        # account's record (fills included) instead of the server's cached first verdict.
        return await self._ask(call.account, UPDATE_PRETRADE, call.request, f"{call.request.intent_id}@{activity.info().workflow_run_id}")

    @activity.defn
    async def request_replace_check(self, call: AccountReplaceCheck) -> PretradeReply:
        replacement_id = str(call.check.raw_replacement.get("intent_id"))
        # Its own id space: the replacement's pre-trade request later uses "<intent id>@<run id>".
        # One id per replace request (this call's activity id in the order's run, the same on every
        # retry of it): a refused replace leaves the generation unused, and the next replace of the
        # same order asks for the same replacement id — it must be judged, not answered from the
        # server's cache of the refused request.
        info = activity.info()
        return await self._ask(
            call.account, UPDATE_REPLACE_CHECK, call.check, f"replace-check:{replacement_id}@{info.workflow_run_id}/{info.activity_id}"
        )

    @activity.defn
    async def report_to_account(self, call: AccountReport) -> bool:
        """False when the account is gone: the order carries on; a reopened account reconciles."""
        try:
            await self._client.get_workflow_handle(risk_workflow_id(call.account)).signal(SIGNAL_ORDER_REPORT, call.report)
            return True
        except RPCError as err:
            if is_gone(err):
                activity.logger.warning("account %s is gone; report of %s not delivered", call.account, call.report.intent_id)
                return False
            raise

    @activity.defn
    async def start_replacement(self, call: StartReplacement) -> Reconciled:
        return await start_order_awaiting_arrival(self._client, self._task_queue, call.raw_intent, ARRIVAL_DEADLINE_SECONDS)

    async def _ask(self, account: str, update: str, payload: BaseModel, update_id: str) -> PretradeReply:
        handle = self._client.get_workflow_handle(risk_workflow_id(account))
        try:
            return await handle.execute_update(update, payload, id=update_id, result_type=PretradeReply)
        except WorkflowUpdateFailedError as err:  # the account's validator refused the request
            message = str(err.cause or err)[:500]
            if isinstance(err.cause, ApplicationError) and err.cause.type == ACCOUNT_BUSY:  # starting, continuing as new
                raise RuntimeError(f"account {account} asks to ask again: {message}") from None  # the local activity retries
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message=message)
        except RPCError as err:
            if not is_gone(err):
                raise  # transient (resource exhausted, unavailable): the activity retries
            return PretradeReply(approved=False, reason=RejectReason.UNKNOWN_ACCOUNT, message=await self._why_unknown(account))

    async def _why_unknown(self, account: str) -> str:
        try:
            desc = await self._client.get_workflow_handle(risk_workflow_id(account)).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return f"account {account!r} is not open: open it with `rig account open {account} --equity N`"
        status = desc.status.name if desc.status else "closed"
        return f"account {account!r} is closed ({status}): `rig account reopen {account}` brings it back with its book"

    def all(self) -> list:
        return [self.request_pretrade, self.request_replace_check, self.report_to_account, self.start_replacement]
