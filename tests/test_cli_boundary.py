"""Issue 20, the CLI's side: no traceback ever (a broken file, a closed pipe, an unwritable
directory), errors on stderr in one line, bounded files refused before anything is sent, and
`rig demo --keep` stopping its dev server on SIGINT and SIGTERM within seconds, as `make server`
does (tests/test_compose.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError, RPCStatusCode

from config.load import DEFAULT_RULES, MAX_CONFIG_FILE_BYTES
from domain.rules import MAX_RESTRICTED_SYMBOLS
from protocol.contract import UPDATE_SET_RULES, risk_workflow_id
from tests.accounts import open_account
from tests.drills import arig, free_port, rig
from tests.test_cli import one_line_error
from tests.test_compose import kill_leftovers, temporal_processes_on
from worker import server

ROOT = Path(__file__).resolve().parents[1]
STOPS_WITHIN = 10.0  # seconds from the signal to the demo's exit, its dev server gone


@pytest.fixture
def address(env) -> str:
    return env.client.service_client.config.target_host


def rules_json(config, **controls) -> dict:
    data = config.rules.model_dump(mode="json")
    data["controls"] |= controls
    return data


async def accepted_rules_updates(client, account: str) -> int:
    events = [e async for e in client.get_workflow_handle(risk_workflow_id(account)).fetch_history_events()]
    return sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == UPDATE_SET_RULES
    )


async def test_rules_just_under_2_mib_are_refused_by_rig_account_rules_and_nothing_is_sent(address, env, client, worker, config, account, tmp_path):
    """189,700 restricted symbols, as in the issue: accepted, then the account was stuck at its
    next continue-as-new. Now the file is over the size cap; one symbol over the list's bound is
    refused too, naming the limit."""
    await open_account(env, account, config, other=0.0)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(rules_json(config, restricted={"symbols": [f"R{n:06d}" for n in range(189_700)]})))
    assert MAX_CONFIG_FILE_BYTES < huge.stat().st_size < 2 * 1024 * 1024
    line = one_line_error(await arig(address, "account", "rules", account, str(huge)), 2)
    assert line == f"config error: {huge}: (file): larger than the limit of {MAX_CONFIG_FILE_BYTES:,} bytes"
    over = tmp_path / "over.json"
    over.write_text(json.dumps(rules_json(config, restricted={"symbols": [f"R{n:06d}" for n in range(MAX_RESTRICTED_SYMBOLS + 1)]})))
    line = one_line_error(await arig(address, "account", "rules", account, str(over)), 2)
    assert f"controls.restricted.symbols: List should have at most {MAX_RESTRICTED_SYMBOLS} items" in line, line
    assert await accepted_rules_updates(client, account) == 0


async def test_a_duplicated_hard_cap_is_refused_and_nothing_is_sent(address, env, client, worker, config, account, tmp_path):
    await open_account(env, account, config, other=0.0)
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text(DEFAULT_RULES.read_text() + "hard_cap_pct: 500\n")
    line = one_line_error(await arig(address, "account", "rules", account, str(doubled)), 2)
    assert "duplicate key 'hard_cap_pct' (first on line" in line, line
    assert await accepted_rules_updates(client, account) == 0


async def test_files_that_are_not_utf8_are_one_line_naming_the_byte(address, client, worker, account, tmp_path):
    rules = tmp_path / "latin1.yaml"
    rules.write_bytes(DEFAULT_RULES.read_bytes().replace(b"# Risk rules", "# Règles".encode("latin-1"), 1))
    for args in (("--rules", str(rules), "check-config"), ("account", "rules", account, str(rules))):
        line = one_line_error(await arig(address, *args), 2)
        assert line == f"config error: {rules}: line 1, byte 3: not UTF-8 (byte 0xe8); save the file as UTF-8", line
    bod = tmp_path / "bod.csv"
    bod.write_bytes("symbol,bucket,quantity,avg_cost\nAAPL,LT,10,100\n# coût\n".encode("latin-1"))
    line = one_line_error(await arig(address, "account", "open", account, "--equity", "1000000", "--positions", str(bod)), 2)
    assert line == f"error: {bod}: line 3, byte 51: not UTF-8 (byte 0xfb); save the file as UTF-8", line
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(risk_workflow_id(account)).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND, "a refused file opens nothing"


async def test_a_rules_file_20000_deep_is_one_line(address, account, tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("session: " + "[" * 20_000 + "]" * 20_000 + "\n")
    for args in (("--rules", str(deep), "check-config"), ("account", "rules", account, str(deep))):
        line = one_line_error(await arig(address, *args), 2)
        assert line == f"config error: {deep}: line 1: nested deeper than the limit of 32 levels", line


def run_into_closed_pipe(address: str, *args: str) -> subprocess.CompletedProcess:
    """`rig … | head` when head has already gone: every write to stdout meets a closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"}
        return subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, env=environ, timeout=60
        )
    finally:
        os.close(write_end)


