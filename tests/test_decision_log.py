"""The decision log a user reads: one row per cycle time, quiet stretches stored once."""

import pytest

from domain.enums import Regime, RiskMode
from domain.policy import DecisionInput
from protocol.decision_log import expand, row_count
from protocol.messages import DecisionRecord
from tests.builders import CONFIG

RULES = CONFIG.rules


def record(cycle: int, at: str, repeats: int, mode: RiskMode = RiskMode.NORMAL) -> DecisionRecord:
    inputs = DecisionInput(
        regime=Regime.MID,
        gross_exposure_pct=90.0,
        potential_exposure_pct=95.0,
        lt_current_pct=70.0,
        lt_potential_pct=75.0,
        mm_current_pct=20.0,
        mm_potential_pct=20.0,
        minutes_to_close=300.0,
    )
    return DecisionRecord(
        cycle=cycle,
        exchange_time=at,
        regime="MID",
        mode=mode,
        reason="WITHIN_LIMITS",
        sentence="…",
        gross_pct=90.0,
        potential_pct=95.0,
        tolerance_pct=120.0,
        gross_pct_after=90.0,
        inputs=inputs,
        repeats=repeats,
    )


RECORDS = [record(1, "10:00:00", 3), record(5, "10:04:00", 0), record(6, "10:05:00", 300)]


def test_quiet_stretches_expand_to_one_row_per_cycle_time():
    rows = expand(RECORDS, RULES)
    assert len(rows) == row_count(RECORDS) == 1 + 3 + 1 + 1 + 300
    assert [r.cycle for r in rows] == list(range(1, 307))
    assert [r.exchange_time for r in rows[:6]] == ["10:00:00", "10:01:00", "10:02:00", "10:03:00", "10:04:00", "10:05:00"]
    assert rows[-1].exchange_time == "15:05:00" and all(r.repeats == 0 for r in rows)
    # A repeated row is the decision the skipped cycle would have made: only minutes-to-close moves.
    assert {(r.mode, r.reason, r.gross_pct, r.potential_pct) for r in rows} == {(RiskMode.NORMAL, "WITHIN_LIMITS", 90.0, 95.0)}
    assert rows[1].inputs.minutes_to_close == 389.0 and "389 min to close" in rows[1].sentence


@pytest.mark.parametrize("last", [1, 2, 3, 5, 6, 7, 301, 302, 306, 400])
def test_the_last_rows_alone_match_the_tail_of_the_full_log(last):
    full = expand(RECORDS, RULES)
    assert [r.cycle for r in expand(RECORDS, RULES, last=last)] == [r.cycle for r in full][-last:]
