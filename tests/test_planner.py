import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Bucket, IntentKind, PriceRule, Regime, RiskMode, Side
from domain.exposure import compute_exposure
from domain.models import OpenOrder, Position
from domain.planner import plan_derisk
from domain.policy import decide, decision_input
from tests.builders import (
    CONFIG,
    EQUITY,
    exposure_of,
    lt_mm_positions,
    marks_for,
    quotes_for,
)

RULES = CONFIG.rules
MINUTES = {Regime.MID: 200.0, Regime.LATE: 14.0, Regime.CLOSE: 2.0, Regime.OPEN_EARLY: 410.0}


def plan(positions, regime, orders=(), hard_base=None, cycle=1):
    orders = list(orders)
    marks = marks_for(positions, orders)
    exposure = compute_exposure(EQUITY, positions, orders, marks, CONFIG)
    decision = decide(decision_input(exposure, regime, MINUTES[regime]), RULES)
    intents = plan_derisk(
        account="acct",
        cycle=cycle,
        decision=decision,
        exposure=exposure,
        positions=positions,
        open_orders=orders,
        quotes=quotes_for(marks),
        config=CONFIG,
        hard_base=hard_base,
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
    decision, _exposure, intents = plan(positions, Regime.LATE)
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
        OpenOrder(
            intent_id=i.intent_id,
            symbol=i.symbol,
            bucket=i.bucket,
            side=i.side,
            remaining=i.quantity,
            kind=i.kind,
            reduce_only=True,
            limit_price=i.limit_price,
        )
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
    min_size=1,
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
).map(lambda rows: [Position(symbol=s, bucket=b, quantity=q) for s, b, q in rows])


@settings(max_examples=150)
@given(positions=position_lists, regime=st.sampled_from([Regime.MID, Regime.LATE, Regime.CLOSE]))
def test_planned_intents_never_increase_gross_or_flip_a_sign(positions, regime):
    _decision, exposure, intents = plan(positions, regime)
    after = apply(positions, intents)
    before_q = {p.key: p.quantity for p in positions}
    for p in after:
        q0 = before_q[p.key]
        assert abs(p.quantity) <= abs(q0) and (p.quantity == 0 or (p.quantity > 0) == (q0 > 0))
    assert exposure_of(after).gross <= exposure.gross + 1e-6
    assert len({i.intent_id for i in intents}) == len(intents)


@settings(max_examples=100)
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


# ── issue 11: de-risk against the desk's working orders ──────────────────────────────────────
def desk_sell(intent_id, symbol, bucket, remaining, *, reduce_only=False, limit_price=100.0):
    return OpenOrder(
        intent_id=intent_id,
        symbol=symbol,
        bucket=bucket,
        side=Side.SELL,
        remaining=remaining,
        kind=IntentKind.NEW,
        reduce_only=reduce_only,
        limit_price=limit_price,
    )


@settings(max_examples=100)
@given(working=st.integers(0, 9000), reduce_only=st.booleans(), regime=st.sampled_from([Regime.CLOSE, Regime.LATE]))
def test_a_derisk_intent_plus_a_working_desk_sell_never_flips(working, reduce_only, regime):
    positions = lt_mm_positions(88, 27)  # 115%: HARD at 16:28, SOFT at 16:16; AAPL long 4,400
    desk = [desk_sell("acct-d1", "AAPL", Bucket.LT, working, reduce_only=reduce_only)]
    decision, _, intents = plan(positions, regime, orders=desk)
    assert decision.mode in (RiskMode.HARD_DERISK, RiskMode.SOFT_DERISK)
    assert all(i.side is Side.SELL and i.reduce_only for i in intents)
    held = {p.key: p.quantity for p in positions}
    for intent in intents:  # the intent and every order working on its side, all filled: never past zero
        selling = sum(o.remaining for o in desk if o.key == intent.key and o.side is Side.SELL) + intent.quantity
        assert selling <= held[intent.key], f"{intent.summary()} with {working} working against long {held[intent.key]}"


def test_a_hard_chunk_is_cut_to_what_a_working_desk_sell_leaves():
    positions = lt_mm_positions(85, 25)  # AAPL 4,250: a HARD chunk is 425
    decision, _, alone = plan(positions, Regime.CLOSE)
    assert decision.mode is RiskMode.HARD_DERISK and ("AAPL", 425) in [(i.symbol, i.quantity) for i in alone]
    _, _, beside = plan(positions, Regime.CLOSE, orders=[desk_sell("acct-d1", "AAPL", Bucket.LT, 4_000)])
    aapl = [i for i in beside if i.symbol == "AAPL"]
    assert [i.quantity for i in aapl] == [250]  # 4,250 − 4,000 working: the chunk plus the desk SELL end flat at worst
    _, _, none_left = plan(positions, Regime.CLOSE, orders=[desk_sell("acct-d1", "AAPL", Bucket.LT, 4_250)])
    assert all(i.symbol != "AAPL" for i in none_left)


@pytest.mark.parametrize("regime", [Regime.CLOSE, Regime.LATE])
def test_a_desk_reduce_only_order_far_from_the_market_is_not_coverage(regime):
    positions = lt_mm_positions(88, 27)  # 115%: SOFT at 16:16 (sized 200 shares), HARD at 16:28
    _decision, _, alone = plan(positions, regime)
    assert alone
    # The desk rests a reduce-only SELL for half of AAPL 9% above the market: it is not the
    # cycle's, so the cycle plans exactly what it would without it.
    resting = desk_sell("acct-d1", "AAPL", Bucket.LT, 2_200, reduce_only=True, limit_price=109.0)
    _, _, beside = plan(positions, regime, orders=[resting])
    assert beside == alone
    # The same order as the risk cycle's own de-risk intent is coverage: nothing is stacked on it.
    own = resting.model_copy(update={"intent_id": "acct-c000001-H-AAPL-LT", "kind": IntentKind.HARD_DERISK})
    _, _, covered = plan(positions, regime, orders=[own])
    assert sum(i.quantity for i in covered) < sum(i.quantity for i in alone)
