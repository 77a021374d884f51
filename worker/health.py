"""The worker's health, over HTTP on RIG_HEALTH_PORT (the image sets 9465) at /healthz, and
`python -m worker --check`, which asks it (the image's HEALTHCHECK, compose's health check, a
Kubernetes exec or httpGet probe).

Healthy (200) means: connected to Temporal, the server answered a health check within the last
STALE_AFTER seconds, and both task-queue workers are polling. While the worker is still trying its
first connection, or after its pollers stopped, the answer is 503 with the reason in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `python -m worker --check` runs every few seconds: it imports no SDK
    from temporalio.client import Client

DEFAULT_PORT = 9465
PROBE_EVERY = 5.0  # seconds between the worker's own health calls to the server
STALE_AFTER = 30.0  # no answer from the server for this long: unhealthy
CHECK_TIMEOUT = 5.0


def health_port() -> int | None:
    """RIG_HEALTH_PORT (the image sets DEFAULT_PORT); unset: no endpoint, like the metrics port."""
    value = os.environ.get("RIG_HEALTH_PORT", "").strip()
    return int(value) if value else None


class Health:
    """What the worker knows about itself; `answer()` is the one the endpoint serves."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.server_ok_at: float | None = None
        self.polling: Callable[[], bool] = lambda: False
        self.detail = ""

    def answer(self) -> tuple[bool, dict[str, object]]:
        age = None if self.server_ok_at is None else time.monotonic() - self.server_ok_at
        if self.phase != "polling":
            return False, {"status": self.phase, "detail": self.detail}
        if age is None or age > STALE_AFTER:
            return False, {"status": "server-silent", "detail": f"no answer from Temporal for {age or 0:.0f}s"}
        if not self.polling():
            return False, {"status": "not-polling", "detail": "a task-queue worker has stopped"}
        return True, {"status": "ok", "detail": self.detail, "server_answered_s_ago": round(age, 1)}

    async def watch_server(self, client: Client) -> None:
        """Ask the server's health endpoint every PROBE_EVERY seconds, for as long as the worker runs."""
        while True:
            with contextlib.suppress(Exception):  # a failed call is recorded by not refreshing the time
                if await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT)):
                    self.server_ok_at = time.monotonic()
            await asyncio.sleep(PROBE_EVERY)


async def serve(health: Health, port: int, bind: str = "0.0.0.0") -> asyncio.Server:
    """A minimal HTTP/1.0 endpoint: GET /healthz → 200 or 503 with a JSON body; anything else 404."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/healthz":
                ok, body = health.answer()
                status = "200 OK" if ok else "503 Service Unavailable"
            else:
                status, body = "404 Not Found", {"status": "not-found"}
            data = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, bind, port)


def check(port: int | None = None, timeout: float = CHECK_TIMEOUT) -> int:
    """`python -m worker --check`: 0 when the local worker says it is healthy, else 1; one line."""
    port = port or health_port()
    if port is None:
        print("unhealthy: RIG_HEALTH_PORT is not set, so the worker serves no health endpoint")
        return 1
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            print(f"healthy: {response.read().decode()}")
            return 0
    except urllib.error.HTTPError as err:
        print(f"unhealthy: {err.read().decode() or err.reason}")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        print(f"unhealthy: no worker answers at {url} ({reason})")
    return 1
