"""Firm commands: open, show, halt, resume.

    rig firm open FIRM --gross-limit N --credit-limit N --accounts A,B,C
    rig firm show FIRM [--json]
    rig firm halt FIRM --by WHO --reason WHY [--freeze]     (every member account HALTED, one action)
    rig firm resume FIRM --by WHO --reason WHY              (the members this firm halted back to ACTIVE)

A firm is the workflow `firm-<FIRM>` (workflows/firm.py) on the accounts' task queue: its members,
its aggregate limits and the allocations of them its accounts hold, and the firm's kill switch.
"""

from __future__ import annotations

import argparse
import math
import re
from datetime import timedelta

from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from cli.errors import EXIT_BAD_INPUT, UserError, first_line, is_not_found
from cli.tables import table
from domain.firm import MAX_FIRM_LIMIT, MAX_MEMBERS, FirmLimits
from protocol.contract import (
    FIRM_UNCHANGED,
    FIRM_WORKFLOW,
    QUERY_STATE,
    UPDATE_FIRM_HALT,
    UPDATE_FIRM_RESUME,
    account_task_queue,
    firm_workflow_id,
    risk_workflow_id,
)
from protocol.firm_messages import NAME_PATTERN, FirmAnswer, FirmHaltRequest, FirmInput, FirmResumeRequest, FirmView
from protocol.parse import first_error
from worker.connection import task_queue

TIMEOUT = timedelta(seconds=10)
FAN_OUT_TIMEOUT = timedelta(minutes=3)  # the halt answers once every member has been told


def _name(text: str, what: str) -> str:
    if not re.fullmatch(NAME_PATTERN, text):
        raise UserError(f"{text[:60]!r} is not {what} name (letters, digits and _ . : -, at most 80)", EXIT_BAD_INPUT)
    return text


def _limit(text: str, option: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option} {text[:40]!r} is not a number", EXIT_BAD_INPUT) from None
    if not (math.isfinite(value) and value == int(value) and 0 < value <= MAX_FIRM_LIMIT):
        raise UserError(f"{option} must be a whole amount > 0 and at most {MAX_FIRM_LIMIT:,}, got {text[:40]}", EXIT_BAD_INPUT)
    return int(value)


