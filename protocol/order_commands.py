"""What the account asks of its orders (`activities/account_calls.py`): start them, deliver the
simulated exchange's executions, cancel and replace them; and an order read back from the server
(`Reconciled`) when it is gone or silent."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from domain.base import Record
from domain.enums import IntentKind, PriceRule
from domain.execution import ExecutionEvent
from protocol.messages import CancelRequest


class StartOrders(Record):
    intents: list[dict[str, Any]]  # raw intents: the order workflow validates them itself


class Delivery(Record):
    intent_id: str
    events: list[ExecutionEvent]


class VenueStep(Record):
    deliveries: list[Delivery] = Field(default_factory=list)
    audit: list[str] = Field(default_factory=list)  # orders the account has not heard from for a while: read them back


class CancelOrder(Record):
    intent_id: str
    request: CancelRequest
    rig: bool = False  # the rig's own cancel (halt): may carry the rig's reasons


class CancelOrders(Record):
    orders: list[CancelOrder]


class ReplaceOrder(Record):
    intent_id: str
    quantity: int
    limit_price: float | None = None
    kind: IntentKind | None = None  # set: the rig's own replace (escalation); None: a desk's
    price_rule: PriceRule | None = None


class ReplaceOrders(Record):
    orders: list[ReplaceOrder]
