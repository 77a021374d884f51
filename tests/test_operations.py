"""Running it like production: scaled workers, clean shutdown, Prometheus metrics — against a
real dev server. (docker-compose.yml and the Dockerfile are checked in tests/test_compose.py.)"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from temporalio.client import Client

from domain.enums import OrderState
from protocol.contract import ORDER_WORKFLOW, SCENARIO_WORKFLOW, risk_workflow_id
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from protocol.order_record import OrderSnapshot
from scenarios.spec import ScenarioReport
from tests.accounts import finish, intent, wait_state
from tests.drills import (
    assert_ledger_is_sum_of_fills,
    ended,
    free_port,
    output_of,
    start_account,
    submit_many,
    wait_polling,
    worker_process,
)
from tests.evidence import activity_in_flight, completed_activity, hold_work, identities_that_completed, identity_of, interrupted
from tests.faults import until_view

ROOT = Path(__file__).resolve().parents[1]


async def _client(env) -> tuple[str, Client]:
    address = env.client.service_client.config.target_host
    return address, await Client.connect(address, data_converter=pydantic_data_converter)


async def test_two_workers_share_the_queue_and_survive_one_sigkill(env, account):
    """One of two workers is killed while it provably holds work (the server handed it a task it
    never finished); that work times out or is retried on the other; both completed tasks."""
    address, client = await _client(env)
    queue = f"two-{account}"
    workers = [worker_process(address, queue), worker_process(address, queue)]
    victim = workers[0]
    try:
        await asyncio.gather(*[wait_polling(w) for w in workers])
        await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
        handles = await submit_many(client, account, queue, 60)

        async def more_orders() -> None:  # new orders' first tasks reach the frozen worker's open polls
            handles.extend(await submit_many(client, account, queue, 5, first=len(handles)))

        def ids() -> list[str]:
            return [risk_workflow_id(account), *(h.id for h in handles)]

        # Both serve before the fault: on a busy machine one worker can win every poll for a while.
        for _ in range(100):
            if {identity_of(w) for w in workers} <= await identities_that_completed(client, ids()):
                break
            await more_orders()
            await asyncio.sleep(0.2)
        held = await hold_work(client, victim, lambda: [risk_workflow_id(account), *(h.id for h in handles[-20:])], more_orders)
        await ended(victim)
        snaps = await asyncio.wait_for(asyncio.gather(*[finish(h) for h in handles]), timeout=150)
        await assert_ledger_is_sum_of_fills(client, account, snaps)
        assert not await interrupted(client, held), held
        completed = await identities_that_completed(client, ids())
        assert {identity_of(w) for w in workers} <= completed, (sorted(completed), [identity_of(w) for w in workers])
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        for w in workers:
            await ended(w)


async def test_sigterm_drains_within_the_grace_period_and_exits_zero(env, account):
    """A rolling restart: a worker is sent SIGTERM while it runs an activity; it finishes that
    activity (recorded as completed by it, first attempt) and exits 0 within its grace period,
    while a second worker — started once the first is caught mid-activity — carries on."""
    address, client = await _client(env)
    queue = f"term-{account}"
    drained = worker_process(address, queue, RIG_SHUTDOWN_GRACE_SECONDS="5")
    other = None
    try:
        await wait_polling(drained)
        await start_account(client, account, queue, other=0.5, partial_fill_probability=0.2)
        handles = await submit_many(client, account, queue, 40)
        running = await activity_in_flight(client, drained, [risk_workflow_id(account)])  # frozen in the middle of it
        other = worker_process(address, queue)
        await wait_polling(other)
        stopped = time.monotonic()
        drained.send_signal(signal.SIGTERM)
        drained.send_signal(signal.SIGCONT)
        code = await asyncio.to_thread(drained.wait, 20)
        assert code == 0 and time.monotonic() - stopped < 5 + 5, code
        assert await completed_activity(client, running, identity_of(drained)), f"the drained worker did not finish {running}"
        snaps = await asyncio.wait_for(asyncio.gather(*[finish(h) for h in handles]), timeout=150)
        await assert_ledger_is_sum_of_fills(client, account, snaps)
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("drill over")
    finally:
        for w in (drained, other):
            if w is not None:
                await ended(w)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_endpoint_counts_the_rigs_work(env, account):
    address, client = await _client(env)
    port = free_port()
    queue = f"metrics-{port}"
    proc = worker_process(address, queue, RIG_METRICS_PORT=str(port), RIG_METRICS_BIND="127.0.0.1", RIG_LOG_FORMAT="json")
    try:
        await wait_polling(proc)
        before = await asyncio.to_thread(_scrape, port)
        # Started through the time-skipping client: the scenarios' minutes pass at once.
        for name in ("throttle_refuses_new_risk", "B"):  # a refusal; SOFT de-risk
            report = await env.client.execute_workflow(
                SCENARIO_WORKFLOW, name, id=f"metrics-{name}-{port}", task_queue=queue, result_type=ScenarioReport
            )
            assert report.passed, (name, report.failures)
        await lose_an_order(client, account, queue)
        after = await asyncio.to_thread(_scrape, port)
    finally:
        proc.terminate()
        output = await asyncio.to_thread(output_of, proc)
    assert _value(after, "rig_decisions") > _value(before, "rig_decisions")
    assert _value(after, "rig_order_rejections", reason="MODE_THROTTLE_NEW_ORDERS") >= 1
    assert _value(after, "rig_orders_terminal", state="FILLED") >= 1
    assert _value(after, "rig_fills") >= 1
    assert _value(after, "rig_derisk_intents", kind="SOFT_DERISK", mode="SOFT_DERISK") > _value(before, "rig_derisk_intents")
    assert _value(after, "rig_orders_lost", cause="terminated from outside") == 1
    assert _value(after, "rig_cycle_lag_count") > _value(before, "rig_cycle_lag_count")  # a histogram: one sample per cycle timer
    assert "temporal_workflow_completed" in after or "workflow_completed" in after  # the SDK's own
    json_lines = [line for line in output.splitlines() if line.startswith("{")]
    assert json_lines and all('"level"' in line for line in json_lines)


async def lose_an_order(client: Client, account: str, queue: str) -> None:
    """A resting order terminated from outside: its real-time account records it LOST."""
    await start_account(client, account, queue, other=0.0, cancel_cross_probability=0.0)
    raw = intent(account, "gone")  # no fills at all (other: 0): it rests
    order = await client.start_workflow(ORDER_WORKFLOW, raw, id=raw["intent_id"], task_queue=queue, result_type=OrderSnapshot)
    await wait_state(order, {OrderState.WORKING})
    await order.terminate("an operator clicked terminate in the UI")
    await until_view(client, account, lambda v: any(o.intent_id == order.id for o in v.lost), what="the terminated order recorded LOST")
    await client.get_workflow_handle(risk_workflow_id(account)).terminate("test over")


def _rig(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, env=os.environ | env, timeout=60)


def test_connection_problems_are_one_clear_line():
    port = free_port()  # nothing listens there
    for extra in ({}, {"TEMPORAL_TLS": "true"}):
        run = _rig("list", TEMPORAL_ADDRESS=f"127.0.0.1:{port}", **extra)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and f"cannot reach Temporal at 127.0.0.1:{port}" in lines[0] and "make server" in lines[0]
    run = _rig("list", TEMPORAL_TLS_CLIENT_CERT_PATH="/nonexistent/cert.pem", TEMPORAL_TLS_CLIENT_KEY_PATH="/nonexistent/key.pem")
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "bad Temporal client settings" in run.stderr and "/nonexistent/cert.pem" in run.stderr
