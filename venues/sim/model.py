"""The simulated venue's deterministic fill model (DESIGN.md §3), as execution events.

Each order draws from its own stream seeded by (global seed, intent id, event tag), so one order
never changes another's fills and a retried call draws the same numbers. The intent id is taken
relative to its account (`stream_key`), so a scenario replayed on a fresh account with the same
seed fills identically. Tags: `A` the arrival, `C<cycle>` the risk cycle's matching step, `X` a
cancel in flight. The venue's execution id of a fill is `<intent_id>/<tag>`.

- Arrival: the venue acknowledges (or refuses a LIMIT more than `PRICE_COLLAR` from the truth
  tick) and makes one matching attempt; then one attempt per risk cycle while the order works.
- Per attempt the order fills with the probability of the mode it was issued in (HARD 1.0,
  SOFT 0.9, otherwise 0.5 by default). A fill takes the whole remaining quantity or — with
  `partial_fill_probability`, when fills are not certain and more than a lot remains — a random
  whole number of lots below it. Fills are at the limit (LIMIT) or at the touch (MARKET).
- A cancel in flight may be crossed by a fill of the remainder (`cancel_cross_probability`).
- DAY orders still open at the close expire.
- With market data (an account that names a market), the market replaces the probabilities:
  marketable limits take the touch up to the displayed size, passive ones fill only when later
  prints trade at or through them. The venue's collar then holds a limit to the view's fresh
  reference (`MarketView.collar_reference`) and does not apply without one (the account's own
  price-collar control is the one that fails closed). Matching where the data is — arrival
  against the L1 as of the arrival, queue ahead, prints after the arrival — is
  `venues/sim/exchange_step.py` over `domain/matching.py`, built from these events
  (`fill_event`…). `_attempt_on_market` remains for an order's own replacement arrival (it
  takes the touch of the view its approval carried) and for runs recorded before the exchange
  step, which replay on it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from domain.enums import OrderType, Side
from domain.execution import ExecKind, ExecutionEvent
from domain.marketdata import MarketDataRule, MarketView, Print
from domain.matching import match_order
from domain.models import Intent, Quote

PRICE_COLLAR = 0.10
ARRIVAL = "A"
CANCEL = "X"


def cycle_tag(cycle: int) -> str:
    return f"C{cycle}"


class VenueParams(BaseModel):
    seed: int
    fill_probability: float
    partial_fill_probability: float
    cancel_cross_probability: float


class SimOrder(BaseModel):
    """What the simulated venue knows of one order when it acts on it."""

    intent: Intent
    cum_qty: int
    lot_size: int
    params: VenueParams
    quote: Quote
    # With market data: the symbol's view now (the venue matches against its L1 and prints).
    market: MarketView | None = None
    market_rule: MarketDataRule | None = None
    # The (symbol, bucket) position when the order arrives: a reduce-only order's fills stop at zero.
    position: int | None = None

    @property
    def leaves(self) -> int:
        return max(0, self.intent.quantity - self.cum_qty)

    @property
    def stream_key(self) -> str:
        return stream_key(self.intent.intent_id, self.intent.account)


def stream_key(intent_id: str, account: str) -> str:
    return intent_id.removeprefix(f"{account}-")


def stream(seed: int, key: str, tag: str) -> random.Random:
    # A str seed is hashed with SHA-512 by `random`: stable across processes and PYTHONHASHSEED.
    return random.Random(f"{seed}|{key}|{tag}")


def exec_id(intent_id: str, tag: str) -> str:
    return f"{intent_id}/{tag}"


def fill_quantity(params: VenueParams, key: str, tag: str, remaining: int, lot: int) -> int:
    rng = stream(params.seed, key, tag)
    if remaining <= 0 or rng.random() >= params.fill_probability:
        return 0
    certain = params.fill_probability >= 1.0
    if not certain and remaining > lot and rng.random() < params.partial_fill_probability:
        return rng.randint(1, remaining // lot - 1) * lot  # quantities are whole lots
    return remaining


def cancel_crossing_quantity(params: VenueParams, key: str, remaining: int) -> int:
    rng = stream(params.seed, key, CANCEL)
    if remaining <= 0 or rng.random() >= params.cancel_cross_probability:
        return 0
    return remaining


def fill_price(order_type: OrderType, side: Side, limit_price: float | None, quote: Quote) -> float:
    if order_type is OrderType.LIMIT and limit_price is not None:
        return limit_price
    return quote.ask if side is Side.BUY else quote.bid


def collar_refusal(order_type: OrderType, limit_price: float | None, quote: Quote, reference: float | None = None) -> str | None:
    """The venue's fat-finger collar around `reference` (default: the quote's truth tick)."""
    if order_type is not OrderType.LIMIT or limit_price is None:
        return None
    ref = quote.truth_tick if reference is None else reference
    if abs(limit_price - ref) > PRICE_COLLAR * ref:
        return f"limit {limit_price:.2f} is more than {PRICE_COLLAR:.0%} from the reference price {ref:.2f}"
    return None


def venue_collar(order: SimOrder, market: MarketView | None = None) -> str | None:
    """The venue's collar for this order: with market data around the view's fresh reference
    (no fresh reference: not applied), else around the quote's truth tick."""
    view = market or order.market
    if view is not None:
        if view.collar_reference is None:
            return None
        return collar_refusal(order.intent.order_type, order.intent.limit_price, order.quote, view.collar_reference)
    return collar_refusal(order.intent.order_type, order.intent.limit_price, order.quote)


