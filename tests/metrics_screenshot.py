"""The README's metrics screenshot, taken for real: a time-skipping dev server, two worker
processes (metrics on one port at two addresses, as compose's replicas), Debian's prometheus with
the stack's scrape config, scenarios run through the workers for a while, then Prometheus's own
graph page of the rig dashboard's queries, in headless Chromium.

    .venv/bin/python -m tests.metrics_screenshot docs/prometheus-rig.png [--seconds 150]

Grafana itself is not installable here (no image registry, not a Debian package, not on PyPI or
npm), so the picture is Prometheus's UI over the same queries the provisioned Grafana dashboard
(deploy/grafana/dashboards/rig.json) runs."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

from playwright.async_api import async_playwright

from protocol.contract import SCENARIO_WORKFLOW
from scenarios.spec import ScenarioReport
from tests import prometheus
from tests.drills import free_port, wait_polling, worker_process
from worker.connection import exit_now
from worker.server import time_skipping_environment

REPLICAS = ("127.0.0.1", "127.0.0.2")
SCENARIOS = ("full_day", "random_flow", "throttle_refuses_new_risk", "B", "C", "escalation_replaces_soft")
PANELS = [
    "sum by (mode) (rate(rig_decisions[1m]))",
    'histogram_quantile(0.99, sum by (le) (rate(temporal_local_activity_execution_latency_bucket{activity_type="request_pretrade"}[1m])))',
    "sum by (state) (increase(rig_orders_terminal[1m]))",
    'sum by (instance) (rate(temporal_workflow_task_queue_poll_succeed{job="risk-rig-worker"}[1m]))',
]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def graph_url(base: str, minutes: int) -> str:
    params: dict[str, str] = {}
    for i, expr in enumerate(PANELS):
        params |= {f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": f"{minutes}m", f"g{i}.stacked": "0", f"g{i}.show_exemplars": "0"}
    return f"{base}/graph?" + urllib.parse.urlencode(params)


async def main(out: Path, seconds: float) -> None:
    env = await time_skipping_environment()
    address = env.client.service_client.config.target_host
    port, web = free_port(), free_port()
    queue = f"screenshot-{port}"
    workers = [worker_process(address, queue, RIG_METRICS_PORT=str(port), RIG_METRICS_BIND=h, RIG_VISIBILITY_METRICS_SECONDS="2") for h in REPLICAS]
    with tempfile.TemporaryDirectory() as directory:
        prom = prometheus.start(Path(directory), [f"{h}:{port}" for h in REPLICAS], web, interval="2s")
        try:
            await asyncio.gather(*[wait_polling(w) for w in workers])
            started, runs = time.monotonic(), 0
            for name in itertools.cycle(SCENARIOS):
                if time.monotonic() - started > seconds:
                    break
                report = await env.client.execute_workflow(
                    SCENARIO_WORKFLOW, name, id=f"{queue}-{runs}", task_queue=queue, result_type=ScenarioReport
                )
                runs += 1
                print(f"{name}: {'passed' if report.passed else 'FAILED'}", flush=True)
                await asyncio.sleep(1)
            await asyncio.sleep(5)  # the last scrapes
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = await browser.new_page(viewport={"width": 1400, "height": 1800})
                await page.goto(graph_url(f"http://127.0.0.1:{web}", max(5, round(seconds / 60) + 1)))
                await page.wait_for_timeout(4000)
                await page.add_style_tag(content="nav.navbar { position: static !important; }")  # not over the graphs
                await page.screenshot(path=str(out), full_page=True)
                await browser.close()
            print(f"{runs} scenario runs; screenshot {out}")
        finally:
            prom.terminate()
            prom.wait(15)
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(15)
            await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=150)
    args = parser.parse_args()
    asyncio.run(main(args.out, args.seconds))
    exit_now(0)
