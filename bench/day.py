"""A full trading day for an account with N positions under time skipping (wall seconds), where
its time goes (read from the account's histories), and the reaction time from an injected event
to the new mode with its intents started (p50/p99 wall ms), on the embedded server.

The day: 118% gross over N equal longs at $100 — NORMAL (quiet, slept through) until LATE, SOFT
at 16:15 (a few de-risk orders), HARD at 16:28 (a 10% chunk of every position each cycle: N
orders per cycle), ≤ 100% at the close.

The reaction is read from the account's history, not by polling a query (a query every few ms
would load the very worker it measures): from the client's update call to the completion of
the workflow task that applied the started intents (SOFT, 122%) or set the new mode (NORMAL, 90%).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import date
from typing import NamedTuple

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig
from temporalio.worker import Worker

from bench.support import (
    AIMS,
    BEFORE,
    account_runs,
    embedded_server,
    event_name,
    event_time,
    figure,
    history,
    percentile,
    upserted,
)
from bench.workflows import CycleTimers
from config.load import load_config
from domain.enums import Bucket
from domain.events import ExposureEvent, OrderEventSpec, TimedEvent
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay
from domain.models import Position
from domain.rules import Instrument, RigConfig, Universe
from protocol.contract import (
    RISK_WORKFLOW,
    UPDATE_INJECT_EXPOSURE,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput, RiskResult
from worker.connection import exit_now
from worker.main import build_worker

QUEUE = "bench-day"
POSITIONS = 200
REACTIONS = 20
EQUITY = 10_000_000
MARKET_DATE = date(2024, 6, 3)


def wide_config(positions: int) -> RigConfig:
    """The default rules over an N-symbol universe (22 groups), so the book has N positions."""
    base = load_config()
    groups = base.universe.groups
    instruments = [
        Instrument(
            symbol=f"B{i:04d}", group=groups[i % len(groups)], bucket=Bucket.LT if i % 4 else Bucket.MM_PURE, lot_size=1, reference_price=100.0
        )
        for i in range(positions)
    ]
    return base.model_copy(update={"universe": Universe(groups=groups, instruments=instruments)})


def book(config: RigConfig, gross_pct: float, equity: float = EQUITY, at_reference: bool = False) -> ExposureEvent:
    """Equal notional in every instrument, marked at $100 (or at each one's reference price)."""
    instruments = config.universe.instruments
    per = gross_pct / 100 * equity / len(instruments)
    prices = {i.symbol: i.reference_price if at_reference else 100.0 for i in instruments}
    return ExposureEvent(
        equity=equity,
        positions=[Position(symbol=i.symbol, bucket=i.bucket, quantity=round(per / prices[i.symbol])) for i in instruments],
        marks=prices,
    )


class DayCost:
    """Where a day's wall time went, from the account's histories (every run)."""

    def __init__(self) -> None:
        self.runs = 0
        self.events = 0
        self.tasks = 0
        self.updates = 0
        self.activity_seconds: dict[str, float] = defaultdict(float)
        self.activity_count: Counter = Counter()
        self.modes: list[str] = []  # the modes in order (history times are virtual: skipped)

    async def read(self, client: Client, workflow_id: str) -> DayCost:
        for run_id, _ in await account_runs(client, workflow_id):
            self.add(await history(client, workflow_id, run_id))
        return self

    def add(self, events: list[HistoryEvent]) -> None:
        self.runs += 1
        self.events += len(events)
        scheduled: dict[int, tuple[str, float]] = {}
        for event in events:
            name, at = event_name(event), event_time(event)
            if name == "WORKFLOW_TASK_COMPLETED":
                self.tasks += 1
            elif name == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
                self.updates += 1
            elif name == "ACTIVITY_TASK_SCHEDULED":
                scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
            elif name in ("ACTIVITY_TASK_COMPLETED", "ACTIVITY_TASK_FAILED", "ACTIVITY_TASK_TIMED_OUT"):
                scheduled_event_id = {
                    "ACTIVITY_TASK_COMPLETED": event.activity_task_completed_event_attributes.scheduled_event_id,
                    "ACTIVITY_TASK_FAILED": event.activity_task_failed_event_attributes.scheduled_event_id,
                    "ACTIVITY_TASK_TIMED_OUT": event.activity_task_timed_out_event_attributes.scheduled_event_id,
                }[name]
                kind, started = scheduled.pop(scheduled_event_id, ("?", at))
                self.activity_seconds[kind] += at - started
                self.activity_count[kind] += 1
            elif name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
                mode = upserted(event, "RiskMode")
                if mode and (not self.modes or self.modes[-1] != mode):
                    self.modes.append(mode)

    def lines(self, wall: float) -> list[str]:
        acts = ", ".join(f"{k} {self.activity_count[k]}× {v:.1f}s" for k, v in sorted(self.activity_seconds.items(), key=lambda kv: -kv[1]))
        busy = sum(self.activity_seconds.values())
        out = [f"account: {self.runs} run(s), {self.events:,} history events, {self.tasks:,} workflow tasks, {self.updates:,} updates"]
        # An activity in flight holds the skipped clock, so its history span is wall time.
        out.append(f"activities (scheduled→completed): {acts or 'none'}; the rest {max(0.0, wall - busy):.1f}s (skipped timers, tasks)")
        out.append(f"modes: {' → '.join(self.modes)}")
        return out


async def full_day(
    client: Client,
    positions: int,
    tag: str = "",
    config: RigConfig | None = None,
    market: FeedSpec | None = None,
    events: list[TimedEvent] | None = None,
    at_reference: bool = False,
) -> tuple[float, RiskResult, DayCost]:
    config = config or wide_config(positions)
    skipping = TimeSkipper(client, config=TimeSkippingConfig(max_session_skip_count=1_000_000)).client
    account = f"bench-day{tag}-{positions}"
    started = time.perf_counter()
    result: RiskResult = await skipping.execute_workflow(
        RISK_WORKFLOW,
        RiskInput(
            account=account,
            config=config,
            start_exchange_time="09:30",
            stop_at="16:30",
            synthetic=True,
            equity=EQUITY,
            market=market,
            exchange_date=MARKET_DATE.isoformat() if market is not None else None,  # the market's own day
            timeline=[TimedEvent(at="09:30", exposure=book(config, 118, at_reference=at_reference)), *(events or [])],
        ),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(QUEUE),
        result_type=RiskResult,
    )
    wall = time.perf_counter() - started
    cost = await DayCost().read(client, risk_workflow_id(account))
    return wall, result, cost


def day_summary(result: RiskResult) -> str:
    final = result.final_exposure.gross_exposure_pct if result.final_exposure else float("nan")
    states = Counter(o.label for o in result.outcomes.values())
    return f"{len(result.decisions)} decision rows, {len(result.intents)} de-risk intents ({dict(states)}), final gross {final:.2f}%"


async def reactions(client: Client, config: RigConfig, count: int = REACTIONS) -> list[float]:
    """Real-time account (60 s cycles): an injected event wakes the cycle at once. Alternates
    122% (SOFT in MID: intents started) and 90% (NORMAL)."""
    account = "bench-react"
    handle = await client.start_workflow(
        RISK_WORKFLOW,
        RiskInput(account=account, config=config, start_exchange_time="11:00", synthetic=True, equity=EQUITY),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(QUEUE),
    )
    sent: dict[str, tuple[float, bool]] = {}
    for n in range(count):
        over = n % 2 == 0
        update_id = f"react-{n}"
        sent[update_id] = (time.time(), over)
        await handle.execute_update(UPDATE_INJECT_EXPOSURE, book(config, 122 if over else 90), id=update_id)
        await _until_reacted(client, handle.id, update_id, over)
    await handle.terminate("bench over")
    events = await history(client, handle.id)
    return [(reacted - sent[uid][0]) * 1000 for uid, reacted in _reactions(events, {k: v[1] for k, v in sent.items()}).items()]


def _reactions(events: list[HistoryEvent], over_of: dict[str, bool]) -> dict[str, float]:
    """update id → server time the reaction to it was complete: for NORMAL the RiskMode upsert
    (a command of the task that decided); for SOFT the completion of the task that took the
    started orders back from `start_orders` (and recorded the decision)."""
    done: dict[str, float] = {}
    current: str | None = None
    start_orders: int | None = None  # the scheduled event id of the reaction's start_orders
    returned = False
    for event in events:
        name = event_name(event)
        if name == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            update_id = event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
            if update_id in over_of:
                current, start_orders, returned = update_id, None, False
            continue
        if current is None:
            continue
        if not over_of[current]:
            if name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" and upserted(event, "RiskMode"):
                done[current], current = event_time(event), None
        elif name == "ACTIVITY_TASK_SCHEDULED" and event.activity_task_scheduled_event_attributes.activity_type.name == "start_orders":
            start_orders = event.event_id
        elif name == "ACTIVITY_TASK_COMPLETED" and event.activity_task_completed_event_attributes.scheduled_event_id == start_orders:
            returned = True
        elif name == "WORKFLOW_TASK_COMPLETED" and returned:
            done[current], current = event_time(event), None
    return done


async def _until_reacted(client: Client, workflow_id: str, update_id: str, over: bool, timeout: float = 30.0) -> None:
    """Wait (cheaply: history reads every 50 ms, no queries) until the reaction is in history."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if update_id in _reactions(await history(client, workflow_id), {update_id: over}):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no reaction to {update_id} within {timeout:.0f}s")


class MarketDays(NamedTuple):
    timers: float  # no account at all: a workflow that only sleeps one cycle 421 times (the floor)
    slept: float  # no market data: the quiet stretches slept through
    every_cycle: float  # no market data, a resting desk order: every cycle runs
    market: float  # a generated market and the same resting order: every cycle runs
    market_cost: DayCost
    market_summary: str


def resting_sell(price: float) -> TimedEvent:
    """A desk order that works all day and never fills: a SELL 100 of a held AAPL long 8% above
    its reference price (the simulated feed's fills for NORMAL orders are off in these days; the
    generated market does not reach it)."""
    return TimedEvent(at="09:30", order=OrderEventSpec(id="rest", symbol="AAPL", side="SELL", quantity=100, limit_price=price))


async def market_days(client: Client) -> MarketDays:
    """The same day on the shipped universe without and with a generated market. Without one the
    day's quiet stretches are slept through; a market moves marks every cycle, so each of its 421
    cycles runs — as they do without a market once a desk order rests all day."""
    base = load_config()
    config = base.model_copy(update={"rules": base.rules.model_copy(update={"fills": base.rules.fills.model_copy(update={"other": 0.0})})})
    positions = len(config.universe.instruments)
    rest = [resting_sell(round(config.universe.by_symbol["AAPL"].reference_price * 1.08, 2))]
    timers = await cycle_timers(client, config)
    slept, _, _ = await full_day(client, positions, tag="-plain", config=config, at_reference=True)
    every, _, _ = await full_day(client, positions, tag="-every", config=config, events=rest, at_reference=True)
    market = FeedSpec(source=FeedSource.GENERATED, generated=GeneratedDay(seed=7, date=MARKET_DATE))
    with_market, result, cost = await full_day(client, positions, tag="-market", config=config, market=market, events=rest, at_reference=True)
    return MarketDays(timers, slept, every, with_market, cost, day_summary(result))


async def cycle_timers(client: Client, config: RigConfig) -> float:
    """A day's cycle times as bare timers, time-skipped: what waking at every cycle costs here."""
    rules = config.rules
    cycles = (rules.session.close_minute - rules.session.open_minute) * 60 // rules.risk_cycle.cycle_seconds + 1
    skipping = TimeSkipper(client, config=TimeSkippingConfig(max_session_skip_count=1_000_000)).client
    async with Worker(client, task_queue=f"{QUEUE}-timers", workflows=[CycleTimers]):
        started = time.perf_counter()
        await skipping.execute_workflow(
            "CycleTimers", [cycles, rules.risk_cycle.cycle_seconds], id=f"bench-timers-{time.time_ns()}", task_queue=f"{QUEUE}-timers"
        )
        return time.perf_counter() - started


def print_market_days(days: MarketDays) -> None:
    print("market day: the shipped universe, 09:30 → 16:30 time-skipped, without and with a generated market (seed 7)")
    print(f"  with the market: {days.market_summary}")
    figure(
        "day with market data",
        f"{days.market:.1f} s",
        baseline=f"without, every cycle {days.every_cycle:.1f} s",
        aim="≤ 2× the day without",
        ok=days.market <= 2 * days.every_cycle,
        note=f"{days.market / days.every_cycle:.2f}×",
    )
    figure(
        "… against the slept-through day",
        f"{days.market:.1f} s",
        baseline=f"without, slept through {days.slept:.1f} s",
        aim="≤ 4× the day without",
        ok=days.market <= 4 * days.slept,
        note=f"{days.market / days.slept:.2f}×",
    )
    figure(
        "… the floor: 421 bare cycle timers",
        f"{days.timers:.1f} s",
        note=f"{days.timers / days.slept:.1f}× the slept-through day: a day that wakes every cycle cannot be faster",
    )
    for line in days.market_cost.lines(days.market):
        print(f"    {line}")


async def run_market_days() -> dict[str, float]:
    async with embedded_server() as client, build_worker(client, QUEUE):
        days = await market_days(client)
    print_market_days(days)
    return {"market_day_s": days.market, "plain_day_s": days.slept, "every_cycle_day_s": days.every_cycle, "cycle_timers_s": days.timers}


async def run(positions: int = POSITIONS, count: int = REACTIONS) -> dict[str, float]:
    async with embedded_server() as client, build_worker(client, QUEUE):
        wall, result, cost = await full_day(client, positions)
        samples = await reactions(client, wide_config(positions), count)
    aim = AIMS["day_200_s"]
    print(f"day: an account with {positions} positions, 09:30 → 16:30 time-skipped (7 simulated hours)")
    print(f"  {day_summary(result)}")
    if positions == POSITIONS:
        figure(f"day wall time ({positions} positions)", f"{wall:.1f} s", before=f"{BEFORE['day_200_s']} s", aim=f"≤ {aim:g} s", ok=wall <= aim)
    else:
        figure(f"day wall time ({positions} positions)", f"{wall:.1f} s", aim=f"≤ {aim:g} s at {POSITIONS} positions")
    for line in cost.lines(wall):
        print(f"    {line}")
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(f"reaction: injected event → new mode with intents started ({len(samples)} events, real-time account, {positions} positions)")
    figure("reaction p50", f"{p50:,.0f} ms", before=f"{BEFORE['reaction_p50_ms']:.0f} ms")
    figure(
        "reaction p99",
        f"{p99:,.0f} ms",
        before=f"{BEFORE['reaction_p99_ms']:.0f} ms",
        aim=f"≤ {AIMS['reaction_p99_ms']:.0f} ms",
        ok=p99 <= AIMS["reaction_p99_ms"],
    )
    return {"day_s": wall, "reaction_p50_ms": p50, "reaction_p99_ms": p99}


if __name__ == "__main__":
    asyncio.run(run())
    exit_now(0)
