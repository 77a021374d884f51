"""What the order and account workflows must do with what the IBKR gateway tells them (issue 23) —
the real RiskWorkflow and OrderWorkflow on the session's dev server, the gateway over the fake TWS
on a real socket. The gateway side exists (venues/ibkr: `ibkr_cancel_confirmed` with its
CancelVerdict, `ibkr_modify`, the LateFill and BrokerDivergence signals); these tests pin the
workflow side the lead wires:

* a replace at a broker waits for IB's last word on the original and sizes the replacement from
  what actually filled; it is refused when IB refused the cancel or the gateway did not answer;
* a fill whose order workflow has gone reaches the account's book (signal `broker_late_fill`);
* a divergence between IB's positions and the book reaches the account (signal
  `broker_divergence`) as something the user sees, and the book is not overwritten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.client_ops import replace_via_client
from domain.enums import CancelReason, OrderState
from domain.execution import ExecutionEvent
from protocol.messages import CancelRefusal, ReplaceRequest, RiskView
from testkit.ibkr.tws import FakeTWS
from tests.faults import until_view
from tests.test_ibkr_end_to_end import (
    Ibkr,
    ibkr_venue,
    open_ibkr_account,
    open_order,
    order_when,
    positions,
    result_of,
    submit_desk_order,
)
from venues.ibkr.activities import IBKR_CANCEL, IBKR_CANCEL_CONFIRMED, IbkrActivities
from venues.ibkr.gateway import IbkrGateway
from venues.ibkr.models import CancelOutcome, IbkrCancel

WAIT = 30.0  # seconds: these wait on behaviour the workflows may not have yet — fail in reasonable time


async def working_order(env, client: Client, config, account: str, ib: Ibkr, name: str) -> str:
    await open_ibkr_account(env, account, config, ib.queue)
    intent_id = await submit_desk_order(client, account, name)
    await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
    await until_view(
        client, account, lambda v: (o := open_order(v, intent_id)) is not None and o.state is OrderState.WORKING, WAIT, "listed it WORKING"
    )
    return intent_id


async def cancel_reached_ib(ib: Ibkr, intent_id: str) -> None:
    for _ in range(int(WAIT / 0.02)):
        if ib.cancels(intent_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the replace of {intent_id} never sent IB a cancel")


async def cancel_answered(ib: Ibkr, intent_id: str) -> None:
    """IB has the cancel and said only PendingCancel: the order workflow holds no final word (it
    asks the gateway again, for longer: the fills and the end IB sends next are its answer)."""
    await cancel_reached_ib(ib, intent_id)
    for _ in range(int(WAIT / 0.02)):
        if ib.tws.order(intent_id).status == "PendingCancel":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"IB never said PendingCancel for {intent_id}")


async def view_when(client: Client, account: str, holds: Callable[[RiskView], bool], what: str) -> RiskView:
    return await until_view(client, account, holds, WAIT, f"account {account} {what}")


# ── the replace at a broker ─────────────────────────────────────────────────────────────────────


async def test_replace_while_ib_has_the_cancel_pending_and_then_fills_the_original_never_doubles_exposure(
    env, client, worker, config, account, tmp_path: Path
):
    """IB answers the replace's cancel with PendingCancel and then fills the original completely:
    the replace must end refused (too late), no replacement may reach IB, and IB's position and the
    book agree (100, not 200)."""
    async with ibkr_venue(client, tmp_path, tws=FakeTWS(auto_cancel=False)) as ib:
        original = await working_order(env, client, config, account, ib, "rp1")
        ib.tws.on_cancel_script[original] = [{"cb": "orderStatus", "status": "PendingCancel"}]
        replace = asyncio.create_task(replace_via_client(client, original, ReplaceRequest(quantity=100, limit_price=191.0)))
        await cancel_answered(ib, original)  # the order workflow holds [ACCEPTED, CANCEL_PENDING]: not a final word
        ib.tws.apply({"cb": "fill", "order": original, "shares": 100, "price": 190.0})  # the cancel was too late
        await ib.tws.settle()
        result = await asyncio.wait_for(replace, WAIT)
        assert not result.accepted and result.refusal is CancelRefusal.TOO_LATE_TO_CANCEL, result
        done = await result_of(client, original)
        assert (done.state, done.filled_quantity, done.replaced_by) == (OrderState.FILLED, 100, None), done
        assert ib.placed() == [original], "a replacement reached IB while the original could still fill"
        view = await view_when(client, account, lambda v: v.open_order_count == 0 and positions(v) == {"AAPL": 100}, "held what IB executed")
        assert positions(view) == ib.tws.positions() == {"AAPL": 100}


async def test_replace_sizes_the_replacement_from_what_filled_before_ib_confirmed_the_cancel(env, client, worker, config, account, tmp_path: Path):
    """PendingCancel, then 40 fill, then Cancelled: the replacement (new total 100) is 60, placed
    only after IB confirmed the original's end."""
    async with ibkr_venue(client, tmp_path, tws=FakeTWS(auto_cancel=False)) as ib:
        original = await working_order(env, client, config, account, ib, "rp2")
        ib.tws.on_cancel_script[original] = [{"cb": "orderStatus", "status": "PendingCancel"}]
        replace = asyncio.create_task(replace_via_client(client, original, ReplaceRequest(quantity=100, limit_price=191.0)))
        await cancel_answered(ib, original)
        ib.tws.apply({"cb": "fill", "order": original, "shares": 40, "price": 190.0})
        ib.tws.apply({"cb": "cancelled", "order": original})
        await ib.tws.settle()
        result = await asyncio.wait_for(replace, WAIT)
        assert result.accepted and result.new_intent_id, result
        new = result.new_intent_id
        await order_when(client, new, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        assert ib.placed() == [original, new]
        assert ib.tws.order(new).quantity == 60, "the replacement is sized from what filled before IB confirmed the cancel"
        done = await result_of(client, original)
        assert (done.state, done.cancel_reason, done.filled_quantity) == (OrderState.CANCELED, CancelReason.REPLACED, 40), done
        view = await view_when(client, account, lambda v: positions(v) == {"AAPL": 40}, "held the 40")
        assert positions(view) == ib.tws.positions() == {"AAPL": 40}


async def test_replace_is_refused_when_ib_refuses_the_cancel(env, client, worker, config, account, tmp_path: Path):
    """IB refuses the cancel (10148) and the order works on: the replace is refused, the original
    keeps working, nothing new reaches IB."""
    async with ibkr_venue(client, tmp_path) as ib:
        original = await working_order(env, client, config, account, ib, "rp3")
        ib.tws.on_cancel_script[original] = [
            {"cb": "error", "code": 10148, "message": "OrderId that needs to be cancelled cannot be cancelled, state: PendingSubmit."},
            {"cb": "orderStatus", "status": "Submitted"},
        ]
        result = await asyncio.wait_for(replace_via_client(client, original, ReplaceRequest(quantity=100, limit_price=191.0)), WAIT)
        assert not result.accepted and result.refusal is CancelRefusal.VENUE and "10148" in result.message, result
        snap = await order_when(client, original, lambda s: s.state is OrderState.WORKING, "kept WORKING")
        assert snap.replaced_by is None and snap.cancel_reason is None
        assert ib.placed() == [original] and ib.tws.order(original).status == "Submitted"


@dataclass
class CancelNeverAnswers(IbkrActivities):
    """The production activities, except that a cancel (either form) fails for good: it never reached IB."""

    gateway: IbkrGateway

    @activity.defn(name=IBKR_CANCEL)
    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        raise ApplicationError("not connected to IB", type="IbkrCannotCancel", non_retryable=True)

    @activity.defn(name=IBKR_CANCEL_CONFIRMED)
    async def cancel_confirmed(self, request: IbkrCancel) -> CancelOutcome:
        raise ApplicationError("not connected to IB", type="IbkrCannotCancel", non_retryable=True)


async def test_replace_is_refused_when_the_cancel_did_not_reach_ib(env, client, worker, config, account, tmp_path: Path):
    def worker_for(c: Client, gateway: IbkrGateway) -> Worker:
        return Worker(c, task_queue=gateway.settings.task_queue, activities=CancelNeverAnswers(gateway).all())

    async with ibkr_venue(client, tmp_path, worker_for) as ib:
        original = await working_order(env, client, config, account, ib, "rp4")
        result = await asyncio.wait_for(replace_via_client(client, original, ReplaceRequest(quantity=100, limit_price=191.0)), WAIT)
        assert not result.accepted, result
        snap = await order_when(client, original, lambda s: s.state is OrderState.WORKING, "kept WORKING")
        assert snap.replaced_by is None and snap.cancel_reason is None
        assert ib.placed() == [original]


# ── fills and positions that reach the account, however late ──────────────────────────────────


async def test_a_fill_after_the_order_workflow_is_gone_reaches_the_accounts_book(env, client, worker, config, account, tmp_path: Path):
    async with ibkr_venue(client, tmp_path) as ib:
        original = await working_order(env, client, config, account, ib, "lf1")
        await client.get_workflow_handle(original).terminate(reason="an operator ended the workflow; the order still works at IB")
        ib.tws.apply({"cb": "fill", "order": original, "shares": 60, "price": 190.0})
        await ib.tws.settle()
        await ib.gateway.idle()
        view = await view_when(client, account, lambda v: positions(v) == {"AAPL": 60}, "booked the late fill")
        assert positions(view) == ib.tws.positions() == {"AAPL": 60}
        assert original in view.model_dump_json(), "the account shows which order the late fill belongs to"


async def test_a_divergence_between_ib_and_the_book_reaches_the_account_and_the_book_stands(env, client, worker, config, account, tmp_path: Path):
    async with ibkr_venue(client, tmp_path) as ib:
        original = await working_order(env, client, config, account, ib, "dv1")
        ib.tws.apply({"cb": "fill", "order": original, "shares": 100, "price": 190.0})
        await ib.tws.settle()
        await view_when(client, account, lambda v: positions(v) == {"AAPL": 100}, "held the fill")
        ib.tws.seed_positions["AAPL"] = 50  # 50 more shares at IB that the rig never traded
        await ib.gateway.check_positions("test")
        told = await ib.gateway.check_positions("test")
        assert [(d.account, d.ib_position, d.book_position) for d in told] == [(account, 150, 100)]
        await ib.gateway.idle()
        view = await view_when(client, account, lambda v: "IB holds 150 AAPL" in v.model_dump_json(), "showed the divergence")
        assert positions(view) == {"AAPL": 100}  # never overwritten with IB's number
