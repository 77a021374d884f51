"""Gross exposure, current and potential, per bucket and group (DESIGN.md §3 Exposure).

Potential is the per-(symbol, bucket) worst case if open orders fill: with position q, open buy
remaining B and open sell remaining S it is max(|q + B|, |q − S|) × mark — not "everything fills".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel

from domain.enums import Bucket, Side
from domain.models import OpenOrder, Position
from domain.rules import RigConfig


class BucketExposure(BaseModel):
    current: float
    current_pct: float
    potential: float
    potential_pct: float
    target: float
    target_pct: float
    max: float
    max_pct: float


class GroupExposure(BaseModel):
    current: float
    current_pct: float
    potential: float
    potential_pct: float


class OpenOrdersPotential(BaseModel):
    amount: float
    pct: float
    open_order_count: int


class Exposure(BaseModel):
    equity: float
    long: float
    short: float
    gross: float
    potential: float
    gross_exposure_pct: float
    long_gross_pct: float
    short_gross_pct: float
    potential_exposure_pct: float
    buckets: dict[Bucket, BucketExposure]
    group_exposure: dict[str, GroupExposure]
    open_orders_potential: OpenOrdersPotential


def worst_case_quantity(quantity: int, open_buy: int, open_sell: int) -> int:
    return max(abs(quantity + open_buy), abs(quantity - open_sell))


def _books_by_side_and_bucket(open_orders: Iterable[OpenOrder]) -> dict[tuple[Side, Bucket], dict[str, int]]:
    """(side, bucket) → symbol → open remaining.

    Hot path (50,000 orders in the benchmark): fields are read from the model's `__dict__`,
    which pydantic keeps as the field store, at a fraction of attribute-access cost.
    """
    books: dict[tuple[Side, Bucket], dict[str, int]] = {(side, b): {} for side in Side for b in Bucket}
    for order in open_orders:
        fields = order.__dict__
        book = books[fields["side"], fields["bucket"]]
        symbol = fields["symbol"]
        book[symbol] = book.get(symbol, 0) + fields["remaining"]
    return books


def compute_exposure(
    equity: float,
    positions: Iterable[Position],
    open_orders: Iterable[OpenOrder],
    marks: Mapping[str, float],
    config: RigConfig,
    open_order_count: int | None = None,
) -> Exposure:
    """`open_orders` may be summed footprints (the ledger's); then `open_order_count` says how many
    orders they stand for."""
    if equity <= 0:
        raise ValueError(f"equity must be > 0, got {equity}")
    orders = open_orders if isinstance(open_orders, list) else list(open_orders)
    books = _books_by_side_and_bucket(orders)
    group_of = config.universe.group_of
    quantities: dict[Bucket, dict[str, int]] = {bucket: {} for bucket in Bucket}
    for pos in positions:
        fields = pos.__dict__
        book = quantities[fields["bucket"]]
        book[fields["symbol"]] = book.get(fields["symbol"], 0) + fields["quantity"]

    long = short = potential = 0.0
    bucket_current = {bucket: 0.0 for bucket in Bucket}
    bucket_potential = {bucket: 0.0 for bucket in Bucket}
    group_current = {group: 0.0 for group in config.universe.groups}
    group_potential = {group: 0.0 for group in config.universe.groups}
    for bucket in Bucket:
        held, buys, sells = quantities[bucket], books[Side.BUY, bucket], books[Side.SELL, bucket]
        # Symbols in first-seen order (positions, then orders): deterministic, no set iteration.
        symbols = dict.fromkeys(held)
        symbols.update(dict.fromkeys(buys))
        symbols.update(dict.fromkeys(sells))
        current_sum = potential_sum = 0.0
        for symbol in symbols:
            mark = marks[symbol]
            qty = held.get(symbol, 0)
            notional = qty * mark
            if notional >= 0:
                long += notional
                current = notional
            else:
                short -= notional
                current = -notional
            worst = max(abs(qty + buys.get(symbol, 0)), abs(qty - sells.get(symbol, 0))) * mark
            current_sum += current
            potential_sum += worst
            group = group_of[symbol]
            group_current[group] += current
            group_potential[group] += worst
        bucket_current[bucket] = current_sum
        bucket_potential[bucket] = potential_sum
        potential += potential_sum

    def pct(amount: float) -> float:
        return amount / equity * 100.0

    rules = config.rules
    buckets = {
        bucket: BucketExposure(
            current=bucket_current[bucket],
            current_pct=pct(bucket_current[bucket]),
            potential=bucket_potential[bucket],
            potential_pct=pct(bucket_potential[bucket]),
            target=rules.buckets[bucket].target_pct / 100.0 * equity,
            target_pct=rules.buckets[bucket].target_pct,
            max=rules.buckets[bucket].max_pct / 100.0 * equity,
            max_pct=rules.buckets[bucket].max_pct,
        )
        for bucket in Bucket
    }
    groups = {
        group: GroupExposure(
            current=group_current[group],
            current_pct=pct(group_current[group]),
            potential=group_potential[group],
            potential_pct=pct(group_potential[group]),
        )
        for group in config.universe.groups
    }
    gross = long + short
    return Exposure(
        equity=equity,
        long=long,
        short=short,
        gross=gross,
        potential=potential,
        gross_exposure_pct=pct(gross),
        long_gross_pct=pct(long),
        short_gross_pct=pct(short),
        potential_exposure_pct=pct(potential),
        buckets=buckets,
        group_exposure=groups,
        open_orders_potential=OpenOrdersPotential(
            amount=potential - gross, pct=pct(potential - gross), open_order_count=len(orders) if open_order_count is None else open_order_count
        ),
    )
