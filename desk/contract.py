"""The desk API's contract: the Nexus service, its operations' models, and the names both sides
agree on (the desk's namespace, its task queue, its endpoint).

Desks reach the rig only through this service, called from a workflow in their own namespace;
the rig's namespace exposes it through one Nexus endpoint per desk. What a desk may send is
exactly what a desk may set on an order (DESIGN §3 "Who sets what"): every model forbids unknown
fields, so `kind`, `price_rule`, `issued_in_mode`, `replaces` or a rig cancel reason cannot be
said at all, and no operation reaches the rig's internal messages (rig_cancel, rig_replace,
venue_executions, venue_event, arrival, pretrade, order_report …).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

import nexusrpc
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from domain.base import Record
from domain.enums import Bucket, OrderType, Side
from domain.limits import MAX_PRICE, MAX_QUANTITY
from domain.rules import SYMBOL_PATTERN
from protocol.contract import RISK_ID_PREFIX, SCENARIO_ID_PREFIX
from protocol.messages import CancelResult, ReplaceResult, RiskView
from protocol.order_record import OrderSnapshot

SERVICE_NAME = "RigDesk"
DEFAULT_DESK_NAMESPACE = "desk"
DEFAULT_DESK_TASK_QUEUE = "desk"  # the desk's own worker, in the desk's namespace
ENDPOINT_PREFIX = "rig-"

ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"  # = RiskInput.account
INTENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_ENDPOINT_PATTERN = r"^[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]$"  # the server's rule for endpoint names


def endpoint_for(namespace: str) -> str:
    """The Nexus endpoint a desk's namespace calls: `rig-<namespace>`, anything but letters and
    digits turned into '-' (endpoint names allow no '.' or '_'). The handler maps the endpoint a
    request was addressed to — set by the server, not by the caller — back to the desk."""
    name = ENDPOINT_PREFIX + re.sub(r"[^A-Za-z0-9]+", "-", namespace).strip("-")
    if not re.fullmatch(_ENDPOINT_PATTERN, name):
        raise ValueError(f"namespace {namespace!r} gives no valid endpoint name ({name!r})")
    return name


class _Request(Record):
    # A desk's numbers come from outside; `DeskOrder._priced` fills `order_type` in, so not Finite (frozen).
    model_config = ConfigDict(allow_inf_nan=False)


def _not_the_rigs(intent_id: str) -> str:
    """An order's workflow id is its intent id: a desk's may not take an account's id
    (`risk-<account>`) or a scenario's."""
    if intent_id.startswith((RISK_ID_PREFIX, SCENARIO_ID_PREFIX)):
        raise ValueError(f"intent ids starting {RISK_ID_PREFIX!r} or {SCENARIO_ID_PREFIX!r} are the rig's own")
    return intent_id


# Ids the rig gives its own orders: replacements `<id>.R<n>` (protocol.contract.next_replacement_id)
# and de-risk orders `<account>-c<cycle>-<H|S>-…` (domain.planner.derisk_intent_id). A new desk order
# taking one first would be found in its place (USE_EXISTING) when the rig starts its own.
_RIG_MADE = re.compile(r"(\.R[1-9][0-9]{0,5}$)|(-c[0-9]{6,}-[HS]-)")


def _new(intent_id: str) -> str:
    if _RIG_MADE.search(intent_id):
        raise ValueError("ids of replacements (<id>.R<n>) and de-risk orders (<account>-c<cycle>-H|S-…) are the rig's own")
    return intent_id


# Letters, digits and _ . : -, at most 200 characters; a new order's id is not one the rig makes.
IntentId = Annotated[str, Field(pattern=INTENT_ID_PATTERN), AfterValidator(_not_the_rigs)]
NewIntentId = Annotated[IntentId, AfterValidator(_new)]
Account = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]
Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
LimitPrice = Annotated[float | None, Field(gt=0, le=MAX_PRICE)]


class DeskOrder(_Request):
    """A new order, as a desk may state it."""

    intent_id: NewIntentId
    account: Account
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    side: Side
    quantity: Quantity
    order_type: OrderType | None = None  # default: LIMIT with a limit_price, else MARKET
    limit_price: LimitPrice = None
    bucket: Bucket | None = None  # default: the instrument's
    reduce_only: StrictBool = False
    intended_duplicate: StrictBool = False

    @model_validator(mode="after")
    def _priced(self) -> DeskOrder:
        if self.order_type is None:
            self.order_type = OrderType.MARKET if self.limit_price is None else OrderType.LIMIT
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a LIMIT order needs a limit_price")
        if self.order_type is OrderType.MARKET and self.limit_price is not None:
            raise ValueError("a MARKET order has no limit_price")
        return self

    def raw_intent(self) -> dict[str, Any]:
        """The intent the OrderWorkflow receives: desk fields only."""
        return self.model_dump(mode="json")


class DeskCancel(_Request):
    intent_id: IntentId
    note: str = Field(default="", max_length=500)


class DeskReplace(_Request):
    """FIX cancel/replace: the new total quantity (filled included) and price."""

    intent_id: IntentId
    quantity: Quantity
    limit_price: LimitPrice = None


class OrderRef(_Request):
    intent_id: IntentId


class AccountRef(_Request):
    account: Account


class Verdict(str, Enum):
    """What a submit answers at once: the account's pre-trade verdict."""

    ACCEPTED = "ACCEPTED"  # approved (it may be working, partly filled or filled already)
    REJECTED = "REJECTED"  # refused, with the reason code and message in `order`
    PENDING = "PENDING"  # not judged within the call: ask `order_status` later


class SubmitAnswer(BaseModel):
    intent_id: str
    verdict: Verdict
    order: OrderSnapshot


@nexusrpc.service(name=SERVICE_NAME)
class DeskService:
    """Everything a desk can ask of the rig. Nothing else is exposed."""

    submit: nexusrpc.Operation[DeskOrder, SubmitAnswer]
    cancel: nexusrpc.Operation[DeskCancel, CancelResult]
    replace: nexusrpc.Operation[DeskReplace, ReplaceResult]
    order_status: nexusrpc.Operation[OrderRef, OrderSnapshot]
    account_view: nexusrpc.Operation[AccountRef, RiskView]
