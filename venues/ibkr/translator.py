"""IB callbacks → the venue seam's ExecutionEvents, keyed by the rig's intent id.

Pure bookkeeping: no I/O, no clock, no ib_async connection. The gateway feeds it what TWS says
(through ib_async's Wrapper) and ships the events it returns.

* An order is the intent id it carries in `orderRef`; IB's durable id is `permId` (the
  `venue_order_id` of every event). The reusable, per-client `orderId` only routes callbacks that
  carry nothing else (orderStatus before the permId is known, error) — and never to an order
  whose permId differs.
* Fills are the truth. Each execution is applied once, in arrival order, deduplicated by execId;
  `cum_qty` is the sum of applied executions and never goes back, whatever a status callback
  reports. IB publishes a correction of an execution as another execDetails whose execId
  differs only after the last period (`….01` → `….02`), "all parameters identical" (TWS API
  docs): the rig applies the first version of an execution and records later versions as notes
  without applying them; a correction that does change shares or price is logged as an error
  (the event vocabulary has no trade-correct/bust) and is left for a human.
* Status callbacks are advisory (see codes.py): ACCEPTED once, CANCEL_PENDING once, terminal
  CANCELED/REJECTED held back until the executions account for the reported filled quantity,
  never after the order is terminal, never taking cum_qty back. An execution that arrives before
  any status makes the order ACCEPTED first (an ACCEPTED event precedes the first FILL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from ib_async import CommissionReport, Execution, Order, OrderState, OrderStatus
from pydantic import BaseModel, ConfigDict

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from venues.ibkr.codes import DUPLICATE_ORDER_ID, LOCATE_MARKER, ErrorEffect, StatusEffect, error_effect, is_informational, status_rule

log = logging.getLogger("venues.ibkr")

UNSET = 1.7976931348623157e308  # ib_async's UNSET_DOUBLE
MAX_NOTES = 20


class Phase(str, Enum):
    NEW = "NEW"  # placed; IB has not acknowledged it
    ACCEPTED = "ACCEPTED"
    CANCEL_PENDING = "CANCEL_PENDING"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"  # the broker had no record of it at the last reconciliation

    @property
    def terminal(self) -> bool:
        return self in (Phase.FILLED, Phase.CANCELED, Phase.REJECTED)


class HeldTerminal(BaseModel):
    kind: ExecKind  # CANCELED or REJECTED
    needed: int  # released once cum_qty reaches this (the filled quantity IB reported)
    text: str


class OrderTrack(BaseModel):
    """What the rig knows of one order at IB (persisted by the gateway)."""

    model_config = ConfigDict(extra="ignore")

    intent_id: str
    quantity: int
    symbol: str = ""
    side: str = ""
    client_id: int | None = None
    order_id: int | None = None
    perm_id: int | None = None
    phase: Phase = Phase.NEW
    cum_qty: int = 0
    status_filled: int = 0  # the largest `filled` a status callback reported (advisory)
    last_status: str = ""
    exec_ids: list[str] = []  # every execId seen for this order (applied or correction)
    applied: dict[str, str] = {}  # execution base id → the execId applied for it
    held: HeldTerminal | None = None
    events: list[ExecutionEvent] = []  # everything emitted, in order
    sent: int = 0  # events[:sent] were handed to a consumer (gateway bookkeeping)
    notes: list[str] = []  # informational errors, corrections
    commissions: dict[str, float] = {}
    placed_at: float | None = None  # gateway clock when placed (for the stuck sweep)
    seen_by_broker: bool = False
    cancel_requested: bool = False

    @property
    def leaves(self) -> int:
        return 0 if self.phase.terminal or self.phase is Phase.UNKNOWN else max(self.quantity - self.cum_qty, 0)

    @property
    def fills(self) -> list[ExecutionEvent]:
        return [e for e in self.events if e.kind is ExecKind.FILL]

    def to_status(self) -> VenueOrderStatus:
        last = self.events[-1].kind if self.events else None
        known = self.seen_by_broker and self.phase is not Phase.UNKNOWN
        return VenueOrderStatus(
            intent_id=self.intent_id,
            known=known or bool(self.fills),
            venue_order_id=str(self.perm_id) if self.perm_id else None,
            last_kind=last,
            cum_qty=self.cum_qty,
            leaves_qty=self.leaves,
            executions=self.fills,
        )


@dataclass
class BrokerSighting:
    """An order IB listed (open or completed) with a non-empty orderRef — any client's."""

    order_ref: str
    perm_id: int
    client_id: int
    order_id: int
    status: str
    quantity: int
    action: str


