"""Shared bench plumbing: an embedded server on a free port, a worker, percentiles."""

from __future__ import annotations

import contextlib
import socket
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import Client

from worker import server
from worker.connection import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def embedded_server() -> AsyncIterator[Client]:
    """The same server `make server` runs (SQLite with WAL, time skipping allowed)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = server.start("127.0.0.1", port, Path(tmp) / "bench.sqlite")
        try:
            yield await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        finally:
            server.stop(proc)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
