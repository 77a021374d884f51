"""Issue 9, at scale (`make test-scale`): 3,000 open orders on one account. The per-cycle fan-out
(the venue step, the audit) stays under the server's per-workflow limits, the account keeps
cycling, its history stays bounded (it continues-as-new). It runs its own worker process."""

from __future__ import annotations

import asyncio
import random
import time

from domain.enums import OrderState
from protocol.contract import ORDER_WORKFLOW, QUERY_STATE, SA_ORDER_STATE
from protocol.order_record import OrderSnapshot
from tests.faults import until_view
from tests.test_many_orders import failed_tasks, open_passive_account, own_worker, raw_order, run_lengths

ORDERS = 3_000
IN_FLIGHT = 50  # orders waiting for their arrival at once: a desk's steady flow, not a burst (see the burst test)


async def test_three_thousand_open_orders_on_one_account(env, config, account):
    async with own_worker(env, "many", account) as (client, queue, log):
        started = time.monotonic()
        handle = await open_passive_account(client, config, account, queue)
        first_run = handle.result_run_id
        gate = asyncio.Semaphore(IN_FLIGHT)
        arrived: list[tuple[str, str]] = []

        async def start(n: int) -> None:
            """A desk's submit; the order reports its arrival to the account itself. At most
            IN_FLIGHT orders wait for their arrival at once (their state, read from visibility)."""
            async with gate:
                raw = raw_order(config, account, n)
                order = await client.start_workflow(ORDER_WORKFLOW, raw, id=raw["intent_id"], task_queue=queue)
                while (state := (await order.describe()).typed_search_attributes.get(SA_ORDER_STATE)) in (None, OrderState.ACCEPTED.value):
                    await asyncio.sleep(0.25)
                arrived.append((order.id, state))

        loading = asyncio.gather(*[start(n) for n in range(ORDERS)])
        while not loading.done():  # a wedged account fails the test at once, with its reason
            await asyncio.wait([loading], timeout=5)
            failures = await failed_tasks(client, handle.id)
            assert not failures, f"the account's workflow task failed with {len(arrived)} orders at the venue: {failures[:2]}"
            assert time.monotonic() - started < 240, f"only {len(arrived)} of {ORDERS} orders at the venue in 240s"
        try:
            await loading
        except Exception as err:
            raise AssertionError(
                f"starting orders failed after {len(arrived)} arrived: {type(err).__name__}: {err}; "
                f"worker: {[line[:200] for line in log if 'TMPRL1101' in line or 'Traceback' in line][:3]}"
            ) from err
        not_working = [(i, s) for i, s in arrived if s != OrderState.WORKING.value]
        assert not not_working, [
            (i, s, (await client.get_workflow_handle(i).query(QUERY_STATE, result_type=OrderSnapshot)).reject_message) for i, s in not_working[:5]
        ]
        view = await until_view(
            client,
            account,
            lambda v: v.open_order_states.get(OrderState.WORKING, 0) == ORDERS,
            timeout=60,
            what=f"{ORDERS} working orders in the ledger",
        )
        loaded = time.monotonic() - started
        # Held through several cycles: the venue step and the audit visit 3,000 orders.
        held_from = view.cycle
        view = await until_view(client, account, lambda v: v.cycle >= held_from + 4, timeout=60, what="4 cycles with 3,000 open orders")
        assert view.open_order_count == ORDERS and not view.lost, [(o.intent_id, o.lost_cause) for o in view.lost][:5]
        assert not await failed_tasks(client, handle.id)
        lengths = await run_lengths(client, handle.id)
        assert len(lengths) >= 2 and (ORDERS < 3000 or (await handle.describe()).run_id != first_run), (
            "the account continued as new (≥ 3,000 pre-trade updates)"
        )
        assert max(lengths) < 20_000, f"an account run grew to {max(lengths)} events: {lengths}"
        sample = random.Random(1).sample([i for i, _ in arrived], 20)
        sampled = await asyncio.gather(*[client.get_workflow_handle(i).query(QUERY_STATE, result_type=OrderSnapshot) for i in sample])
        assert all(s.state is OrderState.WORKING for s in sampled), [s.state for s in sampled]

        print(
            f"\n{ORDERS} open orders: loaded in {loaded:.1f}s, held {view.cycle - held_from} cycles; "
            f"account runs {len(lengths)}, history lengths {lengths}; {time.monotonic() - started:.1f}s wall"
        )
