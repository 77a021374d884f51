"""Durability drills: a worker SIGKILLed mid-flight, and the dev server stopped and restarted on
the same SQLite file. Orders must all end terminal with the ledger equal to the sum of fills."""

from __future__ import annotations

import asyncio
import signal

from temporalio.client import Client

from protocol.contract import QUERY_STATE, risk_workflow_id
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from protocol.messages import OrderSnapshot
from tests.accounts import finish
from tests.drills import (
    assert_ledger_is_sum_of_fills,
    finish_on_a_fresh_worker,
    free_port,
    start_account,
    submit_many,
    wait_polling,
    worker_process,
)
from worker import server
from worker.connection import connect
from worker.main import build_worker


async def test_worker_sigkill_with_orders_in_flight(env, account):
    address = env.client.service_client.config.target_host
    queue = f"kill-{account}"
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    first = worker_process(address, queue)
    try:
        await wait_polling(first)
        await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
        handles = await submit_many(client, account, queue, 60)
        await asyncio.sleep(1.5)  # orders are mid-flight: some working, some partially filled
        states = [(await h.query(QUERY_STATE, result_type=OrderSnapshot)).state for h in handles[:20]]
        assert any(s.is_open for s in states), "the drill needs orders still in flight"
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    await finish_on_a_fresh_worker(client, address, queue, account, handles)


async def test_server_restart_on_the_same_sqlite_file(tmp_path):
    port = free_port()
    db = tmp_path / "temporal.sqlite"
    queue, account = "restart-drill", "restart"
    proc = server.start("127.0.0.1", port, db)
    try:
        client = await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        async with build_worker(client, queue):
            await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
            handles = await submit_many(client, account, queue, 30)
            await asyncio.sleep(1.5)
            before = {h.id: len([e async for e in h.fetch_history_events()]) for h in handles[:5]}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = server.start("127.0.0.1", port, db)
        client = await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        for h in handles[:5]:  # histories survived: every event recorded before the kill is there
            events = [e async for e in client.get_workflow_handle(h.id).fetch_history_events()]
            assert len(events) >= before[h.id] and events[0].HasField("workflow_execution_started_event_attributes")
        async with build_worker(client, queue):
            snaps = await asyncio.wait_for(asyncio.gather(*[finish(client.get_workflow_handle(h.id)) for h in handles]), timeout=120)
            await assert_ledger_is_sum_of_fills(client, account, snaps)
            await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        server.stop(proc)
