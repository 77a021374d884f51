"""The order transition table (DESIGN.md §3 Order lifecycle), held as data.

ACCEPTED → WORKING → (PARTIAL_FILL)* → FILLED / CANCELED / REJECTED. REJECTED comes straight
from pre-trade checks or the venue. Terminal states absorb every event. A pair that maps to
None is illegal: the order workflow never issues it, and `transition` refuses it.
"""

from __future__ import annotations

from enum import Enum

from domain.enums import OrderState


class OrderEvent(str, Enum):
    PRETRADE_REJECTED = "PRETRADE_REJECTED"
    VENUE_ACKED = "VENUE_ACKED"
    VENUE_REJECTED = "VENUE_REJECTED"
    PARTIAL_FILL = "PARTIAL_FILL"
    COMPLETE_FILL = "COMPLETE_FILL"
    CANCEL_ACKED = "CANCEL_ACKED"
    EXPIRED = "EXPIRED"
    # A replace to a quantity at or below what already filled: the order is done, FILLED.
    REDUCED_TO_FILLED = "REDUCED_TO_FILLED"
    # Refusals that leave the order as it was (FIX OrderCancelReject): a replace whose
    # replacement failed its checks, a cancel that came too late or could not be applied.
    REPLACE_REFUSED = "REPLACE_REFUSED"
    CANCEL_REFUSED = "CANCEL_REFUSED"


A, W, P = OrderState.ACCEPTED, OrderState.WORKING, OrderState.PARTIAL_FILL
F, C, R = OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED
E = OrderEvent

#      PRETRADE_REJ VENUE_ACK VENUE_REJ PARTIAL COMPLETE CANCEL EXPIRED REDUCED_TO_FILLED REPLACE_REF CANCEL_REF
_ROWS: dict[OrderState, tuple[OrderState | None, ...]] = {
    A: (R, W, R, None, None, C, C, None, None, A),
    W: (None, None, None, P, F, C, C, None, W, W),
    P: (None, None, None, P, F, C, C, F, P, P),
    F: (F, F, F, F, F, F, F, F, F, F),
    C: (C, C, C, C, C, C, C, C, C, C),
    R: (R, R, R, R, R, R, R, R, R, R),
}

TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState | None] = {
    (state, event): target for state, row in _ROWS.items() for event, target in zip(OrderEvent, row, strict=True)
}


class IllegalTransition(ValueError):
    pass


def transition(state: OrderState, event: OrderEvent) -> OrderState:
    target = TRANSITIONS[(state, event)]
    if target is None:
        raise IllegalTransition(f"{event.value} is not allowed in {state.value}")
    return target


def fill_event(filled_after: int, quantity: int) -> OrderEvent:
    return OrderEvent.COMPLETE_FILL if filled_after >= quantity else OrderEvent.PARTIAL_FILL
