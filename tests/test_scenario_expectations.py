"""Every scenario expectation kind fails when it does not hold — with a message that names what
was expected and what was observed — and passes when it does (issue 11: a scenario cannot pass
by accident). The evaluator is pure, so the results here are built by hand; the scenario
format's own validation errors are checked too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from activities import scenarios as scenario_activities
from activities.scenarios import plan_scenario
from domain.days import DayRecord, DayTally
from domain.enums import (
    Bucket,
    CancelReason,
    IntentKind,
    OrderState,
    OrderType,
    PriceRule,
    Regime,
    RejectReason,
    RiskMode,
    Side,
    TradingState,
)
from domain.ledger import FillRecord
from domain.models import Intent
from domain.order import OrderOutcome
from domain.pnl import BodPosition, PnlTotals
from domain.policy import decision_input
from protocol.messages import (
    Answer,
    CancelRefusal,
    DayLog,
    DecisionRecord,
    IntentRecord,
    RiskResult,
)
from protocol.scenario_plan import ScenarioPlan
from scenarios.evaluate import evaluate
from scenarios.spec import Expectation, ScenarioSpec
from tests.builders import exposure_of, lt_mm_positions

ACCOUNT = "acct"
INPUTS = decision_input(exposure_of(lt_mm_positions(80, 20)), Regime.MID, 300.0)


def decision(cycle: int, at: str, regime: str, mode: RiskMode, reason: str, gross: float, after: float, intents=(), skipped=()) -> DecisionRecord:
    return DecisionRecord(
        cycle=cycle,
        exchange_time=at,
        regime=regime,
        mode=mode,
        reason=reason,
        sentence=f"{mode.value} ({reason})",
        gross_pct=gross,
        potential_pct=gross,
        tolerance_pct=120.0,
        gross_pct_after=after,
        intents=list(intents),
        inputs=INPUTS,
        skipped=list(skipped),
    )


def intent(intent_id: str, side: Side, kind: IntentKind, rule: PriceRule, order_type: OrderType = OrderType.LIMIT) -> Intent:
    symbol = intent_id.split("-")[2]  # c000003-H-MSFT-LT
    return Intent(
        intent_id=f"{ACCOUNT}-{intent_id}",
        account=ACCOUNT,
        symbol=symbol,
        bucket=Bucket.LT,
        side=side,
        quantity=100,
        order_type=order_type,
        limit_price=100.0 if order_type is OrderType.LIMIT else None,
        kind=kind,
        reduce_only=True,
        price_rule=rule,
    )


def outcome(order_id: str, state: OrderState, filled: int, quantity: int = 100, kind: IntentKind = IntentKind.NEW, **kw: Any) -> OrderOutcome:
    return OrderOutcome(intent_id=f"{ACCOUNT}-{order_id}", state=state, quantity=quantity, filled_quantity=filled, kind=kind, **kw)


def answer(action: str, order_id: str, accepted: bool, state: OrderState, **kw: Any) -> Answer:
    new = kw.pop("new_id", None)
    return Answer(
        action=action,
        intent_id=f"{ACCOUNT}-{order_id}",
        accepted=accepted,
        state=state,
        message=f"{action} answer",
        new_intent_id=f"{ACCOUNT}-{new}" if new else None,
        **kw,
    )


# What one account observed: three cycles (NORMAL at 11:00, SOFT at 11:01 with one intent, HARD
# at 11:02 with two), desk orders in every final state, a LOST one, de-risk orders, the answers.
SOFT = intent("c000002-S-AAPL-LT", Side.SELL, IntentKind.SOFT_DERISK, PriceRule.NEAR_TRUTH_TICK)
HARD = [
    intent("c000003-H-AAPL-LT", Side.SELL, IntentKind.HARD_DERISK, PriceRule.AT_BID),
    intent("c000003-H-MSFT-LT", Side.SELL, IntentKind.HARD_DERISK, PriceRule.AT_BID),
]
OUTCOMES = [
    outcome("o1", OrderState.FILLED, 100),
    outcome("o2", OrderState.REJECTED, 0, 1900, reject_reason=RejectReason.REDUCE_ONLY_WOULD_FLIP, reject_message="past zero"),
    outcome("o3", OrderState.CANCELED, 20, cancel_reason=CancelReason.USER),
    outcome("o5", OrderState.WORKING, 30, lost_cause="terminated from outside"),
    outcome("o6", OrderState.CANCELED, 0, cancel_reason=CancelReason.REPLACED, replaced_by=f"{ACCOUNT}-o6.R1"),
    outcome("c000002-S-AAPL-LT", OrderState.FILLED, 100, kind=IntentKind.SOFT_DERISK),
]
ANSWERS = [
    answer("cancel", "o3", True, OrderState.CANCELED),
    answer("cancel", "o1", False, OrderState.FILLED, refusal=CancelRefusal.TOO_LATE_TO_CANCEL),
    answer("replace", "o6", True, OrderState.CANCELED, new_id="o6.R1"),
    answer("replace", "o7", False, OrderState.WORKING, refusal=CancelRefusal.PRETRADE, reject_reason=RejectReason.MODE_THROTTLE_NEW_ORDERS),
]


def observed(**changes: Any) -> RiskResult:
    result = RiskResult(
        account=ACCOUNT,
        decisions=[
            decision(1, "11:00:00", "MID", RiskMode.NORMAL, "WITHIN_LIMITS", 100.0, 100.0),
            decision(2, "11:01:00", "MID", RiskMode.SOFT_DERISK, "OVER_REGIME_TOLERANCE", 121.0, 119.5, [SOFT.intent_id]),
            decision(
                3,
                "11:02:00",
                "LATE",
                RiskMode.HARD_DERISK,
                "HARD_CAP_BREACH",
                129.5,
                126.0,
                [i.intent_id for i in HARD],
                ["SPY: STALE_DATA print 412 s old"],
            ),
        ],
        intents=[IntentRecord(cycle=2, exchange_time="11:01:00", intent=SOFT)]
        + [IntentRecord(cycle=3, exchange_time="11:02:00", intent=i) for i in HARD],
        outcomes={o.intent_id: o for o in OUTCOMES},
        answers=ANSWERS,
        fills=[
            FillRecord(
                cycle=2,
                exchange_time="11:01:00",
                fill_id=f"{ACCOUNT}-o1/C2",
                intent_id=f"{ACCOUNT}-o1",
                symbol="AAPL",
                bucket=Bucket.LT,
                side=Side.BUY,
                quantity=100,
                price=100.0,
            )
        ],
        hard_cap_pct=130.0,
        final_exposure=exposure_of(lt_mm_positions(78, 20)),  # 98% gross
        positions=[],
    )
    return result.model_copy(update=changes)


def failures_of(expectation: dict[str, Any], result: RiskResult | None = None) -> list[str]:
    spec = ScenarioSpec.model_validate({"name": "t", "start": "11:00", "stop": "11:02", "expect": [expectation]})
    report = evaluate(spec, result or observed())
    assert report.passed is (not report.failures)
    return report.failures


# (expectation that holds, the same kind that does not, fragments its one failure must name)
CASES = {
    "at regime": (
        {"at": "11:02", "regime": "LATE"},
        {"at": "11:02", "regime": "CLOSE"},
        ["at 11:02 (cycle 3, 11:02:00)", "expected regime CLOSE", "observed LATE"],
    ),
    "at mode": (
        {"at": "11:01", "mode": "SOFT_DERISK"},
        {"at": "11:01", "mode": "HARD_DERISK"},
        ["at 11:01 (cycle 2, 11:01:00)", "expected mode HARD_DERISK", "observed SOFT_DERISK"],
    ),
    "at reason": (
        {"at": "11:00", "reason": "WITHIN_LIMITS"},
        {"at": "11:00", "reason": "POTENTIAL_OVER_LIMIT"},
        ["expected reason POTENTIAL_OVER_LIMIT", "observed WITHIN_LIMITS"],
    ),
    "at seconds": ({"at": "11:01:00", "mode": "SOFT_DERISK"}, {"at": "11:01:00", "mode": "NORMAL"}, ["expected mode NORMAL", "observed SOFT_DERISK"]),
    "intents none": (
        {"at": "11:00", "intents": "none"},
        {"at": "11:01", "intents": "none"},
        ["at 11:01", "expected no intents", "observed 1", "SELL 100 AAPL"],
    ),
    "intents count": ({"at": "11:02", "intents": {"count": 2}}, {"at": "11:02", "intents": {"count": 3}}, ["expected 3 intents", "observed 2"]),
    "intents min_count": (
        {"at": "11:02", "intents": {"min_count": 2}},
        {"at": "11:01", "intents": {"min_count": 2}},
        ["expected at least 2 intents", "observed 1"],
    ),
    "intents without a count": (
        {"at": "11:01", "intents": {"side": "SELL"}},
        {"at": "11:00", "intents": {"side": "SELL"}},
        ["at 11:00", "expected intents", "observed none"],
    ),
    "intents fields": (
        {"at": "11:01", "intents": {"side": "SELL", "order_type": "LIMIT", "price_rule": "NEAR_TRUTH_TICK", "kind": "SOFT_DERISK"}},
        {"at": "11:01", "intents": {"price_rule": "AT_BID"}},
        ["intent acct-c000002-S-AAPL-LT price_rule", "expected AT_BID", "observed NEAR_TRUTH_TICK"],
    ),
    "intents symbols": (
        {"at": "11:02", "intents": {"symbols": ["AAPL", "MSFT"]}},
        {"at": "11:02", "intents": {"symbols": ["SPY"]}},
        ["at 11:02 (cycle 3, 11:02:00)", "expected an intent on SPY", "observed ['AAPL', 'MSFT']"],
    ),
    "skipped": (
        {"at": "11:02", "skipped": ["SPY"]},
        {"at": "11:01", "skipped": ["SPY"]},
        ["at 11:01 (cycle 2, 11:01:00)", "expected de-risk of SPY skipped for STALE_DATA", "observed skipped []"],
    ),
    "at a time with no cycle": (
        {"at": "11:01", "mode": "SOFT_DERISK"},
        {"at": "11:00:30", "mode": "SOFT_DERISK"},
        ["at 11:00:30", "no cycle ran at that time"],
    ),
    "at after the last cycle": (
        {"at": "11:02", "intents": {"min_count": 1}},
        {"at": "11:03", "intents": {"min_count": 1}},
        ["at 11:03", "no cycle ran at that time"],
    ),
    "window": (
        {"from": "11:00", "by": "11:01", "regime": "MID"},
        {"from": "11:00", "by": "11:02", "regime": "MID"},
        ["from 11:00 by 11:02 (cycle 3, 11:02:00)", "expected regime MID", "observed LATE"],
    ),
    "window intents": (
        {"from": "11:01", "by": "11:02", "intents": {"min_count": 1, "side": "SELL"}},
        {"from": "11:00", "by": "11:02", "intents": {"min_count": 1}},
        ["from 11:00 by 11:02 (cycle 1, 11:00:00)", "expected at least 1 intents", "observed 0"],
    ),
    "window with no cycle": (
        {"from": "10:59", "by": "11:00", "mode": "NORMAL"},
        {"from": "11:03", "by": "11:10", "mode": "NORMAL"},
        ["from 11:03 by 11:10", "no cycle ran in that window"],
    ),
    "order state": (
        {"order": {"id": "o2", "state": "REJECTED"}},
        {"order": {"id": "o2", "state": "FILLED"}},
        ["order o2", "expected state FILLED", "observed REJECTED"],
    ),
    "order reject_reason": (
        {"order": {"id": "o2", "reject_reason": "REDUCE_ONLY_WOULD_FLIP"}},
        {"order": {"id": "o2", "reject_reason": "REDUCE_ONLY_WOULD_INCREASE"}},
        ["order o2", "expected reject_reason REDUCE_ONLY_WOULD_INCREASE", "observed REDUCE_ONLY_WOULD_FLIP"],
    ),
    "order reject_reason when none": (
        {"order": {"id": "o1", "state": "FILLED"}},
        {"order": {"id": "o1", "reject_reason": "HARD_CAP"}},
        ["order o1", "expected reject_reason HARD_CAP", "observed None"],
    ),
    "order cancel_reason": (
        {"order": {"id": "o3", "cancel_reason": "USER"}},
        {"order": {"id": "o3", "cancel_reason": "EXPIRED_DAY"}},
        ["order o3", "expected cancel_reason EXPIRED_DAY", "observed USER"],
    ),
    "order filled_min": (
        {"order": {"id": "o3", "filled_min": 20}},
        {"order": {"id": "o3", "filled_min": 21}},
        ["order o3", "expected at least 21 filled", "observed 20"],
    ),
    "order filled_max": (
        {"order": {"id": "o3", "filled_max": 20}},
        {"order": {"id": "o3", "filled_max": 19}},
        ["order o3", "expected at most 19 filled", "observed 20"],
    ),
    "order lost": (
        {"order": {"id": "o5", "lost": True}},
        {"order": {"id": "o5", "lost": False}},
        ["order o5", "expected not LOST", "observed LOST terminated from outside"],
    ),
    "order not lost": (
        {"order": {"id": "o1", "lost": False}},
        {"order": {"id": "o1", "lost": True}},
        ["order o1", "expected LOST", "observed FILLED"],
    ),
    "order first_fill_from": (
        {"order": {"id": "o1", "first_fill_from": "11:01"}},
        {"order": {"id": "o1", "first_fill_from": "11:02"}},
        ["order o1", "expected no fill before 11:02", "observed 100 at 11:01:00"],
    ),
    "missing order": ({"order": {"id": "o1", "filled_min": 1}}, {"order": {"id": "o9", "state": "FILLED"}}, ["order o9", "no final state observed"]),
    "cancel accepted": (
        {"cancel": {"id": "o3", "accepted": True, "state": "CANCELED"}},
        {"cancel": {"id": "o3", "accepted": False}},
        ["cancel of o3", "expected refused", "observed accepted"],
    ),
    "cancel refusal": (
        {"cancel": {"id": "o1", "accepted": False, "refusal": "TOO_LATE_TO_CANCEL"}},
        {"cancel": {"id": "o1", "refusal": "ORDER_CLOSED"}},
        ["cancel of o1", "expected refusal ORDER_CLOSED", "observed TOO_LATE_TO_CANCEL"],
    ),
    "cancel state": (
        {"cancel": {"id": "o1", "state": "FILLED"}},
        {"cancel": {"id": "o1", "state": "CANCELED"}},
        ["cancel of o1", "expected state CANCELED", "observed FILLED"],
    ),
    "missing cancel answer": (
        {"cancel": {"id": "o3", "accepted": True}},
        {"cancel": {"id": "o6", "accepted": True}},
        ["cancel of o6", "no answer observed"],
    ),
    "replace accepted": (
        {"replace": {"id": "o6", "accepted": True}},
        {"replace": {"id": "o7", "accepted": True}},
        ["replace of o7", "expected accepted", "observed refused"],
    ),
    "replace refusal": (
        {"replace": {"id": "o7", "refusal": "PRETRADE"}},
        {"replace": {"id": "o7", "refusal": "VENUE"}},
        ["replace of o7", "expected refusal VENUE", "observed PRETRADE"],
    ),
    "replace reject_reason": (
        {"replace": {"id": "o7", "reject_reason": "MODE_THROTTLE_NEW_ORDERS"}},
        {"replace": {"id": "o7", "reject_reason": "HARD_CAP"}},
        ["replace of o7", "expected reject_reason HARD_CAP", "observed MODE_THROTTLE_NEW_ORDERS"],
    ),
    "replace state": (
        {"replace": {"id": "o7", "state": "WORKING"}},
        {"replace": {"id": "o7", "state": "CANCELED"}},
        ["replace of o7", "expected state CANCELED", "observed WORKING"],
    ),
    "replace new_id": (
        {"replace": {"id": "o6", "new_id": "o6.R1"}},
        {"replace": {"id": "o6", "new_id": "o6.R2"}},
        ["replace of o6", "expected the replacement o6.R2", "observed acct-o6.R1"],
    ),
    "replace new_id when refused": (
        {"replace": {"id": "o6", "new_id": "o6.R1"}},
        {"replace": {"id": "o7", "new_id": "o7.R1"}},
        ["replace of o7", "expected the replacement o7.R1", "observed None"],
    ),
    "replace answer is not a cancel answer": (
        {"replace": {"id": "o6", "accepted": True}},
        {"replace": {"id": "o3", "accepted": True}},
        ["replace of o3", "no answer observed"],
    ),
    # Desk orders: o1, o3, o5 have fills (3 of the 5 desk orders); o2 is REJECTED. The de-risk
    # order's fill does not count as a desk order's.
    "desk_orders filled_min": (
        {"desk_orders": {"filled_min": 3}},
        {"desk_orders": {"filled_min": 4}},
        ["desk orders", "expected at least 4 with fills", "observed 3 of 5"],
    ),
    "desk_orders rejected_min": (
        {"desk_orders": {"rejected_min": 1}},
        {"desk_orders": {"rejected_min": 2}},
        ["desk orders", "expected at least 2 refused", "observed 1 of 5"],
    ),
    "final_gross_max_pct": ({"final_gross_max_pct": 98}, {"final_gross_max_pct": 97.5}, ["final gross expected ≤ 97.5%", "observed 98.0%"]),
    "gross_always_below_pct": (
        {"gross_always_below_pct": 130},
        {"gross_always_below_pct": 129.5},
        ["gross expected always below 129.5%", "peaked at 129.5%"],
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_an_expectation_that_holds_passes(kind):
    holds, _, _ = CASES[kind]
    assert failures_of(holds) == []


@pytest.mark.parametrize("kind", list(CASES))
def test_an_expectation_that_does_not_hold_fails_naming_expected_and_observed(kind):
    _, fails, fragments = CASES[kind]
    failures = failures_of(fails)
    assert len(failures) == 1, failures
    for fragment in fragments:
        assert fragment in failures[0], f"{fragment!r} not in {failures[0]!r}"


def test_at_reads_exactly_that_cycle_never_a_later_one():
    # 11:00 is NORMAL; the first cycle *after* 11:00:30 is SOFT — `at` does not reach for it.
    assert failures_of({"at": "11:00", "mode": "SOFT_DERISK"}) != []
    assert failures_of({"at": "11:00:30", "mode": "SOFT_DERISK"}) == ["at 11:00:30: no cycle ran at that time"]


def test_a_window_checks_every_cycle_in_it_and_names_each_that_fails():
    failures = failures_of({"from": "11:00", "by": "11:02", "mode": "NORMAL"})
    assert [f.split("): ")[0] for f in failures] == ["from 11:00 by 11:02 (cycle 2, 11:01:00", "from 11:00 by 11:02 (cycle 3, 11:02:00"]
    assert "observed SOFT_DERISK" in failures[0] and "observed HARD_DERISK" in failures[1]


def test_a_failed_mode_names_the_decision_sentence():
    (failure,) = failures_of({"at": "11:01", "mode": "NORMAL"})
    assert failure.endswith("— SOFT_DERISK (OVER_REGIME_TOLERANCE)")


def test_several_checks_in_one_expectation_each_fail_on_their_own():
    failures = failures_of({"at": "11:02", "regime": "CLOSE", "mode": "SOFT_DERISK", "reason": "CLOSE_OVER_TOLERANCE", "intents": "none"})
    assert len(failures) == 4


def test_intent_fields_are_checked_on_every_intent_of_the_cycle():
    failures = failures_of({"at": "11:02", "intents": {"count": 2, "side": "BUY", "kind": "HARD_DERISK"}})
    assert failures == [
        "at 11:02 (cycle 3, 11:02:00): intent acct-c000003-H-AAPL-LT side expected BUY, observed SELL",
        "at 11:02 (cycle 3, 11:02:00): intent acct-c000003-H-MSFT-LT side expected BUY, observed SELL",
    ]


def test_without_a_final_exposure_or_decisions_the_gross_checks_fail():
    assert failures_of({"final_gross_max_pct": 100}, observed(final_exposure=None)) == ["final gross expected ≤ 100.0%, observed None%"]
    assert failures_of({"gross_always_below_pct": 130}, observed(decisions=[])) == ["gross expected always below 130.0%, peaked at None%"]


def test_gross_always_below_reads_the_gross_after_each_cycle_too():
    result = observed(decisions=[decision(1, "11:00:00", "MID", RiskMode.NORMAL, "WITHIN_LIMITS", 100.0, 131.0)])
    assert failures_of({"gross_always_below_pct": 130}, result) == ["gross expected always below 130.0%, peaked at 131.0%"]


def test_desk_orders_with_none_observed_fail():
    failures = failures_of({"desk_orders": {"filled_min": 1, "rejected_min": 1}}, observed(outcomes={}))
    assert failures == ["desk orders: expected at least 1 with fills, observed 0 of 0", "desk orders: expected at least 1 refused, observed 0 of 0"]


def test_the_first_answer_of_an_order_is_the_one_checked():
    # A second replace of the same order (after the first was refused) is answered too, but an
    # expectation on `id` reads the first answer.
    later = answer("replace", "o7", True, OrderState.CANCELED, new_id="o7.R1")
    result = observed(answers=[*ANSWERS, later])
    assert failures_of({"replace": {"id": "o7", "accepted": False}}, result) == []


# ── the format's own validation ─────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({"at": "11:00", "from": "10:00", "by": "11:00", "mode": "NORMAL"}, "give `at` (one cycle) or `from`/`by` (a window), not both"),
        ({"at": "11:00", "by": "11:00", "mode": "NORMAL"}, "give `at` (one cycle) or `from`/`by` (a window), not both"),
        ({"from": "10:00", "mode": "NORMAL"}, "a window needs both `from` and `by`"),
        ({"by": "10:00", "mode": "NORMAL"}, "a window needs both `from` and `by`"),
        ({"mode": "NORMAL"}, "regime, mode, reason and intents are read at a cycle: give `at` or `from`/`by`"),
        ({"regime": "MID"}, "regime, mode, reason and intents are read at a cycle"),
        ({"reason": "WITHIN_LIMITS"}, "regime, mode, reason and intents are read at a cycle"),
        ({"intents": "none"}, "regime, mode, reason and intents are read at a cycle"),
        ({"skipped": ["AAPL"]}, "regime, mode, reason and intents are read at a cycle"),
        ({"intents": {"count": 1}, "order": {"id": "o1", "lost": False}}, "regime, mode, reason and intents are read at a cycle"),
        ({"at": "25:00", "mode": "NORMAL"}, "String should match pattern"),
        ({"at": "11:00", "modes": "NORMAL"}, "Extra inputs are not permitted"),
        ({"order": {"id": "o1", "state": "DONE"}}, "Input should be"),
        ({"cancel": {"id": "o1", "refusal": "NOPE"}}, "Input should be"),
        ({"at": "11:00", "intents": "some"}, "Input should be"),
    ],
)
def test_invalid_expectations_are_refused_with_the_reason(expectation, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Expectation.model_validate(expectation)


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({}, "an expectation compares nothing"),
        ({"at": "11:00"}, "an expectation at 11:00 compares nothing"),
        ({"from": "11:00", "by": "12:00"}, "an expectation compares nothing"),
        ({"order": {"id": "x"}}, "order x compares nothing: give at least one of state, reject_reason"),
        ({"cancel": {"id": "x"}}, "the answer about x compares nothing"),
        ({"replace": {"id": "x"}}, "the answer about x compares nothing"),
        ({"desk_orders": {}}, "desk_orders compares nothing"),
        ({"at": "11:00", "skipped": []}, "an expectation at 11:00 compares nothing"),
    ],
)
def test_an_expectation_that_compares_nothing_is_refused(expectation, message):
    with pytest.raises(ValidationError, match=message):
        Expectation.model_validate(expectation)


def test_a_scenario_with_an_empty_expectation_is_refused_at_load_naming_it():
    spec = scenario([], expect=[{"at": "11:00", "mode": "NORMAL"}, {"order": {"id": "o1"}}])
    with pytest.raises(ValueError, match=r"^scenario refs: expect\.1\.order: Value error, order o1 compares nothing"):
        plan_scenario(spec)


def test_a_scenario_file_with_an_empty_expectation_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(scenario_activities, "SCENARIO_DIR", tmp_path)
    (tmp_path / "empty_check.yaml").write_text(
        """\
