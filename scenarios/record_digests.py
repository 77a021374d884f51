"""Record the golden digests of the shipped scenarios: `python -m scenarios.record_digests [NAMES…]`.

Starts its own Temporal dev server (time skipping, like the tests) and a worker, runs each named
scenario (default: every one in scenarios/) twice at once, and writes `scenarios/digests/<name>.json`
and its line in `scenarios/digests/index.json` — only for a scenario that passed both times with
the same digest: a golden digest is never recorded from a failing or unrepeatable run. Re-record
after an intended change to what a scenario decides or does; `git diff scenarios/digests/` shows
which decisions, intents, fills or positions changed. `--dir DIR` writes elsewhere (a trial run).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from temporalio.client import Client

from activities.scenarios import scenario_names
from domain.digest import DigestItem, digest_of, first_difference
from protocol.contract import SCENARIO_WORKFLOW
from scenarios import golden
from scenarios.spec import ScenarioReport

QUEUE = "record-digests"


async def run_twice(client: Client, queue: str, name: str) -> tuple[str, list[DigestItem] | None, str]:
    """(name, items, problem): the items when both runs passed with the same digest."""

    async def once(i: int) -> ScenarioReport:
        handle = await client.start_workflow(
            SCENARIO_WORKFLOW, name, id=f"record-digest-{name}-{i}-{time.time_ns()}", task_queue=queue, result_type=ScenarioReport
        )
        return await golden.report_of(handle)

    try:
        reports = await asyncio.gather(once(1), once(2))
    except Exception as err:  # noqa: BLE001 — one scenario's failure is a line, the others are recorded
        return name, None, f"did not complete: {getattr(err, 'cause', None) or err}"
    failed = [r for r in reports if not r.passed]
    if failed:
        return name, None, "failed, not recorded: " + "; ".join(failed[0].failures)
    runs = [await golden.observed_items(client, r.account) for r in reports]
    for report, items in zip(reports, runs):
        if not golden.whole(items):
            return name, None, f"the run kept its digest's items from #{items[0].seq} only: too long to record as a golden run"
        if digest_of(items) != report.digest:
            return name, None, f"the account's items give {digest_of(items)}, its report says {report.digest}: domain/digest.py disagrees"
    if reports[0].digest != reports[1].digest:
        return name, None, (f"two runs disagree ({reports[0].digest} / {reports[1].digest}), not recorded: {first_difference(runs[0], runs[1])}")
    return name, runs[0], ""


async def record(client: Client, queue: str, names: list[str], directory: Path = golden.DIGESTS_DIR) -> dict[str, str]:
    """Run and record `names` on a running worker (`queue`); returns name → problem ("" = recorded)."""
    results = await asyncio.gather(*[run_twice(client, queue, name) for name in names])
    outcome = {}
    for name, items, problem in results:
        if items is not None:
            recorded = golden.write(name, items, directory)
            print(f"recorded {name:<28} {recorded.digest}")
        else:
            print(f"NOT recorded {name}: {problem}", file=sys.stderr)
        outcome[name] = problem
    return outcome


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.record_digests", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"scenarios (default: all of {', '.join(scenario_names())})")
    parser.add_argument("--dir", type=Path, default=golden.DIGESTS_DIR, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(scenario_names()))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    from worker.main import build_worker
    from worker.server import time_skipping_environment

    async with await time_skipping_environment() as env, build_worker(env.client, QUEUE):
        outcome = await record(env.client, QUEUE, args.names or scenario_names(), args.dir)
    print(f"{sum(1 for p in outcome.values() if not p)}/{len(outcome)} recorded in {args.dir}")
    return 0 if not any(outcome.values()) else 1


if __name__ == "__main__":
    from worker.connection import exit_now

    exit_now(asyncio.run(main()))
