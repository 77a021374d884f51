"""The policy decision table (DESIGN.md §3), held as data: first matching row wins.

"Reaches" means ≥. Strictness NORMAL < THROTTLE_NEW_ORDERS < SOFT_DERISK < HARD_DERISK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel

from domain.enums import Bucket, DecisionReason, Regime, RiskMode
from domain.exposure import Exposure
from domain.rules import RiskRules


class DecisionInput(BaseModel):
    regime: Regime
    gross_exposure_pct: float
    potential_exposure_pct: float
    lt_current_pct: float
    lt_potential_pct: float
    mm_current_pct: float
    mm_potential_pct: float
    minutes_to_close: float


class Decision(BaseModel):
    mode: RiskMode
    reason: DecisionReason
    sentence: str
    row: int
    inputs: DecisionInput
    tolerance_pct: float


class Condition(str, Enum):
    GROSS_REACHES_HARD_CAP = "gross ≥ hard cap"
    CLOSE_AND_GROSS_OVER_TOLERANCE = "regime CLOSE and gross > tolerance"
    DERISK_AND_GROSS_REACHES_TOLERANCE = "allow_derisk and gross ≥ tolerance"
    DERISK_AND_BUCKET_OVER_MAX = "allow_derisk and a bucket's current > max"
    POTENTIAL_OVER_LIMIT = (
        "potential ≥ hard cap, or potential > tolerance, or gross > tolerance without de-risk, "
        "or a bucket's potential > max"
    )
    ALWAYS = "otherwise"


@dataclass(frozen=True)
class PolicyRow:
    number: int
    condition: Condition
    mode: RiskMode
    reason: DecisionReason


POLICY_TABLE: tuple[PolicyRow, ...] = (
    PolicyRow(1, Condition.GROSS_REACHES_HARD_CAP, RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
    PolicyRow(2, Condition.CLOSE_AND_GROSS_OVER_TOLERANCE, RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
    PolicyRow(3, Condition.DERISK_AND_GROSS_REACHES_TOLERANCE, RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
    PolicyRow(4, Condition.DERISK_AND_BUCKET_OVER_MAX, RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
    PolicyRow(5, Condition.POTENTIAL_OVER_LIMIT, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
    PolicyRow(6, Condition.ALWAYS, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
)


# Percentages come from float sums (44 × $100 × 8800 shares…); compare with a tiny tolerance so
# "exactly 115%" reaches 115 whatever the rounding of its parts.
EPS = 1e-9


def reaches(value: float, threshold: float) -> bool:
    return value >= threshold - EPS


def over(value: float, threshold: float) -> bool:
    return value > threshold + EPS


@dataclass(frozen=True)
class _Facts:
    d: DecisionInput
    hard_cap: float
    tolerance: float
    allow_derisk: bool
    lt_max: float
    mm_max: float


def _bucket_current_over(f: _Facts) -> bool:
    return over(f.d.lt_current_pct, f.lt_max) or over(f.d.mm_current_pct, f.mm_max)


def _potential_over(f: _Facts) -> bool:
    return (
        reaches(f.d.potential_exposure_pct, f.hard_cap)
        or over(f.d.potential_exposure_pct, f.tolerance)
        or (not f.allow_derisk and over(f.d.gross_exposure_pct, f.tolerance))
        or over(f.d.lt_potential_pct, f.lt_max)
        or over(f.d.mm_potential_pct, f.mm_max)
    )


CONDITIONS: dict[Condition, Callable[[_Facts], bool]] = {
    Condition.GROSS_REACHES_HARD_CAP: lambda f: reaches(f.d.gross_exposure_pct, f.hard_cap),
    Condition.CLOSE_AND_GROSS_OVER_TOLERANCE: lambda f: f.d.regime is Regime.CLOSE and over(f.d.gross_exposure_pct, f.tolerance),
    Condition.DERISK_AND_GROSS_REACHES_TOLERANCE: lambda f: f.allow_derisk and reaches(f.d.gross_exposure_pct, f.tolerance),
    Condition.DERISK_AND_BUCKET_OVER_MAX: lambda f: f.allow_derisk and _bucket_current_over(f),
    Condition.POTENTIAL_OVER_LIMIT: _potential_over,
    Condition.ALWAYS: lambda f: True,
}


def decide(inputs: DecisionInput, rules: RiskRules) -> Decision:
    regime_rule = rules.regime_rule(inputs.regime)
    facts = _Facts(
        d=inputs,
        hard_cap=rules.hard_cap_pct,
        tolerance=regime_rule.gross_tolerance_pct,
        allow_derisk=regime_rule.allow_derisk,
        lt_max=rules.buckets[Bucket.LT].max_pct,
        mm_max=rules.buckets[Bucket.MM_PURE].max_pct,
    )
    row = next(r for r in POLICY_TABLE if CONDITIONS[r.condition](facts))
    sentence = (
        f"{row.mode.value} ({row.reason.value}, row {row.number}: {row.condition.value}): "
        f"{inputs.regime.value} regime, {inputs.minutes_to_close:.0f} min to close; "
        f"gross {inputs.gross_exposure_pct:.2f}% vs tolerance {facts.tolerance:g}% and hard cap {facts.hard_cap:g}%; "
        f"potential {inputs.potential_exposure_pct:.2f}%; "
        f"LT {inputs.lt_current_pct:.2f}%/{inputs.lt_potential_pct:.2f}% (max {facts.lt_max:g}%), "
        f"MM_PURE {inputs.mm_current_pct:.2f}%/{inputs.mm_potential_pct:.2f}% (max {facts.mm_max:g}%)"
    )
    return Decision(mode=row.mode, reason=row.reason, sentence=sentence, row=row.number, inputs=inputs, tolerance_pct=facts.tolerance)


def decision_input(exposure: Exposure, regime: Regime, minutes_to_close: float) -> DecisionInput:
    lt, mm = exposure.buckets[Bucket.LT], exposure.buckets[Bucket.MM_PURE]
    return DecisionInput(
        regime=regime,
        gross_exposure_pct=exposure.gross_exposure_pct,
        potential_exposure_pct=exposure.potential_exposure_pct,
        lt_current_pct=lt.current_pct,
        lt_potential_pct=lt.potential_pct,
        mm_current_pct=mm.current_pct,
        mm_potential_pct=mm.potential_pct,
        minutes_to_close=minutes_to_close,
    )
