"""The desk's own worker and client: the desk's namespace and nothing else.

`python -m desk` runs the desk-side workflows (desk/workflows.py) in RIG_DESK_NAMESPACE (default
`desk`) on RIG_DESK_TASK_QUEUE (default `desk`). Address, TLS and API key follow Temporal's
conventions as for every client here (worker/connection.py); the namespace is always the desk's,
whatever TEMPORAL_NAMESPACE says, so a desk's configuration never names the rig's namespace.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from desk.contract import DEFAULT_DESK_NAMESPACE, DEFAULT_DESK_TASK_QUEUE, endpoint_for
from desk.workflows import DESK_WORKFLOWS
from worker.connection import Unreachable, connect, connect_settings, exit_now


def desk_namespace() -> str:
    return os.environ.get("RIG_DESK_NAMESPACE") or DEFAULT_DESK_NAMESPACE


def desk_task_queue() -> str:
    return os.environ.get("RIG_DESK_TASK_QUEUE") or DEFAULT_DESK_TASK_QUEUE


def desk_settings() -> dict[str, Any]:
    """The desk's client settings: the shared address and credentials, the desk's namespace."""
    return connect_settings() | {"namespace": desk_namespace()}


async def connect_desk(**overrides: Any) -> Client:
    return await connect(**overrides, namespace=desk_namespace())


def desk_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=DESK_WORKFLOWS)


async def run() -> int:
    client = await connect_desk()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    queue = desk_task_queue()
    async with desk_worker(client, queue):
        print(f"desk worker: namespace {client.namespace!r}, task queue {queue!r}, calls endpoint {endpoint_for(client.namespace)!r}", flush=True)
        await stop.wait()
    return 0


def main() -> int:
    try:
        endpoint_for(desk_namespace())
    except ValueError as err:
        print(f"error: RIG_DESK_NAMESPACE: {err}", file=sys.stderr, flush=True)
        return 2
    try:
        exit_now(asyncio.run(run()))
    except Unreachable as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        exit_now(2)
