"""`rig scenarios` and `make demo` (cli/scenarios.py): the run digest in the table (shortened) and in
full below it; `--repeat N`, the flake detector; the time-skipping mode asked of the server
(worker/capabilities.py), never guessed from error text."""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import yaml

from activities.scenarios import SCENARIO_DIR
from cli import scenarios as cli_scenarios
from tests.conftest import TASK_QUEUE
from tests.drills import arig, free_port
from worker import server
from worker.connection import connect
from worker.main import build_worker

ROOT = Path(__file__).resolve().parents[1]


def rig(address: str, *args: str):  # a whole scenario suite may run: a longer timeout
    return arig(address, *args, timeout=240)


async def test_the_table_shows_each_digest_short_and_in_full_below(env, worker, scenario_runs):
    done = await rig(env.client.service_client.config.target_host, "scenarios", "A", "full_day")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "time skipping: on" in out
    table, below = out.split("run digests:", 1)
    assert re.search(r"\bdigest\b", table.splitlines()[1])  # a column of the table
    for name in ("A", "full_day"):
        expected = (await scenario_runs[name])[0].digest  # the same digest as the session's run
        assert re.search(rf"^{name}\s+PASS\s.*{re.escape(expected[:15])}…", table, re.M), table
        assert re.search(rf"^\s+{name}\s+{re.escape(expected)}$", below, re.M), below
    assert "2/2 passed" in out


async def test_repeat_reports_agreeing_digests(env, worker):
    done = await rig(env.client.service_client.config.target_host, "scenarios", "--repeat", "3", "A", "random_flow")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^A\s+AGREE\s+3/3\s+1\s+3/3", done.stdout, re.M), done.stdout
    assert re.search(r"^random_flow\s+AGREE\s+3/3\s+1\s", done.stdout, re.M), done.stdout
    assert "2/2 scenarios gave one digest in 3 runs" in done.stdout


async def test_repeat_refuses_fewer_than_two_runs_and_unknown_names(env):
    address = env.client.service_client.config.target_host
    once, unknown = await asyncio.gather(rig(address, "scenarios", "--repeat", "1", "A"), rig(address, "scenarios", "--repeat", "2", "nope"))
    assert once.returncode == 2 and "2 or more" in once.stderr
    assert unknown.returncode == 2 and "unknown scenarios: nope" in unknown.stderr


async def test_repeat_reports_disagreeing_digests_with_the_first_difference(client, worker, monkeypatch, capsys):
    """A flake, staged: every other run of random_flow is really another seed."""
    other = yaml.safe_load((SCENARIO_DIR / "random_flow.yaml").read_text())
    other["random_orders"]["seed"] += 1
    real_run_one, calls = cli_scenarios.run_one, []

    async def flaky(runner, name):
        calls.append(name)
        return await real_run_one(runner, other if len(calls) % 2 == 0 else name)

    monkeypatch.setattr(cli_scenarios, "run_one", flaky)
    monkeypatch.setenv("RIG_TASK_QUEUE", TASK_QUEUE)
    code = await cli_scenarios.repeat_scenarios(client, ["random_flow"], 2)
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(r"^random_flow\s+DISAGREE\s+2/2\s+2\s", out, re.M), out
    assert len(re.findall(r"^\s+1× sha256:[0-9a-f]{64}", out, re.M)) == 2, out
    assert "first difference (" in out and "expected" in out and "observed" in out
    assert "0/1 scenarios gave one digest in 2 runs" in out


async def test_a_server_without_time_skipping_runs_scenarios_in_real_time(monkeypatch, capsys):
    """Temporal's default dynamic config: the probe says no, and `rig scenarios` says so."""
    port = free_port()
    proc = await asyncio.to_thread(server.start, "127.0.0.1", port, None, dynamic_config=None)
    try:
        client = await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        monkeypatch.setenv("RIG_TASK_QUEUE", "plain")
        async with build_worker(client, "plain"):
            code = await cli_scenarios.run_scenarios(client, ["A"])
    finally:
        await asyncio.to_thread(server.stop, proc)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "time skipping: off" in out and "real time" in out and "1/1 passed" in out


async def test_demo_runs_on_its_embedded_server_with_digests_in_table_and_reports(monkeypatch, tmp_path, capsys):
    port = free_port()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("RIG_TASK_QUEUE", "demo")
    monkeypatch.setattr(server, "STATE_DIR", tmp_path / "state")
    code = await cli_scenarios.demo(argparse.Namespace(names=["A"], keep=False, report=str(tmp_path / "reports")))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "starting the embedded Temporal dev server" in out and "time skipping: on" in out and "1/1 passed" in out
    digest = re.search(r"^\s+A\s+(sha256:[0-9a-f]{64})$", out, re.M).group(1)
    assert f"<code id='run-digest'>{digest}</code>" in (tmp_path / "reports" / "A.html").read_text()
