"""The kill switch and trading states on a real dev server (issue 16): HALTED cancels every open
desk order within one cycle and refuses new ones, de-risk goes on unless frozen, REDUCING takes
only reduce-only desk orders, and every change is recorded with who and why."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from domain.enums import (
    CancelReason,
    IntentKind,
    OrderState,
    RejectReason,
    RiskMode,
    TradingState,
)
from protocol.contract import (
    SA_TRADING_STATE,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_SET_TRADING_STATE,
)
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, open_account, submit
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
