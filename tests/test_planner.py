from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Bucket, IntentKind, PriceRule, Regime, RiskMode, Side
from domain.exposure import compute_exposure
from domain.models import OpenOrder, Position
from domain.planner import plan_derisk
from domain.policy import decide, decision_input
from tests.builders import CONFIG, EQUITY, exposure_of, lt_mm_positions, marks_for, quotes_for

RULES = CONFIG.rules
MINUTES = {Regime.MID: 200.0, Regime.LATE: 14.0, Regime.CLOSE: 2.0, Regime.OPEN_EARLY: 410.0}


def plan(positions, regime, orders=(), hard_base=None, cycle=1):
    orders = list(orders)
    marks = marks_for(positions, orders)
    exposure = compute_exposure(EQUITY, positions, orders, marks, CONFIG)
    decision = decide(decision_input(exposure, regime, MINUTES[regime]), RULES)
    intents = plan_derisk(
        account="acct", cycle=cycle, decision=decision, exposure=exposure, positions=positions,
        open_orders=orders, quotes=quotes_for(marks), config=CONFIG, hard_base=hard_base,
    )
    return decision, exposure, intents


def apply(positions, intents):
    by_key = {p.key: p.quantity for p in positions}
    for i in intents:
        by_key[i.key] = by_key.get(i.key, 0) + i.quantity * i.side.sign
    return [Position(symbol=s, bucket=b, quantity=q) for (s, b), q in by_key.items()]


def test_scenario_a_plans_nothing():
    decision, _, intents = plan(lt_mm_positions(90, 30), Regime.OPEN_EARLY)
    assert decision.mode is RiskMode.NORMAL and intents == []


def test_scenario_b_soft_limits_near_truth_tick():
    positions = lt_mm_positions(88, 27)  # gross 115 at 16:16
    decision, exposure, intents = plan(positions, Regime.LATE)
    assert decision.mode is RiskMode.SOFT_DERISK
    assert intents and all(i.kind is IntentKind.SOFT_DERISK and i.side is Side.SELL for i in intents)
    assert all(i.limit_price == 99.99 and i.price_rule is PriceRule.NEAR_TRUTH_TICK for i in intents)
    # Sized to tolerance 115 − buffer 2 = 113%: 2% of 1,000,000 = 20,000 = 200 shares at $100.
    assert sum(i.quantity for i in intents) == 200
    # Largest notional first: AAPL and MSFT hold 44% each; ties break by symbol.
    assert intents[0].symbol == "AAPL"


def test_scenario_c_hard_at_bid_in_chunks():
    positions = lt_mm_positions(85, 25)  # 110% at 16:28
    decision, _, intents = plan(positions, Regime.CLOSE)
    assert decision.mode is RiskMode.HARD_DERISK
    assert all(i.price_rule is PriceRule.AT_BID and i.limit_price == 99.98 for i in intents)
    by_symbol = {p.symbol: p.quantity for p in positions}
    for i in intents:  # at most 10% of the position, lot-rounded up
        assert i.quantity <= -(-by_symbol[i.symbol] // 10)
    # 110 → 98 needs 120,000 but one step is capped at 10% of each position: AAPL, MSFT 425 each,
    # then the 1250-share tie QQQ/SPY (by symbol) 125 each — 110,000, the rest comes next cycle.
    assert [(i.symbol, i.quantity) for i in intents] == [("AAPL", 425), ("MSFT", 425), ("QQQ", 125), ("SPY", 125)]


def test_short_positions_buy_at_ask_and_never_flip():
    positions = [Position(symbol="AAPL", bucket=Bucket.LT, quantity=-12_000)]  # 120% short
    decision, _, intents = plan(positions, Regime.CLOSE)
    assert decision.mode is RiskMode.HARD_DERISK
    assert [(i.side, i.quantity, i.limit_price, i.price_rule) for i in intents] == [(Side.BUY, 1200, 100.02, PriceRule.AT_ASK)]


def test_open_reduce_only_orders_are_not_stacked():
    positions = lt_mm_positions(88, 27)
    _, _, first = plan(positions, Regime.LATE)
    working = [
        OpenOrder(intent_id=i.intent_id, symbol=i.symbol, bucket=i.bucket, side=i.side, remaining=i.quantity,
                  kind=i.kind, reduce_only=True, limit_price=i.limit_price)
        for i in first
    ]
    _, _, again = plan(positions, Regime.LATE, orders=working, cycle=2)
    assert again == []


def test_bucket_breach_reduces_that_bucket_to_its_max():
    positions = lt_mm_positions(60, 35)  # MM 35% > 30% max, gross 95 < 120
    decision, _, intents = plan(positions, Regime.MID)
    assert decision.reason.value == "BUCKET_OVER_MAX"
    assert {i.bucket for i in intents} == {Bucket.MM_PURE}
    assert sum(i.quantity for i in intents) * 100 == 50_000  # 5% of equity


def test_intent_ids_are_deterministic():
    positions = lt_mm_positions(88, 27)
    assert plan(positions, Regime.LATE)[2] == plan(positions, Regime.LATE)[2]
    assert plan(positions, Regime.LATE)[2][0].intent_id == "acct-c000001-S-AAPL-LT"


symbols = st.sampled_from(["AAPL", "MSFT", "SPY", "QQQ", "XOM", "KO", "JPM"])
position_lists = st.lists(
    st.tuples(symbols, st.sampled_from(list(Bucket)), st.integers(-4000, 4000).filter(lambda q: q != 0)),
    min_size=1, max_size=8, unique_by=lambda t: (t[0], t[1]),
).map(lambda rows: [Position(symbol=s, bucket=b, quantity=q) for s, b, q in rows])


@settings(max_examples=150, deadline=None)
@given(positions=position_lists, regime=st.sampled_from([Regime.MID, Regime.LATE, Regime.CLOSE]))
def test_planned_intents_never_increase_gross_or_flip_a_sign(positions, regime):
    decision, exposure, intents = plan(positions, regime)
    after = apply(positions, intents)
    before_q = {p.key: p.quantity for p in positions}
    for p in after:
        q0 = before_q[p.key]
        assert abs(p.quantity) <= abs(q0) and (p.quantity == 0 or (p.quantity > 0) == (q0 > 0))
    assert exposure_of(after).gross <= exposure.gross + 1e-6
    assert len({i.intent_id for i in intents}) == len(intents)


@settings(max_examples=100, deadline=None)
@given(positions=position_lists)
def test_repeated_hard_steps_with_certain_fills_reach_target_within_ceil_one_over_chunk(positions):
    regime = Regime.CLOSE
    target = (RULES.regimes[regime].gross_tolerance_pct - RULES.derisk.buffer_pct) / 100 * EQUITY
    hard_base = {p.key: abs(p.quantity) for p in positions}  # as the position stood when HARD began
    max_steps = -(-1 // RULES.derisk.hard_chunk_fraction)  # ⌈1/chunk⌉
    current = positions
    for _ in range(int(max_steps)):
        exposure = exposure_of(current)
        if exposure.gross <= target + 1e-6 or decide(decision_input(exposure, regime, 2.0), RULES).mode is not RiskMode.HARD_DERISK:
            break
        _, _, intents = plan(current, regime, hard_base=hard_base)
        assert intents, "HARD over target must plan something"
        current = apply(current, intents)  # certain fills
    final = exposure_of(current)
    assert final.gross <= max(target, 0) + 1e-6 or decide(decision_input(final, regime, 2.0), RULES).mode is not RiskMode.HARD_DERISK
