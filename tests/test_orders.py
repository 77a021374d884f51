"""Order lifecycle paths against the real dev server (time-skipped risk cycles drive the venue)."""

import asyncio
import math

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.client_ops import cancel_via_client, replace_via_client, start_order
from domain.enums import CancelReason, OrderState, RejectReason
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    risk_workflow_id,
)
from protocol.messages import CancelRefusal, CancelRequest, ReplaceRequest, RiskView
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, open_account, submit, wait_state
from tests.conftest import TASK_QUEUE


def no_desk_order_open(view: RiskView) -> bool:
    return not [o for o in view.open_orders if not o.synthetic]


async def ledger(client, account, settled=no_desk_order_open, timeout=10.0) -> RiskView:
    """The account's view once `settled` holds: the account applies an order's last fills from
    its own venue step, a moment after the order itself closes."""
    handle = client.get_workflow_handle(risk_workflow_id(account))
    for _ in range(int(timeout / 0.05)):
        view = await handle.query(QUERY_STATE, result_type=RiskView)
        if settled(view):
            return view
        await asyncio.sleep(0.05)
    return view


async def test_certain_fill_goes_accepted_working_filled(env, client, worker, config, account):
    await open_account(env, account, config, other=1.0)
    snap = await finish(await submit(client, intent(account, "o1")))
    assert (snap.state, snap.filled_quantity, snap.average_price) == (OrderState.FILLED, 100, 190.0)
    assert [h.split(" ")[1] for h in snap.history] == ["VENUE_ACKED", "COMPLETE_FILL"]
    assert [f.fill_id for f in snap.fills] == [f"{account}-o1/A"]  # the venue's execution id of the arrival fill
    view = await ledger(client, account)
    assert [(p.symbol, p.quantity) for p in view.positions] == [("AAPL", 100)]
    assert view.open_orders == []


async def test_partial_fills_then_filled_and_ledger_equals_sum_of_fills(env, client, worker, config, account):
    await open_account(env, account, config, other=0.8, partial_fill_probability=0.5, seed=9)
    snaps = await asyncio.gather(*[finish(await submit(client, intent(account, f"p{i}", quantity=1000))) for i in range(4)])
    assert all(s.state is OrderState.FILLED for s in snaps)
    assert any(len(s.fills) > 1 for s in snaps), "partial fills happen"
    assert any("PARTIAL_FILL → PARTIAL_FILL" in h or "→ PARTIAL_FILL" in h for s in snaps for h in s.history)
    view = await ledger(client, account)
    assert sum(p.quantity for p in view.positions) == sum(f.quantity for s in snaps for f in s.fills) == 4000


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (dict(quantity=0), RejectReason.BAD_QUANTITY),
        (dict(quantity=-10), RejectReason.BAD_QUANTITY),
        (dict(symbol="ZZZZ"), RejectReason.UNKNOWN_SYMBOL),
        (dict(limit_price="NaN"), RejectReason.BAD_PRICE),
        (dict(limit_price=math.nan), RejectReason.BAD_PRICE),
        (dict(side="HOLD"), RejectReason.BAD_SIDE),
        (dict(symbol="F", quantity=150, limit_price=12.0), RejectReason.NOT_LOT_MULTIPLE),
        (dict(limit_price=400.0), RejectReason.VENUE_REJECT),  # > 10% from the truth tick
    ],
)
async def test_bad_intents_end_rejected_with_a_reason(env, client, worker, config, account, fields, reason):
    await open_account(env, account, config)
    snap = await finish(await submit(client, intent(account, "bad", **fields)))
    assert (snap.state, snap.reject_reason) == (OrderState.REJECTED, reason), snap.reject_message


