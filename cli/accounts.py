"""Account commands: open, list, view, reopen, rules.

    rig account open ACCOUNT --equity N [--rules FILE] [--calendar XNYS] [--synthetic] [--fresh]
    rig account list
    rig account ACCOUNT [--groups] [--json] [--day DATE|FROM..TO]   (= rig account show ACCOUNT …)
    rig account reopen ACCOUNT
    rig account rules ACCOUNT FILE
    rig account halt ACCOUNT --by WHO --reason WHY [--freeze]    (the kill switch)
    rig account reduce ACCOUNT --by WHO --reason WHY              (reduce-only desk orders)
    rig account resume ACCOUNT --by WHO --reason WHY

An account is the risk workflow `risk-<account>`. It is opened explicitly and never replaced
silently: a closed account comes back with its book through `reopen` (Temporal's reset to its
last workflow task); `open --fresh` is the explicit way to start an empty one under the same id.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import uuid
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from cli.days import parse_days, print_days, with_calendar
from cli.errors import EXIT_BAD_INPUT, UserError, first_line, is_not_found
from cli.tables import table
from config.load import DEFAULT_RULES, load_config, load_rules
from config.text_file import InputFileError, read_text
from domain.enums import TradingState
from domain.pnl import MAX_BOD_CSV_BYTES, BodCsvError, BodPosition, parse_bod_csv
from protocol.contract import (
    QUERY_STATE,
    RISK_WORKFLOW,
    SA_ACCOUNT,
    SA_RISK_MODE,
    SA_TRADING_STATE,
    SA_VENUE,
    UPDATE_SET_RULES,
    UPDATE_SET_TRADING_STATE,
    account_task_queue,
    risk_workflow_id,
)
from protocol.messages import RiskInput, RiskView, VenueKind
from protocol.parse import first_error
from worker.connection import task_queue

VERBS = ("open", "list", "show", "reopen", "rules", "halt", "reduce", "resume")
QUERY_TIMEOUT = timedelta(seconds=10)
ACCOUNT_PATTERN = RiskInput.model_json_schema()["properties"]["account"]["pattern"]
LIST_LIMIT = 1_000


def with_show(argv: list[str]) -> list[str]:
    """`rig account ACCOUNT …` is `rig account show ACCOUNT …`: the view keeps its short form."""
    argv = list(argv)
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("--rules", "--universe"):
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        if word == "account" and i + 1 < len(argv) and argv[i + 1] not in VERBS and argv[i + 1] not in ("-h", "--help"):
            argv.insert(i + 1, "show")
        return argv
    return argv


def _status(desc: WorkflowExecutionDescription) -> str:
    return desc.status.name if desc.status else "UNKNOWN"


def _when(desc: WorkflowExecutionDescription) -> str:
    return f" at {desc.close_time:%Y-%m-%d %H:%M:%S} UTC" if desc.close_time else ""


def _closed_line(account: str, desc: WorkflowExecutionDescription) -> str:
    if desc.status is WorkflowExecutionStatus.COMPLETED:
        return (
            f"account {account} is closed: its run completed{_when(desc)} (a scenario day that ended); "
            f"`rig account open {account} --equity N --fresh` starts a new, empty one"
        )
    return (
        f"account {account} is closed ({_status(desc)}{_when(desc)}): `rig account reopen {account}` brings it back "
        f"with its book; `rig account open {account} --equity N --fresh` would start an empty one instead"
    )


def _never_opened(account: str) -> str:
    return f"no account {account}: open it with `rig account open {account} --equity N`"


def _check_name(account: str) -> str:
    if not re.fullmatch(ACCOUNT_PATTERN, account):
        raise UserError(f"{account[:60]!r} is not an account name (letters, digits and _ . : -, at most 80)", EXIT_BAD_INPUT)
    return account


async def _describe(client: Client, account: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(risk_workflow_id(account)).describe(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if is_not_found(err):
            return None
        raise


async def _view(handle: WorkflowHandle) -> RiskView:
    return await handle.query(QUERY_STATE, result_type=RiskView, rpc_timeout=QUERY_TIMEOUT)


# ── open ────────────────────────────────────────────────────────────────────────────────────
async def open_account(client: Client, args: argparse.Namespace) -> int:
    account = _check_name(args.account)
    rules_file = args.rules_file or (args.rules if Path(args.rules).resolve() != DEFAULT_RULES.resolve() else None)
    # Validated here, before anything starts: a broken file is one line naming key and problem.
    config = load_config(Path(rules_file), Path(args.universe)) if rules_file else None
    if args.calendar:  # sessions, holidays and half days from the calendar; a daily roll at each close
        config = with_calendar(config or load_config(), args.calendar)
    desc = await _describe(client, account)
    # A row without a mark takes the previous close: the last roll of the closed account this one
    # replaces (`--fresh`), if it had one; else the row is refused at its line and column.
    previous = await _previous_close(client, account) if args.positions and args.fresh and desc is not None else None
    bod = _positions(args.positions, config.universe if config else load_config().universe, previous) if args.positions else []
    try:
        inp = RiskInput(
            account=account,
            equity=args.equity,
            config=config,
            synthetic=args.synthetic,
            seed=args.seed,
            bod=bod,
            venue=VenueKind(args.venue),
            firm=args.firm,
        )
    except ValidationError as err:
        raise UserError(f"cannot open {account}: {first_error(err, '(input)')}", EXIT_BAD_INPUT) from None
    if desc is not None and desc.status is WorkflowExecutionStatus.RUNNING:
        raise UserError(f"account {account} is open already (run {desc.run_id}); `rig account {account}` shows it")
    if desc is not None and not args.fresh:
        raise UserError(_closed_line(account, desc))
    policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE if args.fresh else WorkflowIDReusePolicy.REJECT_DUPLICATE
    try:
        handle = await client.start_workflow(
            RISK_WORKFLOW,
            inp,
            id=risk_workflow_id(account),
            task_queue=account_task_queue(task_queue()),
            id_reuse_policy=policy,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_ACCOUNT, account)]),
            static_summary=f"Account {account} ({'synthetic' if args.synthetic else 'live'})",
        )
    except WorkflowAlreadyStartedError:  # opened or closed by someone else meanwhile
        now = await _describe(client, account)
        if now is not None and now.status is WorkflowExecutionStatus.RUNNING:
            raise UserError(f"account {account} is open already (run {now.run_id})") from None
        raise UserError(_closed_line(account, now) if now else f"account {account} could not be opened: its id is taken") from None
    rules = (f"rules from {rules_file}" if rules_file else "the worker's rules" if not args.calendar else "the shipped rules") + (
        f" on the {args.calendar} calendar" if args.calendar else ""
    )
    fresh = " (fresh: an empty book under the id of a closed account)" if args.fresh and desc is not None else ""
    print(
        f"opened account {account}: workflow {handle.id} run {handle.result_run_id}, equity {args.equity:,.2f}, "
        f"{'synthetic (test) account' if args.synthetic else 'live account'}, {rules}{fresh}"
    )
    return 0


def _positions(path: str, universe, previous_close: dict[str, float] | None = None) -> list[BodPosition]:
    """A beginning-of-day book from CSV (symbol,bucket,quantity,avg_cost[,mark]): one line on error."""
    try:
        text = read_text(Path(path), MAX_BOD_CSV_BYTES)
    except InputFileError as err:
        raise UserError(str(err), EXIT_BAD_INPUT) from None
    try:
        return parse_bod_csv(text, universe, previous_close)
    except BodCsvError as err:
        raise UserError(f"{path}: {err}", EXIT_BAD_INPUT) from None


async def _previous_close(client: Client, account: str) -> dict[str, float] | None:
    """The closing marks of the account's last roll (a calendar account), read from its last run."""
    try:
        view = await _view(client.get_workflow_handle(risk_workflow_id(account)))
    except (RPCError, WorkflowQueryFailedError):
        return None
    return dict(view.days[-1].marks) if view.days and view.days[-1].marks else None


