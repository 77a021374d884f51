"""The order transition table (DESIGN.md §3 Order lifecycle), held as data.

ACCEPTED → WORKING → (PARTIAL_FILL)* → FILLED / CANCELED / REJECTED. REJECTED comes straight
from pre-trade checks or the venue. Terminal states absorb every event. A cancel or a replace in
flight is a state of its own (FIX OrdStatus 6 and E): PENDING_CANCEL / PENDING_REPLACE, entered
on the request and left on the venue's answer — to CANCELED, to FILLED when a fill completes the
order first, or back where the order stood (`RESUME`: PARTIAL_FILL when it has fills, WORKING
when the venue acknowledged it, else ACCEPTED) when the request is refused. A pair that maps to
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
    CANCEL_REQUESTED = "CANCEL_REQUESTED"  # a cancel sent to the venue, its answer awaited
    REPLACE_REQUESTED = "REPLACE_REQUESTED"  # a replace under way: checks, then the original's cancel
    CANCEL_REJECTED = "CANCEL_REJECTED"  # the venue refused the cancel: the order works on


class Resume(str, Enum):
    """A table cell that sends the order back where it stood before a refused request."""

    RESUME = "RESUME"


RESUME = Resume.RESUME
A, W, P = OrderState.ACCEPTED, OrderState.WORKING, OrderState.PARTIAL_FILL
PC, PR = OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE
F, C, R = OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED
E = OrderEvent
Cell = OrderState | Resume | None

#       PRETRADE_REJ VENUE_ACK VENUE_REJ PARTIAL COMPLETE CANCEL  EXPIRED REDUCED REPLACE_REF CANCEL_REF CANCEL_REQ REPLACE_REQ CANCEL_REJ
_ROWS: dict[OrderState, tuple[Cell, ...]] = {
    A: (R, W, R, None, None, C, C, None, None, A, PC, None, None),
    W: (None, None, None, P, F, C, C, None, W, W, PC, PR, None),
    P: (None, None, None, P, F, C, C, F, P, P, PC, PR, None),
    PC: (None, PC, R, PC, F, C, C, None, None, RESUME, PC, None, RESUME),
    PR: (None, None, None, PR, F, C, C, F, RESUME, RESUME, None, None, RESUME),
    F: (F, F, F, F, F, F, F, F, F, F, F, F, F),
    C: (C, C, C, C, C, C, C, C, C, C, C, C, C),
    R: (R, R, R, R, R, R, R, R, R, R, R, R, R),
}

TRANSITIONS: dict[tuple[OrderState, OrderEvent], Cell] = {
    (state, event): target for state, row in _ROWS.items() for event, target in zip(OrderEvent, row, strict=True)
}


class IllegalTransition(ValueError):
    pass


def transition(state: OrderState, event: OrderEvent, *, filled: int = 0, acknowledged: bool = True) -> OrderState:
    """The state after `event`; a refused request resumes PARTIAL_FILL (fills), WORKING
    (acknowledged by the venue) or ACCEPTED."""
    target = TRANSITIONS[(state, event)]
    if target is None:
        raise IllegalTransition(f"{event.value} is not allowed in {state.value}")
    if target is RESUME:
        return P if filled > 0 else W if acknowledged else A
    assert isinstance(target, OrderState)
    return target


def fill_event(filled_after: int, quantity: int) -> OrderEvent:
    return OrderEvent.COMPLETE_FILL if filled_after >= quantity else OrderEvent.PARTIAL_FILL
