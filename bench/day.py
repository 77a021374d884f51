"""A full trading day for an account with 200 positions under time skipping (wall seconds per
simulated hour), and the reaction time from an injected event to the new mode and its started
intents (p50/p99 wall ms), on the embedded server."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from bench.support import embedded_server, percentile
from config.load import load_config
from domain.enums import Bucket, RiskMode
from domain.events import ExposureEvent, TimedEvent
from domain.models import Position
from domain.rules import Instrument, RigConfig, Universe
from worker.main import build_worker
from protocol.contract import QUERY_STATE, RISK_WORKFLOW, UPDATE_INJECT_EXPOSURE, risk_workflow_id
from protocol.messages import RiskInput, RiskResult, RiskView

QUEUE = "bench-day"
POSITIONS = 200
REACTIONS = 20


def wide_config() -> RigConfig:
    """The default rules over a 200-symbol universe (22 groups), so the book has 200 positions."""
    base = load_config()
    groups = base.universe.groups
    instruments = [
        Instrument(symbol=f"B{i:03d}", group=groups[i % len(groups)], bucket=Bucket.LT if i % 4 else Bucket.MM_PURE,
                   lot_size=1, reference_price=100.0)
        for i in range(POSITIONS)
    ]
    return base.model_copy(update={"universe": Universe(groups=groups, instruments=instruments)})


def book(config: RigConfig, gross_pct: float, equity: float = 10_000_000) -> ExposureEvent:
    per = gross_pct / 100 * equity / POSITIONS / 100.0
    return ExposureEvent(
        equity=equity,
        positions=[Position(symbol=i.symbol, bucket=i.bucket, quantity=round(per)) for i in config.universe.instruments],
        marks={i.symbol: 100.0 for i in config.universe.instruments},
    )


async def full_day(client: Client, config: RigConfig) -> float:
    skipping = TimeSkipper(client, config=TimeSkippingConfig(max_session_skip_count=1_000_000)).client
    started = time.perf_counter()
    # 118% gross: NORMAL until LATE, SOFT at 16:15 on 200 positions, HARD at 16:28.
    result: RiskResult = await skipping.execute_workflow(
        RISK_WORKFLOW,
        RiskInput(account="bench-day", config=config, start_exchange_time="09:30", stop_at="16:30", synthetic=True,
                  timeline=[TimedEvent(at="09:30", exposure=book(config, 118))]),
        id=risk_workflow_id("bench-day"), task_queue=QUEUE, result_type=RiskResult,
    )
    wall = time.perf_counter() - started
    assert result.final_exposure is not None and result.final_exposure.gross_exposure_pct <= 100
    print(f"  full day: {len(result.decisions)} cycles, {len(result.intents)} de-risk intents, final gross "
          f"{result.final_exposure.gross_exposure_pct:.2f}%")
    return wall


async def reactions(client: Client, config: RigConfig) -> list[float]:
    """Real-time account (60 s cycles): an injected event wakes the cycle at once."""
    handle = await client.start_workflow(
        RISK_WORKFLOW, RiskInput(account="bench-react", config=config, start_exchange_time="11:00", synthetic=True),
        id=risk_workflow_id("bench-react"), task_queue=QUEUE,
    )
    samples = []
    for n in range(REACTIONS):
        over = n % 2 == 0  # alternate 122% (SOFT in MID, intents) and 90% (NORMAL)
        previous = (await handle.query(QUERY_STATE, result_type=RiskView)).cycle
        started = time.perf_counter()
        await handle.execute_update(UPDATE_INJECT_EXPOSURE, book(config, 122 if over else 90))
        while True:
            view = await handle.query(QUERY_STATE, result_type=RiskView)
            decision = view.last_decision
            if view.cycle > previous and decision and decision.cycle == view.cycle:
                if decision.mode is (RiskMode.SOFT_DERISK if over else RiskMode.NORMAL) and (decision.intents or not over):
                    break
            await asyncio.sleep(0.005)
        samples.append((time.perf_counter() - started) * 1000)
    await handle.terminate("bench over")
    return samples


async def run() -> dict[str, float]:
    config = wide_config()
    async with embedded_server() as client:
        async with build_worker(client, QUEUE):
            print(f"day: an account with {POSITIONS} positions, 09:30 → 16:30 time-skipped")
            wall = await full_day(client, config)
            samples = await reactions(client, config)
    per_hour = wall / 7.0
    print(f"  wall: {wall:.1f}s for 7 simulated hours = {per_hour:.2f} s per simulated hour")
    print(f"  reaction, injected event → new mode with intents started: p50 {percentile(samples, 50):.0f} ms, "
          f"p99 {percentile(samples, 99):.0f} ms ({REACTIONS} events)")
    return {"seconds_per_hour": per_hour, "reaction_p50_ms": percentile(samples, 50), "reaction_p99_ms": percentile(samples, 99)}


if __name__ == "__main__":
    asyncio.run(run())
