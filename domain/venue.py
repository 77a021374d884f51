"""The simulated venue's deterministic fill model (DESIGN.md §3).

Each order draws from its own stream seeded by (global seed, intent_id) — per attempt, so a
retried attempt draws the same numbers and one order never changes another's fills. The
intent_id is taken relative to its account (`stream_key`), so the same scenario replayed on a
fresh account with the same seed fills identically.

- One attempt on arrival (right after the venue acknowledges), then one per risk cycle tick.
- Per attempt the order fills with the probability of the mode it was issued in
  (HARD 1.0, SOFT 0.9, otherwise 0.5 by default). A fill takes the whole remaining quantity,
  or — with `partial_fill_probability`, when fills are not certain and more than a lot
  remains — a random whole number of lots below it.
- A fill is at the limit price (LIMIT) or at the touch (MARKET: ask for buys, bid for sells).
- A cancel in flight may be crossed by a fill (`cancel_cross_probability`); the fill is applied.
- DAY orders still open at the close are canceled with reason EXPIRED_DAY.
- The venue refuses a LIMIT price more than `PRICE_COLLAR` away from the truth tick.
"""

from __future__ import annotations

import random

from pydantic import BaseModel

from domain.enums import OrderType, Side
from domain.models import Quote

PRICE_COLLAR = 0.10


class VenueParams(BaseModel):
    seed: int
    fill_probability: float
    partial_fill_probability: float
    cancel_cross_probability: float


def stream_key(intent_id: str, account: str) -> str:
    return intent_id.removeprefix(f"{account}-")


def stream(seed: int, intent_id: str, attempt: int) -> random.Random:
    # A str seed is hashed with SHA-512 by `random`: stable across processes and PYTHONHASHSEED.
    return random.Random(f"{seed}|{intent_id}|{attempt}")


def fill_quantity(params: VenueParams, intent_id: str, attempt: int, remaining: int, lot: int) -> int:
    rng = stream(params.seed, intent_id, attempt)
    if remaining <= 0 or rng.random() >= params.fill_probability:
        return 0
    certain = params.fill_probability >= 1.0
    if not certain and remaining > lot and rng.random() < params.partial_fill_probability:
        return rng.randint(1, remaining // lot - 1) * lot  # quantities are whole lots
    return remaining


def cancel_crossing_quantity(params: VenueParams, intent_id: str, attempt: int, remaining: int, lot: int) -> int:
    rng = stream(params.seed, intent_id, attempt)
    if remaining <= 0 or rng.random() >= params.cancel_cross_probability:
        return 0
    return remaining


def fill_price(order_type: OrderType, side: Side, limit_price: float | None, quote: Quote) -> float:
    if order_type is OrderType.LIMIT and limit_price is not None:
        return limit_price
    return quote.ask if side is Side.BUY else quote.bid


def collar_refusal(order_type: OrderType, limit_price: float | None, quote: Quote) -> str | None:
    if order_type is not OrderType.LIMIT or limit_price is None:
        return None
    if abs(limit_price - quote.truth_tick) > PRICE_COLLAR * quote.truth_tick:
        return f"limit {limit_price:.2f} is more than {PRICE_COLLAR:.0%} from the truth tick {quote.truth_tick:.2f}"
    return None


def fill_id(intent_id: str, attempt: int) -> str:
    return f"{intent_id}/F{attempt}"
