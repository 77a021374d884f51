"""Risk rules and the instrument universe as validated models.

Loading (file I/O, YAML) lives in `config/load.py`; these models are pure and travel inside
workflow inputs, so a run's history carries the exact rules it ran under.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time
from functools import cached_property, lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictBool, field_validator, model_validator

from domain.base import Finite
from domain.calendars import CALENDAR_ZONES
from domain.costs import CostSchedule
from domain.enums import SESSION_REGIMES, Bucket, Regime, RiskMode
from domain.limits import MAX_EQUITY, MAX_PCT, MAX_PRICE, MAX_QUANTITY
from domain.marketdata import MarketDataRule

# Bounds on every list and map a rules or universe file holds (issue 20): far above what a desk
# needs, and small enough that the largest accepted rules (477,402 bytes as JSON, measured in
# tests/test_input_bounds.py) travel in an update and a continue-as-new with room to spare.
MAX_RESTRICTED_SYMBOLS = 10_000  # a firm-wide restricted list
MAX_SYMBOL_OVERRIDES = 5_000  # per-symbol limits: one per instrument of the largest universe
MAX_INSTRUMENTS = 5_000
MAX_GROUPS = 500
MAX_NAME_LENGTH = 40  # group names
MAX_WINDOW_SECONDS = 86_400.0  # a rolling window of at most a day


class RuleError(ValueError):
    """A rule that does not hold; `key` is the dotted path of the offending setting."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


Pct = Annotated[float, Field(ge=0, le=MAX_PCT)]
Fraction = Annotated[float, Field(ge=0, le=1)]


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
# A regime starts at a clock time ("16:15") or at an offset from the session's own open or close
# ("open", "open + 30m", "close - 15m"): anchored starts move with a half day's early close.
REGIME_START_PATTERN = r"^(([01]\d|2[0-3]):[0-5]\d|open( ?\+ ?\d{1,3}m)?|close( ?- ?\d{1,3}m)?)$"
_ANCHORED = re.compile(r"^(open|close)(?: ?[+-] ?(\d{1,3})m)?$")


class Session(Finite):
    """The trading session. Without a calendar: `open` and `close` every day (weekends too) — one
    endless run of days that never roll, the form single-day scenarios use. With `calendar` (an
    exchange_calendars name, e.g. XNYS): the calendar's sessions — holidays, half days — and a
    daily roll at each close; `open`/`close` are then optional overrides of every session's hours
    (an early close keeps the calendar's)."""

    time_zone: str = Field(max_length=64)
    calendar: str | None = Field(default=None, max_length=16)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (IANA name, e.g. America/New_York)") from None
        return value

    open: str | None = Field(default=None, pattern=HHMM_PATTERN)
    close: str | None = Field(default=None, pattern=HHMM_PATTERN)
    # Desk orders between sessions: None = refused with a calendar (OUTSIDE_SESSION), accepted
    # without one (the clock-time session's way: a rig exercised at any hour).
    orders_outside_session: bool | None = None

    @property
    def open_minute(self) -> int:
        return minute_of_day(self.hours()[0])

    @property
    def close_minute(self) -> int:
        return minute_of_day(self.hours()[1])

    @property
    def has_hours(self) -> bool:
        return self.open is not None and self.close is not None

    @property
    def accepts_orders_outside(self) -> bool:
        return self.orders_outside_session if self.orders_outside_session is not None else self.calendar is None

    def hours(self) -> tuple[str, str]:
        if self.open is None or self.close is None:  # a calendar's session: resolved per day (domain/sessions.py)
            raise ValueError(f"the {self.calendar} session has no fixed hours: read them from the day's session")
        return self.open, self.close


def minute_of_day(hhmm: str) -> int:
    t = parse_hhmm(hhmm)
    return t.hour * 60 + t.minute


