"""Orders to FILLED (MARKET, certain fills: the fill-at-arrival path) against the no-op workflow
on the same embedded server in the same run: a burst of n at once (orders/s, the ratio to
no-op wf/s, submit→WORKING p50/p99) and a steady 10 orders/s (submit→WORKING p50/p99 beside a
no-op's submit→completed at the same rate).

submit→WORKING is measured from the client's submit to the server's time of the order's
OrderState upsert to WORKING (or straight to FILLED) in its history: the order's own clock
(`workflow.now()`) stands still while its first task's local activities run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

from bench import noop
from bench.support import (
    AIMS,
    BEFORE,
    Cpu,
    OrderShape,
    Stalled,
    account_runs,
    bounded,
    embedded_server,
    figure,
    order_shape,
    percentile,
    results,
    sample,
    start_all,
)
from config.load import load_config
from domain.rules import RigConfig
from protocol.contract import (
    ORDER_WORKFLOW,
    RISK_WORKFLOW,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput
from protocol.order_record import OrderSnapshot
from worker.connection import exit_now
from worker.main import RigWorker, build_worker

BURST = 500
STEADY_RATE = 10.0
STEADY_COUNT = 200  # 20 s at 10/s
QUEUE = "bench-orders"
LATENCY_SAMPLES = 500


def certain_fills() -> RigConfig:
    config = load_config()
    rules = config.rules.model_copy(update={"fills": config.rules.fills.model_copy(update={"other": 1.0})})
    return config.model_copy(update={"rules": rules})


# Accounts on a task queue of their own (a second worker in the same process): what it takes
# for the account's workflow tasks never to wait behind its orders' (see `burst`).
ACCOUNT_QUEUE = "bench-accounts"


async def open_account(client: Client, account: str, config: RigConfig, queue: str = QUEUE) -> None:
    await client.start_workflow(
        RISK_WORKFLOW,
        RiskInput(account=account, config=config, equity=1e9, start_exchange_time="11:00", synthetic=True),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(queue),
    )


def market_orders(account: str, config: RigConfig, n: int) -> list[dict]:
    symbols = [i.symbol for i in config.universe.instruments if i.lot_size == 1]
    return [
        {
            "intent_id": f"{account}-{i}",
            "account": account,
            "symbol": symbols[i % len(symbols)],
            "side": "BUY",
            "quantity": 10,
            "order_type": "MARKET",
        }
        for i in range(n)
    ]


class Shapes:
    """submit→WORKING (ms) and workflow tasks per order, from a sample of the orders' histories."""

    def __init__(self, client: Client, submitted: dict[str, float]) -> None:
        self.submitted = submitted
        self.latencies: list[float] = []
        self.pickup: list[float] = []
        self.first_task: list[float] = []
        self.tasks: Counter = Counter()

    async def read(self, client: Client) -> Shapes:
        ids = sample(list(self.submitted), LATENCY_SAMPLES)
        shapes: list[OrderShape] = await bounded(ids, lambda i: order_shape(client, i))
        self.latencies = [(s.working_at - self.submitted[i]) * 1000 for i, s in zip(ids, shapes) if s.working_at is not None]
        # Where submit→WORKING goes: waiting to be picked up, then the first task itself
        # (pre-trade on the account, the venue, the report: local activities).
        self.pickup = [(s.first_started - self.submitted[i]) * 1000 for i, s in zip(ids, shapes) if s.first_started is not None]
        self.first_task = [(s.first_completed - s.first_started) * 1000 for s in shapes if s.first_started and s.first_completed]
        self.tasks = Counter(s.tasks for s in shapes)
        return self

    def split(self) -> str:
        return f"submit→task picked up {ms(self.pickup)}; first task {ms(self.first_task)}"


class Burst:
    def __init__(
        self, n: int, elapsed: float, shapes: Shapes, states: Counter, runs: list[tuple[str, int]], cpu: Cpu, stalled: Stalled | None = None
    ) -> None:
        self.n, self.elapsed, self.shapes, self.states, self.runs, self.cpu = n, elapsed, shapes, states, runs, cpu
        self.stalled = stalled

    @property
    def latencies(self) -> list[float]:
        return self.shapes.latencies

    @property
    def rate(self) -> float:
        return (self.stalled.done if self.stalled else self.n) / self.elapsed


def unsandboxed_worker(client: Client, queue: str) -> RigWorker:
    """The rig's worker with its workflows outside the sandbox (what `sandboxed=False` on the
    workflow definitions would give): each new OrderWorkflow otherwise re-imports its module
    in a fresh sandbox."""
    return RigWorker(client, queue, workflow_runner=UnsandboxedWorkflowRunner())


async def burst(
    client: Client, n: int, tag: str = "burst", *, own_queue: bool = False, make_worker: Callable[[Client, str], RigWorker] = build_worker
) -> Burst:
    """n MARKET orders at once on one account, each to FILLED.

    An order's first workflow task holds one of the worker's workflow task slots (100) while
    its pre-trade update waits for the account, and the account needs a slot to answer: with
    `own_queue` the account runs on a task queue (and slots) of its own."""
    config = certain_fills()
    account = f"bench-{tag}-{n}"
    async with make_worker(client, QUEUE), make_worker(client, ACCOUNT_QUEUE) if own_queue else contextlib.nullcontext():
        await open_account(client, account, config, ACCOUNT_QUEUE if own_queue else QUEUE)
        raws = market_orders(account, config, n)
        submitted = time.time()
        started = time.perf_counter()
        stalled: Stalled | None = None
        with Cpu() as cpu:
            handles = await start_all(client, ORDER_WORKFLOW, raws, [r["intent_id"] for r in raws], QUEUE, result_type=OrderSnapshot)
            try:
                snaps: list[OrderSnapshot] = await results(handles)
            except Stalled as err:
                stalled, snaps = err, []
        elapsed = time.perf_counter() - started
        # Terminated, the account answers every waiting order at once (UNKNOWN_ACCOUNT): the worker stops cleanly.
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("bench over")
    shapes = await Shapes(client, {r["intent_id"]: submitted for r in raws}).read(client)
    states = Counter(s.state.value if not s.reject_reason else f"{s.state.value}:{s.reject_reason.value}" for s in snaps)
    if stalled:
        states = Counter({"done before the stall": stalled.done, "STALLED": stalled.total - stalled.done})
    runs = await account_runs(client, risk_workflow_id(account))
    return Burst(n, elapsed, shapes, states, runs, cpu, stalled)


