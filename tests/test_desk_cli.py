"""The desk API from a desk's terminal, on a dev server started the way `make server` starts it:
the desk's namespace and endpoint are there, the README's desk lines run exactly as written with
the plain `temporal` CLI in the desk's namespace, and `rig desk …` never names the rig's."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config.load import load_config
from desk.worker import desk_worker
from protocol.contract import DEFAULT_TASK_QUEUE, RISK_WORKFLOW, account_task_queue, risk_workflow_id
from protocol.messages import RiskInput
from tests.accounts import with_fills
from tests.drills import free_port
from worker.main import build_worker
from worker.server import temporal_binary

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_desk_commands() -> list[str]:
    block = re.search(r"<!-- temporal-desk-cli:begin -->\n```sh\n(.*?)```\n<!-- temporal-desk-cli:end -->", README.read_text(), re.S)
    assert block, "README lost its desk CLI block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def launch_make_server(address: str) -> subprocess.Popen:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "RIG_SERVER_DB": "memory", "RIG_TASK_QUEUE": DEFAULT_TASK_QUEUE}
    environ.pop("RIG_DESKS_FILE", None)
    cmd = [sys.executable, "-m", "worker.server"]
    return subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def lines_until(proc: subprocess.Popen, wanted: str) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    while not seen or wanted not in seen[-1]:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, f"`make server` ended before {wanted!r}: {seen}"
        seen.append(line)
    return seen


async def run(argv: list[str], address: str, **environ: str) -> subprocess.CompletedProcess:
    env = os.environ | {"TEMPORAL_ADDRESS": address} | environ
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


@pytest_asyncio.fixture(scope="module")
async def make_server() -> AsyncIterator[str]:
    address = f"127.0.0.1:{free_port()}"
    proc = launch_make_server(address)
    try:
        said = await lines_until(proc, "endpoint rig-desk")
        assert said[-1].strip() == f"desk namespace desk: endpoint rig-desk → default/{DEFAULT_TASK_QUEUE}", said
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)


async def test_make_server_creates_the_desk_namespace_and_endpoint(make_server):
    temporal = temporal_binary()
    endpoint = await run([temporal, "operator", "nexus", "endpoint", "get", "--name", "rig-desk", "--address", make_server], make_server)
    assert endpoint.returncode == 0, endpoint.stderr
    assert re.search(r"Target\.Worker\.Namespace\s+default", endpoint.stdout) and re.search(
        rf"Target\.Worker\.TaskQueue\s+{DEFAULT_TASK_QUEUE}\b", endpoint.stdout
    )
    namespace = await run([temporal, "operator", "namespace", "describe", "--namespace", "desk", "--address", make_server], make_server)
    assert namespace.returncode == 0, namespace.stderr


async def test_readme_desk_lines_and_rig_desk_commands_go_through_the_endpoint(make_server):
    rig = await Client.connect(make_server, data_converter=pydantic_data_converter)  # the operator's, in the rig's namespace
    desk = await Client.connect(make_server, namespace="desk", data_converter=pydantic_data_converter)
    config = with_fills(load_config(), 1, other=0.0, cancel_cross_probability=0.0)  # orders stay WORKING until canceled
    async with build_worker(rig, DEFAULT_TASK_QUEUE), desk_worker(desk, "desk"):
        await rig.start_workflow(  # opening desk1 is an operator's step (README: Accounts)
            RISK_WORKFLOW,
            RiskInput(account="desk1", config=config, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id("desk1"),
            task_queue=account_task_queue(DEFAULT_TASK_QUEUE),
        )
        submit, status, replace, cancel, account = readme_desk_commands()
        outputs = {}
        for name, line in [("submit", submit), ("status", status), ("replace", replace), ("cancel", cancel), ("account", account)]:
            argv = shlex.split(line)
            assert argv[:2] == ["temporal", "workflow"] and "--namespace desk" in line, line
            done = await run([temporal_binary(), *argv[1:]], make_server)
            assert done.returncode == 0 and "Status          COMPLETED" in done.stdout, f"{line}\n{done.stdout}\n{done.stderr}"
            outputs[name] = done.stdout.replace(" ", "")
        assert '"verdict":"ACCEPTED"' in outputs["submit"] and '"state":"WORKING"' in outputs["submit"]
        assert '"intent_id":"desk1-d1"' in outputs["status"]
        assert '"accepted":true' in outputs["replace"] and '"new_intent_id":"desk1-d1.R1"' in outputs["replace"]
        assert '"accepted":true' in outputs["cancel"] and '"state":"CANCELED"' in outputs["cancel"]
        assert '"account":"desk1"' in outputs["account"]

        # `rig desk …`: the desk's namespace only (TEMPORAL_NAMESPACE names none that exists).
        cli = [sys.executable, "-m", "cli", "desk"]
        desk_env = {"TEMPORAL_NAMESPACE": "no-such-namespace"}
        done = await run(
            [*cli, "submit", "--account", "desk1", "--symbol", "AAPL", "--side", "BUY", "--qty", "100", "--price", "190", "--id", "desk1-c1"],
            make_server,
            **desk_env,
        )
        assert done.returncode == 0 and done.stdout.startswith("ACCEPTED desk1-c1 (WORKING)"), done.stdout + done.stderr
        done = await run([*cli, "cancel", "desk1-c1"], make_server, **desk_env)
        assert done.returncode == 0 and done.stdout.startswith("accepted:"), done.stdout + done.stderr
        refused = await run(
            [*cli, "submit", "--account", "desk2", "--symbol", "AAPL", "--side", "BUY", "--qty", "100", "--price", "190"], make_server, **desk_env
        )
        assert (refused.returncode, refused.stderr, refused.stdout) == (1, "error: desk 'desk' may not trade account 'desk2'\n", "")
        bad = await run([*cli, "replace", "desk1-c1", "--qty", "0"], make_server, **desk_env)
        assert (bad.returncode, bad.stderr, bad.stdout) == (2, "error: quantity: Input should be greater than or equal to 1\n", "")
    await rig.get_workflow_handle(risk_workflow_id("desk1")).terminate("test over")
