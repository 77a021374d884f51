"""Durability drills: a worker SIGKILLed mid-flight, and the dev server stopped and restarted on
the same SQLite file. Orders must all end terminal with the ledger equal to the sum of fills."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config.load import load_config
from tests.accounts import finish, intent, with_fills
from worker import server
from worker.main import build_worker
from workflows.contract import ORDER_WORKFLOW, QUERY_STATE, RISK_WORKFLOW, risk_workflow_id
from workflows.messages import OrderSnapshot, RiskInput, RiskView

ROOT = Path(__file__).resolve().parents[1]
# Tasks held by a killed worker come back after their workflow task timeout (10 s by default);
# a shorter one keeps the drill short without changing what it proves.
DRILL_TASK_TIMEOUT = timedelta(seconds=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_process(address: str, queue: str) -> subprocess.Popen:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "RIG_TASK_QUEUE": queue, "TEMPORAL_NAMESPACE": "default"}
    return subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def wait_polling(proc: subprocess.Popen) -> None:
    line = await asyncio.to_thread(proc.stdout.readline)
    while "worker polling" not in line:
        assert proc.poll() is None, f"worker exited: {line}"
        line = await asyncio.to_thread(proc.stdout.readline)


async def start_account(client: Client, account: str, queue: str, **fills: float) -> None:
    config = with_fills(load_config(), 1, **fills)
    await client.start_workflow(RISK_WORKFLOW, RiskInput(account=account, config=config, seed=4, start_exchange_time="11:00"),
                                id=risk_workflow_id(account), task_queue=queue, task_timeout=DRILL_TASK_TIMEOUT)


async def submit_many(client: Client, account: str, queue: str, n: int) -> list:
    raws = [intent(account, f"k{i:03d}", symbol=("AAPL", "MSFT", "XOM", "KO")[i % 4], quantity=100, limit_price=None, order_type="MARKET") for i in range(n)]
    return await asyncio.gather(*[
        client.start_workflow(ORDER_WORKFLOW, r, id=r["intent_id"], task_queue=queue, task_timeout=DRILL_TASK_TIMEOUT) for r in raws
    ])


async def assert_ledger_is_sum_of_fills(client: Client, account: str, snaps: list[OrderSnapshot]) -> None:
    assert all(s.state.is_terminal for s in snaps), [s.state for s in snaps if not s.state.is_terminal]
    fill_ids = [f.fill_id for s in snaps for f in s.fills]
    assert len(fill_ids) == len(set(fill_ids)), "a fill was applied twice"
    expected: dict[str, int] = {}
    for s in snaps:
        for f in s.fills:
            expected[f.symbol] = expected.get(f.symbol, 0) + f.signed_quantity
    view = await client.get_workflow_handle(risk_workflow_id(account)).query(QUERY_STATE, result_type=RiskView)
    held = {p.symbol: p.quantity for p in view.positions if p.quantity}
    assert held == {k: v for k, v in expected.items() if v}
    assert all(o.synthetic for o in view.open_orders)


async def test_worker_sigkill_with_orders_in_flight(env, account):
    address = env.client.service_client.config.target_host
    queue = f"kill-{account}"
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    first = worker_process(address, queue)
    try:
        await wait_polling(first)
        await start_account(client, account, queue, other=0.3, partial_fill_probability=0.5)
        handles = await submit_many(client, account, queue, 60)
        await asyncio.sleep(1.5)  # orders are mid-flight: some working, some partially filled
        states = [(await h.query(QUERY_STATE, result_type=OrderSnapshot)).state for h in handles[:20]]
        assert any(s.is_open for s in states), "the drill needs orders still in flight"
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    second = worker_process(address, queue)
    try:
        await wait_polling(second)
        snaps = await asyncio.wait_for(asyncio.gather(*[finish(h) for h in handles]), timeout=120)
        await assert_ledger_is_sum_of_fills(client, account, snaps)
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        second.terminate()
        second.wait(15)


async def test_server_restart_on_the_same_sqlite_file(tmp_path):
    port = free_port()
    db = tmp_path / "temporal.sqlite"
    queue, account = "restart-drill", "restart"
    proc = server.start("127.0.0.1", port, db)
    try:
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
        async with build_worker(client, queue, load_config()):
            await start_account(client, account, queue, other=0.3, partial_fill_probability=0.5)
            handles = await submit_many(client, account, queue, 30)
            await asyncio.sleep(1.5)
            before = {h.id: len([e async for e in h.fetch_history_events()]) for h in handles[:5]}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = server.start("127.0.0.1", port, db)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
        for h in handles[:5]:  # histories survived: every event recorded before the kill is there
            events = [e async for e in client.get_workflow_handle(h.id).fetch_history_events()]
            assert len(events) >= before[h.id] and events[0].HasField("workflow_execution_started_event_attributes")
        async with build_worker(client, queue, load_config()):
            snaps = await asyncio.wait_for(asyncio.gather(*[finish(client.get_workflow_handle(h.id)) for h in handles]), timeout=120)
            await assert_ledger_is_sum_of_fills(client, account, snaps)
            await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        server.stop(proc)
