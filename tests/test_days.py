"""An account with a trading calendar on a real Temporal server (issue 22): Thanksgiving 2026 on
XNYS has no session (no cycle, a desk order REJECTED OUTSIDE_SESSION), the half day after it
moves LATE and CLOSE with its 13:00 close and rolls there (a `daily_roll` marker in the history),
the weekend DST change is crossed in elapsed time, and a calendar account's history replays."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.worker import Replayer

from domain.enums import OrderState, RejectReason, TradingState
from domain.rules import RigConfig, RiskRules
from protocol.contract import (
    QUERY_STATE,
    RISK_WORKFLOW,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_SET_SESSION,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    risk_workflow_id,
)
from protocol.converter import data_converter
from protocol.messages import RiskInput, RiskResult, RiskView
from report import page
from tests.accounts import finish, intent, submit, with_fills
from tests.conftest import TASK_QUEUE
from tests.drills import arig
from worker.main import WORKFLOWS


def calendar_config(config: RigConfig, calendar: str = "XNYS", time_zone: str = "America/New_York") -> RigConfig:
    """The shipped rules (regimes anchored to the open and close) on a calendar's own hours."""
    raw = config.rules.model_dump(mode="json")
    raw["session"] = {"time_zone": time_zone, "calendar": calendar}
    return config.model_copy(update={"rules": RiskRules.model_validate(raw)})


async def view_until(handle: WorkflowHandle, check, timeout: float = 30.0) -> RiskView:
    """The view once `check` holds; an account still starting (reading its rules) is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            view = await handle.query(QUERY_STATE, result_type=RiskView)
        except WorkflowQueryFailedError as err:
            assert "starting" in str(err) and time.monotonic() < deadline, err
            await asyncio.sleep(0.1)
            continue
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


async def test_rig_account_shows_a_day_and_a_range_of_days(client: Client, worker, account):
    """`rig account open --calendar XNYS`, a close, then `rig account show --day`: P&L by day and
    the roll event; the session under way in a range; a bad range is one line."""
    address = client.service_client.config.target_host
    opened = await arig(address, "account", "open", account, "--equity", "1000000", "--calendar", "XNYS", "--synthetic")
    assert opened.returncode == 0 and "on the XNYS calendar" in opened.stdout, opened.stderr
    handle = client.get_workflow_handle(risk_workflow_id(account))
    await view_until(handle, lambda v: v.session is not None and v.session.next_open is not None)
    await handle.execute_update(
        UPDATE_INJECT_EXPOSURE, {"positions": [{"symbol": "AAPL", "bucket": "LT", "quantity": 100}], "marks": {"AAPL": 101.0}}
    )
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "15:59:57", "exchange_date": "2026-11-25"})
    await view_until(handle, lambda v: bool(v.days))
    shown = await arig(address, "account", "show", account)
    assert (
        shown.returncode == 0 and "XNYS: between sessions, today 09:30–16:00; next open 2026-11-27 09:30, next close 2026-11-27 13:00" in shown.stdout
    ), shown.stdout
    day = await arig(address, "account", account, "--day", "2026-11-25")
    assert day.returncode == 0, day.stderr
    lines = day.stdout.splitlines()
    assert any(line.startswith("2026-11-25  09:30–16:00") and "ACTIVE" in line for line in lines), day.stdout
    assert any(line.startswith("  roll 2026-11-25 at 2026-11-25 16:00:0") for line in lines), day.stdout
    week = await arig(address, "account", "show", account, "--day", "2026-11-23..2026-11-27")
    assert week.returncode == 0 and "2026-11-27" in week.stdout and "(under way)" in week.stdout, week.stdout
    for bad in ("2026-11-31", "2026-11-27..2026-11-23", "yesterday"):
        refused = await arig(address, "account", "show", account, "--day", bad)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr, refused.stderr


async def test_a_bod_row_without_a_mark_takes_the_previous_close_or_is_refused(client: Client, worker, account, tmp_path):
    """`rig account open --positions` with a row without its mark: refused at its line and column
    for a new account; for one opened `--fresh` over a closed calendar account, the mark is that
    account's last closing mark — never the row's average cost."""
    address = client.service_client.config.target_host
    bod = tmp_path / "bod.csv"
    bod.write_text("symbol,bucket,quantity,avg_cost,mark\nMSFT,LT,10,50,51\nAAPL,LT,100,230,\n")
    refused = await arig(address, "account", "open", account, "--equity", "1000000", "--positions", str(bod))
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        "line 3, column 'mark': AAPL/LT has no mark and the account has no previous close for it: give its closing mark"
    ), refused.stderr
    opened = await arig(address, "account", "open", account, "--equity", "1000000", "--calendar", "XNYS", "--synthetic")
    assert opened.returncode == 0, opened.stderr
    handle = client.get_workflow_handle(risk_workflow_id(account))
    await view_until(handle, lambda v: v.session is not None and v.session.next_open is not None)
    await handle.execute_update(
        UPDATE_INJECT_EXPOSURE, {"positions": [{"symbol": "AAPL", "bucket": "LT", "quantity": 100}], "marks": {"AAPL": 190.0}}
    )
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "15:59:57", "exchange_date": "2026-11-25"})
    await view_until(handle, lambda v: bool(v.days) and v.days[-1].marks.get("AAPL") == 190.0)
    await handle.terminate("closed for the test: reopened fresh with a BOD")
    fresh = await arig(address, "account", "open", account, "--equity", "1000000", "--fresh", "--positions", str(bod), "--synthetic")
    assert fresh.returncode == 0, fresh.stderr
    view = await view_until(client.get_workflow_handle(risk_workflow_id(account)), lambda v: v.pnl is not None and len(v.pnl.positions) == 2)
    assert view.pnl is not None
    aapl = next(p for p in view.pnl.positions if p.symbol == "AAPL")
    assert (aapl.quantity * aapl.mark - aapl.daily) / aapl.quantity == 190.0  # its BOD mark: the previous close, not its cost (230)


async def test_the_report_shows_the_days(client: Client, scenario_runs):
    report, _ = await scenario_runs["week_thanksgiving"]
    result = await client.get_workflow_handle(risk_workflow_id(report.account), result_type=RiskResult).result()
    week = page.render(result, title="week", ui_workflow=lambda i: i)
    assert all(f"id='day-2026-11-{d}'" in week for d in (23, 24, 25, 27)) and "day-2026-11-26" not in week
    assert "the 2026-11-23 session closed — P&amp;L -12,500.00, 1 DAY orders expired" in week
    assert "<h3>Decision log 2026-11-27</h3>" in week and "(half day)" in week
    tuesday = page.render(result, title="tuesday", ui_workflow=lambda i: i, days=("2026-11-24", "2026-11-24"))
    assert "id='day-2026-11-24'" in tuesday and "id='day-2026-11-23'" not in tuesday and "Decision log 2026-11-23" not in tuesday
