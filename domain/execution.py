"""The venue seam's vocabulary: normalized execution events (FIX ExecutionReport-like).

Every venue — the rig's simulated one, a broker gateway (Interactive Brokers) — reports what
happens to an order as these events; the order workflow consumes nothing else. Fills are the
truth: each carries the venue's execution id, and every consumer applies an exec id once.
Status-like events (ACCEPTED, CANCEL_PENDING…) are advisory until reconciled with fills.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field

from domain.base import Frozen


class ExecKind(str, Enum):
    ACCEPTED = "ACCEPTED"  # the venue acknowledged the order (FIX ExecType New)
    REJECTED = "REJECTED"  # the venue refused it
    CANCEL_PENDING = "CANCEL_PENDING"  # a cancel is on its way; fills may still arrive
    CANCELED = "CANCELED"  # the venue confirmed the cancel
    FILL = "FILL"  # partial or complete: cum_qty / leaves_qty tell which
    EXPIRED = "EXPIRED"  # time in force ran out (DAY at the close)
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # the venue has no record of the order (reconciliation)
    CANCEL_REJECTED = "CANCEL_REJECTED"  # the venue refused a cancel (FIX OrderCancelReject); the order works on
    CORRECTION = "CORRECTION"  # an execution corrected: `corrects` names the exec id it replaces (FIX ExecType Correct)


class ExecutionEvent(Frozen):
    intent_id: str  # the rig's id, carried to the venue (IBKR: orderRef)
    kind: ExecKind
    venue_order_id: str | None = None  # the venue's durable id (IBKR: permId, never the reusable orderId)
    exec_id: str | None = None  # FILL only: unique per execution; fills are deduplicated by it
    last_qty: int = 0  # FILL only: shares in this execution
    last_px: float | None = None  # FILL only
    cum_qty: int = 0  # total filled so far, as the venue reports it
    leaves_qty: int = 0  # still working at the venue
    text: str = ""  # the venue's words: a reject reason, an informational message
    venue_time: str | None = None  # ISO timestamp from the venue, when it gives one
    # FILL / CORRECTION: the venue's commission for this execution (account currency), when it
    # reports one (IB's commissionReport); None when the venue says nothing (the simulated venue).
    commission: float | None = Field(default=None, ge=-1_000_000.0, le=1_000_000.0, allow_inf_nan=False)
    corrects: str | None = None  # CORRECTION only: the exec id whose shares / price this one replaces


class VenueOrderStatus(BaseModel):
    """What the venue knows of one order (reconciliation after a restart or a silence)."""

    intent_id: str
    known: bool
    venue_order_id: str | None = None
    last_kind: ExecKind | None = None
    cum_qty: int = 0
    leaves_qty: int = 0
    executions: list[ExecutionEvent] = []
