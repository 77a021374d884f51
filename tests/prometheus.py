"""Debian's prometheus run with the stack's own scrape config, for the metrics test and the
README's screenshot (tests/metrics_screenshot.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
WORKER_JOB = "risk-rig-worker"


def config_for(targets: list[str], interval: str) -> dict:
    """The stack's file with compose's DNS lookup of `worker` replaced by the addresses it would
    return, and another interval: everything else of the worker job (name, path, scheme) as shipped."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = interval
    job = next(j for j in config["scrape_configs"] if j["job_name"] == WORKER_JOB)
    del job["dns_sd_configs"]
    job["static_configs"] = [{"targets": targets}]
    config["scrape_configs"] = [job]
    return config


def start(directory: Path, targets: list[str], web: int, interval: str = "1s") -> subprocess.Popen:
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config_for(targets, interval)))
    return subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def query(base: str, expr: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10) as response:
        return json.loads(response.read())
