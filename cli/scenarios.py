"""Run scenarios (time-skipped when the server allows it) and the demo, the rig's main job;
`--repeat N` runs each scenario N times and says whether their run digests agree."""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import signal
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import TimeSkipper, TimeSkippingConfig

from activities.scenarios import scenario_names
from cli.days import parse_days
from cli.errors import EXIT_BAD_INPUT, UserError
from cli.tables import table
from domain.digest import first_difference
from protocol.contract import SCENARIO_ID_PREFIX, SCENARIO_WORKFLOW, risk_workflow_id
from protocol.messages import RiskResult
from report import page
from scenarios import golden
from scenarios.spec import ScenarioReport
from worker import server
from worker.capabilities import time_skipping_supported
from worker.connection import address, connect, connect_settings, exit_now, task_queue
from worker.main import build_worker

SCENARIO_TIMEOUT = timedelta(minutes=10)
# On a stop signal the demo is gone within WORKER_STOP + SERVER_STOP at worst (about a second
# when nothing hangs): the README says Ctrl-C stops it.
WORKER_STOP_SECONDS = timedelta(seconds=3)
SERVER_STOP_SECONDS = timedelta(seconds=5)
STOP_POLL = timedelta(seconds=0.1)
EXIT_INTERRUPTED = 130
REPEAT_CONCURRENCY = 16  # scenario runs in flight at once under --repeat
RUN_NUMBERS = itertools.count(1)
DIGEST_SHOWN = 8  # hex digits of the digest in the table (the full digest is printed below it)


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
    workflow_id = f"{SCENARIO_ID_PREFIX}{name}-{time.time_ns()}-{next(RUN_NUMBERS)}"  # unique among concurrent runs
    started = time.monotonic()
    try:
        report = await client.execute_workflow(
            SCENARIO_WORKFLOW,
            name,
            id=workflow_id,
            task_queue=task_queue(),
            result_type=ScenarioReport,
            execution_timeout=SCENARIO_TIMEOUT,
        )
        return workflow_id, report, "", time.monotonic() - started
    except Exception as err:  # noqa: BLE001 — a failed scenario is a row in the table, not a crash
        return workflow_id, None, str(getattr(err, "cause", None) or err), time.monotonic() - started


def time_skipping_client(client: Client) -> Client:
    """The scenario client: time-skipped (a trading day in seconds) where the server allows it."""
    return TimeSkipper(client, config=TimeSkippingConfig(max_session_skip_count=1_000_000)).client


async def write_report(client: Client, report: ScenarioReport, directory: Path, days: tuple[str, str] | None = None) -> Path:
    result = await client.get_workflow_handle(risk_workflow_id(report.account), result_type=RiskResult).result()
    html = page.render(result, title=f"Scenario {report.name}", ui_workflow=ui_workflow, verdict=(report.passed, report.failures), days=days)
    return page.write(directory / f"{report.name}.html", html)


async def scenario_client(client: Client) -> Client:
    """The client scenarios start through, after asking the server (worker/capabilities.py) whether
    it lets workflows skip time; says which mode the runs are in."""
    if await time_skipping_supported(client):
        print("time skipping: on — each scenario's simulated day passes in seconds")
        return time_skipping_client(client)
    print(
        "time skipping: off — this server does not allow it (dynamic config frontend.WorkflowTimeSkippingEnabled); "
        "scenarios run in real time, a full day takes a full day"
    )
    return client


def short_digest(digest: str) -> str:
    return f"{digest[: len('sha256:') + DIGEST_SHOWN]}…" if digest else ""


