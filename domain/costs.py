"""Commissions and fees as data, and what one fill costs (DESIGN.md §3 "Costs"). Pure.

A schedule (rules `costs`, all zero by default: P&L as before, gross = net) has:
  - the broker's commission per order: per share + bps of notional, at least `min_per_order`, at most
    `max_per_order` and `max_pct_of_notional` % of the order's notional (a cap wins over the minimum:
    a tiny order pays the cap, as IBKR's 1%-of-trade-value maximum does);
  - the exchange's fee by the match's liquidity flag (domain/matching.py `Liquidity`), per share:
    TAKE (removing liquidity) a fee, PASSIVE (adding it) a fee or, negative, a rebate;
  - clearing per share (NSCC/DTC);
  - on sells only: the SEC Section 31 fee (per million dollars of notional sold) and FINRA's Trading
    Activity Fee (per share sold, at most `taf_max_per_trade` per execution).

Rounding, stated once: amounts are in account currency and each part of a fill is rounded to the cent
(Decimal arithmetic, no binary residue). The commission is an order's: the commission of the order's
cumulative shares and notional after this fill, rounded half-up, minus the same before it — so the
minimum is charged on the first fill and an order's fills add up to exactly the order's commission.
Exchange and clearing fees round half away from zero (a rebate stays a rebate). The SEC fee and TAF
round up to the next cent, as brokers pass them through. `total` is the sum of the rounded parts.

A broker that reports what an execution cost (IBKR's CommissionAndFeesReport — `Fill.commission`)
replaces the computed figure: `ALL_IN` (IBKR: the report is commission and fees together) makes the
reported amount the fill's total, `COMMISSION_ONLY` replaces the commission and computes the fees.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Annotated

from pydantic import Field

from domain.base import Finite
from domain.enums import Side
from domain.limits import MAX_PRICE, MAX_QUANTITY
from domain.matching import Liquidity

CENT = Decimal("0.01")
MAX_FEE_PER_SHARE = 1.0  # dollars: far above any schedule, keeps a typo from meaning "a fortune"
MAX_REPORTED_COMMISSION = 1e9  # a broker's figure beyond this is not a commission


PerShare = Annotated[float, Field(ge=0, le=MAX_FEE_PER_SHARE)]
Money = Annotated[float, Field(ge=0, le=1e9)]


class BrokerCommission(str, Enum):
    ALL_IN = "ALL_IN"  # the reported figure is commission and fees together (IBKR)
    COMMISSION_ONLY = "COMMISSION_ONLY"  # the reported figure replaces the commission; fees computed


class CostSource(str, Enum):
    SCHEDULE = "SCHEDULE"
    BROKER = "BROKER"


class CommissionRule(Finite):
    per_share: PerShare = 0.0
    per_notional_bps: Annotated[float, Field(ge=0, le=1_000)] = 0.0
    min_per_order: Money = 0.0
    max_per_order: Money | None = None
    max_pct_of_notional: Annotated[float, Field(gt=0, le=100)] | None = None


class ExchangeFeeRule(Finite):
    """Per share by liquidity flag — remove: a TAKE match, add: a PASSIVE one; negative is a rebate."""

    remove_per_share: Annotated[float, Field(ge=-MAX_FEE_PER_SHARE, le=MAX_FEE_PER_SHARE)] = 0.0
    add_per_share: Annotated[float, Field(ge=-MAX_FEE_PER_SHARE, le=MAX_FEE_PER_SHARE)] = 0.0


class RegulatoryFeeRule(Finite):
    sec_fee_per_million: Annotated[float, Field(ge=0, le=10_000)] = 0.0  # $ per $1,000,000 sold
    taf_per_share: PerShare = 0.0  # $ per share sold
    taf_max_per_trade: Money | None = None


class CostSchedule(Finite):
    commission: CommissionRule = Field(default_factory=CommissionRule)
    exchange: ExchangeFeeRule = Field(default_factory=ExchangeFeeRule)
    clearing_per_share: PerShare = 0.0
    regulatory: RegulatoryFeeRule = Field(default_factory=RegulatoryFeeRule)
    broker_commission: BrokerCommission = BrokerCommission.ALL_IN


class FillCost(Finite):
    """What one fill cost, by part (account currency; a rebate makes `exchange` negative)."""

    commission: float = 0.0
    exchange: float = 0.0
    clearing: float = 0.0
    sec_fee: float = 0.0
    taf: float = 0.0
    total: float = 0.0
    source: CostSource = CostSource.SCHEDULE


class CostError(ValueError):
    """A fill the costs cannot be computed for (the book refuses such a fill before it gets here)."""


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _order_commission(shares: int, notional: Decimal, rule: CommissionRule) -> Decimal:
    """The commission of an order of `shares` for `notional`, rounded to the cent (0 for no shares)."""
    if shares == 0:
        return Decimal(0)
    raw = _dec(rule.per_share) * shares + _dec(rule.per_notional_bps) * notional / 10_000
    amount = max(raw, _dec(rule.min_per_order))
    caps = [_dec(rule.max_per_order)] if rule.max_per_order is not None else []
    if rule.max_pct_of_notional is not None:
        caps.append(_dec(rule.max_pct_of_notional) * notional / 100)
    if caps:
        amount = min(amount, *caps)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _check(quantity: int, price: float, before_shares: int, before_notional: float) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        raise CostError(f"fill quantity must be a whole number in 1..{MAX_QUANTITY:,}, got {quantity!r}")
    if not (isinstance(price, (int, float)) and math.isfinite(price) and 0 < price <= MAX_PRICE):
        raise CostError(f"fill price must be a finite number in (0, {MAX_PRICE:,.0f}], got {price!r}")
    if not 0 <= before_shares <= MAX_QUANTITY or not (math.isfinite(before_notional) and 0 <= before_notional <= MAX_PRICE * MAX_QUANTITY):
        raise CostError(f"the order's earlier fills ({before_shares!r} shares, {before_notional!r}) are out of range")


def cost_of_fill(
    quantity: int,
    price: float,
    side: Side,
    liquidity: Liquidity,
    schedule: CostSchedule,
    *,
    order_shares_before: int = 0,
    order_notional_before: float = 0.0,
    broker_commission: float | None = None,
) -> FillCost:
    """The cost of one fill of `quantity` at `price`; `order_*_before`: the same order's earlier fills
    (shares and notional), for the per-order minimum and caps. `broker_commission`: what the broker
    reported for this execution, which replaces the computed figure (see the module's docstring)."""
    _check(quantity, price, order_shares_before, order_notional_before)
    notional = _dec(price) * quantity
    commission = _order_commission(order_shares_before + quantity, _dec(order_notional_before) + notional, schedule.commission) - _order_commission(
        order_shares_before, _dec(order_notional_before), schedule.commission
    )
    per_share = schedule.exchange.add_per_share if liquidity is Liquidity.PASSIVE else schedule.exchange.remove_per_share
    exchange = (_dec(per_share) * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    clearing = (_dec(schedule.clearing_per_share) * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    sec_fee = taf = Decimal(0)
    if side is Side.SELL:
        reg = schedule.regulatory
        sec_fee = (notional * _dec(reg.sec_fee_per_million) / 1_000_000).quantize(CENT, rounding=ROUND_CEILING)
        taf = (_dec(reg.taf_per_share) * quantity).quantize(CENT, rounding=ROUND_CEILING)
        if reg.taf_max_per_trade is not None:
            taf = min(taf, _dec(reg.taf_max_per_trade))
    source = CostSource.SCHEDULE
    if broker_commission is not None:
        if not (
            isinstance(broker_commission, (int, float)) and math.isfinite(broker_commission) and abs(broker_commission) <= MAX_REPORTED_COMMISSION
        ):
            raise CostError(f"the broker's commission must be a finite amount within ±{MAX_REPORTED_COMMISSION:,.0f}, got {broker_commission!r}")
        source, commission = CostSource.BROKER, _dec(broker_commission)
        if schedule.broker_commission is BrokerCommission.ALL_IN:
            exchange = clearing = sec_fee = taf = Decimal(0)
    total = commission + exchange + clearing + sec_fee + taf
    return FillCost(
        commission=_money(commission),
        exchange=_money(exchange),
        clearing=_money(clearing),
        sec_fee=_money(sec_fee),
        taf=_money(taf),
        total=_money(total),
        source=source,
    )


def _money(amount: Decimal) -> float:
    return float(amount) + 0.0  # a rebate rounded to nothing is 0.0, not -0.0


# The simulated venue's execution id tag of an order's arrival (venues/sim/model.py `ARRIVAL`):
# its fills took the displayed touch; a cycle's fills of a resting limit were traded against.
ARRIVAL_TAG = "A"


def sim_liquidity(fill_id: str, *, market_order: bool, at_the_data: bool) -> Liquidity:
    """The liquidity flag of a simulated fill, as its match had it (venues/sim/exchange_step.py): with
    a market matched where the data is, a MARKET order and a limit's arrival TAKE, a resting limit's
    later fills are PASSIVE; the probability model's fills (no book) count as TAKE."""
    if not at_the_data or market_order:
        return Liquidity.TAKE
    return Liquidity.TAKE if fill_id.rsplit("/", 1)[-1] == ARRIVAL_TAG else Liquidity.PASSIVE
