"""An Interactive Brokers account end to end: the real RiskWorkflow and OrderWorkflow on the
session's dev server, the order's venue activities served by the IBKR gateway
(venues/ibkr/gateway.py) on a task queue of its own, and behind the gateway the fake TWS on a real
socket (testkit/ibkr/tws.py: ib_async's Client, Decoder and Wrapper run as against IB). What TWS says later
(fills, cancels, a reconnect after which it has forgotten an order) reaches the order through
the production sink (a `venue_event` signal), and the account through the order's reports.

Each test has its own account, fake TWS, gateway state directory and gateway task queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.client_ops import cancel_via_client, start_order
from domain.enums import CancelReason, OrderState
from domain.execution import ExecKind, ExecutionEvent
from domain.ledger import LedgerOrder
from domain.rules import RigConfig
from protocol.contract import (
    QUERY_STATE,
    RISK_WORKFLOW,
    SA_ACCOUNT,
    SA_ORDER_STATE,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import CancelRequest, RiskInput, RiskView, VenueKind
from protocol.order_record import OrderSnapshot
from testkit.ibkr.replay import gateway_over
from testkit.ibkr.tws import FakeTWS
from tests.accounts import ORDER_TEST_CYCLE_SECONDS, with_fills
from tests.conftest import TASK_QUEUE
from tests.faults import until_view
from venues.ibkr.activities import IBKR_SUBMIT, IbkrActivities, build_ibkr_worker
from venues.ibkr.delivery import RigSink, TemporalBooks
from venues.ibkr.gateway import IbkrGateway
from venues.ibkr.models import IbkrOrder, rig_order_ref
from venues.sink import TemporalSignalSink

WAIT = 90.0  # seconds: the machine may be running another suite alongside


# ── the venue: a fake TWS, the gateway over it, the gateway's activity worker ──────────────────


@dataclass
class Ibkr:
    tws: FakeTWS
    gateway: IbkrGateway
    queue: str

    def placed(self) -> list[str]:
        return [r[1] for r in self.tws.requests if r[0] == "placeOrder"]

    def cancels(self, intent_id: str) -> int:
        return sum(1 for r in self.tws.requests if r[0] == "cancelOrder" and r[1] == intent_id)

    def kinds(self, intent_id: str) -> list[str]:
        return [e.kind.value for e in self.gateway.translator.tracks[intent_id].events]


@asynccontextmanager
async def ibkr_venue(
    client: Client, state_dir: Path, worker_for: Callable[[Client, IbkrGateway], Worker] = build_ibkr_worker, tws: FakeTWS | None = None
) -> AsyncIterator[Ibkr]:
    queue = f"risk-rig-ibkr-e2e-{uuid.uuid4().hex[:8]}"
    tws = tws or FakeTWS()
    gateway = gateway_over(tws, state_dir, RigSink(client), books=TemporalBooks(client), task_queue=queue)
    await gateway.start()
    try:
        async with worker_for(client, gateway):
            yield Ibkr(tws, gateway, queue)
    finally:
        await gateway.stop()
        await tws.stop()


async def open_ibkr_account(env: WorkflowEnvironment, account: str, config: RigConfig, queue: str) -> WorkflowHandle:
    """What `rig account open <account> --venue IBKR --synthetic` starts (cli/accounts.py), with the
    gateway's task queue set (the CLI leaves the default) and a virtual day at 11:00 with one-second
    cycles on real time (tests/accounts.py): a test's orders meet a deterministic session."""
    inp = RiskInput(
        account=account,
        config=with_fills(config, ORDER_TEST_CYCLE_SECONDS),
        synthetic=True,
        seed=1,
        start_exchange_time="11:00",
        venue=VenueKind.IBKR,
        venue_task_queue=queue,
    )
    with env.with_time_skipping_disabled():
        return await env.client.start_workflow(
            RISK_WORKFLOW,
            inp,
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_ACCOUNT, account)]),
        )


async def submit_desk_order(client: Client, account: str, name: str, **fields: Any) -> str:
    """What `rig order submit` starts (cli/orders.py): the same raw intent, the same start."""
    raw = {
        "intent_id": f"{account}-{name}",
        "account": account,
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 100,
        "order_type": "LIMIT",
        "limit_price": 190.0,
        "bucket": None,
        "reduce_only": False,
    } | fields
    await start_order(client, TASK_QUEUE, raw)
    return str(raw["intent_id"])


