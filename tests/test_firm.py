"""The firm entity on a real dev server (issue 25): `rig firm halt` halts every member account in one
operator action, each recording who and why; the firm records the halt once (a repeat changes nothing
and leaves nothing in its history); a member that does not exist is reported, not fatal; resume lifts
only the halts the firm made; an account's usage report is the rig's own message — unsigned it is
refused, signed it is answered with the account's grant; and the CLI's errors are one line."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from activities.firm_calls import FirmCalls
from domain.enums import TradingState
from domain.firm import Amounts, FirmGrant, Usage, UsageReport
from protocol.contract import (
    FIRM_WORKFLOW,
    QUERY_STATE,
    SA_TRADING_STATE,
    UPDATE_FIRM_HALT,
    UPDATE_REPORT_USAGE,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    firm_workflow_id,
    risk_workflow_id,
)
from protocol.firm_messages import FirmView, MemberOutcome, ReportToFirm
from tests.accounts import open_account
from tests.conftest import TASK_QUEUE
from tests.drills import arig
from tests.faults import view_of
from tests.test_cli import one_line_error
from tests.test_forged_messages import REFUSED, temporal


@pytest.fixture
def address(env) -> str:
    return env.client.service_client.config.target_host


@dataclass(frozen=True)
class Names:
    firm: str
    accounts: list[str]


@pytest_asyncio.fixture
async def names(client: Client) -> AsyncIterator[Names]:
    """A fresh firm name and three account names; everything they started is terminated afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = Names(firm=f"f-{tag}", accounts=[f"t-{tag}-{i}" for i in range(3)])
    yield made
    for workflow_id in [firm_workflow_id(made.firm), *[risk_workflow_id(a) for a in made.accounts]]:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test over")


async def firm_view(client: Client, firm: str) -> FirmView:
    return await client.get_workflow_handle(firm_workflow_id(firm)).query(QUERY_STATE, result_type=FirmView)


async def accepted_updates(client: Client, workflow_id: str, name: str) -> int:
    events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    return sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == name
    )


async def test_firm_halt_halts_every_member_once_with_who_and_why(env, client, worker, config, address, names):
    firm, accounts = names.firm, names.accounts
    for account in accounts:
        await open_account(env, account, config)
    ghost = f"{firm}-ghost"  # a member never opened
    opened = await arig(
        address, "firm", "open", firm, "--gross-limit", "3000000", "--credit-limit", "4500000", "--accounts", ",".join([*accounts, ghost])
    )
    assert opened.returncode == 0 and f"opened firm {firm}" in opened.stdout and f"not open yet: {ghost}" in opened.stdout, (
        opened.stdout + opened.stderr
    )

    halted = await arig(address, "firm", "halt", firm, "--by", "risk-officer", "--reason", "runaway algo")
    # A member that does not exist is reported in the table; the halt of the others is not held up by it.
    assert halted.returncode == 0 and not halted.stderr, halted.stdout + halted.stderr
    assert f"firm {firm}: ACTIVE → HALTED by risk-officer: runaway algo; members: 3 HALTED, 1 NO_SUCH_ACCOUNT" in halted.stdout, halted.stdout
    for account in accounts:
        view = await view_of(client, account)
        assert view.trading_state is TradingState.HALTED
        assert [(c.state, c.by, c.reason) for c in view.trading_changes] == [(TradingState.HALTED, "risk-officer", f"firm {firm} halt: runaway algo")]
    state = await firm_view(client, firm)
    assert state.trading_state is TradingState.HALTED and [(c.by, c.reason) for c in state.changes] == [("risk-officer", "runaway algo")]
    assert {r.account: r.outcome for r in state.last_results} == {
        **dict.fromkeys(accounts, MemberOutcome.HALTED),
        ghost: MemberOutcome.NO_SUCH_ACCOUNT,
    }
    desc = await client.get_workflow_handle(firm_workflow_id(firm)).describe()
    assert desc.typed_search_attributes.get(SA_TRADING_STATE) == "HALTED"

    again = await arig(address, "firm", "halt", firm, "--by", "someone-else", "--reason", "again")
    assert again.returncode == 0 and f"firm {firm} is HALTED already since" in again.stdout and "by risk-officer: runaway algo" in again.stdout
    assert len((await firm_view(client, firm)).changes) == 1
    assert await accepted_updates(client, firm_workflow_id(firm), UPDATE_FIRM_HALT) == 1  # the repeat never reached the history
    for account in accounts:
        assert len((await view_of(client, account)).trading_changes) == 1
        assert await accepted_updates(client, risk_workflow_id(account), UPDATE_SET_TRADING_STATE) == 1


