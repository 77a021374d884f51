"""`rig desk …`: a desk's commands, through the desk API only.

    rig desk submit --account A --symbol S --side BUY|SELL --qty N [--price P] [--bucket B] [--id ID] [--reduce-only]
    rig desk cancel ID [--note TEXT]
    rig desk replace ID --qty N [--price P]
    rig desk show ID [--json]
    rig desk account ACCOUNT [--json]

Each connects to the desk's namespace (RIG_DESK_NAMESPACE, default `desk`) and nothing else, runs
the desk's own workflow for the operation on a worker of its own for the call, and that workflow
reaches the rig through the desk's Nexus endpoint. The rig's namespace is never named.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import exceptions
from temporalio.client import WorkflowFailureError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from cli.errors import EXIT_BAD_INPUT, UserError
from cli.orders import ORDER_HEADERS, order_row
from cli.tables import table
from desk.contract import AccountRef, DeskCancel, DeskOrder, DeskReplace, OrderRef, SubmitAnswer, Verdict, endpoint_for
from desk.worker import connect_desk, desk_namespace, desk_worker
from protocol.messages import CancelResult, ReplaceResult, RiskView
from protocol.order_record import OrderSnapshot
from protocol.parse import first_error, first_line

CALL_TIMEOUT = timedelta(seconds=90)  # the desk workflow's own bound on the rig is 60 s


def _request(model: type[BaseModel], raw: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise UserError(first_error(err), EXIT_BAD_INPUT) from None


def _quiet_runtime() -> Runtime:
    """The SDK core's own warnings (a workflow task it retries) are not for a desk's terminal: the
    command's answer, or its one-line error, says what happened."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


async def _call(workflow: str, request: BaseModel, result_type: type[Any]) -> Any:
    """Run the desk's workflow for one operation, on a worker of this command's own."""
    try:
        endpoint = endpoint_for(desk_namespace())
    except ValueError as err:
        raise UserError(f"RIG_DESK_NAMESPACE: {err}", EXIT_BAD_INPUT) from None
    client = await connect_desk(runtime=_quiet_runtime())
    queue = f"desk-cli-{uuid.uuid4().hex[:12]}"
    async with desk_worker(client, queue):
        try:
            return await client.execute_workflow(
                workflow,
                request,
                id=f"{queue}-{workflow}",
                task_queue=queue,
                result_type=result_type,
                execution_timeout=CALL_TIMEOUT,
            )
        except WorkflowFailureError as err:  # the desk workflow's one line: bad input, or the rig's refusal
            if isinstance(err.cause, exceptions.TimeoutError):
                raise UserError(
                    f"no answer within {CALL_TIMEOUT.seconds} s: is there an endpoint {endpoint} (`make server` creates it) and a rig worker?"
                ) from None
            raise UserError(getattr(err.cause, "message", None) or first_line(err)) from None


async def submit(args: argparse.Namespace) -> int:
    order = _request(
        DeskOrder,
        {
            "intent_id": args.id or f"{args.account}-{uuid.uuid4().hex[:8]}",
            "account": args.account,
            "symbol": args.symbol,
            "side": args.side,
            "quantity": args.qty,
            "limit_price": args.price,
            "bucket": args.bucket,
            "reduce_only": args.reduce_only,
        },
    )
    answer: SubmitAnswer = await _call("DeskSubmit", order, SubmitAnswer)
    snap = answer.order
    reason = f" {snap.reject_reason.value}: {snap.reject_message}" if snap.reject_reason else ""
    print(f"{answer.verdict.value} {answer.intent_id} ({snap.state.value}){reason}")
    print(table(ORDER_HEADERS, [order_row(snap)]))
    return 1 if answer.verdict is Verdict.REJECTED else 0


async def cancel(args: argparse.Namespace) -> int:
    result: CancelResult = await _call("DeskCancel", _request(DeskCancel, {"intent_id": args.intent_id, "note": args.note}), CancelResult)
    print(f"{'accepted' if result.accepted else 'refused'}: {result.message} (state {result.state.value}, filled {result.filled_quantity})")
    return 0 if result.accepted else 1


async def replace(args: argparse.Namespace) -> int:
    request = _request(DeskReplace, {"intent_id": args.intent_id, "quantity": args.qty, "limit_price": args.price})
    result: ReplaceResult = await _call("DeskReplace", request, ReplaceResult)
    new = f", new order {result.new_intent_id}" if result.new_intent_id else ""
    print(f"{'accepted' if result.accepted else 'refused'}: {result.message} (old order {result.state.value}, filled {result.filled_quantity}{new})")
    return 0 if result.accepted else 1


async def show(args: argparse.Namespace) -> int:
    snap: OrderSnapshot = await _call("DeskOrderStatus", _request(OrderRef, {"intent_id": args.intent_id}), OrderSnapshot)
    if args.json:
        print(snap.model_dump_json(indent=2))
        return 0
    print(table(ORDER_HEADERS, [order_row(snap)]))
    print("\nhistory:\n  " + "\n  ".join(snap.history or ["(none)"]))
    return 0


async def account(args: argparse.Namespace) -> int:
    view: RiskView = await _call("DeskAccount", _request(AccountRef, {"account": args.account}), RiskView)
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    e = view.exposure
    print(f"account {view.account} ({view.trading_state.value}): {view.mode.value} at {view.exchange_time} ({view.regime.value}), cycle {view.cycle}")
    if e:
        print(f"  gross {e.gross_exposure_pct:.2f}%, potential {e.potential_exposure_pct:.2f}%")
    print(f"  positions {len(view.positions)}, open orders {view.open_order_count}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    desk = sub.add_parser("desk", help="a desk's orders through the desk API (the desk's namespace only)")
    verbs = desk.add_subparsers(dest="desk_command", required=True)
    p = verbs.add_parser("submit", help="submit an order; answers the account's verdict")
    p.add_argument("--account", required=True)
    p.add_argument("--symbol", required=True)
    p.add_argument("--side", required=True, help="BUY or SELL")
    p.add_argument("--qty", type=int, required=True)
    p.add_argument("--price", type=float, help="limit price (omit for MARKET)")
    p.add_argument("--bucket", help="LT or MM_PURE (default: the instrument's)")
    p.add_argument("--id", help="intent id (default: <account>-<random>); a repeat returns the same order")
    p.add_argument("--reduce-only", action="store_true")
    p.set_defaults(run_without_client=submit)
    p = verbs.add_parser("cancel", help="cancel an order (idempotent)")
    p.add_argument("intent_id")
    p.add_argument("--note", default="")
    p.set_defaults(run_without_client=cancel)
    p = verbs.add_parser("replace", help="replace an order: cancel → ack → new linked order")
    p.add_argument("intent_id")
    p.add_argument("--qty", type=int, required=True, help="new total quantity (filled included)")
    p.add_argument("--price", type=float)
    p.set_defaults(run_without_client=replace)
    p = verbs.add_parser("show", help="an order's state, fills and history")
    p.add_argument("intent_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run_without_client=show)
    p = verbs.add_parser("account", help="one of the desk's accounts: mode, exposure, positions")
    p.add_argument("account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run_without_client=account)
