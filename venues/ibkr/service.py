"""The IBKR gateway process (TWS / IB Gateway ↔ Temporal): `python -m venues.ibkr`, or
`from venues.ibkr.service import main` (e.g. `python -m worker --broker ibkr`).

Connects to Temporal (TEMPORAL_ADDRESS…, like the worker) and to TWS / IB Gateway (IB_HOST,
IB_PORT, IB_CLIENT_ID, IB_ACCOUNT), reconciles orders and positions, and serves the ibkr_* activities on
RIG_IBKR_TASK_QUEUE (default risk-rig-ibkr) until SIGINT / SIGTERM. Either side unreachable at
start, or a configuration it cannot serve with (IB_ACCOUNT not managed by the login, several
accounts and none chosen, a client id other than the one its open orders were placed with): one
line saying what and how to fix it, exit 2. A later loss of TWS is retried with
backoff and reconciled on reconnect."""

from __future__ import annotations

import asyncio
import logging
import signal

from protocol.signing import keyring_from_env
from venues.ibkr.activities import build_ibkr_worker
from venues.ibkr.delivery import RigSink, TemporalBooks
from venues.ibkr.gateway import IbkrConfigError, IbkrGateway, IbUnreachable
from venues.ibkr.models import IbkrSettings
from worker.connection import Unreachable, connect, exit_now
from worker.observability import configure_logging
from worker.signing import signed


async def run() -> int:
    settings = IbkrSettings.from_env()
    keyring = keyring_from_env()  # the workers' RIG_MESSAGE_KEY: the accounts and orders take only signed broker events
    if keyring.ephemeral:
        raise SystemExit("error: RIG_MESSAGE_KEY is not set: the gateway's events would be refused by the rig's workers (set the workers' key)")
    client = signed(await connect(), keyring)
    gateway = IbkrGateway(settings, RigSink(client), books=TemporalBooks(client))
    try:
        await gateway.start()
    except BaseException:
        await gateway.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_ibkr_worker(client, gateway):
            print(
                f"IBKR gateway: IB at {settings.where} (client id {settings.client_id}), activities on task queue {settings.task_queue!r}", flush=True
            )
            await stop.wait()
    finally:
        await gateway.stop()
    return 0


def main() -> int:
    configure_logging()
    logging.getLogger("ib_async").setLevel(logging.WARNING)  # it logs every Trade at INFO
    logging.getLogger("ib_async.client").setLevel(logging.CRITICAL)  # connection failures: the gateway says it in one line
    try:
        exit_now(asyncio.run(run()))
    except (Unreachable, IbUnreachable, IbkrConfigError) as err:
        print(f"error: {err}", flush=True)
        exit_now(2)
    return 0
