"""Issue 9, focused: an account is opened, never implied; nothing an order does (or fails to do)
can fail or stall it; no input can fail its workflow task; a terminated account comes back with
its book; live accounts keep the exchange's clock; what it carries stays small; rules change
through a validated update. Against the real dev server, except the pure checks."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.scenarios import plan_scenario
from domain.clock import exchange_now, read_clock
from domain.digest import ITEMS_KEPT, RunDigest
from domain.enums import (
    Bucket,
    IntentKind,
    OrderState,
    Regime,
    RejectReason,
    RiskMode,
    Side,
)
from domain.events import ExposureEvent
from domain.ledger import FILL_IDS_KEPT, FILLS_KEPT, OUTCOMES_KEPT, BookState, ClosedOrder, FillRecord, Journal, LedgerOrder
from domain.models import Intent, OpenOrder, Position
from domain.order import OrderOutcome, OrderReport
from domain.policy import DecisionInput
from protocol import run_digest
from protocol.account_state import AccountState, CycleState, MarketState, OrdersState
from protocol.carry import pack, unpack
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    RISK_WORKFLOW,
    SCENARIO_WORKFLOW,
    SIGNAL_ORDER_REPORT,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_PRETRADE,
    UPDATE_REPLACE,
    UPDATE_SET_RULES,
    UPDATE_SET_SESSION,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    pretrade_update_id,
    risk_workflow_id,
)
from protocol.messages import Answer, DecisionRecord, IntentRecord, PretradeReply, PretradeRequest, RiskInput, RiskView
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, open_account, submit, wait_state, with_fills
from tests.conftest import TASK_QUEUE
from tests.drills import rig
from tests.faults import cycles_advance, reset, until_view, view_of
from workflows.account.cycle import INTENTS_KEPT
from workflows.account.orders import ANSWERS_KEPT

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD_LIMIT = 2 * 1024 * 1024


async def cancel_all(client, ids) -> None:
    from activities.client_ops import cancel_via_client
    from protocol.messages import CancelRequest

    await asyncio.gather(*[cancel_via_client(client, i, CancelRequest(note="test over")) for i in ids])


# ── accounts are opened, never implied ──────────────────────────────────────────────────────
async def test_an_order_for_an_unknown_account_is_rejected_and_opens_nothing(client, worker, account):
    snap = await finish(await submit(client, intent(account, "u1")))
    assert (snap.state, snap.reject_reason) == (OrderState.REJECTED, RejectReason.UNKNOWN_ACCOUNT)
    assert f"rig account open {account} --equity N" in snap.reject_message, snap.reject_message
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(risk_workflow_id(account)).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND, "an order must never open its account"


# ── no order can fail or stall its account ──────────────────────────────────────────────────
async def test_a_terminated_order_is_lost_its_potential_released_and_the_account_keeps_cycling(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    gone, stays = await submit(client, intent(account, "t1")), await submit(client, intent(account, "t2", symbol="MSFT", limit_price=400.0))
    await wait_state(gone, {OrderState.WORKING})
    await wait_state(stays, {OrderState.WORKING})
    before = await until_view(
        client, account, lambda v: {o.intent_id: o.state for o in v.open_orders} == {gone.id: OrderState.WORKING, stays.id: OrderState.WORKING}
    )
    await gone.terminate("an operator clicked terminate in the UI")
    view = await until_view(client, account, lambda v: any(o.intent_id == gone.id for o in v.lost), what="the terminated order recorded LOST")
    lost = next(o for o in view.lost if o.intent_id == gone.id)
    assert "terminated" in lost.lost_cause, lost.lost_cause
    assert [o.intent_id for o in view.open_orders] == [stays.id]
    assert view.exposure.open_orders_potential.open_order_count == 1  # its potential is released
    assert view.exposure.potential_exposure_pct < before.exposure.potential_exposure_pct
    assert view.exposure.group_exposure["TECH_HARDWARE"].potential_pct == 0  # AAPL's group: nothing left there
    await cycles_advance(client, account, by=3)
    again = await submit(client, intent(account, "t3"))  # pre-trade still answers
    assert (await wait_state(again, {OrderState.WORKING, OrderState.REJECTED})).state is OrderState.WORKING
    await cancel_all(client, [stays.id, again.id])


async def test_a_reset_order_keeps_going_and_its_fills_are_applied_once(env, client, worker, config, account):
    # Partial fills only (never complete): the order rests PARTIAL_FILL with fills from its arrival and the cycles.
    await open_account(env, account, config, other=0.7, partial_fill_probability=1.0, cancel_cross_probability=0.0, seed=5)
    handle = await submit(client, intent(account, "rs1", quantity=1000))
    deadline = time.monotonic() + 30
    while len((snap := await handle.query(QUERY_STATE, result_type=OrderSnapshot)).fills) < 2:
        assert time.monotonic() < deadline, f"the order never had two fills: {snap.state} {snap.fills}"
        await asyncio.sleep(0.1)
    new_run = await reset(client, handle.id, which="first", reason="operator reset to the first workflow task")
    assert new_run != handle.run_id
    await cycles_advance(client, account, by=3)
    after_reset = await client.get_workflow_handle(handle.id).query(QUERY_STATE, result_type=OrderSnapshot)
    assert after_reset.state.is_open, after_reset.history[-3:]
    await cancel_all(client, [handle.id])
    final = await finish(client.get_workflow_handle(handle.id))
    assert final.state.is_terminal
    fill_ids = [f.fill_id for f in final.fills]
    assert len(fill_ids) == len(set(fill_ids)) and {f.fill_id for f in snap.fills} <= set(fill_ids), "the reset order kept its fills"
    view = await until_view(client, account, lambda v: not [o for o in v.open_orders if not o.synthetic], what="the order closed in the ledger")
    assert {p.symbol: p.quantity for p in view.positions if p.quantity} == {"AAPL": final.filled_quantity}, "each fill applied once"
    assert not view.lost, view.lost


async def test_a_closed_order_reset_to_its_first_task_takes_the_accounts_record(env, client, worker, config, account):
    """An operator resets an order that FILLED at its arrival: the new run asks its account, which
    answers with its record of the closed order. The order ends FILLED with the same fills (never
    REJECTED, never filled twice)."""
    await open_account(env, account, config, other=1.0, partial_fill_probability=0.0, cancel_cross_probability=0.0)
    handle = await submit(client, intent(account, "done1", quantity=100))
    filled = await finish(handle)
    assert filled.state is OrderState.FILLED and filled.fills
    await reset(client, handle.id, which="first", reason="operator reset of a filled order")
    again = await finish(client.get_workflow_handle(handle.id))
    assert (again.state, again.reject_reason) == (OrderState.FILLED, None), again.history[-3:]
    assert [f.fill_id for f in again.fills] == [f.fill_id for f in filled.fills]
    view = await view_of(client, account)
    assert {p.symbol: p.quantity for p in view.positions if p.quantity} == {"AAPL": filled.filled_quantity} and not view.lost


async def test_an_order_stuck_before_its_verdict_is_reconciled(env, client, worker, config, account):
    """The account answered pre-trade, but the order never read the answer: one never started,
    one waits for a workflow task no worker will run and is then terminated."""
    handle = await open_account(env, account, config, other=0.0)
    never, stuck = f"{account}-never", f"{account}-stuck"
    raw_stuck = intent(account, "stuck")
    order = await client.start_workflow(ORDER_WORKFLOW, raw_stuck, id=stuck, task_queue=f"no-worker-{account}")
    # As the orders' own requests: signed, under `<intent>@<run>` (the never-started one's run id made up).
    runs = {never: str(uuid.uuid4()), stuck: order.result_run_id or ""}
    for intent_id, raw in ((never, intent(account, "never")), (stuck, raw_stuck)):
        reply = await client.get_workflow_handle(handle.id).execute_update(
            UPDATE_PRETRADE,
            PretradeRequest(intent_id=intent_id, raw_intent=raw),
            id=pretrade_update_id(intent_id, runs[intent_id]),
            result_type=PretradeReply,
        )
        assert reply.approved, reply.message
    view = await view_of(client, account)
    assert {o.intent_id for o in view.open_orders} == {never, stuck}
    await order.terminate("stuck before its verdict")
    view = await until_view(client, account, lambda v: {o.intent_id for o in v.lost} == {never, stuck} and not v.open_orders, what="both reconciled")
    causes = {o.intent_id: o.lost_cause for o in view.lost}
    assert "no such workflow" in causes[never] and "terminated" in causes[stuck], causes
    assert view.exposure.open_orders_potential.open_order_count == 0
    again = await submit(client, intent(account, "after"))
    assert (await wait_state(again, {OrderState.WORKING, OrderState.REJECTED})).state is OrderState.WORKING
    await cancel_all(client, [again.id])


# ── no input can fail a workflow task ───────────────────────────────────────────────────────
async def test_a_400_digit_quantity_is_rejected_and_the_account_keeps_cycling(env, client, worker, config, account):
    handle = await open_account(env, account, config, other=0.0)
    huge = 10**400
    cases = {"q+": dict(quantity=huge), "q-": dict(quantity=-huge), "px": dict(limit_price=huge), "px2": dict(limit_price=1e308, quantity=100)}
    snaps = await asyncio.gather(*[finish(await submit(client, intent(account, name, **fields))) for name, fields in cases.items()])
    for (name, _), snap in zip(cases.items(), snaps):
        assert snap.state is OrderState.REJECTED, (name, snap)
        assert snap.reject_reason in (RejectReason.BAD_QUANTITY, RejectReason.BAD_PRICE, RejectReason.MALFORMED_INTENT), (name, snap.reject_reason)
        assert len(snap.reject_message or "") < 500
    assert snaps[0].reject_reason is RejectReason.BAD_QUANTITY and "digits" in snaps[0].reject_message
    # Straight at the account: a hostile caller's request is refused unsigned; signed, as an
    # order's own request, it is judged and the answer is no.
    request = PretradeRequest(intent_id=f"{account}-raw", raw_intent=intent(account, "raw", quantity=huge))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(UPDATE_PRETRADE, request, id=f"{account}-raw-unsigned", result_type=PretradeReply)
    raw_id = pretrade_update_id(request.intent_id, str(uuid.uuid4()))
    reply = await client.get_workflow_handle(handle.id).execute_update(UPDATE_PRETRADE, request, id=raw_id, result_type=PretradeReply)
    assert not reply.approved
    for event in ({"positions": [{"symbol": "AAPL", "bucket": "LT", "quantity": huge}]}, {"equity": huge}, {"marks": {"AAPL": huge}}):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(UPDATE_INJECT_EXPOSURE, event, result_type=str)
    working = await submit(client, intent(account, "ok"))
    assert (await wait_state(working, {OrderState.WORKING, OrderState.REJECTED})).state is OrderState.WORKING
    await cycles_advance(client, account, by=3)
    view = await view_of(client, account)
    assert view.positions == [] and [o.intent_id for o in view.open_orders] == [working.id]
    await cancel_all(client, [working.id])


# ── mistakes are recoverable ────────────────────────────────────────────────────────────────
async def test_a_terminated_account_comes_back_with_its_book_and_refuses_orders_meanwhile(env, client, worker, config, account):
    handle = await open_account(env, account, config, other=0.6, partial_fill_probability=1.0, cancel_cross_probability=0.0, seed=8)
    orders = [
        await submit(client, intent(account, f"b{i}", symbol=s, quantity=1000, limit_price=p))
        for i, (s, p) in enumerate((("AAPL", 190.0), ("MSFT", 400.0), ("XOM", 110.0)))
    ]
    await until_view(
        client,
        account,
        lambda v: len([p for p in v.positions if p.quantity]) >= 2 and len(v.open_orders) == 3,
        what="a book with positions and open orders",
    )
    # Freeze the book (nothing fills from now on) so before and after can be compared exactly.
    frozen = with_fills(config, 1, other=0.0, partial_fill_probability=1.0, cancel_cross_probability=0.0).rules
    await handle.execute_update(UPDATE_SET_RULES, frozen, result_type=str)
    await cycles_advance(client, account, by=2)
    terminated = await handle.describe()
    await client.get_workflow_handle(handle.id).terminate("terminated by mistake from the UI")
    # A query on the closed run is answered by replay: its book as it was.
    before = await client.get_workflow_handle(handle.id, run_id=terminated.run_id).query(QUERY_STATE, result_type=RiskView)
    assert before.positions and len(before.open_orders) == 3

    refused = await finish(await submit(client, intent(account, "while-closed")))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.UNKNOWN_ACCOUNT)
    assert f"rig account reopen {account}" in refused.reject_message, refused.reject_message
    changed = next(o for o in orders if o.id in {x.intent_id for x in before.open_orders})
    await changed.terminate("an order that changed while its account was closed")

    address = client.service_client.config.target_host
    run = await asyncio.to_thread(rig, address, "account", "reopen", account)
    assert run.returncode == 0 and f"reopened account {account}" in run.stdout, run.stdout + run.stderr
    # Its own audit reads back the order that changed meanwhile; the rest of the book is as it was.
    after = await until_view(client, account, lambda v: [o.intent_id for o in v.lost] == [changed.id], what="the audit after the reopen")
    assert "terminated" in after.lost[0].lost_cause
    assert sorted(after.positions, key=lambda p: p.symbol) == sorted(before.positions, key=lambda p: p.symbol)
    assert {(o.intent_id, o.filled) for o in after.open_orders} == {(o.intent_id, o.filled) for o in before.open_orders if o.intent_id != changed.id}
    # Applied fill ids came back too: a fill reported again changes nothing.
    some = next(s for s in [await o.query(QUERY_STATE, result_type=OrderSnapshot) for o in orders if o.id != changed.id] if s.fills)
    await handle.signal(
        SIGNAL_ORDER_REPORT,
        OrderReport(intent_id=some.intent_id, state=some.state, quantity=some.quantity, filled_quantity=some.filled_quantity, fills=some.fills),
    )
    await cycles_advance(client, account, by=1)
    assert (await view_of(client, account)).positions == after.positions
    again = await submit(client, intent(account, "after-reopen", quantity=100))
    assert (await wait_state(again, {OrderState.WORKING, OrderState.REJECTED})).state is OrderState.WORKING
    again_run = await asyncio.to_thread(rig, address, "account", "reopen", account)
    assert again_run.returncode != 0 and "is open" in again_run.stderr and "Traceback" not in again_run.stderr
    await cancel_all(client, [o.id for o in orders if o.id != changed.id] + [again.id])


async def test_a_cancelled_account_reopens_with_its_book_and_stays_open(env, client, worker, config, account):
    """The UI's Cancel on an account closes it like Terminate; `reopen` must come back from a point
    before the cancel request (one after it would replay the cancel and close the new run again)."""
    handle = await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    order = await submit(client, intent(account, "kept", quantity=100))
    await wait_state(order, {OrderState.WORKING})
    await handle.cancel()
    for _ in range(100):
        if (await handle.describe()).status.name == "CANCELED":
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status.name == "CANCELED"
    run = await asyncio.to_thread(rig, client.service_client.config.target_host, "account", "reopen", account)
    assert run.returncode == 0, run.stdout + run.stderr
    view = await until_view(client, account, lambda v: any(o.intent_id == order.id for o in v.open_orders), what="the book back")
    await cycles_advance(client, account, by=2)
    assert (await client.get_workflow_handle(handle.id).describe()).status.name == "RUNNING", "the reopened account stays open"
    assert view.lost == []
    await cancel_all(client, [order.id])


async def test_values_a_validator_once_let_through_are_refused_and_fail_no_task(env, client, worker, config, account):
    """Found by an adversarial run on a live server: each was accepted, then failed the account's
    (or order's) next workflow task or meant something absurd. Now each is refused by its validator."""
    handle = await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    rules = config.rules.model_dump(mode="json")

    def with_rule(section: str | None, key: str, value):
        changed = {k: (dict(v) if isinstance(v, dict) else v) for k, v in rules.items()}
        (changed[section] if section else changed)[key] = value
        return changed

    refused = [
        (UPDATE_SET_SESSION, {"exchange_time": "23:59:59", "exchange_date": "9999-12-31"}, "exchange_date"),
        (UPDATE_SET_RULES, with_rule("risk_cycle", "cycle_seconds", 10**400), "cycle_seconds"),
        (UPDATE_SET_RULES, with_rule("session", "time_zone", "Ämerica/New_York"), "time_zone"),
        (UPDATE_SET_RULES, with_rule(None, "hard_cap_pct", "Infinity"), "hard_cap_pct"),
        (UPDATE_SET_TRADING_STATE, {"state": "HALTED", "by": "ops", "reason": "r", "freeze": "yes"}, "freeze"),
    ]
    for name, payload, field in refused:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(name, payload, result_type=str)
        assert field in str(info.value.cause), (name, info.value.cause)
    order = await submit(client, intent(account, "r1", quantity=100))
    await wait_state(order, {OrderState.WORKING})
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await order.execute_update(UPDATE_REPLACE, {"quantity": True})
    assert "quantity" in str(info.value.cause), info.value.cause
    await cycles_advance(client, account, by=2)
    for workflow_id in (handle.id, order.id):
        events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
        assert not [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED], workflow_id
    await cancel_all(client, [order.id])


# ── scenarios cannot hang ───────────────────────────────────────────────────────────────────
BAD_SCENARIO = {
    "name": "cancels_a_ghost",
    "start": "10:00",
    "stop": "10:05",
    "events": [
        {"at": "10:01", "order": {"id": "o1", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 190.0}},
        {"at": "10:02", "cancel": {"id": "o2"}},
    ],
    "expect": [{"final_gross_max_pct": 100}],
}


async def test_a_scenario_cancel_of_an_unknown_id_is_refused_at_load(client, worker):
    with pytest.raises(ValueError) as info:
        plan_scenario(BAD_SCENARIO)
    assert str(info.value) == "scenario cancels_a_ghost: event at 10:02: cancel of 'o2', which no earlier order defines"
    with pytest.raises(WorkflowFailureError) as failed:  # started as a workflow: it fails at once with that reason
        await asyncio.wait_for(client.execute_workflow(SCENARIO_WORKFLOW, BAD_SCENARIO, id=f"ghost-{time.time_ns()}", task_queue=TASK_QUEUE), 30)
    assert "cancel of 'o2', which no earlier order defines" in str(failed.value.cause)


# ── long-lived accounts stay correct ────────────────────────────────────────────────────────
def test_a_live_account_reads_the_exchange_clock_across_dst(config):
    rules = config.rules
    assert rules.session.time_zone == "America/New_York"

    def local(utc: datetime) -> datetime:
        return exchange_now(utc.replace(tzinfo=UTC), rules, None)

    for day, switch, before, after in (
        (datetime(2026, 3, 7), datetime(2026, 3, 8, 7), -5, -4),
        (datetime(2026, 10, 31), datetime(2026, 11, 1, 6), -4, -5),
    ):
        for minute in range(0, 3 * 24 * 60, 10):  # three days of a live account's cycles, every 10 minutes
            utc = day + timedelta(minutes=minute)
            offset = before if utc < switch else after
            assert local(utc) == utc + timedelta(hours=offset), utc
    # The regimes read on those days: the session opens at 09:30 exchange time on either side of the change.
    readings = {
        datetime(2026, 3, 6, 14, 30): Regime.OPEN_EARLY,  # Fri 09:30 EST
        datetime(2026, 3, 6, 13, 30): Regime.OUTSIDE_SESSION,
        datetime(2026, 3, 8, 13, 30): Regime.OPEN_EARLY,  # Sun, after the change: 09:30 EDT
        datetime(2026, 3, 9, 13, 30): Regime.OPEN_EARLY,  # Mon 09:30 EDT (08:30 if DST were ignored)
        datetime(2026, 3, 9, 20, 15): Regime.LATE,  # 16:15 EDT
        datetime(2026, 3, 9, 20, 28): Regime.CLOSE,
        datetime(2026, 3, 9, 20, 30): Regime.OUTSIDE_SESSION,
        datetime(2026, 10, 30, 13, 30): Regime.OPEN_EARLY,  # Fri 09:30 EDT
        datetime(2026, 11, 1, 13, 30): Regime.OUTSIDE_SESSION,  # Sun, after the change: 08:30 EST
        datetime(2026, 11, 2, 14, 30): Regime.OPEN_EARLY,  # Mon 09:30 EST
        datetime(2026, 11, 2, 15, 0): Regime.MID,
        datetime(2026, 11, 2, 21, 15): Regime.LATE,  # 16:15 EST
        datetime(2026, 11, 2, 21, 28): Regime.CLOSE,
        datetime(2026, 11, 2, 20, 28): Regime.MID,  # 15:28 EST: a DST-blind clock would say CLOSE
    }
    for utc, regime in readings.items():
        assert read_clock(local(utc).time(), rules).regime is regime, (utc, local(utc))
    # 01:30 on 2026-11-01 happens twice in New York; each instant reads its own wall time, once.
    first, second = local(datetime(2026, 11, 1, 5, 30)), local(datetime(2026, 11, 1, 6, 30))
    assert first == second == datetime(2026, 11, 1, 1, 30)


def _carried_at_every_cap(config, open_orders: int) -> tuple[AccountState, BookState]:
    rnd = random.Random(9)
    symbols = [i.symbol for i in config.universe.instruments]
    kept = config.rules.risk_cycle.decisions_kept

    def an_intent(n: int, kind: IntentKind = IntentKind.NEW) -> Intent:
        symbol = rnd.choice(symbols)
        return Intent(
            intent_id=f"desk-account-7-{n:08d}-{rnd.getrandbits(32):08x}",
            account="desk-account-7",
            symbol=symbol,
            bucket=rnd.choice(list(Bucket)),
            side=rnd.choice(list(Side)),
            quantity=rnd.randrange(1, 10_000) * 100,
            limit_price=round(rnd.uniform(5, 900), 2),
            kind=kind,
        )

    inputs = DecisionInput(
        regime=Regime.MID,
        gross_exposure_pct=101.234567,
        potential_exposure_pct=119.87654,
        lt_current_pct=80.1,
        lt_potential_pct=89.9,
        mm_current_pct=21.13,
        mm_potential_pct=29.99,
        minutes_to_close=123.5,
    )
    decisions = [
        DecisionRecord(
            cycle=n,
            exchange_time=f"{10 + n // 3600 % 6:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
            regime="MID",
            mode=RiskMode.SOFT_DERISK,
            reason="OVER_REGIME_TOLERANCE",
            sentence=f"SOFT_DERISK: gross {rnd.uniform(100, 129):.2f}% reaches the MID tolerance 120% (potential {rnd.uniform(100, 129):.2f}%)",
            gross_pct=rnd.uniform(90, 129),
            potential_pct=rnd.uniform(90, 129),
            tolerance_pct=120.0,
            gross_pct_after=rnd.uniform(90, 129),
            intents=[an_intent(n * 10 + k).intent_id for k in range(5)],
            inputs=inputs,
            skipped=[f"{rnd.choice(symbols)}: STALE_DATA print 412 s old"],
        )
        for n in range(kept)
    ]
    intents = [IntentRecord(cycle=n, exchange_time="16:15:00", intent=an_intent(n, IntentKind.SOFT_DERISK)) for n in range(INTENTS_KEPT)]
    answers = [
        Answer(action="cancel", intent_id=an_intent(n).intent_id, accepted=False, message="order is already FILLED: nothing to cancel")
        for n in range(ANSWERS_KEPT)
    ]
    digest = RunDigest()
    while digest.count < ITEMS_KEPT:  # a full digest log: fills and orders of the desk account, as carried
        for n in range(100):
            i = an_intent(3 * 10**7 + digest.count + n)
            fill = FillRecord(
                cycle=n,
                exchange_time="14:03:21",
                fill_id=f"{i.intent_id}/C{n}",
                intent_id=i.intent_id,
                symbol=i.symbol,
                bucket=i.bucket,
                side=i.side,
                quantity=i.quantity,
                price=i.limit_price,
            )
            outcome = OrderOutcome(intent_id=i.intent_id, state=OrderState.FILLED, quantity=i.quantity, filled_quantity=i.quantity, kind=i.kind)
            run_digest.add_journal(digest, Journal(fills=[fill], closed=[ClosedOrder(outcome=outcome, intent=i)]), "desk-account-7")
        digest.seal()
    state = AccountState(
        market=MarketState(marks={s: round(rnd.uniform(5, 900), 4) for s in symbols}),
        orders=OrdersState(answers=answers),
        cycle=CycleState(decisions=decisions, intents=intents, cycle=10**6, digest=digest),
    )
    orders = {}
    for n in range(open_orders):
        i = an_intent(10**7 + n)
        orders[i.intent_id] = LedgerOrder(
            intent=i,
            state=OrderState.PARTIAL_FILL,
            filled=100,
            heard_cycle=n,
            expires_at="2026-11-26T16:30:00",
            footprint=OpenOrder(
                intent_id=i.intent_id,
                symbol=i.symbol,
                bucket=i.bucket,
                side=i.side,
                remaining=i.quantity - 100,
                kind=i.kind,
                limit_price=i.limit_price,
            ),
        )
    outcomes = {}
    for n in range(OUTCOMES_KEPT):
        i = an_intent(2 * 10**7 + n)
        outcomes[i.intent_id] = OrderOutcome(
            intent_id=i.intent_id,
            state=OrderState.CANCELED,
            quantity=i.quantity,
            filled_quantity=100,
            kind=i.kind,
            lost_cause="terminated from outside" if n % 7 == 0 else None,
        )
    fills = [
        FillRecord(
            cycle=n,
            exchange_time="14:03:21",
            fill_id=f"{an_intent(n).intent_id}/F{n}",
            intent_id=an_intent(n).intent_id,
            symbol=rnd.choice(symbols),
            bucket=Bucket.LT,
            side=Side.BUY,
            quantity=rnd.randrange(1, 100) * 100,
            price=round(rnd.uniform(5, 900), 2),
        )
        for n in range(FILLS_KEPT)
    ]
    book = BookState(
        equity=123_456_789.0,
        positions={f"{s}|{b.value}": Position(symbol=s, bucket=b, quantity=rnd.randrange(-(10**6), 10**6)) for s in symbols for b in Bucket},
        open_orders=orders,
        outcomes=outcomes,
        fills=fills,
        applied_fill_ids=[f"desk-account-7-{n:08d}-{rnd.getrandbits(32):08x}/F{n % 400}" for n in range(FILL_IDS_KEPT)],
    )
    return state, book


def test_state_carried_across_continue_as_new_is_far_below_the_payload_limit_at_every_cap(config):
    state, book = _carried_at_every_cap(config, open_orders=5_000)
    carried = pack(state, book)
    raw_size = len(zlib.decompress(base64.b64decode(carried)))
    # What continue-as-new actually sends: the account's whole input, rules and universe included.
    payload = RiskInput(account="desk-account-7", config=config, carried=carried, synthetic=True).model_dump_json().encode()
    print(
        f"\ncarried state at every cap (decisions {len(state.cycle.decisions)}, intents {len(state.cycle.intents)}, "
        f"answers {len(state.orders.answers)}, digest items {len(state.cycle.digest.log)}, "
        f"open orders {len(book.open_orders)}, outcomes {len(book.outcomes)}, fills {len(book.fills)}, fill ids {len(book.applied_fill_ids)}): "
        f"{raw_size / 1e6:.2f} MB of JSON → {len(carried) / 1e6:.3f} MB carried; continue-as-new input {len(payload) / 1e6:.3f} MB "
        f"({len(payload) / PAYLOAD_LIMIT:.0%} of the 2 MB limit)"
    )
    assert raw_size > PAYLOAD_LIMIT, "the test state must be big enough that compression matters"
    assert len(payload) < PAYLOAD_LIMIT / 2
    back = unpack(carried)
    assert back.state == state and back.book == book


async def test_a_live_account_refuses_synthetic_events(env, client, worker, config, account):
    with env.with_time_skipping_disabled():
        handle = await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=with_fills(config, 1), synthetic=False),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )
    for name, event in ((UPDATE_INJECT_EXPOSURE, ExposureEvent(lt_pct=85, mm_pct=30)), (UPDATE_SET_SESSION, {"exchange_time": "16:16"})):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(name, event, result_type=str)
        assert "only accounts opened for testing (--synthetic)" in str(info.value.cause), info.value.cause
    view = await view_of(client, account)
    assert not view.synthetic and view.positions == [] and view.exposure.gross_exposure_pct == 0
    now_ny = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).replace(tzinfo=None)
    assert abs((datetime.fromisoformat(view.exchange_time) - now_ny).total_seconds()) < 120, "a live account reads the exchange clock"


