"""Pydantic models that cross workflow boundaries: inputs, signals, updates, query results."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from domain.enums import CancelReason, IntentKind, OrderState, PriceRule, RejectReason, RiskMode
from domain.events import TimedEvent
from domain.exposure import Exposure
from domain.models import Fill, Intent, OpenOrder, Position, Quote
from domain.rules import RigConfig
from domain.venue import VenueParams


# ── order ⇄ account ─────────────────────────────────────────────────────────────────────────
class PretradeRequest(BaseModel):
    order_workflow_id: str
    raw_intent: dict[str, Any]


class PretradeReply(BaseModel):
    approved: bool
    reason: RejectReason | None = None
    message: str
    intent: Intent | None = None
    quote: Quote | None = None
    venue: VenueParams | None = None
    lot_size: int = 1
    cycle: int = 0


class VenueTick(BaseModel):
    cycle: int
    exchange_time: str
    quote: Quote
    session_closed: bool = False


class OrderReport(BaseModel):
    intent_id: str
    state: OrderState
    quantity: int
    filled_quantity: int
    new_fills: list[Fill] = []
    cycle: int
    reject_reason: RejectReason | None = None
    cancel_reason: CancelReason | None = None
    replaced_by: str | None = None


# ── order updates ───────────────────────────────────────────────────────────────────────────
class CancelRequest(BaseModel):
    reason: CancelReason = CancelReason.USER
    note: str = ""


class CancelResult(BaseModel):
    intent_id: str
    accepted: bool
    state: OrderState
    filled_quantity: int
    message: str


class ReplaceRequest(BaseModel):
    quantity: int = Field(description="new total quantity, filled quantity included")
    limit_price: float | None = None
    kind: IntentKind | None = None
    price_rule: PriceRule | None = None


class ReplaceResult(BaseModel):
    intent_id: str
    accepted: bool
    state: OrderState
    filled_quantity: int
    new_intent_id: str | None = None
    message: str


class OrderSnapshot(BaseModel):
    intent_id: str
    account: str | None
    state: OrderState
    intent: Intent | None = None
    quantity: int = 0
    filled_quantity: int = 0
    average_price: float | None = None
    fills: list[Fill] = []
    reject_reason: RejectReason | None = None
    reject_message: str | None = None
    cancel_reason: CancelReason | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    cancel_result: CancelResult | None = None
    history: list[str] = []


# ── risk workflow ───────────────────────────────────────────────────────────────────────────
class DecisionRecord(BaseModel):
    cycle: int
    exchange_time: str
    regime: str
    mode: RiskMode
    reason: str
    sentence: str
    gross_pct: float
    potential_pct: float
    tolerance_pct: float
    gross_pct_after: float  # after this cycle's de-risk orders made their arrival attempt
    intents: list[str] = []


class IntentRecord(BaseModel):
    cycle: int
    exchange_time: str
    intent: Intent


class FillRecord(BaseModel):
    """A fill as the account applied it, stamped with exchange time (for the day's chart)."""

    exchange_time: str
    fill_id: str
    intent_id: str
    symbol: str
    side: str
    quantity: int
    price: float


class OrderOutcome(BaseModel):
    intent_id: str
    state: OrderState
    quantity: int
    filled_quantity: int
    kind: IntentKind
    reject_reason: RejectReason | None = None
    cancel_reason: CancelReason | None = None
    replaced_by: str | None = None


class LedgerOrder(BaseModel):
    """An order the account tracks while it is open (synthetic resting orders included)."""

    order: OpenOrder
    intent: Intent | None = None  # set for the account's own de-risk intents: pre-approved
    expires_at: str = ""  # exchange-local ISO datetime of the close that ends this DAY order
    state: OrderState = OrderState.ACCEPTED
    quantity: int
    filled_quantity: int = 0
    synthetic: bool = False
    last_report_cycle: int = -1


class RiskState(BaseModel):
    """Everything the account entity owns; carried across continue-as-new."""

    equity: float
    positions: dict[str, Position] = {}  # "<symbol>|<bucket>" → position
    open_orders: dict[str, LedgerOrder] = {}
    applied_fill_ids: list[str] = []
    marks: dict[str, float] = {}
    mode: RiskMode = RiskMode.NORMAL
    decisions: list[DecisionRecord] = []
    intents: list[IntentRecord] = []
    outcomes: dict[str, OrderOutcome] = {}
    fills: list[FillRecord] = []
    cycle: int = 0
    clock_anchor_exchange: str | None = None  # ISO exchange-local datetime at the anchor
    clock_anchor_workflow: str | None = None  # ISO workflow time at the anchor
    hard_base: dict[str, int] = {}
    pending_events: list[TimedEvent] = []


class RiskInput(BaseModel):
    account: str
    config: RigConfig
    seed: int = 1
    equity: float = 1_000_000.0
    start_exchange_time: str | None = None  # HH:MM[:SS]; default: workflow time in the exchange zone
    exchange_date: str | None = None
    stop_at: str | None = None  # exchange time of the last cycle (scenarios); None: run forever
    timeline: list[TimedEvent] = []
    state: RiskState | None = None  # carried by continue-as-new


class RiskResult(BaseModel):
    account: str
    decisions: list[DecisionRecord]
    intents: list[IntentRecord]
    outcomes: dict[str, OrderOutcome]
    fills: list[FillRecord] = []
    hard_cap_pct: float
    final_exposure: Exposure | None
    positions: list[Position]


class RiskView(BaseModel):
    account: str
    cycle: int
    exchange_time: str
    regime: str
    mode: RiskMode
    last_decision: DecisionRecord | None
    exposure: Exposure | None
    positions: list[Position]
    open_orders: list[LedgerOrder]
    recent_decisions: list[DecisionRecord]
