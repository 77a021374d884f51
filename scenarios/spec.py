"""The scenario file format (documented in README §Scenarios)."""

from __future__ import annotations

import json
import re
from datetime import date as Date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.base import Record
from domain.enums import (
    Bucket,
    CancelReason,
    DecisionReason,
    IntentKind,
    OrderState,
    OrderType,
    PriceRule,
    RejectReason,
    RiskMode,
    Side,
    TradingState,
)
from domain.events import MAX_RUN_DAYS, SESSION_DATES, OrderEventSpec, TimedEvent, split_dated
from domain.limits import MAX_EQUITY, MAX_QUANTITY, MAX_TEXT_LENGTH
from domain.marketdata import Shock
from domain.pnl import MAX_BOD_ROWS, BodPosition
from protocol.messages import CancelRefusal

HHMM = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
# Bounds on a scenario (issue 20): each far above what a scenario needs, and together small
# enough that a plan (spec + rules + book) stays far below Temporal's 2 MiB payload limit.
SCENARIO_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # the file's name; the account is <name>-<8 hex>
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,64}$"  # an order's id within the scenario (intent id <account>-<id>)
MAX_SEED = 2**63 - 1  # the venue's and generator's seeds travel as int64
MAX_EVENTS = 1_000
MAX_RANDOM_ORDERS = 500  # a random_orders block, each day it runs
MAX_PLANNED_EVENTS = MAX_EVENTS + MAX_RANDOM_ORDERS * MAX_RUN_DAYS  # the timeline a loaded plan runs (its random orders expanded)
MAX_EXPECTATIONS = 1_000
MAX_SYMBOLS = 1_000
MAX_SHOCKS = 100
MAX_PATH_LENGTH = 200
MAX_FREE_FORM_FIELDS = 16  # the desk-JSON fields of an order event beyond its own
MAX_FREE_FORM_BYTES = 256  # each desk-JSON value, as JSON

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
EventId = Annotated[str, Field(pattern=EVENT_ID)]
Symbol = Annotated[str, Field(min_length=1, max_length=40)]
RelativePath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_LENGTH)]


def seconds_of(hhmm: str) -> int:
    parts = [int(p) for p in hhmm.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)


class Spec(Record):
    model_config = ConfigDict(populate_by_name=True)


def compared(model: BaseModel, fields: tuple[str, ...]) -> list[str]:
    """The fields of an expectation that are set: what it compares."""
    return [f for f in fields if getattr(model, f) not in (None, [])]


def needs_a_comparison(model: BaseModel, what: str, fields: tuple[str, ...]) -> None:
    if not compared(model, fields):
        raise ValueError(f"{what} compares nothing: give at least one of {', '.join(fields)}")


class IntentExpectation(Spec):
    count: int | None = None
    min_count: int | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    price_rule: PriceRule | None = None
    kind: IntentKind | None = None
    symbols: list[Symbol] = Field(default=[], max_length=MAX_SYMBOLS)  # each of these has at least one intent in that cycle


class OrderExpectation(Spec):
    """An order's outcome. `state` never matches a LOST order (one that went away or silent and
    was reconciled): expect `lost: true` for that."""

    id: EventId
    state: OrderState | None = None
    reject_reason: RejectReason | None = None
    cancel_reason: CancelReason | None = None
    filled_min: int | None = None
    filled_max: int | None = None
    lost: bool | None = None
    first_fill_from: str | None = Field(default=None, pattern=HHMM)  # no fill before this exchange time

    COMPARED: ClassVar = ("state", "reject_reason", "cancel_reason", "filled_min", "filled_max", "lost", "first_fill_from")

    @model_validator(mode="after")
    def _compares(self) -> OrderExpectation:
        needs_a_comparison(self, f"order {self.id}", self.COMPARED)
        return self


class AnswerExpectation(Spec):
    """A cancel's or replace's answer (the scenario's `cancel:` / `replace:` event on `id`)."""

    id: EventId
    accepted: bool | None = None
    refusal: CancelRefusal | None = None
    reject_reason: RejectReason | None = None
    new_id: EventId | None = None
    state: OrderState | None = None  # the order's state right after the answer

    COMPARED: ClassVar = ("accepted", "refusal", "reject_reason", "new_id", "state")

    @model_validator(mode="after")
    def _compares(self) -> AnswerExpectation:
        needs_a_comparison(self, f"the answer about {self.id}", self.COMPARED)
        return self


