"""Pydantic models that cross workflow boundaries: inputs, signals, updates, query results."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from domain.base import Record
from domain.days import DayRecord
from domain.digest import DigestItem
from domain.enums import (
    CancelReason,
    DecisionReason,
    IntentKind,
    OrderState,
    PriceRule,
    Regime,
    RejectReason,
    RiskMode,
    TradingState,
)
from domain.events import TimedEvent, TradingStateRequest
from domain.execution import ExecutionEvent
from domain.exposure import Exposure
from domain.firm import Amounts
from domain.ledger import FillRecord, LedgerOrder
from domain.marketdata import FeedSpec, MarketDataRule, MarketView, MarkSource
from domain.models import Intent, Position, Quote
from domain.order import OrderOutcome, OrderReport
from domain.pnl import BodPosition, MissingMark, PnlSummary, PnlTotals, fill_bod_marks
from domain.policy import DecisionInput
from domain.rules import RigConfig
from domain.sessions import DATE_PATTERN, SessionDay
from venues.sim.model import SimOrder, VenueParams


class VenueKind(str, Enum):
    """Which venue an account's orders go to (account configuration)."""

    SIM = "SIM"  # the rig's deterministic simulated venue
    IBKR = "IBKR"  # Interactive Brokers through the broker gateway (venues/ibkr)


# ── order ⇄ account ─────────────────────────────────────────────────────────────────────────
class PretradeRequest(Record):
    intent_id: str
    raw_intent: dict[str, Any]


class ReplaceCheck(Record):
    """FIX OrderCancelReplaceRequest, checked in full before anything changes."""

    original_id: str
    raw_replacement: dict[str, Any]


class PretradeReply(BaseModel):
    approved: bool
    reason: RejectReason | None = None
    message: str
    intent: Intent | None = None
    quote: Quote | None = None
    venue: VenueKind = VenueKind.SIM
    venue_task_queue: str | None = None  # a broker gateway's task queue
    venue_params: VenueParams | None = None
    lot_size: int = 1
    # The account knew this order already (a reset run, a retried start): its view, to adopt.
    known: OrderReport | None = None
    position: int | None = None  # the (symbol, bucket) position at the verdict (reduce-only fills stop at zero)
    # The simulated venue's arrival, run at the account with the verdict (acknowledge and first
    # attempt): the order applies these events; the account applied them already.
    arrival: list[ExecutionEvent] | None = None
    # With market data: the symbol's view at the verdict (the venue matches the arrival on it).
    market: MarketView | None = None
    market_rule: MarketDataRule | None = None

    def sim_order(self, cum_qty: int = 0) -> SimOrder:
        """The simulated venue's view of the approved order (what the account's arrival and the
        order's own venue calls both match)."""
        assert self.intent is not None and self.quote is not None and self.venue_params is not None
        return SimOrder(
            intent=self.intent,
            cum_qty=cum_qty,
            lot_size=self.lot_size,
            params=self.venue_params,
            quote=self.quote,
            market=self.market,
            market_rule=self.market_rule,
            position=self.position,
        )


# ── order updates ───────────────────────────────────────────────────────────────────────────
class CancelRefusal(str, Enum):
    """Why a cancel or replace was refused (FIX CxlRejReason)."""

    TOO_LATE_TO_CANCEL = "TOO_LATE_TO_CANCEL"  # a fill completed the order first
    ORDER_CLOSED = "ORDER_CLOSED"  # already FILLED, CANCELED or REJECTED
    PRETRADE = "PRETRADE"  # the replacement failed the account's pre-trade checks
    VENUE = "VENUE"  # the venue would refuse the replacement (price collar)


# The rig's own cancel reasons: a user's cancel may not claim them.
RIG_CANCEL_REASONS = (CancelReason.EXPIRED_DAY, CancelReason.REPLACED, CancelReason.ESCALATION, CancelReason.KILL_SWITCH)


class CancelRequest(Record):
    reason: CancelReason = CancelReason.USER
    note: str = Field(default="", max_length=500)


class CancelResult(BaseModel):
    intent_id: str
    accepted: bool
    state: OrderState
    filled_quantity: int
    message: str
    refusal: CancelRefusal | None = None
    report: OrderReport | None = None


class ReplaceRequest(Record):
    quantity: StrictInt = Field(description="new total quantity, filled quantity included")  # `true` is not 1
    limit_price: float | None = None


class RigReplaceRequest(ReplaceRequest):
    """The risk cycle's replace (SOFT → HARD escalation): it may re-label and re-price."""

    kind: IntentKind
    price_rule: PriceRule


class ReplaceResult(BaseModel):
    intent_id: str
    accepted: bool
    state: OrderState
    filled_quantity: int
    new_intent_id: str | None = None
    message: str
    refusal: CancelRefusal | None = None
    reject_reason: RejectReason | None = None  # the replacement's pre-trade refusal
    report: OrderReport | None = None  # the original, after the replace
    new_report: OrderReport | None = None  # the replacement, after its arrival


class Answer(BaseModel):
    """A cancel's or replace's answer as the account saw it (scenario expectations read these)."""

    action: Literal["cancel", "replace"]
    intent_id: str
    accepted: bool
    refusal: CancelRefusal | None = None
    reject_reason: RejectReason | None = None
    new_intent_id: str | None = None
    message: str
    state: OrderState | None = None  # the order's state after the answer (a refused replace: still WORKING)


