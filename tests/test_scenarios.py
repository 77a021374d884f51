"""Every shipped scenario through the ScenarioWorkflow (time-skipped), started together by the
`scenario_runs` session fixture (conftest): the suite waits for the longest, not the sum."""


import pytest

from activities.scenarios import scenario_names


@pytest.mark.parametrize("name", scenario_names())
async def test_shipped_scenario_passes(scenario_runs, name):
    report, wall = await scenario_runs[name]
    print(f"\n{name}: {wall:.1f}s wall", *report.modes, *report.intents[:6], *report.orders[:6], sep="\n  ")
    assert report.passed, report.failures
    assert report.checks >= 1
