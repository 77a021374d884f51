"""Helpers for drills: worker processes (the same entry point as the Docker image), a drill
account, many orders, and the ledger-equals-fills check."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from config.load import load_config
from domain.enums import OrderState
from domain.order import OrderReport
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    RISK_WORKFLOW,
    SIGNAL_ORDER_REPORT,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput, RiskView
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, with_fills
from tests.conftest import TASK_QUEUE
from tests.evidence import finished_or_why

WORKER_COMMAND = ["-m", "worker"]  # python -m worker: what the Dockerfile's CMD runs too


ROOT = Path(__file__).resolve().parents[1]
# Tasks held by a killed worker come back after their workflow task timeout (10 s by default);
# a shorter one keeps the drill short without changing what it proves.
DRILL_TASK_TIMEOUT = timedelta(seconds=2)


def free_port() -> int:
    """A free port whose +1000 is free too: a dev server started on it puts its UI there (two
    suites at once once collided on a UI port)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 1000 < 65536 and _bindable(port + 1000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def worker_process(address: str, queue: str, **extra_env: str) -> subprocess.Popen:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "RIG_TASK_QUEUE": queue, "TEMPORAL_NAMESPACE": "default"} | extra_env
    return subprocess.Popen([sys.executable, *WORKER_COMMAND], cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def wait_polling(proc: subprocess.Popen) -> None:
    """Until the worker says it polls; from then on its output is drained (`output_of`)."""
    output = proc.stdout
    assert output is not None, "the worker's output is not piped (worker_process pipes it)"
    line = await asyncio.to_thread(output.readline)
    while "worker polling" not in line:
        assert proc.poll() is None, f"worker exited: {line}"
        line = await asyncio.to_thread(output.readline)
    _drain(proc)


# A pipe nobody reads fills at 64 KiB and the worker then blocks on its next log line: with the
# server down the SDK logs ~1 KB/s of retried polls, so a server-restart drill under load once
# froze its worker for good (every order's task scheduled, none started). So the worker's output
# is read all along, its last lines kept for the test.
_DRAINED: dict[int, tuple[threading.Thread, collections.deque[str]]] = {}


def _drain(proc: subprocess.Popen) -> None:
    lines: collections.deque[str] = collections.deque(maxlen=5_000)
    thread = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    thread.start()
    _DRAINED[proc.pid] = (thread, lines)


def output_of(proc: subprocess.Popen, timeout: float = 15.0) -> str:
    """What a worker printed after it started polling (waits for it to end)."""
    proc.wait(timeout)
    thread, lines = _DRAINED.pop(proc.pid)
    thread.join(timeout)
    return "".join(lines)


async def ended(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 15.0) -> int:
    """Send `sig` to a process still running and wait for its end in a thread: the session's
    event loop, and the worker on it, go on meanwhile."""
    if proc.poll() is None:
        proc.send_signal(sig)
    return await asyncio.to_thread(proc.wait, timeout)


async def start_account(client: Client, account: str, queue: str, **fills: float) -> None:
    config = with_fills(load_config(), 1, **fills)
    await client.start_workflow(
        RISK_WORKFLOW,
        RiskInput(account=account, config=config, seed=4, start_exchange_time="11:00", synthetic=True),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(queue),
        task_timeout=DRILL_TASK_TIMEOUT,
    )


async def submit_many(client: Client, account: str, queue: str, n: int, first: int = 0) -> list:
    raws = [
        intent(account, f"k{i:03d}", symbol=("AAPL", "MSFT", "XOM", "KO")[i % 4], quantity=100, limit_price=None, order_type="MARKET")
        for i in range(first, first + n)
    ]
    return await asyncio.gather(
        *[client.start_workflow(ORDER_WORKFLOW, r, id=r["intent_id"], task_queue=queue, task_timeout=DRILL_TASK_TIMEOUT) for r in raws]
    )


async def nudge_account(client: Client, account: str) -> None:
    """Give the account a workflow task that changes nothing (a report about no order it knows):
    a frozen worker's open poll takes it, so a fault lands on a task in flight."""
    report = OrderReport(intent_id=f"{account}-nobody", state=OrderState.WORKING, quantity=1, filled_quantity=0)
    await client.get_workflow_handle(risk_workflow_id(account)).signal(SIGNAL_ORDER_REPORT, report)


async def assert_ledger_is_sum_of_fills(client: Client, account: str, snaps: list[OrderSnapshot]) -> None:
    assert all(s.state.is_terminal for s in snaps), [s.state for s in snaps if not s.state.is_terminal]
    fill_ids = [f.fill_id for s in snaps for f in s.fills]
    assert len(fill_ids) == len(set(fill_ids)), "a fill was applied twice"
    expected: dict[str, int] = {}
    for s in snaps:
        for f in s.fills:
            expected[f.symbol] = expected.get(f.symbol, 0) + f.signed_quantity
    handle = client.get_workflow_handle(risk_workflow_id(account))
    for _ in range(200):  # the account applies the last fills from its venue step, a moment after the orders close
        view = await handle.query(QUERY_STATE, result_type=RiskView)
        held = {p.symbol: p.quantity for p in view.positions if p.quantity}
        if held == {k: v for k, v in expected.items() if v} and all(o.synthetic for o in view.open_orders):
            break
        await asyncio.sleep(0.05)
    assert held == {k: v for k, v in expected.items() if v}
    assert all(o.synthetic for o in view.open_orders), [o.intent_id for o in view.open_orders]


async def finish_on_a_fresh_worker(client: Client, address: str, queue: str, account: str, handles: list) -> None:
    """A new worker process takes over: every order must end terminal, the ledger = Σ fills."""
    worker = worker_process(address, queue)
    try:
        await wait_polling(worker)
        snaps = await finished_or_why(client, handles, finish, 150, risk_workflow_id(account))
        await assert_ledger_is_sum_of_fills(client, account, snaps)
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        await ended(worker, signal.SIGTERM)


def rig(address: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """The project CLI (`python -m cli`, as `.venv/bin/rig`) against `address`, on the session's task queue."""
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default", "RIG_TASK_QUEUE": TASK_QUEUE}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, env=environ, timeout=timeout)


async def arig(address: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(rig, address, *args, timeout=timeout)
