"""Run scenarios (time-skipped when the server allows it) and the demo, the rig's main job."""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.scenarios import scenario_names
from cli.tables import table
from config.load import load_config
from report import page
from scenarios.spec import ScenarioReport
from worker import server
from worker.connection import address, connect, connect_settings, task_queue
from worker.main import build_worker
from protocol.contract import SCENARIO_ID_PREFIX, SCENARIO_WORKFLOW, risk_workflow_id
from protocol.messages import RiskResult

SCENARIO_TIMEOUT = timedelta(minutes=10)


@functools.cache  # the address and namespace come from env/config files: read them once
def ui_base() -> str:
    host, port = server.split_address(address())
    return f"http://{host}:{port + 1000}/namespaces/{connect_settings()['namespace']}"


def ui_workflow(workflow_id: str) -> str:
    return f"{ui_base()}/workflows/{urllib.parse.quote(workflow_id, safe='')}"


def ui_account_orders(account: str) -> str:
    query = urllib.parse.quote(f'Account="{account}"')
    return f"{ui_base()}/workflows?query={query}"


async def run_one(client: Client, name: str) -> tuple[str, ScenarioReport | None, str, float]:
    workflow_id = f"{SCENARIO_ID_PREFIX}{name}-{time.time_ns()}"
    started = time.monotonic()
    try:
        report = await client.execute_workflow(
            SCENARIO_WORKFLOW, name, id=workflow_id, task_queue=task_queue(), result_type=ScenarioReport,
            execution_timeout=SCENARIO_TIMEOUT,
        )
        return workflow_id, report, "", time.monotonic() - started
    except Exception as err:  # noqa: BLE001 — a failed scenario is a row in the table, not a crash
        return workflow_id, None, str(getattr(err, "cause", None) or err), time.monotonic() - started


def time_skipping_client(client: Client) -> Client:
    """The scenario client: time-skipped (a trading day in seconds) where the server allows it."""
    return TimeSkipper(client, config=TimeSkippingConfig(max_session_skip_count=1_000_000)).client


async def write_report(client: Client, report: ScenarioReport, directory: Path) -> Path:
    result = await client.get_workflow_handle(risk_workflow_id(report.account), result_type=RiskResult).result()
    html = page.render(result, title=f"Scenario {report.name}", ui_workflow=ui_workflow, verdict=(report.passed, report.failures))
    return page.write(directory / f"{report.name}.html", html)


async def run_scenarios(client: Client, names: list[str], report_dir: Path | None = None) -> int:
    skipping = time_skipping_client(client)
    results = []
    for name in names:
        workflow_id, report, error, wall = await run_one(skipping, name)
        if report is None and "time skipping" in error.lower():
            print("this server does not allow time skipping: running in real time")
            skipping = client
            workflow_id, report, error, wall = await run_one(client, name)
        results.append((name, workflow_id, report, error, wall))
    rows = []
    for name, workflow_id, report, error, wall in results:
        if report is None:
            rows.append([name, "ERROR", "", "", f"{wall:.1f}s", error[:80]])
            continue
        verdict = "PASS" if report.passed else "FAIL"
        last_mode = report.modes[-1].split(" ")[2] if report.modes else ""
        rows.append([name, verdict, last_mode, len(report.intents), f"{wall:.1f}s", f"{report.final_gross_pct:.2f}%" if report.final_gross_pct is not None else ""])
    print(table(["scenario", "result", "last mode", "intents", "wall", "final gross / error"], rows))
    passed = sum(1 for r in results if r[2] is not None and r[2].passed)
    for name, workflow_id, report, error, _ in results:
        if report is not None and not report.passed:
            print(f"\n{name} failed:\n  " + "\n  ".join(report.failures))
    print("\nTemporal UI:")
    for name, workflow_id, report, _, _ in results:
        print(f"  {name:<28} {ui_workflow(workflow_id)}")
        if report is not None and report.order_workflow_ids:
            print(f"  {'':<28} orders: {ui_account_orders(report.account)}")
    if report_dir is not None:
        written = [await write_report(client, r[2], report_dir) for r in results if r[2] is not None]
        print(f"\nreports: {len(written)} HTML files in {report_dir}/ (open {written[0] if written else ''} in a browser)")
    print(f"\n{passed}/{len(results)} passed")
    return 0 if passed == len(results) else 1


async def scenarios_command(client: Client, args: argparse.Namespace) -> int:
    names = args.names or scenario_names()
    return await run_scenarios(client, names, Path(args.report) if args.report else None)


async def demo(args: argparse.Namespace) -> int:
    """Embedded server (unless one answers at TEMPORAL_ADDRESS) + worker + every scenario."""
    host, port = server.split_address(address())
    proc = None
    if server.reachable(host, port):
        print(f"using the Temporal server at {host}:{port}")
    else:
        print(f"starting the embedded Temporal dev server on {host}:{port} (SQLite {server.STATE_DIR / 'temporal.sqlite'})…")
        proc = server.start(host, port, server.STATE_DIR / "temporal.sqlite", log=server.STATE_DIR / "server.log")
        print(f"Temporal UI: http://{host}:{port + 1000}")
    try:
        client = await connect()
        async with build_worker(client, task_queue(), load_config()):
            code = await run_scenarios(client, args.names or scenario_names(), Path(args.report))
            if args.keep:
                print(f"\nkept up for inspection at http://{host}:{port + 1000} — Ctrl-C stops the worker and the server")
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    pass
        return code
    finally:
        if proc is not None:
            server.stop(proc)
            print("embedded server stopped")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenarios", help="run scenarios (all, or the names given) on a running worker")
    p.add_argument("names", nargs="*", help=f"known: {', '.join(scenario_names())}")
    p.add_argument("--report", metavar="DIR", help="write an HTML report per scenario into DIR")
    p.set_defaults(run=scenarios_command)
    p = sub.add_parser("demo", help="embedded server + worker + every scenario, with UI links")
    p.add_argument("names", nargs="*")
    p.add_argument("--keep", action="store_true", help="keep the server and worker up afterwards")
    p.add_argument("--report", metavar="DIR", default="reports", help="HTML reports directory (default: %(default)s)")
    p.set_defaults(run_without_client=demo)



