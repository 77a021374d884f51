"""The rig's internal messages sent by hand — with the real `temporal` CLI, as anyone with access
to the rig's namespace could — are refused (updates) or dropped (signals), and nothing changes:
no fill booked, no order canceled or replaced, no exposure reserved, no alarm raised, no trading
state moved (issue 20; the review booked a forged fill at 0.01). Even the rig's own signature
does not carry a message that makes no sense: a fill through the order's limit is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from temporalio.client import WorkflowUpdateFailedError

from domain.enums import OrderState, TradingState
from domain.execution import ExecKind, ExecutionEvent
from protocol.contract import (
    QUERY_STATE,
    SIGNAL_ORDER_REPORT,
    SIGNAL_VENUE_EVENT,
    UPDATE_ARRIVAL,
    UPDATE_PRETRADE,
    UPDATE_REPLACE_CHECK,
    UPDATE_RIG_CANCEL,
    UPDATE_RIG_REPLACE,
    UPDATE_VENUE_EXECUTIONS,
    risk_workflow_id,
)
from protocol.order_record import OrderSnapshot
from protocol.signing import KEY_ENV, LOCAL_KEY_FILE, keyring_from_env
from tests.accounts import intent, open_account, submit, wait_state
from tests.faults import cycles_advance, view_of
from venues.ibkr.models import SIGNAL_BROKER_DIVERGENCE, SIGNAL_BROKER_LATE_FILL
from worker.server import temporal_binary

REFUSED = "refused without the rig's signature"


async def temporal(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"}
    return await asyncio.to_thread(subprocess.run, [temporal_binary(), *args], capture_output=True, text=True, env=environ, timeout=60)


async def working_order(env, client, config, account: str) -> tuple[str, OrderSnapshot]:
    await open_account(env, account, config, other=0.0)  # orders rest: nothing fills by chance
    handle = await submit(client, intent(account, "w1", limit_price=185.0))
    return handle.id, await wait_state(handle, (OrderState.WORKING,))


def forged_fill(order: str) -> dict:
    return {"intent_id": order, "kind": "FILL", "exec_id": f"{order}/C9999", "last_qty": 100, "last_px": 0.01, "cum_qty": 100, "leaves_qty": 0}


async def test_internal_updates_sent_by_hand_are_refused_and_change_nothing(env, client, worker, config, account):
    address = env.client.service_client.config.target_host
    order, before = await working_order(env, client, config, account)
    view_before = await view_of(client, account)
    ghost = f"{account}-ghost"
    desk = {"intent_id": ghost, "account": account, "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 100.0}
    forged = [
        (order, UPDATE_VENUE_EXECUTIONS, [forged_fill(order)]),
        (order, UPDATE_RIG_CANCEL, {"reason": "KILL_SWITCH", "note": "forged"}),
        (order, UPDATE_RIG_REPLACE, {"quantity": 50, "limit_price": 1.0, "kind": "HARD_DERISK", "price_rule": "AT_BID"}),
        (order, UPDATE_ARRIVAL, None),
        (risk_workflow_id(account), UPDATE_PRETRADE, {"intent_id": ghost, "raw_intent": desk}),
        (risk_workflow_id(account), UPDATE_REPLACE_CHECK, {"original_id": order, "raw_replacement": desk | {"intent_id": f"{order}.R1"}}),
    ]
    for workflow_id, name, payload in forged:
        args = ["workflow", "update", "execute", "--workflow-id", workflow_id, "--name", name]
        done = await temporal(address, *args, *(["--input", json.dumps(payload)] if payload is not None else []))
        said = done.stdout + done.stderr
        assert done.returncode != 0 and REFUSED in said, (name, said[-500:])
    after = await client.get_workflow_handle(order).query(QUERY_STATE, result_type=OrderSnapshot)
    assert (after.state, after.fills, after.cancel_reason, after.replaced_by) == (OrderState.WORKING, [], None, None), after
    view = await view_of(client, account)
    assert ghost not in {o.intent_id for o in view.open_orders} and ghost not in {o.intent_id for o in view.lost}
    assert view.positions == view_before.positions and view.exposure.potential_exposure_pct == view_before.exposure.potential_exposure_pct
    assert before.state is OrderState.WORKING


async def test_internal_signals_sent_by_hand_are_dropped_and_change_nothing(env, client, worker, config, account):
    address = env.client.service_client.config.target_host
    order, _ = await working_order(env, client, config, account)
    fill = forged_fill(order)
    report = {
        "intent_id": order, "state": "FILLED", "quantity": 100, "filled_quantity": 100,
        "fills": [{"fill_id": fill["exec_id"], "intent_id": order, "symbol": "AAPL", "bucket": "LT", "side": "BUY", "quantity": 100, "price": 0.01}],
    }  # fmt: skip
    late = {"account": account, "intent_id": order, "symbol": "AAPL", "side": "BUY", "event": fill}
    divergence = {
        "account": account, "ib_account": "DU1", "symbol": "AAPL", "ib_position": 5000, "book_position": 0, "account_position": 0,
        "accounts": [account], "as_of": "2026-12-07T10:00:00+00:00", "text": "IB holds 5000 AAPL",
    }  # fmt: skip
    forged = [
        (risk_workflow_id(account), SIGNAL_ORDER_REPORT, report),
        (order, SIGNAL_VENUE_EVENT, fill),
        (risk_workflow_id(account), SIGNAL_BROKER_LATE_FILL, late),
        (risk_workflow_id(account), SIGNAL_BROKER_DIVERGENCE, divergence),
    ]
    for workflow_id, name, payload in forged:
        done = await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", name, "--input", json.dumps(payload))
        assert done.returncode == 0, (name, done.stderr)  # the server takes any signal; the workflow drops these
    await cycles_advance(client, account, by=3)
    snap = await client.get_workflow_handle(order).query(QUERY_STATE, result_type=OrderSnapshot)
    assert (snap.state, snap.fills) == (OrderState.WORKING, []), snap
    view = await view_of(client, account)
    assert not [p for p in view.positions if p.quantity], view.positions
    assert view.trading_state is TradingState.ACTIVE and not view.alarms and not view.divergences, (view.alarms, view.divergences)


async def test_a_signed_fill_that_makes_no_sense_is_refused(env, client, worker, config, account):
    """The rig's own signature does not carry a fill through the order's limit, nor one of
    another order, nor one under an id the simulated venue never gives."""
    order, _ = await working_order(env, client, config, account)
    handle = client.get_workflow_handle(order)  # signed: as the account's deliveries are
    through = ExecutionEvent(intent_id=order, kind=ExecKind.FILL, exec_id=f"{order}/C1", last_qty=100, last_px=195.0, cum_qty=100)
    stranger = through.model_copy(update={"intent_id": f"{account}-other", "last_px": 180.0})
    odd_id = through.model_copy(update={"exec_id": "someone-else/1", "last_px": 180.0})
    for event, why in ((through, "through the BUY limit 185"), (stranger, "delivered to"), (odd_id, "not an execution id of the simulated venue")):
        try:
            await handle.execute_update(UPDATE_VENUE_EXECUTIONS, [event])
        except WorkflowUpdateFailedError as err:
            assert why in str(err.cause), (why, err.cause)
        else:
            raise AssertionError(f"a fill that makes no sense was applied ({why})")
    snap = await handle.query(QUERY_STATE, result_type=OrderSnapshot)
    assert (snap.state, snap.fills) == (OrderState.WORKING, []), snap


async def test_a_signed_pretrade_that_no_order_run_sent_is_refused(env, client, worker, config, account):
    """Even signed, a pre-trade request must come from an order workflow's own call: its update id
    is `<intent id>@<the order's run id>`. Any other shape — a bare id, another intent's, a run id
    that is not one — is refused at validation; nothing is reserved for the ghost."""
    await open_account(env, account, config, other=0.0)
    ghost = f"{account}-ghost"
    desk = {"intent_id": ghost, "account": account, "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 100.0}
    handle = client.get_workflow_handle(risk_workflow_id(account))  # signed: as an order's request is
    for update_id in (ghost, f"{account}-other@01a24ea3-f91a-77d2-b7ab-a00c3503ac17", f"{ghost}@not-a-run", None):
        try:
            await handle.execute_update(UPDATE_PRETRADE, {"intent_id": ghost, "raw_intent": desk}, id=update_id)
        except WorkflowUpdateFailedError as err:
            assert "a pre-trade request is the order workflow's own" in str(err.cause), (update_id, err.cause)
        else:
            raise AssertionError(f"a pre-trade request with update id {update_id!r} was judged")
    view = await view_of(client, account)
    assert ghost not in {o.intent_id for o in view.open_orders} and ghost not in {o.intent_id for o in view.lost}


def test_without_a_key_the_machine_keeps_one_key_across_restarts(tmp_path, monkeypatch):
    """No RIG_MESSAGE_KEY: every process started here (a worker, its restart) signs with the same
    local key, kept owner-only in .state/message.key — a restarted `make worker` still verifies
    what its predecessor signed (a per-process key turned an order in flight into REJECTED)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    first, second = keyring_from_env(), keyring_from_env()
    assert first.current == second.current and len(first.current) == 32
    assert (tmp_path / LOCAL_KEY_FILE).stat().st_mode & 0o777 == 0o600
