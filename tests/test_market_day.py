"""A whole trading day on a generated market with scripted shocks, time-skipped on the real dev
server, twice: the same decisions, intents, fills and digest (market data only ever enters the
account through activity results, and each cycle reads it as of its own cycle time)."""

from __future__ import annotations

import asyncio
import time

from protocol.contract import SCENARIO_WORKFLOW, risk_workflow_id
from protocol.messages import RiskResult
from scenarios.spec import ScenarioReport
from tests.conftest import TASK_QUEUE

DAY = {
    "name": "market_full_day",
    "description": "a generated day with a gap down at 11:00 and a rally at 15:00",
    "seed": 21,
    "start": "09:30",
    "stop": "16:30",
    "rules": {"loss_limits": {"throttle_pct": 1.0, "soft_pct": 3.0, "hard_pct": 8.0}},
    "market": {
        "generate": {
            "seed": 17,
            "shocks": [
                {"at": "11:00", "symbols": "all", "move_pct": -4},
                {"at": "15:00", "symbols": ["AAPL", "MSFT"], "move_pct": 6},
            ],
        }
    },
    "events": [{"at": "09:30", "exposure": {"lt_pct": 80, "mm_pct": 28}}],
    "expect": [{"at": "09:30", "mode": "NORMAL"}, {"at": "16:30", "regime": "OUTSIDE_SESSION"}],
}


async def run_day(client) -> tuple[ScenarioReport, RiskResult, float]:
    started = time.monotonic()
    report = await client.execute_workflow(
        SCENARIO_WORKFLOW, DAY, id=f"market-day-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport
    )
    result = await client.get_workflow_handle(risk_workflow_id(report.account), result_type=RiskResult).result()
    return report, result, time.monotonic() - started


def relative(result: RiskResult) -> tuple:
    account = result.account
    return (
        [(d.cycle, d.exchange_time, d.mode, d.reason, round(d.gross_pct, 9), tuple(d.skipped)) for d in result.decisions],
        [r.intent.model_dump_json().replace(account, "X") for r in result.intents],
        sorted((f.fill_id.replace(account, "X"), f.quantity, f.price) for f in result.fills),
        sorted((p.symbol, p.quantity) for p in result.positions),
    )


async def test_a_generated_market_day_runs_the_same_twice(client, worker):
    (first, day1, wall1), (second, day2, wall2) = await asyncio.gather(run_day(client), run_day(client))
    print(f"\nmarket day: {len(day1.decisions)} cycles, {len(day1.intents)} intents, {len(day1.fills)} fills; {wall1:.1f}s and {wall2:.1f}s wall")
    assert first.passed and second.passed, first.failures + second.failures
    assert len(day1.decisions) == 421 and day1.intents and day1.fills, "the shocks made the day trade"
    assert {d.mode.value for d in day1.decisions} > {"NORMAL"}, "the shocks moved the mode"
    assert day1.price_path and all(len(p) > 100 for p in day1.price_path.values()), "prices moved every cycle"
    assert relative(day1) == relative(day2)
    assert first.digest == second.digest == day1.digest