class DeskOrdersExpectation(Spec):
    """Across the scenario's desk orders: so a random flow cannot pass without trading."""

    filled_min: int | None = None
    rejected_min: int | None = None

    COMPARED: ClassVar = ("filled_min", "rejected_min")

    @model_validator(mode="after")
    def _compares(self) -> DeskOrdersExpectation:
        needs_a_comparison(self, "desk_orders", self.COMPARED)
        return self


class PnlExpectation(Spec):
    """The account's P&L: at a cycle (`at`), else at the day's close as its roll fixed it."""

    daily_min: float | None = None
    daily_max: float | None = None
    realized_min: float | None = None
    realized_max: float | None = None
    costs_min: float | None = None  # commissions and fees so far today (net = daily − costs)

    COMPARED: ClassVar = ("daily_min", "daily_max", "realized_min", "realized_max", "costs_min")

    @model_validator(mode="after")
    def _compares(self) -> PnlExpectation:
        needs_a_comparison(self, "pnl", self.COMPARED)
        return self


class BodExpectation(Spec):
    """A row of the day's beginning-of-day book (the previous session's close)."""

    symbol: Symbol
    bucket: Bucket = Bucket.LT
    quantity: int | None = None
    mark: float | None = None


class SessionExpectation(Spec):
    """The day's session as the account traded it."""

    open: str | None = Field(default=None, pattern=HHMM)
    close: str | None = Field(default=None, pattern=HHMM)
    early_close: bool | None = None

    COMPARED: ClassVar = ("open", "close", "early_close")

    @model_validator(mode="after")
    def _compares(self) -> SessionExpectation:
        needs_a_comparison(self, "session", self.COMPARED)
        return self


class Expectation(Spec):
    """One check. With `at`, it reads the decision of the cycle at exactly that time; with
    `from`/`by`, of every cycle in that window (inclusive) — said explicitly, never implied. In a
    scenario over several days, `day: N` (its N-th session) or `date:` says which day; the day's
    own checks (its P&L at the close, its BOD, its session, its cycles) need one."""

    day: int | None = Field(default=None, ge=1, le=MAX_RUN_DAYS)
    date: str | None = Field(default=None, pattern=DATE)
    at: str | None = Field(default=None, pattern=HHMM)
    from_: str | None = Field(default=None, alias="from", pattern=HHMM)
    by: str | None = Field(default=None, pattern=HHMM)
    regime: str | None = Field(default=None, max_length=40)
    mode: RiskMode | None = None
    reason: DecisionReason | None = None
    intents: IntentExpectation | Literal["none"] | None = None
    order: OrderExpectation | None = None
    cancel: AnswerExpectation | None = None
    replace: AnswerExpectation | None = None
    desk_orders: DeskOrdersExpectation | None = None
    skipped: list[Symbol] = Field(default=[], max_length=MAX_SYMBOLS)  # symbols whose de-risk that cycle skipped for stale data (STALE_DATA)
    # "SYM: CODE": a rig order that cycle refused by a control, not sent (e.g. "AAPL: BAD_QUOTE")
    refused: list[Annotated[str, Field(pattern=r"^[A-Z0-9.]{1,12}: [A-Z_]{1,40}$")]] = Field(default=[], max_length=MAX_SYMBOLS)
    final_gross_max_pct: float | None = None
    gross_always_below_pct: float | None = None
    # A day's own (with `day` or `date`):
    pnl: PnlExpectation | None = None
    bod: list[BodExpectation] = Field(default=[], max_length=MAX_SYMBOLS)
    session: SessionExpectation | None = None
    cycles: int | None = Field(default=None, ge=0)  # cycle times run that date (0: no session — a weekend or holiday)
    trading_state: TradingState | None = None  # at that day's close, carried into the next session
    expired: int | None = Field(default=None, ge=0)  # DAY orders that day's close expired

    COMPARED: ClassVar = (
        "regime", "mode", "reason", "intents", "skipped", "refused", "order", "cancel", "replace", "desk_orders",
        "final_gross_max_pct", "gross_always_below_pct", "pnl", "bod", "session", "cycles", "trading_state", "expired",
    )  # fmt: skip
    DAY_FIELDS: ClassVar = ("bod", "session", "cycles", "trading_state", "expired")

    @model_validator(mode="before")
    @classmethod
    def _dated_at(cls, data: Any) -> Any:
        return split_dated(data, "at", "date")

    def comparisons(self) -> int:
        """How many comparisons this expectation makes (a scenario report's `checks`)."""
        count = len(compared(self, ("regime", "mode", "reason", "intents", "final_gross_max_pct", "gross_always_below_pct")))
        count += len(self.skipped) + len(self.refused) + len(compared(self, ("session", "cycles", "trading_state", "expired")))
        count += sum(len(compared(row, ("quantity", "mark"))) or 1 for row in self.bod)
        for part in (self.order, self.cancel, self.replace, self.desk_orders, self.pnl):
            if part is not None:
                count += len(compared(part, part.COMPARED))
        return count

    @model_validator(mode="after")
    def _one_window(self) -> Expectation:
        needs_a_comparison(self, "an expectation" + (f" at {self.at}" if self.at else ""), self.COMPARED)
        if self.at is not None and (self.from_ is not None or self.by is not None):
            raise ValueError("give `at` (one cycle) or `from`/`by` (a window), not both")
        if (self.from_ is None) != (self.by is None):
            raise ValueError("a window needs both `from` and `by`")
        decision_fields = (self.regime, self.mode, self.reason, self.intents, self.skipped or None, self.refused or None)
        if any(f is not None for f in decision_fields) and self.at is None and self.from_ is None:
            raise ValueError("regime, mode, reason and intents are read at a cycle: give `at` or `from`/`by`")
        if self.day is not None and self.date is not None:
            raise ValueError("give `day` (the scenario's N-th session) or `date`, not both")
        undated = [f for f in self.DAY_FIELDS if getattr(self, f) not in (None, [])] + (["pnl"] if self.pnl and self.at is None else [])
        if undated and self.day is None and self.date is None:
            raise ValueError(f"{', '.join(undated)} read a day: give `day` or `date`")
        return self