# ── waiting on the workflows ───────────────────────────────────────────────────────────────────


async def order_when(client: Client, intent_id: str, holds: Callable[[OrderSnapshot], bool], what: str) -> OrderSnapshot:
    handle = client.get_workflow_handle(intent_id)
    snap = None
    for _ in range(int(WAIT / 0.1)):
        snap = await handle.query(QUERY_STATE, result_type=OrderSnapshot)
        if holds(snap):
            return snap
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {intent_id} never {what}: {snap.state if snap else None}, history {snap.history if snap else None}")


async def account_when(client: Client, account: str, holds: Callable[[RiskView], bool], what: str) -> RiskView:
    return await until_view(client, account, holds, WAIT, f"account {account} {what}")


def positions(view: RiskView) -> dict[str, int]:
    return {p.symbol: p.quantity for p in view.positions if p.quantity}


def open_order(view: RiskView, intent_id: str) -> LedgerOrder | None:
    return next((o for o in view.open_orders if o.intent_id == intent_id), None)


async def result_of(client: Client, intent_id: str) -> OrderSnapshot:
    done = await asyncio.wait_for(client.get_workflow_handle(intent_id, result_type=OrderSnapshot).result(), WAIT)
    return done if isinstance(done, OrderSnapshot) else OrderSnapshot.model_validate(done)


# ── the tests ──────────────────────────────────────────────────────────────────────────────────


async def test_ibkr_order_acked_partially_filled_then_filled_and_the_account_holds_what_ib_executed(env, client, worker, config, account, tmp_path):
    async with ibkr_venue(client, tmp_path) as ib:
        view = await (await open_ibkr_account(env, account, config, ib.queue)).query(QUERY_STATE, result_type=RiskView)
        assert view.venue is VenueKind.IBKR
        intent_id = await submit_desk_order(client, account, "b1")

        # TWS acknowledges (openOrder + orderStatus Submitted): the order works, the account knows it.
        snap = await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        assert [h.split(" ")[1] for h in snap.history] == ["VENUE_ACKED"]
        view = await account_when(
            client, account, lambda v: (o := open_order(v, intent_id)) is not None and o.state is OrderState.WORKING, "listed the order WORKING"
        )
        assert view.venue is VenueKind.IBKR and view.open_order_count == 1 and positions(view) == {}
        assert ib.tws.order(intent_id).status == "Submitted" and ib.tws.order(intent_id).lmt_price == 190.0

        # A partial fill, then the rest, as TWS reports them later (execDetails + orderStatus + commission).
        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 40, "price": 190.0})
        await ib.tws.settle()
        snap = await order_when(client, intent_id, lambda s: s.state is OrderState.PARTIAL_FILL, "reached PARTIAL_FILL")
        assert snap.filled_quantity == 40
        view = await account_when(client, account, lambda v: positions(v) == {"AAPL": 40}, "held the partial fill")
        assert open_order(view, intent_id).state is OrderState.PARTIAL_FILL and open_order(view, intent_id).filled == 40

        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 60, "price": 189.5})
        await ib.tws.settle()
        done = await result_of(client, intent_id)
        ib_exec_ids = [e.exec_id for e in ib.tws.order(intent_id).executions.values()]
        assert done.state is OrderState.FILLED and done.filled_quantity == 100
        assert [(f.fill_id, f.quantity, f.price) for f in done.fills] == list(zip(ib_exec_ids, [40, 60], [190.0, 189.5], strict=True))
        assert done.average_price == (40 * 190.0 + 60 * 189.5) / 100
        assert [h.split(" ")[1] for h in done.history] == ["VENUE_ACKED", "PARTIAL_FILL", "COMPLETE_FILL"]

        view = await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
        assert positions(view) == ib.tws.positions() == {"AAPL": 100}
        assert view.lost == []
        assert ib.kinds(intent_id) == ["ACCEPTED", "FILL", "FILL"]
        assert ib.placed() == [intent_id]  # one placeOrder for the intent


