"""Issue 9: 3,000 open orders on one account, held through several cycles. The per-cycle fan-out
(the venue step, the audit) stays under the server's per-workflow limits, the account keeps
cycling, and its history stays bounded: it continues-as-new. Then every order expires at the close."""

from __future__ import annotations

import asyncio
import random
import time

from temporalio.client import Client

from domain.enums import CancelReason, OrderState
from protocol.contract import QUERY_STATE, RISK_WORKFLOW, UPDATE_SET_SESSION, risk_workflow_id
from protocol.messages import OrderSnapshot, RiskInput
from tests.accounts import finish, intent, submit, with_fills
from tests.conftest import TASK_QUEUE
from tests.faults import until_view

ORDERS = 3_000
SYMBOLS = ("AAPL", "MSFT", "XOM", "KO", "JPM", "CVX", "WMT", "DUK")


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """History length of every run of the workflow (visibility lists the runs, describe counts)."""
    runs = [wf async for wf in client.list_workflows(f'WorkflowId="{workflow_id}"')]
    return [(await client.get_workflow_handle(workflow_id, run_id=r.run_id).describe()).history_length for r in runs]


async def test_three_thousand_open_orders_on_one_account(env, client, worker, config, account):
    started = time.monotonic()
    # Passive orders (never fill) of one share on a large equity: no limit refuses any of them.
    rules = with_fills(config, 1, other=0.0, partial_fill_probability=0.0, cancel_cross_probability=0.0)
    with env.with_time_skipping_disabled():
        handle = await env.client.start_workflow(
            RISK_WORKFLOW, RiskInput(account=account, config=rules, equity=1e10, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account), task_queue=TASK_QUEUE,
        )
    first_run = handle.result_run_id
    prices = {i.symbol: i.reference_price for i in config.universe.instruments}
    raws = [intent(account, f"m{n:04d}", symbol=SYMBOLS[n % len(SYMBOLS)], quantity=1, limit_price=prices[SYMBOLS[n % len(SYMBOLS)]])
            for n in range(ORDERS)]
    handles = []
    for chunk in range(0, ORDERS, 250):
        handles += await asyncio.gather(*[submit(client, raw) for raw in raws[chunk:chunk + 250]])
    view = await until_view(client, account, lambda v: sum(1 for o in v.open_orders if o.state is OrderState.WORKING) == ORDERS,
                            timeout=240, what=f"{ORDERS} working orders in the ledger")
    loaded = time.monotonic() - started
    # Held through several cycles: the venue step and the audit visit 3,000 orders every cycle.
    held_from = view.cycle
    view = await until_view(client, account, lambda v: v.cycle >= held_from + 4, timeout=60, what="4 cycles with 3,000 open orders")
    assert len(view.open_orders) == ORDERS and not view.lost, [(o.intent_id, o.lost_cause) for o in view.lost][:5]
    lengths = await run_lengths(client, handle.id)
    assert len(lengths) >= 2 and (await handle.describe()).run_id != first_run, "the account continued as new (≥ 3,000 pre-trade updates)"
    assert max(lengths) < 20_000, f"an account run grew to {max(lengths)} events: {lengths}"
    sample = random.Random(1).sample(handles, 20)
    assert all((await h.query(QUERY_STATE, result_type=OrderSnapshot)).state is OrderState.WORKING for h in sample)

    # Then the close: every order expires, the ledger empties, the account carries on.
    await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "16:29:57"}, result_type=str)
    await until_view(client, account, lambda v: not v.open_orders, timeout=120, what="every order expired at the close")
    snaps = await asyncio.gather(*[finish(client.get_workflow_handle(h.id)) for h in sample])
    assert all((s.state, s.cancel_reason) == (OrderState.CANCELED, CancelReason.EXPIRED_DAY) for s in snaps), [s.state for s in snaps]
    lengths = await run_lengths(client, handle.id)
    print(f"\n{ORDERS} open orders: loaded in {loaded:.1f}s, held {view.cycle - held_from} cycles, expired at the close; "
          f"account runs {len(lengths)}, history lengths {lengths}; {time.monotonic() - started:.1f}s wall")