class DecisionRecord(BaseModel):
    cycle: int
    exchange_time: str
    regime: Regime
    mode: RiskMode
    reason: DecisionReason
    sentence: str
    gross_pct: float
    potential_pct: float
    tolerance_pct: float
    gross_pct_after: float  # after this cycle's de-risk orders made their arrival attempt
    intents: list[str] = []
    inputs: DecisionInput
    # Quiet cycles that followed with nothing able to change the decision (no open orders, no
    # due events, unchanged marks, same regime): stored once, expanded for the user.
    repeats: int = 0
    skipped: list[str] = []  # "SYMBOL: STALE_DATA …" — de-risk the cycle could not take
    pnl: PnlTotals | None = None  # the account's realized, unrealized and daily P&L at this cycle


class DayLog(BaseModel):
    """A closed session's decision log (bounded like the day's own)."""

    date: str
    decisions: list[DecisionRecord]


class SessionView(BaseModel):
    """Where an account with a calendar stands in its sessions (the `state` query)."""

    calendar: str
    in_session: bool
    today: SessionDay | None  # the session on the current date (None: a weekend or holiday)
    current: str | None  # the session the account's P&L day belongs to (rolled at its close)
    next_open: str | None  # exchange-local ISO: the next session's open …
    next_close: str | None  # … and the close of the session under way or next


class MarkView(BaseModel):
    """What a symbol is marked at for exposure, where that mark came from, how old it is and
    whether it is stale (no fresh truth tick or L1: the last mark the data gave)."""

    symbol: str
    mark: float
    source: MarkSource
    stale: bool = False
    age_seconds: float | None = None  # the mark's own age (None: the reference price, or the simulated feed's mark)
    print_age_seconds: float | None = None
    l1_age_seconds: float | None = None


class Alarm(BaseModel):
    """Something the account was told that needs a person: a broker's fill that came after its
    order closed, a broker position that differs from the book."""

    kind: Literal["LATE_FILL", "DIVERGENCE", "DIVERGENCE_RESOLVED", "ORDER_TO_TRADE"]
    text: str
    symbol: str | None = None
    intent_id: str | None = None
    cycle: int
    exchange_time: str


class IntentRecord(BaseModel):
    cycle: int
    exchange_time: str
    intent: Intent


class TradingStateChange(TradingStateRequest):
    previous: TradingState
    cycle: int
    exchange_time: str


class RiskInput(BaseModel):
    account: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
    config: RigConfig | None = None  # None: the worker's rules, loaded once and recorded in history
    seed: int = Field(default=1, ge=0, le=2**63)
    equity: float = Field(default=1_000_000.0, gt=0, le=1e13)
    # Test and scenario accounts accept synthetic events (inject_exposure, set_session) and run
    # on a virtual day anchored at `start_exchange_time`; live accounts read the exchange clock.
    synthetic: bool = False
    venue: VenueKind = VenueKind.SIM
    venue_task_queue: str = "risk-rig-ibkr"  # the broker gateway's (VenueKind.IBKR)
    start_exchange_time: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
    exchange_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    stop_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
    stop_date: str | None = Field(default=None, pattern=DATE_PATTERN)  # a multi-day run stops on this date at stop_at
    timeline: list[TimedEvent] = []
    market: FeedSpec | None = None  # None: the simulated feed quotes from marks
    bod: list[BodPosition] = []  # beginning-of-day positions with their cost basis
    carried: str | None = None  # compressed (AccountState, BookState) from the previous run (protocol/carry.py)
    firm: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")  # the firm the account belongs to

    @model_validator(mode="after")
    def _bod_marked(self) -> RiskInput:
        """A new account has no previous close: every beginning-of-day position brings its mark."""
        try:
            fill_bod_marks(self.bod)
        except MissingMark as err:
            raise ValueError(f"bod[{err.index}]: {err}") from None
        return self


class RiskResult(BaseModel):
    account: str
    decisions: list[DecisionRecord]
    intents: list[IntentRecord]
    outcomes: dict[str, OrderOutcome]
    fills: list[FillRecord] = []
    answers: list[Answer] = []
    trading_changes: list[TradingStateChange] = []
    pnl: PnlTotals | None = None
    price_path: dict[str, list[tuple[str, float]]] = {}  # with a market: symbol → [(exchange time, mark)]
    hard_cap_pct: float
    final_exposure: Exposure | None
    positions: list[Position]
    digest: str = ""
    digest_items: list[DigestItem] = []  # the last items the digest folded (all of them for a scenario's day)
    days: list[DayRecord] = []  # closed sessions (a calendar account), oldest first
    day_logs: list[DayLog] = []  # their decision logs, as far as kept (quiet stretches as stored: one record with repeats)
    cycle_seconds: int = 60  # the cycle's period, to read a day log's repeats
    trimmed: list[str] = []  # what was left out to keep the result under the payload limit (protocol/result_bounds.py)


class RiskView(BaseModel):
    account: str
    synthetic: bool
    venue: VenueKind
    cycle: int
    exchange_time: str
    regime: Regime
    mode: RiskMode
    trading_state: TradingState = TradingState.ACTIVE
    frozen: bool = False
    trading_changes: list[TradingStateChange] = []
    pnl: PnlSummary | None = None
    marks: list[MarkView] = []
    last_decision: DecisionRecord | None
    exposure: Exposure | None
    positions: list[Position]
    open_orders: list[LedgerOrder]  # the first 500
    open_order_count: int = 0
    open_order_states: dict[OrderState, int] = {}
    lost: list[OrderOutcome] = []
    alarms: list[Alarm] = []  # the last ones, newest last
    divergences: dict[str, str] = {}  # symbol → what the broker holds that the book does not (unresolved)
    recent_decisions: list[DecisionRecord]
    session: SessionView | None = None  # a calendar account: today's session, the next open and close
    days: list[DayRecord] = []  # its closed sessions (the newest with closing marks and next day's book)
    firm: str | None = None  # the firm it belongs to
    firm_allocation: Amounts | None = None  # what it holds of the firm's limits; None: no grant yet