async def test_ibkr_cancel_pending_then_canceled_at_ib_ends_the_order_canceled(env, client, worker, config, account, tmp_path):
    async with ibkr_venue(client, tmp_path) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "c1")
        await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        await account_when(
            client, account, lambda v: (o := open_order(v, intent_id)) is not None and o.state is OrderState.WORKING, "listed the order WORKING"
        )

        # IB answers the cancel with PendingCancel at once and confirms Cancelled later (as real
        # TWS does): the confirmation reaches the order by the gateway's signal.
        ib.tws.on_cancel_script[intent_id] = [{"cb": "orderStatus", "status": "PendingCancel"}]
        cancel = asyncio.create_task(cancel_via_client(client, intent_id, CancelRequest(note="desk changed its mind")))
        for _ in range(int(WAIT / 0.05)):
            if ib.gateway.translator.tracks[intent_id].events[-1].kind is ExecKind.CANCEL_PENDING:
                break
            await asyncio.sleep(0.05)
        assert ib.kinds(intent_id) == ["ACCEPTED", "CANCEL_PENDING"] and ib.tws.order(intent_id).status == "PendingCancel"
        snap = await client.get_workflow_handle(intent_id).query(QUERY_STATE, result_type=OrderSnapshot)
        assert snap.state is OrderState.PENDING_CANCEL  # pending at IB is not canceled: fills may still come

        ib.tws.apply({"cb": "cancelled", "order": intent_id})
        await ib.tws.settle()
        result = await asyncio.wait_for(cancel, WAIT)
        assert result.accepted and result.refusal is None, result
        done = await result_of(client, intent_id)
        assert (done.state, done.cancel_reason, done.filled_quantity) == (OrderState.CANCELED, CancelReason.USER, 0)
        assert ib.kinds(intent_id) == ["ACCEPTED", "CANCEL_PENDING", "CANCELED"] and ib.tws.order(intent_id).status == "Cancelled"
        assert ib.cancels(intent_id) == 1

        view = await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
        assert view.open_orders == [] and positions(view) == {} and view.lost == []
        assert ib.placed() == [intent_id]


async def test_ibkr_duplicated_execution_is_applied_once(env, client, worker, config, account, tmp_path):
    async with ibkr_venue(client, tmp_path) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "d1")
        await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")

        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 40, "price": 190.0, "exec_id": "0000e0d5.00000001.01.01"})
        await ib.tws.settle()
        await order_when(client, intent_id, lambda s: s.filled_quantity == 40, "applied the first execution")
        await account_when(client, account, lambda v: positions(v) == {"AAPL": 40}, "held the first execution")

        # TWS sends the same execution (same execId) again …
        ib.tws.apply({"cb": "execDetails", "order": intent_id, "shares": 40, "price": 190.0, "exec_id": "0000e0d5.00000001.01.01"})
        await ib.tws.settle()
        # … and the gateway's at-least-once outbox repeats a FILL it had delivered (a restart
        # between the signal and forgetting it): the same event through the production sink.
        journaled = [e for e in ib.gateway.journal if e.intent_id == intent_id]
        assert [e.exec_id for e in journaled] == ["0000e0d5.00000001.01.01"]
        await TemporalSignalSink(client).deliver(journaled[0])

        # The rest: signals are handled in order, so when the order is FILLED the repeats were seen.
        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 60, "price": 190.0})
        await ib.tws.settle()
        done = await result_of(client, intent_id)
        assert done.state is OrderState.FILLED and done.filled_quantity == 100
        assert [f.fill_id for f in done.fills] == [e.exec_id for e in ib.tws.order(intent_id).executions.values()]
        assert len(done.fills) == 2 and done.fills[0].fill_id == "0000e0d5.00000001.01.01"
        view = await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
        assert positions(view) == ib.tws.positions() == {"AAPL": 100}
        assert ib.kinds(intent_id) == ["ACCEPTED", "FILL", "FILL"]
        assert ib.placed() == [intent_id]


