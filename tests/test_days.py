"""An account with a trading calendar on a real Temporal server (issue 22): Thanksgiving 2026 on
XNYS has no session (no cycle, a desk order REJECTED OUTSIDE_SESSION), the half day after it
moves LATE and CLOSE with its 13:00 close and rolls there (a `daily_roll` marker in the history),
the weekend DST change is crossed in elapsed time, and a calendar account's history replays."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from domain.enums import OrderState, RejectReason, TradingState
from domain.rules import RigConfig, RiskRules
from protocol.contract import QUERY_STATE, RISK_WORKFLOW, UPDATE_SET_SESSION, UPDATE_SET_TRADING_STATE, account_task_queue, risk_workflow_id
from protocol.converter import data_converter
from protocol.messages import RiskInput, RiskView
from tests.accounts import finish, intent, submit, with_fills
from tests.conftest import TASK_QUEUE
from worker.main import WORKFLOWS


def calendar_config(config: RigConfig, calendar: str = "XNYS", time_zone: str = "America/New_York") -> RigConfig:
    """The shipped rules (regimes anchored to the open and close) on a calendar's own hours."""
    raw = config.rules.model_dump(mode="json")
    raw["session"] = {"time_zone": time_zone, "calendar": calendar}
    return config.model_copy(update={"rules": RiskRules.model_validate(raw)})


async def view_until(handle: WorkflowHandle, check, timeout: float = 30.0) -> RiskView:
    deadline = time.monotonic() + timeout
    while True:
        view = await handle.query(QUERY_STATE, result_type=RiskView)
        if check(view):
            return view
        assert time.monotonic() < deadline, f"never: {view.exchange_time} {view.regime} cycle {view.cycle} days {[d.date for d in view.days]}"
        await asyncio.sleep(0.1)


async def test_thanksgiving_has_no_session_and_the_half_day_rolls_at_its_early_close(env, client: Client, worker, config, account):
    """Real time, one-second cycles, the virtual clock moved by `set_session` (a test account)."""
    with env.with_time_skipping_disabled():
        handle = await client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(
                account=account,
                config=with_fills(calendar_config(config), 1, other=0.0),
                synthetic=True,
                start_exchange_time="11:00",
                exchange_date="2026-11-26",
            ),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )
    holiday = await view_until(handle, lambda v: v.session is not None and v.session.next_open is not None)  # the sessions read
    assert holiday.session is not None and holiday.session.today is None and not holiday.session.in_session
    assert (holiday.regime, holiday.cycle, holiday.session.next_open) == ("OUTSIDE_SESSION", 0, "2026-11-27T09:30:00")
    refused = await finish(await submit(client, intent(account, "thanksgiving", limit_price=100.0)))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.OUTSIDE_SESSION), refused
    assert (await handle.query(QUERY_STATE, result_type=RiskView)).cycle == 0  # no cycle on a holiday

    halt = {"state": "HALTED", "by": "ops", "reason": "held over the half day's close"}
    await handle.execute_update(UPDATE_SET_TRADING_STATE, halt)
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "12:44:57", "exchange_date": "2026-11-27"})
    friday = await view_until(handle, lambda v: v.regime == "LATE")
    assert friday.session is not None and friday.session.today is not None
    assert (friday.session.today.close, friday.session.today.early_close, friday.session.next_close) == ("13:00", True, "2026-11-27T13:00:00")
    assert friday.last_decision is not None and friday.last_decision.exchange_time >= "12:45:00" and friday.cycle > 0
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "12:57:57", "exchange_date": "2026-11-27"})
    await view_until(handle, lambda v: v.regime == "CLOSE")
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "12:59:57", "exchange_date": "2026-11-27"})
    rolled = await view_until(handle, lambda v: bool(v.days))
    (day,) = rolled.days
    assert (day.date, day.close, day.early_close, day.trading_state) == ("2026-11-27", "13:00", True, TradingState.HALTED)
    assert rolled.trading_state is TradingState.HALTED and rolled.regime == "OUTSIDE_SESSION"  # the kill switch persists
    assert rolled.session is not None and rolled.session.next_open == "2026-11-30T09:30:00" and not rolled.recent_decisions
    markers = [
        e
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and b"daily_roll" in e.marker_recorded_event_attributes.SerializeToString()
    ]
    assert len(markers) == 1, "one daily_roll marker per close"
    after = await finish(await submit(client, intent(account, "after-close", limit_price=100.0)))
    assert after.reject_reason in (RejectReason.OUTSIDE_SESSION, RejectReason.HALTED)  # HALTED is judged first


async def test_the_weekend_dst_change_is_slept_in_elapsed_time(client: Client, scenario_runs):
    """week_dst_end: from Friday's roll at 16:00 to Monday's first cycle at 09:30 the account waits
    66.5 hours of workflow time — the wall clock says 65.5; a clock that ignored the change would
    open an hour late in real terms (or wait 65.5 hours and open at 08:30)."""
    report, _ = await scenario_runs["week_dst_end"]
    assert report.passed, report.failures
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        async for e in client.get_workflow_handle(risk_workflow_id(report.account)).fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    longest = max(timers)
    assert timedelta(hours=66, minutes=29, seconds=59) <= longest <= timedelta(hours=66, minutes=30), longest
    assert timedelta(hours=17, minutes=29, seconds=59) <= sorted(timers)[-2] <= timedelta(hours=17, minutes=30)  # Thursday's night


async def test_a_calendar_accounts_history_replays(client: Client, scenario_runs):
    """The roll, the sessions' local activity and the waits between sessions are deterministic:
    the week's account history replays against the same code, sandboxed."""
    report, _ = await scenario_runs["week_thanksgiving"]
    assert report.passed, report.failures
    history = await client.get_workflow_handle(risk_workflow_id(report.account)).fetch_history()
    kinds = {e.event_type for e in history.events}
    assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds and EventType.EVENT_TYPE_TIMER_STARTED in kinds
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter).replay_workflow(history)
