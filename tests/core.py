"""How the suite is split. The pure core, for a quick loop (`make test-core`, i.e. `pytest -m
core`): the modules whose tests need no Temporal server and run in seconds. tests/conftest.py uses this hook; a test in one
of these modules that asks for the dev server (the session's `env` fixture, directly or through
`client`/`worker`) stops the run at collection instead of slowing the loop."""

from __future__ import annotations

import pytest

CORE_MODULES = frozenset(
    {
        "test_clock.py",
        "test_config.py",
        "test_controls.py",
        "test_costs.py",
        "test_costs_in_pnl.py",
        "test_firm_accounts.py",
        "test_decision_log.py",
        "test_digest_items.py",
        "test_exposure.py",
        "test_firm_allocation.py",
        "test_gates.py",
        "test_lifecycle_table.py",
        "test_liquidity.py",
        "test_marketdata.py",
        "test_marketdata_exchange.py",
        "test_marketdata_marks.py",
        "test_marketdata_matching.py",
        "test_marketdata_reprice.py",
        "test_message_controls.py",
        "test_order_controls.py",
        "test_order_semantics.py",
        "test_planner.py",
        "test_pnl.py",
        "test_policy.py",
        "test_pretrade.py",
        "test_production_profile.py",
        "test_scenario_expectations.py",
        "test_result_bounds.py",
        "test_sessions.py",
        "test_typed_seams.py",
    }
)
SERVER_FIXTURE = "env"


# Tests that read the session's scenario runs (conftest's `scenario_runs`) share one process
# under pytest-xdist (`--dist loadgroup`): each process would otherwise run every scenario again.
SHARED_RUNS_FIXTURE, SHARED_RUNS_GROUP = "scenario_runs", "scenario-runs"


@pytest.hookimpl(tryfirst=True)  # before `-m core` selects by the marker this adds
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SHARED_RUNS_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(SHARED_RUNS_GROUP))
        if item.path.name not in CORE_MODULES:
            continue
        if SERVER_FIXTURE in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} needs the Temporal dev server: move it out of the core modules (tests/core.py)")
        item.add_marker(pytest.mark.core)