# ── rules reach a running account through a validated update ────────────────────────────────
def book_at(gross_pct_lt: float, gross_pct_mm: float) -> ExposureEvent:
    """Longs at $500 on 10,000,000 equity: LT in 4 symbols, MM_PURE in 3 (whole shares)."""
    lt, mm = ("AAPL", "MSFT", "XOM", "KO"), ("SPY", "QQQ", "XLF")
    shares = lambda pct, n: int(pct / 100 * 10_000_000 / 500 / n)  # noqa: E731
    positions = [Position(symbol=s, bucket=Bucket.LT, quantity=shares(gross_pct_lt, 4)) for s in lt]
    positions += [Position(symbol=s, bucket=Bucket.MM_PURE, quantity=shares(gross_pct_mm, 3)) for s in mm]
    return ExposureEvent(equity=10_000_000, positions=positions, marks={s: 500.0 for s in lt + mm})


async def test_rules_update_is_applied_and_recorded_and_an_invalid_one_changes_nothing(env, client, worker, config, account):
    # Before the open: the decision moves with the rules, and no de-risk order is ever issued.
    handle = await open_account(env, account, config, start="08:00", other=0.0)
    await handle.execute_update(UPDATE_INJECT_EXPOSURE, book_at(88.0, 41.4), result_type=str)  # 129.4% gross
    view = await until_view(client, account, lambda v: v.last_decision is not None and v.last_decision.gross_pct == pytest.approx(129.4))
    assert (view.mode, view.last_decision.reason) == (RiskMode.THROTTLE_NEW_ORDERS, "POTENTIAL_OVER_LIMIT"), view.last_decision.sentence
    tighter = config.rules.model_copy(update={"hard_cap_pct": 129.0, "risk_cycle": config.rules.risk_cycle.model_copy(update={"cycle_seconds": 1})})
    answer = await handle.execute_update(UPDATE_SET_RULES, tighter, result_type=str)
    assert "hard cap 129%" in answer, answer
    view = await until_view(client, account, lambda v: v.last_decision.reason == "HARD_CAP_BREACH", what="the new hard cap in force")
    assert view.mode is RiskMode.HARD_DERISK and not view.open_orders

    bad = json.loads(tighter.model_dump_json())
    for broken in ({**bad, "hard_cap_pct": -5}, {**bad, "regimes": {}}, {**bad, "unknown_key": 1}, {"hard_cap_pct": "NaN"}, [1, 2], "rules"):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(UPDATE_SET_RULES, broken, result_type=str)
    cycle = (await view_of(client, account)).cycle
    await handle.execute_update(UPDATE_INJECT_EXPOSURE, book_at(88.0, 41.4), result_type=str)  # wakes a cycle under the rules in force
    view = await until_view(client, account, lambda v: v.cycle > cycle)
    assert view.last_decision.reason == "HARD_CAP_BREACH" and view.mode is RiskMode.HARD_DERISK, "a refused update changed nothing"
    history = [e async for e in handle.fetch_history_events()]
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input
        for e in history
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    recorded = [i for i in accepted if i.name == UPDATE_SET_RULES]
    assert len(recorded) == 1, "exactly the valid rules change is recorded in the history"
    assert json.loads(recorded[0].args.payloads[0].data)["hard_cap_pct"] == 129.0


