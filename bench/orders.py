"""500 orders at once to a terminal state (certain fills) vs a no-op workflow baseline, both on
the embedded server in the same run: orders/s, the ratio, p50/p99 submit→WORKING latency."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from temporalio.client import Client
from temporalio.worker import Worker

from bench.noop import NoopWorkflow
from bench.support import embedded_server, percentile
from config.load import load_config
from worker.main import build_worker
from protocol.contract import ORDER_WORKFLOW, RISK_WORKFLOW, risk_workflow_id
from protocol.messages import OrderSnapshot, RiskInput

ORDERS = 500
QUEUE = "bench-orders"


async def _run_noop(client: Client) -> float:
    async with Worker(client, task_queue=QUEUE + "-noop", workflows=[NoopWorkflow]):
        started = time.perf_counter()
        handles = await asyncio.gather(*[
            client.start_workflow("NoopWorkflow", {"i": i}, id=f"noop-{i}", task_queue=QUEUE + "-noop") for i in range(ORDERS)
        ])
        await asyncio.gather(*[h.result() for h in handles])
        return time.perf_counter() - started


async def _run_orders(client: Client) -> tuple[float, list[float]]:
    config = load_config()
    rules = config.rules.model_copy(update={"fills": config.rules.fills.model_copy(update={"other": 1.0})})
    config = config.model_copy(update={"rules": rules})
    account = "bench"
    async with build_worker(client, QUEUE):
        await client.start_workflow(RISK_WORKFLOW, RiskInput(account=account, config=config, equity=1e9, start_exchange_time="11:00", synthetic=True),
                                    id=risk_workflow_id(account), task_queue=QUEUE)
        symbols = [i.symbol for i in config.universe.instruments if i.lot_size == 1]
        raws = [{"intent_id": f"{account}-{i}", "account": account, "symbol": symbols[i % len(symbols)], "side": "BUY",
                 "quantity": 10, "order_type": "MARKET"} for i in range(ORDERS)]
        started = time.perf_counter()
        handles = await asyncio.gather(*[
            client.start_workflow(ORDER_WORKFLOW, r, id=r["intent_id"], task_queue=QUEUE, result_type=OrderSnapshot) for r in raws
        ])
        snaps: list[OrderSnapshot] = await asyncio.gather(*[h.result() for h in handles])
        elapsed = time.perf_counter() - started
        assert all(s.state.value == "FILLED" for s in snaps), "certain fills: every order must end FILLED"
        latencies = []
        for h, snap in zip(handles, snaps):
            desc = await h.describe()
            working_at = datetime.fromisoformat(snap.history[0].split(" ")[0])
            latencies.append((working_at - desc.start_time).total_seconds() * 1000)
        await client.get_workflow_handle(risk_workflow_id(account)).terminate("bench over")
        return elapsed, latencies


async def run() -> dict[str, float]:
    async with embedded_server() as client:
        noop = await _run_noop(client)
        orders, latencies = await _run_orders(client)
    noop_rate, order_rate = ORDERS / noop, ORDERS / orders
    ratio = order_rate / noop_rate
    print(f"orders: {ORDERS} submitted at once on the embedded server (SQLite, WAL)")
    print(f"  no-op workflow baseline: {noop_rate:7.1f} wf/s ({noop:.1f}s)")
    print(f"  orders to FILLED:        {order_rate:7.1f} orders/s ({orders:.1f}s)")
    print(f"  ratio: {ratio:.2f} (aim ≥ 0.7) — {'OK' if ratio >= 0.7 else 'BELOW AIM'}")
    print(f"  submit→WORKING latency: p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms")
    return {"noop_rate": noop_rate, "order_rate": order_rate, "ratio": ratio}


if __name__ == "__main__":
    asyncio.run(run())
