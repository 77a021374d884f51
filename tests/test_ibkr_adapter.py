"""The Interactive Brokers adapter against a fake TWS on a real socket (testkit/ibkr/tws.py: the
TWS API's framing, handshake and messages, so ib_async's Client, Connection, Decoder and throttle
run as against IB): the status/error-code data, the translator, every race in tests/ibkr/, a full
day, the gateway's identity checks, idempotence, reconnects, positions and store, the venue
contract, and — against a dev server this module starts — the production sinks and the activities
on their task queue."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from ib_async import IB, Contract, Execution, Order, OrderState, OrderStatus
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from protocol.contract import risk_workflow_id
from testkit.contract import (
    STANDARD_SCRIPTS,
    Submit,
    check_script,
    contract_violations,
    outcome,
    run_venue_commands,
)
from testkit.ibkr.replay import IbkrFakeHarness, ScenarioRun, gateway_over, run_scenario
from testkit.ibkr.sinks import RecordingSink, StaticBooks
from testkit.ibkr.tws import FakeTWS
from venues.ibkr.activities import (
    IBKR_CANCEL,
    IBKR_CANCEL_CONFIRMED,
    IBKR_EXECUTIONS_SINCE,
    IBKR_MODIFY,
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
from venues.ibkr.contracts import StockContract
from venues.ibkr.delivery import RigSink
from venues.ibkr.gateway import IbkrConfigError, IbkrGateway, IbUnreachable, NotConnected
from venues.ibkr.models import (
    SIGNAL_BROKER_LATE_FILL,
    CancelOutcome,
    CancelVerdict,
    IbkrCancel,
    IbkrModify,
    IbkrOrder,
    IbkrSettings,
    LateFill,
    ModifyOutcome,
    parse_order_ref,
    rig_order_ref,
)
from venues.ibkr.positions import PositionWatch
from venues.ibkr.store import MAX_TERMINAL_TRACKS, STATE_FILE, Batch, StateStore
from venues.ibkr.translator import IbkrTranslator, OrderTrack, Phase, correction_base
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

PHASE_SETUPS: dict[Phase, list[tuple[str, Any]]] = {  # how to bring an order to each phase with IB callbacks
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
    execution = Execution(execId=f"x.{step[1]}.01", shares=step[1], price=10.0, permId=4242, clientId=17, orderId=5, orderRef="rig/d/a", side="BOT")
    return tr.on_execution(execution, Contract(symbol="AAPL"))


def translator_with(intent: str = "a", order_id: int = 5) -> IbkrTranslator:
    tr = IbkrTranslator(17)
    tr.register(OrderTrack(intent_id=intent, quantity=100, symbol="AAPL", side="BUY", order_ref=f"rig/d/{intent}", client_id=17, order_id=order_id))
    return tr


@pytest.mark.parametrize("phase", list(PHASE_SETUPS), ids=lambda p: p.value)
@pytest.mark.parametrize("status", sorted(IB_ORDER_STATUS))
def test_every_ib_status_in_every_phase(phase: Phase, status: str) -> None:
    tr = translator_with("a")
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
    tr = translator_with("a")
    feed(tr, ("status", "Submitted"))
    feed(tr, ("exec", 40))
    events = feed(tr, ("status", "Inactive"), filled=40)
    assert kinds(events) == ["CANCELED"] and events[0].cum_qty == 40 and "remainder" in events[0].text


def test_translator_routes_by_perm_id_never_a_reused_order_id() -> None:
    tr = translator_with("new")
    feed(tr, ("status", "Submitted"))  # binds permId 4242
    stranger = tr.on_order_status(OrderStatus(orderId=5, status="Cancelled", permId=9999, clientId=17))
    assert stranger == [] and tr.tracks["new"].phase is Phase.ACCEPTED


def test_translator_open_order_carries_no_fill_truth() -> None:
    tr = translator_with("a")
    feed(tr, ("status", "Submitted"))
    feed(tr, ("exec", 60))
    stale = Order(orderId=5, clientId=17, permId=4242, orderRef="rig/d/a", totalQuantity=100, filledQuantity=0.0, action="BUY")
    assert tr.on_open_order(stale, Contract(symbol="AAPL"), OrderState(status="Submitted")) == []
    assert tr.tracks["a"].cum_qty == 60 and tr.tracks["a"].leaves == 40


def test_correction_base() -> None:
    assert correction_base("0000e0d5.6553a9b0.01.01") == correction_base("0000e0d5.6553a9b0.01.02") == "0000e0d5.6553a9b0.01"
    assert correction_base("plain") == "plain"


def test_order_ref_namespace() -> None:
    assert rig_order_ref("desk-1", "x.R2") == "rig/desk-1/x.R2"
    assert parse_order_ref("rig/desk-1/x.R2") == ("desk-1", "x.R2")
    assert parse_order_ref("rig/desk-1/a/b") == ("desk-1", "a/b")
    for foreign in ("x.R2", "rig/", "rig//a", "rig/desk", "RIG/desk/a", ""):
        assert parse_order_ref(foreign) is None, foreign


def test_translator_never_binds_a_foreign_order_by_its_order_ref() -> None:
    tr = translator_with("a")
    tr.tracks["a"].order_id = None  # placed, IB has not said a word: only the orderRef could bind it
    tr._by_key.clear()
    foreign = Order(orderId=40, clientId=5, permId=777, orderRef="rig/d/a", totalQuantity=7, action="SELL")
    assert tr.on_open_order(foreign, Contract(symbol="MSFT"), OrderState(status="Submitted")) == []
    assert tr.tracks["a"].perm_id is None and tr.tracks["a"].phase is Phase.NEW
    own = Order(orderId=41, clientId=17, permId=778, orderRef="rig/d/a", totalQuantity=100, action="BUY")
    assert kinds(tr.on_open_order(own, Contract(symbol="AAPL"), OrderState(status="Submitted"))) == ["ACCEPTED"]
    assert tr.tracks["a"].perm_id == 778


def test_translator_refused_cancel_then_working_again() -> None:
    tr = translator_with("a")
    feed(tr, ("status", "Submitted"))
    tr.cancel_sent(tr.tracks["a"])
    feed(tr, ("status", "PendingCancel"))
    assert kinds(tr.on_error(5, 10148, "cannot be cancelled")) == ["CANCEL_REJECTED"]
    track = tr.tracks["a"]
    assert track.phase is Phase.ACCEPTED and not track.cancel_requested and "10148" in track.cancel_refused
    assert tr.on_error(5, 10148, "again") == []  # only an answer to a cancel the rig sent


def test_translator_unlisted_error_before_the_ack_rejects_with_ibs_words() -> None:
    tr = translator_with("a")
    (event,) = tr.on_error(5, 10311 + 7, "Order rejected by a rule the rig does not list")
    assert event.kind is ExecKind.REJECTED and "10318" in event.text and "rule the rig" in event.text
    tr2 = translator_with("b")
    feed(tr2, ("status", "Submitted"))
    assert tr2.on_error(5, 10318, "after the ack: logged, the order works") == []  # acknowledged: kept


def test_translator_day_cancel_unasked_after_the_close_is_expired() -> None:
    closed = {"yes": False}
    tr = IbkrTranslator(17, expired=lambda track: closed["yes"])
    tr.register(OrderTrack(intent_id="a", quantity=100, client_id=17, order_id=5, session="2025-06-10"))
    tr.register(OrderTrack(intent_id="b", quantity=100, client_id=17, order_id=6, session="2025-06-10"))
    feed(tr, ("status", "Submitted"))
    tr.on_order_status(OrderStatus(orderId=6, status="Submitted", permId=4343, clientId=17))
    tr.cancel_sent(tr.tracks["b"])
    closed["yes"] = True
    assert kinds(feed(tr, ("status", "Cancelled"))) == ["EXPIRED"]
    assert kinds(tr.on_order_status(OrderStatus(orderId=6, status="Cancelled", permId=4343, clientId=17))) == ["CANCELED"]  # asked by the rig


def test_translator_commission_lands_on_its_fill() -> None:
    from ib_async import CommissionReport

    tr = translator_with("a")
    (_accepted, fill) = feed(tr, ("exec", 40))
    assert fill.commission is None
    updated = tr.on_commission(CommissionReport(execId=fill.exec_id or "", commission=0.35, currency="USD"))
    assert updated is not None and updated.commission == 0.35 and tr.tracks["a"].events[-1].commission == 0.35
    assert tr.on_commission(CommissionReport(execId="someone-else's", commission=1.0)) is None


def test_position_watch_reports_a_difference_seen_twice_without_executions_between() -> None:
    watch = PositionWatch()
    books = {"desk1": {"AAPL": 40}, "desk2": {"AAPL": 10}}
    assert watch.compare({"AAPL": 50}, books, {}) == ([], False)  # equal
    assert watch.compare({"AAPL": 70}, books, {"AAPL": 3}) == ([], True)  # first sighting: pending
    assert watch.compare({"AAPL": 70}, books, {"AAPL": 4}) == ([], True)  # an execution between: again pending
    (diff,), again = watch.compare({"AAPL": 70}, books, {"AAPL": 4})
    assert (diff.symbol, diff.ib_position, diff.book_position, diff.by_account) == ("AAPL", 70, 50, {"desk1": 40, "desk2": 10}) and not again
    assert watch.compare({"AAPL": 70}, books, {"AAPL": 4}) == ([], False)  # told once
    (back,), again = watch.compare({"AAPL": 50}, books, {"AAPL": 5})  # back in line: said once
    assert (back.ib_position, back.book_position, again) == (50, 50, False)
    assert watch.compare({"AAPL": 50}, books, {"AAPL": 5}) == ([], False)
    watch.compare({"AAPL": 50, "MSFT": -5}, books, {})
    (short,), _ = watch.compare({"AAPL": 50, "MSFT": -5}, books, {})
    assert (short.symbol, short.ib_position, short.book_position) == ("MSFT", -5, 0)


def test_passive_tick_rounding() -> None:
    stock = StockContract(symbol="AAPL", con_id=1, primary_exchange="NASDAQ", min_tick=0.01, increments=[(0.0, 0.0001), (1.0, 0.01)])
    assert stock.passive_price("BUY", 190.007) == 190.0
    assert stock.passive_price("SELL", 190.001) == 190.01
    assert stock.passive_price("BUY", 190.01) == stock.passive_price("SELL", 190.01) == 190.01
    assert stock.passive_price("BUY", 0.12345) == 0.1234 and stock.passive_price("SELL", 0.12345) == 0.1235
    assert stock.passive_price("BUY", 0.00001) == 0.0001  # never zero


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
    gateway = gateway_over(tws, tmp_path)
    await gateway.start()
    try:
        assert kinds(await gateway.submit(order("i9"))) == ["ACCEPTED"]
        tws.apply({"cb": "error", "order": "i9", "code": 10349, "message": "Order TIF was set to DAY based on order preset."})
        await tws.settle()
        trade = next(t for t in gateway.ib.trades() if t.order.orderRef == "rig/desk1/i9")
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
    assert placed == [("placeOrder", "d1", 7), ("placeOrder", "d1", 8)]  # 7 collided with the old order's id: a new id, placed again
    assert kinds(run.events("d1")) == ["ACCEPTED"] and run.tws.order("d1").order_id == 8
    notes = run.gateway.translator.tracks["d1"].notes
    assert len(notes) == 1 and "103" in notes[0]  # the old order 7's Cancelled / 202 never reached d1


async def test_race_gateway_restart_with_fills_recovered_by_req_executions(tmp_path: Path) -> None:
    run = await race("gateway_restart_fills", tmp_path)
    assert run.positions() == run.tws.positions() == {"AAPL": 400, "MSFT": -200}
    assert [r[1] for r in run.tws.requests if r[0] == "placeOrder"] == ["g1", "g2"]
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        journal = [row[0] for row in db.execute("SELECT exec_id FROM journal ORDER BY seq")]
        assert journal[-1] == run.events("g1")[-1].exec_id and len(journal) == len(set(journal)) == 4
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert json.loads(meta["market_data"]) == {"AAPL": 265598} and meta["client_id"] == "17" and meta["ib_account"] == "DU1234567"
    executions = [r[2] for r in run.tws.requests if r[0] == "reqExecutions"]
    assert executions[0].since is None and all(f.since is not None and f.account == "DU1234567" for f in executions[1:])  # since the last seen


async def test_race_order_stuck_in_pending_submit(tmp_path: Path) -> None:
    run = await race("stuck_pending_submit", tmp_path)
    assert kinds(run.events("p2")) == ["UNKNOWN_ORDER"]  # never CANCELED without IB saying so
    cancels = [r for r in run.tws.requests if r[0] == "cancelOrder"]
    assert [r[1] for r in cancels] == ["p1", None]  # p2's cancel is still sent; TWS does not know it (10147)


async def test_race_execution_correction_applied_once(tmp_path: Path) -> None:
    run = await race("execution_correction", tmp_path)
    assert run.positions() == run.tws.positions() == {"IBM": 100}


async def test_race_execution_correction_that_changes_shares_is_applied_as_a_correction(tmp_path: Path) -> None:
    run = await race("execution_correction_changes_shares", tmp_path)
    assert run.positions() == run.tws.positions() == {"IBM": 80}
    assert kinds(run.events("k1")) == ["ACCEPTED", "FILL", "CORRECTION"]


async def test_race_day_expiry_is_expired_not_a_user_cancel(tmp_path: Path) -> None:
    run = await race("day_expiry", tmp_path)
    assert outcome(run.contract_run()) == {"y1": (ExecKind.EXPIRED, 30), "y2": (ExecKind.CANCELED, 0)}


async def test_race_away_across_the_close_resolved_from_positions_and_reported(tmp_path: Path) -> None:
    run = await race("away_across_the_close", tmp_path)
    assert kinds(run.events("w1"))[-1] == "EXPIRED" and ExecKind.UNKNOWN_ORDER not in [e.kind for e in run.events("w1")]
    (told,) = run.sink.divergences
    assert (told.account, told.ib_account, told.difference, told.resolved_from_positions) == ("desk1", "DU1234567", 30, ["w1"])
    assert "IB holds 70 AAPL" in told.text and run.tws.positions() == {"AAPL": 70}


async def test_race_link_lost_refuses_new_orders_until_restored(tmp_path: Path) -> None:
    run = await race("link_lost_refuses_new_orders", tmp_path)
    assert [r[1] for r in run.tws.requests if r[0] == "placeOrder"] == ["l2"]


async def test_race_refused_cancel_is_sent_again(tmp_path: Path) -> None:
    run = await race("refused_cancel_resent", tmp_path)
    assert [r[1] for r in run.tws.requests if r[0] == "cancelOrder"] == ["q1", "q1"]
    assert outcome(run.contract_run())["q1"] == (ExecKind.CANCELED, 0)


async def test_race_retried_cancel_returns_the_whole_history(tmp_path: Path) -> None:
    run = await race("retried_cancel_returns_everything", tmp_path)
    first, retry = (cast(list[ExecutionEvent], reply) for _, reply in run.replies[1:3])
    assert first == retry and [e.last_qty for e in retry if e.kind is ExecKind.FILL] == [40]


async def test_race_foreign_orders_are_never_adopted(tmp_path: Path) -> None:
    run = await race("foreign_orders_not_adopted", tmp_path)
    assert [r[1] for r in run.tws.requests if r[0] == "placeOrder"] == ["f1"]
    assert run.tws.orders[0].order_ref == "f1" and run.tws.order("f1").order_ref == run.gateway.translator.tracks["f1"].order_ref == "rig/desk1/f1"
    assert run.gateway.translator.tracks["f1"].perm_id != run.tws.orders[0].perm_id


async def test_race_late_fill_reaches_the_account(tmp_path: Path) -> None:
    run = await race("late_fill_after_the_order_closed", tmp_path)
    (late,) = run.sink.late_fills
    assert (late.account, late.symbol, late.side, late.event.kind, late.event.commission) == ("desk1", "XOM", "BUY", ExecKind.FILL, 1.0)
    assert [e.kind for e in run.sink.undelivered] == [ExecKind.FILL]


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
    journal = cast(list[ExecutionEvent], run.replies[-1][1])
    from_journal: dict[str, int] = {}
    for fill in journal:
        sign = 1 if run.sides[fill.intent_id] == "BUY" else -1
        symbol = run.symbols[fill.intent_id]
        from_journal[symbol] = from_journal.get(symbol, 0) + sign * fill.last_qty
    assert run.positions() == run.tws.positions() == {k: v for k, v in from_journal.items() if v}
    assert len({f.exec_id for f in journal}) == len(journal) == sum(len(o["chunks"]) for o in spec["orders"]) + 1


# ----- the gateway: idempotence, identity, lost state, reconnects ----------------------------


async def started(tws: FakeTWS, state_dir: Path, **settings: Any) -> IbkrGateway:
    gateway = gateway_over(tws, state_dir, **settings)
    await gateway.start()
    return gateway


async def test_retried_submit_never_places_a_second_order(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = await started(tws, tmp_path)
    try:
        first, again, *concurrent = await asyncio.gather(*[gateway.submit(order("r1")) for _ in range(4)])
        assert kinds(first) == ["ACCEPTED"] and again == first and all(c == first for c in concurrent)
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["r1"]
    finally:
        await gateway.stop()


async def test_submit_asks_ib_for_no_book_and_qualifies_a_contract_once(tmp_path: Path) -> None:
    tws = FakeTWS()
    for n in range(30):  # other orders at IB: a submit must not download them
        tws.add_order(f"old-{n}", "MSFT", "SELL", 10, 420.0, status="Filled" if n % 2 else "Submitted", client_id=17, order_id=100 + n)
    gateway = await started(tws, tmp_path)
    try:
        before = len(tws.requests)
        for n in range(3):
            await gateway.submit(order(f"s{n}", limit_price=190.007, side="BUY" if n != 1 else "SELL"))
        asked = [r[0] for r in tws.requests[before:]]
        assert asked == ["reqContractDetails", "reqMarketRule", "placeOrder", "placeOrder", "placeOrder"]
        book = tws.order("s0")
        assert (book.asked_con_id, book.asked_primary, book.lmt_price) == (tws.con_ids["AAPL"], "NASDAQ", 190.0)  # qualified; BUY rounded down
        assert tws.order("s1").lmt_price == 190.01  # SELL rounded up: never more aggressive than asked
    finally:
        await gateway.stop()
    again = await started(tws, tmp_path)  # the conId cache is in the store
    try:
        before = len(tws.requests)
        await again.submit(order("s9"))
        assert [r[0] for r in tws.requests[before:]] == ["placeOrder"]
    finally:
        await again.stop()


async def test_a_placement_writes_its_own_rows_not_the_book(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = await started(tws, tmp_path)
    try:
        for n in range(5):
            await gateway.submit(order(f"p{n}"))
        await tws.settle()
        await gateway.flush()
        written: list[Batch] = []
        original = gateway.store._write

        def spy(batch: Batch) -> float:
            written.append(batch)
            return original(batch)

        gateway.store._write = spy  # type: ignore[method-assign]
        await gateway.submit(order("p9"))
        await tws.settle()
        await gateway.flush()
        assert {intent for batch in written for intent, _, _ in batch.tracks} == {"p9"}
        with sqlite3.connect(tmp_path / STATE_FILE) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 6
    finally:
        await gateway.stop()


def test_store_keeps_the_newest_ended_orders_within_the_cap(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    ended = [
        (f"t{n}", True, OrderTrack(intent_id=f"t{n}", quantity=1, phase=Phase.FILLED).model_dump_json()) for n in range(MAX_TERMINAL_TRACKS + 50)
    ]
    live = ("open", False, OrderTrack(intent_id="open", quantity=1).model_dump_json())
    store.write_now(Batch(tracks=[live, *ended]))
    store.prune_now()
    snap = store.load()
    names = [t.intent_id for t in snap.tracks]
    assert len(names) == MAX_TERMINAL_TRACKS + 1 and "open" in names and "t0" not in names and f"t{MAX_TERMINAL_TRACKS + 49}" in names
    store.close()


async def test_lost_state_file_finds_the_order_at_ib_by_order_ref(tmp_path: Path) -> None:
    tws = FakeTWS()
    first = await started(tws, tmp_path / "a")
    await first.submit(order("z1", quantity=300))
    tws.apply({"cb": "fill", "order": "z1", "shares": 100, "price": 190.0})
    await tws.settle()
    await first.stop()
    fresh = await started(tws, tmp_path / "b")  # no state file
    try:
        events = await fresh.submit(order("z1", quantity=300))
        assert kinds(events) == ["ACCEPTED", "FILL"] and events[-1].cum_qty == 100 and events[-1].leaves_qty == 200
        assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["z1"]
        status = await fresh.order_status("z1")
        assert status.known and status.cum_qty == 100
    finally:
        await fresh.stop()


async def test_a_different_client_id_with_open_orders_refuses_to_start(tmp_path: Path) -> None:
    tws = FakeTWS()
    first = await started(tws, tmp_path)
    await first.submit(order("c1"))
    await first.stop()
    with pytest.raises(IbkrConfigError) as caught:
        gateway_over(tws, tmp_path, client_id=18)
    message = str(caught.value)
    assert "\n" not in message and "client id 17" in message and "IB_CLIENT_ID=17" in message and "c1" in message
    tws.apply({"cb": "cancelled", "order": "c1"})  # once its orders are over, the client id may change
    again = await started(tws, tmp_path)
    await again.stop()
    moved = await started(tws, tmp_path, client_id=18)
    await moved.stop()


async def test_ib_account_must_be_one_the_login_manages(tmp_path: Path) -> None:
    tws = FakeTWS(account=["DU111", "DU222"])
    several = gateway_over(tws, tmp_path / "a")
    with pytest.raises(IbkrConfigError, match=r"manages 2 accounts .*DU111, DU222.*set IB_ACCOUNT"):
        await several.start()
    await several.stop()
    wrong = gateway_over(tws, tmp_path / "b", account="DU999")
    with pytest.raises(IbkrConfigError, match="IB_ACCOUNT DU999 is not among"):
        await wrong.start()
    await wrong.stop()
    chosen = await started(tws, tmp_path / "c", account="DU222")
    try:
        await chosen.submit(order("a2"))
        assert tws.order("a2").account == "DU222"
    finally:
        await chosen.stop()


async def test_written_ahead_but_never_sent_is_unknown_then_placed_by_the_retry(tmp_path: Path) -> None:
    tws = FakeTWS()
    crashed = gateway_over(tws, tmp_path)
    crashed.translator.register(crashed._new_track(order("w1"), rig_order_ref("desk1", "w1")))
    crashed.save_now()  # the process died between the write-ahead and placeOrder
    crashed.store.close()
    sink = RecordingSink()
    gateway = gateway_over(tws, tmp_path, sink)
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
    gateway = await started(tws, tmp_path)
    try:
        status = await gateway.order_status("nobody")
        assert status == VenueOrderStatus(intent_id="nobody", known=False, last_kind=ExecKind.UNKNOWN_ORDER)
        assert kinds(await gateway.cancel("nobody")) == ["UNKNOWN_ORDER"]
    finally:
        await gateway.stop()


async def test_cancel_confirmed_verdicts(tmp_path: Path) -> None:
    tws = FakeTWS(auto_cancel=False)
    gateway = await started(tws, tmp_path)
    try:
        await gateway.submit(order("v1"))
        tws.on_cancel_script["v1"] = [{"cb": "orderStatus", "status": "PendingCancel"}]
        pending = await gateway.cancel_confirmed(IbkrCancel(intent_id="v1", wait_seconds=0.2))
        assert (pending.verdict, pending.cum_qty, kinds(pending.events)) == (CancelVerdict.PENDING_CANCEL, 0, ["ACCEPTED", "CANCEL_PENDING"])
        assert not pending.verdict.final
        tws.apply({"cb": "fill", "order": "v1", "shares": 100, "price": 190.0})  # IB fills the original before confirming
        done = await gateway.cancel_confirmed(IbkrCancel(intent_id="v1", wait_seconds=2.0))
        assert (done.verdict, done.cum_qty, done.leaves_qty) == (CancelVerdict.FILLED, 100, 0) and done.verdict.final
        assert [r[1] for r in tws.requests if r[0] == "cancelOrder"] == ["v1"]  # pending: not sent twice

        await gateway.submit(order("v2"))
        tws.on_cancel_script["v2"] = [{"cb": "error", "code": 161, "message": "Cancel attempted when order is not in a cancellable state."}]
        refused = await gateway.cancel_confirmed(IbkrCancel(intent_id="v2", wait_seconds=2.0))
        assert refused.verdict is CancelVerdict.REFUSED and "161" in refused.text
        tws.on_cancel_script["v2"] = [{"cb": "fill", "shares": 30, "price": 190.0}, {"cb": "cancelled"}]
        canceled = await gateway.cancel_confirmed(IbkrCancel(intent_id="v2", wait_seconds=2.0))
        assert (canceled.verdict, canceled.cum_qty) == (CancelVerdict.CANCELED, 30)
        assert kinds(canceled.events) == ["ACCEPTED", "CANCEL_REJECTED", "FILL", "CANCELED"]
    finally:
        await gateway.stop()


async def test_native_modify_keeps_the_order_and_refuses_below_filled(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = await started(tws, tmp_path)
    try:
        await gateway.submit(order("m1", quantity=300))
        perm = tws.order("m1").perm_id
        tws.apply({"cb": "fill", "order": "m1", "shares": 100, "price": 190.0})
        await tws.settle()
        done = await gateway.modify(IbkrModify(intent_id="m1", total_quantity=250, limit_price=189.555))
        assert done.accepted and done.total_quantity == 250 and done.limit_price == 189.55, done
        book = tws.order("m1")
        assert (book.perm_id, book.quantity, book.lmt_price, len(tws.orders)) == (perm, 250, 189.55, 1)
        refused = await gateway.modify(IbkrModify(intent_id="m1", total_quantity=50))
        assert not refused.accepted and "below the 100 filled" in refused.text and tws.order("m1").quantity == 250
        tws.apply({"cb": "fill", "order": "m1", "shares": 150, "price": 189.55})
        await tws.settle()
        await gateway.idle()
        assert gateway.translator.tracks["m1"].phase is Phase.FILLED
    finally:
        await gateway.stop()


async def test_unlisted_reject_before_the_ack_ends_rejected_and_a_later_live_order_is_canceled(tmp_path: Path) -> None:
    tws = FakeTWS()
    tws.on_place_script["u1"] = [{"cb": "error", "code": 10318, "message": "Order rejected: a rule the rig does not list"}]
    gateway = await started(tws, tmp_path)
    try:
        (rejected,) = await gateway.submit(order("u1"))
        assert rejected.kind is ExecKind.REJECTED and "10318" in rejected.text and "rule the rig" in rejected.text
        tws.apply({"cb": "orderStatus", "order": "u1", "status": "Submitted"})  # IB says it works after all
        await tws.settle()
        await tws.settle()
        assert [r[1] for r in tws.requests if r[0] == "cancelOrder"] == ["u1"] and tws.order("u1").status == "Cancelled"
    finally:
        await gateway.stop()


async def test_updates_reach_the_placing_client_and_the_master_client_only(tmp_path: Path) -> None:
    tws = FakeTWS(master_client_id=99)
    await tws.start()
    master, other = IB(), IB()
    await master.connectAsync("127.0.0.1", tws.port, clientId=99, timeout=5)
    await other.connectAsync("127.0.0.1", tws.port, clientId=5, timeout=5)
    gateway = await started(tws, tmp_path)
    try:
        await gateway.submit(order("r1"))
        tws.apply({"cb": "fill", "order": "r1", "shares": 100, "price": 190.0})
        await tws.settle()
        assert [t.order.orderRef for t in master.trades()] == ["rig/desk1/r1"] and len(master.fills()) == 1
        assert other.trades() == [] and other.fills() == []
        assert await other.reqExecutionsAsync() == []  # another client's executions: the master's to see
        assert len(await master.reqExecutionsAsync()) == 1
        refused = IB()
        with pytest.raises((ConnectionError, TimeoutError)):
            await refused.connectAsync("127.0.0.1", tws.port, clientId=5, timeout=2)  # 326: client id in use
    finally:
        await gateway.stop()
        master.disconnect()
        other.disconnect()
        await tws.stop()


async def test_activities_while_disconnected_ask_for_a_retry(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = await started(tws, tmp_path, reconnect_min_delay=0.05, reconnect_max_delay=0.05)
    try:
        tws.drop_connection(then_down=True)
        while gateway.connected:
            await asyncio.sleep(0)
        with pytest.raises(NotConnected, match=r"127\.0\.0\.1:\d+"):
            await gateway.submit(order("n1"))
        tws.up = True
        await gateway.wait_connected()
        assert kinds(await gateway.submit(order("n1"))) == ["ACCEPTED"]
        assert gateway.reconciliations == 2
    finally:
        await gateway.stop()


async def test_positions_are_compared_on_connect_and_a_divergence_reaches_every_account(tmp_path: Path) -> None:
    tws = FakeTWS()
    tws.seed_positions["AAPL"] = 200
    books = StaticBooks({"desk1": {"AAPL": 100}, "desk2": {"AAPL": 100}})
    sink = RecordingSink()
    gateway = await started(tws, tmp_path, sink=sink, books=books, rig_accounts=("desk1", "desk2"))
    try:
        assert gateway.divergences == []  # in line
        tws.seed_positions["AAPL"] = 150  # e.g. shares moved outside the rig
        assert await gateway.check_positions() == []  # first sighting
        told = await gateway.check_positions()
        assert [(d.account, d.ib_position, d.book_position, d.account_position) for d in told] == [("desk1", 150, 200, 100), ("desk2", 150, 200, 100)]
        await gateway.idle()
        assert sink.divergences == told
        assert books.books == {"desk1": {"AAPL": 100}, "desk2": {"AAPL": 100}}  # never overwritten
        tws.seed_positions["AAPL"] = 200  # the shares came back
        resolved = await gateway.check_positions()
        assert [(d.account, d.difference, d.text.startswith("IB and the rig's books agree again")) for d in resolved] == [
            ("desk1", 0, True),
            ("desk2", 0, True),
        ]
    finally:
        await gateway.stop()


async def test_ib_1101_connectivity_restored_resubscribes_and_reconciles(tmp_path: Path) -> None:
    tws = FakeTWS()
    gateway = await started(tws, tmp_path)
    try:
        await gateway.subscribe_quotes("MSFT")
        tws.link_lost(1100)
        await tws.settle()
        assert gateway.link_down is not None and gateway.link_down[0] == 1100
        tws.link_restored(1101)
        for _ in range(5):
            await tws.settle()
        assert [r[1] for r in tws.requests if r[0] == "reqMktData"] == ["MSFT", "MSFT"]
        assert gateway.reconciliations == 2 and gateway.link_down is None
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
    monkeypatch.setenv("RIG_IBKR_ACCOUNTS", "desk1,desk2")
    monkeypatch.setenv("RIG_IBKR_SESSION_CLOSE", "13:00")
    monkeypatch.setenv("RIG_IBKR_POSITIONS_SECONDS", "30")
    s = IbkrSettings.from_env()
    assert (s.where, s.client_id, s.account, s.task_queue, str(s.state_dir)) == ("10.0.0.5:4002", 23, "DU999", "q-ib", "/tmp/ibkr-x")
    assert (s.rig_accounts, s.session_close, s.positions_every) == (("desk1", "desk2"), "13:00", 30.0)
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
    from testkit.contract import ContractRun

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
    modified: ModifyOutcome
    confirmed: CancelOutcome
    canceled: list[ExecutionEvent]
    fills: list[ExecutionEvent]


@workflow.defn(name="IbkrActivityCaller")
class IbkrActivityCaller:
    @workflow.run
    async def run(self, queue: str) -> CallerResult:
        opts: dict[str, Any] = {"task_queue": queue, "start_to_close_timeout": timedelta(seconds=20), "retry_policy": RetryPolicy(maximum_attempts=3)}
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
        modified = await workflow.execute_activity(IBKR_MODIFY, IbkrModify(intent_id="t1", total_quantity=150), result_type=ModifyOutcome, **opts)
        confirmed = await workflow.execute_activity(
            IBKR_CANCEL_CONFIRMED, IbkrCancel(intent_id="t1", wait_seconds=5), result_type=CancelOutcome, **opts
        )
        canceled = await workflow.execute_activity(IBKR_CANCEL, "t1", result_type=list[ExecutionEvent], **opts)
        fills = await workflow.execute_activity(IBKR_EXECUTIONS_SINCE, None, result_type=list[ExecutionEvent], **opts)
        return CallerResult(submitted=submitted, again=again, status=status, modified=modified, confirmed=confirmed, canceled=canceled, fills=fills)


@pytest_asyncio.fixture(scope="module")
async def temporal_address():
    from worker import server

    port = free_port()
    proc = await asyncio.to_thread(server.start, "127.0.0.1", port, None)
    yield f"127.0.0.1:{port}"
    await asyncio.to_thread(server.stop, proc)


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


@workflow.defn(name="LateFillRecorder")
class LateFillRecorder:
    def __init__(self) -> None:
        self.late: list[LateFill] = []

    @workflow.run
    async def run(self) -> list[LateFill]:
        await workflow.wait_condition(lambda: len(self.late) >= 1)
        return self.late

    @workflow.signal(name=SIGNAL_BROKER_LATE_FILL)
    def broker_late_fill(self, message: LateFill) -> None:
        self.late.append(message)


async def test_rig_sink_says_a_closed_order_was_not_delivered_and_signals_the_account(temporal_client: Client) -> None:
    queue = f"rigsink-{uuid.uuid4().hex[:8]}"
    account = f"acct{uuid.uuid4().hex[:6]}"
    sink = RigSink(temporal_client)
    fill = ExecutionEvent(
        intent_id=f"gone-{uuid.uuid4().hex[:6]}", kind=ExecKind.FILL, exec_id="e.9.01", last_qty=60, last_px=110.0, cum_qty=60, commission=1.0
    )
    assert await sink.deliver(fill) is False  # no running order workflow: the gateway sends it to the account
    async with Worker(temporal_client, task_queue=queue, workflows=[LateFillRecorder], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await temporal_client.start_workflow(LateFillRecorder.run, id=risk_workflow_id(account), task_queue=queue)
        message = LateFill(account=account, intent_id=fill.intent_id, symbol="XOM", side="BUY", event=fill, detail="after close")
        await sink.late_fill(message)
        assert await handle.result() == [message]


async def test_ibkr_activities_on_their_task_queue(temporal_client: Client, tmp_path: Path) -> None:
    queue = f"risk-rig-ibkr-{uuid.uuid4().hex[:6]}"
    tws = FakeTWS()
    gateway = gateway_over(tws, tmp_path, RigSink(temporal_client), task_queue=queue)
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
        assert result.modified.accepted and result.modified.total_quantity == 150 and tws.order("t1").quantity == 150
        assert result.confirmed.verdict is CancelVerdict.CANCELED and kinds(result.confirmed.events) == ["ACCEPTED", "CANCEL_PENDING", "CANCELED"]
        assert canceled == result.confirmed.events  # asked again: the same whole history
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
    from testkit.ibkr.paper_check import checked_limit, market_price, paper_round_trip

    tws = FakeTWS(auto_ack=False)
    tws.prices["AAPL"] = 190.0
    tws.on_place_script["live-1"] = [
        {"cb": "openOrder", "status": "PreSubmitted"},
        {"cb": "orderStatus", "status": "PreSubmitted"},
        {"cb": "error", "code": 10349, "message": "Order TIF was set to DAY based on order preset."},
    ]
    sink = RecordingSink()
    gateway = gateway_over(tws, tmp_path, sink)
    await gateway.start()
    try:
        market = await market_price(gateway, "AAPL")
        assert market == 190.0 and checked_limit(None, market) == 95.0
        with pytest.raises(AssertionError, match="not far below the market"):
            checked_limit(185.0, market)  # a given limit that could fill is refused before anything is placed
        events = await paper_round_trip(gateway, sink, "live-1", "AAPL", checked_limit(95.0, market))
    finally:
        await gateway.stop()
    assert kinds(events)[0] == "ACCEPTED" and kinds(events)[-1] == "CANCELED"
    assert [r[1] for r in tws.requests if r[0] == "placeOrder"] == ["live-1"]


async def test_paper_round_trip_cancels_in_finally_when_a_step_fails(tmp_path: Path) -> None:
    from testkit.ibkr.paper_check import paper_round_trip

    tws = FakeTWS()
    sink = RecordingSink()
    gateway = gateway_over(tws, tmp_path, sink)
    await gateway.start()
    try:
        # the order is acknowledged, then the status step fails on purpose: the order must not stay working
        original = gateway.order_status

        async def broken(intent_id: str) -> VenueOrderStatus:
            raise RuntimeError("the check failed half way")

        gateway.order_status = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="half way"):
            await paper_round_trip(gateway, sink, "live-2", "AAPL", 95.0)
        gateway.order_status = original  # type: ignore[method-assign]
        assert [r[1] for r in tws.requests if r[0] == "cancelOrder"] == ["live-2"] and tws.order("live-2").status == "Cancelled"
    finally:
        await gateway.stop()


async def test_race_filled_status_without_its_execution(tmp_path: Path) -> None:
    run = await race("filled_status_without_execution", tmp_path)
    assert run.positions() == run.tws.positions() == {"CVX": -100}


def test_every_scenario_file_has_its_named_test() -> None:
    source = Path(__file__).read_text()
    for path in RACES.glob("*.json"):
        spec = json.loads(path.read_text())
        assert spec["race"] and spec["description"] and spec["handling"], path.name
        assert f'race("{path.stem}"' in source, f"{path.name} is not run by a test"


def test_the_json_state_of_earlier_versions_is_imported_once(tmp_path: Path) -> None:
    old_track = OrderTrack(
        intent_id="old1", quantity=100, symbol="AAPL", side="BUY", client_id=17, order_id=3, perm_id=900000001, phase=Phase.ACCEPTED
    )
    fill = ExecutionEvent(intent_id="old1", kind=ExecKind.FILL, exec_id="e.1.01", last_qty=10, last_px=190.0, cum_qty=10, leaves_qty=90)
    legacy = {"version": 1, "client_id": 17, "tracks": [old_track.model_dump(mode="json")], "journal": [fill.model_dump(mode="json")],
              "cursor": "e.1.01", "outbox": [fill.model_dump(mode="json")], "market_data": {"AAPL": 265598}}  # fmt: skip
    (tmp_path / "ibkr-state.json").write_text(json.dumps(legacy))
    store = StateStore(tmp_path)
    snap = store.load()
    store.close()
    (track,) = snap.tracks
    assert (track.intent_id, track.order_ref, track.perm_id) == ("old1", "old1", 900000001)  # found at IB by permId and its bare orderRef
    assert snap.journal == [fill] and snap.meta["client_id"] == "17" and json.loads(snap.meta["market_data"]) == {"AAPL": 265598}
    assert [json.loads(body)["event"]["exec_id"] for _, body in snap.outbox] == ["e.1.01"]
    assert not (tmp_path / "ibkr-state.json").exists() and (tmp_path / "ibkr-state.json.imported").exists()


def test_the_worker_image_carries_no_ibkr_test_kit(tmp_path: Path) -> None:
    from tests.test_compose import rebuild_image_files  # here: it reads the Dockerfile and .dockerignore

    rebuild_image_files(tmp_path / "image")
    shipped = [p.relative_to(tmp_path / "image").as_posix() for p in (tmp_path / "image").rglob("*.py")]
    assert any(p.endswith("venues/ibkr/gateway.py") for p in shipped)
    kits = [p for p in shipped if "/testkit/" in f"/{p}" or p.endswith(("ibkr/fake.py", "ibkr/replay.py", "ibkr/paper_check.py"))]
    assert kits == []
