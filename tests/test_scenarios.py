"""Every shipped scenario through the ScenarioWorkflow (time-skipped). They are started together
(one session fixture) and each test awaits its own report, so the suite waits for the longest
scenario, not the sum."""

import asyncio
import time

import pytest
import pytest_asyncio

from activities.scenarios import scenario_names
from scenarios.spec import ScenarioReport
from tests.conftest import TASK_QUEUE
from workflows.contract import SCENARIO_WORKFLOW


@pytest_asyncio.fixture(scope="session")
async def scenario_runs(client, worker) -> dict[str, asyncio.Task]:
    async def run(name: str) -> tuple[ScenarioReport, float]:
        started = time.monotonic()
        report = await client.execute_workflow(
            SCENARIO_WORKFLOW, name, id=f"scenario-{name}-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport
        )
        return report, time.monotonic() - started

    return {name: asyncio.create_task(run(name)) for name in scenario_names()}


@pytest.mark.parametrize("name", scenario_names())
async def test_shipped_scenario_passes(scenario_runs, name):
    report, wall = await scenario_runs[name]
    print(f"\n{name}: {wall:.1f}s wall", *report.modes, *report.intents[:6], *report.orders[:6], sep="\n  ")
    assert report.passed, report.failures
    assert report.checks >= 1
