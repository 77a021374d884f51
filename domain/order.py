"""An order's lifecycle facts, and the one fold of a venue's execution events into them. Pure.

`OrderCore` is what an order is: its intent, state, fills and why it ended. The order workflow's
state extends it (protocol/order_record.py); the account's simulated exchange folds an arrival
into a fresh one (the account books the arrival without waiting for the order). What an order
tells its account (`OrderReport`) and what the account keeps of a closed order (`OrderOutcome`)
are views of the same shape, `OrderStatus`.

The fold applies each execution once: a fill by its execution id (the simulated venue's fills
are capped at what the order still needs, a broker's are the truth), a correction replacing the
fill it corrects, the venue's acknowledgement, refusal, cancel, expiry or its having no record of
the order (LOST, never a silent cancel). Each state change comes back as a `Step`, for the
order's history, search attributes and metrics.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from domain.base import Record
from domain.enums import CancelReason, IntentKind, OrderState, RejectReason
from domain.execution import ExecKind, ExecutionEvent
from domain.lifecycle import OrderEvent, fill_event, transition
from domain.models import Fill, Intent


class OrderStatus(Record):
    """The shape every view of an order shares."""

    intent_id: str
    state: OrderState
    quantity: int
    filled_quantity: int
    reject_reason: RejectReason | None = None
    reject_message: str | None = None
    cancel_reason: CancelReason | None = None
    replaced_by: str | None = None
    lost_cause: str | None = None  # the order went away or silent and was reconciled, or the venue has no record of it

    @property
    def label(self) -> str:
        return "LOST" if self.lost_cause else self.state.value


class OrderReport(OrderStatus):
    """An order's state as it tells the account (or as reconciliation reads it)."""

    fills: list[Fill] = Field(default_factory=list)
    released: str | None = None  # a replacement the account reserved that will not be placed (the replace was refused)


class OrderOutcome(OrderStatus):
    """A closed order as the account keeps it."""

    kind: IntentKind


# Events that say the venue has the order (a refused request then resumes WORKING, not ACCEPTED).
_KNOWN_AT_THE_VENUE = (
    ExecKind.ACCEPTED, ExecKind.FILL, ExecKind.CORRECTION, ExecKind.CANCEL_PENDING, ExecKind.CANCEL_REJECTED, ExecKind.CANCELED, ExecKind.EXPIRED,
)  # fmt: skip


class Step(NamedTuple):
    """One thing the fold did: a history line, and whether the state changed (and to what)."""

    line: str
    state: OrderState
    changed: bool
    fill: Fill | None = None


class Folded(NamedTuple):
    steps: list[Step]
    deferred_unknown: ExecutionEvent | None  # an UNKNOWN_ORDER heard while the submit is on its way