@lru_cache(maxsize=256)
def start_minute(start: str, open_minute: int, close_minute: int) -> int:
    """A regime's start as a minute of the day, its anchor resolved against these hours."""
    anchored = _ANCHORED.match(start)
    if anchored is None:
        return minute_of_day(start)
    offset = int(anchored.group(2) or 0)
    return open_minute + offset if anchored.group(1) == "open" else close_minute - offset


def anchor_of(start: str) -> tuple[str, int] | None:
    """("open", +minutes) or ("close", -minutes) for an anchored start; None for a clock time."""
    anchored = _ANCHORED.match(start)
    if anchored is None:
        return None
    offset = int(anchored.group(2) or 0)
    return (anchored.group(1), offset if anchored.group(1) == "open" else -offset)


class RegimeRule(Finite):
    start: str = Field(pattern=REGIME_START_PATTERN)
    gross_tolerance_pct: Pct
    allow_derisk: bool


class OutsideSessionRule(Finite):
    gross_tolerance_pct: Pct
    allow_derisk: bool = False


class BucketRule(Finite):
    target_pct: Pct
    max_pct: Pct


class DeriskRule(Finite):
    buffer_pct: Pct
    hard_chunk_fraction: Annotated[float, Field(gt=0, le=1)]
    truth_tick_offset: Annotated[float, Field(ge=0, le=MAX_PRICE)]
    # On a daily-loss row (L1, L2) de-risk brings gross down to this % of equity.
    loss_target_gross_pct: Pct = 50.0


class FillRule(Finite):
    """Per-attempt fill probability by the mode an order was issued under; `other` for the rest."""

    HARD_DERISK: Fraction
    SOFT_DERISK: Fraction
    other: Fraction
    partial_fill_probability: Fraction
    cancel_cross_probability: Fraction

    def probability(self, mode: RiskMode) -> float:
        if mode is RiskMode.HARD_DERISK:
            return self.HARD_DERISK
        if mode is RiskMode.SOFT_DERISK:
            return self.SOFT_DERISK
        return self.other


class OrderRule(Finite):
    max_order_notional: Annotated[float, Field(gt=0, le=MAX_EQUITY)]


class CycleRule(Finite):
    cycle_seconds: Annotated[int, Field(gt=0, le=3600)]  # a risk cycle at least hourly
    decisions_kept: Annotated[int, Field(gt=0, le=5000)] = 200
    # Continue-as-new after this many cycles: keeps history far below Temporal's limits.
    cycles_per_run: Annotated[int, Field(gt=0, le=1000)] = 120


# Issue 16: loss limits, pre-trade controls besides exposure, liquidity. Every section is
# optional and its defaults change nothing, so rules files and histories from before still load.

SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.]{0,11}$"
DEFAULT_ADV = 1_000_000  # shares/day, for an instrument whose universe entry does not say

PositiveInt = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
PositivePct = Annotated[float, Field(gt=0, le=MAX_PCT, allow_inf_nan=False)]
WindowSeconds = Annotated[float, Field(gt=0, le=MAX_WINDOW_SECONDS, allow_inf_nan=False)]
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]


def _check_symbols(symbols: Iterable[str], key: str) -> None:
    """Symbol lists in the rules are spelled like the universe's (typos there would never match)."""
    seen: set[str] = set()
    for symbol in symbols:
        if not re.fullmatch(SYMBOL_PATTERN, symbol):
            raise RuleError(f"{key}.{symbol[:40]}", "is not a symbol (upper-case letters, digits, '.')")
        if symbol in seen:
            raise RuleError(f"{key}.{symbol}", "listed twice")
        seen.add(symbol)


