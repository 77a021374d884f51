"""The worker: every workflow and activity of the rig, polling two task queues — orders and
scenarios on RIG_TASK_QUEUE (default `risk-rig`), accounts on `<queue>-accounts` — each with its
own task slots (protocol/contract.py `account_task_queue`).

It waits for its server (first connection retried with backoff), serves its health on
RIG_HEALTH_PORT (worker/health.py; `python -m worker --check` asks it), and with RIG_BUILD_ID it
is one version of a worker deployment (worker/versioning.py)."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.account_calls import AccountCalls
from activities.calendar import calendar_activities
from activities.firm_calls import FirmCalls
from activities.market import market_quotes, market_snapshot
from activities.order_calls import OrderCalls
from activities.scenarios import load_default_config, load_scenario
from config.load import ConfigError, load_config
from desk.handler import DeskHandler
from desk.registry import DeskRegistry, load_desks
from protocol.contract import account_task_queue
from protocol.signing import LOCAL_KEY_FILE, Keyring, MessageKeyError, keyring_from_env
from venues.sim.activities import SIM_VENUE_ACTIVITIES
from venues.sim.exchange_step import EXCHANGE_ACTIVITIES
from worker import book_metrics, health, versioning
from worker.connection import Unreachable, connect_with_backoff, exit_now, task_queue
from worker.observability import configure_logging, metrics_runtime
from worker.signing import Verifier, signed
from worker.versioned_workflows import VERSIONED_WORKFLOWS
from workflows.firm import FirmWorkflow
from workflows.order import OrderWorkflow
from workflows.risk import RiskWorkflow
from workflows.scenario import ScenarioWorkflow

WORKFLOWS = [OrderWorkflow, RiskWorkflow, ScenarioWorkflow, FirmWorkflow]
log = logging.getLogger("rig.worker")
# On SIGTERM, in-flight activities get this long to finish (RIG_SHUTDOWN_GRACE_SECONDS);
# workflow tasks are short and simply go back to the server for another worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=float(os.environ.get("RIG_SHUTDOWN_GRACE_SECONDS", "10")))


class RigWorker:
    """Two Temporal workers in one process: the same workflows and activities on the orders'
    task queue and on the accounts' (an account started on either queue runs)."""

    def __init__(
        self,
        client: Client,
        queue: str,
        desks: DeskRegistry | None = None,
        *,
        deployment: WorkerDeploymentConfig | None = None,
        workflows: Sequence[type] = WORKFLOWS,
        workflow_runner: WorkflowRunner | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        runner = workflow_runner or SandboxedWorkflowRunner()  # the benchmarks compare the unsandboxed runner
        # The rig's internal messages: signed by what this worker sends, verified where they arrive.
        self.keyring = keyring or keyring_from_env()
        client = signed(client, self.keyring)
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)  # sync activities: the market-data feed, the exchange step
        activities = [
            *SIM_VENUE_ACTIVITIES,
            market_quotes,
            market_snapshot,
            *EXCHANGE_ACTIVITIES,
            load_scenario,
            load_default_config,
            *calendar_activities(),  # a calendar account's sessions ahead, and its daily_roll marker
            *OrderCalls(client, queue).all(),
            *AccountCalls(client, queue).all(),
            *FirmCalls(client).all(),
        ]
        self.workers = [
            Worker(
                client,
                task_queue=q,
                workflows=workflows,
                activities=activities,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                activity_executor=executor,
                workflow_runner=runner,
                deployment_config=deployment,
                interceptors=[Verifier(self.keyring)],
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

    def polling(self) -> bool:
        return all(w.is_running and not w.is_shutdown for w in self.workers)


def build_worker(
    client: Client,
    queue: str,
    version: WorkerDeploymentVersion | None = None,
    workflows: Sequence[type] | None = None,
    desks: DeskRegistry | None = None,
    keyring: Keyring | None = None,
) -> RigWorker:
    """Every workflow and activity of the rig (accounts carry their rules in their input), and
    the desk API's handler for `desks` (default: config/desks.yaml); with `version`, a versioned
    worker of that worker deployment version, its workflow types with their versioning behaviours
    (`workflows`: another build's workflow code under the same type names, for the versioning drill)."""
    chosen = workflows if workflows is not None else (VERSIONED_WORKFLOWS if version else WORKFLOWS)
    return RigWorker(client, queue, desks, deployment=versioning.deployment_config(version), workflows=chosen, keyring=keyring)


async def run() -> int:
    load_config()  # a broken config file stops the worker at start, with the key and the problem
    keyring = keyring_from_env()  # the same for an unusable message key
    if keyring.ephemeral:
        print(f"no RIG_MESSAGE_KEY: internal messages are signed with this machine's key ({LOCAL_KEY_FILE}, kept across restarts)", flush=True)
    desks = load_desks()  # the same for the desk registry
    version = versioning.deployment_version()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state = health.Health()
    port = health.health_port()
    endpoint = await health.serve(state, port, os.environ.get("RIG_HEALTH_BIND", "0.0.0.0")) if port else None
    state.phase = "connecting"

    def waiting(attempt: int, delay: float, err: Unreachable) -> None:
        state.detail = f"attempt {attempt}: {err}"
        print(f"waiting for Temporal (attempt {attempt}, next in {delay:g}s): {err}", flush=True)

    runtime = metrics_runtime()
    connecting = asyncio.ensure_future(connect_with_backoff(waiting, **({"runtime": runtime} if runtime else {})))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([connecting, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():  # stopped before the server ever answered
        connecting.cancel()
        return 0
    client = connecting.result()
    queue = task_queue()
    worker = build_worker(client, queue, version, desks=desks, keyring=keyring)
    release = f" as {version.to_canonical_string()}" if version else " (unversioned)"
    async with worker:
        state.phase, state.polling, state.detail = "polling", worker.polling, f"queues {queue}, {account_task_queue(queue)}{release}"
        watcher = asyncio.create_task(state.watch_server(client))
        adopting = asyncio.create_task(_adopt(client, version)) if version else None
        every = book_metrics.interval()
        counting = asyncio.create_task(book_metrics.export(client, runtime.metric_meter, every)) if runtime and every > 0 else None
        print(
            f"worker polling task queues {queue!r} and {account_task_queue(queue)!r} on {client.service_client.config.target_host}{release}",
            flush=True,
        )
        log.info("worker polling task queues %s and %s%s", queue, account_task_queue(queue), release)
        await stop.wait()
        state.phase = "stopping"
        for task in (watcher, adopting, counting):
            if task is not None:
                task.cancel()
        log.info("stopping: in-flight tasks get %ss to finish, the rest go back to the server", GRACEFUL_SHUTDOWN.total_seconds())
    if endpoint is not None:
        endpoint.close()
    return 0


async def _adopt(client: Client, version: WorkerDeploymentVersion) -> None:
    try:
        if await versioning.adopt_first_version(client, version):
            print(f"first version of deployment {version.deployment_name!r}: {version.build_id!r} made current", flush=True)
    except Exception:  # logged: the operator can always set it (`temporal worker deployment set-current-version`)
        log.exception("could not make the first version %s current", version.to_canonical_string())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description="The rig's worker, or a broker gateway.")
    parser.add_argument("--broker", choices=["ibkr"], help="run the broker gateway instead (Interactive Brokers: venues/ibkr)")
    parser.add_argument("--check", action="store_true", help="ask the worker on this host for its health (RIG_HEALTH_PORT); exit 0 when healthy")
    args = parser.parse_args(argv)
    if args.check:
        return health.check()
    if args.broker == "ibkr":
        from venues.ibkr.service import (
            main as gateway_main,  # ib_async only where it is used
        )

        return gateway_main()
    configure_logging()
    try:
        exit_now(asyncio.run(run()))
    except (ConfigError, versioning.VersioningSettingsError, MessageKeyError) as err:
        print(f"error: {err}", flush=True)
        return 2
    except Unreachable as err:
        print(f"error: {err}", flush=True)
        exit_now(2)


if __name__ == "__main__":
    raise SystemExit(main())