async def run_scenarios(client: Client, names: list[str], report_dir: Path | None = None, days: tuple[str, str] | None = None) -> int:
    runner = await scenario_client(client)
    results = [(name, *ran) for name, ran in zip(names, await asyncio.gather(*[run_one(runner, name) for name in names]))]
    rows: list[list[object]] = []
    for name, _, report, error, wall in results:
        if report is None:
            rows.append([name, "ERROR", "", "", f"{wall:.1f}s", "", error[:80]])
            continue
        verdict = "PASS" if report.passed else "FAIL"
        last_mode = report.modes[-1].split(" ")[2] if report.modes else ""
        rows.append(
            [
                name,
                verdict,
                last_mode,
                len(report.intents),
                f"{wall:.1f}s",
                short_digest(report.digest),
                f"{report.final_gross_pct:.2f}%" if report.final_gross_pct is not None else "",
            ]
        )
    print(table(["scenario", "result", "last mode", "intents", "wall", "digest", "final gross / error"], rows))
    print("\nrun digests:")
    for name, _, report, _, _ in results:
        print(f"  {name:<28} {report.digest if report is not None else '(no report)'}")
    passed = sum(1 for r in results if r[2] is not None and r[2].passed)
    for name, _, report, _, _ in results:
        if report is not None and not report.passed:
            print(f"\n{name} failed:\n  " + "\n  ".join(report.failures))
    print("\nTemporal UI:")
    for name, workflow_id, report, _, _ in results:
        print(f"  {name:<28} {ui_workflow(workflow_id)}")
        if report is not None and report.order_workflow_ids:
            print(f"  {'':<28} orders: {ui_account_orders(report.account)}")
    if report_dir is not None:
        written = [await write_report(client, r[2], report_dir, days) for r in results if r[2] is not None]
        print(f"\nreports: {len(written)} HTML files in {report_dir}/ (open {written[0] if written else ''} in a browser)")
    print(f"\n{passed}/{len(results)} passed")
    return 0 if passed == len(results) else 1


async def repeat_scenarios(client: Client, names: list[str], times: int) -> int:
    """Each scenario `times` times (runs in flight at once, up to REPEAT_CONCURRENCY): do their
    digests agree? A flake detector: 0 when every scenario gave one digest, 1 otherwise."""
    runner = await scenario_client(client)
    gate = asyncio.Semaphore(REPEAT_CONCURRENCY)

    async def bounded(name: str) -> tuple[str, ScenarioReport | None, str, float]:
        async with gate:
            return await run_one(runner, name)

    started = time.monotonic()
    runs = await asyncio.gather(*[bounded(name) for name in names for _ in range(times)])
    print(f"{len(names)} scenarios × {times} runs in {time.monotonic() - started:.1f}s")
    rows, disagreeing = [], []
    for i, name in enumerate(names):
        mine = runs[i * times : (i + 1) * times]
        reports = [r for _, r, _, _ in mine if r is not None]
        errors = [e for _, r, e, _ in mine if r is None]
        digests = {r.digest for r in reports}
        verdict = "AGREE" if len(digests) == 1 and not errors else ("DISAGREE" if len(digests) > 1 else "ERROR")
        walls = [w for *_, w in mine]
        rows.append(
            [
                name,
                verdict,
                f"{len(reports)}/{times}",
                len(digests),
                f"{sum(r.passed for r in reports)}/{times}",
                f"{min(walls):.1f}–{max(walls):.1f}s",
                short_digest(next(iter(digests))) if len(digests) == 1 else "",
            ]
        )
        if verdict != "AGREE":
            disagreeing.append((name, mine, errors))
    print(table(["scenario", "digests", "completed", "distinct", "passed", "wall", "digest"], rows))
    for name, mine, errors in disagreeing:
        print(f"\n{name}:")
        by_digest: dict[str, list[tuple[str, ScenarioReport]]] = {}
        for workflow_id, report, _, _ in mine:
            if report is not None:
                by_digest.setdefault(report.digest, []).append((workflow_id, report))
        for digest, group in sorted(by_digest.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(group)}× {digest}  e.g. {ui_workflow(group[0][0])}")
        groups = sorted(by_digest.values(), key=len, reverse=True)
        if len(groups) > 1:
            a, b = groups[0][0][1], groups[1][0][1]
            pa, pb = await asyncio.gather(golden.observed_items(client, a.account), golden.observed_items(client, b.account))
            print(f"  first difference ({a.account} → {b.account}): {first_difference(pa, pb)}")
        for error in errors[:3]:
            print(f"  did not complete: {error[:200]}")
    print(f"\n{len(names) - len(disagreeing)}/{len(names)} scenarios gave one digest in {times} runs")
    return 0 if not disagreeing else 1


async def scenarios_command(client: Client, args: argparse.Namespace) -> int:
    names = args.names or scenario_names()
    unknown = [n for n in names if n not in scenario_names()]
    if unknown:
        raise UserError(f"unknown scenarios: {', '.join(u[:64] for u in unknown)}; known: {', '.join(scenario_names())}", EXIT_BAD_INPUT)
    if args.repeat is not None:
        if args.repeat < 2:
            raise UserError("--repeat needs 2 or more runs to compare", EXIT_BAD_INPUT)
        return await repeat_scenarios(client, names, args.repeat)
    days = parse_days(args.day) if args.day else None
    return await run_scenarios(client, names, Path(args.report) if args.report else None, days)


