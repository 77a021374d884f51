"""The account's state, one model per part of the account workflow (workflows/account/), carried
through continue-as-new with the book (protocol/carry.py).

Each part owns its model: the clock its anchor and sessions, the market its marks and price
path, the simulated exchange where each live order stands (its arrival, the shares ahead of it),
the gate its controls' look-back, the operator the trading state, the orders part the
cancel/replace answers, the cycle the decision log, the intents, the pending timeline and the run
digest, and the day its closed sessions. Fields added later have defaults: older states still read.
A run started from a history recorded before the parts existed (one flat state) is read into
this shape by `_regroup`, so such runs still replay and continue.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from domain.controls import ControlsState
from domain.days import DayRecord, DayTally
from domain.digest import RunDigest
from domain.enums import RiskMode, TradingState
from domain.events import TimedEvent
from domain.firm import AccountAllocation
from domain.models import book_keys
from domain.sessions import SessionWindow
from protocol.messages import Alarm, Answer, DayLog, DecisionRecord, IntentRecord, TradingStateChange


class ClockState(BaseModel):
    """A virtual day's anchor (synthetic accounts): this exchange-local moment was this workflow instant."""

    anchor_exchange: str | None = None  # ISO exchange-local datetime
    anchor_workflow: str | None = None  # ISO workflow time
    sessions: SessionWindow | None = None  # a calendar account: the sessions ahead, as data (a few weeks)


class MarketState(BaseModel):
    marks: dict[str, float] = {}  # injected marks (the simulated feed quotes from them)
    market_as_of: str | None = None  # the last cycle's market time: prints after it are the next cycle's
    price_path: dict[str, list[tuple[str, float]]] = {}  # with a market: each held symbol's mark per cycle (bounded)


class AtExchange(BaseModel):
    """A live order at the simulated exchange with market data: the displayed shares still ahead
    of it at its price (its queue place) and, until a cycle's window has run past it, when it
    arrived (exchange time, ISO with offset: no print before it fills it)."""

    ahead: int = 0
    arrived_at: str | None = None


class ExchangeState(BaseModel):
    orders: dict[str, AtExchange] = {}  # intent id → its place; only open orders (pruned each cycle)


class GateState(BaseModel):
    controls: ControlsState = ControlsState()


class FirmMembership(BaseModel):
    """An account's allocation of its firm's limits (RiskInput.firm), and whether a grant came yet."""

    allocation: AccountAllocation = AccountAllocation()
    granted: bool = False


class OperatorState(BaseModel):
    trading_state: TradingState = TradingState.ACTIVE
    frozen: bool = False
    trading_changes: list[TradingStateChange] = []
    alarms: list[Alarm] = []
    divergences: dict[str, str] = {}  # symbol → the broker's words, while IB's position differs from the book
    reducing_for_divergence: bool = False  # the broker's divergence (not an operator) made the account REDUCING


class OrdersState(BaseModel):
    answers: list[Answer] = []


class CycleState(BaseModel):
    cycle: int = 0
    mode: RiskMode = RiskMode.NORMAL
    decisions: list[DecisionRecord] = []
    intents: list[IntentRecord] = []
    hard_base: dict[str, int] = {}  # HARD de-risk: each position's size when HARD began (chunks are 10% of it), by `position_key`
    pending_events: list[TimedEvent] = []
    digest: RunDigest = Field(default_factory=RunDigest)
    day: DayTally = Field(default_factory=DayTally)  # the session under way, counted as it runs

    _book_keys = field_validator("hard_base", mode="before")(book_keys)  # carried with the ledger's old keys


class DayState(BaseModel):
    """The daily roll's (a calendar account): the session the book's P&L day belongs to, and the
    sessions closed before it — their records and, bounded, their decision logs."""

    session: str | None = None  # the date of the session under way or next; rolled at its close
    days: list[DayRecord] = []
    logs: list[DayLog] = []


# Where each field of the flat state (before the parts) now lives.
_FLAT = {
    "clock": {"clock_anchor_exchange": "anchor_exchange", "clock_anchor_workflow": "anchor_workflow"},
    "market": {"marks": "marks", "market_as_of": "market_as_of", "price_path": "price_path"},
    "gate": {"controls": "controls"},
    "operator": {"trading_state": "trading_state", "frozen": "frozen", "trading_changes": "trading_changes"},
    "orders": {"answers": "answers"},
    "cycle": {k: k for k in ("cycle", "mode", "decisions", "intents", "hard_base", "pending_events", "digest")},
}


class AccountState(BaseModel):
    clock: ClockState = Field(default_factory=ClockState)
    market: MarketState = Field(default_factory=MarketState)
    exchange: ExchangeState = Field(default_factory=ExchangeState)  # absent from states carried before it: empty
    gate: GateState = Field(default_factory=GateState)
    operator: OperatorState = Field(default_factory=OperatorState)
    orders: OrdersState = Field(default_factory=OrdersState)
    cycle: CycleState = Field(default_factory=CycleState)
    day: DayState = Field(default_factory=DayState)
    firm: FirmMembership = Field(default_factory=FirmMembership)

    @model_validator(mode="before")
    @classmethod
    def _regroup(cls, data: Any) -> Any:
        """A flat state, carried by a run from before the parts, regrouped by part."""
        flat = isinstance(data, dict) and (isinstance(data.get("cycle"), int) or "clock_anchor_exchange" in data or "decisions" in data)
        if not flat:
            return data  # already by part (the flat state's `cycle` is its cycle count, a number)
        return {part: {new: data[old] for old, new in fields.items() if old in data} for part, fields in _FLAT.items()}