async def test_ibkr_order_ib_no_longer_knows_is_recorded_lost_never_canceled(env, client, worker, config, account, tmp_path):
    async with ibkr_venue(client, tmp_path) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "u1")
        await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        await account_when(
            client, account, lambda v: (o := open_order(v, intent_id)) is not None and o.state is OrderState.WORKING, "listed the order WORKING"
        )

        # TWS restarts and comes back without the order (nothing open, completed or executed under
        # its orderRef): the gateway reconnects, reconciles, and says UNKNOWN_ORDER by signal.
        ib.tws.orders.remove(ib.tws.order(intent_id))
        reconciled = ib.gateway.reconciliations
        ib.tws.drop_connection()
        for _ in range(int(WAIT / 0.01)):  # the gateway hears the socket close, reconnects and reconciles
            if ib.gateway.reconciliations > reconciled and ib.gateway.connected:
                break
            await asyncio.sleep(0.01)
        assert ib.gateway.reconciliations == reconciled + 1
        assert ib.kinds(intent_id) == ["ACCEPTED", "UNKNOWN_ORDER"]

        done = await result_of(client, intent_id)
        assert done.lost_cause is not None and f"IB lists no order with orderRef {rig_order_ref(account, intent_id)}" in done.lost_cause, done
        assert done.state is OrderState.WORKING and done.cancel_reason is None  # as it stood: never a silent CANCELED
        assert any("UNKNOWN_ORDER → LOST" in h for h in done.history)
        described = await client.get_workflow_handle(intent_id).describe()  # the UI's filter OrderState="LOST" finds it
        assert described.typed_search_attributes.get(SA_ORDER_STATE) == "LOST", described.typed_search_attributes

        view = await account_when(client, account, lambda v: any(o.intent_id == intent_id for o in v.lost), "recorded the order LOST")
        (lost,) = [o for o in view.lost if o.intent_id == intent_id]
        assert lost.label == "LOST" and lost.state is not OrderState.CANCELED and lost.cancel_reason is None
        assert f"IB lists no order with orderRef {rig_order_ref(account, intent_id)}" in (lost.lost_cause or "")
        assert open_order(view, intent_id) is None and view.open_order_count == 0  # its potential released
        assert positions(view) == {}
        assert ib.cancels(intent_id) == 0 and ib.placed() == [intent_id]


@dataclass
class LosesFirstSubmitAnswer(IbkrActivities):
    """The production activities, except that the first ibkr_submit's answer is lost after the
    gateway placed the order (the worker lost its connection to the server mid-call): Temporal
    retries the activity, and the retry must not place a second order."""

    gateway: IbkrGateway
    attempts: list[int] = field(default_factory=list)

    @activity.defn(name=IBKR_SUBMIT)
    async def submit(self, order: IbkrOrder) -> list[ExecutionEvent]:
        events = await IbkrActivities.submit(self, order)
        self.attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise ApplicationError("the answer was lost on the way back", type="LostAnswer")
        return events


async def test_ibkr_retried_submit_never_places_a_second_order(env, client, worker, config, account, tmp_path):
    holder: list[LosesFirstSubmitAnswer] = []

    def worker_for(c: Client, gateway: IbkrGateway) -> Worker:
        holder.append(LosesFirstSubmitAnswer(gateway))
        return Worker(c, task_queue=gateway.settings.task_queue, activities=holder[0].all())

    async with ibkr_venue(client, tmp_path, worker_for) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "r1")
        await start_order(
            client,
            TASK_QUEUE,
            {
                "intent_id": intent_id,
                "account": account,
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": 100,
                "order_type": "LIMIT",
                "limit_price": 190.0,
            },
        )  # a repeated submit
        snap = await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        assert holder[0].attempts == [1, 2]
        assert [h.split(" ")[1] for h in snap.history] == ["VENUE_ACKED"]
        assert ib.placed() == [intent_id]  # exactly one placeOrder, though the gateway was asked twice
        await account_when(
            client, account, lambda v: (o := open_order(v, intent_id)) is not None and o.state is OrderState.WORKING, "listed the order WORKING"
        )
        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 100, "price": 190.0})
        await ib.tws.settle()
        done = await result_of(client, intent_id)
        assert done.state is OrderState.FILLED and [f.fill_id for f in done.fills] == [e.exec_id for e in ib.tws.order(intent_id).executions.values()]
        view = await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
        assert positions(view) == ib.tws.positions() == {"AAPL": 100}
        assert ib.placed() == [intent_id]


