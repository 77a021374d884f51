import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.enums import SESSION_REGIMES, DecisionReason, Regime, RiskMode
from domain.policy import POLICY_TABLE, DecisionInput, decide
from tests.builders import CONFIG

RULES = CONFIG.rules
MINUTES = {Regime.OPEN_EARLY: 410.0, Regime.MID: 200.0, Regime.LATE: 14.0, Regime.CLOSE: 2.0}


def inputs(regime, gross, potential=None, lt=None, mm=0.0, lt_pot=None, mm_pot=None):
    lt = gross - mm if lt is None else lt
    return DecisionInput(
        regime=regime,
        gross_exposure_pct=gross,
        potential_exposure_pct=gross if potential is None else potential,
        lt_current_pct=lt,
        lt_potential_pct=lt if lt_pot is None else lt_pot,
        mm_current_pct=mm,
        mm_potential_pct=mm if mm_pot is None else mm_pot,
        minutes_to_close=MINUTES.get(regime, 0.0),
    )


def test_policy_table_is_the_design_table():
    assert [(r.number, r.mode, r.reason) for r in POLICY_TABLE] == [
        (1, RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        (2, RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
        (3, RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
        (4, RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
        (5, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
        (6, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
    ]


@pytest.mark.parametrize(
    ("name", "decision_input", "mode", "reason"),
    [
        ("A", inputs(Regime.OPEN_EARLY, 120, lt=90, mm=30), RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        ("B", inputs(Regime.LATE, 115, lt=85, mm=30), RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
        ("C", inputs(Regime.CLOSE, 110, lt=80, mm=30), RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
        ("D-open", inputs(Regime.OPEN_EARLY, 131, lt=90, mm=41), RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        ("D-mid", inputs(Regime.MID, 131, lt=90, mm=41), RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        ("E", inputs(Regime.MID, 85, potential=135, lt=65, mm=20, lt_pot=85, mm_pot=30), RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
    ],
)
def test_seed_scenarios(name, decision_input, mode, reason):
    decision = decide(decision_input, RULES)
    assert (decision.mode, decision.reason) == (mode, reason), decision.sentence
    assert f"{decision_input.gross_exposure_pct:.2f}%" in decision.sentence


# Gross boundaries: exactly at each threshold and ±0.01. Bucket figures are held at 50/10 so the
# row under test is the gross one (with LT max 90 + MM max 30, a real account over 120% gross
# always has a bucket over its max too).
@pytest.mark.parametrize(
    ("regime", "gross", "mode"),
    [
        (Regime.MID, 129.99, RiskMode.SOFT_DERISK),
        (Regime.MID, 130.0, RiskMode.HARD_DERISK),
        (Regime.OPEN_EARLY, 130.0, RiskMode.HARD_DERISK),
        (Regime.OPEN_EARLY, 129.99, RiskMode.THROTTLE_NEW_ORDERS),  # gross > 125 where de-risk is off
        (Regime.OPEN_EARLY, 125.01, RiskMode.THROTTLE_NEW_ORDERS),
        (Regime.OPEN_EARLY, 125.0, RiskMode.NORMAL),
        (Regime.OPEN_EARLY, 124.99, RiskMode.NORMAL),
        (Regime.MID, 120.0, RiskMode.SOFT_DERISK),
        (Regime.MID, 119.99, RiskMode.NORMAL),
        (Regime.MID, 120.01, RiskMode.SOFT_DERISK),
        (Regime.LATE, 115.0, RiskMode.SOFT_DERISK),
        (Regime.LATE, 114.99, RiskMode.NORMAL),
        (Regime.LATE, 115.01, RiskMode.SOFT_DERISK),
        (Regime.CLOSE, 100.0, RiskMode.SOFT_DERISK),  # reaches tolerance: row 3; row 2 needs >
        (Regime.CLOSE, 100.01, RiskMode.HARD_DERISK),
        (Regime.CLOSE, 99.99, RiskMode.NORMAL),
    ],
)
def test_gross_boundaries(regime, gross, mode):
    decision = decide(inputs(regime, gross, lt=50.0, mm=10.0), RULES)
    assert decision.mode is mode, decision.sentence


@pytest.mark.parametrize(
    ("kwargs", "mode", "reason"),
    [
        (dict(gross=100, lt=90.0, mm=10), RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        (dict(gross=100, lt=90.01, mm=9.99), RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
        (dict(gross=60, lt=30, mm=30.01), RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
        (dict(gross=60, lt=30, mm=30, mm_pot=30.01, potential=60.01), RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
        (dict(gross=80, potential=120.0, lt=60, mm=20, lt_pot=80, mm_pot=20), RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        (dict(gross=80, potential=120.01, lt=60, mm=20, lt_pot=80, mm_pot=20), RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
    ],
)
def test_bucket_and_potential_boundaries_in_mid(kwargs, mode, reason):
    decision = decide(inputs(Regime.MID, **kwargs), RULES)
    assert (decision.mode, decision.reason) == (mode, reason), decision.sentence


def test_open_early_bucket_breach_only_throttles():
    decision = decide(inputs(Regime.OPEN_EARLY, 100, lt=95, mm=5), RULES)
    assert decision.mode is RiskMode.THROTTLE_NEW_ORDERS


def test_potential_reaching_hard_cap_throttles_even_in_open_early():
    decision = decide(inputs(Regime.OPEN_EARLY, 80, potential=130.0, lt=60, mm=20, lt_pot=80, mm_pot=20), RULES)
    assert (decision.mode, decision.reason) == (RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT)


pct = st.floats(min_value=0, max_value=200, allow_nan=False)
bump = st.floats(min_value=0, max_value=50, allow_nan=False)


@st.composite
def exposures(draw):
    lt, mm = draw(pct), draw(pct)
    return dict(lt=lt, mm=mm, lt_extra=draw(bump), mm_extra=draw(bump))


def build(regime, e):
    gross = e["lt"] + e["mm"]
    lt_pot, mm_pot = e["lt"] + e["lt_extra"], e["mm"] + e["mm_extra"]
    return DecisionInput(
        regime=regime, gross_exposure_pct=gross, potential_exposure_pct=lt_pot + mm_pot,
        lt_current_pct=e["lt"], lt_potential_pct=lt_pot, mm_current_pct=e["mm"], mm_potential_pct=mm_pot,
        minutes_to_close=MINUTES[regime],
    )


@given(e=exposures(), more=exposures(), regime=st.sampled_from(SESSION_REGIMES))
def test_monotone_in_exposure(e, more, regime):
    bigger = {k: e[k] + more[k] for k in e}  # every current and potential figure grows (or stays)
    low = decide(build(regime, e), RULES).mode
    high = decide(build(regime, bigger), RULES).mode
    assert high.strictness >= low.strictness


@given(e=exposures(), i=st.integers(0, 3), j=st.integers(0, 3))
def test_monotone_in_regime_order(e, i, j):
    early, late = sorted((i, j))
    mode_early = decide(build(SESSION_REGIMES[early], e), RULES).mode
    mode_late = decide(build(SESSION_REGIMES[late], e), RULES).mode
    assert mode_late.strictness >= mode_early.strictness
