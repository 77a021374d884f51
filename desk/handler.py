"""The rig's side of the desk API: the Nexus service handler, run by the rig's worker in the rig's
namespace on the orders' task queue.

Who is asking: the endpoint the request was addressed to (`nexus.info().endpoint`), which the
server sets from the route it dispatched; one endpoint per desk (config/desks.yaml). Nothing the
caller sends is taken as identity — not headers, and not the request's links (a caller's own
`Nexus-Link` header replaces the link to its workflow, seen on the dev server).

Refusals: an account the desk may not trade is UNAUTHORIZED; an order that is not on one of the
desk's accounts is "no order" (its existence is not revealed); the risk cycle's own orders are
not the desk's to cancel or replace. Malformed input never gets here: the models refuse it when
the request is decoded (BAD_REQUEST), and the desk's own workflows check first, in one line.

All operations are synchronous: a submit starts the OrderWorkflow (id = intent id, USE_EXISTING /
REJECT_DUPLICATE, as every other path) and answers with the account's verdict from the order's
first workflow task. A workflow-run operation would answer only when the order closes (its
workflow's result), possibly at the close of the day, and would tie the order's lifetime to the
desk's caller workflow; each operation here is idempotent, so the Nexus machinery's retry of a
timed-out request is harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import nexusrpc
from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from temporalio import nexus
from temporalio.client import Client
from temporalio.service import RPCError

from activities.client_ops import (
    cancel_via_client,
    replace_via_client,
    start_order_awaiting_arrival,
)
from desk.contract import (
    AccountRef,
    DeskCancel,
    DeskOrder,
    DeskReplace,
    DeskService,
    OrderRef,
    SubmitAnswer,
    Verdict,
)
from desk.registry import Desk, DeskRegistry
from domain.enums import CancelReason, OrderState
from protocol.contract import QUERY_STATE, risk_workflow_id
from protocol.messages import CancelRequest, CancelResult, ReplaceRequest, ReplaceResult, RiskView
from protocol.order_record import OrderSnapshot
from protocol.parse import first_line

QUERY_TIMEOUT = timedelta(seconds=5)
# A sync operation answers within the server's request timeout (10 s by default): the verdict is
# awaited this long at most, and never past the request's own deadline.
VERDICT_WAIT_SECONDS = 5.0
DEADLINE_MARGIN_SECONDS = 1.0


def _refused(message: str) -> nexusrpc.OperationError:
    return nexusrpc.OperationError(message, state=nexusrpc.OperationErrorState.FAILED)


@service_handler(service=DeskService)
class DeskHandler:
    def __init__(self, desks: DeskRegistry, task_queue: str) -> None:
        self._desks = desks
        self._task_queue = task_queue  # where orders run (the rig worker's orders queue)

    # ── operations ───────────────────────────────────────────────────────────────────────────
    @sync_operation
    async def submit(self, ctx: StartOperationContext, order: DeskOrder) -> SubmitAnswer:
        desk = self._desk()
        self._entitled(desk, order.account)
        client = nexus.client()
        await start_order_awaiting_arrival(client, self._task_queue, order.raw_intent(), self._verdict_wait(ctx))
        snap = await self._order(client, order.intent_id)
        if snap is None or snap.account != order.account:  # the id is another account's order (or not an order)
            raise _refused(f"intent id {order.intent_id} is taken: submit the order under a new id")
        return SubmitAnswer(intent_id=order.intent_id, verdict=_verdict(snap.state), order=snap)

    @sync_operation
    async def cancel(self, ctx: StartOperationContext, request: DeskCancel) -> CancelResult:
        client = nexus.client()
        await self._own_order(client, request.intent_id, "cancel")
        return await cancel_via_client(client, request.intent_id, CancelRequest(reason=CancelReason.USER, note=request.note))

    @sync_operation
    async def replace(self, ctx: StartOperationContext, request: DeskReplace) -> ReplaceResult:
        client = nexus.client()
        await self._own_order(client, request.intent_id, "replace")
        return await replace_via_client(client, request.intent_id, ReplaceRequest(quantity=request.quantity, limit_price=request.limit_price))

    @sync_operation
    async def order_status(self, ctx: StartOperationContext, ref: OrderRef) -> OrderSnapshot:
        return await self._own_order(nexus.client(), ref.intent_id, None)

    @sync_operation
    async def account_view(self, ctx: StartOperationContext, ref: AccountRef) -> RiskView:
        self._entitled(self._desk(), ref.account)
        handle = nexus.client().get_workflow_handle(risk_workflow_id(ref.account))
        try:
            view: RiskView = await handle.query(QUERY_STATE, result_type=RiskView, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            raise _refused(f"account {ref.account} is not open ({first_line(err)})") from None
        return view

    # ── who is asking, and what is theirs ────────────────────────────────────────────────────
    def _desk(self) -> Desk:
        endpoint = nexus.info().endpoint
        desk = self._desks.by_endpoint(endpoint)
        if desk is None:
            raise nexusrpc.HandlerError(f"endpoint {endpoint!r} serves no desk", type=nexusrpc.HandlerErrorType.UNAUTHORIZED)
        return desk

    @staticmethod
    def _entitled(desk: Desk, account: str) -> None:
        if not desk.may_trade(account):
            raise nexusrpc.HandlerError(f"desk {desk.namespace!r} may not trade account {account!r}", type=nexusrpc.HandlerErrorType.UNAUTHORIZED)

    async def _own_order(self, client: Client, intent_id: str, action: str | None) -> OrderSnapshot:
        desk = self._desk()
        snap = await self._order(client, intent_id)
        if snap is None or not desk.may_trade(snap.account):
            raise _refused(f"no order {intent_id!r} on the accounts of desk {desk.namespace!r}")
        if action is not None and snap.intent is not None and snap.intent.kind.is_derisk:
            raise _refused(f"order {intent_id} is the risk cycle's own {snap.intent.kind.value}: only the rig may {action} it")
        return snap

    @staticmethod
    async def _order(client: Client, intent_id: str) -> OrderSnapshot | None:
        try:
            snap: OrderSnapshot = await client.get_workflow_handle(intent_id).query(QUERY_STATE, result_type=OrderSnapshot, rpc_timeout=QUERY_TIMEOUT)
        except Exception:  # noqa: BLE001 — missing, not an order, or unreadable: not the desk's order either way
            return None
        return snap

    @staticmethod
    def _verdict_wait(ctx: StartOperationContext) -> float:
        if ctx.request_deadline is None:
            return VERDICT_WAIT_SECONDS
        left = (ctx.request_deadline - datetime.now(UTC)).total_seconds() - DEADLINE_MARGIN_SECONDS
        return max(0.5, min(VERDICT_WAIT_SECONDS, left))


def _verdict(state: OrderState) -> Verdict:
    if state is OrderState.REJECTED:
        return Verdict.REJECTED
    if state is OrderState.ACCEPTED:  # the first workflow task has not answered yet
        return Verdict.PENDING
    return Verdict.ACCEPTED
