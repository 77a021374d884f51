"""The scenario file format (documented in README §Scenarios)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import CancelReason, DecisionReason, IntentKind, OrderState, OrderType, PriceRule, RejectReason, RiskMode, Side
from domain.events import TimedEvent
from domain.marketdata import Shock
from domain.pnl import BodPosition
from protocol.messages import CancelRefusal

HHMM = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    symbols: list[str] = []  # each of these has at least one intent in that cycle


class OrderExpectation(Spec):
    """An order's outcome. `state` never matches a LOST order (one that went away or silent and
    was reconciled): expect `lost: true` for that."""

    id: str
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

    id: str
    accepted: bool | None = None
    refusal: CancelRefusal | None = None
    reject_reason: RejectReason | None = None
    new_id: str | None = None
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


class Expectation(Spec):
    """One check. With `at`, it reads the decision of the cycle at exactly that time; with
    `from`/`by`, of every cycle in that window (inclusive) — said explicitly, never implied."""

    at: str | None = Field(default=None, pattern=HHMM)
    from_: str | None = Field(default=None, alias="from", pattern=HHMM)
    by: str | None = Field(default=None, pattern=HHMM)
    regime: str | None = None
    mode: RiskMode | None = None
    reason: DecisionReason | None = None
    intents: IntentExpectation | Literal["none"] | None = None
    order: OrderExpectation | None = None
    cancel: AnswerExpectation | None = None
    replace: AnswerExpectation | None = None
    desk_orders: DeskOrdersExpectation | None = None
    skipped: list[str] = []  # symbols whose de-risk that cycle skipped for stale data (STALE_DATA)
    final_gross_max_pct: float | None = None
    gross_always_below_pct: float | None = None

    COMPARED: ClassVar = (
        "regime", "mode", "reason", "intents", "skipped", "order", "cancel", "replace", "desk_orders",
        "final_gross_max_pct", "gross_always_below_pct",
    )  # fmt: skip

    def comparisons(self) -> int:
        """How many comparisons this expectation makes (a scenario report's `checks`)."""
        count = len(compared(self, ("regime", "mode", "reason", "intents", "final_gross_max_pct", "gross_always_below_pct")))
        count += len(self.skipped)
        for part in (self.order, self.cancel, self.replace, self.desk_orders):
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
        decision_fields = (self.regime, self.mode, self.reason, self.intents, self.skipped or None)
        if any(f is not None for f in decision_fields) and self.at is None and self.from_ is None:
            raise ValueError("regime, mode, reason and intents are read at a cycle: give `at` or `from`/`by`")
        return self


class RandomOrders(Spec):
    """Seeded random desk orders, expanded into order events when the scenario loads."""

    seed: int
    count: int = Field(gt=0, le=500)
    start: str = Field(pattern=HHMM)
    every_seconds: int = Field(gt=0)
    symbols: list[str]
    max_quantity: int = Field(gt=0)


class GeneratedMarket(Spec):
    """A seeded generated day for the universe (marketdata/generator.py), with scripted shocks."""

    seed: int
    shocks: list[Shock] = []
    scale: float | None = Field(default=None, gt=0, le=1)  # share of a real day's prints and quotes


class MarketSpec(Spec):
    """The scenario's market: recorded files (a directory with quotes.parquet, prints.parquet
    and day.json, relative to scenarios/) or a generated day. Absent: quotes from marks."""

    file: str | None = None
    generate: GeneratedMarket | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MarketSpec:
        if (self.file is None) == (self.generate is None):
            raise ValueError("market needs exactly one of `file` or `generate`")
        return self


class ScenarioSpec(Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    seed: int = 1
    equity: float = Field(default=1_000_000.0, gt=0)
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    start: str = Field(pattern=HHMM)
    stop: str = Field(pattern=HHMM)
    rules: dict[str, Any] = {}  # overrides merged into risk_rules.yaml, e.g. {fills: {other: 1.0}}
    events: list[TimedEvent] = []
    market: MarketSpec | None = None
    # Beginning-of-day positions with cost basis: inline rows, or a CSV file relative to scenarios/.
    positions: list[BodPosition] | str | None = None
    random_orders: RandomOrders | None = None
    expect: list[Expectation] = Field(min_length=1)


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