async def test_non_object_and_accountless_intents_end_rejected(client, worker, account):
    # These never reach an account: the order rejects them itself.
    snap = await client.execute_workflow(ORDER_WORKFLOW, "not an intent", id=f"{account}-x1", task_queue=TASK_QUEUE, result_type=OrderSnapshot)
    assert (snap.state, snap.reject_reason) == (OrderState.REJECTED, RejectReason.MALFORMED_INTENT)
    snap = await client.execute_workflow(ORDER_WORKFLOW, {"symbol": "AAPL"}, id=f"{account}-x2", task_queue=TASK_QUEUE, result_type=OrderSnapshot)
    assert (snap.state, snap.reject_reason) == (OrderState.REJECTED, RejectReason.BAD_ACCOUNT)


async def test_cancel_is_idempotent_and_a_closed_order_refuses_clearly(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    handle = await submit(client, intent(account, "c1"))
    await wait_state(handle, {OrderState.WORKING})
    first = await cancel_via_client(client, handle.id, CancelRequest(note="desk changed its mind"))
    again = await cancel_via_client(client, handle.id, CancelRequest(note="again"))
    assert first.accepted and first.state is OrderState.CANCELED and again == first
    snap = await finish(handle)
    assert (snap.state, snap.cancel_reason, snap.filled_quantity) == (OrderState.CANCELED, CancelReason.USER, 0)
    view = await ledger(client, account)
    assert view.open_orders == [] and view.positions == []

    rejected = await submit(client, intent(account, "c2", quantity=0))
    assert (await finish(rejected)).state is OrderState.REJECTED
    refused = await cancel_via_client(client, rejected.id, CancelRequest())
    assert not refused.accepted and refused.message == f"order {rejected.id} is already REJECTED: nothing to cancel"
    refused_replace = await replace_via_client(client, rejected.id, ReplaceRequest(quantity=50))
    assert not refused_replace.accepted and "already REJECTED" in refused_replace.message


async def test_a_fill_that_crosses_a_cancel_is_applied(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=1.0)
    handle = await submit(client, intent(account, "x1"))
    await wait_state(handle, {OrderState.WORKING})
    result = await cancel_via_client(client, handle.id, CancelRequest())
    assert not result.accepted and result.refusal is CancelRefusal.TOO_LATE_TO_CANCEL  # FIX: too late to cancel
    assert result.state is OrderState.FILLED and result.filled_quantity == 100 and "too late to cancel" in result.message
    assert [(p.symbol, p.quantity) for p in (await ledger(client, account)).positions] == [("AAPL", 100)]


async def test_replace_cancels_acks_and_starts_a_linked_order(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    handle = await submit(client, intent(account, "r1", quantity=300))
    await wait_state(handle, {OrderState.WORKING})
    result = await replace_via_client(client, handle.id, ReplaceRequest(quantity=200, limit_price=189.5))
    assert result.accepted and result.new_intent_id == f"{account}-r1.R1" and result.state is OrderState.CANCELED
    old = await finish(handle)
    assert (old.cancel_reason, old.replaced_by) == (CancelReason.REPLACED, f"{account}-r1.R1")
    new_handle = client.get_workflow_handle(result.new_intent_id, result_type=OrderSnapshot)
    new = await wait_state(new_handle, {OrderState.WORKING})
    assert (new.replaces, new.quantity, new.intent.limit_price) == (handle.id, 200, 189.5)
    view = await ledger(client, account, settled=lambda v: [o.intent_id for o in v.open_orders] == [new_handle.id])
    assert [(o.intent_id, o.footprint.remaining) for o in view.open_orders] == [(new_handle.id, 200)]
    await cancel_via_client(client, new_handle.id, CancelRequest())


async def test_a_second_replace_while_one_is_pending_is_refused(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    handle = await submit(client, intent(account, "r2", quantity=300))
    await wait_state(handle, {OrderState.WORKING})
    results = await asyncio.gather(
        replace_via_client(client, handle.id, ReplaceRequest(quantity=250)),
        replace_via_client(client, handle.id, ReplaceRequest(quantity=150)),
    )
    accepted = [r for r in results if r.accepted]
    refused = [r for r in results if not r.accepted]
    assert len(accepted) == 1 and len(refused) == 1, results
    # Refused by the pending guard, or — when the first replace finished first — because the
    # original is closed (CANCELED, replaced): either way the answer says why.
    assert "replace pending" in refused[0].message or "already CANCELED" in refused[0].message, refused[0].message
    assert accepted[0].new_intent_id == f"{handle.id}.R1"
    await cancel_via_client(client, accepted[0].new_intent_id, CancelRequest())


async def test_replace_to_at_or_below_filled_ends_the_order_filled(env, client, worker, config, account):
    # First attempt fills part (partial certain), then nothing fills: the order rests PARTIAL_FILL.
    await open_account(env, account, config, other=0.5, partial_fill_probability=1.0, cancel_cross_probability=0.0, seed=2)
    handle = await submit(client, intent(account, "r3", quantity=1000))
    snap = await wait_state(handle, {OrderState.PARTIAL_FILL, OrderState.FILLED})
    if snap.state is OrderState.FILLED:
        pytest.fail("seed 2 was chosen so the first fill is partial; the fill model changed")
    result = await replace_via_client(client, handle.id, ReplaceRequest(quantity=snap.filled_quantity))
    final = await finish(handle)
    assert result.accepted and result.new_intent_id is None
    assert final.state is OrderState.FILLED and final.filled_quantity >= snap.filled_quantity


async def test_day_orders_expire_at_the_close(env, client, worker, config, account):
    await open_account(env, account, config, start="16:29:55", other=0.0)
    snap = await finish(await submit(client, intent(account, "day1")))
    assert (snap.state, snap.cancel_reason) == (OrderState.CANCELED, CancelReason.EXPIRED_DAY)


async def test_twenty_concurrent_submissions_make_one_order(env, client, worker, config, account):
    await open_account(env, account, config, other=1.0)
    raw = intent(account, "dup")
    handles = await asyncio.gather(*[submit(client, raw) for _ in range(20)])
    assert len({h.result_run_id or h.run_id for h in handles}) == 1
    snap = await finish(handles[0])
    assert snap.state is OrderState.FILLED and len(snap.fills) == 1
    with pytest.raises(WorkflowAlreadyStartedError):  # closed: REJECT_DUPLICATE keeps the one execution
        await submit(client, raw)
    await start_order(client, TASK_QUEUE, raw)  # the rig's submit path treats that as "exists"
    assert (await finish(client.get_workflow_handle(raw["intent_id"]))).fills == snap.fills
    view = await ledger(client, account)
    assert [(p.symbol, p.quantity) for p in view.positions] == [("AAPL", 100)]


async def test_concurrent_orders_cannot_jointly_breach_the_hard_cap(env, client, worker, config, account):
    handle = await open_account(env, account, config, other=0.0)
    await handle.execute_update("inject_exposure", {"lt_pct": 70, "mm_pct": 20})  # 90% gross
    # 30 buys of 2% each would take potential gross to 150%: only those below the cap pass.
    orders = [intent(account, f"j{i}", symbol=("DELL", "MSFT", "ORCL", "AAPL")[i % 4], quantity=200, limit_price=100.0) for i in range(30)]
    snaps = await asyncio.gather(*[_wait_decided(client, raw) for raw in orders])
    working = [s for s in snaps if s.state is OrderState.WORKING]
    rejected = [s for s in snaps if s.state is OrderState.REJECTED]
    assert len(working) + len(rejected) == 30 and rejected
    assert {s.reject_reason for s in rejected} <= {RejectReason.HARD_CAP, RejectReason.BUCKET_MAX}
    view = await ledger(client, account)
    assert view.exposure.potential_exposure_pct < 130
    assert view.exposure.buckets["LT"].potential_pct <= 90 + 1e-9
    for s in working:
        await cancel_via_client(client, s.intent_id, CancelRequest())


async def _wait_decided(client, raw) -> OrderSnapshot:
    return await wait_state(await submit(client, raw), {OrderState.WORKING, OrderState.REJECTED})
