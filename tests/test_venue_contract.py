"""One contract suite, every venue: the rig's simulated venue and the IBKR gateway (over a fake
TWS on a real socket: testkit/ibkr/tws.py) answer the same scripts the same way, and neither breaks the
seam's rules (testkit/contract.py)."""

from __future__ import annotations

import pytest

from testkit.contract import (
    STANDARD_SCRIPTS,
    Submit,
    check_script,
    contract_violations,
    run_venue_commands,
)
from testkit.ibkr.replay import IbkrFakeHarness
from testkit.sim_venue import SimVenueHarness

SCRIPTS = sorted(STANDARD_SCRIPTS)


def quantities(commands) -> dict[str, int]:
    return {c.intent_id: c.quantity for c in commands if isinstance(c, Submit)}


@pytest.mark.parametrize("script", SCRIPTS)
async def test_every_venue_keeps_the_contract(script, tmp_path):
    commands, expected = STANDARD_SCRIPTS[script]
    outcomes = {}
    sim = SimVenueHarness()
    async with IbkrFakeHarness(tmp_path) as ibkr:
        for harness in (sim, ibkr):
            run = await run_venue_commands(harness, commands)
            assert contract_violations(run, quantities(commands)) == [], harness.name
            assert check_script(run, expected) == [], harness.name
            outcomes[harness.name] = run
    assert set(outcomes) == {"sim", "ibkr-fake"}