# ── list ────────────────────────────────────────────────────────────────────────────────────
async def list_accounts(client: Client, args: argparse.Namespace) -> int:
    query = f'WorkflowType="{RISK_WORKFLOW}" AND ExecutionStatus="Running"'
    found = [wf async for wf in client.list_workflows(query, limit=LIST_LIMIT)]

    async def row(wf) -> list[object]:
        sa = wf.typed_search_attributes
        account = sa.get(SA_ACCOUNT) or wf.id.removeprefix("risk-")
        try:
            view = await _view(client.get_workflow_handle(wf.id, run_id=wf.run_id))
        except Exception as err:  # noqa: BLE001 — one unreadable account is a row, not a crash
            return [
                account,
                sa.get(SA_RISK_MODE) or "?",
                "?",
                sa.get(SA_TRADING_STATE) or "?",
                "?",
                sa.get(SA_VENUE) or "?",
                f"unreadable: {first_line(err, 60)}",
            ]
        gross = f"{view.exposure.gross_exposure_pct:.2f}" if view.exposure else ""
        return [
            account,
            view.mode.value,
            gross,
            view.trading_state.value,
            "synthetic" if view.synthetic else "live",
            view.venue.value,
            f"{view.open_order_count} open, {len(view.lost)} lost",
        ]

    rows = await asyncio.gather(*[row(wf) for wf in found])
    rows.sort(key=lambda r: str(r[0]))
    if not rows:
        print("(no open accounts) — `rig account open ACCOUNT --equity N` opens one")
        return 0
    print(table(["account", "mode", "gross %", "trading", "kind", "venue", "orders"], rows))
    return 0


