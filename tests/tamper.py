"""A scenario run by a tampered rig, in a process of its own: `python -m tests.tamper NAME`.

The tamper is the one a skeptical reviewer tried: the price collar's refusal given another reject
code. It is applied to this process's `domain.controls` (the account's workflow imports the
domain passed through its sandbox, so its worker sees it), never to the test session's worker.
Prints one JSON line: the report's verdict and failures, its digest, and what the golden-digest
check says of it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from domain import controls
from domain.enums import RejectReason
from protocol.contract import SCENARIO_WORKFLOW
from scenarios import golden
from scenarios.spec import ScenarioReport
from worker.connection import exit_now

QUEUE = "tamper"


def tamper_the_collar() -> None:
    honest = controls.check_price_collar

    def tampered(*args, **kwargs):
        refusal = honest(*args, **kwargs)
        return (RejectReason.MAX_ORDER_QUANTITY, refusal[1]) if refusal is not None else None

    controls.check_price_collar = tampered


async def main(name: str) -> None:
    from worker.main import build_worker
    from worker.server import time_skipping_environment

    tamper_the_collar()
    async with await time_skipping_environment() as env, build_worker(env.client, QUEUE):
        handle = await env.client.start_workflow(
            SCENARIO_WORKFLOW, name, id=f"tamper-{name}-{time.time_ns()}", task_queue=QUEUE, result_type=ScenarioReport
        )
        report = await golden.report_of(handle)
        items = await golden.observed_items(env.client, report.account)
    print(
        json.dumps(
            {"passed": report.passed, "failures": report.failures, "digest": report.digest, "problem": golden.problem(name, report.digest, items)}
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
    exit_now(0)
