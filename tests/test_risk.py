"""The risk workflow under time skipping: a full trading day in seconds, determinism, events."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Bucket, IntentKind, PriceRule, RiskMode
from domain.events import ExposureEvent, TimedEvent
from domain.models import Position
from protocol.contract import (
    QUERY_STATE,
    RISK_WORKFLOW,
    SA_RISK_MODE,
    SCENARIO_WORKFLOW,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_SET_SESSION,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput, RiskResult, RiskView
from scenarios.spec import ScenarioReport
from tests.accounts import open_account
from tests.conftest import TASK_QUEUE

MARK = 500.0  # bid 499.95 / ask 500.05, SOFT sells at 499.99: every price rule is distinguishable


def day_book() -> ExposureEvent:
    # 118% gross of 10,000,000: LT 88% (4 symbols), MM_PURE 30% (3 symbols), all long at $500.
    lt = [Position(symbol=s, bucket=Bucket.LT, quantity=4400) for s in ("AAPL", "MSFT", "XOM", "KO")]
    mm = [Position(symbol=s, bucket=Bucket.MM_PURE, quantity=2000) for s in ("SPY", "QQQ", "XLF")]
    return ExposureEvent(equity=10_000_000, positions=lt + mm, marks={p.symbol: MARK for p in lt + mm})


async def run_day(client, account: str, config, seed: int = 11) -> RiskResult:
    return await client.execute_workflow(
        RISK_WORKFLOW,
        RiskInput(
            account=account,
            config=config,
            seed=seed,
            start_exchange_time="09:30",
            stop_at="16:30",
            synthetic=True,
            timeline=[TimedEvent(at="09:30", exposure=day_book())],
        ),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(TASK_QUEUE),
        result_type=RiskResult,
    )


def at(result: RiskResult, hhmm: str):
    return next(d for d in result.decisions if d.exchange_time == f"{hhmm}:00")


async def test_full_trading_day_time_skipped_and_deterministic(client, worker, config):
    started = time.monotonic()
    first, second = await asyncio.gather(run_day(client, "day-a", config), run_day(client, "day-b", config))
    wall = time.monotonic() - started
    print(f"\ntwo full trading days (09:30 → 16:30, {len(first.decisions)} cycles each) in {wall:.1f}s wall")

    expected = {
        "09:30": ("OPEN_EARLY", RiskMode.NORMAL),
        "09:59": ("OPEN_EARLY", RiskMode.NORMAL),
        "10:00": ("MID", RiskMode.NORMAL),
        "16:14": ("MID", RiskMode.NORMAL),
        "16:15": ("LATE", RiskMode.SOFT_DERISK),
        "16:27": ("LATE", RiskMode.NORMAL),
        "16:28": ("CLOSE", RiskMode.HARD_DERISK),
        "16:30": ("OUTSIDE_SESSION", RiskMode.NORMAL),
    }
    for hhmm, (regime, mode) in expected.items():
        d = at(first, hhmm)
        assert (d.regime, d.mode) == (regime, mode), f"{hhmm}: {d.sentence}"
    assert len(first.decisions) == 421  # one cycle a minute, 09:30 through 16:30

    soft = [r.intent for r in first.intents if r.intent.kind is IntentKind.SOFT_DERISK]
    hard = [r.intent for r in first.intents if r.intent.kind is IntentKind.HARD_DERISK]
    assert soft and all(i.limit_price == 499.99 and i.price_rule is PriceRule.NEAR_TRUTH_TICK for i in soft)
    assert hard and all(i.limit_price == 499.95 and i.price_rule is PriceRule.AT_BID for i in hard)
    assert {r.exchange_time for r in first.intents if r.intent.kind is IntentKind.SOFT_DERISK} == {"16:15:00"}
    assert first.final_exposure.gross_exposure_pct <= 100.0
    assert at(first, "16:29").gross_pct_after <= 100.0  # at or below 100% before the close

    # Same seed and inputs ⇒ same decisions, intents and fills (ids differ only by account).
    def strip(result: RiskResult, account: str):
        return (
            [(d.exchange_time, d.mode, d.reason, round(d.gross_pct, 9), round(d.gross_pct_after or 0, 9)) for d in result.decisions],
            [r.intent.model_dump_json().replace(account, "X") for r in result.intents],
            sorted((k.replace(account, "X"), o.state, o.filled_quantity) for k, o in result.outcomes.items()),
            sorted((p.symbol, p.quantity) for p in result.positions),
        )

    a, b = strip(first, "day-a"), strip(second, "day-b")
    for part, (x, y) in enumerate(zip(a, b)):
        diff = next(((i, u, v) for i, (u, v) in enumerate(zip(x, y)) if u != v), None)
        assert x == y, f"part {part} first differs at {diff}"


async def test_a_wrong_expectation_fails_with_what_was_observed(client, worker):
    spec = {
        "name": "wrong_b",
        "start": "16:16",
        "stop": "16:16",
        "events": [{"at": "16:16", "exposure": {"lt_pct": 85, "mm_pct": 30}}],
        "expect": [{"at": "16:16", "mode": "HARD_DERISK", "intents": "none"}, {"at": "16:16", "regime": "LATE"}],
    }
    report = await client.execute_workflow(SCENARIO_WORKFLOW, spec, id=f"wrong-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport)
    assert not report.passed and len(report.failures) == 2
    assert report.failures[0].startswith("at 16:16 (cycle 1, 16:16:00): expected mode HARD_DERISK, observed SOFT_DERISK")
    assert "OVER_REGIME_TOLERANCE" in report.failures[0]
    assert report.failures[1].startswith("at 16:16 (cycle 1, 16:16:00): expected no intents, observed 1")


async def test_an_invalid_scenario_names_the_problem(client, worker):
    from temporalio.client import WorkflowFailureError

    with pytest.raises(WorkflowFailureError) as info:
        await client.execute_workflow(SCENARIO_WORKFLOW, "no_such_scenario", id=f"bad-{time.time_ns()}", task_queue=TASK_QUEUE)
    assert "unknown scenario 'no_such_scenario'" in str(info.value.cause)


async def test_events_are_validated_and_bad_ones_change_nothing(env, client, worker, config, account):
    handle = await open_account(env, account, config)
    ok = await handle.execute_update(UPDATE_INJECT_EXPOSURE, ExposureEvent(lt_pct=85, mm_pct=30), result_type=str)
    assert "gross 115.00%" in ok
    before = await handle.query(QUERY_STATE, result_type=RiskView)
    bad_events = [
        (ExposureEvent(equity=-5), "equity must be a finite number > 0"),
        (ExposureEvent(positions=[Position(symbol="NOPE", bucket=Bucket.LT, quantity=5)]), "unknown symbol 'NOPE'"),
        (ExposureEvent(lt_pct=50, mm_pct=10, gross_pct=70), "must equal gross_pct"),
        (ExposureEvent(lt_pct=50, mm_pct=10, potential_pct=40), "cannot be below gross"),
        (ExposureEvent(marks={"AAPL": -1.0}), "mark for AAPL must be a finite number > 0"),
    ]
    for event, problem in bad_events:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(UPDATE_INJECT_EXPOSURE, event, result_type=str)
        assert problem in str(info.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "25:99"}, result_type=str)
    after = await handle.query(QUERY_STATE, result_type=RiskView)
    assert after.positions == before.positions and after.exposure.gross_exposure_pct == pytest.approx(115.0)

    moved = await handle.execute_update(UPDATE_SET_SESSION, {"exchange_time": "16:16"}, result_type=str)
    assert "16:16:00" in moved
    for _ in range(100):  # the update wakes the cycle: the new mode follows at once
        view = await handle.query(QUERY_STATE, result_type=RiskView)
        if view.mode is RiskMode.SOFT_DERISK:
            break
        await asyncio.sleep(0.05)
    assert view.mode is RiskMode.SOFT_DERISK and view.regime == "LATE"
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(SA_RISK_MODE) == "SOFT_DERISK"