def ack_event(order: SimOrder) -> ExecutionEvent:
    return _event(order, ExecKind.ACCEPTED, order.cum_qty, text="acknowledged")


def reject_event(order: SimOrder, text: str) -> ExecutionEvent:
    return _event(order, ExecKind.REJECTED, 0, text=text)


def fill_event(order: SimOrder, tag: str, cum_qty: int, quantity: int, price: float, text: str = "") -> ExecutionEvent:
    """A fill of `quantity` at `price`, `cum_qty` filled in all after it (exec id `<intent>/<tag>`)."""
    event = _event(order, ExecKind.FILL, cum_qty, tag=tag, qty=quantity)
    return event.model_copy(update={"last_px": price, "text": text})


def _event(order: SimOrder, kind: ExecKind, cum: int, *, tag: str | None = None, qty: int = 0, text: str = "") -> ExecutionEvent:
    intent = order.intent
    return ExecutionEvent(
        intent_id=intent.intent_id,
        kind=kind,
        venue_order_id=f"SIM-{intent.intent_id}",
        exec_id=exec_id(intent.intent_id, tag) if tag else None,
        last_qty=qty,
        last_px=fill_price(intent.order_type, intent.side, intent.limit_price, order.quote) if qty else None,
        cum_qty=cum,
        leaves_qty=max(0, intent.quantity - cum) if kind not in (ExecKind.CANCELED, ExecKind.EXPIRED, ExecKind.REJECTED) else 0,
        text=text,
    )


def _attempt(order: SimOrder, tag: str, prints: Sequence[Print] = (), since: datetime | None = None) -> list[ExecutionEvent]:
    if order.market is not None:
        return _attempt_on_market(order, tag, prints, since or order.market.as_of)
    qty = fill_quantity(order.params, order.stream_key, tag, order.leaves, order.lot_size)
    return [_event(order, ExecKind.FILL, order.cum_qty + qty, tag=tag, qty=qty)] if qty else []


def _attempt_on_market(order: SimOrder, tag: str, prints: Sequence[Print], since: datetime) -> list[ExecutionEvent]:
    """With market data the market decides (domain/marketdata.py): a marketable limit takes the
    touch up to the displayed size, a passive one fills only when later prints trade through it
    (queue position drawn from the order's own stream)."""
    assert order.market is not None
    intent = order.intent
    limit = intent.limit_price if intent.order_type is OrderType.LIMIT else None
    found = match_order(
        intent.side,
        limit,
        order.leaves,
        order.lot_size,
        order.market.l1,
        prints,
        since,
        stream(order.params.seed, order.stream_key, tag),
        order.market_rule or MarketDataRule(),
    )
    if not found.quantity or found.price is None:
        return []
    return [fill_event(order, tag, order.cum_qty + found.quantity, found.quantity, found.price, found.detail)]


def submit(order: SimOrder) -> list[ExecutionEvent]:
    """Acknowledge (or refuse) and make the arrival attempt."""
    refusal = venue_collar(order)
    if refusal:
        return [reject_event(order, refusal)]
    arrival = _attempt(order, ARRIVAL)
    if order.position is not None:
        arrival = within_position(arrival, order.intent, order.position)
    return [ack_event(order), *arrival]


def within_position(events: list[ExecutionEvent], intent: Intent, position: int) -> list[ExecutionEvent]:
    """A reduce-only order's fills never take its position past zero (FIX ExecInst E, enforced
    where the venue matches): pre-trade admits it against the position, but other orders on the
    same side may shrink the position before it fills. A fill is cut to what is left, or dropped."""
    if not intent.reduce_only:
        return events
    room = max(0, position if intent.side is Side.SELL else -position)
    kept = []
    for event in events:
        if event.kind is ExecKind.FILL:
            quantity = min(event.last_qty, room)
            if quantity <= 0:
                continue
            cut = event.last_qty - quantity
            if cut:
                event = event.model_copy(
                    update={
                        "last_qty": quantity,
                        "cum_qty": event.cum_qty - cut,
                        "leaves_qty": event.leaves_qty + cut,
                        "text": f"reduce-only: cut by {cut} to the position left",
                    }
                )
            room -= quantity
        kept.append(event)
    return kept


def match(order: SimOrder, cycle: int, session_closed: bool, prints: Sequence[Print] = (), since: datetime | None = None) -> list[ExecutionEvent]:
    """The risk cycle's step for one working order: expiry at the close, else one attempt
    (with market data: against the prints since the last cycle)."""
    if session_closed:
        return [_event(order, ExecKind.EXPIRED, order.cum_qty, text="DAY order expired at the close")]
    return _attempt(order, cycle_tag(cycle), prints, since)


def cancel(order: SimOrder) -> list[ExecutionEvent]:
    """The cancel; a fill of the remainder may cross it (then the order is FILLED, not canceled)."""
    crossing = cancel_crossing_quantity(order.params, order.stream_key, order.leaves)
    if crossing:
        return [_event(order, ExecKind.FILL, order.cum_qty + crossing, tag=CANCEL, qty=crossing)]
    return [_event(order, ExecKind.CANCELED, order.cum_qty, text="canceled")]
