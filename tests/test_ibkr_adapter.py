"""The Interactive Brokers adapter against a fake TWS (ib_async's own Wrapper fed from scenario
files, no socket): the status/error-code data, the translator, every race in tests/ibkr/, a full
day, the gateway's idempotence and reconnects, the venue contract, and — against a dev server
this module starts — the production sink and the activities on their task queue."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from ib_async import Execution, Order, OrderState, OrderStatus
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from venues.contract import (
    STANDARD_SCRIPTS,
    Submit,
    check_script,
    contract_violations,
    outcome,
    run_venue_commands,
)
from venues.ibkr.activities import (
    IBKR_CANCEL,
    IBKR_EXECUTIONS_SINCE,
    IBKR_ORDER_STATUS,
    IBKR_SUBMIT,
    build_ibkr_worker,
)
from venues.ibkr.codes import (
    IB_ORDER_STATUS,
    INFORMATIONAL_CODES,
    ORDER_CANCEL_CODES,
    ORDER_REJECT_CODES,
    ErrorEffect,
    StatusEffect,
    error_effect,
    is_informational,
)
from venues.ibkr.fake import FakeTWS
from venues.ibkr.gateway import IbkrGateway, IbUnreachable, NotConnected
from venues.ibkr.models import IbkrOrder, IbkrSettings
from venues.ibkr.replay import IbkrFakeHarness, ScenarioRun, fake_settings, run_scenario
from venues.ibkr.translator import IbkrTranslator, Phase, correction_base
from venues.sink import VENUE_EVENT_SIGNAL, ListSink, TemporalSignalSink
from worker.connection import connect

RACES = Path(__file__).parent / "ibkr"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:  # as tests/drills.py does; kept here so this module needs nothing of the workflows
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kinds(events: list[ExecutionEvent]) -> list[str]:
    return [e.kind.value for e in events]


async def race(name: str, state_dir: Path) -> ScenarioRun:
    run = await run_scenario(RACES / f"{name}.json", state_dir)
    assert run.failures == []
    assert contract_violations(run.contract_run(), run.quantities) == []
    signalled = [e.exec_id for kind, e in run.stream if kind == "signal" and e.kind is ExecKind.FILL]
    assert len(signalled) == len(set(signalled)), "a fill was signalled twice"
    return run


def order(intent: str = "a1", **fields: object) -> IbkrOrder:
    base = {"intent_id": intent, "account": "desk1", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 190.0}
    return IbkrOrder(**(base | fields))


# ----- the data: statuses and error codes ---------------------------------------------------

PHASE_SETUPS = {  # how to bring an order to each phase with IB callbacks
    Phase.NEW: [],
    Phase.ACCEPTED: [("status", "Submitted")],
    Phase.CANCEL_PENDING: [("status", "Submitted"), ("status", "PendingCancel")],
    Phase.CANCELED: [("status", "Submitted"), ("status", "Cancelled")],
    Phase.REJECTED: [("status", "Inactive")],
    Phase.FILLED: [("status", "Submitted"), ("exec", 100)],
}


def expected_kinds(phase: Phase, status: str) -> list[str]:
    """The transition table the translator must follow, written out independently of it."""
    if phase.terminal:
        return []
    effect = IB_ORDER_STATUS[status].effect
    if effect is StatusEffect.ACCEPTED:
        return ["ACCEPTED"] if phase is Phase.NEW else []
    if effect is StatusEffect.CANCEL_PENDING:
        return ["CANCEL_PENDING"] if phase in (Phase.NEW, Phase.ACCEPTED) else []
    if effect is StatusEffect.CANCELED:
        return ["CANCELED"]
    if effect is StatusEffect.INACTIVE:
        return ["REJECTED"]
    return []


def feed(tr: IbkrTranslator, step: tuple, filled: float = 0.0) -> list[ExecutionEvent]:
    if step[0] == "status":
        return tr.on_order_status(OrderStatus(orderId=5, status=step[1], filled=filled, remaining=100 - filled, permId=4242, clientId=17))
    return tr.on_execution(Execution(execId=f"x.{step[1]}.01", shares=step[1], price=10.0, permId=4242, clientId=17, orderId=5, orderRef="a"))


@pytest.mark.parametrize("phase", list(PHASE_SETUPS), ids=lambda p: p.value)
@pytest.mark.parametrize("status", sorted(IB_ORDER_STATUS))
def test_every_ib_status_in_every_phase(phase: Phase, status: str) -> None:
    tr = IbkrTranslator(17)
    tr.register("a", 100, client_id=17, order_id=5)
    for step in PHASE_SETUPS[phase]:
        feed(tr, step)
    assert tr.tracks["a"].phase is phase
    cum_before = tr.tracks["a"].cum_qty
    events = feed(tr, ("status", status))
    assert kinds(events) == expected_kinds(phase, status)
    assert tr.tracks["a"].cum_qty == cum_before  # a status never moves cum_qty
    for event in events:
        assert event.venue_order_id == "4242"
        assert event.leaves_qty == (0 if event.kind in (ExecKind.CANCELED, ExecKind.REJECTED) else 100 - cum_before)


def test_status_map_is_data_with_the_rig_decisions() -> None:
    effects = {status: rule.effect for status, rule in IB_ORDER_STATUS.items()}
    assert effects["ApiPending"] is effects["PendingSubmit"] is StatusEffect.NONE
    assert effects["PreSubmitted"] is effects["Submitted"] is StatusEffect.ACCEPTED
    assert effects["PendingCancel"] is StatusEffect.CANCEL_PENDING
    assert effects["ApiCancelled"] is effects["Cancelled"] is StatusEffect.CANCELED
    assert effects["Filled"] is StatusEffect.NONE  # fills come from executions
    assert effects["Inactive"] is StatusEffect.INACTIVE
    assert all(rule.meaning for rule in IB_ORDER_STATUS.values())


def test_error_code_sets() -> None:
    assert not set(ORDER_REJECT_CODES) & set(ORDER_CANCEL_CODES)
    assert not set(ORDER_REJECT_CODES) & set(INFORMATIONAL_CODES)
    assert not set(ORDER_CANCEL_CODES) & set(INFORMATIONAL_CODES)
    for code in (10349, 399, 404, 10148, 161, 2104, 2109, 2137):
        assert is_informational(code)
        assert error_effect(code, acknowledged=False) is ErrorEffect.INFO
        assert error_effect(code, acknowledged=True) is ErrorEffect.INFO
    for code in (103, 110, 201, 203, 200, 321, 434):
        assert error_effect(code, acknowledged=False) is ErrorEffect.REJECT
    assert error_effect(110, acknowledged=True) is ErrorEffect.INFO  # about a modify, not the order
    assert error_effect(321, acknowledged=True) is ErrorEffect.INFO
    assert error_effect(201, acknowledged=True) is ErrorEffect.REJECT
    assert error_effect(202, acknowledged=True) is ErrorEffect.CANCEL
    assert error_effect(99999, acknowledged=True) is ErrorEffect.INFO  # unknown codes never end an order


def test_translator_inactive_after_fills_ends_canceled_not_rejected() -> None:
    tr = IbkrTranslator(17)
    tr.register("a", 100, client_id=17, order_id=5)
    feed(tr, ("status", "Submitted"))
    feed(tr, ("exec", 40))
    events = feed(tr, ("status", "Inactive"), filled=40)
    assert kinds(events) == ["CANCELED"] and events[0].cum_qty == 40 and "remainder" in events[0].text


def test_translator_routes_by_perm_id_never_a_reused_order_id() -> None:
    tr = IbkrTranslator(17)
    tr.register("new", 100, client_id=17, order_id=5)
    feed(tr, ("status", "Submitted"))  # binds permId 4242
    stranger = tr.on_order_status(OrderStatus(orderId=5, status="Cancelled", permId=9999, clientId=17))
    assert stranger == [] and tr.tracks["new"].phase is Phase.ACCEPTED


def test_translator_open_order_carries_no_fill_truth() -> None:
    tr = IbkrTranslator(17)
    tr.register("a", 100, client_id=17, order_id=5)
    feed(tr, ("status", "Submitted"))
    feed(tr, ("exec", 60))
    stale = Order(orderId=5, clientId=17, permId=4242, orderRef="a", totalQuantity=100, filledQuantity=0.0)
    assert tr.on_open_order(stale, OrderState(status="Submitted")) == []
    assert tr.tracks["a"].cum_qty == 60 and tr.tracks["a"].leaves == 40


def test_correction_base() -> None:
    assert correction_base("0000e0d5.6553a9b0.01.01") == correction_base("0000e0d5.6553a9b0.01.02") == "0000e0d5.6553a9b0.01"
    assert correction_base("plain") == "plain"


# ----- the races, one scenario file each -----------------------------------------------------


async def test_race_fill_before_order_status(tmp_path: Path) -> None:
    run = await race("fill_before_status", tmp_path)
    accepted, fill = run.events("f1")
    assert accepted.kind is ExecKind.ACCEPTED and fill.kind is ExecKind.FILL and fill.leaves_qty == 0
    assert accepted.venue_order_id == fill.venue_order_id  # the permId from the execution


async def test_race_open_order_after_partial_fill_reporting_filled_zero(tmp_path: Path) -> None:
    run = await race("open_order_after_partial_fill", tmp_path)
    cums = [e.cum_qty for e in run.events("o1")]
    assert cums == sorted(cums) == [0, 100, 300]


async def test_race_pending_cancel_then_filled(tmp_path: Path) -> None:
    run = await race("pending_cancel_then_filled", tmp_path)
    assert ExecKind.CANCELED not in [e.kind for e in run.events("c1")]
    assert outcome(run.contract_run())["c1"] == (ExecKind.FILL, 200)


async def test_race_fills_arriving_after_cancelled(tmp_path: Path) -> None:
    run = await race("fills_after_cancelled", tmp_path)
    assert kinds(run.events("x1")) == ["ACCEPTED", "CANCEL_PENDING", "FILL", "CANCELED"]  # held until the fill
    assert kinds(run.events("x2"))[-1] == "FILL"  # a late fill after CANCELED is still applied
    assert outcome(run.contract_run()) == {"x1": (ExecKind.CANCELED, 120), "x2": (ExecKind.CANCELED, 50)}


async def test_race_informational_error_10349_does_not_cancel_a_live_order(tmp_path: Path) -> None:
    run = await race("informational_error_live_order", tmp_path)
    assert kinds(run.events("i1")) == ["ACCEPTED", "FILL"]
    assert outcome(run.contract_run())["i2"] == (ExecKind.CANCELED, 0)  # only the real cancel ends it


async def test_informational_error_puts_ib_async_trade_status_back(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path), ListSink(), ib=tws.make_ib())
    await gateway.start()
    try:
        assert kinds(await gateway.submit(order("i9"))) == ["ACCEPTED"]
        tws.apply({"cb": "error", "order": "i9", "code": 10349, "message": "Order TIF was set to DAY based on order preset."})
        await tws.settle()
        trade = next(t for t in gateway.ib.trades() if t.order.orderRef == "i9")
        assert trade.orderStatus.status == "Submitted"  # ib_async had set "Cancelled"
        assert trade in gateway.ib.openTrades()
        assert "10349" in gateway.translator.tracks["i9"].notes[-1]
    finally:
        await gateway.stop()


async def test_race_inactive_with_why_held_locate(tmp_path: Path) -> None:
    run = await race("inactive_locate", tmp_path)
    assert outcome(run.contract_run()) == {"s1": (ExecKind.FILL, 500), "s2": (ExecKind.REJECTED, 0)}


async def test_race_error_103_duplicate_order_id(tmp_path: Path) -> None:
    run = await race("duplicate_order_id", tmp_path)
    placed = [r for r in run.tws.requests if r[0] == "placeOrder"]
    assert placed == [("placeOrder", "d1", 7)]  # the id really collided with the old order's, and was not retried
    assert kinds(run.events("d1")) == ["REJECTED"]
    notes = run.gateway.translator.tracks["d1"].notes
    assert len(notes) == 1 and "103" in notes[0]  # the old order 7's Cancelled / 202 never reached d1


async def test_race_gateway_restart_with_fills_recovered_by_req_executions(tmp_path: Path) -> None:
    run = await race("gateway_restart_fills", tmp_path)
    assert run.positions() == run.tws.positions() == {"AAPL": 400, "MSFT": -200}
    assert [r for r in run.tws.requests if r[0] == "placeOrder"] == [("placeOrder", "g1", 2), ("placeOrder", "g2", 3)]
    state = json.loads((tmp_path / "ibkr-state.json").read_text())
    assert state["cursor"] == run.events("g1")[-1].exec_id and state["outbox"] == []
    assert state["market_data"] == {"AAPL": 265598}


async def test_race_order_stuck_in_pending_submit(tmp_path: Path) -> None:
    run = await race("stuck_pending_submit", tmp_path)
    assert kinds(run.events("p2")) == ["UNKNOWN_ORDER"]  # never CANCELED without IB saying so
    cancels = [r for r in run.tws.requests if r[0] == "cancelOrder"]
    assert [r[1] for r in cancels] == ["p1", None]  # p2's cancel is still sent; TWS does not know it (10147)


async def test_race_execution_correction_applied_once(tmp_path: Path) -> None:
    run = await race("execution_correction", tmp_path)
    assert run.positions() == run.tws.positions() == {"IBM": 100}


async def test_race_order_fatal_codes_201_and_110(tmp_path: Path) -> None:
    await race("venue_rejections", tmp_path)


async def test_full_day_of_derisk_orders_positions_equal_executions(tmp_path: Path) -> None:
    run = await race("full_day", tmp_path)
    spec = run.scenario
    for planned in spec["orders"]:
        events = run.events(planned["id"])
        final, cum = outcome(run.contract_run())[planned["id"]]
        expected_cum = sum(planned["chunks"]) + (100 if planned["fate"] == "cross" else 0)
        assert cum == expected_cum, planned["id"]
        if planned["fate"] in ("fill", "cross"):
            assert final is ExecKind.FILL and events[-1].leaves_qty == 0, planned["id"]
        else:
            assert final is ExecKind.CANCELED, planned["id"]
    journal = run.replies[-1][1]
    from_journal: dict[str, int] = {}
    for fill in journal:
        sign = 1 if run.sides[fill.intent_id] == "BUY" else -1
        symbol = run.symbols[fill.intent_id]
        from_journal[symbol] = from_journal.get(symbol, 0) + sign * fill.last_qty
    assert run.positions() == run.tws.positions() == {k: v for k, v in from_journal.items() if v}
    assert len({f.exec_id for f in journal}) == len(journal) == sum(len(o["chunks"]) for o in spec["orders"]) + 1


# ----- the gateway: idempotence, lost state, reconnects --------------------------------------


async def test_retried_submit_never_places_a_second_order(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path), ListSink(), ib=tws.make_ib())
    await gateway.start()
    try:
        first, again, *concurrent = await asyncio.gather(*[gateway.submit(order("r1")) for _ in range(4)])
        assert kinds(first) == ["ACCEPTED"] and again == first and all(c == first for c in concurrent)
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["r1"]
    finally:
        await gateway.stop()


async def test_lost_state_file_finds_the_order_at_ib_by_order_ref(tmp_path: Path) -> None:
    tws = FakeTWS()
    first = IbkrGateway(fake_settings(tmp_path / "a"), ListSink(), ib=tws.make_ib())
    await first.start()
    await first.submit(order("z1", quantity=300))
    tws.apply({"cb": "fill", "order": "z1", "shares": 100, "price": 190.0})
    await tws.settle()
    await first.stop()
    fresh = IbkrGateway(fake_settings(tmp_path / "b"), ListSink(), ib=tws.make_ib())  # no state file
    await fresh.start()
    try:
        events = await fresh.submit(order("z1", quantity=300))
        assert kinds(events) == ["ACCEPTED", "FILL"] and events[-1].cum_qty == 100 and events[-1].leaves_qty == 200
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["z1"]
        status = await fresh.order_status("z1")
        assert status.known and status.cum_qty == 100
    finally:
        await fresh.stop()


async def test_written_ahead_but_never_sent_is_unknown_then_placed_by_the_retry(tmp_path: Path) -> None:
    tws = FakeTWS()
    crashed = IbkrGateway(fake_settings(tmp_path), ListSink(), ib=tws.make_ib())
    crashed.translator.register("w1", 100, "AAPL", "BUY", client_id=17, order_id=99, now=0.0)
    crashed.save_now()  # the process died between the write-ahead and placeOrder
    sink = ListSink()
    gateway = IbkrGateway(fake_settings(tmp_path), sink, ib=tws.make_ib())
    await gateway.start()
    try:
        await gateway.idle()
        assert kinds(sink.for_intent("w1")) == ["UNKNOWN_ORDER"]
        assert kinds(await gateway.submit(order("w1"))) == ["UNKNOWN_ORDER", "ACCEPTED"]
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["w1"]
    finally:
        await gateway.stop()


async def test_status_and_cancel_of_an_intent_ib_never_saw(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path), ListSink(), ib=tws.make_ib())
    await gateway.start()
    try:
        status = await gateway.order_status("nobody")
        assert status == VenueOrderStatus(intent_id="nobody", known=False, last_kind=ExecKind.UNKNOWN_ORDER)
        assert kinds(await gateway.cancel("nobody")) == ["UNKNOWN_ORDER"]
    finally:
        await gateway.stop()


async def test_activities_while_disconnected_ask_for_a_retry(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path, reconnect_min_delay=0.05, reconnect_max_delay=0.05), ListSink(), ib=tws.make_ib())
    await gateway.start()
    try:
        tws.drop_connection(then_down=True)
        with pytest.raises(NotConnected, match=r"127\.0\.0\.1:7497"):
            await gateway.submit(order("n1"))
        tws.up = True
        await gateway.wait_connected()
        assert kinds(await gateway.submit(order("n1"))) == ["ACCEPTED"]
        assert gateway.reconciliations == 2
    finally:
        await gateway.stop()


async def test_ib_1101_connectivity_restored_resubscribes_and_reconciles(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path), ListSink(), ib=tws.make_ib())
    await gateway.start()
    try:
        await gateway.subscribe_quotes("MSFT")
        tws.send("error", -1, 1101, "Connectivity between IB and TWS has been restored- data lost.", "")
        await tws.settle()
        for _ in range(20):
            await asyncio.sleep(0)
        await tws.settle()
        assert [r[1] for r in tws.requests if r[0] == "reqMktData"] == ["MSFT", "MSFT"]
        assert gateway.reconciliations == 2
    finally:
        await gateway.stop()


async def test_unreachable_tws_is_one_line_naming_host_port(tmp_path: Path) -> None:
    port = free_port()
    settings = IbkrSettings(port=port, state_dir=tmp_path, connect_timeout=2.0)
    gateway = IbkrGateway(settings, ListSink())
    with pytest.raises(IbUnreachable) as caught:
        await gateway.start()
    await gateway.stop()
    message = str(caught.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message
    assert "TWS" in message and "IB Gateway" in message and "7497" in message and "4002" in message


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_HOST", "10.0.0.5")
    monkeypatch.setenv("IB_PORT", "4002")
    monkeypatch.setenv("IB_CLIENT_ID", "23")
    monkeypatch.setenv("IB_ACCOUNT", "DU999")
    monkeypatch.setenv("RIG_IBKR_TASK_QUEUE", "q-ib")
    monkeypatch.setenv("RIG_IBKR_STATE_DIR", "/tmp/ibkr-x")
    s = IbkrSettings.from_env()
    assert (s.where, s.client_id, s.account, s.task_queue, str(s.state_dir)) == ("10.0.0.5:4002", 23, "DU999", "q-ib", "/tmp/ibkr-x")
    monkeypatch.delenv("RIG_IBKR_TASK_QUEUE")
    assert IbkrSettings.from_env().task_queue == "risk-rig-ibkr"


def test_order_model_refuses_what_ib_could_not_place() -> None:
    for bad in (
        {"quantity": 0},
        {"limit_price": float("nan")},
        {"order_type": "MARKET"},
        {"side": "SHORT"},
        {"order_type": "LIMIT", "limit_price": None},
        {"time_in_force": "GTC"},
        {"symbol": "aapl"},
    ):
        with pytest.raises(ValueError):
            order("bad", **bad)
    assert order("m", order_type="MARKET", limit_price=None).order_type == "MARKET"


# ----- the venue contract -------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(STANDARD_SCRIPTS))
async def test_venue_contract_ibkr(script: str, tmp_path: Path) -> None:
    commands, expected = STANDARD_SCRIPTS[script]
    async with IbkrFakeHarness(tmp_path) as venue:
        run = await run_venue_commands(venue, commands)
    quantities = {c.intent_id: c.quantity for c in commands if isinstance(c, Submit)}
    assert contract_violations(run, quantities) == []
    assert check_script(run, expected) == []


async def test_contract_checker_catches_a_broken_venue() -> None:
    from venues.contract import ContractRun

    bad = ContractRun(
        venue="broken",
        events=[
            ExecutionEvent(intent_id="b", kind=ExecKind.FILL, exec_id="1", last_qty=10, cum_qty=10, leaves_qty=90),
            ExecutionEvent(intent_id="b", kind=ExecKind.ACCEPTED, cum_qty=0, leaves_qty=100),
            ExecutionEvent(intent_id="b", kind=ExecKind.CANCELED, cum_qty=10, leaves_qty=90),
            ExecutionEvent(intent_id="b", kind=ExecKind.ACCEPTED, cum_qty=10, leaves_qty=90),
        ],
    )
    problems = contract_violations(bad, {"b": 100})
    assert any("before ACCEPTED" in p for p in problems)
    assert any("takes cum_qty back" in p for p in problems)
    assert any("leaves_qty 90" in p for p in problems)
    assert any("after the order ended" in p for p in problems)
    assert check_script(bad, {"b": ({ExecKind.FILL}, 100)}) != []


# ----- Temporal: the production sink and the activities on their queue -----------------------


@workflow.defn(name="VenueEventRecorder")
class VenueEventRecorder:
    def __init__(self) -> None:
        self.events: list[ExecutionEvent] = []

    @workflow.run
    async def run(self) -> list[ExecutionEvent]:
        await workflow.wait_condition(lambda: len(self.events) >= 2)
        return self.events

    @workflow.signal(name=VENUE_EVENT_SIGNAL)
    def venue_event(self, event: ExecutionEvent) -> None:
        self.events.append(event)


class CallerResult(BaseModel):
    submitted: list[ExecutionEvent]
    again: list[ExecutionEvent]
    status: VenueOrderStatus
    canceled: list[ExecutionEvent]
    fills: list[ExecutionEvent]


@workflow.defn(name="IbkrActivityCaller")
class IbkrActivityCaller:
    @workflow.run
    async def run(self, queue: str) -> CallerResult:
        opts = {"task_queue": queue, "start_to_close_timeout": timedelta(seconds=20), "retry_policy": RetryPolicy(maximum_attempts=3)}
        submitted = await workflow.execute_activity(
            IBKR_SUBMIT,
            IbkrOrder(intent_id="t1", account="desk1", symbol="AAPL", side="BUY", quantity=100, limit_price=190.0),
            result_type=list[ExecutionEvent],
            **opts,
        )
        again = await workflow.execute_activity(
            IBKR_SUBMIT,
            IbkrOrder(intent_id="t1", account="desk1", symbol="AAPL", side="BUY", quantity=100, limit_price=190.0),
            result_type=list[ExecutionEvent],
            **opts,
        )
        status = await workflow.execute_activity(IBKR_ORDER_STATUS, "t1", result_type=VenueOrderStatus, **opts)
        canceled = await workflow.execute_activity(IBKR_CANCEL, "t1", result_type=list[ExecutionEvent], **opts)
        fills = await workflow.execute_activity(IBKR_EXECUTIONS_SINCE, None, result_type=list[ExecutionEvent], **opts)
        return CallerResult(submitted=submitted, again=again, status=status, canceled=canceled, fills=fills)


@pytest.fixture(scope="module")
def temporal_address():
    from worker import server

    port = free_port()
    proc = server.start("127.0.0.1", port, None)
    yield f"127.0.0.1:{port}"
    server.stop(proc)


@pytest_asyncio.fixture(scope="module")
async def temporal_client(temporal_address: str) -> Client:
    return await connect(target_host=temporal_address)  # retries while the new server turns healthy


async def test_temporal_signal_sink_signals_the_order_workflow_and_skips_missing_ones(temporal_client: Client) -> None:
    queue = f"sink-{uuid.uuid4().hex[:8]}"
    intent = f"sink-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_client, task_queue=queue, workflows=[VenueEventRecorder], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await temporal_client.start_workflow(VenueEventRecorder.run, id=intent, task_queue=queue)
        sink = TemporalSignalSink(temporal_client)
        accepted = ExecutionEvent(intent_id=intent, kind=ExecKind.ACCEPTED, venue_order_id="42", leaves_qty=100)
        fill = ExecutionEvent(intent_id=intent, kind=ExecKind.FILL, venue_order_id="42", exec_id="e.1.01", last_qty=100, last_px=190.0, cum_qty=100)
        await sink.deliver(accepted)
        await sink.deliver(fill)
        assert await handle.result() == [accepted, fill]
        ghost = ExecutionEvent(intent_id=f"no-such-{uuid.uuid4().hex[:6]}", kind=ExecKind.CANCELED)
        await sink.deliver(ghost)  # never started: logged and skipped
        closed = fill.model_copy(update={"exec_id": "e.2.01"})
        await sink.deliver(closed)  # already completed: logged and skipped
        assert sink.skipped == [ghost, closed]


async def test_ibkr_activities_on_their_task_queue(temporal_client: Client, tmp_path: Path) -> None:
    queue = f"risk-rig-ibkr-{uuid.uuid4().hex[:6]}"
    tws = FakeTWS()
    gateway = IbkrGateway(fake_settings(tmp_path, task_queue=queue), TemporalSignalSink(temporal_client), ib=tws.make_ib())
    await gateway.start()
    try:
        async with (
            build_ibkr_worker(temporal_client, gateway),
            Worker(temporal_client, task_queue=queue + "-wf", workflows=[IbkrActivityCaller], workflow_runner=UnsandboxedWorkflowRunner()),
        ):
            result = await temporal_client.execute_workflow(
                IbkrActivityCaller.run, queue, id=f"caller-{uuid.uuid4().hex[:6]}", task_queue=queue + "-wf"
            )
        submitted, again, status, canceled, fills = result.submitted, result.again, result.status, result.canceled, result.fills
        assert kinds(submitted) == kinds(again) == ["ACCEPTED"]
        assert status.known and status.leaves_qty == 100 and status.last_kind is ExecKind.ACCEPTED
        assert kinds(canceled) == ["CANCEL_PENDING", "CANCELED"]
        assert fills == []
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["t1"]
    finally:
        await gateway.stop()


def test_gateway_entry_point_says_where_tws_is_missing(temporal_address: str, tmp_path: Path) -> None:
    ib_port = free_port()
    env = os.environ | {
        "TEMPORAL_ADDRESS": temporal_address,
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(ib_port),
        "RIG_IBKR_STATE_DIR": str(tmp_path),
        "IB_CONNECT_TIMEOUT": "2",
    }
    done = subprocess.run([sys.executable, "-m", "venues.ibkr"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"127.0.0.1:{ib_port}" in lines[0] and "IB Gateway" in lines[0]
    assert done.stderr.strip() == "", done.stderr  # one line, no traceback, no library noise


async def test_paper_round_trip_rehearsed_against_the_fake_tws(tmp_path: Path) -> None:
    """`make test-ibkr-live` runs venues/ibkr/paper_check.py against a paper account; here the same
    steps run against the fake TWS, so a failure there is about IB, not about the check."""
    from venues.ibkr.paper_check import paper_round_trip

    tws = FakeTWS(auto_ack=False)
    tws.on_place_script["live-1"] = [
        {"cb": "openOrder", "status": "PreSubmitted"},
        {"cb": "orderStatus", "status": "PreSubmitted"},
        {"cb": "error", "code": 10349, "message": "Order TIF was set to DAY based on order preset."},
    ]
    sink = ListSink()
    gateway = IbkrGateway(fake_settings(tmp_path), sink, ib=tws.make_ib())
    await gateway.start()
    try:
        events = await paper_round_trip(gateway, sink, "live-1", "AAPL", 95.0)
    finally:
        await gateway.stop()
    assert kinds(events)[0] == "ACCEPTED" and kinds(events)[-1] == "CANCELED"
    assert [r for r in tws.requests if r[0] == "placeOrder"] == [("placeOrder", "live-1", 2)]


async def test_race_filled_status_without_its_execution(tmp_path: Path) -> None:
    run = await race("filled_status_without_execution", tmp_path)
    assert run.positions() == run.tws.positions() == {"CVX": -100}


def test_every_scenario_file_has_its_named_test() -> None:
    source = Path(__file__).read_text()
    for path in RACES.glob("*.json"):
        spec = json.loads(path.read_text())
        assert spec["race"] and spec["description"] and spec["handling"], path.name
        assert f'race("{path.stem}"' in source, f"{path.name} is not run by a test"
