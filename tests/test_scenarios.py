import time

import pytest

from activities.scenarios import scenario_names
from scenarios.spec import ScenarioReport
from tests.conftest import TASK_QUEUE
from workflows.contract import SCENARIO_WORKFLOW


@pytest.mark.parametrize("name", scenario_names())
async def test_shipped_scenario_passes(client, worker, name):
    started = time.monotonic()
    report = await client.execute_workflow(
        SCENARIO_WORKFLOW, name, id=f"scenario-{name}-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport
    )
    print(f"\n{name}: {time.monotonic() - started:.1f}s wall", *report.modes, *report.intents[:6], *report.orders[:6], sep="\n  ")
    assert report.passed, report.failures
