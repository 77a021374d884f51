"""Check a scenario's expectations against what the risk workflow observed. Pure: the scenario
workflow calls it, and so can a test on a recorded result."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from domain.events import OrderEventSpec, TimedEvent
from scenarios.spec import Expectation, IntentExpectation, ScenarioReport, ScenarioSpec
from workflows.messages import DecisionRecord, IntentRecord, RiskResult


def _hms(text: str) -> str:
    return text if text.count(":") == 2 else f"{text}:00"


def _decision_at(result: RiskResult, at: str) -> DecisionRecord | None:
    return next((d for d in result.decisions if d.exchange_time >= _hms(at)), None)


def _check_intents(expected: IntentExpectation | str, intents: list[IntentRecord], where: str) -> list[str]:
    if expected == "none":
        return [] if not intents else [f"{where}: expected no intents, observed {len(intents)}: {[r.intent.summary() for r in intents]}"]
    assert isinstance(expected, IntentExpectation)
    failures = []
    if expected.count is not None and len(intents) != expected.count:
        failures.append(f"{where}: expected {expected.count} intents, observed {len(intents)}")
    if expected.min_count is not None and len(intents) < expected.min_count:
        failures.append(f"{where}: expected at least {expected.min_count} intents, observed {len(intents)}")
    for record in intents:
        i = record.intent
        for field in ("side", "order_type", "price_rule", "kind"):
            want = getattr(expected, field)
            if want is not None and getattr(i, field) is not want:
                failures.append(f"{where}: intent {i.intent_id} {field} expected {want.value}, observed {getattr(i, field).value}")
    return failures


def _check(exp: Expectation, result: RiskResult, account: str) -> list[str]:
    failures: list[str] = []
    if exp.at is not None:
        decision = _decision_at(result, exp.at)
        where = f"at {exp.at}"
        if decision is None:
            return [f"{where}: no decision was made at or after that time"]
        where = f"at {exp.at} (cycle {decision.cycle}, {decision.exchange_time})"
        if exp.regime is not None and decision.regime != exp.regime:
            failures.append(f"{where}: expected regime {exp.regime}, observed {decision.regime}")
        if exp.mode is not None and decision.mode is not exp.mode:
            failures.append(f"{where}: expected mode {exp.mode.value}, observed {decision.mode.value} — {decision.sentence}")
        if exp.reason is not None and decision.reason != exp.reason.value:
            failures.append(f"{where}: expected reason {exp.reason.value}, observed {decision.reason}")
        if exp.intents is not None:
            issued = [r for r in result.intents if r.cycle == decision.cycle]
            failures += _check_intents(exp.intents, issued, where)
    if exp.order is not None:
        intent_id = f"{account}-{exp.order.id}"
        outcome = result.outcomes.get(intent_id)
        where = f"order {exp.order.id}"
        if outcome is None:
            return [f"{where}: no final state observed"]
        for field in ("state", "reject_reason", "cancel_reason"):
            want = getattr(exp.order, field)
            got = getattr(outcome, field)
            if want is not None and got is not want:
                failures.append(f"{where}: expected {field} {want.value}, observed {got.value if got else None}")
        if exp.order.filled_min is not None and outcome.filled_quantity < exp.order.filled_min:
            failures.append(f"{where}: expected at least {exp.order.filled_min} filled, observed {outcome.filled_quantity}")
    if exp.final_gross_max_pct is not None:
        final = result.final_exposure.gross_exposure_pct if result.final_exposure else None
        if final is None or final > exp.final_gross_max_pct + 1e-9:
            failures.append(f"final gross expected ≤ {exp.final_gross_max_pct}%, observed {final:.4f}%")
    if exp.gross_always_below_pct is not None:
        peak = max((max(d.gross_pct, d.gross_pct_after) for d in result.decisions), default=0.0)
        if peak >= exp.gross_always_below_pct:
            failures.append(f"gross expected always below {exp.gross_always_below_pct}%, peaked at {peak:.4f}%")
    return failures


def evaluate(spec: ScenarioSpec, result: RiskResult) -> ScenarioReport:
    failures: list[str] = []
    for exp in spec.expect:
        failures += _check(exp, result, result.account)
    return ScenarioReport(
        name=spec.name,
        account=result.account,
        passed=not failures,
        failures=failures,
        checks=len(spec.expect),
        modes=[_describe(d) for i, d in enumerate(result.decisions) if i == 0 or d.intents or d.mode is not result.decisions[i - 1].mode],
        intents=[f"{r.exchange_time} {r.intent.intent_id}: {r.intent.summary()} [{r.intent.price_rule.value}]" for r in result.intents],
        orders=[f"{o.intent_id}: {o.state.value} {o.filled_quantity}/{o.quantity}" + (f" {o.reject_reason.value}" if o.reject_reason else "") + (f" {o.cancel_reason.value}" if o.cancel_reason else "") for o in result.outcomes.values()],
        final_gross_pct=result.final_exposure.gross_exposure_pct if result.final_exposure else None,
        order_workflow_ids=list(result.outcomes),
    )


def _describe(d: DecisionRecord) -> str:
    return f"{d.exchange_time} {d.regime} {d.mode.value} {d.reason} gross {d.gross_pct:.2f}% → {d.gross_pct_after:.2f}%"


def expand_random_orders(spec: ScenarioSpec) -> ScenarioSpec:
    """Seeded random desk orders (MARKET, so any symbol's price passes the venue's collar)
    → explicit order events, the same for the same seed."""
    if spec.random_orders is None:
        return spec
    ro = spec.random_orders
    rng = random.Random(f"random-orders|{ro.seed}")
    start = datetime.strptime(_hms(ro.start), "%H:%M:%S")
    events = list(spec.events)
    for n in range(ro.count):
        at = (start + timedelta(seconds=n * ro.every_seconds)).strftime("%H:%M:%S")
        symbol = rng.choice(ro.symbols)
        side = rng.choice(["BUY", "SELL"])
        quantity = rng.randint(1, ro.max_quantity)
        order = OrderEventSpec(id=f"r{n:03d}", symbol=symbol, side=side, quantity=quantity, order_type="MARKET")
        events.append(TimedEvent(at=at, order=order))
    return spec.model_copy(update={"events": events, "random_orders": None})
