"""Durability drills: a worker SIGKILLed mid-flight, and the dev server stopped and restarted on
the same SQLite file. Orders must all end terminal with the ledger equal to the sum of fills."""

from __future__ import annotations

import asyncio
import signal

from temporalio.client import Client

from protocol.contract import risk_workflow_id
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from tests.accounts import finish
from tests.drills import (
    assert_ledger_is_sum_of_fills,
    ended,
    finish_on_a_fresh_worker,
    free_port,
    nudge_account,
    start_account,
    submit_many,
    wait_polling,
    worker_process,
)
from tests.evidence import closed_after, events_of, finished_or_why, hold_work, interrupted
from tests.faults import until_view
from worker import server
from worker.connection import connect


async def test_worker_sigkill_with_orders_in_flight(env, account):
    """The worker is killed while it holds the account's workflow task (frozen, then handed one);
    orders are open at that moment; that task times out and a fresh worker finishes the day."""
    address = env.client.service_client.config.target_host
    queue = f"kill-{account}"
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    first = worker_process(address, queue)
    try:
        await wait_polling(first)
        await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
        handles = await submit_many(client, account, queue, 60)
        await until_view(client, account, lambda v: any(not o.synthetic for o in v.open_orders), what="orders open at the account")
        held = await hold_work(client, first, lambda: [risk_workflow_id(account)], lambda: nudge_account(client, account))
        await ended(first)
    finally:
        if first.poll() is None:
            first.kill()
    await finish_on_a_fresh_worker(client, address, queue, account, handles)
    assert not await interrupted(client, held), held


async def test_server_restart_on_the_same_sqlite_file(tmp_path):
    """The server is killed (SIGKILL, not a clean shutdown) with orders open and the account's
    workflow task in flight on a frozen worker; restarted on the same SQLite file, every history
    is there, the task in flight times out and is run again, and the day completes."""
    port = free_port()
    db = tmp_path / "temporal.sqlite"
    queue, account = "restart-drill", "restart"
    proc = await asyncio.to_thread(server.start, "127.0.0.1", port, db)
    address = f"127.0.0.1:{port}"
    worker = worker_process(address, queue)
    try:
        client = await connect(target_host=address, namespace="default")
        await wait_polling(worker)
        await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
        handles = await submit_many(client, account, queue, 30)
        view = await until_view(client, account, lambda v: any(not o.synthetic for o in v.open_orders), what="orders open at the account")
        open_orders = [o.intent_id for o in view.open_orders if not o.synthetic]
        held = await hold_work(client, worker, lambda: [risk_workflow_id(account)], lambda: nudge_account(client, account))
        before = {h.id: len(await events_of(client, h.id)) for h in handles[:5]}
        at_kill = len(await events_of(client, risk_workflow_id(account)))
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        proc = await asyncio.to_thread(server.start, "127.0.0.1", port, db)
        worker.send_signal(signal.SIGCONT)
        client = await connect(target_host=address, namespace="default")
        for h in handles[:5]:  # histories survived: every event recorded before the kill is there
            events = await events_of(client, h.id)
            assert len(events) >= before[h.id] and events[0].HasField("workflow_execution_started_event_attributes")
        snaps = await finished_or_why(client, [client.get_workflow_handle(h.id) for h in handles], finish, 120, risk_workflow_id(account))
        await assert_ledger_is_sum_of_fills(client, account, snaps)
        events = await events_of(client, risk_workflow_id(account), held[0].run_id)
        in_flight = [h for h in held if h.kind == "workflow task" and closed_after(events, h, at_kill)]
        assert open_orders and in_flight, f"no task of the account was in flight across the kill (event {at_kill}): {held}"
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        await ended(worker)
        await asyncio.to_thread(server.stop, proc)
