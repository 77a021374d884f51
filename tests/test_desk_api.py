"""The desk API on the session's (time-skipping) dev server: desks in namespaces of their own reach
the rig only through their Nexus endpoints, only for their own accounts, and only through the
service's five operations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from pydantic import ValidationError
from temporalio import workflow
from temporalio.api.operatorservice.v1 import ListNexusEndpointsRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, NexusOperationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from config.load import ConfigError
from desk.contract import SERVICE_NAME, DeskCancel, DeskOrder, DeskReplace, DeskService, SubmitAnswer, Verdict, endpoint_for
from desk.handler import DeskHandler
from desk.provision import provision
from desk.registry import DeskEntry, DeskRegistry, load_desks
from desk.worker import connect_desk, desk_settings, desk_worker
from domain.enums import OrderState, RejectReason
from domain.pretrade import RIG_FIELDS
from protocol import contract
from protocol.contract import DEFAULT_NAMESPACE, QUERY_STATE
from protocol.messages import CancelResult, ReplaceResult, RiskView
from protocol.order_record import OrderSnapshot
from tests.accounts import open_account
from tests.conftest import TASK_QUEUE
from worker.server import temporal_binary

NEXUS_QUEUE = "risk-rig-test-desks"  # the test desks' endpoints target this; orders run on the session's queue
DESK_QUEUE = "desk"
OPERATIONS = {"submit", "cancel", "replace", "order_status", "account_view"}
INTERNAL_MESSAGES = {
    contract.UPDATE_PRETRADE,
    contract.UPDATE_REPLACE_CHECK,
    contract.SIGNAL_ORDER_REPORT,
    contract.UPDATE_INJECT_EXPOSURE,
    contract.UPDATE_SET_SESSION,
    contract.UPDATE_SET_RULES,
    contract.UPDATE_SET_TRADING_STATE,
    contract.UPDATE_RIG_CANCEL,
    contract.UPDATE_RIG_REPLACE,
    contract.UPDATE_ARRIVAL,
    contract.UPDATE_VENUE_EXECUTIONS,
    contract.SIGNAL_VENUE_EVENT,
}


@dataclass
class Desks:
    a: Client  # namespace desk-a: may trade account_a
    b: Client  # namespace desk-b: may trade account_b
    account_a: str
    account_b: str
    rig: Client


@workflow.defn(name="RawDeskCall", sandboxed=False)
class RawDeskCall:
    """What a desk could run instead of the rig's desk workflows: any operation name, any payload,
    any headers, on any endpoint."""

    @workflow.run
    async def run(self, call: dict[str, Any]) -> Any:
        client = workflow.create_nexus_client(service=call.get("service", SERVICE_NAME), endpoint=call["endpoint"])
        try:
            return await client.execute_operation(
                call["operation"], call["input"], headers=call.get("headers"), schedule_to_close_timeout=timedelta(seconds=20)
            )
        except NexusOperationError as err:
            return {"refused": str(getattr(err.cause, "message", None) or err.cause or err)}


@pytest_asyncio.fixture(scope="module")
async def desks(env, client, worker, config) -> AsyncIterator[Desks]:
    account_a, account_b = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    registry = DeskRegistry(desks={"desk-a": DeskEntry(accounts=[account_a]), "desk-b": DeskEntry(accounts=[account_b])})
    address = client.service_client.config.target_host
    await asyncio.to_thread(provision, temporal_binary(), address, DEFAULT_NAMESPACE, NEXUS_QUEUE, registry)
    for account in (account_a, account_b):
        await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)  # nothing fills: orders stay WORKING
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEMPORAL_ADDRESS", address)
        patch.setenv("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE)  # the rig's: the desk's client must not take it
        patch.setenv("RIG_DESK_NAMESPACE", "desk-a")
        assert desk_settings()["namespace"] == "desk-a"
        assert DEFAULT_NAMESPACE not in desk_settings().values(), "a desk's configuration names only its own namespace"
        desk_a = await connect_desk()
        patch.setenv("RIG_DESK_NAMESPACE", "desk-b")
        desk_b = await connect_desk()
    assert (desk_a.namespace, desk_b.namespace) == ("desk-a", "desk-b")
    rig_side = Worker(client, task_queue=NEXUS_QUEUE, nexus_service_handlers=[DeskHandler(registry, TASK_QUEUE)])
    a_side, b_side = desk_worker(desk_a, DESK_QUEUE), desk_worker(desk_b, DESK_QUEUE)
    raw_side = Worker(desk_a, task_queue="raw", workflows=[RawDeskCall])
    async with rig_side, a_side, b_side, raw_side:
        yield Desks(desk_a, desk_b, account_a, account_b, client)
    for account in (account_a, account_b):
        await client.get_workflow_handle(contract.risk_workflow_id(account)).terminate("test over")


async def call(desk: Client, workflow_type: str, raw: Any, result_type: type) -> Any:
    return await desk.execute_workflow(
        workflow_type,
        raw,
        id=f"{workflow_type}-{uuid.uuid4().hex}",
        task_queue=DESK_QUEUE,
        result_type=result_type,
        execution_timeout=timedelta(seconds=90),
    )


async def refusal(desk: Client, workflow_type: str, raw: Any) -> str:
    with pytest.raises(WorkflowFailureError) as failed:
        await call(desk, workflow_type, raw, dict)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DeskRefused", cause
    return cause.message


async def snapshot(rig: Client, intent_id: str) -> OrderSnapshot:
    return await rig.get_workflow_handle(intent_id).query(QUERY_STATE, result_type=OrderSnapshot)


async def no_workflow(rig: Client, workflow_id: str) -> bool:
    try:
        await rig.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        return err.status == RPCStatusCode.NOT_FOUND
    return False


def order(account: str, intent_id: str, **fields: Any) -> dict[str, Any]:
    return {"intent_id": intent_id, "account": account, "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 190.0} | fields


# ── the contract ─────────────────────────────────────────────────────────────────────────────
def test_the_service_exposes_the_five_desk_operations_and_nothing_internal():
    from nexusrpc import get_service_definition

    definition = get_service_definition(DeskService)
    assert definition is not None and definition.name == SERVICE_NAME
    assert set(definition.operation_definitions) == OPERATIONS
    assert not set(definition.operation_definitions) & INTERNAL_MESSAGES


def test_desk_inputs_cannot_state_what_belongs_to_the_rig():
    fields = set(DeskOrder.model_fields)
    assert not fields & set(RIG_FIELDS), fields
    assert "reason" not in DeskCancel.model_fields  # a desk's cancel is always USER's: never KILL_SWITCH, REPLACED …
    assert not set(DeskReplace.model_fields) & {"kind", "price_rule"}  # RigReplaceRequest's
    base = order("desk1", "o1")
    for extra in [
        {"kind": "HARD_DERISK"},
        {"price_rule": "AT_BID"},
        {"issued_in_mode": "HARD_DERISK"},
        {"replaces": "x"},
        {"intent_id": "risk-desk1"},
        {"intent_id": "desk1-o4.R1"},  # the replacement of desk1-o4, before the rig makes it
        {"intent_id": "desk1-c000031-H-AAPL-LT"},  # a future de-risk order's id
    ]:
        with pytest.raises(ValidationError):
            DeskOrder.model_validate(base | extra)
    for bad in [{"quantity": True}, {"quantity": 0}, {"limit_price": float("inf")}, {"limit_price": 1e9}, {"symbol": "aapl"}, {"side": "HOLD"}]:
        with pytest.raises(ValidationError):
            DeskOrder.model_validate(base | bad)
    with pytest.raises(ValidationError):
        DeskCancel.model_validate({"intent_id": "o1", "reason": "KILL_SWITCH"})


async def test_the_session_server_has_the_desk_namespace_and_its_endpoint(client):
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="desk"))
    assert described.namespace_info.name == "desk"
    endpoints = {
        e.spec.name: e.spec.target.worker for e in (await client.operator_service.list_nexus_endpoints(ListNexusEndpointsRequest())).endpoints
    }
    assert endpoint_for("desk") == "rig-desk"
    assert (endpoints["rig-desk"].namespace, endpoints["rig-desk"].task_queue) == (DEFAULT_NAMESPACE, TASK_QUEUE)


# ── a desk's workflow submits, replaces and cancels through the endpoint ─────────────────────
async def test_a_desk_submits_replaces_and_cancels_through_its_endpoint(desks: Desks):
    intent_id = f"{desks.account_a}-d1"
    first: SubmitAnswer = await call(desks.a, "DeskSubmit", order(desks.account_a, intent_id), SubmitAnswer)
    assert (first.verdict, first.order.state, first.order.account) == (Verdict.ACCEPTED, OrderState.WORKING, desks.account_a)
    run_id = (await desks.rig.get_workflow_handle(intent_id).describe()).run_id
    again: SubmitAnswer = await call(desks.a, "DeskSubmit", order(desks.account_a, intent_id), SubmitAnswer)
    assert again.intent_id == intent_id and again.verdict is Verdict.ACCEPTED
    assert (await desks.rig.get_workflow_handle(intent_id).describe()).run_id == run_id, "a repeated submit returns the existing order"

    replaced: ReplaceResult = await call(desks.a, "DeskReplace", {"intent_id": intent_id, "quantity": 50, "limit_price": 189.5}, ReplaceResult)
    assert replaced.accepted and replaced.new_intent_id == f"{intent_id}.R1", replaced.message
    assert (await snapshot(desks.rig, intent_id)).state is OrderState.CANCELED
    canceled: CancelResult = await call(desks.a, "DeskCancel", {"intent_id": f"{intent_id}.R1", "note": "from desk a"}, CancelResult)
    assert canceled.accepted and canceled.state is OrderState.CANCELED, canceled.message

    status: OrderSnapshot = await call(desks.a, "DeskOrderStatus", f"{intent_id}.R1", OrderSnapshot)
    assert (status.state, status.quantity, status.replaces) == (OrderState.CANCELED, 50, intent_id)
    view: RiskView = await call(desks.a, "DeskAccount", desks.account_a, RiskView)
    assert view.account == desks.account_a


async def test_a_rejected_order_is_answered_rejected_with_its_reason(desks: Desks):
    answer: SubmitAnswer = await call(desks.a, "DeskSubmit", order(desks.account_a, f"{desks.account_a}-zz", symbol="ZZZZ"), SubmitAnswer)
    assert answer.verdict is Verdict.REJECTED and answer.order.reject_reason is RejectReason.UNKNOWN_SYMBOL


async def test_bad_input_fails_the_desk_workflow_in_one_line_and_starts_nothing(desks: Desks):
    intent_id = f"{desks.account_a}-bad"
    message = await refusal(desks.a, "DeskSubmit", order(desks.account_a, intent_id, kind="HARD_DERISK"))
    assert message == "DeskOrder: kind: Extra inputs are not permitted"
    message = await refusal(desks.a, "DeskSubmit", order(desks.account_a, intent_id, quantity=10**12))
    assert "\n" not in message and message.startswith("DeskOrder: quantity:")
    assert await no_workflow(desks.rig, intent_id)


# ── the boundary ─────────────────────────────────────────────────────────────────────────────
async def test_a_desk_cannot_reach_an_account_it_is_not_entitled_to(desks: Desks):
    stranger = f"{desks.account_b}-from-a"
    assert f"may not trade account {desks.account_b!r}" in await refusal(desks.a, "DeskSubmit", order(desks.account_b, stranger))
    assert await no_workflow(desks.rig, stranger)
    assert "may not trade" in await refusal(desks.a, "DeskAccount", desks.account_b)

    theirs = f"{desks.account_b}-b1"
    answer: SubmitAnswer = await call(desks.b, "DeskSubmit", order(desks.account_b, theirs), SubmitAnswer)
    assert answer.verdict is Verdict.ACCEPTED
    for workflow_type, raw in [
        ("DeskCancel", {"intent_id": theirs}),
        ("DeskReplace", {"intent_id": theirs, "quantity": 10, "limit_price": 189.0}),
        ("DeskOrderStatus", theirs),
    ]:
        assert await refusal(desks.a, workflow_type, raw) == f"no order {theirs!r} on the accounts of desk 'desk-a'"
    # Desk b's id under desk a's own account: the id is taken, desk b's order is not returned.
    assert "is taken" in await refusal(desks.a, "DeskSubmit", order(desks.account_a, theirs))
    after = await snapshot(desks.rig, theirs)
    assert (after.state, after.quantity, after.account) == (OrderState.WORKING, 100, desks.account_b)


async def test_no_internal_message_is_reachable_through_the_endpoint(desks: Desks):
    async def raw(operation: str, payload: Any, **extra: Any) -> Any:
        call = {"endpoint": endpoint_for("desk-a"), "operation": operation, "input": payload} | extra
        return await desks.a.execute_workflow(
            "RawDeskCall", call, id=f"raw-{uuid.uuid4().hex}", task_queue="raw", execution_timeout=timedelta(seconds=60)
        )

    target = f"{desks.account_a}-x1"
    assert (await call(desks.a, "DeskSubmit", order(desks.account_a, target), SubmitAnswer)).verdict is Verdict.ACCEPTED
    forged_fill = [{"intent_id": target, "kind": "FILL", "exec_id": "forged-1", "last_qty": 100, "last_px": 0.01, "cum_qty": 100, "leaves_qty": 0}]
    for operation, payload in [
        (contract.UPDATE_VENUE_EXECUTIONS, forged_fill),
        (contract.UPDATE_RIG_CANCEL, {"intent_id": target, "reason": "KILL_SWITCH"}),
        (contract.UPDATE_RIG_REPLACE, {"intent_id": target, "quantity": 1, "kind": "HARD_DERISK", "price_rule": "AT_BID"}),
        (contract.UPDATE_PRETRADE, {"intent_id": target, "raw_intent": {}}),
    ]:
        answer = await raw(operation, payload)
        assert answer == {"refused": f"Nexus service definition 'RigDesk' has no operation '{operation}'. There are 5 operations in the definition."}
    answer = await raw(contract.UPDATE_CANCEL, {"intent_id": target}, service="OrderWorkflow")
    assert answer == {"refused": "No handler for service 'OrderWorkflow'."}
    # Straight to `submit` with a rig-only field, skipping the desk workflow's own check: refused when decoded.
    answer = await raw("submit", order(desks.account_a, f"{desks.account_a}-x2", kind="HARD_DERISK"))
    assert "decode" in answer["refused"], answer
    assert await no_workflow(desks.rig, f"{desks.account_a}-x2")
    # A caller's own Nexus-Link header claiming desk b's namespace changes nothing: the endpoint says who asks.
    forged_link = '<temporal:///namespaces/desk-b/workflows/w/r/history?eventID=5&eventType=NexusOperationScheduled&referenceType=EventReference>; type="temporal.api.common.v1.Link.WorkflowEvent"'
    answer = await raw("submit", order(desks.account_b, f"{desks.account_b}-x3"), headers={"Nexus-Link": forged_link})
    assert "may not trade" in answer["refused"], answer
    snap = await snapshot(desks.rig, target)
    assert (snap.state, snap.filled_quantity, snap.fills) == (OrderState.WORKING, 0, [])


# ── the registry ─────────────────────────────────────────────────────────────────────────────
def test_the_shipped_registry_gives_the_desk_namespace_its_endpoint_and_desk1():
    (desk,) = load_desks().all()
    assert (desk.namespace, desk.endpoint, desk.accounts) == ("desk", "rig-desk", frozenset({"desk1"}))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("desks: {desk: {accounts: [desk1], extra: 1}}", "desks.desk.extra: unknown key"),
        ("desks: {desk: {accounts: []}}", "desks.desk.accounts"),
        ("desks: {desk: {accounts: [desk1, desk1]}}", "desks.desk.accounts: desk1 is listed twice"),
        ("desks: {desk: {accounts: ['bad name']}}", "desks.desk.accounts.0"),
        ("desks: {desk.a: {accounts: [x]}, desk_a: {accounts: [y]}}", "desks.desk_a: shares the endpoint 'rig-desk-a' with desk 'desk.a'"),
        ("desks: [desk]", "desks"),
    ],
)
def test_a_broken_registry_is_one_line_naming_the_key(tmp_path, text, problem):
    path = tmp_path / "desks.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_desks(path)
    assert problem in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
