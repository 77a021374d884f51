"""Check a scenario's expectations against what the risk workflow observed. Pure: the scenario
workflow calls it, and so can a test on a recorded result."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from domain.days import DayRecord
from domain.enums import OrderState
from domain.events import OrderEventSpec, TimedEvent
from domain.pnl import PnlTotals
from protocol.messages import DecisionRecord, IntentRecord, RiskResult
from scenarios.spec import AnswerExpectation, Expectation, IntentExpectation, OrderExpectation, PnlExpectation, ScenarioReport, ScenarioSpec


def _hms(text: str) -> str:
    return text if text.count(":") == 2 else f"{text}:00"


def day_decisions(result: RiskResult, day: str | None, last_day: str | None) -> list[DecisionRecord]:
    """The decision log of one date (a multi-day run), or of the run (`day` None). The last day's
    is the account's current log unless its close already rolled it into the day logs."""
    if day is None:
        return result.decisions
    logs = {log.date: log.decisions for log in result.day_logs}
    if day in logs:
        return _rows(logs[day], result.cycle_seconds)
    return result.decisions if day == last_day else []


def _rows(records: list[DecisionRecord], cycle_seconds: int) -> list[DecisionRecord]:
    """A stored log as one row per cycle time: a quiet stretch's repeats decided as its record did."""
    rows = []
    for record in records:
        rows.append(record.model_copy(update={"repeats": 0}) if record.repeats else record)
        base = datetime.strptime(record.exchange_time, "%H:%M:%S")
        for i in range(1, record.repeats + 1):
            at = (base + timedelta(seconds=i * cycle_seconds)).strftime("%H:%M:%S")
            rows.append(record.model_copy(update={"cycle": record.cycle + i, "exchange_time": at, "intents": [], "skipped": [], "repeats": 0}))
    return rows


def all_decisions(result: RiskResult) -> list[tuple[str | None, DecisionRecord]]:
    """Every decision kept, with its date when the run had days (the closed days first)."""
    return [(log.date, d) for log in result.day_logs for d in _rows(log.decisions, result.cycle_seconds)] + [(None, d) for d in result.decisions]


def _decisions(result: RiskResult, exp: Expectation, last_day: str | None = None) -> list[DecisionRecord]:
    """The cycle at exactly `at`, or every cycle from `from` to `by` inclusive (on its date)."""
    decisions = day_decisions(result, exp.date, last_day)
    if exp.at is not None:
        return [d for d in decisions if d.exchange_time == _hms(exp.at)][:1]
    assert exp.from_ is not None and exp.by is not None
    return [d for d in decisions if _hms(exp.from_) <= d.exchange_time <= _hms(exp.by)]


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


def _check(exp: Expectation, result: RiskResult, account: str, last_day: str | None = None) -> list[str]:
    failures: list[str] = []
    if exp.at is not None or exp.from_ is not None:
        failures += _check_decisions(exp, result, last_day)
    if exp.date is not None:
        failures += _check_day(exp, result, last_day)
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
        peak = max((max(d.gross_pct, d.gross_pct_after) for _, d in all_decisions(result)), default=None)
        if peak is None or peak >= exp.gross_always_below_pct:
            failures.append(f"gross expected always below {exp.gross_always_below_pct}%, peaked at {peak if peak is None else round(peak, 4)}%")
    return failures


def _check_decisions(exp: Expectation, result: RiskResult, last_day: str | None = None) -> list[str]:
    decisions = _decisions(result, exp, last_day)
    window = (f"{exp.date} " if exp.date else "") + (f"at {exp.at}" if exp.at is not None else f"from {exp.from_} by {exp.by}")
    if not decisions:
        return [f"{window}: no cycle ran at that time" if exp.at else f"{window}: no cycle ran in that window"]
    failures: list[str] = []
    for decision in decisions:
        where = f"{window} (cycle {decision.cycle}, {decision.exchange_time})"
        if exp.regime is not None and decision.regime != exp.regime:
            failures.append(f"{where}: expected regime {exp.regime}, observed {decision.regime.value}")
        if exp.mode is not None and decision.mode is not exp.mode:
            failures.append(f"{where}: expected mode {exp.mode.value}, observed {decision.mode.value} — {decision.sentence}")
        if exp.reason is not None and decision.reason != exp.reason.value:
            failures.append(f"{where}: expected reason {exp.reason.value}, observed {decision.reason.value}")
        if exp.intents is not None:
            issued = [r for r in result.intents if r.cycle == decision.cycle]
            failures += _check_intents(exp.intents, issued, where)
        for symbol in exp.skipped:
            if not any(s.startswith(f"{symbol}: STALE_DATA") for s in decision.skipped):
                failures.append(f"{where}: expected de-risk of {symbol} skipped for STALE_DATA, observed skipped {decision.skipped}")
        for refusal in exp.refused:
            if not any(s.startswith(f"{refusal}:") for s in decision.skipped):
                failures.append(f"{where}: expected a rig order refused {refusal}, observed skipped {decision.skipped}")
        if exp.pnl is not None:
            failures += _check_pnl(exp.pnl, decision.pnl, where)
    return failures


def _check_pnl(expected: PnlExpectation, observed: PnlTotals | None, where: str) -> list[str]:
    if observed is None:
        return [f"{where}: expected P&L, observed none"]
    failures = []
    for field, bound in (("daily_min", "≥"), ("daily_max", "≤"), ("realized_min", "≥"), ("realized_max", "≤"), ("costs_min", "≥")):
        want = getattr(expected, field)
        got = getattr(observed, field.rsplit("_", 1)[0])
        if want is not None and not (got >= want - 1e-6 if bound == "≥" else got <= want + 1e-6):
            failures.append(f"{where}: expected {field.rsplit('_', 1)[0]} P&L {bound} {want:,.2f}, observed {got:,.2f}")
    return failures


