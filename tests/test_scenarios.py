"""Every shipped scenario through the ScenarioWorkflow (time-skipped), started together by the
`scenario_runs` session fixture (conftest): the suite waits for the longest, not the sum. Each run
must pass its expectations and give its golden digest (scenarios/digests/, scenarios/golden.py)."""

import pytest

from activities.scenarios import scenario_names
from domain.digest import digest_of
from scenarios import golden


@pytest.mark.parametrize("name", scenario_names())
async def test_shipped_scenario_passes(scenario_runs, name):
    report, wall = await scenario_runs[name]
    print(f"\n{name}: {wall:.1f}s wall", *report.modes, *report.intents[:6], *report.orders[:6], sep="\n  ")
    assert report.passed, report.failures
    assert report.checks >= 1


@pytest.mark.parametrize("name", scenario_names())
async def test_shipped_scenario_gives_its_golden_digest(client, scenario_runs, name):
    report, _ = await scenario_runs[name]
    items = await golden.observed_items(client, report.account)  # the report has the digest, the account the items
    if digest_of(items) != report.digest:
        pytest.fail(f"{name}: the account's items rebuild to {digest_of(items)}, the report says {report.digest} (domain/digest.py)", pytrace=False)
    problem = golden.problem(name, report.digest, items)
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # the message says it all: no traceback


def test_golden_digests_are_of_shipped_scenarios():
    shipped = set(scenario_names())
    files = {p.stem for p in golden.DIGESTS_DIR.glob("*.json")} - {golden.INDEX.removesuffix(".json")}
    stale = (set(golden.load_index()) | files) - shipped
    assert not stale, f"golden digests of scenarios that no longer exist: {sorted(stale)}; delete them from {golden.DIGESTS_DIR}"