async def test_ibkr_order_placed_by_the_retry_after_a_gateway_crash_is_working_not_lost(env, client, worker, config, account, tmp_path):
    """The gateway wrote the order ahead and died before placeOrder: on restart its reconciliation
    says UNKNOWN_ORDER, and the order's submit places it and answers [UNKNOWN_ORDER, ACCEPTED].
    Only the last word counts: the order works at IB, so it must work in the rig (recorded LOST
    it would drop every later fill)."""
    intent_id = f"{account}-w1"
    crashed = gateway_over(FakeTWS(), tmp_path, RigSink(client))
    crashed_order = IbkrOrder(intent_id=intent_id, account=account, symbol="AAPL", side="BUY", quantity=100, limit_price=190.0)
    crashed.translator.register(crashed._new_track(crashed_order, rig_order_ref(account, intent_id)))
    crashed.save_now()
    crashed.store.close()
    async with ibkr_venue(client, tmp_path) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        assert await submit_desk_order(client, account, "w1") == intent_id
        snap = await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        assert ib.kinds(intent_id)[-2:] == ["UNKNOWN_ORDER", "ACCEPTED"]
        assert snap.lost_cause is None
        ib.tws.apply({"cb": "fill", "order": intent_id, "shares": 100, "price": 190.0})
        await ib.tws.settle()
        done = await result_of(client, intent_id)
        assert done.state is OrderState.FILLED and done.lost_cause is None
        view = await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
        assert positions(view) == ib.tws.positions() == {"AAPL": 100} and view.lost == []
        assert ib.placed() == [intent_id]


async def test_ibkr_cancel_of_an_order_ib_forgot_ends_lost_and_says_so(env, client, worker, config, account, tmp_path):
    """IB answers the cancel with 10147 (no such order): the gateway reads IB's books at once, the
    order ends LOST with the cause, and the cancel's answer says so — never an accepted cancel of
    an order nobody canceled."""
    async with ibkr_venue(client, tmp_path) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "f1")
        await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "reached WORKING")
        await account_when(client, account, lambda v: open_order(v, intent_id) is not None, "listed the order")
        ib.tws.orders.remove(ib.tws.order(intent_id))  # IB lost it while the connection stayed up
        result = await asyncio.wait_for(cancel_via_client(client, intent_id, CancelRequest(note="desk")), WAIT)
        assert not result.accepted and "LOST" in result.message, result
        done = await result_of(client, intent_id)
        assert done.lost_cause is not None and done.cancel_reason is None and done.state is OrderState.WORKING, done
        view = await account_when(client, account, lambda v: any(o.intent_id == intent_id for o in v.lost), "recorded the order LOST")
        assert open_order(view, intent_id) is None and positions(view) == {}
        assert ib.kinds(intent_id)[-1] == "UNKNOWN_ORDER"


async def test_ibkr_cancel_of_an_order_ib_has_not_acknowledged_yet_goes_to_ib(env, client, worker, config, account, tmp_path):
    """IB's first word on a new order came after the submit stopped waiting: the order is still
    ACCEPTED in the rig but live at IB. Its cancel must reach IB (a cancel of the book alone would
    leave an orphan working at the broker whose fills nobody records)."""
    async with ibkr_venue(client, tmp_path, tws=FakeTWS(auto_ack=False)) as ib:
        await open_ibkr_account(env, account, config, ib.queue)
        intent_id = await submit_desk_order(client, account, "s1")
        await account_when(client, account, lambda v: open_order(v, intent_id) is not None, "listed the order")
        await order_when(client, intent_id, lambda s: bool(ib.placed()) and s.state is OrderState.ACCEPTED, "was placed, unacknowledged")
        result = await asyncio.wait_for(cancel_via_client(client, intent_id, CancelRequest(note="desk")), WAIT)
        assert ib.cancels(intent_id) == 1, "the cancel reached IB"
        assert result.accepted, result
        done = await result_of(client, intent_id)
        assert (done.state, done.cancel_reason) == (OrderState.CANCELED, CancelReason.USER), done
        await account_when(client, account, lambda v: open_order(v, intent_id) is None and not v.lost, "closed the order")
