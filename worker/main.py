"""The worker: every workflow and activity of the rig on one task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.market import market_quotes
from activities.orders import OrderClientActivities
from activities.scenarios import load_scenario
from activities.venue import VENUE_ACTIVITIES
from config.load import ConfigError, load_config
from domain.rules import RigConfig
from worker.connection import Unreachable, connect, task_queue
from workflows.order import OrderWorkflow
from workflows.risk import RiskWorkflow
from workflows.scenario import ScenarioWorkflow

WORKFLOWS = [OrderWorkflow, RiskWorkflow, ScenarioWorkflow]
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


def build_worker(client: Client, queue: str, config: RigConfig) -> Worker:
    client_activities = OrderClientActivities(client, queue, config)
    return Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[*VENUE_ACTIVITIES, market_quotes, load_scenario, *client_activities.all()],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run() -> int:
    config = load_config()
    client = await connect()
    queue = task_queue()
    worker = build_worker(client, queue, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info("worker on task queue %s at %s", queue, client.service_client.config.target_host)
    async with worker:
        print(f"worker polling task queue {queue!r} on {client.service_client.config.target_host}", flush=True)
        await stop.wait()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return asyncio.run(run())
    except (Unreachable, ConfigError) as err:
        print(f"error: {err}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