async def test_orders_arriving_while_their_account_continues_as_new_are_judged_not_refused(env, client, worker, config, account):
    """The account refuses pre-trade for a moment while it continues-as-new ("retry"): that is
    the order's cue to ask again, never a verdict. Here it continues-as-new after every cycle."""
    rules = with_fills(config, 1, other=0.0)
    rules = rules.model_copy(
        update={"rules": rules.rules.model_copy(update={"risk_cycle": rules.rules.risk_cycle.model_copy(update={"cycles_per_run": 1})})}
    )
    with env.with_time_skipping_disabled():
        await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=rules, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )
    handles = []
    for wave in range(4):
        handles += await asyncio.gather(*[submit(client, intent(account, f"w{wave}-{n}", quantity=10)) for n in range(15)])
        await asyncio.sleep(0.4)
    snaps = [await wait_state(h, {OrderState.WORKING, OrderState.PARTIAL_FILL, OrderState.REJECTED}) for h in handles]
    refused = [(s.intent_id, s.reject_reason, s.reject_message) for s in snaps if s.state is OrderState.REJECTED]
    assert not refused, refused
    runs = [wf async for wf in client.list_workflows(f'WorkflowId="{risk_workflow_id(account)}"')]
    assert len(runs) >= 3, "the account continued as new while the orders arrived"
    await cancel_all(client, [h.id for h in handles])


async def test_an_order_arriving_while_its_account_starts_is_judged_not_refused(env, client, worker, config, account):
    """An account opened without rules (`rig account open` without --rules, the README's
    `temporal workflow start` line) loads the worker's in its first task; a pre-trade request in
    that moment is refused with "starting: retry" — the order's cue to ask again, not a verdict."""
    with env.with_time_skipping_disabled():
        await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )
    handles = await asyncio.gather(*[submit(client, intent(account, f"s{n}", quantity=10)) for n in range(10)])
    snaps = [await wait_state(h, {OrderState.WORKING, OrderState.PARTIAL_FILL, OrderState.FILLED, OrderState.REJECTED}) for h in handles]
    refused = [(s.intent_id, s.reject_reason, s.reject_message) for s in snaps if s.state is OrderState.REJECTED]
    assert not refused, refused
    await cancel_all(client, [h.id for h in handles])