class LossLimitRule(Finite):
    """Daily loss thresholds as % of equity lost since the beginning of the day; each is a row
    of the policy table (THROTTLE_NEW_ORDERS, SOFT_DERISK, HARD_DERISK). SOFT is optional."""

    throttle_pct: Percent
    soft_pct: Percent | None = None
    hard_pct: Percent

    @model_validator(mode="after")
    def _ordered(self) -> LossLimitRule:
        if self.soft_pct is not None:
            if self.throttle_pct > self.soft_pct:
                raise RuleError("throttle_pct", f"{self.throttle_pct} is above soft_pct ({self.soft_pct})")
            if self.soft_pct > self.hard_pct:
                raise RuleError("soft_pct", f"{self.soft_pct} is above hard_pct ({self.hard_pct})")
        if self.throttle_pct > self.hard_pct:
            raise RuleError("throttle_pct", f"{self.throttle_pct} is above hard_pct ({self.hard_pct})")
        return self


class MaxOrderQuantityRule(Finite):
    """Shares per order: `default` for every symbol, `per_symbol` overrides; null = no limit."""

    default: PositiveInt | None = None
    per_symbol: dict[str, PositiveInt] = Field(default_factory=dict, max_length=MAX_SYMBOL_OVERRIDES)

    @model_validator(mode="after")
    def _symbols(self) -> MaxOrderQuantityRule:
        _check_symbols(self.per_symbol, "per_symbol")
        return self

    def limit_for(self, symbol: str) -> int | None:
        return self.per_symbol.get(symbol, self.default)


class PriceCollarRule(Finite):
    """Fat-finger band: a limit more than `band_pct` % from the truth tick is refused at
    pre-trade (the venue's own collar, 10%, stays behind it). null = off."""

    band_pct: Percent | None = None


class MaxPositionRule(Finite):
    """Position per symbol (all buckets) as % of equity, worst case with the account's open
    orders on the order's side; `per_symbol` overrides. null = no limit."""

    max_pct: PositivePct | None = None
    per_symbol: dict[str, PositivePct] = Field(default_factory=dict, max_length=MAX_SYMBOL_OVERRIDES)

    @model_validator(mode="after")
    def _symbols(self) -> MaxPositionRule:
        _check_symbols(self.per_symbol, "per_symbol")
        return self

    def limit_for(self, symbol: str) -> float | None:
        return self.per_symbol.get(symbol, self.max_pct)


class OrderRateRule(Finite):
    """At most `max_orders` accepted desk orders per account in any `window_seconds` of
    workflow time. null = no limit."""

    max_orders: PositiveInt | None = None
    window_seconds: WindowSeconds = 60.0


class DuplicateOrderRule(Finite):
    """Refuse an order with the same symbol, side, quantity and price as one accepted less than
    `window_seconds` ago, unless the intent says `intended_duplicate: true`. null = off."""

    window_seconds: WindowSeconds | None = None


class RestrictedListRule(Finite):
    """Symbols no desk order may trade."""

    symbols: list[str] = Field(default_factory=list, max_length=MAX_RESTRICTED_SYMBOLS)

    @model_validator(mode="after")
    def _symbols(self) -> RestrictedListRule:
        _check_symbols(self.symbols, "symbols")
        return self


# Issue 25 (SEC 15c3-5, MiFID II RTS 6 Art. 15–18): every order checked, the rig's own included;
# messages throttled; more erroneous-order controls. Each is off by default: rules files, histories
# and golden digests from before stay as they were.

MAX_MESSAGES = 5_000  # per window: the account keeps that many send times (bounded carried state)
MAX_REPEATED_FILLS = 1_000


class QuoteSanityRule(Finite):
    """BAD_QUOTE: an order is refused when the L1 it is priced off or sent into cannot be traded on —
    crossed (bid > ask), locked (bid = ask), a side with zero size, a price not finite and > 0, or older
    than market_data.l1_max_age_seconds. Desk orders and the rig's own alike. false = off."""

    enabled: StrictBool = False


class PriceBandRule(Finite):
    """PRICE_BAND: a limit more than `band_pct` % from a fresh L1's mid, either side — the rig's de-risk
    limits (HARD at the bid, SOFT off the truth tick) and desk limits alike. null = off."""

    band_pct: Percent | None = None


