"""Order commands: submit, cancel, replace, show, list (accounts: cli/accounts.py)."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from activities.client_ops import cancel_via_client, replace_via_client, start_order
from cli.errors import UserError, enum_value, is_not_found, pattern_value
from cli.tables import table
from domain.enums import CancelReason, OrderState, Side
from domain.rules import SYMBOL_PATTERN
from protocol.contract import (
    ORDER_WORKFLOW,
    QUERY_STATE,
    SA_ACCOUNT,
    SA_BUCKET,
    SA_ORDER_STATE,
    SA_SIDE,
    SA_SYMBOL,
)
from protocol.messages import CancelRequest, ReplaceRequest, RiskInput
from protocol.order_record import OrderSnapshot
from worker.connection import task_queue

ACCOUNT_PATTERN = RiskInput.model_json_schema()["properties"]["account"]["pattern"]
QUERY_TIMEOUT = timedelta(seconds=15)


def order_row(s: OrderSnapshot) -> list[object]:
    i = s.intent
    reason = s.reject_reason or s.cancel_reason
    return [
        s.intent_id,
        s.state.value,
        i.side.value if i else "",
        i.symbol if i else "",
        s.quantity,
        s.filled_quantity,
        f"{s.average_price:.2f}" if s.average_price else "",
        reason.value if reason else "",
    ]


_LIST_KEYS = (SA_ORDER_STATE, SA_SIDE, SA_SYMBOL, SA_BUCKET, SA_ACCOUNT)
ORDER_HEADERS = ["intent_id", "state", "side", "symbol", "qty", "filled", "avg px", "reason"]


async def submit(client: Client, args: argparse.Namespace) -> int:
    intent_id = args.id or f"{args.account}-{uuid.uuid4().hex[:8]}"
    raw = {
        "intent_id": intent_id,
        "account": args.account,
        "symbol": args.symbol,
        "side": args.side,
        "quantity": args.qty,
        "order_type": "MARKET" if args.price is None else "LIMIT",
        "limit_price": args.price,
        "bucket": args.bucket,
        "reduce_only": args.reduce_only,
    }
    await start_order(client, task_queue(), raw)
    print(f"submitted {intent_id} (workflow id = intent id; a repeat returns the same order)")
    if args.wait:
        snap = await client.get_workflow_handle(intent_id, result_type=OrderSnapshot).result()
        print(table(ORDER_HEADERS, [order_row(snap)]))
    return 0


async def cancel(client: Client, args: argparse.Namespace) -> int:
    result = await cancel_via_client(client, args.intent_id, CancelRequest(reason=CancelReason(args.reason), note=args.note))
    if not result.accepted and result.report is None:  # no such order (or unreadable): the one line says which
        raise UserError(result.message)
    print(f"{'accepted' if result.accepted else 'refused'}: {result.message} (state {result.state.value}, filled {result.filled_quantity})")
    return 0 if result.accepted else 1


async def replace(client: Client, args: argparse.Namespace) -> int:
    result = await replace_via_client(client, args.intent_id, ReplaceRequest(quantity=args.qty, limit_price=args.price))
    if not result.accepted and result.report is None:
        raise UserError(result.message)
    print(f"{'accepted' if result.accepted else 'refused'}: {result.message} (old order {result.state.value}, filled {result.filled_quantity})")
    return 0 if result.accepted else 1


async def show(client: Client, args: argparse.Namespace) -> int:
    try:
        snap = await client.get_workflow_handle(args.intent_id).query(QUERY_STATE, result_type=OrderSnapshot, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if is_not_found(err):
            raise UserError(f"no order {args.intent_id}") from None
        raise
    if args.json:
        print(snap.model_dump_json(indent=2))
        return 0
    print(table(ORDER_HEADERS, [order_row(snap)]))
    if snap.intent:
        print(f"\n{snap.intent.summary()}  account {snap.account}  bucket {snap.intent.bucket.value}")
    if snap.replaces or snap.replaced_by:
        print(f"replaces {snap.replaces or '-'}  replaced by {snap.replaced_by or '-'}")
    if snap.fills:
        print("\n" + table(["fill_id", "qty", "price"], [[f.fill_id, f.quantity, f"{f.price:.2f}"] for f in snap.fills]))
    print("\nhistory:\n  " + "\n  ".join(snap.history or ["(none)"]))
    return 0


def visibility_query(args: argparse.Namespace) -> str:
    """Every value is an enum member or spelled like a symbol/account: nothing a user types can
    leave its quotes (`--state 'WORKING" OR 1=1'` is refused with the allowed values)."""
    values = (
        ("OrderState", enum_value(args.state, OrderState, "--state")),
        ("Symbol", pattern_value(args.symbol, SYMBOL_PATTERN, "--symbol", "a symbol (upper-case letters, digits, '.')")),
        ("Account", pattern_value(args.account, ACCOUNT_PATTERN, "--account", "an account name (letters, digits and _ . : -)")),
        ("Side", enum_value(args.side, Side, "--side")),
    )
    clauses = [f'WorkflowType="{ORDER_WORKFLOW}"']
    for attr, value in values:
        if value:
            clauses.append(f'{attr}="{value}"')
    return " AND ".join(clauses)


async def list_orders(client: Client, args: argparse.Namespace) -> int:
    query = visibility_query(args)
    rows = []
    async for wf in client.list_workflows(query, limit=args.limit):
        sa = wf.typed_search_attributes
        rows.append([wf.id, *(sa.get(k) or "" for k in _LIST_KEYS), wf.status.name if wf.status else ""])
    print(f"query: {query}")
    print(table(["intent_id", "OrderState", "Side", "Symbol", "Bucket", "Account", "workflow"], rows) if rows else "(no orders)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit an order (an OrderWorkflow with id = intent id)")
    p.add_argument("--account", required=True)
    p.add_argument("--symbol", required=True)
    p.add_argument("--side", required=True, help="BUY or SELL")
    p.add_argument("--qty", type=int, required=True)
    p.add_argument("--price", type=float, help="limit price (omit for MARKET)")
    p.add_argument("--bucket", help="LT or MM_PURE (default: the instrument's)")
    p.add_argument("--id", help="intent id (default: <account>-<random>)")
    p.add_argument("--reduce-only", action="store_true")
    p.add_argument("--wait", action="store_true", help="wait for the final state")
    p.set_defaults(run=submit)
    p = sub.add_parser("cancel", help="cancel an order (idempotent)")
    p.add_argument("intent_id")
    p.add_argument("--reason", default="USER", choices=[r.value for r in CancelReason])
    p.add_argument("--note", default="")
    p.set_defaults(run=cancel)
    p = sub.add_parser("replace", help="replace an order: cancel → ack → new linked order")
    p.add_argument("intent_id")
    p.add_argument("--qty", type=int, required=True, help="new total quantity (filled included)")
    p.add_argument("--price", type=float)
    p.set_defaults(run=replace)
    p = sub.add_parser("show", help="an order's state, fills and history")
    p.add_argument("intent_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=show)
    p = sub.add_parser("list", help="orders by search attributes")
    p.add_argument("--state")
    p.add_argument("--symbol")
    p.add_argument("--account")
    p.add_argument("--side")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(run=list_orders)
