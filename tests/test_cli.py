"""The `rig` CLI against the real dev server: account open/list/show/rules/reopen, and every user
error is one line with a non-zero exit, never a traceback. (An unreachable server is covered in
tests/test_operations.py; `make server` and SIGTERM/SIGINT in tests/test_compose.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from config.load import DEFAULT_RULES
from domain.enums import OrderState, RiskMode
from protocol.contract import (
    QUERY_STATE,
    SA_ACCOUNT,
    UPDATE_SET_RULES,
    risk_workflow_id,
)
from protocol.messages import RiskView
from protocol.order_record import OrderSnapshot
from tests.accounts import intent, submit
from tests.drills import arig

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(run: subprocess.CompletedProcess, code: int | None = None) -> str:
    """The run failed with exactly one line on stderr and no traceback; that line."""
    assert run.returncode != 0, run.stdout + run.stderr
    if code is not None:
        assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def rules_file(tmp_path: Path, name: str, **changes) -> Path:
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def address(env) -> str:
    return env.client.service_client.config.target_host


async def test_user_errors_are_one_line_and_exit_non_zero(address, worker):
    ghost = "no-such-order-5d1e"
    cases = [
        (("show", ghost), f"no order {ghost}"),
        (("cancel", ghost), f"no order {ghost}"),
        (("replace", ghost, "--qty", "5"), f"no order {ghost}"),
        (("account", "ghost-acct"), "no account ghost-acct: open it with `rig account open ghost-acct --equity N`"),
        (("account", "reopen", "ghost-acct"), "it was never opened"),
        (
            ("list", "--state", 'WORKING" OR 1=1'),
            "--state 'WORKING\" OR 1=1' is not one of ACCEPTED, WORKING, PARTIAL_FILL, PENDING_CANCEL, PENDING_REPLACE, FILLED, CANCELED, REJECTED",
        ),
        (("list", "--side", "HOLD"), "is not one of BUY, SELL"),
        (("list", "--symbol", 'AAPL" OR Symbol="MSFT'), "is not a symbol"),
        (("list", "--account", "x' OR '1'='1"), "is not an account name"),
        (("account", "open", "bad name!", "--equity", "5"), "is not an account name"),
        (("account", "open", "eq-test", "--equity", "-5"), "equity"),
        (("account", "open", "eq-test", "--equity", "1e400"), "equity"),
    ]
    runs = await asyncio.gather(*[arig(address, *args) for args, _ in cases])
    for (args, expected), run in zip(cases, runs):
        line = one_line_error(run)
        assert expected in line, (args, line)
    # The enum values themselves pass, in any case, and the query quotes them.
    run = await arig(address, "list", "--state", "working", "--side", "buy", "--account", "nobody")
    assert run.returncode == 0 and 'OrderState="WORKING" AND Account="nobody" AND Side="BUY"' in run.stdout, run.stdout + run.stderr


async def test_account_open_list_show_and_refusals(address, client, worker, tmp_path, account):
    run = await arig(address, "account", "open", account, "--equity", "2000000", "--synthetic")
    assert run.returncode == 0 and f"opened account {account}" in run.stdout, run.stdout + run.stderr
    desc = await client.get_workflow_handle(risk_workflow_id(account)).describe()
    assert desc.typed_search_attributes.get(SA_ACCOUNT) == account  # set at start: the UI can filter it at once

    again = one_line_error(await arig(address, "account", "open", account, "--equity", "5"))
    assert f"account {account} is open already" in again
    fresh = one_line_error(await arig(address, "account", "open", account, "--equity", "5", "--fresh"))
    assert "is open already" in fresh, "--fresh never replaces a running account"

    order = await submit(client, intent(account, "cli1", quantity=100))
    for _ in range(100):
        snap = await order.query(QUERY_STATE, result_type=OrderSnapshot)
        if snap.state is not OrderState.ACCEPTED:
            break
        await asyncio.sleep(0.05)
    shown = await arig(address, "account", account, "--groups")
    assert shown.returncode == 0, shown.stderr
    assert f"account {account} (synthetic, venue SIM, ACTIVE)" in shown.stdout and "TECH_HARDWARE" in shown.stdout
    if snap.state.is_open:
        assert "open orders (1)" in shown.stdout and order.id in shown.stdout
    as_json = await arig(address, "account", account, "--json")
    assert RiskView.model_validate_json(as_json.stdout).account == account

    for _ in range(50):  # visibility catches up with the new account
        listed = await arig(address, "account", "list")
        if account in listed.stdout:
            break
        await asyncio.sleep(0.2)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(account))
    assert "NORMAL" in row and "synthetic" in row and "SIM" in row and "ACTIVE" in row, listed.stdout

    await client.get_workflow_handle(risk_workflow_id(account)).terminate("by mistake")
    closed = one_line_error(await arig(address, "account", "open", account, "--equity", "5"))
    assert "is closed (TERMINATED" in closed and f"rig account reopen {account}" in closed, closed
    view = one_line_error(await arig(address, "account", account))
    assert f"rig account reopen {account}" in view
    with contextlib.suppress(RPCError):  # closed already (filled at arrival): nothing to clean up
        await client.get_workflow_handle(order.id).terminate("test over")


async def test_account_open_with_rules_and_fresh(address, client, worker, tmp_path, account):
    broken = rules_file(tmp_path, "broken.yaml", regimes__MID={"start": "10:00", "gross_tolerance_pct": 135, "allow_derisk": True})
    line = one_line_error(await arig(address, "account", "open", account, "--equity", "1000000", "--rules", str(broken)), code=2)
    assert line.startswith("config error: ") and "regimes.MID.gross_tolerance_pct: 135.0 is above the hard cap (130.0)" in line, line
    with pytest.raises(RPCError):
        await client.get_workflow_handle(risk_workflow_id(account)).describe()  # nothing was started

    good = rules_file(tmp_path, "good.yaml", hard_cap_pct=128)
    run = await arig(address, "account", "open", account, "--equity", "1000000", "--rules", str(good))
    assert run.returncode == 0 and f"rules from {good}" in run.stdout, run.stdout + run.stderr
    handle = client.get_workflow_handle(risk_workflow_id(account))
    first = await handle.describe()
    events = [e async for e in handle.fetch_history_events()]
    started = events[0].workflow_execution_started_event_attributes.input.payloads[0].data
    assert b'"hard_cap_pct":128.0' in started.replace(b" ", b"")
    await handle.terminate("test: closed")
    run = await arig(address, "account", "open", account, "--equity", "3000000", "--fresh")
    assert run.returncode == 0 and "fresh: an empty book" in run.stdout, run.stdout + run.stderr
    assert (await handle.describe()).run_id != first.run_id


async def test_account_rules_update_through_the_cli(address, client, worker, tmp_path, account):
    assert (await arig(address, "account", "open", account, "--equity", "1000000", "--synthetic")).returncode == 0
    handle = client.get_workflow_handle(risk_workflow_id(account))

    def set_rules_events(events) -> list:
        return [
            e
            for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == UPDATE_SET_RULES
        ]

    broken = rules_file(tmp_path, "broken.yaml", hard_cap_pct=-1)
    line = one_line_error(await arig(address, "account", "rules", account, str(broken)), code=2)
    assert line.startswith("config error: ") and "hard_cap_pct" in line, line
    missing = one_line_error(await arig(address, "account", "rules", account, str(tmp_path / "absent.yaml")), code=2)
    assert "cannot read" in missing
    assert not set_rules_events([e async for e in handle.fetch_history_events()]), "an invalid file sends nothing"

    good = rules_file(tmp_path, "good.yaml", hard_cap_pct=127, risk_cycle__cycle_seconds=30)
    run = await arig(address, "account", "rules", account, str(good))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"account {account}: rules applied: hard cap 127%, cycle 30s" in run.stdout
    recorded = set_rules_events([e async for e in handle.fetch_history_events()])
    assert len(recorded) == 1
    assert b'"hard_cap_pct":127.0' in recorded[0].workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads[
        0
    ].data.replace(b" ", b"")
    view = await handle.query(QUERY_STATE, result_type=RiskView)
    assert view.mode is RiskMode.NORMAL


async def test_account_opens_with_a_beginning_of_day_book_and_the_kill_switch_works_from_the_cli(env, worker, tmp_path):
    address = env.client.service_client.config.target_host
    account = f"cli-bod-{os.getpid()}"
    bod = tmp_path / "bod.csv"
    bod.write_text("symbol,bucket,quantity,avg_cost,mark\nAAPL,LT,1000,180.00,190.00\n")
    broken = tmp_path / "broken.csv"
    broken.write_text("symbol,bucket,quantity,avg_cost\nAAPL,LT,lots,180\n")
    assert "line 2" in one_line_error(await arig(address, "account", "open", account, "--equity", "1000000", "--positions", str(broken)), 2)
    opened = await arig(address, "account", "open", account, "--equity", "1000000", "--positions", str(bod), "--synthetic")
    assert opened.returncode == 0, opened.stderr
    try:
        shown = await arig(address, "account", account)
        assert shown.returncode == 0 and "P&L today" in shown.stdout and "avg cost" in shown.stdout and "180.00" in shown.stdout, shown.stdout
        halted = await arig(address, "account", "halt", account, "--by", "ops", "--reason", "erroneous algo")
        assert halted.returncode == 0 and "ACTIVE → HALTED by ops: erroneous algo" in halted.stdout, halted.stdout + halted.stderr
        refused = await submit(env.client, intent(account, "after-halt", quantity=10))
        snap = await refused.result()
        assert snap.state is OrderState.REJECTED and snap.reject_reason.value == "HALTED"
        assert "HALTED" in (await arig(address, "account", account)).stdout
        frozen_reduce = await arig(address, "account", "reduce", account, "--by", "risk", "--reason", "wind down")
        assert frozen_reduce.returncode == 0 and "HALTED → REDUCING" in frozen_reduce.stdout
        resumed = await arig(address, "account", "resume", account, "--by", "ops", "--reason", "fixed")
        assert resumed.returncode == 0 and "REDUCING → ACTIVE" in resumed.stdout
    finally:
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(risk_workflow_id(account)).terminate("test over")