class MarketCollarRule(Finite):
    """PRICE_COLLAR for MARKET orders: refused when the far touch (a buy's ask, a sell's bid) is more
    than `band_pct` % from the collar's reference (the fresh mark), or when there is no fresh L1 or
    reference (fails closed). null = off (MARKET orders not collared)."""

    band_pct: Percent | None = None


class AdvShareRule(Finite):
    """ADV_SHARE: an order for more than `max_share` of the instrument's average daily volume
    (universe.yaml `adv`). null = off."""

    max_share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None


class SymbolNotionalRule(Finite):
    """MAX_SYMBOL_NOTIONAL: the symbol's position (all buckets) plus the open orders on the order's
    side plus the order, valued at the mark, above `max_notional` (account currency). An order that
    brings that worst case closer to flat passes. null = off."""

    max_notional: Annotated[float, Field(gt=0, le=MAX_EQUITY, allow_inf_nan=False)] | None = None


class SelfCrossRule(Finite):
    """SELF_CROSS: a desk BUY at or above a resting SELL of the same account in the same symbol (a SELL
    at or below a resting BUY; a MARKET order against any resting opposite order) is refused. false = off."""

    enabled: StrictBool = False


class MessageRateRule(Finite):
    """MESSAGE_RATE: at most `max_messages` messages sent per account — new orders, cancels and
    replaces, the rig's own counted too — in any `window_seconds` of workflow time. Over it, desk new
    orders and replaces are refused; a cancel (it only lowers risk) and the rig's de-risk are counted,
    never refused. A refused message is not sent and not counted. null = off."""

    max_messages: Annotated[int, Field(gt=0, le=MAX_MESSAGES)] | None = None
    window_seconds: WindowSeconds = 1.0


class OrderToTradeRule(Finite):
    """An alarm (not a refusal) when messages / fills over `window_seconds` exceed `max_ratio`, once at
    least `min_messages` were sent in the window; raised at most once per window. null = off."""

    max_ratio: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    window_seconds: WindowSeconds = 3600.0
    min_messages: Annotated[int, Field(gt=0, le=MAX_QUANTITY)] = 100


class RepeatedExecutionRule(Finite):
    """Repeated-execution throttle (RTS 6 Art. 15(3)): `max_fills` fills of desk orders in the same
    symbol and side within `window_seconds` put the account REDUCING, with the reason. null = off."""

    max_fills: Annotated[int, Field(ge=2, le=MAX_REPEATED_FILLS)] | None = None
    window_seconds: WindowSeconds = 60.0


class RigOrdersRule(Finite):
    """The rig's own orders (de-risk, escalations) pass max_order_quantity and orders.max_order_notional
    too (quote sanity and the price band apply to them whenever those are on). false = as before."""

    size_limits: StrictBool = False


class ControlsRule(Finite):
    """Pre-trade controls besides exposure (SEC 15c3-5 style); all off by default."""

    max_order_quantity: MaxOrderQuantityRule = Field(default_factory=MaxOrderQuantityRule)
    price_collar: PriceCollarRule = Field(default_factory=PriceCollarRule)
    max_position: MaxPositionRule = Field(default_factory=MaxPositionRule)
    order_rate: OrderRateRule = Field(default_factory=OrderRateRule)
    duplicative_orders: DuplicateOrderRule = Field(default_factory=DuplicateOrderRule)
    restricted: RestrictedListRule = Field(default_factory=RestrictedListRule)
    quote_sanity: QuoteSanityRule = Field(default_factory=QuoteSanityRule)
    price_band: PriceBandRule = Field(default_factory=PriceBandRule)
    market_collar: MarketCollarRule = Field(default_factory=MarketCollarRule)
    adv_share: AdvShareRule = Field(default_factory=AdvShareRule)
    symbol_notional: SymbolNotionalRule = Field(default_factory=SymbolNotionalRule)
    self_cross: SelfCrossRule = Field(default_factory=SelfCrossRule)
    message_rate: MessageRateRule = Field(default_factory=MessageRateRule)
    order_to_trade: OrderToTradeRule = Field(default_factory=OrderToTradeRule)
    repeated_executions: RepeatedExecutionRule = Field(default_factory=RepeatedExecutionRule)
    rig_orders: RigOrdersRule = Field(default_factory=RigOrdersRule)


