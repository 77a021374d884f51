"""Check a scenario's expectations against what the risk workflow observed. Pure: the scenario
workflow calls it, and so can a test on a recorded result."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from domain.enums import OrderState
from domain.events import OrderEventSpec, TimedEvent
from protocol.messages import DecisionRecord, IntentRecord, RiskResult
from scenarios.spec import AnswerExpectation, Expectation, IntentExpectation, OrderExpectation, ScenarioReport, ScenarioSpec


def _hms(text: str) -> str:
    return text if text.count(":") == 2 else f"{text}:00"


def _decisions(result: RiskResult, exp: Expectation) -> list[DecisionRecord]:
    """The cycle at exactly `at`, or every cycle from `from` to `by` inclusive."""
    if exp.at is not None:
        return [d for d in result.decisions if d.exchange_time == _hms(exp.at)][:1]
    assert exp.from_ is not None and exp.by is not None
    return [d for d in result.decisions if _hms(exp.from_) <= d.exchange_time <= _hms(exp.by)]


def _check_intents(expected: IntentExpectation | str, intents: list[IntentRecord], where: str) -> list[str]:
    if expected == "none":
        return [] if not intents else [f"{where}: expected no intents, observed {len(intents)}: {[r.intent.summary() for r in intents]}"]
    assert isinstance(expected, IntentExpectation)
    failures = []
    if expected.count is None and expected.min_count is None and not intents:
        failures.append(f"{where}: expected intents, observed none")
    if expected.count is not None and len(intents) != expected.count:
        failures.append(f"{where}: expected {expected.count} intents, observed {len(intents)}")
    if expected.min_count is not None and len(intents) < expected.min_count:
        failures.append(f"{where}: expected at least {expected.min_count} intents, observed {len(intents)}")
    for symbol in expected.symbols:
        if not any(r.intent.symbol == symbol for r in intents):
            failures.append(f"{where}: expected an intent on {symbol}, observed {sorted({r.intent.symbol for r in intents})}")
    for record in intents:
        i = record.intent
        for field in ("side", "order_type", "price_rule", "kind"):
            want = getattr(expected, field)
            if want is not None and getattr(i, field) is not want:
                failures.append(f"{where}: intent {i.intent_id} {field} expected {want.value}, observed {getattr(i, field).value}")
    return failures


def _check(exp: Expectation, result: RiskResult, account: str) -> list[str]:
    failures: list[str] = []
    if exp.at is not None or exp.from_ is not None:
        failures += _check_decisions(exp, result)
    if exp.order is not None:
        failures += _check_order(exp.order, result, account)
    for action, expected in (("cancel", exp.cancel), ("replace", exp.replace)):
        if expected is not None:
            failures += _check_answer(action, expected, result, account)
    if exp.desk_orders is not None:
        failures += _check_desk_orders(exp, result, account)
    if exp.final_gross_max_pct is not None:
        final = result.final_exposure.gross_exposure_pct if result.final_exposure else None
        if final is None or final > exp.final_gross_max_pct + 1e-9:
            failures.append(f"final gross expected ≤ {exp.final_gross_max_pct}%, observed {final if final is None else round(final, 4)}%")
    if exp.gross_always_below_pct is not None:
        peak = max((max(d.gross_pct, d.gross_pct_after) for d in result.decisions), default=None)
        if peak is None or peak >= exp.gross_always_below_pct:
            failures.append(f"gross expected always below {exp.gross_always_below_pct}%, peaked at {peak if peak is None else round(peak, 4)}%")
    return failures


def _check_decisions(exp: Expectation, result: RiskResult) -> list[str]:
    decisions = _decisions(result, exp)
    window = f"at {exp.at}" if exp.at is not None else f"from {exp.from_} by {exp.by}"
    if not decisions:
        return [f"{window}: no cycle ran at that time" if exp.at else f"{window}: no cycle ran in that window"]
    failures: list[str] = []
    for decision in decisions:
        where = f"{window} (cycle {decision.cycle}, {decision.exchange_time})"
        if exp.regime is not None and decision.regime != exp.regime:
            failures.append(f"{where}: expected regime {exp.regime}, observed {decision.regime}")
        if exp.mode is not None and decision.mode is not exp.mode:
            failures.append(f"{where}: expected mode {exp.mode.value}, observed {decision.mode.value} — {decision.sentence}")
        if exp.reason is not None and decision.reason != exp.reason.value:
            failures.append(f"{where}: expected reason {exp.reason.value}, observed {decision.reason}")
        if exp.intents is not None:
            issued = [r for r in result.intents if r.cycle == decision.cycle]
            failures += _check_intents(exp.intents, issued, where)
        for symbol in exp.skipped:
            if not any(s.startswith(f"{symbol}: STALE_DATA") for s in decision.skipped):
                failures.append(f"{where}: expected de-risk of {symbol} skipped for STALE_DATA, observed skipped {decision.skipped}")
    return failures


def _check_order(expected: OrderExpectation, result: RiskResult, account: str) -> list[str]:
    outcome = result.outcomes.get(f"{account}-{expected.id}")
    where = f"order {expected.id}"
    if outcome is None:
        return [f"{where}: no final state observed (never started, or still open)"]
    failures = []
    if expected.state is not None and outcome.lost_cause:  # a LOST order has no venue outcome: no state matches it
        failures.append(f"{where}: expected state {expected.state.value}, observed LOST ({outcome.lost_cause})")
    for field in ("state", "reject_reason", "cancel_reason"):
        want, got = getattr(expected, field), getattr(outcome, field)
        if want is not None and got is not want:
            failures.append(f"{where}: expected {field} {want.value}, observed {got.value if got else None}")
    if expected.filled_min is not None and outcome.filled_quantity < expected.filled_min:
        failures.append(f"{where}: expected at least {expected.filled_min} filled, observed {outcome.filled_quantity}")
    if expected.filled_max is not None and outcome.filled_quantity > expected.filled_max:
        failures.append(f"{where}: expected at most {expected.filled_max} filled, observed {outcome.filled_quantity}")
    if expected.first_fill_from is not None:
        early = [f for f in result.fills if f.intent_id == outcome.intent_id and f.exchange_time < _hms(expected.first_fill_from)]
        if early:
            failures.append(f"{where}: expected no fill before {expected.first_fill_from}, observed {early[0].quantity} at {early[0].exchange_time}")
    if expected.lost is not None and bool(outcome.lost_cause) is not expected.lost:
        failures.append(f"{where}: expected {'LOST' if expected.lost else 'not LOST'}, observed {outcome.label} {outcome.lost_cause or ''}".rstrip())
    return failures


def _check_answer(action: str, expected: AnswerExpectation, result: RiskResult, account: str) -> list[str]:
    intent_id = f"{account}-{expected.id}"
    answer = next((a for a in result.answers if a.action == action and a.intent_id == intent_id), None)
    where = f"{action} of {expected.id}"
    if answer is None:
        return [f"{where}: no answer observed"]
    failures = []
    if expected.accepted is not None and answer.accepted is not expected.accepted:
        failures.append(
            f"{where}: expected {'accepted' if expected.accepted else 'refused'}, observed "
            f"{'accepted' if answer.accepted else 'refused'}: {answer.message}"
        )
    for field in ("refusal", "reject_reason", "state"):
        want, got = getattr(expected, field), getattr(answer, field)
        if want is not None and got is not want:
            failures.append(f"{where}: expected {field} {want.value}, observed {got.value if got else None}: {answer.message}")
    if expected.new_id is not None and answer.new_intent_id != f"{account}-{expected.new_id}":
        failures.append(f"{where}: expected the replacement {expected.new_id}, observed {answer.new_intent_id}")
    return failures


def _check_desk_orders(exp: Expectation, result: RiskResult, account: str) -> list[str]:
    assert exp.desk_orders is not None
    desk = [o for o in result.outcomes.values() if not o.kind.is_derisk]
    filled = sum(1 for o in desk if o.filled_quantity > 0)
    rejected = sum(1 for o in desk if o.state is OrderState.REJECTED)
    failures = []
    if exp.desk_orders.filled_min is not None and filled < exp.desk_orders.filled_min:
        failures.append(f"desk orders: expected at least {exp.desk_orders.filled_min} with fills, observed {filled} of {len(desk)}")
    if exp.desk_orders.rejected_min is not None and rejected < exp.desk_orders.rejected_min:
        failures.append(f"desk orders: expected at least {exp.desk_orders.rejected_min} refused, observed {rejected} of {len(desk)}")
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
        checks=sum(exp.comparisons() for exp in spec.expect),
        modes=[_describe(d) for i, d in enumerate(result.decisions) if i == 0 or d.intents or d.mode is not result.decisions[i - 1].mode],
        intents=[f"{r.exchange_time} {r.intent.intent_id}: {r.intent.summary()} [{r.intent.price_rule.value}]" for r in result.intents],
        orders=[
            f"{o.intent_id}: {o.label} {o.filled_quantity}/{o.quantity}"
            + (f" {o.reject_reason.value}" if o.reject_reason else "")
            + (f" {o.cancel_reason.value}" if o.cancel_reason else "")
            + (f" ({o.lost_cause})" if o.lost_cause else "")
            for o in result.outcomes.values()
        ],
        final_gross_pct=result.final_exposure.gross_exposure_pct if result.final_exposure else None,
        order_workflow_ids=list(result.outcomes),
        digest=result.digest,
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
