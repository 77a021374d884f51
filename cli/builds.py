"""`rig builds`: which build (worker deployment version) each account and order runs on, and the
deployment's versions — read from the server (describe), never assumed."""

from __future__ import annotations

import argparse
import asyncio
import os

from temporalio.client import Client, WorkflowExecution

from cli.errors import pattern_value
from cli.orders import ACCOUNT_PATTERN
from cli.tables import table
from protocol.contract import ORDER_WORKFLOW, RISK_WORKFLOW
from worker import versioning

DESCRIBE_AT_ONCE = 20


async def _row(client: Client, wf: WorkflowExecution) -> list[object]:
    runs = await versioning.runs_on(client.get_workflow_handle(wf.id, run_id=wf.run_id))
    return [wf.id, wf.workflow_type, runs.build_id, runs.behavior, wf.status.name if wf.status else ""]


async def _deployment_line(client: Client, deployment: str) -> str:
    info = await versioning.deployment_info(client, deployment)
    if info is None:
        return f"deployment {deployment}: none on this server (workers run unversioned)"
    current = info.routing_config.current_deployment_version.build_id or versioning.UNVERSIONED
    versions = ", ".join(f"{s.deployment_version.build_id} {versioning.version_status(s.status)}" for s in info.version_summaries)
    return f"deployment {deployment}: current {current}; versions: {versions or '(none)'}"


async def show_builds(client: Client, args: argparse.Namespace) -> int:
    deployment = os.environ.get("RIG_DEPLOYMENT_NAME", versioning.DEFAULT_DEPLOYMENT)
    clauses = [f'WorkflowType IN ("{RISK_WORKFLOW}", "{ORDER_WORKFLOW}")']
    account = pattern_value(args.account, ACCOUNT_PATTERN, "--account", "an account name (letters, digits and _ . : -)")
    if account:
        clauses.append(f'Account="{account}"')
    if not args.all:
        clauses.append('ExecutionStatus="Running"')
    listed = [wf async for wf in client.list_workflows(" AND ".join(clauses), limit=args.limit)]
    rows: list[list[object]] = []
    for start in range(0, len(listed), DESCRIBE_AT_ONCE):
        rows += await asyncio.gather(*[_row(client, wf) for wf in listed[start : start + DESCRIBE_AT_ONCE]])
    print(await _deployment_line(client, deployment))
    print(table(["workflow", "type", "build", "behaviour", "status"], rows) if rows else "(no accounts or orders)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("builds", help="the build each account and order runs on, and the deployment's versions")
    p.add_argument("--account", help="only this account and its orders")
    p.add_argument("--all", action="store_true", help="closed workflows too")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(run=show_builds)
