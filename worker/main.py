"""The worker: every workflow and activity of the rig, polling two task queues — orders and
scenarios on RIG_TASK_QUEUE (default `risk-rig`), accounts on `<queue>-accounts` — each with its
own task slots (protocol/contract.py `account_task_queue`)."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.account_calls import AccountCalls
from activities.calendar import calendar_activities
from activities.market import market_quotes, market_snapshot
from activities.order_calls import OrderCalls
from activities.scenarios import load_default_config, load_scenario
from config.load import ConfigError, load_config
from desk.handler import DeskHandler
from desk.registry import DeskRegistry, load_desks
from protocol.contract import account_task_queue
from venues.sim.activities import SIM_VENUE_ACTIVITIES
from worker.connection import Unreachable, connect, exit_now, task_queue
from worker.observability import configure_logging, metrics_runtime
from workflows.order import OrderWorkflow
from workflows.risk import RiskWorkflow
from workflows.scenario import ScenarioWorkflow

WORKFLOWS = [OrderWorkflow, RiskWorkflow, ScenarioWorkflow]
log = logging.getLogger("rig.worker")
# On SIGTERM, in-flight activities get this long to finish (RIG_SHUTDOWN_GRACE_SECONDS);
# workflow tasks are short and simply go back to the server for another worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=float(os.environ.get("RIG_SHUTDOWN_GRACE_SECONDS", "10")))


class RigWorker:
    """Two Temporal workers in one process: the same workflows and activities on the orders'
    task queue and on the accounts' (an account started on either queue runs)."""

    def __init__(self, client: Client, queue: str, desks: DeskRegistry | None = None, *, workflow_runner: WorkflowRunner | None = None) -> None:
        runner = workflow_runner or SandboxedWorkflowRunner()  # the benchmarks compare the unsandboxed runner
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)  # sync activities: the market-data feed
        activities = [
            *SIM_VENUE_ACTIVITIES,
            market_quotes,
            market_snapshot,
            load_scenario,
            load_default_config,
            *calendar_activities(),  # a calendar account's sessions ahead, and its daily_roll marker
            *OrderCalls(client, queue).all(),
            *AccountCalls(client, queue).all(),
        ]
        self.workers = [
            Worker(
                client,
                task_queue=q,
                workflows=WORKFLOWS,
                activities=activities,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                activity_executor=executor,
                workflow_runner=runner,
                # The desk API (desk/): its Nexus endpoints target the orders' queue.
                nexus_service_handlers=[DeskHandler(desks or load_desks(), queue)] if q == queue else [],
            )
            for q in (queue, account_task_queue(queue))
        ]

    async def __aenter__(self) -> RigWorker:
        self._stack = contextlib.AsyncExitStack()
        for worker in self.workers:
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def build_worker(client: Client, queue: str, desks: DeskRegistry | None = None) -> RigWorker:
    """Every workflow and activity of the rig (accounts carry their rules in their input), and
    the desk API's handler for `desks` (default: config/desks.yaml)."""
    return RigWorker(client, queue, desks)


async def run() -> int:
    load_config()  # a broken config file stops the worker at start, with the key and the problem
    desks = load_desks()  # the same for the desk registry
    runtime = metrics_runtime()
    client = await connect(**({"runtime": runtime} if runtime else {}))
    queue = task_queue()
    worker = build_worker(client, queue, desks)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(f"worker polling task queues {queue!r} and {account_task_queue(queue)!r} on {client.service_client.config.target_host}", flush=True)
        log.info("worker polling task queues %s and %s", queue, account_task_queue(queue))
        await stop.wait()
        log.info("stopping: in-flight tasks get %ss to finish, the rest go back to the server", GRACEFUL_SHUTDOWN.total_seconds())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description="The rig's worker, or a broker gateway.")
    parser.add_argument("--broker", choices=["ibkr"], help="run the broker gateway instead (Interactive Brokers: venues/ibkr)")
    args = parser.parse_args(argv)
    if args.broker == "ibkr":
        from venues.ibkr.service import (
            main as gateway_main,  # ib_async only where it is used
        )

        return gateway_main()
    configure_logging()
    try:
        exit_now(asyncio.run(run()))
    except ConfigError as err:
        print(f"error: {err}", flush=True)
        return 2
    except Unreachable as err:
        print(f"error: {err}", flush=True)
        exit_now(2)


if __name__ == "__main__":
    raise SystemExit(main())
