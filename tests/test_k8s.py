"""Beyond one host, on paper: the Kubernetes files agree with what the compose stack and the code
run (shards, dynamic config, health check, metrics port, the variables the worker reads)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from worker import server

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def worker_container() -> tuple[dict, dict]:
    deployment = yaml.safe_load((K8S / "worker.yaml").read_text())
    assert deployment["kind"] == "Deployment"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def test_the_worker_deployment_is_one_build_with_probes_resources_and_metrics():
    deployment, container = worker_container()
    env = {e["name"]: e["value"] for e in container["env"]}
    build = env["RIG_BUILD_ID"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["risk-rig/build-id"] == build == container["image"].rsplit(":", 1)[1]
    assert deployment["metadata"]["name"].endswith(build), "one Deployment per build: the next release runs beside it"
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    compose_check = compose_services()["worker"]["healthcheck"]["test"]
    assert container["readinessProbe"]["exec"]["command"] == compose_check[1:]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert ports == {"metrics": int(env["RIG_METRICS_PORT"]), "health": int(env["RIG_HEALTH_PORT"])}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == env["RIG_METRICS_PORT"]
    requests = container["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    # Every variable is one the rig's code or the SDK's envconfig reads.
    source = "\n".join(p.read_text() for p in (ROOT / "worker").rglob("*.py"))
    for name in env:
        assert (name.startswith("RIG_") and f'"{name}"' in source) or re.fullmatch(r"TEMPORAL_(ADDRESS|NAMESPACE|TLS_\w+|API_KEY)", name), name


def test_the_helm_values_keep_the_stacks_shards_and_server_settings():
    values = yaml.safe_load((K8S / "temporal-values.yaml").read_text())["server"]
    assert values["config"]["numHistoryShards"] == int(compose_services()["temporal"]["environment"]["NUM_HISTORY_SHARDS"])
    dynamic = {k: v[0]["value"] for k, v in values["dynamicConfig"].items() if not v[0].get("constraints")}
    assert server.dynamic_config_values().items() <= dynamic.items()
    for service in ("frontend", "history", "matching"):
        assert values[service]["replicaCount"] >= 2 and values[service]["resources"]["requests"]
    assert values["archival"]["history"]["state"] == "enabled"
    for store in ("default", "visibility"):
        sql = values["config"]["persistence"][store]["sql"]
        assert "password" not in sql and sql["existingSecret"], "database passwords come from Secrets"