# ── view ────────────────────────────────────────────────────────────────────────────────────
async def show_account(client: Client, args: argparse.Namespace) -> int:
    account = args.account
    days = parse_days(args.day) if args.day else None
    desc = await _describe(client, account)
    if desc is None:
        raise UserError(_never_opened(account))
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        raise UserError(_closed_line(account, desc))
    view = await _view(client.get_workflow_handle(risk_workflow_id(account)))
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    if days is not None:
        print_days(view, *days)
        return 0
    e = view.exposure
    kind = "synthetic" if view.synthetic else "live"
    print(
        f"account {view.account} ({kind}, venue {view.venue.value}, {view.trading_state.value}): {view.mode.value} "
        f"at {view.exchange_time} ({view.regime.value}), cycle {view.cycle}"
    )
    if view.session is not None:
        s = view.session
        today = f"today {s.today.open}–{s.today.close}" + (" (half day)" if s.today.early_close else "") if s.today else "no session today"
        print(
            f"  {s.calendar}: {'in session' if s.in_session else 'between sessions'}, {today}; "
            f"next open {(s.next_open or '?').replace('T', ' ')[:16]}, next close {(s.next_close or '?').replace('T', ' ')[:16]}"
        )
    if view.last_decision:
        print(f"  {view.last_decision.sentence}")
    if e:
        print(
            f"  gross {e.gross_exposure_pct:.2f}% (long {e.long_gross_pct:.2f}%, short {e.short_gross_pct:.2f}%), potential {e.potential_exposure_pct:.2f}%, "
            f"open-order potential {e.open_orders_potential.pct:.2f}% over {e.open_orders_potential.open_order_count} orders"
        )
        print(
            table(
                ["bucket", "current %", "potential %", "target %", "max %"],
                [[b.value, f"{x.current_pct:.2f}", f"{x.potential_pct:.2f}", f"{x.target_pct:g}", f"{x.max_pct:g}"] for b, x in e.buckets.items()],
            )
        )
        if args.groups:
            print(
                table(
                    ["group", "current %", "potential %"],
                    [[g, f"{x.current_pct:.2f}", f"{x.potential_pct:.2f}"] for g, x in e.group_exposure.items()],
                )
            )
    if view.pnl:
        t = view.pnl.account
        print(
            f"  P&L today {t.daily:,.2f} gross (realized {t.realized:,.2f}, unrealized {t.unrealized:,.2f}), "
            f"costs {t.costs:,.2f}, net {t.net:,.2f}; daily loss {view.pnl.daily_loss_pct:.2f}% of equity (net)"
        )
    if view.firm:
        held = view.firm_allocation
        shown = f"gross {held.gross:,}, credit {held.credit:,}" if held is not None else "none yet (no grant from the firm)"
        print(f"  firm {view.firm}: allocation {shown}")
    if view.trading_changes:
        last = view.trading_changes[-1]
        print(
            f"  trading state {last.state.value} since {last.exchange_time}, by {last.by}: {last.reason}"
            + (" (de-risk frozen)" if last.freeze else "")
        )
    if view.positions:
        pnl = {(p.symbol, p.bucket): p for p in view.pnl.positions} if view.pnl else {}
        marks = {m.symbol: m for m in view.marks}
        rows: list[list[object]] = []
        for p in view.positions:
            m, q = marks.get(p.symbol), pnl.get((p.symbol, p.bucket))
            age = "" if m is None or m.print_age_seconds is None else f"{m.print_age_seconds:.0f}s"
            mark_age = "" if m is None or m.age_seconds is None else f"{m.age_seconds:.0f}s"
            rows.append(
                [
                    p.symbol,
                    p.bucket.value,
                    p.quantity,
                    f"{q.avg_cost:.2f}" if q else "",
                    f"{m.mark:.2f}" if m else "",
                    (f"{m.source.value} (stale)" if m.stale else m.source.value) if m else "",
                    mark_age,
                    age,
                    f"{q.realized:,.2f}" if q else "",
                    f"{q.unrealized:,.2f}" if q else "",
                ]
            )
        print(
            "\npositions:\n"
            + table(["symbol", "bucket", "qty", "avg cost", "mark", "mark source", "mark age", "print age", "realized", "unrealized"], rows)
        )
    if view.open_orders:
        rows = [
            [
                o.intent_id,
                "synthetic" if o.synthetic else o.state.value,
                o.footprint.side.value,
                o.footprint.symbol,
                o.intent.quantity if o.intent else o.footprint.remaining,
                o.filled,
                o.footprint.remaining,
                f"{o.footprint.limit_price:.2f}" if o.footprint.limit_price else "MKT",
                o.footprint.kind.value,
            ]
            for o in view.open_orders
        ]
        print(
            f"\nopen orders ({view.open_order_count}{', the first ' + str(len(rows)) + ' shown' if view.open_order_count > len(rows) else ''}):\n"
            + table(["intent_id", "state", "side", "symbol", "qty", "filled", "remaining", "price", "kind"], rows)
        )
    if view.lost:
        rows = [[o.intent_id, o.state.value, o.quantity, o.filled_quantity, o.lost_cause or ""] for o in view.lost]
        print(f"\nlost orders ({len(rows)}, reconciled from the server):\n" + table(["intent_id", "last state", "qty", "filled", "cause"], rows))
    return 0


