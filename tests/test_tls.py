"""Access that is not open: the worker, `rig` and the `temporal` CLI connect with TLS client
certificates from the same environment variables (TEMPORAL_TLS_*, the SDK's envconfig), through a
TLS-terminating proxy that verifies client certificates in front of the dev server (which has no
TLS of its own): Debian's nginx with its stream module (`make ops-tools`), speaking h2 by ALPN as
gRPC clients require. A client without a certificate from the CA is refused. The certificates
are the ones `make certs` makes (deploy/certs/make-certs.sh)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.drills import ROOT, free_port, wait_polling, worker_process
from worker import server
from worker.connection import connect_settings

MAKE_CERTS = ROOT / "deploy" / "certs" / "make-certs.sh"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

NGINX_CONF = """load_module {module};
daemon off;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
stream {{
  server {{
    listen 127.0.0.1:{port} ssl;
    proxy_pass 127.0.0.1:{upstream};
    ssl_certificate {certs}/server.pem;
    ssl_certificate_key {certs}/server.key;
    ssl_client_certificate {certs}/ca.pem;
    ssl_verify_client on;
    ssl_alpn h2;
  }}
}}
"""


def make_certs(out: Path, ca: Path) -> None:
    run = subprocess.run(["/bin/sh", str(MAKE_CERTS), str(out), str(ca)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest_asyncio.fixture(scope="module")
async def tls_front(tmp_path_factory) -> AsyncIterator[dict]:
    """A dev server and nginx in front of it on its own port: TLS, client certificate required."""
    base = tmp_path_factory.mktemp("tls")
    certs, other = base / "certs", base / "other"
    make_certs(certs, base / "ca")
    make_certs(other, base / "other-ca")  # a second CA: its certificates must be refused
    upstream, port = free_port(), free_port()
    dev = await asyncio.to_thread(server.start, "127.0.0.1", upstream, None)
    (base / "nginx.conf").write_text(NGINX_CONF.format(module=STREAM_MODULE, prefix=base, port=port, upstream=upstream, certs=certs))
    proxy = start_proxy(base)
    try:
        assert await asyncio.to_thread(_listening, port, proxy), "nginx did not start (make ops-tools installs it)"
        yield {"address": f"127.0.0.1:{port}", "plain": f"127.0.0.1:{upstream}", "certs": certs, "other": other}
    finally:
        proxy.terminate()
        await asyncio.to_thread(proxy.wait, 10)
        await asyncio.to_thread(server.stop, dev)


def start_proxy(prefix: Path) -> subprocess.Popen:
    conf = prefix / "nginx.conf"
    return subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", "stderr"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _listening(port: int, proc: subprocess.Popen) -> bool:
    import time

    for _ in range(100):
        if proc.poll() is not None:
            return False
        if server.reachable("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def tls_env(front: dict, client: str | None, certs: Path | None = None) -> dict[str, str]:
    """The SDK's (and the `temporal` CLI's) variables for `client`'s certificate; None: no certificate."""
    certs = certs or front["certs"]
    env = {
        "TEMPORAL_ADDRESS": front["address"],
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(front["certs"] / "ca.pem"),
        "TEMPORAL_TLS_SERVER_NAME": "temporal",
    }
    if client:
        env |= {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs / f"{client}.pem"), "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs / f"{client}.key")}
    return env


def rig(env: dict[str, str], *args: str, queue: str = "tls-rig") -> subprocess.CompletedProcess:
    # Only what is given: nothing of the session's own TEMPORAL_* settings leaks in.
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=base | env | {"RIG_TASK_QUEUE": queue}, capture_output=True, text=True, timeout=90
    )


async def test_worker_and_rig_work_through_mtls(tls_front):
    queue = "tls-rig"
    worker = worker_process(tls_front["address"], queue, **tls_env(tls_front, "worker"))
    try:
        await wait_polling(worker)
        admin = tls_env(tls_front, "admin")
        opened = await asyncio.to_thread(rig, admin, "account", "open", "tlsdesk", "--equity", "1000000", "--synthetic")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        submitted = await asyncio.to_thread(
            rig, admin, "submit", "--account", "tlsdesk", "--symbol", "AAPL", "--side", "BUY", "--qty", "100", "--price", "1", "--id", "tls-o1"
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        shown = await asyncio.to_thread(rig, admin, "show", "tls-o1")
        assert shown.returncode == 0 and "tls-o1" in shown.stdout, shown.stdout + shown.stderr
        # The `temporal` CLI takes the very same variables.
        listed = await asyncio.to_thread(
            subprocess.run,
            [server.temporal_binary(), "workflow", "describe", "--workflow-id", "risk-tlsdesk", "--output", "json"],
            env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")} | admin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert json.loads(listed.stdout)["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    finally:
        worker.terminate()
        await asyncio.to_thread(worker.wait, 15)


async def test_clients_without_a_certificate_of_the_ca_are_refused(tls_front):
    cases = {
        "no client certificate": tls_env(tls_front, None),
        "a certificate of another CA": tls_env(tls_front, "admin", certs=tls_front["other"]),
        "plain text to the TLS port": {"TEMPORAL_ADDRESS": tls_front["address"], "TEMPORAL_NAMESPACE": "default"},
    }
    for case, env in cases.items():
        run = await asyncio.to_thread(rig, env, "list")
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, (case, run.stdout, run.stderr)
        assert f"cannot reach Temporal at {tls_front['address']}" in lines[0] and "Traceback" not in run.stderr, case
    # The same client with the CA's certificate is let in (the refusals above are the certificate's doing).
    assert (await asyncio.to_thread(rig, tls_env(tls_front, "admin"), "list")).returncode == 0


async def test_a_worker_without_a_certificate_keeps_waiting_and_never_polls(tls_front):
    worker = worker_process(tls_front["address"], "tls-refused", **tls_env(tls_front, None))
    try:
        lines = [await asyncio.to_thread(worker.stdout.readline) for _ in range(2)]
        assert all(line.startswith("waiting for Temporal (attempt") for line in lines), lines
        assert worker.poll() is None  # retrying with backoff, not exited
    finally:
        worker.terminate()
        rest = (await asyncio.to_thread(worker.communicate, timeout=15))[0]
    assert "worker polling" not in rest


def test_tls_and_api_key_come_from_the_sdks_environment_variables(tmp_path, monkeypatch):
    certs = tmp_path / "certs"
    make_certs(certs, tmp_path / "ca")
    env = {
        "TEMPORAL_ADDRESS": "temporal.example:7233",
        "TEMPORAL_NAMESPACE": "desk",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certs / "ca.pem"),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs / "worker.pem"),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs / "worker.key"),
        "TEMPORAL_TLS_SERVER_NAME": "temporal",
        "TEMPORAL_API_KEY": "k-123",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    settings = connect_settings()  # what the worker and `rig` connect with
    tls = settings["tls"]
    assert settings["target_host"] == "temporal.example:7233" and settings["namespace"] == "desk" and settings["api_key"] == "k-123"
    assert tls.domain == "temporal" and tls.client_cert == (certs / "worker.pem").read_bytes()
    assert tls.server_root_ca_cert == (certs / "ca.pem").read_bytes()
