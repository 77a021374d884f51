"""The README's `temporal` CLI lines, run exactly as written against the real binary."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

from protocol.contract import DEFAULT_TASK_QUEUE, risk_workflow_id
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from worker.main import build_worker
from worker.server import temporal_binary

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    block = re.search(r"<!-- temporal-cli:begin -->\n```sh\n(.*?)```\n<!-- temporal-cli:end -->", README.read_text(), re.S)
    assert block, "README lost its temporal CLI block"
    return [line for line in block.group(1).splitlines() if line.strip()]


async def run(command: str, address: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "temporal"
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"}
    done = await asyncio.to_thread(subprocess.run, [temporal_binary(), *argv[1:]], capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def rig(address: str, *args: str) -> str:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 0, f"rig {args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def run_until(command: str, address: str, wanted: str, attempts: int = 50, also: str | None = None) -> str:
    for _ in range(attempts):
        out = await run(command, address)
        if wanted in out or (also is not None and also in out):
            return out
        await asyncio.sleep(0.2)
    return out


async def test_readme_temporal_cli_lines(env):
    address = env.client.service_client.config.target_host
    # A plain (not time-skipping) client: the desk1 account runs in real time, as for a user.
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    open_account, start, query, listing, cancel, scenario = readme_commands()
    async with build_worker(client, DEFAULT_TASK_QUEUE):
        assert "risk-desk1" in await run(open_account, address)  # nothing is opened implicitly
        assert "desk1-o4" in await run(start, address)
        assert "desk1-o4" in await run(start, address), "a repeat start returns the existing order"
        # Open at the venue: WORKING, or PARTIAL_FILL if the seeded arrival attempt filled part of it.
        queried = await run_until(query, address, '"state":"WORKING"', also='"state":"PARTIAL_FILL"')
        assert '"state":"WORKING"' in queried or '"state":"PARTIAL_FILL"' in queried, queried
        assert "desk1-o4" in await run_until(listing, address, "desk1-o4")  # visibility catches up
        canceled = await run(cancel, address)
        # desk1 is a live account: its 60 s cycle may fill the rest first; then the cancel is
        # answered "too late to cancel" (FIX) and the order is FILLED. Both answers are checked.
        if "accepted:true" in canceled:
            final = "CANCELED"
        else:
            assert "refusal:TOO_LATE_TO_CANCEL" in canceled, canceled
            final = "FILLED"
        assert f"state:{final}" in canceled, canceled
        # The project CLI reads the same order through queries and search attributes.
        shown = await rig(address, "show", "desk1-o4")
        assert final in shown and "history:" in shown and "VENUE_ACKED" in shown
        for _ in range(50):
            listed = await rig(address, "list", "--state", final, "--account", "desk1")
            if "desk1-o4" in listed:
                break
            await asyncio.sleep(0.2)
        assert f'OrderState="{final}"' in listed and "desk1-o4" in listed and "AAPL" in listed
        report = await run(scenario, address)
        assert "Status          COMPLETED" in report and '"passed":true' in report.replace(" ", "") and "SOFT_DERISK" in report
        assert re.search(r'"digest":"sha256:[0-9a-f]{64}"', report.replace(" ", "")), report  # the run digest, in the report
    await client.get_workflow_handle(risk_workflow_id("desk1")).terminate("test over")
