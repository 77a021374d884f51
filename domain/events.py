"""Synthetic exposure events: validation and the percentage shortcut.

The shortcut builds longs at a $100 mark in the first four lot-1 instruments of each bucket, so
"gross 115% with LT 85 / MM 30" is exact to the cent on any equity that is a multiple of $10,000;
`potential_pct` above gross adds one synthetic resting buy order on the first LT instrument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from domain.base import Record
from domain.enums import Bucket, CancelReason, Side, TradingState
from domain.limits import (
    MAX_EQUITY,
    MAX_PCT,
    MAX_QUANTITY,
    positive_amount,
    whole_number,
)
from domain.models import OpenOrder, Position
from domain.rules import RigConfig

SHORTCUT_MARK = 100.0
MAX_EVENT_ITEMS = 5_000
MIN_MARK = 0.02  # a mark the simulated feed can quote: a cent either side leaves a bid of at least a cent
SESSION_DATES = (date(1970, 1, 1), date(2199, 12, 31))  # what set_session may move a virtual day to
SHORTCUT_SYMBOLS_PER_BUCKET = 4
MAX_RUN_DAYS = 10  # sessions a scenario may span


def split_dated(data: Any, key: str, date_key: str) -> Any:
    """A mapping whose `key` reads "YYYY-MM-DD HH:MM[:SS]": the date moved to `date_key` (a scenario's
    dated time); anything else as it is (the model's own validation says what is wrong)."""
    if isinstance(data, dict) and isinstance(data.get(key), str) and " " in data[key].strip():
        day, _, at = data[key].strip().partition(" ")
        if date_key in data and data[date_key] not in (None, day):
            return data  # both given and different: left for the model (it refuses the time's form)
        return data | {key: at.strip(), date_key: day}
    return data


class ExposureEvent(Record):
    """Synthetic exposure: explicit positions/marks/resting orders, or the percentage shortcut."""

    equity: float | None = None
    positions: list[Position] | None = None
    marks: dict[str, float] = Field(default_factory=dict)
    resting_orders: list[OpenOrder] | None = None  # synthetic open orders: potential only, never worked
    gross_pct: float | None = None
    lt_pct: float | None = None
    mm_pct: float | None = None
    potential_pct: float | None = None

    @property
    def is_shortcut(self) -> bool:
        return any(v is not None for v in (self.gross_pct, self.lt_pct, self.mm_pct, self.potential_pct))

    @property
    def replaces_book(self) -> bool:
        """Positions and resting orders are replaced (not just equity or marks updated)."""
        return self.is_shortcut or self.positions is not None or self.resting_orders is not None


class SessionEvent(Record):
    exchange_time: str = Field(
        pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
        description="exchange-local HH:MM[:SS]; the clock then advances with workflow time",
    )
    exchange_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")

    @field_validator("exchange_date")
    @classmethod
    def _a_trading_date(cls, value: str | None) -> str | None:
        """A real date the clock can run through (9999-12-31 would overflow at the next cycle)."""
        if value is not None and not (SESSION_DATES[0] <= date.fromisoformat(value) <= SESSION_DATES[1]):
            raise ValueError(f"exchange_date {value} is outside {SESSION_DATES[0]}..{SESSION_DATES[1]}")
        return value


class OrderEventSpec(BaseModel):
    """A desk order a scenario submits; `id` is the intent id's suffix within the account.
    Any other field is sent as it is, like a desk's JSON: pre-trade judges it (a rig field such
    as `kind`, or an unknown one, is REJECTED MALFORMED_INTENT naming it)."""

    model_config = ConfigDict(extra="allow")

    id: str
    symbol: Any
    side: Any
    quantity: Any
    limit_price: Any = None
    order_type: Any = "LIMIT"
    bucket: Any = None
    reduce_only: bool = False


class CancelEventSpec(Record):
    id: str
    reason: CancelReason = CancelReason.USER


class ReplaceEventSpec(Record):
    """A desk's cancel/replace of an earlier order (`id` may name a replacement: `o4.R1`)."""

    id: str
    quantity: int
    limit_price: float | None = None


class TradingStateRequest(Record):
    """The kill switch and its siblings: who asks, and why (both recorded)."""

    state: TradingState
    by: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=500)
    freeze: StrictBool = False  # HALTED only: de-risk stops too ("yes" is not true)

    @model_validator(mode="after")
    def _freeze_with_halt(self) -> TradingStateRequest:
        if self.freeze and self.state is not TradingState.HALTED:
            raise ValueError("freeze stops de-risk too: it goes with HALTED only")
        return self


class TimedEvent(Record):
    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")  # exchange-local
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")  # a multi-day run's: that day's `at`
    day: int | None = Field(default=None, ge=1, le=MAX_RUN_DAYS)  # a scenario's N-th session (its loader sets `date`)

    @model_validator(mode="before")
    @classmethod
    def _dated_at(cls, data: Any) -> Any:
        """`at: "2026-11-24 10:00"` is the date and the time of day."""
        return split_dated(data, "at", "date")

    exposure: ExposureEvent | None = None
    order: OrderEventSpec | None = None
    cancel: CancelEventSpec | None = None
    replace: ReplaceEventSpec | None = None
    trading_state: TradingStateRequest | None = None


def _pct_ok(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and 0 <= value <= MAX_PCT)