class LiquidityRule(Finite):
    """De-risk orders clipped to a share of average daily volume per risk cycle (see
    domain/liquidity.py). `adv_share_per_cycle` null = no clipping (the playbook as before)."""

    adv_share_per_cycle: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    # A residual below one lot goes only in HARD or in the session's last minutes.
    residual_minutes: Annotated[float, Field(ge=0, le=24 * 60, allow_inf_nan=False)] = 5.0


class RiskRules(Finite):
    session: Session
    regimes: dict[Regime, RegimeRule]
    outside_session: OutsideSessionRule
    hard_cap_pct: Annotated[float, Field(gt=0, le=MAX_PCT)]
    buckets: dict[Bucket, BucketRule]
    derisk: DeriskRule
    fills: FillRule
    orders: OrderRule
    risk_cycle: CycleRule
    loss_limits: LossLimitRule | None = None  # absent: no loss rows fire
    controls: ControlsRule = Field(default_factory=ControlsRule)
    liquidity: LiquidityRule = Field(default_factory=LiquidityRule)
    market_data: MarketDataRule = Field(default_factory=MarketDataRule)
    costs: CostSchedule = Field(default_factory=CostSchedule)  # all zero: P&L as before (gross = net)

    @model_validator(mode="after")
    def _consistent(self) -> RiskRules:
        self._session_consistent()
        if Regime.OUTSIDE_SESSION in self.regimes:
            raise RuleError("regimes.OUTSIDE_SESSION", "is not a session regime; use outside_session")
        for regime in SESSION_REGIMES:
            if regime not in self.regimes:
                raise RuleError(f"regimes.{regime.value}", "missing regime")
        for regime in SESSION_REGIMES:
            rule = self.regimes[regime]
            if rule.gross_tolerance_pct > self.hard_cap_pct:
                raise RuleError(
                    f"regimes.{regime.value}.gross_tolerance_pct",
                    f"{rule.gross_tolerance_pct} is above the hard cap ({self.hard_cap_pct})",
                )
        if self.session.has_hours:
            self._regimes_within_hours()
        else:
            self._regimes_anchored()
        for bucket in Bucket:
            if bucket not in self.buckets:
                raise RuleError(f"buckets.{bucket.value}", "missing bucket")
            limits = self.buckets[bucket]
            if limits.max_pct < limits.target_pct:
                raise RuleError(
                    f"buckets.{bucket.value}.max_pct",
                    f"{limits.max_pct} is below its target_pct ({limits.target_pct})",
                )
        return self

    def _session_consistent(self) -> None:
        session = self.session
        if session.calendar is None:
            for key in ("open", "close"):
                if getattr(session, key) is None:
                    raise RuleError(f"session.{key}", "is required without a calendar (session.calendar, e.g. XNYS)")
        elif session.calendar not in CALENDAR_ZONES:
            raise RuleError("session.calendar", f"{session.calendar!r} is not a calendar this rig knows (e.g. XNYS, XLON; domain/calendars.py)")
        elif CALENDAR_ZONES[session.calendar] != session.time_zone:
            raise RuleError("session.time_zone", f"{session.time_zone} is not the {session.calendar} calendar's ({CALENDAR_ZONES[session.calendar]})")
        if session.has_hours and session.open_minute >= session.close_minute:
            raise RuleError("session.close", f"must be after session.open ({session.open})")

    def _regimes_within_hours(self) -> None:
        """Known hours: every start resolved against them, in order from the open, before the close."""
        session = self.session
        previous: Regime | None = None
        for regime in SESSION_REGIMES:
            rule = self.regimes[regime]
            key = f"regimes.{regime.value}"
            start = self.start_of(regime)
            if previous is None and start != session.open_minute:
                raise RuleError(f"{key}.start", f"must equal session.open ({session.open}), got {rule.start}")
            if previous is not None and start <= self.start_of(previous):
                raise RuleError(
                    f"{key}.start",
                    f"{rule.start} overlaps {previous.value} (starts {self.regimes[previous].start}); "
                    "regimes must start in order OPEN_EARLY < MID < LATE < CLOSE",
                )
            if start >= session.close_minute:
                raise RuleError(f"{key}.start", f"{rule.start} is not before session.close ({session.close})")
            previous = regime

    def _regimes_anchored(self) -> None:
        """A calendar's hours, known only per day: every start anchored, the first at the open, in order
        (anchored to the open before anchored to the close)."""
        previous: tuple[str, int] | None = None
        for regime in SESSION_REGIMES:
            rule = self.regimes[regime]
            key = f"regimes.{regime.value}.start"
            anchor = anchor_of(rule.start)
            if anchor is None:
                raise RuleError(key, f"{rule.start} is a clock time: with a calendar's hours, anchor it (e.g. 'open + 30m', 'close - 15m')")
            if previous is None and anchor != ("open", 0):
                raise RuleError(key, f"must be 'open' (the session's open), got {rule.start}")
            out_of_order = previous is not None and (anchor[1] <= previous[1] if anchor[0] == previous[0] else anchor[0] == "open")
            if out_of_order:
                raise RuleError(
                    key, f"{rule.start} does not come after the regime before it; regimes must start in order OPEN_EARLY < MID < LATE < CLOSE"
                )
            previous = anchor

    def start_of(self, regime: Regime) -> int:
        """The regime's start as a minute of the day, on these rules' hours."""
        return start_minute(self.regimes[regime].start, self.session.open_minute, self.session.close_minute)

    def regime_rule(self, regime: Regime) -> RegimeRule | OutsideSessionRule:
        if regime is Regime.OUTSIDE_SESSION:
            return self.outside_session
        return self.regimes[regime]