async def test_resume_lifts_only_the_firms_own_halts(env, client, worker, config, address, names):
    firm, accounts = names.firm, names.accounts
    for account in accounts:
        await open_account(env, account, config)
    mine = accounts[0]  # halted by its own operator before the firm: the firm leaves it as it is
    await client.get_workflow_handle(risk_workflow_id(mine)).execute_update(
        UPDATE_SET_TRADING_STATE, {"state": "HALTED", "by": "desk-head", "reason": "own reasons"}, result_type=str
    )
    assert (
        await arig(address, "firm", "open", firm, "--gross-limit", "1e6", "--credit-limit", "2e6", "--accounts", ",".join(accounts))
    ).returncode == 0
    halted = await arig(address, "firm", "halt", firm, "--by", "cro", "--reason", "market event")
    assert halted.returncode == 0 and "1 ALREADY_HALTED, 2 HALTED" in halted.stdout, halted.stdout + halted.stderr
    resumed = await arig(address, "firm", "resume", firm, "--by", "cro", "--reason", "all clear")
    assert resumed.returncode == 0 and "HALTED → ACTIVE by cro: all clear; members: 1 LEFT_AS_IS, 2 RESUMED" in resumed.stdout, resumed.stdout
    assert (await view_of(client, mine)).trading_state is TradingState.HALTED
    for account in accounts[1:]:
        view = await view_of(client, account)
        assert view.trading_state is TradingState.ACTIVE and [c.state for c in view.trading_changes] == [TradingState.HALTED, TradingState.ACTIVE]
    shown = await arig(address, "firm", "show", firm)
    assert shown.returncode == 0 and f"firm {firm}: ACTIVE;" in shown.stdout and "by cro: all clear" in shown.stdout, shown.stdout


async def test_an_unsigned_usage_report_is_refused_and_a_signed_one_gets_its_grant(env, client, worker, address, names):
    firm, accounts = names.firm, names.accounts
    assert (
        await arig(address, "firm", "open", firm, "--gross-limit", "900", "--credit-limit", "1200", "--accounts", ",".join(accounts))
    ).returncode == 0
    forged = {"account": accounts[0], "usage": {"gross": 0, "credit": 0}, "released": {"gross": 0, "credit": 0}}
    done = await temporal(
        address,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        firm_workflow_id(firm),
        "--name",
        UPDATE_REPORT_USAGE,
        "--input",
        json.dumps(forged),
    )
    assert done.returncode != 0 and REFUSED in done.stdout + done.stderr, (done.stdout + done.stderr)[-500:]
    assert all(m.reports == 0 for m in (await firm_view(client, firm)).members)

    report = UsageReport(account=accounts[0], usage=Usage(gross=100.0, credit=100.0), released=Amounts())
    grant = await FirmCalls(client).report_to_firm(ReportToFirm(firm=firm, report=report))  # as the account's activity sends it: signed
    assert grant == FirmGrant(account=accounts[0], granted=Amounts(gross=300, credit=400), reclaim_to=None)
    view = await firm_view(client, firm)
    assert [m.reports for m in view.members] == [1, 0, 0] and view.allocated == Amounts(gross=900, credit=1200)
    assert await FirmCalls(client).report_to_firm(ReportToFirm(firm=f"{firm}-none", report=report)) is None  # no such firm: not an error


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("firm", "open", "bad name!", "--gross-limit", "5", "--credit-limit", "5", "--accounts", "a"), "is not a firm name"),
        (("firm", "open", "ok", "--gross-limit", "-5", "--credit-limit", "5", "--accounts", "a"), "--gross-limit must be a whole amount > 0"),
        (("firm", "open", "ok", "--gross-limit", "nan", "--credit-limit", "5", "--accounts", "a"), "--gross-limit must be a whole amount"),
        (("firm", "open", "ok", "--gross-limit", "5", "--credit-limit", "1e400", "--accounts", "a"), "--credit-limit must be a whole amount"),
        (("firm", "open", "ok", "--gross-limit", "5", "--credit-limit", "5", "--accounts", "a,,b"), "none empty"),
        (("firm", "open", "ok", "--gross-limit", "5", "--credit-limit", "5", "--accounts", "a,a"), "an account is listed twice"),
        (("firm", "open", "ok", "--gross-limit", "5", "--credit-limit", "5", "--accounts", "x y"), "is not an account name"),
        (("firm", "show", "no-such-firm-1f"), "no firm no-such-firm-1f: open it with"),
        (("firm", "halt", "no-such-firm-1f", "--by", "me", "--reason", "why"), "no firm no-such-firm-1f"),
        (("firm", "halt", "no-such-firm-1f", "--by", "", "--reason", "why"), "by: String should have at least 1 character"),
    ],
)
async def test_firm_cli_errors_are_one_line(address, worker, args, words):
    line = one_line_error(await arig(address, *args))
    assert words in line, line


async def test_a_firm_started_with_bad_input_fails_cleanly_without_a_failed_task(env, client, worker):
    """As `temporal workflow start` lets anyone do: the run fails with the problem named, no task fails."""
    workflow_id = firm_workflow_id(f"bad-{uuid.uuid4().hex[:6]}")
    bad = {"firm": "x", "limits": {"gross": -1, "credit": 5}, "accounts": ["a"]}
    handle = await client.start_workflow(FIRM_WORKFLOW, bad, id=workflow_id, task_queue=account_task_queue(TASK_QUEUE))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert "invalid firm input: limits.gross" in str(info.value.cause)
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events
