"""The simulated venue as activities (run as local activities: quick, deterministic, no I/O).

They are pure functions of their input, so a retried attempt returns the same answer and the
order workflow applies each fill id once: retries cannot double-fill.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from domain.models import Fill, Intent, Quote
from domain.venue import (
    VenueParams,
    cancel_crossing_quantity,
    collar_refusal,
    fill_id,
    fill_price,
    fill_quantity,
    stream_key,
)


class VenueOrder(BaseModel):
    intent: Intent
    attempt: int
    remaining: int
    lot_size: int
    params: VenueParams
    quote: Quote

    @property
    def stream_key(self) -> str:
        return stream_key(self.intent.intent_id, self.intent.account)


class AckResult(BaseModel):
    acknowledged: bool
    message: str


class AttemptResult(BaseModel):
    fill: Fill | None = None


def _fill(order: VenueOrder, quantity: int) -> Fill | None:
    if quantity <= 0:
        return None
    intent = order.intent
    return Fill(
        fill_id=fill_id(intent.intent_id, order.attempt),
        intent_id=intent.intent_id,
        symbol=intent.symbol,
        bucket=intent.bucket,
        side=intent.side,
        quantity=quantity,
        price=fill_price(intent.order_type, intent.side, intent.limit_price, order.quote),
    )


@activity.defn
async def venue_acknowledge(order: VenueOrder) -> AckResult:
    refusal = collar_refusal(order.intent.order_type, order.intent.limit_price, order.quote)
    if refusal:
        return AckResult(acknowledged=False, message=refusal)
    return AckResult(acknowledged=True, message="acknowledged")


@activity.defn
async def venue_attempt(order: VenueOrder) -> AttemptResult:
    qty = fill_quantity(order.params, order.stream_key, order.attempt, order.remaining, order.lot_size)
    return AttemptResult(fill=_fill(order, qty))


@activity.defn
async def venue_cancel(order: VenueOrder) -> AttemptResult:
    """Cancel at the venue; a fill may cross it (returned, to be applied before the cancel)."""
    qty = cancel_crossing_quantity(order.params, order.stream_key, order.attempt, order.remaining, order.lot_size)
    return AttemptResult(fill=_fill(order, qty))


VENUE_ACTIVITIES = [venue_acknowledge, venue_attempt, venue_cancel]