class OrderCore(BaseModel):
    model_config = ConfigDict(extra="ignore")

    intent_id: str
    state: OrderState = OrderState.ACCEPTED
    intent: Intent | None = None
    fills: list[Fill] = []
    acknowledged: bool = False  # the venue's first word came (a refused request resumes WORKING, not ACCEPTED)
    reject_reason: RejectReason | None = None
    reject_message: str | None = None
    cancel_reason: CancelReason | None = None
    replaced_by: str | None = None
    lost_cause: str | None = None

    # ── views ────────────────────────────────────────────────────────────────────────────────
    def effective_fills(self) -> list[Fill]:
        """The fills that stand: a corrected fill is replaced by its correction."""
        corrected = {f.corrects for f in self.fills if f.corrects}
        return [f for f in self.fills if f.fill_id not in corrected]

    @property
    def filled(self) -> int:
        return sum(f.quantity for f in self.effective_fills())

    @property
    def quantity(self) -> int:
        return self.intent.quantity if self.intent else 0

    def report(self, released: str | None = None) -> OrderReport:
        return OrderReport(
            intent_id=self.intent_id,
            state=self.state,
            quantity=self.quantity,
            filled_quantity=self.filled,
            fills=list(self.fills),
            reject_reason=self.reject_reason,
            reject_message=self.reject_message,
            cancel_reason=self.cancel_reason,
            replaced_by=self.replaced_by,
            lost_cause=self.lost_cause,
            released=released,
        )

    # ── changes ──────────────────────────────────────────────────────────────────────────────
    def apply(self, event: OrderEvent, note: str, label: str | None = None) -> Step:
        """A transition of the lifecycle table (domain/lifecycle.py)."""
        state = transition(self.state, event, filled=self.filled, acknowledged=self.acknowledged)
        return self.set_state(state, label or event.value, note)

    def set_state(self, state: OrderState, label: str, note: str) -> Step:
        changed = state is not self.state
        self.state = state
        return Step(f"{label} → {state.value}: {note}", state, changed)

    def reject(self, reason: RejectReason, message: str, event: OrderEvent = OrderEvent.PRETRADE_REJECTED) -> Step:
        self.reject_reason, self.reject_message = reason, message[:500]
        return self.apply(event, f"{reason.value}: {message[:500]}")

    def record_fill(self, fill: Fill) -> bool:
        if any(f.fill_id == fill.fill_id for f in self.fills):
            return False
        self.fills.append(fill)
        return True

    def fold(self, events: list[ExecutionEvent], *, cap_at_quantity: bool, submitting: bool = False) -> Folded:
        """Apply a venue's events for this order, in order (events of other orders are ignored)."""
        mine = [e for e in events if e.intent_id == self.intent_id]
        steps: list[Step] = []
        deferred: ExecutionEvent | None = None
        for n, event in enumerate(mine):
            if event.kind in (ExecKind.FILL, ExecKind.CORRECTION):
                steps += self._fill(event, cap_at_quantity)
            elif event.kind is ExecKind.ACCEPTED and self.state in (OrderState.ACCEPTED, OrderState.PENDING_CANCEL):
                self.acknowledged = True
                steps.append(self.apply(OrderEvent.VENUE_ACKED, "acknowledged by the venue"))
            elif event.kind is ExecKind.REJECTED and self.state in (OrderState.ACCEPTED, OrderState.PENDING_CANCEL):
                steps.append(self.reject(RejectReason.VENUE_REJECT, event.text or "refused by the venue", OrderEvent.VENUE_REJECTED))
            elif event.kind is ExecKind.UNKNOWN_ORDER and self.state.is_open and submitting:
                deferred = event  # judged when the submit answers: the venue may not know yet what it is placing
            elif event.kind is ExecKind.UNKNOWN_ORDER and self.state.is_open and _final_unknown(mine[n + 1 :]):
                # Never a silent cancel: the order ends as it stands, LOST with the cause, and the
                # account records it LOST (releasing its potential) through the reconciliation path.
                self.lost_cause = f"the venue has no record of this order: {event.text or 'unknown order'}"
                steps.append(Step(f"UNKNOWN_ORDER → LOST: {self.lost_cause}", self.state, False))
            elif event.kind is ExecKind.CANCEL_REJECTED and self.state is OrderState.PENDING_CANCEL:
                self.cancel_reason = None
                steps.append(self.apply(OrderEvent.CANCEL_REJECTED, event.text or "the venue refused the cancel"))
            elif event.kind in (ExecKind.CANCELED, ExecKind.EXPIRED) and self.state.is_open:
                if self.cancel_reason is None:
                    self.cancel_reason = CancelReason.EXPIRED_DAY if event.kind is ExecKind.EXPIRED else CancelReason.USER
                ended = OrderEvent.EXPIRED if event.kind is ExecKind.EXPIRED else OrderEvent.CANCEL_ACKED
                steps.append(self.apply(ended, event.text or event.kind.value))
            if event.kind in _KNOWN_AT_THE_VENUE:
                self.acknowledged = True
        return Folded(steps, deferred)

    def _fill(self, event: ExecutionEvent, cap_at_quantity: bool) -> list[Step]:
        intent = self.intent
        if intent is None or event.exec_id is None or event.last_px is None or any(f.fill_id == event.exec_id for f in self.fills):
            return []
        corrects = event.corrects if event.kind is ExecKind.CORRECTION else None
        if corrects is not None and not any(f.fill_id == corrects for f in self.fills):
            return []  # a correction of a fill this order never had: nothing to correct
        quantity = event.last_qty
        if cap_at_quantity and corrects is None:
            # Two simulated steps (the cycle's match, a cancel's crossing fill) may race for the
            # same remainder; the order is the arbiter. A broker's fills are truth and are kept.
            quantity = min(quantity, intent.quantity - self.filled)
        if quantity <= 0:
            return []
        fill = Fill(
            fill_id=event.exec_id,
            intent_id=self.intent_id,
            symbol=intent.symbol,
            bucket=intent.bucket,
            side=intent.side,
            quantity=quantity,
            price=event.last_px,
            commission=event.commission,
            corrects=corrects,
        )
        self.fills.append(fill)
        label = f"correction of {corrects}: " if corrects else ""
        note = f"{label}fill {quantity} @ {fill.price:.2f} ({fill.fill_id})"
        if not self.state.is_open:
            return [Step(f"FILL after {self.state.value}: {note}", self.state, False, fill)]
        step = self.apply(fill_event(self.filled, intent.quantity), note)
        return [step._replace(fill=fill)]


def _final_unknown(later: list[ExecutionEvent]) -> bool:
    """An UNKNOWN_ORDER is final only when nothing after it says otherwise (a retried submit
    answers [UNKNOWN_ORDER, ACCEPTED] after placing it)."""
    return all(e.kind is ExecKind.UNKNOWN_ORDER for e in later)


def arrival(intent: Intent, events: list[ExecutionEvent]) -> OrderReport:
    """The order as an arrival's events leave it: the account books the simulated exchange's
    arrival with the verdict; the order reaches the same state from the same events."""
    core = OrderCore(intent_id=intent.intent_id, intent=intent)
    core.fold(events, cap_at_quantity=True)
    return core.report()