# ── reopen ──────────────────────────────────────────────────────────────────────────────────
async def last_completed_task(handle: WorkflowHandle) -> int | None:
    """The event id of the run's last WorkflowTaskCompleted before any cancel request: the reset
    point that keeps its book (a point after the request would replay the cancel and close the
    new run again)."""
    last = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            break
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last = event.event_id
    return last


async def reset_to_last_task(client: Client, workflow_id: str, run_id: str, reason: str) -> tuple[str, int]:
    """Temporal's reset of that run to its last completed workflow task: a new run that replays
    the history up to there (positions, open orders, applied fills) and goes on. Returns the new
    run id and the reset point."""
    point = await last_completed_task(client.get_workflow_handle(workflow_id, run_id=run_id))
    if point is None:
        raise UserError(f"{workflow_id} (run {run_id}) never completed a workflow task: there is nothing to come back to")
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=point,
            request_id=str(uuid.uuid4()),
        )
    )
    return response.run_id, point


async def reopen_account(client: Client, args: argparse.Namespace) -> int:
    account = _check_name(args.account)
    desc = await _describe(client, account)
    if desc is None:
        raise UserError(f"no account {account} to reopen: it was never opened; `rig account open {account} --equity N` opens it")
    if desc.status is WorkflowExecutionStatus.RUNNING:
        raise UserError(f"account {account} is open (run {desc.run_id}): nothing to reopen")
    if desc.status is WorkflowExecutionStatus.COMPLETED:
        raise UserError(_closed_line(account, desc))
    run_id, point = await reset_to_last_task(client, desc.id, desc.run_id, args.reason or f"rig account reopen {account}")
    print(
        f"reopened account {account}: run {desc.run_id} ({_status(desc)}) reset to its last workflow task (event {point}); "
        f"new run {run_id} carries its book; orders that changed meanwhile are reconciled by its audit"
    )
    try:
        view = await _view(client.get_workflow_handle(risk_workflow_id(account), run_id=run_id))
        print(f"  {len(view.positions)} positions, {view.open_order_count} open orders, mode {view.mode.value}, cycle {view.cycle}")
    except Exception as err:  # noqa: BLE001 — reopened all the same; the view needs a worker
        print(f"  (its state is not readable yet: {first_line(err, 120)})")
    return 0


# ── trading state (the kill switch) ─────────────────────────────────────────────────────────
async def set_trading_state(client: Client, args: argparse.Namespace) -> int:
    account = _check_name(args.account)
    state = {"halt": TradingState.HALTED, "reduce": TradingState.REDUCING, "resume": TradingState.ACTIVE}[args.account_command]
    desc = await _describe(client, account)
    if desc is None:
        raise UserError(_never_opened(account))
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        raise UserError(_closed_line(account, desc))
    request = {"state": state.value, "by": args.by, "reason": args.reason, "freeze": bool(getattr(args, "freeze", False))}
    try:
        answer = await client.get_workflow_handle(risk_workflow_id(account)).execute_update(
            UPDATE_SET_TRADING_STATE, request, result_type=str, rpc_timeout=timedelta(seconds=30)
        )
    except WorkflowUpdateFailedError as err:
        raise UserError(f"account {account} refused: {first_line(err)}") from None
    print(f"account {account}: {answer}")
    return 0


