"""The policy decision table (DESIGN.md §3), held as data: first matching row wins.

"Reaches" means ≥. Strictness NORMAL < THROTTLE_NEW_ORDERS < SOFT_DERISK < HARD_DERISK.

Daily loss limits (rules `loss_limits`, issue 16) are rows of the same table. Rows are ordered by
the strictness of their mode — every HARD row before every SOFT row before every THROTTLE row —
and each condition only turns on as exposure or loss grows, so more exposure or more loss never
gives a looser mode (a later regime neither: tolerances only tighten and de-risk, once allowed,
stays allowed; where it is not allowed a SOFT-level breach throttles instead). Within a mode the
exposure rows come first: their reason tells the planner what to size de-risk against, and runs
without a loss keep the decisions and reasons they had.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel

from domain.enums import Bucket, DecisionReason, Regime, RiskMode
from domain.exposure import Exposure
from domain.rules import LossLimitRule, RiskRules


class DecisionInput(BaseModel):
    regime: Regime
    gross_exposure_pct: float
    potential_exposure_pct: float
    lt_current_pct: float
    lt_potential_pct: float
    mm_current_pct: float
    mm_potential_pct: float
    minutes_to_close: float
    # Loss since the beginning of the day as a positive % of equity (0 for a gain); see domain/pnl.py.
    daily_loss_pct: float = 0.0


class Decision(BaseModel):
    mode: RiskMode
    reason: DecisionReason
    sentence: str
    row: str
    inputs: DecisionInput
    tolerance_pct: float


class Condition(str, Enum):
    GROSS_REACHES_HARD_CAP = "gross ≥ hard cap"
    CLOSE_AND_GROSS_OVER_TOLERANCE = "regime CLOSE and gross > tolerance"
    DERISK_AND_GROSS_REACHES_TOLERANCE = "allow_derisk and gross ≥ tolerance"
    DERISK_AND_BUCKET_OVER_MAX = "allow_derisk and a bucket's current > max"
    POTENTIAL_OVER_LIMIT = "potential ≥ hard cap, or potential > tolerance, or gross > tolerance without de-risk, or a bucket's potential > max"
    DAILY_LOSS_REACHES_HARD = "daily loss ≥ hard loss limit"
    DERISK_AND_DAILY_LOSS_REACHES_SOFT = "allow_derisk and daily loss ≥ soft loss limit"
    DAILY_LOSS_REACHES_THROTTLE = "daily loss ≥ throttle loss limit, or ≥ soft loss limit without de-risk"
    ALWAYS = "otherwise"


@dataclass(frozen=True)
class PolicyRow:
    # DESIGN.md numbers the exposure rows 1-6; the loss rows (issue 16) are L1-L3, so "row 5"
    # means the same thing in the design, the decision log and a desk's conversation.
    label: str
    condition: Condition
    mode: RiskMode
    reason: DecisionReason


POLICY_TABLE: tuple[PolicyRow, ...] = (
    PolicyRow("1", Condition.GROSS_REACHES_HARD_CAP, RiskMode.HARD_DERISK, DecisionReason.HARD_CAP_BREACH),
    PolicyRow("2", Condition.CLOSE_AND_GROSS_OVER_TOLERANCE, RiskMode.HARD_DERISK, DecisionReason.CLOSE_OVER_TOLERANCE),
    PolicyRow("L1", Condition.DAILY_LOSS_REACHES_HARD, RiskMode.HARD_DERISK, DecisionReason.DAILY_LOSS_HARD),
    PolicyRow("3", Condition.DERISK_AND_GROSS_REACHES_TOLERANCE, RiskMode.SOFT_DERISK, DecisionReason.OVER_REGIME_TOLERANCE),
    PolicyRow("4", Condition.DERISK_AND_BUCKET_OVER_MAX, RiskMode.SOFT_DERISK, DecisionReason.BUCKET_OVER_MAX),
    PolicyRow("L2", Condition.DERISK_AND_DAILY_LOSS_REACHES_SOFT, RiskMode.SOFT_DERISK, DecisionReason.DAILY_LOSS_SOFT),
    PolicyRow("5", Condition.POTENTIAL_OVER_LIMIT, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.POTENTIAL_OVER_LIMIT),
    PolicyRow("L3", Condition.DAILY_LOSS_REACHES_THROTTLE, RiskMode.THROTTLE_NEW_ORDERS, DecisionReason.DAILY_LOSS_THROTTLE),
    PolicyRow("6", Condition.ALWAYS, RiskMode.NORMAL, DecisionReason.WITHIN_LIMITS),
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
    loss: float  # daily loss %, NaN read as infinite: a loss that cannot be measured fails closed
    loss_limits: LossLimitRule | None


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


def _loss_reaches(f: _Facts, threshold: float | None) -> bool:
    return threshold is not None and reaches(f.loss, threshold)


def _loss_hard(f: _Facts) -> bool:
    return f.loss_limits is not None and _loss_reaches(f, f.loss_limits.hard_pct)


def _loss_soft(f: _Facts) -> bool:
    return f.loss_limits is not None and _loss_reaches(f, f.loss_limits.soft_pct)


def _loss_throttles(f: _Facts) -> bool:
    return f.loss_limits is not None and (_loss_reaches(f, f.loss_limits.throttle_pct) or (not f.allow_derisk and _loss_soft(f)))


CONDITIONS: dict[Condition, Callable[[_Facts], bool]] = {
    Condition.GROSS_REACHES_HARD_CAP: lambda f: reaches(f.d.gross_exposure_pct, f.hard_cap),
    Condition.CLOSE_AND_GROSS_OVER_TOLERANCE: lambda f: f.d.regime is Regime.CLOSE and over(f.d.gross_exposure_pct, f.tolerance),
    Condition.DAILY_LOSS_REACHES_HARD: _loss_hard,
    Condition.DERISK_AND_GROSS_REACHES_TOLERANCE: lambda f: f.allow_derisk and reaches(f.d.gross_exposure_pct, f.tolerance),
    Condition.DERISK_AND_BUCKET_OVER_MAX: lambda f: f.allow_derisk and _bucket_current_over(f),
    Condition.DERISK_AND_DAILY_LOSS_REACHES_SOFT: lambda f: f.allow_derisk and _loss_soft(f),
    Condition.POTENTIAL_OVER_LIMIT: _potential_over,
    Condition.DAILY_LOSS_REACHES_THROTTLE: _loss_throttles,
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
        loss=math.inf if math.isnan(inputs.daily_loss_pct) else inputs.daily_loss_pct,
        loss_limits=rules.loss_limits,
    )
    row = next(r for r in POLICY_TABLE if CONDITIONS[r.condition](facts))
    sentence = (
        f"{row.mode.value} ({row.reason.value}, row {row.label}: {row.condition.value}): "
        f"{inputs.regime.value} regime, {inputs.minutes_to_close:.0f} min to close; "
        f"gross {inputs.gross_exposure_pct:.2f}% vs tolerance {facts.tolerance:g}% and hard cap {facts.hard_cap:g}%; "
        f"potential {inputs.potential_exposure_pct:.2f}%; "
        f"LT {inputs.lt_current_pct:.2f}%/{inputs.lt_potential_pct:.2f}% (max {facts.lt_max:g}%), "
        f"MM_PURE {inputs.mm_current_pct:.2f}%/{inputs.mm_potential_pct:.2f}% (max {facts.mm_max:g}%)"
        f"{_loss_clause(inputs.daily_loss_pct, rules.loss_limits)}"
    )
    return Decision(mode=row.mode, reason=row.reason, sentence=sentence, row=row.label, inputs=inputs, tolerance_pct=facts.tolerance)


def _loss_clause(loss: float, limits: LossLimitRule | None) -> str:
    if limits is None:
        return ""
    soft = f", soft {limits.soft_pct:g}%" if limits.soft_pct is not None else ""
    return f"; daily loss {loss:.2f}% of equity (throttle {limits.throttle_pct:g}%{soft}, hard {limits.hard_pct:g}%)"


def decision_input(exposure: Exposure, regime: Regime, minutes_to_close: float, daily_loss_pct: float = 0.0) -> DecisionInput:
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
        daily_loss_pct=daily_loss_pct,
    )