class RandomOrders(Spec):
    """Seeded random desk orders, expanded into order events when the scenario loads."""

    seed: Seed
    count: int = Field(gt=0, le=MAX_RANDOM_ORDERS)
    start: str = Field(pattern=HHMM)
    every_seconds: int = Field(gt=0, le=86_400)
    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_SYMBOLS)
    max_quantity: int = Field(gt=0, le=MAX_QUANTITY)
    days: int | None = Field(default=None, ge=1, le=MAX_RUN_DAYS)  # a calendar scenario: the block on each of its first N sessions

    @model_validator(mode="after")
    def _within_the_day(self) -> RandomOrders:
        if seconds_of(self.start) + (self.count - 1) * self.every_seconds >= 86_400:
            raise ValueError(f"{self.count} orders every {self.every_seconds}s from {self.start} run past midnight")
        return self


class GeneratedMarket(Spec):
    """A seeded generated day for the universe (marketdata/generator.py), with scripted shocks."""

    seed: Seed
    shocks: list[Shock] = Field(default=[], max_length=MAX_SHOCKS)
    scale: float | None = Field(default=None, gt=0, le=1)  # share of a real day's prints and quotes


class MarketSpec(Spec):
    """The scenario's market: recorded files (a directory with quotes.parquet, prints.parquet
    and day.json, relative to scenarios/) or a generated day. Absent: quotes from marks."""

    file: RelativePath | None = None
    generate: GeneratedMarket | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MarketSpec:
        if (self.file is None) == (self.generate is None):
            raise ValueError("market needs exactly one of `file` or `generate`")
        return self