# ── rules ───────────────────────────────────────────────────────────────────────────────────
async def set_rules(client: Client, args: argparse.Namespace) -> int:
    account = _check_name(args.account)
    rules = load_rules(Path(args.file))  # a broken file stops here: nothing is sent
    desc = await _describe(client, account)
    if desc is None:
        raise UserError(_never_opened(account))
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        raise UserError(_closed_line(account, desc))
    handle = client.get_workflow_handle(risk_workflow_id(account))
    try:
        answer = await handle.execute_update(UPDATE_SET_RULES, rules, result_type=str, rpc_timeout=timedelta(seconds=30))
    except WorkflowUpdateFailedError as err:
        raise UserError(f"account {account} refused the rules: {first_line(err)}") from None
    print(f"account {account}: {answer}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    account = sub.add_parser(
        "account",
        help="accounts: open, list, view (rig account ACCOUNT), reopen, rules, halt, reduce, resume",
        description="`rig account ACCOUNT [--groups] [--json]` shows one account (same as `rig account show`).",
    )
    verbs = account.add_subparsers(dest="account_command", required=True, metavar="{open,list,show,reopen,rules,halt,reduce,resume} | ACCOUNT")
    p = verbs.add_parser("open", help="open an account: start its risk workflow risk-<account>")
    p.add_argument("account")
    p.add_argument("--equity", type=float, required=True)
    p.add_argument("--rules", dest="rules_file", metavar="FILE", help="risk_rules.yaml for this account (default: the worker's)")
    p.add_argument(
        "--calendar", metavar="NAME", help="trade the sessions of this calendar (e.g. XNYS): holidays, half days, a daily roll at each close"
    )
    p.add_argument("--synthetic", action="store_true", help="a test account: accepts inject_exposure and set_session")
    p.add_argument("--fresh", action="store_true", help="start an empty book even if a closed account has this id")
    p.add_argument("--seed", type=int, default=1, help="the simulated venue's seed (default: %(default)s)")
    p.add_argument("--positions", metavar="FILE.csv", help="beginning-of-day book: symbol,bucket,quantity,avg_cost[,mark]")
    p.add_argument(
        "--venue",
        default=VenueKind.SIM.value,
        choices=[v.value for v in VenueKind],
        help="where its orders go: the simulated venue, or Interactive Brokers through the gateway (default: %(default)s)",
    )
    p.add_argument(
        "--firm",
        metavar="FIRM",
        help="the firm it belongs to (`rig firm open FIRM --accounts …`): its orders are held to its allocation of the firm's limits",
    )
    p.set_defaults(run=open_account)
    p = verbs.add_parser("list", help="the open accounts: mode, gross, trading state, kind, venue")
    p.set_defaults(run=list_accounts)
    p = verbs.add_parser("show", help="one account's mode, exposure, positions, open and lost orders")
    p.add_argument("account")
    p.add_argument("--groups", action="store_true", help="include the 22 groups")
    p.add_argument("--json", action="store_true")
    p.add_argument("--day", metavar="DATE|FROM..TO", help="a calendar account's days: P&L by day and the roll events")
    p.set_defaults(run=show_account)
    p = verbs.add_parser("reopen", help="bring a closed (terminated) account back with its book")
    p.add_argument("account")
    p.add_argument("--reason", help="recorded with the reset")
    p.set_defaults(run=reopen_account)
    for verb, what in (
        ("halt", "the kill switch: cancel every open desk order, refuse new ones (de-risk goes on unless --freeze)"),
        ("reduce", "accept only reduce-only desk orders"),
        ("resume", "back to ACTIVE"),
    ):
        p = verbs.add_parser(verb, help=what)
        p.add_argument("account")
        p.add_argument("--by", required=True, help="who (recorded)")
        p.add_argument("--reason", required=True, help="why (recorded)")
        if verb == "halt":
            p.add_argument("--freeze", action="store_true", help="stop de-risk too")
        p.set_defaults(run=set_trading_state)
    p = verbs.add_parser("rules", help="replace a running account's rules (validated here, then by the account)")
    p.add_argument("account")
    p.add_argument("file")
    p.set_defaults(run=set_rules)
