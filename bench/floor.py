"""The floor under orders/s with a serialized account, on this engine: bursts of n, each beside
the no-op workflow of the same size on the same server, peeling the fill-at-arrival path apart:

  1. FloorOrder → FloorAccount, the pre-trade update only (the account approves at once);
  2. the same plus the report signal (the path's two round trips to the account);
  3. FloorOrder → the rig's RiskWorkflow: its real pre-trade gate, and the real report;
  4. the rig's OrderWorkflow (3 plus the venue's local activity and the order's bookkeeping);
  5. the same with the rig's workflows outside the sandbox (each new order otherwise re-imports
     workflows/order.py in a fresh sandbox: compile without .pyc, class and handler checks).

What 1 reaches is what any design with one Update per order on one account workflow can reach
here; 2 − 1 is the report's cost, 3 − 2 the account's own work, 4 − 3 the order's.
"""

from __future__ import annotations

import asyncio
import time

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench import noop
from bench import orders as bench_orders
from bench.support import Cpu, Stalled, embedded_server, figure, results, start_all
from bench.workflows import (
    FLOOR_SIGNAL,
    FLOOR_UPDATE,
    FloorAccount,
    FloorCall,
    FloorOrder,
    FloorReport,
)
from domain.enums import OrderState, Side
from domain.models import Fill
from domain.order import OrderReport
from protocol.contract import SIGNAL_ORDER_REPORT, UPDATE_PRETRADE, pretrade_update_id, risk_workflow_id
from protocol.messages import PretradeReply, PretradeRequest
from worker.connection import exit_now
from worker.main import build_worker

QUEUE = "bench-floor"


class FloorCalls:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def floor_pretrade(self, call: FloorCall) -> dict:
        handle = self._client.get_workflow_handle(call.account_id)
        if call.real:
            request = PretradeRequest(intent_id=call.intent_id, raw_intent=call.raw_intent)
            update_id = pretrade_update_id(call.intent_id, activity.info().workflow_run_id or "")
            reply = await handle.execute_update(UPDATE_PRETRADE, request, id=update_id, result_type=PretradeReply)
            return reply.model_dump(mode="json")
        return await handle.execute_update(FLOOR_UPDATE, call.raw_intent, id=call.intent_id, result_type=dict)

    @activity.defn
    async def floor_report(self, report: FloorReport) -> None:
        call, handle = report.call, self._client.get_workflow_handle(report.call.account_id)
        if not call.real:
            await handle.signal(FLOOR_SIGNAL, {"intent_id": call.intent_id, "state": "FILLED"})
            return
        reply = PretradeReply.model_validate(report.reply)
        intent = reply.intent
        assert intent is not None and reply.quote is not None
        fill = Fill(
            fill_id=f"{call.intent_id}/A",
            intent_id=call.intent_id,
            symbol=intent.symbol,
            bucket=intent.bucket,
            side=intent.side,
            quantity=intent.quantity,
            price=reply.quote.ask if intent.side is Side.BUY else reply.quote.bid,
        )
        await handle.signal(
            SIGNAL_ORDER_REPORT,
            OrderReport(intent_id=call.intent_id, state=OrderState.FILLED, quantity=intent.quantity, filled_quantity=intent.quantity, fills=[fill]),
        )

    def all(self) -> list:
        return [self.floor_pretrade, self.floor_report]


async def floor_burst(client: Client, n: int, *, report: bool, real: bool, tag: str) -> tuple[float, Cpu]:
    """n FloorOrders at once against one account: (seconds until all done, CPU spent)."""
    account = f"floor-{tag}-{n}"
    config = bench_orders.certain_fills()
    raws = bench_orders.market_orders(account, config, n)
    async with (
        Worker(client, task_queue=QUEUE, workflows=[FloorAccount, FloorOrder], activities=FloorCalls(client).all()),
        build_worker(client, bench_orders.QUEUE),
    ):
        if real:
            await bench_orders.open_account(client, account, config)
            account_id = risk_workflow_id(account)
        else:
            account_id = f"floor-account-{tag}-{n}"
            await client.start_workflow("FloorAccount", {}, id=account_id, task_queue=QUEUE)
        started = time.perf_counter()
        with Cpu() as cpu:
            calls = [FloorCall(account_id=account_id, intent_id=r["intent_id"], raw_intent=r, report=report, real=real) for r in raws]
            handles = await start_all(client, "FloorOrder", calls, [r["intent_id"] for r in raws], QUEUE)
            try:
                await results(handles)
            except Stalled as err:
                print(f"    floor {tag} {n}: {err}")
        elapsed = time.perf_counter() - started
        await client.get_workflow_handle(account_id).terminate("bench over")
    return elapsed, cpu


class Layer:
    def __init__(self, rate: float, cpu: Cpu) -> None:
        self.rate, self.cpu = rate, cpu


async def layers(client: Client, n: int) -> dict[str, Layer]:
    """orders/s and CPU of the floor's layers 1–3 and 5 for a burst of n."""
    found = {}
    for key, report, real in (("update", False, False), ("update_signal", True, False), ("rig_account", True, True)):
        elapsed, cpu = await floor_burst(client, n, report=report, real=real, tag=key.replace("_", "-"))
        found[key] = Layer(n / elapsed, cpu)
    unsandboxed = await bench_orders.burst(client, n, tag="unsandboxed", make_worker=bench_orders.unsandboxed_worker)
    found["unsandboxed"] = Layer(unsandboxed.rate, unsandboxed.cpu)
    return found


async def measure(client: Client, n: int) -> dict[str, Layer]:
    """Every layer and the no-op, for a burst of n (one server)."""
    noops = await noop.burst(client, n, tag="floor")
    found = {"noop": Layer(noops.rate, noops.cpu), **await layers(client, n)}
    orders = await bench_orders.burst(client, n, tag="floor")
    found["order"] = Layer(orders.rate, orders.cpu)
    return found


LAYERS = (
    ("update", "1 pre-trade update, account says yes"),
    ("update_signal", "2   + the report signal"),
    ("rig_account", "3   on the rig's account (gate, ledger)"),
    ("order", "4   the rig's order: arrival in the verdict"),
    ("unsandboxed", "5   the same, the account unsandboxed too"),
)


def cpu_ratio(noop: Cpu, layer: Cpu) -> float:
    """The ratio the CPU alone allows on this machine: no-op CPU ÷ this layer's (both sides)."""
    return (noop.worker + noop.server) / (layer.worker + layer.server)


def show(layers: dict[str, Layer], n: int) -> None:
    base = layers["noop"]
    print(f"floor: a serialized account on this engine, burst of {n}, each layer beside the no-op burst (CPU per workflow:")
    print("  this process — bench client and worker, Python — and the dev server; on 2 busy cores the ratio follows the CPU)")
    figure("no-op workflows", f"{base.rate:.1f} wf/s", note=f"CPU {base.cpu.per(n)}")
    for key, label in LAYERS:
        if key not in layers:
            continue
        layer = layers[key]
        figure(
            label,
            f"{layer.rate:.1f}/s = {layer.rate / base.rate:.2f}× no-op",
            note=f"CPU {layer.cpu.per(n)}: allows {cpu_ratio(base.cpu, layer.cpu):.2f}×",
        )


async def run(n: int = 500) -> dict[str, float]:
    async with embedded_server() as client:
        found = await measure(client, n)
    show(found, n)
    return {k: v.rate for k, v in found.items()}


if __name__ == "__main__":
    asyncio.run(run())
    exit_now(0)