def correction_base(exec_id: str) -> str:
    """IB execIds look like `0000e0d5.6553a9b0.01.01`; a correction changes only the last part."""
    head, dot, _tail = exec_id.rpartition(".")
    return head if dot and head else exec_id


class IbkrTranslator:
    def __init__(self, client_id: int, tracks: Iterable[OrderTrack] = ()):
        self.client_id = client_id
        self.tracks: dict[str, OrderTrack] = {}
        self.broker_refs: dict[str, BrokerSighting] = {}
        self._by_perm: dict[int, str] = {}
        self._by_key: dict[tuple[int, int], str] = {}
        self._by_exec: dict[str, str] = {}
        for track in tracks:
            self._index(track)

    # ----- registry -------------------------------------------------------------------------

    def _index(self, track: OrderTrack) -> None:
        self.tracks[track.intent_id] = track
        if track.perm_id:
            self._by_perm[track.perm_id] = track.intent_id
        if track.order_id is not None and track.client_id is not None:
            self._by_key[(track.client_id, track.order_id)] = track.intent_id
        for exec_id in track.exec_ids:
            self._by_exec[exec_id] = track.intent_id

    def register(
        self,
        intent_id: str,
        quantity: int,
        symbol: str = "",
        side: str = "",
        *,
        client_id: int | None = None,
        order_id: int | None = None,
        now: float | None = None,
    ) -> OrderTrack:
        track = self.tracks.get(intent_id) or OrderTrack(intent_id=intent_id, quantity=quantity, symbol=symbol, side=side)
        track.client_id, track.order_id, track.placed_at = client_id, order_id, now
        self._index(track)
        return track

    def track(self, intent_id: str) -> OrderTrack | None:
        return self.tracks.get(intent_id)

    def track_for_order_id(self, order_id: int) -> OrderTrack | None:
        """This client's order by its (session-scoped, reusable) orderId — for errors only."""
        intent = self._by_key.get((self.client_id, order_id))
        return self.tracks.get(intent) if intent else None

    def _route(self, order_ref: str | None, perm_id: int, client_id: int, order_id: int) -> OrderTrack | None:
        if order_ref and order_ref in self.tracks:
            track = self.tracks[order_ref]
            if perm_id and track.perm_id and track.perm_id != perm_id:
                log.error("a second IB order (permId %s) carries orderRef %s of permId %s: ignored", perm_id, order_ref, track.perm_id)
                return None
            return track
        if perm_id and perm_id in self._by_perm:
            return self.tracks[self._by_perm[perm_id]]
        intent = self._by_key.get((client_id, order_id)) if order_id > 0 else None
        if intent is None:
            return None
        track = self.tracks[intent]
        if perm_id and track.perm_id and track.perm_id != perm_id:
            return None  # the orderId was reused: a different order
        return track

    def _bind(self, track: OrderTrack, perm_id: int, client_id: int, order_id: int) -> None:
        if perm_id and not track.perm_id:
            track.perm_id = perm_id
            self._by_perm[perm_id] = track.intent_id
        if order_id > 0 and track.order_id is None:
            track.order_id, track.client_id = order_id, client_id
            self._by_key[(client_id, order_id)] = track.intent_id

    # ----- emitting -------------------------------------------------------------------------

    def _emit(self, track: OrderTrack, kind: ExecKind, text: str = "", **fill: object) -> ExecutionEvent:
        event = ExecutionEvent(
            intent_id=track.intent_id,
            kind=kind,
            venue_order_id=str(track.perm_id) if track.perm_id else None,
            cum_qty=track.cum_qty,
            leaves_qty=track.leaves,
            text=text,
            **fill,
        )
        track.events.append(event)
        return event

    def _note(self, track: OrderTrack, note: str) -> None:
        track.notes = [*track.notes, note][-MAX_NOTES:]

    # ----- callbacks ------------------------------------------------------------------------

    def _sight(self, order: Order, status: str) -> None:
        if order.orderRef:
            self.broker_refs[order.orderRef] = BrokerSighting(
                order_ref=order.orderRef,
                perm_id=order.permId,
                client_id=order.clientId,
                order_id=order.orderId,
                status=status,
                quantity=int(order.totalQuantity or 0),
                action=order.action,
            )

    def on_open_order(self, order: Order, state: OrderState) -> list[ExecutionEvent]:
        """openOrder: at placement, on every change, and in reqOpenOrders/reqAllOpenOrders answers.
        Its `filledQuantity` is ignored (it can say 0 after a fill); status only."""
        if order.whatIf:
            return []
        self._sight(order, state.status)
        track = self._route(order.orderRef, order.permId, order.clientId, order.orderId)
        if track is None:
            return []
        self._bind(track, order.permId, order.clientId, order.orderId)
        track.seen_by_broker = True
        if state.status == "Inactive":
            return []  # openOrder has no whyHeld: the orderStatus that follows tells a locate from a reject
        return self._status(track, state.status, None, "")

    def on_completed_order(self, order: Order, state: OrderState) -> list[ExecutionEvent]:
        """completedOrder (reqCompletedOrders): Filled / Cancelled / Inactive, with IB's words."""
        self._sight(order, state.status)
        track = self._route(order.orderRef, order.permId, order.clientId, order.orderId)
        if track is None:
            return []
        self._bind(track, order.permId, order.clientId, order.orderId)
        track.seen_by_broker = True
        filled = order.filledQuantity
        reported = None if filled is None or float(filled) >= UNSET else float(filled)
        extra = f": {state.completedStatus}" if state.completedStatus else ""
        return self._status(track, state.status, reported, "", extra)

    def on_order_status(self, status: OrderStatus) -> list[ExecutionEvent]:
        track = self._route(None, status.permId, status.clientId, status.orderId)
        if track is None:
            return []
        self._bind(track, status.permId, status.clientId, status.orderId)
        track.seen_by_broker = True
        return self._status(track, status.status, status.filled, status.whyHeld or "")

    def _status(self, track: OrderTrack, status: str, filled: float | None, why_held: str, extra: str = "") -> list[ExecutionEvent]:
        track.last_status = status
        if filled is not None and filled > track.status_filled:
            track.status_filled = round(filled)
        if track.phase.terminal:
            return []  # terminal absorbs status; only executions still count
        effect = status_rule(status).effect
        if effect is StatusEffect.INACTIVE:
            effect = StatusEffect.ACCEPTED if LOCATE_MARKER in why_held.lower() else StatusEffect.REJECTED
        text = status + (f" (whyHeld={why_held})" if why_held else "") + extra
        if effect is StatusEffect.ACCEPTED:
            if track.phase in (Phase.NEW, Phase.UNKNOWN) and track.held is None:
                track.phase = Phase.ACCEPTED
                return [self._emit(track, ExecKind.ACCEPTED, text)]
            return []
        if effect is StatusEffect.CANCEL_PENDING:
            if track.phase in (Phase.NEW, Phase.ACCEPTED, Phase.UNKNOWN) and track.held is None:
                track.phase = Phase.CANCEL_PENDING
                return [self._emit(track, ExecKind.CANCEL_PENDING, text)]
            return []
        if effect is StatusEffect.CANCELED:
            return self._terminal(track, ExecKind.CANCELED, text)
        if effect is StatusEffect.REJECTED:
            return self._terminal(track, ExecKind.REJECTED, text)
        return []

    def _terminal(self, track: OrderTrack, kind: ExecKind, text: str) -> list[ExecutionEvent]:
        if track.phase.terminal:
            return []
        if track.held is None:
            track.held = HeldTerminal(kind=kind, needed=track.status_filled, text=text)
        else:
            track.held.needed = max(track.held.needed, track.status_filled)
        return self._release(track)

    def _release(self, track: OrderTrack, force: bool = False) -> list[ExecutionEvent]:
        held = track.held
        if held is None or (track.cum_qty < held.needed and not force):
            return []
        track.held = None
        if track.phase.terminal:
            return []
        kind, text = held.kind, held.text
        if force and track.cum_qty < held.needed:
            text += f" (IB reported {held.needed} filled; executions show {track.cum_qty})"
        if kind is ExecKind.REJECTED and track.cum_qty > 0:
            kind, text = ExecKind.CANCELED, text + " — after fills: the remainder ended"
        track.phase = Phase.CANCELED if kind is ExecKind.CANCELED else Phase.REJECTED
        return [self._emit(track, kind, text)]

    def release_held(self) -> list[ExecutionEvent]:
        """After reconciliation: the executions IB has are all there are; end held orders."""
        events: list[ExecutionEvent] = []
        for track in self.tracks.values():
            events += self._release(track, force=True)
        return events

    def on_execution(self, ex: Execution) -> list[ExecutionEvent]:
        """execDetails, live or in a reqExecutions answer: the same path, deduplicated by execId."""
        track = self._route(ex.orderRef, ex.permId, ex.clientId, ex.orderId)
        if track is None:
            return []
        if ex.execId in track.exec_ids:
            return []
        self._bind(track, ex.permId, ex.clientId, ex.orderId)
        track.exec_ids.append(ex.execId)
        self._by_exec[ex.execId] = track.intent_id
        base = correction_base(ex.execId)
        shares = round(ex.shares)
        if base in track.applied:
            first = next((f for f in track.fills if f.exec_id == track.applied[base]), None)
            self._note(track, f"execution {ex.execId} corrects {track.applied[base]}: not applied again")
            if first is not None and (first.last_qty != shares or abs((first.last_px or 0) - ex.price) > 1e-9):
                log.error(
                    "IB corrected execution %s of %s (%s@%s → %s@%s); the rig keeps the first version — reconcile by hand",
                    ex.execId,
                    track.intent_id,
                    first.last_qty,
                    first.last_px,
                    shares,
                    ex.price,
                )
            return []
        if shares <= 0:
            return []
        events: list[ExecutionEvent] = []
        if track.phase in (Phase.NEW, Phase.UNKNOWN) and track.held is None:
            track.phase = Phase.ACCEPTED
            events.append(self._emit(track, ExecKind.ACCEPTED, "implied by an execution that arrived before the order's status"))
        track.applied[base] = ex.execId
        track.seen_by_broker = True
        track.cum_qty += shares
        if track.cum_qty > track.quantity:
            log.error("executions of %s exceed its quantity: %s > %s", track.intent_id, track.cum_qty, track.quantity)
        if track.cum_qty >= track.quantity:
            track.phase, track.held = Phase.FILLED, None
        venue_time = ex.time.isoformat() if getattr(ex.time, "year", 1970) > 1970 else None
        events.append(self._emit(track, ExecKind.FILL, exec_id=ex.execId, last_qty=shares, last_px=float(ex.price), venue_time=venue_time))
        return events + self._release(track)

    def on_commission(self, report: CommissionReport) -> None:
        intent = self._by_exec.get(report.execId)
        if intent and intent in self.tracks:
            self.tracks[intent].commissions[report.execId] = float(report.commission)

    def on_error(self, req_id: int, code: int, message: str) -> list[ExecutionEvent]:
        """error(reqId=orderId of this client, code, text): see codes.py for what ends an order."""
        if req_id <= 0:
            return []
        intent = self._by_key.get((self.client_id, req_id))
        track = self.tracks.get(intent) if intent else None
        if track is None:
            return []
        note = f"IB {code}: {message}"
        self._note(track, note)
        acknowledged = track.phase not in (Phase.NEW, Phase.UNKNOWN)
        effect = error_effect(code, acknowledged)
        if effect is ErrorEffect.INFO:
            if not is_informational(code):
                log.warning("IB error %s on %s is not in the rig's code list; the order keeps its state: %s", code, track.intent_id, message)
            return []
        if effect is ErrorEffect.CANCEL:
            return self._terminal(track, ExecKind.CANCELED, note)
        events = self._terminal(track, ExecKind.REJECTED, note)
        if code == DUPLICATE_ORDER_ID and not track.perm_id:
            # the id belongs to another order: nothing that carries it is about this intent any more
            self._by_key.pop((self.client_id, req_id), None)
        return events

    # ----- reconciliation -------------------------------------------------------------------

    def mark_unknown(self, intent_id: str, reason: str) -> list[ExecutionEvent]:
        """The broker has no record of an order the rig placed: UNKNOWN_ORDER, never CANCELED."""
        track = self.tracks.get(intent_id)
        if track is None or track.phase.terminal or track.phase is Phase.UNKNOWN:
            return []
        track.phase = Phase.UNKNOWN
        track.held = None
        return [self._emit(track, ExecKind.UNKNOWN_ORDER, reason)]

    def adopt(self, intent_id: str, sighting: BrokerSighting, now: float | None = None) -> list[ExecutionEvent]:
        """An order IB lists under this orderRef that the rig has no track of (lost state)."""
        track = self.register(intent_id, sighting.quantity, side=sighting.action, now=now)
        self._bind(track, sighting.perm_id, sighting.client_id, sighting.order_id)
        track.seen_by_broker = True
        return self._status(track, sighting.status, None, "")
