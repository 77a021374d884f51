"""Issue 25's controls, costs and firm wired into the account, on a real dev server: costs in the
view's P&L (gross, costs, net), repeated executions → REDUCING with who and why, and the firm's
allocation refusing then granting, and holding the firm's credit limit across two accounts. (The
crossed quote refusing a HARD sell then issuing it is scenario control_derisk_crossed_quote.)"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

from config.load import CONFIG_DIR, load_config
from domain.enums import OrderState, RejectReason, TradingState
from domain.rules import RigConfig
from protocol.contract import QUERY_STATE, RISK_WORKFLOW, account_task_queue, firm_workflow_id, risk_workflow_id
from protocol.firm_messages import FirmView
from protocol.messages import RiskInput
from tests.accounts import ORDER_TEST_CYCLE_SECONDS, finish, intent, open_account, submit, wait_state, with_fills
from tests.conftest import TASK_QUEUE
from tests.drills import arig
from tests.faults import until_view

PRODUCTION = load_config(CONFIG_DIR / "profiles" / "production.yaml").rules


def with_rules(config: RigConfig, **sections: Any) -> RigConfig:
    return config.model_copy(update={"rules": config.rules.model_copy(update=sections)})


def with_controls(config: RigConfig, **controls: Any) -> RigConfig:
    rule = config.rules.controls.model_validate(config.rules.controls.model_dump() | controls)
    return with_rules(config, controls=rule)


@pytest.fixture
def address(env) -> str:
    return env.client.service_client.config.target_host


@pytest_asyncio.fixture
async def firm_names(client: Client) -> AsyncIterator[tuple[str, list[str]]]:
    tag = uuid.uuid4().hex[:8]
    firm, accounts = f"f-{tag}", [f"w-{tag}-{i}" for i in range(2)]
    yield firm, accounts
    for workflow_id in [firm_workflow_id(firm), *[risk_workflow_id(a) for a in accounts]]:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test over")


async def open_member(env, account: str, config: RigConfig, firm: str) -> None:
    """A real-time synthetic account with one-second cycles in `firm`; nothing fills by chance."""
    with env.with_time_skipping_disabled():
        await env.client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(
                account=account,
                config=with_fills(config, ORDER_TEST_CYCLE_SECONDS, other=0.0, cancel_cross_probability=0.0),
                seed=3,
                start_exchange_time="11:00",
                synthetic=True,
                firm=firm,
            ),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(TASK_QUEUE),
        )


async def test_costs_show_in_the_views_pnl_gross_costs_and_net(env, client, worker, config, account):
    await open_account(env, account, with_rules(config, costs=PRODUCTION.costs), other=1.0)
    filled = await finish(await submit(client, intent(account, "c1", quantity=100, limit_price=190.0)))
    assert filled.state is OrderState.FILLED
    view = await until_view(client, account, lambda v: v.pnl is not None and v.pnl.account.costs > 0, what="costs booked")
    assert view.pnl is not None
    totals = view.pnl.account
    # 100 shares taken at 190: commission 100 × 0.0035 = 0.35 (= the minimum), exchange 0.30, clearing 0.02
    assert totals.costs == pytest.approx(0.67)
    assert totals.net == pytest.approx(totals.daily - 0.67) and totals.net < totals.daily


async def test_repeated_executions_put_the_account_reducing_by_controls_with_the_reason(env, client, worker, config, account):
    rules = with_controls(config, repeated_executions={"max_fills": 3, "window_seconds": 300})
    await open_account(env, account, rules, other=1.0)
    for i in range(3):
        assert (await finish(await submit(client, intent(account, f"e{i}", quantity=10, limit_price=190.0)))).state is OrderState.FILLED
    view = await until_view(client, account, lambda v: v.trading_state is TradingState.REDUCING, what="REDUCING")
    change = view.trading_changes[-1]
    assert (change.previous, change.state, change.by) == (TradingState.ACTIVE, TradingState.REDUCING, "controls")
    assert change.reason == "REPEATED_EXECUTIONS: 3 BUY fills in AAPL within 300 s reach the limit of 3", change.reason
    refused = await finish(await submit(client, intent(account, "e3", quantity=10, limit_price=190.0)))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.REDUCING_ONLY)


async def test_a_member_is_refused_until_its_firm_grants_then_trades(env, client, worker, config, address, firm_names):
    firm, (member, _) = firm_names
    await open_member(env, member, config, firm)  # its firm is not open yet: no grant, nothing allocated
    refused = await finish(await submit(client, intent(member, "f1", quantity=100, limit_price=190.0)))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.FIRM_GROSS_LIMIT)
    assert refused.reject_message is not None and f"no allocation from firm {firm} yet" in refused.reject_message
    opened = await arig(address, "firm", "open", firm, "--gross-limit", "1000000", "--credit-limit", "2000000", "--accounts", member)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    granted = await until_view(client, member, lambda v: v.firm_allocation is not None, what="the firm's first grant")
    assert granted.firm == firm and granted.firm_allocation is not None
    assert (granted.firm_allocation.gross, granted.firm_allocation.credit) == (1_000_000, 2_000_000)  # the only member: all of it
    handle = await submit(client, intent(member, "f2", quantity=100, limit_price=190.0))
    assert (await wait_state(handle, {OrderState.WORKING, OrderState.REJECTED})).state is OrderState.WORKING
    await handle.terminate("test over")


async def test_the_firms_credit_limit_holds_across_two_accounts(env, client, worker, config, address, firm_names):
    """Credit 380,000 over two members (190,000 each to start; the firm rebalances from their reports,
    never granting more than its pool). AAPL at 190, nothing fills: each open buy uses its notional."""
    firm, (a, b) = firm_names
    opened = await arig(address, "firm", "open", firm, "--gross-limit", "1000000000", "--credit-limit", "380000", "--accounts", f"{a},{b}")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    for account in (a, b):
        await open_member(env, account, config, firm)
        await until_view(client, account, lambda v: v.firm_allocation is not None, what="the firm's first grant")
    handles, states = [], {}
    # a: 171,000 within its 190,000. b: 228,000 is more than the firm has left (209,000) whatever the
    # rebalancing. b: 95,000 is within what b keeps at the least (its usage + half the free room).
    # a: 133,000 more would take the firm to 399,000: refused whatever a was granted meanwhile.
    for name, account, quantity in (("a1", a, 900), ("b1", b, 1200), ("b2", b, 500), ("a2", a, 700)):
        handles.append(handle := await submit(client, intent(account, name, quantity=quantity, limit_price=190.0)))
        snap = await wait_state(handle, {OrderState.WORKING, OrderState.REJECTED})
        states[name] = (snap.state, snap.reject_reason)
    assert states == {
        "a1": (OrderState.WORKING, None),
        "b1": (OrderState.REJECTED, RejectReason.FIRM_CREDIT_LIMIT),
        "b2": (OrderState.WORKING, None),
        "a2": (OrderState.REJECTED, RejectReason.FIRM_CREDIT_LIMIT),
    }
    view = await client.get_workflow_handle(firm_workflow_id(firm)).query(QUERY_STATE, result_type=FirmView)
    assert view.allocated.credit <= 380_000
    assert sum(m.usage.credit for m in view.members) <= 380_000 + 1e-6
    for handle in handles:
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")


async def test_a_member_opened_after_its_firm_halted_halts_at_its_first_report(env, client, worker, config, address, firm_names):
    """The firm's halt reached the members open then; one opened later learns it from its first grant
    and halts itself, recorded as the firm's halt (so the firm's resume lifts it)."""
    firm, (late, _) = firm_names
    opened = await arig(address, "firm", "open", firm, "--gross-limit", "1000000", "--credit-limit", "2000000", "--accounts", late)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    halted = await arig(address, "firm", "halt", firm, "--by", "cro", "--reason", "runaway algo")
    assert halted.returncode == 0 and "1 NO_SUCH_ACCOUNT" in halted.stdout, halted.stdout + halted.stderr
    await open_member(env, late, config, firm)
    view = await until_view(client, late, lambda v: v.trading_state is TradingState.HALTED, what="HALTED by its firm")
    change = view.trading_changes[-1]
    assert (change.by, change.reason) == (f"firm {firm}", f"firm {firm} halt: the firm is HALTED (seen in its grant)")
    refused = await finish(await submit(client, intent(late, "h1", quantity=10, limit_price=190.0)))
    assert (refused.state, refused.reject_reason) == (OrderState.REJECTED, RejectReason.HALTED)
    resumed = await arig(address, "firm", "resume", firm, "--by", "cro", "--reason", "all clear")
    assert resumed.returncode == 0 and "1 RESUMED" in resumed.stdout, resumed.stdout + resumed.stderr
    assert (await until_view(client, late, lambda v: v.trading_state is TradingState.ACTIVE, what="resumed")).trading_state is TradingState.ACTIVE