async def steady(client: Client, rate: float, count: int, tag: str = "steady") -> tuple[Shapes, Counter]:
    """`count` orders at `rate` per second: submit→WORKING ms of each."""
    config = certain_fills()
    account = f"bench-{tag}"
    raws = market_orders(account, config, count)
    submitted: dict[str, float] = {}
    async with build_worker(client, QUEUE):
        await open_account(client, account, config)

        async def one(i: int) -> OrderSnapshot:
            await asyncio.sleep(i / rate)
            submitted[raws[i]["intent_id"]] = time.time()
            handle = await client.start_workflow(ORDER_WORKFLOW, raws[i], id=raws[i]["intent_id"], task_queue=QUEUE, result_type=OrderSnapshot)
            return await handle.result()

        snaps = await asyncio.gather(*[one(i) for i in range(count)])
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("bench over")
    return await Shapes(client, submitted).read(client), Counter(s.state.value for s in snaps)


def tasks_text(tasks: Counter) -> str:
    return ", ".join(f"{k}: {v} orders" for k, v in sorted(tasks.items()))


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):,.0f} / p99 {percentile(values, 99):,.0f} ms"


async def run(n: int = BURST, steady_count: int = STEADY_COUNT, with_floor: bool = True) -> dict[str, float]:
    from bench import floor  # floor builds on this module

    async with embedded_server() as client:
        noops = await noop.burst(client, n)
        orders = await burst(client, n)
        noop_steady = await noop.steady(client, STEADY_RATE, steady_count)
        steady_shapes, steady_states = await steady(client, STEADY_RATE, steady_count)
        layers = await floor.layers(client, n) if with_floor else {}
    steady_latency = steady_shapes.latencies
    noop_rate, noop_latency = noops.rate, noops.latencies
    ratio = orders.rate / noop_rate
    print("orders: MARKET orders with certain fills (one workflow task each) vs the no-op workflow, embedded server (SQLite, WAL)")
    print(f"  burst of {n} at once:")
    figure("no-op workflows", f"{noop_rate:.1f} wf/s", before=f"{BEFORE['noop_wf_s']} wf/s")
    figure("orders to FILLED", f"{orders.rate:.1f} orders/s", baseline=f"no-op {noop_rate:.1f} wf/s", before=f"{BEFORE['orders_s']} orders/s")
    figure("orders/s ÷ no-op wf/s", f"{ratio:.2f}×", before=f"{BEFORE['ratio']}×", aim=f"≥ {AIMS['ratio']}×", ok=ratio >= AIMS["ratio"])
    figure(
        "submit→WORKING",
        ms(orders.latencies),
        baseline=f"no-op submit→done {ms(noop_latency)}",
        before=f"p50 {BEFORE['burst_working_p50_ms']:,.0f} / p99 {BEFORE['burst_working_p99_ms']:,.0f} ms",
    )
    figure(
        "CPU per order",
        f"{(orders.cpu.worker + orders.cpu.server) / n * 1000:.1f} ms",
        baseline=f"no-op {(noops.cpu.worker + noops.cpu.server) / n * 1000:.1f} ms",
        note=f"orders {orders.cpu.per(n)}; no-op {noops.cpu.per(n)}",
    )
    if orders.stalled:
        print(f"    STALLED: {orders.stalled}")
    if set(orders.states) != {"FILLED"}:
        print(f"    (outcomes: {dict(orders.states)})")
    print(f"    {orders.shapes.split()}")
    print(
        f"    workflow tasks per order (sampled): {tasks_text(orders.shapes.tasks)}; account: {len(orders.runs)} run(s), "
        f"history events per run {[length for _, length in orders.runs]}"
    )
    print(f"  steady {STEADY_RATE:g} orders/s ({steady_count} orders):")
    figure("submit→WORKING", ms(steady_latency), baseline=f"no-op submit→done {ms(noop_steady)}")
    print(f"    {steady_shapes.split()}")
    print(f"    workflow tasks per order: {tasks_text(steady_shapes.tasks)}")
    if set(steady_states) != {"FILLED"}:
        print(f"    (outcomes: {dict(steady_states)})")
    if layers:
        layers["noop"], layers["order"] = floor.Layer(noops.rate, noops.cpu), floor.Layer(orders.rate, orders.cpu)
        floor.show(layers, n)
    return {
        "noop_rate": noop_rate,
        "order_rate": orders.rate,
        "ratio": ratio,
        "burst_working_p50_ms": percentile(orders.latencies, 50),
        "burst_working_p99_ms": percentile(orders.latencies, 99),
        "steady_working_p50_ms": percentile(steady_latency, 50),
        "steady_working_p99_ms": percentile(steady_latency, 99),
    }


if __name__ == "__main__":
    asyncio.run(run())
    exit_now(0)