def _check_day(exp: Expectation, result: RiskResult, last_day: str | None) -> list[str]:
    """A day's own checks: its session, cycles, P&L at the close, BOD, and what its close left."""
    assert exp.date is not None
    where = f"day {exp.date}"
    record = next((d for d in result.days if d.date == exp.date), None)
    failures: list[str] = []
    if exp.cycles is not None:
        observed = record.tally.cycles if record else sum(1 + d.repeats for d in day_decisions(result, exp.date, last_day))
        if observed != exp.cycles:
            failures.append(f"{where}: expected {exp.cycles} cycles, observed {observed}")
    closing = [f for f in ("session", "trading_state", "expired") if getattr(exp, f) is not None] + (["pnl"] if exp.pnl and exp.at is None else [])
    if closing and record is None:
        return [
            *failures,
            f"{where}: expected its close ({', '.join(closing)}), observed no roll that day (closed days: {[d.date for d in result.days]})",
        ]
    if record is not None:
        failures += _check_close(exp, record, where)
    if exp.bod:
        failures += _check_bod(exp, result, where)
    return failures


def _check_close(exp: Expectation, record: DayRecord, where: str) -> list[str]:
    failures = []
    if exp.session is not None:
        for field in ("open", "close", "early_close"):
            want, got = getattr(exp.session, field), getattr(record, field)
            if want is not None and (got != want[:5] if isinstance(want, str) else got is not want):
                failures.append(f"{where}: expected session {field} {want}, observed {got}")
    if exp.trading_state is not None and record.trading_state is not exp.trading_state:
        failures.append(f"{where}: expected trading state {exp.trading_state.value} at the close, observed {record.trading_state.value}")
    if exp.expired is not None and record.expired != exp.expired:
        failures.append(f"{where}: expected {exp.expired} DAY orders expired at the close, observed {record.expired}")
    if exp.pnl is not None and exp.at is None:
        failures += _check_pnl(exp.pnl, record.pnl, f"{where} at its close ({record.close})")
    return failures


def _check_bod(exp: Expectation, result: RiskResult, where: str) -> list[str]:
    """The day's beginning-of-day book: the closing positions of the session before, at its marks."""
    assert exp.date is not None
    before = [d for d in result.days if d.date < exp.date]
    if not before or (not before[-1].bod_next and before[-1].positions):
        return [f"{where}: expected a BOD from the previous close, observed none kept (closed days: {[d.date for d in result.days]})"]
    rows = {(b.symbol, b.bucket): b for b in before[-1].bod_next}
    failures = []
    for want in exp.bod:
        got = rows.get((want.symbol, want.bucket))
        label = f"{where}: BOD {want.symbol}/{want.bucket.value}"
        if got is None:
            if want.quantity not in (None, 0):
                failures.append(f"{label}: expected {want.quantity}, observed no position")
            continue
        if want.quantity is not None and got.quantity != want.quantity:
            failures.append(f"{label}: expected quantity {want.quantity}, observed {got.quantity}")
        if want.mark is not None and (got.mark is None or abs(got.mark - want.mark) > 1e-6):
            failures.append(f"{label}: expected mark {want.mark}, observed {got.mark}")
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
        failures += _check(exp, result, result.account, spec.stop_date or spec.date)
    return ScenarioReport(
        name=spec.name,
        account=result.account,
        passed=not failures,
        failures=failures,
        checks=sum(exp.comparisons() for exp in spec.expect),
        modes=_modes(result),
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


def _modes(result: RiskResult) -> list[str]:
    """The decisions where something changed (the first of each day, a new mode, intents), and each roll."""
    lines: list[str] = []
    previous: tuple[str | None, DecisionRecord] | None = None
    for day, d in all_decisions(result):
        if previous is None or d.intents or d.mode is not previous[1].mode or day != previous[0]:
            lines.append(_describe(d, day))
        previous = (day, d)
    for record in result.days:
        lines.append(f"{record.date} {record.close} roll: daily P&L {record.pnl.daily:,.2f}, {record.positions} positions, {record.expired} expired")
    return lines


def _describe(d: DecisionRecord, day: str | None = None) -> str:
    return (
        f"{day} " if day else ""
    ) + f"{d.exchange_time} {d.regime.value} {d.mode.value} {d.reason.value} gross {d.gross_pct:.2f}% → {d.gross_pct_after:.2f}%"


def expand_random_orders(spec: ScenarioSpec) -> ScenarioSpec:
    """Seeded random desk orders (MARKET, so any symbol's price passes the venue's collar)
    → explicit order events, the same for the same seed; with `days`, a block on each of the
    scenario's first sessions (`d<N>r<n>`, each day its own draw)."""
    if spec.random_orders is None:
        return spec
    ro = spec.random_orders
    start = datetime.strptime(_hms(ro.start), "%H:%M:%S")
    events = list(spec.events)
    for day in range(1, (ro.days or 1) + 1):
        rng = random.Random(f"random-orders|{ro.seed}" + (f"|day {day}" if ro.days else ""))
        for n in range(ro.count):
            at = (start + timedelta(seconds=n * ro.every_seconds)).strftime("%H:%M:%S")
            symbol = rng.choice(ro.symbols)
            side = rng.choice(["BUY", "SELL"])
            quantity = rng.randint(1, ro.max_quantity)
            name = f"d{day}r{n:03d}" if ro.days else f"r{n:03d}"
            order = OrderEventSpec(id=name, symbol=symbol, side=side, quantity=quantity, order_type="MARKET")
            events.append(TimedEvent(at=at, order=order, day=day if ro.days else None))
    return spec.model_copy(update={"events": events, "random_orders": None})
