import math
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.enums import SESSION_REGIMES, DecisionReason, Regime, RiskMode
from domain.policy import POLICY_TABLE, DecisionInput, decide, decision_input
from domain.rules import LossLimitRule
from tests.builders import CONFIG, exposure_of, lt_mm_positions

RULES = CONFIG.rules  # risk_rules.yaml: loss limits throttle 1%, hard 2%, no soft
RULES_SOFT = RULES.model_copy(update={"loss_limits": LossLimitRule(throttle_pct=1.0, soft_pct=1.5, hard_pct=2.0)})
RULES_NO_LOSS = RULES.model_copy(update={"loss_limits": None})
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
    # DESIGN.md's rows keep their numbers 1-6; the loss rows are L1-L3, in first-match order.
    assert [(r.label, r.mode, r.reason) for r in POLICY_TABLE] == [
        ("1", RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        ("2", RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
        ("L1", RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),
        ("3", RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
        ("4", RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
        ("L2", RiskMode.SOFT_DERISK, DecisionReason.DAILY_LOSS_SOFT),
        ("5", RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
        ("L3", RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        ("6", RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
    ]


def test_rows_are_ordered_by_strictness():
    # First match wins: a stricter row after a looser one would make the table non-monotone.
    strictness = [row.mode.strictness for row in POLICY_TABLE]
    assert strictness == sorted(strictness, reverse=True)


@pytest.mark.parametrize(
    ("name", "decision_input", "mode", "reason"),
    [
        ("A", inputs(Regime.OPEN_EARLY, 120, lt=90, mm=30), RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        ("B", inputs(Regime.LATE, 115, lt=85, mm=30), RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
        ("C", inputs(Regime.CLOSE, 110, lt=80, mm=30), RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
        ("D-open", inputs(Regime.OPEN_EARLY, 131, lt=90, mm=41), RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        ("D-mid", inputs(Regime.MID, 131, lt=90, mm=41), RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
        (
            "E",
            inputs(Regime.MID, 85, potential=135, lt=65, mm=20, lt_pot=85, mm_pot=30),
            RiskMode.THROTTLE_NEW_ORDERS,
            DecisionReason.POTENTIAL_OVER_LIMIT,
        ),
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


# ----- daily loss rows -----


def with_loss(regime, loss, gross=50.0, **kw):
    return inputs(regime, gross, lt=kw.pop("lt", gross - 10.0), mm=kw.pop("mm", 10.0), **kw).model_copy(update={"daily_loss_pct": loss})


@pytest.mark.parametrize(
    ("rules", "regime", "loss", "mode", "reason"),
    [
        (RULES, Regime.MID, 0.0, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        (RULES, Regime.MID, 0.99, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
        (RULES, Regime.MID, 1.0, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        (RULES, Regime.MID, 1.99, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        (RULES, Regime.MID, 2.0, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),
        (RULES, Regime.OPEN_EARLY, 2.0, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),  # HARD in any regime
        (RULES, Regime.OUTSIDE_SESSION, 2.0, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),
        (RULES_SOFT, Regime.MID, 1.49, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        (RULES_SOFT, Regime.MID, 1.5, RiskMode.SOFT_DERISK, DecisionReason.DAILY_LOSS_SOFT),
        (RULES_SOFT, Regime.CLOSE, 1.5, RiskMode.SOFT_DERISK, DecisionReason.DAILY_LOSS_SOFT),
        # Where de-risk is not allowed a SOFT loss throttles, like gross over tolerance does.
        (RULES_SOFT, Regime.OPEN_EARLY, 1.5, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        (RULES_SOFT, Regime.OUTSIDE_SESSION, 1.5, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
        (RULES_SOFT, Regime.MID, 2.0, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),
        (RULES_NO_LOSS, Regime.MID, 50.0, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),  # disabled when absent
        (RULES, Regime.MID, -5.0, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),  # a gain is no loss
        (RULES, Regime.MID, math.nan, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),  # unmeasurable: fails closed
    ],
)
def test_loss_rows(rules, regime, loss, mode, reason):
    decision = decide(with_loss(regime, loss), rules)
    assert (decision.mode, decision.reason) == (mode, reason), decision.sentence


@pytest.mark.parametrize(
    ("decision_input", "rules", "reason"),
    [
        # An exposure row of the same mode keeps its reason: the planner sizes de-risk by it.
        (with_loss(Regime.MID, 3.0, gross=131, lt=90, mm=41), RULES, DecisionReason.HARD_CAP_BREACH),
        (with_loss(Regime.LATE, 1.6, gross=115, lt=85, mm=30), RULES_SOFT, DecisionReason.OVER_REGIME_TOLERANCE),
        (with_loss(Regime.MID, 1.0, gross=85, potential=135, lt=65, mm=20, lt_pot=85, mm_pot=30), RULES, DecisionReason.POTENTIAL_OVER_LIMIT),
        # A stricter loss row beats a looser exposure row.
        (with_loss(Regime.LATE, 2.0, gross=115, lt=85, mm=30), RULES, DecisionReason.DAILY_LOSS_HARD),
        (with_loss(Regime.MID, 1.5, gross=85, potential=135, lt=65, mm=20, lt_pot=85, mm_pot=30), RULES_SOFT, DecisionReason.DAILY_LOSS_SOFT),
    ],
)
def test_loss_and_exposure_rows_together(decision_input, rules, reason):
    assert decide(decision_input, rules).reason is reason


def test_sentence_names_the_loss_and_its_limits():
    sentence = decide(with_loss(Regime.MID, 1.234), RULES_SOFT).sentence
    assert "row L3" in sentence and "daily loss 1.23% of equity (throttle 1%, soft 1.5%, hard 2%)" in sentence
    assert "daily loss" not in decide(with_loss(Regime.MID, 1.234), RULES_NO_LOSS).sentence


def test_decision_input_carries_the_loss():
    exposure = exposure_of(lt_mm_positions(50, 10))
    assert decision_input(exposure, Regime.MID, 200.0).daily_loss_pct == 0.0
    assert decide(decision_input(exposure, Regime.MID, 200.0, daily_loss_pct=2.5), RULES).reason is DecisionReason.DAILY_LOSS_HARD


# ----- monotonicity (Hypothesis) -----

# Points on and around every threshold (tolerances, bucket maxima, loss limits), mixed into the
# strategies so that rare row combinations come up in every run.
LT_GRID = (0.0, 45.0, 85.0, 90.0, 90.5, 95.0, 125.0)
MM_GRID = (0.0, 10.0, 30.0, 30.5, 45.0)
EXTRA_GRID = (0.0, 5.0, 40.0)
LOSS_GRID = (0.0, 0.5, 0.99, 1.0, 1.25, 1.5, 1.75, 1.99, 2.0, 3.0)
ALL_RULES = (RULES, RULES_SOFT, RULES_NO_LOSS)
ALL_REGIMES = (*SESSION_REGIMES, Regime.OUTSIDE_SESSION)

pct = st.one_of(st.sampled_from(LT_GRID + MM_GRID), st.floats(min_value=0, max_value=200, allow_nan=False))
bump = st.one_of(st.sampled_from(EXTRA_GRID), st.floats(min_value=0, max_value=50, allow_nan=False))
loss_pct = st.one_of(st.sampled_from(LOSS_GRID), st.floats(min_value=0, max_value=4, allow_nan=False))
any_rules = st.sampled_from(ALL_RULES)


@st.composite
def exposures(draw):
    lt, mm = draw(pct), draw(pct)
    return dict(lt=lt, mm=mm, lt_extra=draw(bump), mm_extra=draw(bump), loss=draw(loss_pct))


def build(regime, e):
    gross = e["lt"] + e["mm"]
    lt_pot, mm_pot = e["lt"] + e["lt_extra"], e["mm"] + e["mm_extra"]
    return DecisionInput(
        regime=regime,
        gross_exposure_pct=gross,
        potential_exposure_pct=lt_pot + mm_pot,
        lt_current_pct=e["lt"],
        lt_potential_pct=lt_pot,
        mm_current_pct=e["mm"],
        mm_potential_pct=mm_pot,
        minutes_to_close=MINUTES.get(regime, 0.0),
        daily_loss_pct=e["loss"],
    )


@given(e=exposures(), more=exposures(), regime=st.sampled_from(SESSION_REGIMES), rules=any_rules)
def test_monotone_in_exposure_and_loss(e, more, regime, rules):
    bigger = {k: e[k] + more[k] for k in e}  # every current and potential figure and the loss grow (or stay)
    low = decide(build(regime, e), rules).mode
    high = decide(build(regime, bigger), rules).mode
    assert high.strictness >= low.strictness


@given(e=exposures(), more_loss=loss_pct, regime=st.sampled_from(ALL_REGIMES), rules=any_rules)
def test_more_loss_never_gives_a_looser_mode(e, more_loss, regime, rules):
    low = decide(build(regime, e), rules).mode
    high = decide(build(regime, e | {"loss": e["loss"] + more_loss}), rules).mode
    assert high.strictness >= low.strictness


def test_more_loss_never_gives_a_looser_mode_on_the_grid():
    # Every regime and rules variant, every exposure around its thresholds, losses in order.
    for rules, regime, lt, mm, lt_extra, mm_extra in product(ALL_RULES, ALL_REGIMES, LT_GRID, MM_GRID, EXTRA_GRID, EXTRA_GRID):
        e = dict(lt=lt, mm=mm, lt_extra=lt_extra, mm_extra=mm_extra)
        strictness = [decide(build(regime, e | {"loss": loss}), rules).mode.strictness for loss in LOSS_GRID]
        assert strictness == sorted(strictness), (rules.loss_limits, regime, e, strictness)


@given(e=exposures(), i=st.integers(0, 3), j=st.integers(0, 3), rules=any_rules)
def test_monotone_in_regime_order(e, i, j, rules):
    early, late = sorted((i, j))
    mode_early = decide(build(SESSION_REGIMES[early], e), rules).mode
    mode_late = decide(build(SESSION_REGIMES[late], e), rules).mode
    assert mode_late.strictness >= mode_early.strictness
