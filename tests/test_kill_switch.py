"""The kill switch and trading states on a real dev server (issue 16): HALTED cancels every open
desk order within one cycle and refuses new ones, de-risk goes on unless frozen, REDUCING takes
only reduce-only desk orders, and every change is recorded with who and why."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from domain.enums import (
    CancelReason,
    IntentKind,
    OrderState,
    RejectReason,
    RiskMode,
    TradingState,
)
from domain.events import TradingStateRequest
from protocol.contract import (
    RISK_WORKFLOW,
    SA_TRADING_STATE,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput
from protocol.order_record import OrderSnapshot
from tests.accounts import ORDER_TEST_CYCLE_SECONDS, finish, intent, open_account, submit, with_fills
from tests.conftest import TASK_QUEUE
from tests.faults import cycles_advance, until_view, view_of

DESK_ORDERS = 50


async def test_halt_cancels_every_open_desk_order_within_one_cycle_and_derisk_goes_on(env, client, worker, config, account):
    # Passive desk orders (nothing fills by chance) on a real-time account with 1 s cycles.
    account_handle = await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    await account_handle.execute_update(UPDATE_INJECT_EXPOSURE, {"lt_pct": 40, "mm_pct": 10})
    handles = await asyncio.gather(
        *[
            submit(client, intent(account, f"h{i:02d}", symbol=("MSFT", "DELL", "ORCL", "AAPL")[i % 4], quantity=10, limit_price=100.0))
            for i in range(DESK_ORDERS)
        ]
    )
    before = await until_view(client, account, lambda v: sum(o.state is OrderState.WORKING for o in v.open_orders) == DESK_ORDERS)
    assert before.trading_state is TradingState.ACTIVE  # the drill hits orders in flight: all 50 working

    answer = await account_handle.execute_update(
        UPDATE_SET_TRADING_STATE, {"state": "HALTED", "by": "ops-desk", "reason": "erroneous algo"}, result_type=str
    )
    assert "ACTIVE → HALTED by ops-desk: erroneous algo" in answer
    await until_view(client, account, lambda v: not [o for o in v.open_orders if not o.synthetic])
    # From the account's history: the halt woke a cycle, and that cycle sent the cancels — no
    # cycle's timer fired between the halt's update and the cancel call (but the one sleep the
    # update may have raced, whose timer fired as the update arrived).
    events = [e async for e in account_handle.fetch_history_events()]
    halt_at = next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == UPDATE_SET_TRADING_STATE
    )
    cancel_at = next(
        i
        for i, e in enumerate(events)
        if i > halt_at
        and e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "cancel_orders"
    )
    fired = [e.event_id for e in events[halt_at:cancel_at] if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    assert len(fired) <= 1, f"cycles passed between the halt and its cancels (timers fired at events {fired})"
    snaps: list[OrderSnapshot] = await asyncio.gather(*[finish(h) for h in handles])
    assert {(s.state, s.cancel_reason) for s in snaps} == {(OrderState.CANCELED, CancelReason.KILL_SWITCH)}
    assert all(not s.fills for s in snaps), "no fill after the halt (no cancel was crossed here)"

    refused = await finish(await submit(client, intent(account, "late", symbol="MSFT", quantity=10, limit_price=100.0)))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.HALTED)
    desc = await account_handle.describe()
    assert desc.typed_search_attributes.get(SA_TRADING_STATE) == "HALTED"

    # De-risk goes on while HALTED: 125% gross in MID is SOFT, and the cycle sells.
    await account_handle.execute_update(UPDATE_INJECT_EXPOSURE, {"lt_pct": 90, "mm_pct": 35})
    soft = await until_view(client, account, lambda v: v.mode is RiskMode.SOFT_DERISK and any(o.own for o in v.open_orders))
    assert all(o.footprint.kind is IntentKind.SOFT_DERISK for o in soft.open_orders if o.own)
    assert [c.by for c in soft.trading_changes] == ["ops-desk"] and soft.trading_changes[0].reason == "erroneous algo"


async def test_frozen_halt_stops_derisk_and_reducing_takes_only_reduce_only(env, client, worker, config, account):
    handle = await open_account(env, account, config, other=1.0)
    await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "HALTED", "by": "risk", "reason": "freeze all", "freeze": True})
    await handle.execute_update(UPDATE_INJECT_EXPOSURE, {"lt_pct": 90, "mm_pct": 35})
    frozen = await until_view(client, account, lambda v: v.mode is RiskMode.SOFT_DERISK)
    await cycles_advance(client, account, by=2)  # two more cycles: still nothing issued
    still = await view_of(client, account)
    assert frozen.frozen and not [o for o in still.open_orders if o.own], "frozen: no de-risk intents"

    await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "REDUCING", "by": "risk", "reason": "wind down"})
    plain = await finish(await submit(client, intent(account, "buy", symbol="AAPL", quantity=10, limit_price=100.0)))
    assert plain.reject_reason is RejectReason.REDUCING_ONLY
    reducing = await finish(
        await submit(client, intent(account, "sell", symbol="AAPL", side="SELL", quantity=10, limit_price=100.0, reduce_only=True))
    )
    assert reducing.state is OrderState.FILLED

    await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "ACTIVE", "by": "risk", "reason": "all clear"})
    view = await view_of(client, account)
    assert view.trading_state is TradingState.ACTIVE and [c.state for c in view.trading_changes] == [
        TradingState.HALTED,
        TradingState.REDUCING,
        TradingState.ACTIVE,
    ]


async def test_freeze_goes_with_halted_only(env, client, worker, config, account):
    from temporalio.client import WorkflowUpdateFailedError

    handle = await open_account(env, account, config)
    try:
        await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "REDUCING", "by": "x", "reason": "y", "freeze": True})
    except WorkflowUpdateFailedError as err:
        assert "HALTED only" in str(err.cause)
    else:
        raise AssertionError("a frozen REDUCING was accepted")
    assert (await view_of(client, account)).trading_state is TradingState.ACTIVE


async def test_a_halted_account_stays_halted_in_its_search_attribute_through_continue_as_new(env, client, worker, config, account):
    """The UI's and `rig account list`'s filter read the TradingState search attribute: each run
    writes it from the carried state (once it wrote ACTIVE at every run start)."""
    rules = with_fills(config, ORDER_TEST_CYCLE_SECONDS, other=0.0)
    rules = rules.model_copy(
        update={"rules": rules.rules.model_copy(update={"risk_cycle": rules.rules.risk_cycle.model_copy(update={"cycles_per_run": 1})})}
    )
    with env.with_time_skipping_disabled():
        handle = await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=rules, seed=3, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )
    await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "HALTED", "by": "ops-desk", "reason": "drill"}, result_type=str)
    halted_in = await run_that_took(client, risk_workflow_id(account), UPDATE_SET_TRADING_STATE)
    latest = client.get_workflow_handle(risk_workflow_id(account))
    for _ in range(300):  # one-second cycles, a continue-as-new after each (the halt wakes one)
        desc = await latest.describe()
        if desc.run_id != halted_in:
            break
        await asyncio.sleep(0.1)
    assert desc.run_id != halted_in, "the account never continued as new after its halt"
    assert desc.typed_search_attributes.get(SA_TRADING_STATE) == "HALTED"
    assert (await view_of(client, account)).trading_state is TradingState.HALTED
    listed: list[str] = []
    for _ in range(100):  # visibility follows a moment later
        listed = [
            wf.run_id
            async for wf in client.list_workflows(f'WorkflowId="{risk_workflow_id(account)}" AND TradingState="HALTED" AND ExecutionStatus="Running"')
        ]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert listed == [desc.run_id]


async def run_that_took(client, workflow_id: str, update_name: str) -> str:
    """The run (of a continue-as-new chain) whose history accepted the update."""
    async for wf in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        async for e in client.get_workflow_handle(workflow_id, run_id=wf.run_id).fetch_history_events():
            if (
                e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == update_name
            ):
                return wf.run_id
    raise AssertionError(f"no run of {workflow_id} accepted {update_name}")


async def test_a_halt_in_a_continued_runs_first_task_still_wakes_a_cycle(env, client, worker, config, account):
    """Update handlers run before the run method in a workflow's first task: a halt delivered
    there (an update retried onto the next run of a continue-as-new) once lost its wake to the
    run's first sleep, and a quiet account slept on. Staged with update-with-start on the input
    the account continued as new with."""
    rules = with_fills(config, ORDER_TEST_CYCLE_SECONDS, other=0.0)
    rules = rules.model_copy(
        update={"rules": rules.rules.model_copy(update={"risk_cycle": rules.rules.risk_cycle.model_copy(update={"cycles_per_run": 1})})}
    )
    workflow_id = risk_workflow_id(account)
    with env.with_time_skipping_disabled():
        first = await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=rules, seed=3, start_exchange_time="11:00", synthetic=True),
            id=workflow_id,
            task_queue=account_task_queue(TASK_QUEUE),
        )
    first_run = client.get_workflow_handle(workflow_id, run_id=first.first_execution_run_id)
    continued = None
    for _ in range(300):
        continued = next(
            (
                e
                for e in [e async for e in first_run.fetch_history_events()]
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            ),
            None,
        )
        if continued is not None:
            break
        await asyncio.sleep(0.1)
    assert continued is not None, "the account never continued as new"
    carried = (await client.data_converter.decode(continued.workflow_execution_continued_as_new_event_attributes.input.payloads, [RiskInput]))[0]
    assert carried.carried is not None
    await client.get_workflow_handle(workflow_id).terminate("staging a continued run's first task")

    start = WithStartWorkflowOperation(
        RISK_WORKFLOW, carried, id=workflow_id, task_queue=account_task_queue(TASK_QUEUE), id_conflict_policy=WorkflowIDConflictPolicy.FAIL
    )
    with env.with_time_skipping_disabled():
        answer = await client.execute_update_with_start_workflow(
            UPDATE_SET_TRADING_STATE,
            TradingStateRequest(state=TradingState.HALTED, by="ops-desk", reason="drill"),
            start_workflow_operation=start,
            result_type=str,
        )
    assert "HALTED" in answer
    halted_in = (await start.workflow_handle()).result_run_id
    latest = client.get_workflow_handle(workflow_id)
    for _ in range(300):  # the woken cycle runs, then the run continues as new (one cycle per run)
        desc = await latest.describe()
        if desc.run_id != halted_in:
            break
        await asyncio.sleep(0.1)
    assert desc.run_id != halted_in, "the halt in the run's first task woke no cycle"
    assert desc.typed_search_attributes.get(SA_TRADING_STATE) == "HALTED"