class ScenarioSpec(Spec):
    name: str = Field(pattern=SCENARIO_NAME)
    description: str = Field(default="", max_length=MAX_TEXT_LENGTH)
    seed: Seed = 1
    equity: float = Field(default=1_000_000.0, gt=0, le=MAX_EQUITY, allow_inf_nan=False)
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    start: str = Field(pattern=HHMM)
    stop: str = Field(pattern=HHMM)
    # Days (a trading calendar): `calendar` gives the sessions (holidays, half days) and a daily
    # roll at each close; the run spans `days` sessions from `date`, or stops at a dated `stop`.
    calendar: str | None = Field(default=None, max_length=16)
    days: int | None = Field(default=None, ge=1, le=MAX_RUN_DAYS)
    stop_date: str | None = Field(default=None, pattern=DATE)  # from a dated `stop`, or from `days` when loaded
    # The rules: config/profiles/<profile>.yaml instead of risk_rules.yaml (e.g. production: every
    # control and costs on), with `rules:` merged over them, e.g. {fills: {other: 1.0}}.
    profile: Literal["production"] | None = None
    rules: dict[str, Any] = Field(default_factory=dict)
    events: list[TimedEvent] = Field(default=[], max_length=MAX_EVENTS)
    market: MarketSpec | None = None
    # Beginning-of-day positions with cost basis: inline rows, or a CSV file relative to scenarios/.
    positions: Annotated[list[BodPosition], Field(max_length=MAX_BOD_ROWS)] | RelativePath | None = None
    random_orders: RandomOrders | None = None
    expect: list[Expectation] = Field(min_length=1, max_length=MAX_EXPECTATIONS)

    @field_validator("date")
    @classmethod
    def _a_calendar_date(cls, value: str | None) -> str | None:
        """A real date the account's clock can run through ("2026-02-30" failed its first task)."""
        if value is None:
            return None
        try:
            day = Date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{value} is not a calendar date: {err}") from None
        if not SESSION_DATES[0] <= day <= SESSION_DATES[1]:
            raise ValueError(f"{value} is outside {SESSION_DATES[0]}..{SESSION_DATES[1]}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _dated_stop(cls, data: Any) -> Any:
        return split_dated(data, "stop", "stop_date")

    @model_validator(mode="after")
    def _bounded(self) -> ScenarioSpec:
        several = self.days is not None or self.stop_date is not None
        if several and (self.calendar is None or self.date is None):
            raise ValueError("a scenario over several days needs a calendar (calendar: XNYS) and its first session's date")
        if self.stop_date is not None and self.date is not None and self.stop_date < self.date:
            raise ValueError(f"stop ({self.stop_date} {self.stop}) is before the scenario's date ({self.date})")
        same_day = self.stop_date is None or self.stop_date == self.date
        if same_day and self.days in (None, 1) and seconds_of(self.stop) < seconds_of(self.start):  # equal: one cycle, at start
            raise ValueError(f"stop ({self.stop}) is before start ({self.start}): a scenario runs from start to stop")
        for event in self.events:
            if problem := event_problem(event):
                raise ValueError(f"event at {event.at}: {problem}")
        return self


class ScenarioReport(BaseModel):
    name: str
    account: str
    passed: bool
    failures: list[str]
    checks: int
    modes: list[str]  # "16:16:00 LATE SOFT_DERISK OVER_REGIME_TOLERANCE gross 115.00% → 113.00%"
    intents: list[str]
    orders: list[str]
    final_gross_pct: float | None
    order_workflow_ids: list[str]
    digest: str = ""  # sha256:<64 hex> over decisions, intents, fills and final positions
    timed_out: bool = False


def event_problem(event: TimedEvent) -> str | None:
    """What the shared event models leave open, bounded for a scenario: ids spelled like ids, a
    replace's quantity in range, and an order's desk-JSON fields few and small."""
    ids = [e.id for e in (event.order, event.cancel, event.replace) if e is not None]
    for event_id in ids:
        if not isinstance(event_id, str) or not re.fullmatch(EVENT_ID, event_id):
            return f"id {str(event_id)[:40]!r} is not an id (letters, digits and _ . : -, at most 64)"
    if event.replace is not None and not 0 < event.replace.quantity <= MAX_QUANTITY:
        return f"replace quantity must be between 1 and {MAX_QUANTITY:,}"
    if event.order is not None:
        return free_form_problem(event.order)
    return None


def free_form_problem(order: OrderEventSpec) -> str | None:
    """An order event passes its fields on as a desk's JSON: each at most MAX_FREE_FORM_BYTES as
    JSON, and at most MAX_FREE_FORM_FIELDS beyond the known ones (a field holding an alias bomb
    or a megabyte would otherwise travel into every history that carries the plan)."""
    extra = order.model_extra or {}
    if len(extra) > MAX_FREE_FORM_FIELDS:
        return f"order {order.id}: {len(extra)} extra fields, over the limit of {MAX_FREE_FORM_FIELDS}"
    fields = {name: getattr(order, name) for name in type(order).model_fields} | extra
    for name, value in fields.items():
        if len(str(name)) > 64:
            return f"order {order.id}: a field name is longer than 64 characters"
        try:
            size = len(json.dumps(value, allow_nan=False, default=str))
        except (ValueError, TypeError, RecursionError):
            return f"order {order.id}: {str(name)[:64]} is not plain JSON data"
        if size > MAX_FREE_FORM_BYTES:
            return f"order {order.id}: {str(name)[:64]} is {size:,} bytes as JSON, over the limit of {MAX_FREE_FORM_BYTES}"
    return None
