"""Dashboards you can open: the Prometheus config of the compose stack (checked with Debian's
promtool and run by Debian's prometheus against two real worker processes, the way compose's
replicas are scraped: the same port on two addresses), and the Grafana provisioning with the rig's
dashboard, whose every metric name is one the worker really exports (scraped here) or one the
workflow code emits only once that work happens (tests/test_operations.py reads each off a worker)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import yaml

from protocol.contract import SCENARIO_WORKFLOW
from scenarios.spec import ScenarioReport
from tests import prometheus
from tests.drills import ROOT, free_port, wait_polling, worker_process
from tests.prometheus import PROMETHEUS, PROMETHEUS_CONFIG, WORKER_JOB

GRAFANA = ROOT / "deploy" / "grafana"
RIG_DASHBOARD = GRAFANA / "dashboards" / "rig.json"
COMPOSE = ROOT / "docker-compose.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
REPLICAS = ("127.0.0.1", "127.0.0.2")  # two addresses, one port: like two compose replicas
# Metric names the dashboard shows that workflow code emits, each only once its kind of work happened
# (a de-risk intent, a LOST order, a cycle timer): tests/test_operations.py reads them off a worker.
FROM_WORKFLOWS = {"rig_derisk_intents", "rig_orders_lost", "rig_cycle_lag_bucket"}
PROMETHEUS_INTERNAL = {"up"}


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def scrape_config() -> dict:
    return {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(RIG_DASHBOARD.read_text())["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers followed by `{`, `[` or `)`/space that are
    not functions, aggregations, label names or keywords."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", without_labels))
    grouping = set(re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", without_labels))
    grouped = {w.strip() for g in grouping for w in g.split(",")}
    keywords = {"by", "without", "on", "ignoring", "bool", "and", "or", "unless", "le", "rate_interval"}
    return {w for w in words - grouped - keywords if w.startswith(("rig_", "temporal_")) or w in PROMETHEUS_INTERNAL}


# ---------------------------------------------------------------------------------------------
# The files


def test_prometheus_config_is_valid_and_finds_the_services_through_compose_dns():
    check = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    jobs, svc = scrape_config(), services()
    worker_sd = jobs[WORKER_JOB]["dns_sd_configs"]
    assert worker_sd == [{"names": ["worker"], "type": "A", "port": int(svc["worker"]["environment"]["RIG_METRICS_PORT"]), "refresh_interval": "15s"}]
    assert "static_configs" not in jobs[WORKER_JOB]  # never a host port: every replica by DNS
    server_sd = jobs["temporal-server"]["dns_sd_configs"]
    assert server_sd == [{"names": ["temporal"], "type": "A", "port": int(svc["temporal"]["environment"]["PROMETHEUS_ENDPOINT"].rsplit(":", 1)[1])}]
    assert "ports" not in svc["worker"], "workers are scraped over the compose network, not through host ports"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in svc["prometheus"]["volumes"] if v.startswith("./")}
    assert (ROOT / mounted["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS_CONFIG
    debian = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True, timeout=30)
    version = re.search(r"prometheus, version (\d+\.\d+\.\d+)", debian.stdout + debian.stderr)
    assert version and svc["prometheus"]["image"].endswith(f":v{version.group(1)}"), "the image runs the version the tests check with"


def test_grafana_provisions_prometheus_and_both_dashboard_folders():
    svc = services()
    grafana = svc["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in datasources] == [("prometheus", "prometheus", "http://prometheus:9090")]
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]
    paths = {p["options"]["path"] for p in providers}
    assert paths == {"/var/lib/grafana/dashboards/rig", "/var/lib/grafana/dashboards/temporal"}
    assert (ROOT / mounts["/var/lib/grafana/dashboards/rig"]).resolve() == RIG_DASHBOARD.parent
    assert mounts["/var/lib/grafana/dashboards/temporal"] == "grafana-temporal-dashboards"
    fetcher = svc["grafana-dashboards"]
    assert "grafana-temporal-dashboards:/dashboards" in fetcher["volumes"]
    assert grafana["depends_on"]["grafana-dashboards"]["condition"] == "service_completed_successfully"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_temporal_dashboards_are_fetched_at_a_pinned_commit_and_checked(tmp_path):
    script = GRAFANA / "fetch-temporal-dashboards.sh"
    text = script.read_text()
    assert re.search(r"^COMMIT=[0-9a-f]{40}$", text, re.M)
    fetched = re.findall(r"^fetch (\S+) ([0-9a-f]{64})$", text, re.M)
    assert {path for path, _ in fetched} == {"server/server-general.json", "sdk/temporal-core-sdks-otel.json"}
    # A download that is not the pinned file fails the job (and Grafana, which waits for it, starts not).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_curl = bin_dir / "curl"
    fake_curl.write_text('#!/bin/sh\nwhile [ "$1" != "--output" ]; do shift; done\necho tampered > "$2"\n')
    fake_curl.chmod(0o755)
    out = tmp_path / "dashboards"
    out.mkdir()
    run = subprocess.run(["/bin/sh", str(script), str(out)], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and not list(out.glob("*.json")), run.stdout + run.stderr


def test_rig_dashboard_is_a_well_formed_grafana_dashboard():
    dash = json.loads(RIG_DASHBOARD.read_text())
    assert dash["uid"] == "risk-rig" and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for wanted in ("decisions by mode", "pre-trade latency p50 / p99", "orders by state", "de-risk intents", "lost orders", "cycle lag"):
        assert wanted in titles, wanted
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["targets"]
        for target in panel["targets"]:
            assert target["expr"] and target["refId"] and target["datasource"]["uid"] == "prometheus"


# ---------------------------------------------------------------------------------------------
# Against two real worker processes and Debian's prometheus


@pytest_asyncio.fixture(scope="module")
async def two_replicas(env) -> AsyncIterator[dict]:
    """Two worker processes on one task queue, metrics on the same port at two addresses, with
    scenarios run through them (time-skipped: started through the session's env client)."""
    address = env.client.service_client.config.target_host
    queue = f"replicas-{uuid.uuid4().hex[:8]}"
    port = free_port()
    workers = [
        worker_process(address, queue, RIG_METRICS_PORT=str(port), RIG_METRICS_BIND=host, RIG_VISIBILITY_METRICS_SECONDS="1") for host in REPLICAS
    ]
    try:
        await asyncio.gather(*[wait_polling(w) for w in workers])
        for name in ("throttle_refuses_new_risk", "full_day"):
            report = await env.client.execute_workflow(SCENARIO_WORKFLOW, name, id=f"{queue}-{name}", task_queue=queue, result_type=ScenarioReport)
            assert report.passed
        yield {"targets": [f"{host}:{port}" for host in REPLICAS]}
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            await asyncio.to_thread(w.wait, 15)


def scrape(target: str) -> str:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        return response.read().decode()


def exported(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def as_instant(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace('"$namespace"', '".*"')


async def test_prometheus_scrapes_both_replicas_with_the_stack_config(two_replicas, tmp_path):
    web = free_port()
    proc = prometheus.start(tmp_path, two_replicas["targets"], web)
    base = f"http://127.0.0.1:{web}"
    try:
        up: dict = {}
        for _ in range(150):
            await asyncio.sleep(0.2)
            try:
                result = (await asyncio.to_thread(prometheus.query, base, f'up{{job="{WORKER_JOB}"}}'))["data"]["result"]
            except OSError:
                continue
            up = {r["metric"]["instance"]: r["value"][1] for r in result}
            if len(up) == 2 and set(up.values()) == {"1"}:
                break
        assert up == {t: "1" for t in two_replicas["targets"]}, up
        # Both replicas' own series reach Prometheus.
        per_instance = (await asyncio.to_thread(prometheus.query, base, "count by (instance) (temporal_worker_task_slots_available)"))["data"][
            "result"
        ]
        assert {r["metric"]["instance"] for r in per_instance} == set(two_replicas["targets"])
        # Every query of the rig dashboard is valid PromQL for this Prometheus.
        for expr in dashboard_exprs():
            answer = await asyncio.to_thread(prometheus.query, base, as_instant(expr))
            assert answer["status"] == "success", (expr, answer)
        decisions = await asyncio.to_thread(prometheus.query, base, "sum(rig_decisions)")
        assert float(decisions["data"]["result"][0]["value"][1]) > 0
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)


async def test_every_metric_on_the_rig_dashboard_is_exported_by_the_worker(two_replicas):
    names: set[str] = set()
    for target in two_replicas["targets"]:
        names |= exported(await asyncio.to_thread(scrape, target))
    used = set().union(*[metric_names(e) for e in dashboard_exprs()])
    missing = used - names - PROMETHEUS_INTERNAL - FROM_WORKFLOWS
    assert not missing, f"the dashboard queries metrics no worker exports: {sorted(missing)}"
    assert used >= FROM_WORKFLOWS  # wired on the dashboard
    readme = (ROOT / "README.md").read_text()
    for name in FROM_WORKFLOWS:
        assert name.removesuffix("_bucket") in readme, f"README must say where {name} is emitted"
    assert {"rig_decisions", "rig_orders_open", "rig_accounts_by_mode", "temporal_local_activity_execution_latency_bucket"} <= names


def test_metric_names_are_read_from_promql():
    expr = 'histogram_quantile(0.99, sum by (le, mode) (rate(rig_cycle_lag_bucket{task_queue=~"x"}[1m]))) / count(up{job="w"} == 1)'
    assert metric_names(expr) == {"rig_cycle_lag_bucket", "up"}