name: empty_check
start: '11:00'
stop: '12:00'
events: []
expect:
  - at: '11:30'
    mode: NORMAL
  - order:
      id: o1
"""
    )
    with pytest.raises(ValueError, match=r"^scenario empty_check: line 8: expect\.1\.order: Value error, order o1 compares nothing"):
        plan_scenario("empty_check")


def test_an_expected_state_never_matches_a_lost_order():
    """o5 was WORKING when it went away (LOST): `state: WORKING` does not pass for it; `lost: true` does."""
    failures = failures_of({"order": {"id": "o5", "state": "WORKING"}})
    assert failures == ["order o5: expected state WORKING, observed LOST (terminated from outside)"], failures
    assert failures_of({"order": {"id": "o5", "lost": True}}) == []
    assert failures_of({"order": {"id": "o1", "state": "FILLED", "lost": False}}) == []


def test_checks_count_comparisons_not_expectations():
    spec = ScenarioSpec.model_validate(
        {
            "name": "t",
            "start": "11:00",
            "stop": "11:05",
            "expect": [
                {"at": "11:01", "mode": "SOFT_DERISK", "reason": "OVER_REGIME_TOLERANCE", "intents": {"count": 1}},  # 3
                {"order": {"id": "o1", "state": "FILLED", "filled_min": 100, "lost": False}},  # 3
                {"at": "11:02", "skipped": ["SPY"]},  # 1
                {"desk_orders": {"filled_min": 1, "rejected_min": 1}, "final_gross_max_pct": 100},  # 3
            ],
        }
    )
    assert [e.comparisons() for e in spec.expect] == [3, 3, 1, 3]
    assert evaluate(spec, observed()).checks == 10


def test_an_expectation_without_a_time_is_fine_for_what_is_not_read_at_a_cycle():
    for expectation in (
        {"order": {"id": "o1", "state": "FILLED"}},
        {"cancel": {"id": "o1", "accepted": True}},
        {"replace": {"id": "o1", "accepted": False}},
        {"desk_orders": {"filled_min": 1}},
        {"final_gross_max_pct": 100},
        {"gross_always_below_pct": 130},
    ):
        Expectation.model_validate(expectation)


def scenario(events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "refs", "start": "11:00", "stop": "11:05", "events": events, "expect": [{"final_gross_max_pct": 200}]} | extra


ORDER = {"id": "o1", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 100.0}


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"at": "11:01", "cancel": {"id": "o1"}}], "event at 11:01: cancel of 'o1', which no earlier order defines"),
        ([{"at": "11:01", "replace": {"id": "o1", "quantity": 200}}], "replace of 'o1', which no earlier order defines"),
        ([{"at": "11:02", "order": ORDER}, {"at": "11:01", "cancel": {"id": "o1"}}], "cancel of 'o1', which no earlier order defines"),
        (
            [{"at": "11:00", "order": ORDER}, {"at": "11:01", "replace": {"id": "o1.R1", "quantity": 200}}],
            "replace of 'o1.R1', which no earlier order defines",
        ),
        (
            [
                {"at": "11:00", "order": ORDER},
                {"at": "11:01", "replace": {"id": "o1", "quantity": 200}},
                {"at": "11:02", "replace": {"id": "o1.R2", "quantity": 300}},
            ],
            "replace of 'o1.R2', which no earlier order defines",
        ),
        ([{"at": "11:00", "order": ORDER}, {"at": "11:01", "order": ORDER}], "order id 'o1' is used twice"),
    ],
)
def test_scenario_references_are_checked_when_it_loads(events, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        plan_scenario(scenario(events))


def test_a_replace_chain_defines_each_replacement_in_turn():
    events = [
        {"at": "11:00", "order": ORDER},
        {"at": "11:01", "replace": {"id": "o1", "quantity": 200}},
        {"at": "11:02", "replace": {"id": "o1.R1", "quantity": 300}},
        {"at": "11:03", "replace": {"id": "o1.R2", "quantity": 400}},
        {"at": "11:04", "cancel": {"id": "o1.R3"}},
    ]
    assert plan_scenario(scenario(events)).timeline[-1].cancel.id == "o1.R3"


def test_an_invalid_expectation_in_a_scenario_file_is_one_line_naming_where():
    with pytest.raises(ValueError, match=r"^scenario refs: expect\.0: Value error, give `at`"):
        plan_scenario(scenario([], expect=[{"at": "11:00", "from": "11:00", "by": "11:01", "mode": "NORMAL"}]))


def test_a_plan_with_random_orders_beyond_the_files_1000_events_decodes_where_the_workflow_reads_it():
    """900 events and 500 random orders: the expanded timeline (1,400) once sat in the plan's spec,
    whose events are bounded at 1,000 — the scenario workflow failed to decode its own plan (a
    workflow task failing on every retry). The timeline travels beside the spec now."""
    events = [{"at": "11:00", "exposure": {"marks": {"AAPL": 100.0 + i / 100}}} for i in range(900)]
    random = {"seed": 1, "count": 500, "start": "11:00", "every_seconds": 1, "symbols": ["AAPL"], "max_quantity": 10}
    plan = plan_scenario(scenario(events, random_orders=random))
    decoded = ScenarioPlan.model_validate_json(plan.model_dump_json())
    assert (len(decoded.timeline), decoded.spec.events) == (1400, [])


def test_a_calendar_scenario_dates_its_days_and_refuses_an_event_on_a_holiday():
    week = {
        "name": "days",
        "calendar": "XNYS",
        "date": "2026-11-25",
        "days": 2,
        "start": "09:30",
        "stop": "13:00",
        "expect": [{"day": 2, "cycles": 10}],
    }
    plan = plan_scenario(week | {"events": [{"day": 2, "at": "12:00", "exposure": {"marks": {"AAPL": 99.0}}}]})
    assert (plan.spec.stop_date, plan.timeline[0].date, plan.spec.expect[0].date) == ("2026-11-27", "2026-11-27", "2026-11-27")
    assert plan.config.rules.session.calendar == "XNYS" and plan.config.rules.session.open is None
    for event, problem in (
        ({"at": "2026-11-26 11:00"}, "no XNYS session that day (a weekend or a holiday)"),
        ({"day": 2, "at": "13:30"}, "outside that day's session (09:30–13:00)"),
        ({"day": 3, "at": "10:00"}, "outside the scenario's days (2026-11-25 to 2026-11-27)"),
    ):
        with pytest.raises(ValueError, match=re.escape(problem)):
            plan_scenario(week | {"events": [event | {"exposure": {"marks": {"AAPL": 99.0}}}]})
    with pytest.raises(ValueError, match="2026-11-26 has no XNYS session"):
        plan_scenario(week | {"date": "2026-11-26", "events": []})
    with pytest.raises(ValueError, match="need a calendar"):
        plan_scenario(scenario([{"day": 2, "at": "11:00", "exposure": {"marks": {"AAPL": 99.0}}}]))


def test_a_days_checks_read_its_roll_its_bod_and_its_log():
    """Per-day expectations of a run over several sessions: each passes on what the account
    recorded and fails naming expected and observed."""
    monday = DayRecord(
        date="2026-11-23", open="09:30", close="16:00", rolled_at="2026-11-23T16:00:00", equity=1e6,
        pnl=PnlTotals(realized=0.0, unrealized=-12_500.0, daily=-12_500.0), daily_loss_pct=1.25, realized_prior=0.0,
        marks={"AAPL": 97.5}, bod_next=[BodPosition(symbol="AAPL", bucket=Bucket.LT, quantity=5000, avg_cost=100.0, mark=97.5)],
        positions=1, expired=1, tally=DayTally(first_cycle=1, cycles=390, modes={RiskMode.NORMAL: 90, RiskMode.THROTTLE_NEW_ORDERS: 300}),
        trading_state=TradingState.ACTIVE,
    )  # fmt: skip
    quiet = decision(391, "09:30:00", "OPEN_EARLY", RiskMode.NORMAL, "WITHIN_LIMITS", 48.75, 48.75).model_copy(update={"repeats": 2})
    result = observed(days=[monday], day_logs=[DayLog(date="2026-11-23", decisions=[quiet])], decisions=[], cycle_seconds=60)
    spec = {"name": "t", "calendar": "XNYS", "date": "2026-11-23", "stop_date": "2026-11-24", "start": "09:30", "stop": "16:00"}

    def failures(*expect: dict[str, Any]) -> list[str]:
        return evaluate(ScenarioSpec.model_validate(spec | {"expect": list(expect)}), result).failures

    holds = [
        {"date": "2026-11-23", "pnl": {"daily_min": -12_500, "daily_max": -12_500}, "expired": 1, "trading_state": "ACTIVE", "cycles": 390},
        {"date": "2026-11-23", "session": {"open": "09:30", "close": "16:00", "early_close": False}},
        {"date": "2026-11-24", "bod": [{"symbol": "AAPL", "quantity": 5000, "mark": 97.5}], "cycles": 0},
        {"date": "2026-11-23", "at": "09:32", "mode": "NORMAL"},  # a quiet stretch's repeat, read as its own row
    ]
    assert failures(*holds) == []
    assert failures(
        {"date": "2026-11-23", "pnl": {"daily_min": 0}},
        {"date": "2026-11-24", "bod": [{"symbol": "AAPL", "quantity": 4000, "mark": 98.0}]},
        {"date": "2026-11-23", "session": {"close": "13:00"}},
        {"date": "2026-11-24", "trading_state": "HALTED"},
        {"date": "2026-11-23", "at": "09:33", "mode": "NORMAL"},
    ) == [
        "day 2026-11-23 at its close (16:00): expected daily P&L ≥ 0.00, observed -12,500.00",
        "day 2026-11-24: BOD AAPL/LT: expected quantity 4000, observed 5000",
        "day 2026-11-24: BOD AAPL/LT: expected mark 98.0, observed 97.5",
        "day 2026-11-23: expected session close 13:00, observed 16:00",
        "day 2026-11-24: expected its close (trading_state), observed no roll that day (closed days: ['2026-11-23'])",
        "2026-11-23 at 09:33: no cycle ran at that time",
    ]
