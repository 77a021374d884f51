"""A worker that comes back by itself: started before its server it waits (first connection
retried with backoff) instead of exiting, its health endpoint says so, and once the server
answers it polls and reports healthy — what compose's and the image's health check
(`python -m worker --check`) and a Kubernetes probe read. Bad settings still stop it at once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from tests.drills import ROOT, ended, free_port, worker_process
from worker import server


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def check(port: int | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RIG_HEALTH_PORT"} | ({"RIG_HEALTH_PORT": str(port)} if port else {})
    return subprocess.run([sys.executable, "-m", "worker", "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


async def next_line(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line, "the worker exited"
    return line


async def test_a_worker_started_before_its_server_waits_then_polls_and_reports_healthy():
    port, health_port = free_port(), free_port()
    worker = worker_process(f"127.0.0.1:{port}", "lifecycle", RIG_HEALTH_PORT=str(health_port), RIG_HEALTH_BIND="127.0.0.1")
    dev = None
    try:
        waits = [await next_line(worker) for _ in range(2)]
        assert all(line.startswith("waiting for Temporal (attempt") for line in waits), waits
        assert "next in 0.5s" in waits[0] and "next in 1s" in waits[1]  # backing off, not exiting
        status, body = await asyncio.to_thread(health, health_port)
        assert status == 503 and body["status"] == "connecting" and f"127.0.0.1:{port}" in body["detail"]
        unhealthy = await asyncio.to_thread(check, health_port)
        assert unhealthy.returncode == 1 and unhealthy.stdout.startswith("unhealthy: ")

        dev = await asyncio.to_thread(server.start, "127.0.0.1", port, None)
        line = await next_line(worker)
        while "worker polling" not in line:
            assert line.startswith("waiting for Temporal"), line
            line = await next_line(worker)
        for _ in range(100):  # the first health call to the server follows the first polls
            status, body = await asyncio.to_thread(health, health_port)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200 and body["status"] == "ok", body
        healthy = await asyncio.to_thread(check, health_port)
        assert healthy.returncode == 0 and healthy.stdout.startswith("healthy: "), healthy.stdout

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        await ended(worker)
        if dev is not None:
            await asyncio.to_thread(server.stop, dev)


def test_bad_settings_stop_the_worker_at_once_with_one_line():
    worker = worker_process(
        f"127.0.0.1:{free_port()}", "bad", TEMPORAL_TLS_CLIENT_CERT_PATH="/nonexistent/cert.pem", TEMPORAL_TLS_CLIENT_KEY_PATH="/nonexistent/key.pem"
    )
    output = worker.communicate(timeout=60)[0]
    assert worker.returncode == 2
    assert [line for line in output.splitlines() if line.strip()] == [
        next(line for line in output.splitlines() if "bad Temporal client settings" in line)
    ]
    assert "/nonexistent/cert.pem" in output and "waiting for Temporal" not in output


def test_health_check_without_an_endpoint_says_so():
    run = check(None)
    assert run.returncode == 1 and "RIG_HEALTH_PORT is not set" in run.stdout
    run = check(free_port())  # nothing listens there
    assert run.returncode == 1 and "no worker answers" in run.stdout
