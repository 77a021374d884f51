"""The desk's side: one small workflow per operation, run by the desk's worker in the desk's own
namespace. Each checks its input against the operation's model (a bad one fails the workflow with
one line and sends nothing), calls the rig through the endpoint of the namespace it runs in
(`rig-<namespace>`: the server says where a workflow runs, the input cannot choose another desk's
endpoint), and returns the rig's answer; a refusal fails the workflow with the rig's one line.

From the plain `temporal` CLI, in the desk's namespace:
    temporal workflow execute --namespace desk --task-queue desk --type DeskSubmit --input '{…}'
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError, NexusOperationError

from desk.contract import (
    AccountRef,
    DeskCancel,
    DeskOrder,
    DeskReplace,
    DeskService,
    OrderRef,
    SubmitAnswer,
    endpoint_for,
)
from protocol.messages import CancelResult, ReplaceResult, RiskView
from protocol.order_record import OrderSnapshot
from protocol.parse import first_error

M = TypeVar("M", bound=BaseModel)
# The rig down or unreachable: the desk hears so within this, instead of waiting forever.
CALL_TIMEOUT = timedelta(seconds=60)
REFUSED = "DeskRefused"  # the ApplicationError type of a refusal (bad input, or the rig said no)


def _input(model: type[M], raw: Any) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ApplicationError(f"{model.__name__}: {first_error(err)}", type=REFUSED, non_retryable=True) from None


def _client() -> workflow.NexusClient[DeskService]:
    try:
        endpoint = endpoint_for(workflow.info().namespace)
    except ValueError as err:  # a namespace no endpoint can be named after: fail once, not every task
        raise ApplicationError(str(err), type=REFUSED, non_retryable=True) from None
    return workflow.create_nexus_client(service=DeskService, endpoint=endpoint)


async def _call(operation: Any, request: BaseModel) -> Any:
    """The operation's answer; a refusal fails the workflow with the rig's reason in one line
    (the handler's error is the operation error's cause)."""
    try:
        return await _client().execute_operation(operation, request, schedule_to_close_timeout=CALL_TIMEOUT)
    except NexusOperationError as err:
        cause = err.cause or err
        reason = getattr(cause, "message", None) or str(cause) or type(cause).__name__
        raise ApplicationError(reason.splitlines()[0][:500], type=REFUSED, non_retryable=True) from None


@workflow.defn(name="DeskSubmit", sandboxed=False)
class DeskSubmitWorkflow:
    @workflow.run
    async def run(self, raw: Any) -> SubmitAnswer:
        order = _input(DeskOrder, raw)
        answer: SubmitAnswer = await _call(DeskService.submit, order)
        return answer


@workflow.defn(name="DeskCancel", sandboxed=False)
class DeskCancelWorkflow:
    @workflow.run
    async def run(self, raw: Any) -> CancelResult:
        request = _input(DeskCancel, raw)
        answer: CancelResult = await _call(DeskService.cancel, request)
        return answer


@workflow.defn(name="DeskReplace", sandboxed=False)
class DeskReplaceWorkflow:
    @workflow.run
    async def run(self, raw: Any) -> ReplaceResult:
        request = _input(DeskReplace, raw)
        answer: ReplaceResult = await _call(DeskService.replace, request)
        return answer


@workflow.defn(name="DeskOrderStatus", sandboxed=False)
class DeskOrderStatusWorkflow:
    @workflow.run
    async def run(self, raw: Any) -> OrderSnapshot:
        ref = _input(OrderRef, {"intent_id": raw} if isinstance(raw, str) else raw)
        answer: OrderSnapshot = await _call(DeskService.order_status, ref)
        return answer


@workflow.defn(name="DeskAccount", sandboxed=False)
class DeskAccountWorkflow:
    @workflow.run
    async def run(self, raw: Any) -> RiskView:
        ref = _input(AccountRef, {"account": raw} if isinstance(raw, str) else raw)
        answer: RiskView = await _call(DeskService.account_view, ref)
        return answer


DESK_WORKFLOWS = [DeskSubmitWorkflow, DeskCancelWorkflow, DeskReplaceWorkflow, DeskOrderStatusWorkflow, DeskAccountWorkflow]