async def test_an_account_view_into_a_closed_pipe_ends_quietly(address, env, worker, config, account):
    await open_account(env, account, config, other=0.0)
    for args in (("account", account), ("account", account, "--json"), ("check-config",)):
        run = await asyncio.to_thread(run_into_closed_pipe, address, *args)
        assert (run.returncode, run.stderr) == (141, ""), (args, run.returncode, run.stderr)


def test_market_errors_are_one_line_on_stderr(tmp_path):
    run = rig("127.0.0.1:1", "market", "generate", "--seed", "1", "--scale", "0.001", "--out", "/proc/nope")
    assert one_line_error(run, 2).startswith("error: cannot write /proc/nope: "), run.stderr
    run = rig("127.0.0.1:1", "market", "show", "AAPL", "--at", "25:00", "--seed", "1", "--scale", "0.001")
    assert one_line_error(run, 2) == "error: --at '25:00': expected HH:MM or HH:MM:SS" and run.stdout == ""
    broken = tmp_path / "day"
    assert rig("127.0.0.1:1", "market", "generate", "--seed", "1", "--scale", "0.001", "--out", str(broken)).returncode == 0
    (broken / "day.json").write_text('{"date": "not a date", "secret": "' + "s" * 500 + '"}')
    run = rig("127.0.0.1:1", "market", "show", "AAPL", "--at", "10:00", "--from", str(broken))
    line = one_line_error(run, 2)
    assert "day.json" in line and "sss" not in line, line


# ── rig demo --keep stops its server like `make server` ─────────────────────────────────────
def demo_process(tmp_path: Path, port: int, wrapper: list[str] | None = None) -> subprocess.Popen:
    environ = os.environ | {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "RIG_SERVER_DB": str(tmp_path / "demo.sqlite"),
        "RIG_TASK_QUEUE": f"demo-{port}",
    }
    command = [sys.executable, "-m", "cli", "demo", "A", "--keep", "--report", str(tmp_path / "reports")]
    return subprocess.Popen([*(wrapper or []), *command], cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def demos_on(port: int) -> list[int]:
    """`python -m cli demo` processes started for this port."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
            except OSError:
                continue
            if b"demo" in argv.split(b"\0") and f"RIG_TASK_QUEUE=demo-{port}".encode() in environ.split(b"\0"):
                found.append(int(proc.name))
    return found


def kill_demos(port: int) -> None:
    for pid in demos_on(port):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kept_up(demo: subprocess.Popen, port: int) -> None:
    assert demo.stdout is not None
    seen = []
    for line in demo.stdout:
        seen.append(line)
        if "kept up for inspection" in line:
            break
    assert "1/1 passed\n" in seen, "".join(seen)
    assert server.reachable("127.0.0.1", port) and temporal_processes_on(port)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_keep_stops_its_dev_server_on_sigint_and_sigterm(tmp_path, sig):
    port = free_port()
    demo = demo_process(tmp_path, port)
    try:
        kept_up(demo, port)
        demo.send_signal(sig)
        signalled = time.monotonic()
        code = demo.wait(STOPS_WITHIN)
        stopped_in = time.monotonic() - signalled
        rest = demo.stdout.read()
        assert code == 0 and "embedded server stopped" in rest, (code, rest)
        assert not server.reachable("127.0.0.1", port) and not temporal_processes_on(port), f"the dev server outlived the demo ({stopped_in:.1f}s)"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        kill_leftovers(port)


def test_the_demo_and_its_server_go_when_the_launchers_parent_dies(tmp_path):
    """`make demo` killed (make does not pass its signal on): the demo gets SIGTERM from the kernel."""
    port = free_port()
    shell = demo_process(tmp_path, port, wrapper=["/bin/sh", "-c", '"$@"; echo launcher exited $?', "sh"])
    try:
        kept_up(shell, port)
        shell.kill()  # SIGKILL: nothing of the shell's own runs
        shell.wait(10)
        deadline = time.monotonic() + STOPS_WITHIN
        while time.monotonic() < deadline and (demos_on(port) or temporal_processes_on(port)):
            time.sleep(0.1)
        assert not demos_on(port), "the demo outlived its launcher"
        assert not server.reachable("127.0.0.1", port) and not temporal_processes_on(port), "the dev server outlived its launcher"
    finally:
        kill_demos(port)
        kill_leftovers(port)