async def demo(args: argparse.Namespace) -> int:
    """Embedded server (unless one answers at TEMPORAL_ADDRESS) + worker + every scenario.

    SIGINT, SIGTERM or SIGHUP, at any point (starting, running, kept up), stop the worker and the
    embedded server within seconds, as `make server` does; the server also goes if this process
    is killed outright (it dies with its parent)."""
    previous = {sig: signal.getsignal(sig) for sig in server.STOP_SIGNALS}
    stop_signal = server.record_stop_signals()
    if not server.die_with_parent():  # `make demo` killed: its death reaches us as SIGTERM
        return EXIT_INTERRUPTED
    try:
        return await _demo(args, stop_signal)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _demo(args: argparse.Namespace, stop_signal: Callable[[], str | None]) -> int:
    host, port = server.split_address(address())
    proc = None
    if server.reachable(host, port):
        print(f"using the Temporal server at {host}:{port}")
    else:
        db = server.server_db()
        print(f"starting the embedded Temporal dev server on {host}:{port} ({f'SQLite {db}' if db else 'in memory'})…", flush=True)
        log = (db.parent if db else server.STATE_DIR) / "server.log"
        try:
            proc = server.start(host, port, db, log=log, die_with_parent=True, stop_requested=lambda: stop_signal() is not None)
        except server.Stopped:
            print(f"{stop_signal()}: stopped while the server was starting")
            return EXIT_INTERRUPTED
        print(f"Temporal UI: http://{host}:{port + 1000} (server pid {proc.pid})", flush=True)
    outcome: list[int] = []  # the scenarios' exit code, once they have run
    try:
        work = asyncio.create_task(_run_and_keep(args, host, port, outcome))
        signalled = asyncio.create_task(_until(stop_signal))
        await asyncio.wait({work, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            signalled.cancel()
            return work.result()
        print(f"\n{stop_signal()}: stopping the worker and the server", flush=True)
        work.cancel()
        await asyncio.wait({work}, timeout=WORKER_STOP_SECONDS.total_seconds())  # in-flight activities get no longer
    finally:
        if proc is not None:
            server.stop(proc, timeout=SERVER_STOP_SECONDS.total_seconds())
            print("embedded server stopped", flush=True)
    # Out now: a worker still shutting down (its server gone, its calls retrying) is not waited for.
    exit_now(outcome[0] if outcome else EXIT_INTERRUPTED)


async def _run_and_keep(args: argparse.Namespace, host: str, port: int, outcome: list[int]) -> int:
    client = await connect()
    async with build_worker(client, task_queue()):
        outcome.append(await run_scenarios(client, args.names or scenario_names(), Path(args.report)))
        if args.keep:
            print(f"\nkept up for inspection at http://{host}:{port + 1000} — Ctrl-C stops the worker and the server", flush=True)
            await asyncio.Event().wait()  # until a stop signal cancels it
    return outcome[0]


async def _until(stop_signal: Callable[[], str | None]) -> None:
    # Polled, as `make server` does: the handlers only note the signal (worker/server.py), the
    # same ones during the blocking server start and after it.
    while stop_signal() is None:  # noqa: ASYNC110
        await asyncio.sleep(STOP_POLL.total_seconds())


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenarios", help="run scenarios (all, or the names given) on a running worker")
    p.add_argument("names", nargs="*", help=f"known: {', '.join(scenario_names())}")
    p.add_argument("--report", metavar="DIR", help="write an HTML report per scenario into DIR")
    p.add_argument("--day", metavar="DATE|FROM..TO", help="with --report: a calendar scenario's report shows these days only")
    p.add_argument(
        "--repeat", metavar="N", type=int, help="run each scenario N times (at once) and report whether their run digests agree; exit 1 if not"
    )
    p.set_defaults(run=scenarios_command)
    p = sub.add_parser("demo", help="embedded server + worker + every scenario, with UI links")
    p.add_argument("names", nargs="*")
    p.add_argument("--keep", action="store_true", help="keep the server and worker up afterwards")
    p.add_argument("--report", metavar="DIR", default="reports", help="HTML reports directory (default: %(default)s)")
    p.set_defaults(run_without_client=demo)