def _accounts(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not names or any(not n for n in names):
        raise UserError(f"--accounts {text[:60]!r}: a comma-separated list of account names, none empty", EXIT_BAD_INPUT)
    if len(names) > MAX_MEMBERS:
        raise UserError(f"--accounts: at most {MAX_MEMBERS} accounts in a firm, got {len(names)}", EXIT_BAD_INPUT)
    return [_name(n, "an account") for n in names]


async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(workflow_id).describe(rpc_timeout=TIMEOUT)
    except RPCError as err:
        if is_not_found(err):
            return None
        raise


async def _running(client: Client, firm: str) -> None:
    desc = await _describe(client, firm_workflow_id(firm))
    if desc is None:
        raise UserError(f"no firm {firm}: open it with `rig firm open {firm} --gross-limit N --credit-limit N --accounts A,B`")
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        status = desc.status.name if desc.status else "UNKNOWN"
        raise UserError(f"firm {firm} is closed ({status})")


# ── open ────────────────────────────────────────────────────────────────────────────────────
async def open_firm(client: Client, args: argparse.Namespace) -> int:
    firm = _name(args.firm, "a firm")
    accounts = _accounts(args.accounts)
    try:
        limits = FirmLimits(gross=_limit(args.gross_limit, "--gross-limit"), credit=_limit(args.credit_limit, "--credit-limit"))
        inp = FirmInput(firm=firm, limits=limits, accounts=accounts)
    except ValidationError as err:
        raise UserError(f"cannot open firm {firm}: {first_error(err, '(input)')}", EXIT_BAD_INPUT) from None
    desc = await _describe(client, firm_workflow_id(firm))
    if desc is not None:
        state = "open already" if desc.status is WorkflowExecutionStatus.RUNNING else f"closed ({desc.status.name if desc.status else 'UNKNOWN'})"
        raise UserError(f"firm {firm} is {state}; `rig firm show {firm}` shows it")
    try:
        handle = await client.start_workflow(
            FIRM_WORKFLOW,
            inp,
            id=firm_workflow_id(firm),
            task_queue=account_task_queue(task_queue()),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Firm {firm}: {len(accounts)} accounts, gross {limits.gross:,}, credit {limits.credit:,}",
        )
    except WorkflowAlreadyStartedError:
        raise UserError(f"firm {firm} could not be opened: its id is taken") from None
    print(
        f"opened firm {firm}: workflow {handle.id} run {handle.result_run_id}, {len(accounts)} accounts, "
        f"gross limit {limits.gross:,}, credit limit {limits.credit:,} (each account holds an equal share until it reports)"
    )
    missing = [a for a in accounts if (await _describe(client, risk_workflow_id(a))) is None]
    if missing:
        print(f"  note: not open yet: {', '.join(missing)} (a halt reports them; they report to the firm once opened)")
    return 0


# ── show ────────────────────────────────────────────────────────────────────────────────────
async def show_firm(client: Client, args: argparse.Namespace) -> int:
    firm = _name(args.firm, "a firm")
    await _running(client, firm)
    view: FirmView = await client.get_workflow_handle(firm_workflow_id(firm)).query(QUERY_STATE, result_type=FirmView, rpc_timeout=TIMEOUT)
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    frozen = " (de-risk frozen)" if view.frozen else ""
    print(
        f"firm {view.firm}: {view.trading_state.value}{frozen}; gross limit {view.limits.gross:,} ({view.allocated.gross:,} allocated, "
        f"{view.pool.gross:,} free), credit limit {view.limits.credit:,} ({view.allocated.credit:,} allocated, {view.pool.credit:,} free)"
    )
    if view.changes:
        last = view.changes[-1]
        print(f"  {last.state.value} since {last.at}, by {last.by}: {last.reason}")
    rows = [
        [
            m.account,
            f"{m.allocated.gross:,}",
            f"{m.usage.gross:,.0f}",
            f"{m.allocated.credit:,}",
            f"{m.usage.credit:,.0f}",
            m.reports,
            "" if m.reclaim_to is None else f"{m.reclaim_to.gross:,} / {m.reclaim_to.credit:,}",
        ]
        for m in view.members
    ]
    print(table(["account", "gross alloc", "gross used", "credit alloc", "credit used", "reports", "reclaim to"], rows))
    if view.last_results:
        print(
            "\nlast kill-switch action:\n"
            + table(["account", "outcome", "detail"], [[r.account, r.outcome.value, r.detail] for r in view.last_results])
        )
    return 0


# ── halt / resume ───────────────────────────────────────────────────────────────────────────
async def set_firm_state(client: Client, args: argparse.Namespace) -> int:
    firm = _name(args.firm, "a firm")
    halting = args.firm_command == "halt"
    try:
        request: FirmHaltRequest | FirmResumeRequest = (
            FirmHaltRequest(by=args.by, reason=args.reason, freeze=args.freeze) if halting else FirmResumeRequest(by=args.by, reason=args.reason)
        )
    except ValidationError as err:
        raise UserError(f"firm {firm}: {first_error(err, '(request)')}", EXIT_BAD_INPUT) from None
    await _running(client, firm)
    try:
        answer: FirmAnswer = await client.get_workflow_handle(firm_workflow_id(firm)).execute_update(
            UPDATE_FIRM_HALT if halting else UPDATE_FIRM_RESUME, request, result_type=FirmAnswer, rpc_timeout=FAN_OUT_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == FIRM_UNCHANGED:
            print(first_line(cause))  # a repeat: nothing recorded, nothing sent; not an error
            return 0
        raise UserError(f"firm {firm} refused: {first_line(cause or err)}") from None
    print(answer.message)
    if answer.results:
        print(table(["account", "outcome", "detail"], [[r.account, r.outcome.value, r.detail] for r in answer.results]))
    return 0 if all(r.outcome.done for r in answer.results) else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    firm = sub.add_parser("firm", help="firms: open, show, halt (every member account, one action), resume")
    verbs = firm.add_subparsers(dest="firm_command", required=True)
    p = verbs.add_parser("open", help="open a firm: start its workflow firm-<FIRM> with its members and limits")
    p.add_argument("firm")
    p.add_argument("--gross-limit", required=True, metavar="N", help="aggregate potential gross notional, account currency")
    p.add_argument("--credit-limit", required=True, metavar="N", help="aggregate notional of positions and open orders that add to them")
    p.add_argument("--accounts", required=True, metavar="A,B,C", help="the member accounts")
    p.set_defaults(run=open_firm)
    p = verbs.add_parser("show", help="the firm's state, limits, allocations and last kill-switch action")
    p.add_argument("firm")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=show_firm)
    for verb, what in (
        ("halt", "the firm's kill switch: every member account HALTED (open desk orders canceled, new ones refused)"),
        ("resume", "back to ACTIVE: the members this firm halted"),
    ):
        p = verbs.add_parser(verb, help=what)
        p.add_argument("firm")
        p.add_argument("--by", required=True, help="who (recorded by the firm and every member)")
        p.add_argument("--reason", required=True, help="why (recorded by the firm and every member)")
        if verb == "halt":
            p.add_argument("--freeze", action="store_true", help="stop de-risk too, in every member")
        p.set_defaults(run=set_firm_state)
