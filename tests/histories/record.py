"""Record a new set of histories for the replay tests: `python -m tests.histories.record`.

Histories accumulate in versioned sets, `tests/histories/v<N>/`: a recording adds the next set
beside the old ones and never replaces one (an existing directory is refused). Every set must
replay against the current workflows (tests/test_replay.py). A set that cannot any more — an
intended change that patching (`workflow.patched`) could not bridge — is moved under
`tests/histories/retired/` with a README saying why.

One recording covers every workflow type and path (tests/histories/paths.py; the recording is
refused if one is missing): orders filled, partially filled, canceled, replaced, rejected at
pre-trade and by the venue, expired at the close, terminated, reset, continued as new; every
order update (the desk's and the rig's); an account's runs at the start, middle and end of a
continue-as-new chain, with a market and with a market that cannot be read, on a trading calendar
(a daily roll), with a LOST order, and every account update; an IBKR order told by the gateway's
venue_event signals (over the fake TWS); a scenario; a firm's chain of runs with its usage
reports, halt and resume, and (once RiskInput has `firm`) its member account.
It starts its own Temporal dev server (time skipping, like the tests, with the server's
continue-as-new hint lowered so a long-lived order's continue-as-new is recorded too) and a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.firm_calls import FirmCalls
from config.load import load_config
from domain.enums import OrderState
from domain.events import OrderEventSpec, TimedEvent
from domain.firm import Amounts, FirmLimits, Usage, UsageReport
from marketdata.schema import PRINTS_FILE
from protocol.contract import (
    FIRM_WORKFLOW,
    ORDER_WORKFLOW,
    QUERY_STATE,
    RISK_WORKFLOW,
    SCENARIO_WORKFLOW,
    UPDATE_CANCEL,
    UPDATE_FIRM_HALT,
    UPDATE_FIRM_RESUME,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_REPLACE,
    UPDATE_SET_RULES,
    UPDATE_SET_SESSION,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    firm_workflow_id,
    risk_workflow_id,
)
from protocol.firm_messages import FirmInput, ReportToFirm
from protocol.messages import RiskInput, RiskView
from protocol.order_record import OrderSnapshot
from protocol.signing import Keyring
from scenarios.spec import ScenarioReport
from testkit.ibkr.tws import FakeTWS
from tests.conftest import TASK_QUEUE
from tests.faults import reset
from tests.histories.paths import FIRM_MEMBERS, REQUIRED, paths_of, read
from tests.test_ibkr_end_to_end import account_when, ibkr_venue, open_ibkr_account, order_when, result_of, submit_desk_order
from tests.test_market_account import LONG_AAPL, STALE_TICK_DAY, day_on, recorded_day
from worker.signing import signed

HERE = Path(__file__).resolve().parent
RETIRED = "retired"
MANIFEST = "set.json"
# The tests' queue: the test helpers the recording reuses (the IBKR end-to-end's, the named
# market's) start their accounts and orders on it.
QUEUE = TASK_QUEUE
SET_NAME = re.compile(r"^v(\d+)$")

# One scenario, time-skipped, for every order path and a continue-as-new chain: desk orders that
# fill only half the time and then partially (multi-lot orders never complete: they pass through
# PARTIAL_FILL and expire at the scenario's close), one canceled, one replaced, one refused by the
# venue (a limit 30% from the truth tick), one refused at pre-trade (a desk intent that sets the
# rig's `kind`); at 11:05 the book jumps past the hard cap and HARD de-risk orders fill for
# certain; two cycles per run, so the account continues as new several times.
LIFECYCLE = {
    "name": "replay_recording",
    "description": "Every order path and a continue-as-new chain, for the replay histories.",
    "seed": 7,
    "start": "11:00",
    "stop": "11:06",
    "rules": {"fills": {"other": 0.5, "partial_fill_probability": 1.0, "cancel_cross_probability": 0.0}, "risk_cycle": {"cycles_per_run": 2}},
    "events": [
        {"at": "11:00", "exposure": {"lt_pct": 60, "mm_pct": 10}},
        {"at": "11:00", "order": {"id": "partial", "symbol": "MSFT", "side": "BUY", "quantity": 1000, "limit_price": 100.0}},
        {"at": "11:00", "order": {"id": "cancel", "symbol": "ORCL", "side": "BUY", "quantity": 500, "limit_price": 100.0}},
        {"at": "11:00", "order": {"id": "replace", "symbol": "DELL", "side": "BUY", "quantity": 500, "limit_price": 100.0}},
        {"at": "11:00", "order": {"id": "venue", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 130.0}},
        {"at": "11:00", "order": {"id": "pretrade", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 100.0, "kind": "SOFT_DERISK"}},
        {"at": "11:01", "cancel": {"id": "cancel"}},
        {"at": "11:02", "replace": {"id": "replace", "quantity": 600, "limit_price": 100.05}},
        {"at": "11:05", "exposure": {"lt_pct": 95, "mm_pct": 36}},  # 131%: HARD de-risk orders, filled for certain
    ],
    "expect": [
        {"order": {"id": "venue", "state": "REJECTED", "reject_reason": "VENUE_REJECT"}},
        {"order": {"id": "pretrade", "state": "REJECTED", "reject_reason": "MALFORMED_INTENT"}},
        {"order": {"id": "cancel", "state": "CANCELED", "cancel_reason": "USER"}},
        {"order": {"id": "replace", "state": "CANCELED", "cancel_reason": "REPLACED"}},
    ],
}
# Two sessions on a trading calendar, the first from ten minutes before its close: cycles, the
# roll at Monday's close (its `daily_roll` marker), the night's wait, Tuesday from Monday's close.
CALENDAR = {
    "name": "replay_calendar",
    "description": "A trading calendar's close, daily roll and next open, for the replay histories.",
    "seed": 1,
    "calendar": "XNYS",
    "date": "2026-11-23",
    "start": "15:50",
    "stop": "2026-11-24 09:40",
    "rules": {"fills": {"other": 0.0, "cancel_cross_probability": 0.0}},
    "positions": [{"symbol": "AAPL", "bucket": "LT", "quantity": 1000, "avg_cost": 100.0, "mark": 100.0}],
    "events": [{"day": 1, "at": "15:55", "exposure": {"marks": {"AAPL": 101.0}}}],
    "expect": [
        {"day": 1, "session": {"close": "16:00"}, "pnl": {"daily_min": 1000, "daily_max": 1000}},
        {"day": 2, "bod": [{"symbol": "AAPL", "quantity": 1000, "mark": 101.0}]},
    ],
}
UPDATES_ACCOUNT = "replay-updates"
# Shipped scenarios for the rig's own order messages and a market: the kill switch cancels desk
# orders (rig_cancel), SOFT → HARD replaces the cycle's orders (rig_replace), a named market.
SHIPPED = ("kill_switch", "escalation_replaces_soft", "market_passive_fill")
# The server suggests continue-as-new past this many events (default 4 Ki): an order that works a
# few cycles carries its state into a new run — the path a long-lived order takes.
RECORDING_SERVER = {"limit.historyCount.suggestContinueAsNew": 25}


def next_set(root: Path) -> str:
    numbers = [int(m.group(1)) for d in root.iterdir() if d.is_dir() and (m := SET_NAME.match(d.name))] if root.is_dir() else []
    return f"v{max(numbers, default=0) + 1}"


def file_name(n: int, handle: WorkflowHandle, kind: str) -> str:
    run = f"-{handle.run_id[:8]}" if handle.run_id else ""
    return f"{n:02d}-{kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', handle.id)}{run}.json"


async def save(directory: Path, handle: WorkflowHandle, kind: str, saved: dict[str, Any]) -> None:
    history = await handle.fetch_history()
    name = file_name(len(saved) + 1, handle, kind)
    (directory / name).write_text(history.to_json())
    saved[name] = {"workflow_type": kind, "workflow_id": handle.id, "run_id": handle.run_id, "events": len(history.events)}


async def chain(client: Any, workflow_id: str) -> list[str]:
    """The run ids of a continue-as-new chain, first to last, from the histories themselves."""
    latest = await client.get_workflow_handle(workflow_id).fetch_history()
    run_id, runs = latest.events[0].workflow_execution_started_event_attributes.first_execution_run_id, []
    while run_id:
        runs.append(run_id)
        last = (await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else ""
        )
    return runs


async def record_scenario(client: Any, queue: str, scenario: str | dict[str, Any], staging: Path, saved: dict[str, Any]) -> None:
    """Run a scenario to its end and save its history, its account's chain and its orders'."""
    label = scenario if isinstance(scenario, str) else scenario["name"]
    scenario_id = f"replay-{label}-{datetime.datetime.now():%Y%m%d%H%M%S%f}"
    report: ScenarioReport = await client.execute_workflow(SCENARIO_WORKFLOW, scenario, id=scenario_id, task_queue=queue, result_type=ScenarioReport)
    assert report.passed, f"the recording's scenario {label} failed: {report.failures}"
    await save(staging, client.get_workflow_handle(scenario_id), SCENARIO_WORKFLOW, saved)
    risk_id = risk_workflow_id(report.account)
    for run_id in await chain(client, risk_id):
        await save(staging, client.get_workflow_handle(risk_id, run_id=run_id), RISK_WORKFLOW, saved)
    for order_id in report.order_workflow_ids:
        for run_id in await chain(client, order_id):
            await save(staging, client.get_workflow_handle(order_id, run_id=run_id), ORDER_WORKFLOW, saved)


async def record_operator_account(env: WorkflowEnvironment, queue: str, staging: Path, saved: dict[str, Any]) -> None:
    """An account in real time (1 s cycles, orders resting) that takes every operator update, and
    desk orders an operator terminates, resets, cancels and replaces from outside."""
    client = env.client
    account = f"{UPDATES_ACCOUNT}-{datetime.datetime.now():%H%M%S%f}"
    config = load_config()
    rules = config.rules.model_copy(
        update={
            "risk_cycle": config.rules.risk_cycle.model_copy(update={"cycle_seconds": 1}),
            "fills": config.rules.fills.model_copy(update={"other": 0.0, "cancel_cross_probability": 0.0}),
        }
    )
    config = config.model_copy(update={"rules": rules})
    with env.with_time_skipping_disabled():
        handle = await client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=config, synthetic=True, start_exchange_time="11:00:00", stop_at="11:00:20"),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(queue),
        )
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "11:00:00"})
    await handle.execute_update(UPDATE_INJECT_EXPOSURE, {"lt_pct": 40, "mm_pct": 10})
    await handle.execute_update(UPDATE_SET_RULES, json.loads(rules.model_dump_json()))
    orders = {}
    for name in ("terminated", "reset", "canceled", "replaced"):
        intent_id = f"{account}-{name}"
        intent = {"intent_id": intent_id, "account": account, "symbol": "MSFT", "side": "BUY", "quantity": 100, "limit_price": 99.0}
        orders[name] = await client.start_workflow(ORDER_WORKFLOW, intent, id=intent_id, task_queue=queue, result_type=OrderSnapshot)
    for order in orders.values():
        await until_state(order, (OrderState.WORKING,))
    await orders["terminated"].terminate("replay recording: an operator terminates a working order")
    await reset(client, orders["reset"].id, which="first", reason="replay recording: reset to the first workflow task")
    await orders["canceled"].execute_update(UPDATE_CANCEL, {"reason": "USER", "note": "replay recording"})
    await orders["replaced"].execute_update(UPDATE_REPLACE, {"quantity": 200, "limit_price": 98.5})
    halt = {"state": "HALTED", "by": "replay-recorder", "reason": "kill switch for the recording"}
    await handle.execute_update(UPDATE_SET_TRADING_STATE, halt)  # the reset order, working again, is canceled KILL_SWITCH
    await handle.execute_update(UPDATE_SET_TRADING_STATE, {"state": "ACTIVE", "by": "replay-recorder", "reason": "back"})
    await handle.result()
    for run_id in await chain(client, handle.id):
        await save(staging, client.get_workflow_handle(handle.id, run_id=run_id), RISK_WORKFLOW, saved)
    for name, order in orders.items():  # every run of it: a reset starts a new run outside the continue-as-new chain
        runs = sorted([wf.run_id async for wf in client.list_workflows(f'WorkflowId="{order.id}"')])
        for run_id in runs:
            await save(staging, client.get_workflow_handle(order.id, run_id=run_id), f"{ORDER_WORKFLOW}-{name}", saved)


async def record_ibkr_order(env: WorkflowEnvironment, keyring: Keyring, staging: Path, saved: dict[str, Any]) -> None:
    """An IBKR account and a desk order behind the gateway over the fake TWS, as the end-to-end
    tests run them (tests/test_ibkr_end_to_end.py): TWS acknowledges the order only after the
    submit returned, then fills it in two executions — each reaches the order as the gateway's
    venue_event signal (signed, as the gateway's client sends it)."""
    client = signed(env.client, keyring)
    account = f"replay-ibkr-{datetime.datetime.now():%H%M%S%f}"
    with tempfile.TemporaryDirectory(prefix="replay-ibkr-") as state_dir:
        async with ibkr_venue(client, Path(state_dir), tws=FakeTWS(auto_ack=False)) as ib:
            handle = await open_ibkr_account(env, account, load_config(), ib.queue)
            intent_id = await submit_desk_order(client, account, "ibkr")
            order = client.get_workflow_handle(intent_id)
            await until_submitted(order)  # placed, unacknowledged: IB's first word comes by signal
            assert (await order.query(QUERY_STATE, result_type=OrderSnapshot)).state is OrderState.ACCEPTED
            ib.tws.apply({"cb": "openOrder", "order": intent_id, "status": "Submitted"})
            ib.tws.apply({"cb": "orderStatus", "order": intent_id, "status": "Submitted"})
            await ib.tws.settle()
            await order_when(client, intent_id, lambda s: s.state is OrderState.WORKING, "was acknowledged by signal")
            for shares in (40, 60):
                ib.tws.apply({"cb": "fill", "order": intent_id, "shares": shares, "price": 190.0})
                await ib.tws.settle()
            done = await result_of(client, intent_id)
            assert done.state is OrderState.FILLED, f"the recording's IBKR order ended {done.state}: {done.history}"
            await account_when(client, account, lambda v: v.open_order_count == 0, "closed the order")
            await handle.terminate("replay recording: the IBKR order is done")
    for run_id in await chain(client, handle.id):
        await save(staging, client.get_workflow_handle(handle.id, run_id=run_id), RISK_WORKFLOW, saved)
    for run_id in await chain(client, intent_id):
        await save(staging, client.get_workflow_handle(intent_id, run_id=run_id), f"{ORDER_WORKFLOW}-ibkr", saved)


async def record_market_outage(env: WorkflowEnvironment, staging: Path, saved: dict[str, Any]) -> None:
    """An account on a recorded day whose prints cannot be read (their ts_event stored as int64,
    as tests/test_market_account.py makes it): every cycle runs on its last marks with the outage
    in its decision's skipped list, and an order arriving meanwhile is refused by the exchange."""
    client = env.client
    with tempfile.TemporaryDirectory(prefix="replay-outage-") as tmp:
        directory = recorded_day(Path(tmp), *STALE_TICK_DAY)
        prints = directory / PRINTS_FILE
        table = pq.read_table(prints)
        pq.write_table(table.set_column(0, "ts_event", table["ts_event"].cast(pa.int64())), prints)
        order = OrderEventSpec(id="blind", symbol="AAPL", side="BUY", quantity=100, limit_price=181.0)
        account, result, _ = await day_on(client, directory, "12:00", "12:02", [LONG_AAPL, TimedEvent(at="12:01", order=order)], load_config())
    risk_id = risk_workflow_id(account)
    for run_id in await chain(client, risk_id):
        await save(staging, client.get_workflow_handle(risk_id, run_id=run_id), RISK_WORKFLOW, saved)
    for order_id in result.outcomes:
        for run_id in await chain(client, order_id):
            await save(staging, client.get_workflow_handle(order_id, run_id=run_id), ORDER_WORKFLOW, saved)


async def record_firm(env: WorkflowEnvironment, queue: str, keyring: Keyring, staging: Path, saved: dict[str, Any]) -> None:
    """A firm over a real-time account and one never opened: usage reports (signed, as an account's
    activity sends them), a halt and a resume, and enough of them that the server's lowered hint
    has the firm continue as new."""
    client = env.client
    tag = f"{datetime.datetime.now():%H%M%S%f}"
    member, ghost, firm = f"replay-firm-{tag}", f"replay-firm-ghost-{tag}", f"replay-{tag}"
    opened = RiskInput(account=member, config=load_config(), synthetic=True, start_exchange_time="11:00:00", stop_at="11:03:00")
    if FIRM_MEMBERS:  # the firm on the account (RiskInput.firm): the member reports its usage each cycle
        opened = opened.model_copy(update={"firm": firm})
    with env.with_time_skipping_disabled():
        handle = await client.start_workflow(
            FIRM_WORKFLOW,
            FirmInput(firm=firm, limits=FirmLimits(gross=1_000_000, credit=2_000_000), accounts=[member, ghost]),
            id=firm_workflow_id(firm),
            task_queue=account_task_queue(queue),
        )
        account = await client.start_workflow(RISK_WORKFLOW, opened, id=risk_workflow_id(member), task_queue=account_task_queue(queue))
    if FIRM_MEMBERS:  # its first cycle's report answered: the member holds its allocation
        await until_view(account, lambda v: getattr(v, "firm_allocation", None) is not None, "took its first grant from the firm")
    calls = FirmCalls(signed(client, keyring))
    for i in range(4):
        report = UsageReport(account=member, usage=Usage(gross=1_000.0 * i, credit=1_500.0 * i), released=Amounts())
        await calls.report_to_firm(ReportToFirm(firm=firm, report=report))
    await handle.execute_update(UPDATE_FIRM_HALT, {"by": "replay-recorder", "reason": "firm kill switch for the recording"})
    await handle.execute_update(UPDATE_FIRM_RESUME, {"by": "replay-recorder", "reason": "back"})
    await calls.report_to_firm(ReportToFirm(firm=firm, report=UsageReport(account=member, usage=Usage(), released=Amounts())))
    await account.terminate("replay recording: the firm's member is done")
    await handle.terminate("replay recording: done")
    for run_id in await chain(client, handle.id):
        await save(staging, client.get_workflow_handle(handle.id, run_id=run_id), FIRM_WORKFLOW, saved)
    if FIRM_MEMBERS:
        for run_id in await chain(client, account.id):
            await save(staging, client.get_workflow_handle(account.id, run_id=run_id), f"{RISK_WORKFLOW}-member", saved)


async def until_view(handle: WorkflowHandle, holds: Callable[[RiskView], bool], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not holds(await handle.query(QUERY_STATE, result_type=RiskView)):
        assert asyncio.get_running_loop().time() < deadline, f"{handle.id} never {what}"
        await asyncio.sleep(0.1)


async def until_submitted(order: WorkflowHandle, timeout: float = 60.0) -> None:
    """Until the order's submit (its first activity) has returned to it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not [e async for e in order.fetch_history_events() if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]:
        assert asyncio.get_running_loop().time() < deadline, f"{order.id}: its submit never returned"
        await asyncio.sleep(0.1)


async def until_state(handle: WorkflowHandle, states: tuple[OrderState, ...], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await handle.query(QUERY_STATE, result_type=OrderSnapshot)).state not in states:
        assert asyncio.get_running_loop().time() < deadline, f"{handle.id} never reached {states}"
        await asyncio.sleep(0.05)


async def record_set(env: WorkflowEnvironment, queue: str, directory: Path, keyring: Keyring) -> dict[str, Any]:
    """Run the recording's workflows on a worker already polling `queue` and write their histories
    into `directory` (which must not exist: a set is never replaced). Returns the manifest."""
    if directory.exists():
        raise FileExistsError(f"{directory} exists: a recorded set is never replaced; record the next one beside it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))  # beside it: the rename is atomic
    saved: dict[str, Any] = {}
    try:
        for scenario in (LIFECYCLE, CALENDAR, *SHIPPED):
            await record_scenario(env.client, queue, scenario, staging, saved)
        await record_operator_account(env, queue, staging, saved)
        await record_market_outage(env, staging, saved)
        await record_ibkr_order(env, keyring, staging, saved)
        await record_firm(env, queue, keyring, staging, saved)
        covered: set[str] = set()
        for name, entry in saved.items():
            entry["paths"] = sorted(paths_of(read(staging / name)))
            covered |= set(entry["paths"])
        missing = sorted(REQUIRED - covered)
        assert not missing, f"the recording does not cover {missing}: change the recording (tests/histories/record.py), not the check"
        manifest = {
            "recorded": datetime.date.today().isoformat(),
            "commit": _commit(),
            "temporalio": version("temporalio"),
            "command": "python -m tests.histories.record",
            "server": RECORDING_SERVER,
            "histories": saved,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.rename(directory)  # all or nothing: a failed recording leaves no set behind
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _commit() -> str:
    try:  # read-only: which code the set was recorded from (uncommitted edits are not told apart)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.histories.record", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE, help="where the sets live (default: %(default)s)")
    parser.add_argument("--name", help="the new set's name (default: the next v<N>)")
    args = parser.parse_args(argv)
    directory = args.root / (args.name or next_set(args.root))
    if directory.exists():
        parser.error(f"{directory} exists: a recorded set is never replaced")
    from worker.main import build_worker
    from worker.server import time_skipping_environment

    async with await time_skipping_environment(extra_dynamic_config=RECORDING_SERVER) as env, build_worker(env.client, QUEUE) as worker:
        manifest = await record_set(env, QUEUE, directory, worker.keyring)
    for name, entry in manifest["histories"].items():
        print(f"recorded {name}: {entry['events']} events, {', '.join(entry['paths']) or '-'}")
    print(f"set {directory}: {len(manifest['histories'])} histories")
    return 0


if __name__ == "__main__":
    from worker.connection import exit_now

    exit_now(asyncio.run(main(sys.argv[1:])))