def exposure_event_problem(event: ExposureEvent, config: RigConfig) -> str | None:
    """Why the event cannot be applied, or None. Every number is bounded here, before the
    handler does any arithmetic with it (limits in domain/limits.py)."""
    known = config.universe.by_symbol
    if event.equity is not None and not (math.isfinite(event.equity) and 0 < event.equity <= MAX_EQUITY):
        return f"equity must be a finite number > 0 and at most {MAX_EQUITY:,.0f}, got {event.equity}"
    for name in ("gross_pct", "lt_pct", "mm_pct", "potential_pct"):
        if not _pct_ok(getattr(event, name)):
            return f"{name} must be a finite number between 0 and {MAX_PCT:,.0f}, got {getattr(event, name)}"
    if len(event.positions or []) + len(event.resting_orders or []) + len(event.marks) > MAX_EVENT_ITEMS:
        return f"at most {MAX_EVENT_ITEMS} positions, resting orders and marks in one event"
    if event.is_shortcut and (event.positions is not None or event.resting_orders is not None):
        return "give either positions/resting_orders or the percentage shortcut, not both"
    if event.is_shortcut:
        if event.lt_pct is None and event.mm_pct is None and event.gross_pct is None:
            return "the shortcut needs gross_pct, or lt_pct and mm_pct"
        if event.gross_pct is not None and event.lt_pct is not None and event.mm_pct is not None:
            if abs(event.lt_pct + event.mm_pct - event.gross_pct) > 1e-6:
                return f"lt_pct + mm_pct ({event.lt_pct + event.mm_pct}) must equal gross_pct ({event.gross_pct})"
        gross = sum(shortcut_split(event))
        if event.potential_pct is not None and event.potential_pct < gross - 1e-9:
            return f"potential_pct ({event.potential_pct}) cannot be below gross ({gross})"
    keys = [(p.symbol, p.bucket) for p in event.positions or []]
    if len(keys) != len(set(keys)):
        return "each (symbol, bucket) may appear once in positions"
    for position in event.positions or []:
        if position.symbol not in known:
            return f"unknown symbol {position.symbol[:40]!r}"
        if problem := whole_number(position.quantity, f"position {position.symbol} quantity", low=-MAX_QUANTITY):
            return problem
    for order in event.resting_orders or []:
        if order.symbol not in known:
            return f"unknown symbol {order.symbol[:40]!r} in resting_orders"
        if problem := whole_number(order.remaining, f"resting order {order.intent_id[:40]} remaining"):
            return problem
    for symbol, mark in event.marks.items():
        if symbol not in known:
            return f"unknown symbol {symbol[:40]!r} in marks"
        if problem := positive_amount(mark, f"mark for {symbol}"):
            return problem
        if mark < MIN_MARK:
            return f"mark for {symbol} must be at least {MIN_MARK}, got {mark:g}"
    return None


def shortcut_split(event: ExposureEvent) -> tuple[float, float]:
    """(LT %, MM_PURE %): given, or gross split 80:20 like the bucket targets."""
    if event.lt_pct is not None or event.mm_pct is not None:
        lt = event.lt_pct if event.lt_pct is not None else (event.gross_pct or 0) - (event.mm_pct or 0)
        mm = event.mm_pct if event.mm_pct is not None else (event.gross_pct or 0) - lt
        return lt, mm
    gross = event.gross_pct or 0.0
    return gross * 0.8, gross * 0.2


def shortcut_symbols(config: RigConfig, bucket: Bucket) -> list[str]:
    return [i.symbol for i in config.universe.instruments if i.bucket is bucket and i.lot_size == 1][:SHORTCUT_SYMBOLS_PER_BUCKET]


def build_shortcut(
    event: ExposureEvent, equity: float, config: RigConfig, market_marks: Mapping[str, float] | None = None
) -> tuple[list[Position], dict[str, float], list[OpenOrder]]:
    """Positions (and marks) for the percentages. On an account with a market, the market's marks
    size the positions (each symbol an equal share of its bucket) and no mark is set."""
    lt_pct, mm_pct = shortcut_split(event)
    positions: list[Position] = []
    marks: dict[str, float] = {}
    for bucket, pct in ((Bucket.LT, lt_pct), (Bucket.MM_PURE, mm_pct)):
        symbols = shortcut_symbols(config, bucket)
        if market_marks is not None:
            for symbol in symbols:
                qty = round(pct / 100.0 * equity / len(symbols) / market_marks[symbol])
                if qty:
                    positions.append(Position(symbol=symbol, bucket=bucket, quantity=qty))
            continue
        shares = round(pct / 100.0 * equity / SHORTCUT_MARK)
        each, extra = divmod(shares, len(symbols))
        for i, symbol in enumerate(symbols):
            qty = each + (extra if i == 0 else 0)
            marks[symbol] = SHORTCUT_MARK
            if qty:
                positions.append(Position(symbol=symbol, bucket=bucket, quantity=qty))
    resting: list[OpenOrder] = []
    if event.potential_pct is not None and event.potential_pct > lt_pct + mm_pct:
        symbol = shortcut_symbols(config, Bucket.LT)[0]
        mark = market_marks[symbol] if market_marks is not None else SHORTCUT_MARK
        shares = round((event.potential_pct - lt_pct - mm_pct) / 100.0 * equity / mark)
        resting.append(OpenOrder(intent_id="resting-potential", symbol=symbol, bucket=Bucket.LT, side=Side.BUY, remaining=shares))
    return positions, marks, resting
