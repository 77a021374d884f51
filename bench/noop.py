"""The baseline workflow — one workflow task, no activities, no signals — and how it is driven:
a burst of n at once, or a steady rate, on its own worker in the same process and server."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client
from temporalio.worker import Worker

from bench.support import Cpu, bounded, closed_at, results, sample, start_all
from bench.workflows import NoopWorkflow

QUEUE = "bench-noop"
LATENCY_SAMPLES = 500


def noop_worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[NoopWorkflow])


class NoopBurst:
    def __init__(self, n: int, elapsed: float, latencies: list[float], cpu: Cpu) -> None:
        self.n, self.elapsed, self.latencies, self.cpu = n, elapsed, latencies, cpu

    @property
    def rate(self) -> float:
        return self.n / self.elapsed


async def burst(client: Client, n: int, tag: str = "b") -> NoopBurst:
    """n no-ops started at once: seconds until all completed, submit→completed ms of a sample."""
    ids = [f"noop-{tag}-{n}-{i}" for i in range(n)]
    async with noop_worker(client):
        submitted = time.time()
        started = time.perf_counter()
        with Cpu() as cpu:
            handles = await start_all(client, "NoopWorkflow", [{"i": i} for i in range(n)], ids, QUEUE)
            await results(handles)
        elapsed = time.perf_counter() - started
    closed = await bounded(sample(ids, LATENCY_SAMPLES), lambda wid: closed_at(client, wid))
    return NoopBurst(n, elapsed, [(c - submitted) * 1000 for c in closed if c is not None], cpu)


async def steady(client: Client, rate: float, count: int, tag: str = "s") -> list[float]:
    """`count` no-ops at `rate` per second: submit→completed ms of each."""
    async with noop_worker(client):
        submitted: dict[str, float] = {}

        async def one(i: int) -> None:
            await asyncio.sleep(i / rate)
            wid = f"noop-{tag}-{i}"
            submitted[wid] = time.time()
            await (await client.start_workflow("NoopWorkflow", {"i": i}, id=wid, task_queue=QUEUE)).result()

        await asyncio.gather(*[one(i) for i in range(count)])
    closed = await bounded(list(submitted), lambda wid: closed_at(client, wid))
    return [(c - submitted[wid]) * 1000 for wid, c in zip(submitted, closed) if c is not None]
