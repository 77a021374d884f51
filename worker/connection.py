"""Client settings by Temporal's conventions: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS and API
key variables and `temporalio.envconfig` profiles (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE).
An unreachable server is one clear line that says where and how to start one."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from protocol.contract import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded

DEFAULT_ADDRESS = "127.0.0.1:7233"


class Unreachable(Exception):
    pass


class BadSettings(Unreachable):
    """Settings no retry can mend (a bad profile file, a missing certificate): stop at once."""


def task_queue() -> str:
    return os.environ.get("RIG_TASK_QUEUE", DEFAULT_TASK_QUEUE)


def connect_settings() -> dict[str, Any]:
    try:
        settings: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    except Exception as err:  # noqa: BLE001 — a bad profile file or TLS path: one line, not a trace
        raise BadSettings(f"bad Temporal client settings: {err}") from None
    settings["target_host"] = settings.get("target_host") or DEFAULT_ADDRESS
    settings["namespace"] = settings.get("namespace") or DEFAULT_NAMESPACE
    return settings


def address() -> str:
    return connect_settings()["target_host"]


STARTING_UP_RETRIES = 60  # × 0.5 s: a dev server that just opened its port may not be healthy yet


async def connect(**overrides: Any) -> Client:
    settings = connect_settings() | overrides
    for _ in range(STARTING_UP_RETRIES):
        try:
            return await Client.connect(**settings, data_converter=pydantic_data_converter)
        except Exception as err:  # noqa: BLE001 — the SDK raises RuntimeError with a long chain
            if "not healthy yet" not in str(err):
                raise _unreachable(settings, err) from None
            await asyncio.sleep(0.5)
    raise _unreachable(settings, RuntimeError("the server stayed unhealthy"))


FIRST_BACKOFF = 0.5  # seconds; doubled after each failure, up to MAX_BACKOFF
MAX_BACKOFF = 30.0


async def connect_with_backoff(on_failure: Callable[[int, float, Unreachable], None], **overrides: Any) -> Client:
    """`connect`, retried for as long as it takes with exponential backoff (0.5 s doubling to
    30 s): a worker started before its server (a host reboot, compose ordering) waits for it
    instead of exiting. Bad settings still stop at once (BadSettings)."""
    delay = FIRST_BACKOFF
    attempt = 1
    while True:
        try:
            return await connect(**overrides)
        except BadSettings:
            raise
        except Unreachable as err:
            on_failure(attempt, delay, err)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
        attempt += 1


def _unreachable(settings: dict[str, Any], err: Exception) -> Unreachable:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return Unreachable(
        f"cannot reach Temporal at {settings['target_host']} (namespace {settings['namespace']}): {first}. "
        "Start the embedded server with `make server`, or set TEMPORAL_ADDRESS to a running one."
    )


def exit_now(code: int) -> NoReturn:
    """Exit without interpreter teardown once a Temporal client has existed: the SDK's native
    runtime can crash while Python finalizes (seen here: SIGSEGV after a failed TLS connect,
    SIGABRT "PyGILState_Release" after a successful `rig list`), turning a clean exit into 139/134."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