class Instrument(Finite):
    symbol: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,11}$")
    group: str = Field(max_length=MAX_NAME_LENGTH)
    bucket: Bucket
    lot_size: Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
    reference_price: Annotated[float, Field(gt=0, le=MAX_PRICE)]
    adv: Annotated[int, Field(gt=0, le=1_000 * MAX_QUANTITY)] = DEFAULT_ADV  # average daily volume, shares/day


class Universe(Finite):
    groups: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]] = Field(max_length=MAX_GROUPS)
    instruments: list[Instrument] = Field(max_length=MAX_INSTRUMENTS)

    @model_validator(mode="after")
    def _consistent(self) -> Universe:
        if len(set(self.groups)) != len(self.groups):
            raise RuleError("groups", "duplicate group names")
        known = set(self.groups)
        seen: set[str] = set()
        for i, inst in enumerate(self.instruments):
            if inst.group not in known:
                raise RuleError(f"instruments[{i}].group", f"unknown group {inst.group!r} for {inst.symbol}")
            if inst.symbol in seen:
                raise RuleError(f"instruments[{i}].symbol", f"duplicate symbol {inst.symbol}")
            seen.add(inst.symbol)
        return self

    @cached_property
    def by_symbol(self) -> dict[str, Instrument]:
        """Symbol → instrument, built once per universe (pre-trade and exposure read it per call)."""
        return {inst.symbol: inst for inst in self.instruments}

    @cached_property
    def group_of(self) -> dict[str, str]:
        return {inst.symbol: inst.group for inst in self.instruments}


class RigConfig(Finite):
    """Everything a workflow needs to decide: rules plus the universe, carried in its input."""

    rules: RiskRules
    universe: Universe
