"""IB callbacks → the venue seam's ExecutionEvents, keyed by the rig's intent id.

Pure bookkeeping: no I/O, no clock, no ib_async connection. The gateway feeds it what TWS says
(through ib_async's Wrapper) and ships the events it returns.

* Identity. IB's durable id is `permId` (the `venue_order_id` of every event); the per-client
  `orderId` routes what carries nothing else (orderStatus before the permId is known, error) and
  never to an order whose permId differs. The orderRef is `rig/<account>/<intent_id>`
  (models.rig_order_ref): it binds an order only while the rig has no permId for it yet, and only
  when symbol and side agree — a foreign order that copies the text never becomes the rig's.
* Fills are the truth. Each execution is applied once, in arrival order, deduplicated by execId;
  `cum_qty` is the sum of applied executions and never goes back because of a status. IB
  publishes a correction of an execution as another execDetails whose execId differs only after
  the last period (`….01` → `….02`): identical shares and price → a note; different → a
  CORRECTION event (`corrects` = the exec id replaced; cum_qty recomputed from the corrected
  shares). The commissionReport that follows an execution is put on its event (`commission`).
* Status callbacks are advisory (see codes.py): ACCEPTED once, CANCEL_PENDING once, terminal
  CANCELED/REJECTED/EXPIRED held back until the executions account for the reported filled
  quantity, never after the order is terminal. A Cancelled nobody at the rig asked for, of a DAY
  order after its session closed, is EXPIRED (the gateway's `expired` rule). A cancel IB refuses
  (161, 10148 while the order works) is a CANCEL_REJECTED: the order works on, and a later cancel
  is sent again. An execution that arrives before any status makes the order ACCEPTED first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from ib_async import CommissionReport, Contract, Execution, Order, OrderState, OrderStatus
from pydantic import BaseModel, ConfigDict

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from venues.ibkr.codes import (
    CANCEL_REFUSED_CODES,
    LOCATE_MARKER,
    ErrorEffect,
    error_effect,
    is_informational,
    status_rule,
)
from venues.ibkr.codes import StatusEffect as SE
from venues.ibkr.models import parse_order_ref

log = logging.getLogger("venues.ibkr")

UNSET = 1.7976931348623157e308  # ib_async's UNSET_DOUBLE
MAX_NOTES = 20


class Phase(str, Enum):
    NEW = "NEW"  # placed; IB has not acknowledged it
    ACCEPTED = "ACCEPTED"
    CANCEL_PENDING = "CANCEL_PENDING"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"  # the broker had no record of it at the last reconciliation

    @property
    def terminal(self) -> bool:
        return self in (Phase.FILLED, Phase.CANCELED, Phase.EXPIRED, Phase.REJECTED)


TERMINAL_PHASE = {ExecKind.CANCELED: Phase.CANCELED, ExecKind.EXPIRED: Phase.EXPIRED, ExecKind.REJECTED: Phase.REJECTED}


class HeldTerminal(BaseModel):
    kind: ExecKind  # CANCELED, EXPIRED or REJECTED
    needed: int  # released once cum_qty reaches this (the filled quantity IB reported)
    text: str


class OrderTrack(BaseModel):
    """What the rig knows of one order at IB (persisted by the gateway)."""

    model_config = ConfigDict(extra="ignore")

    intent_id: str
    quantity: int
    symbol: str = ""
    side: str = ""
    account: str = ""  # the rig account (risk-<account>)
    order_ref: str = ""
    tif: str = "DAY"
    session: str = ""  # the exchange date (ISO) the order was placed on
    client_id: int | None = None
    order_id: int | None = None
    perm_id: int | None = None
    phase: Phase = Phase.NEW
    cum_qty: int = 0
    status_filled: int = 0  # the largest `filled` a status callback reported (advisory)
    last_status: str = ""
    exec_ids: list[str] = []  # every execId seen for this order (applied or correction)
    applied: dict[str, str] = {}  # execution base id → the execId applied for it
    shares: dict[str, int] = {}  # execution base id → the shares it counts for now
    held: HeldTerminal | None = None
    events: list[ExecutionEvent] = []  # everything emitted, in order
    notes: list[str] = []  # informational errors, corrections
    commissions: dict[str, float] = {}
    placed_at: float | None = None  # gateway clock when placed (for the stuck sweep)
    place_attempts: int = 0
    order_type: str = "LIMIT"
    limit_price: float | None = None  # as placed at IB (on the tick grid)
    modify_refused: str = ""  # IB's words when it refused the last modify
    modifying: bool = False
    seen_by_broker: bool = False
    cancel_requested: bool = False
    cancel_refused: str = ""  # IB's words when it refused the last cancel (a later cancel is sent again)

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
    """An order IB listed (open or completed) in the rig's orderRef namespace — any client's."""

    order_ref: str
    perm_id: int
    client_id: int
    order_id: int
    status: str
    quantity: int
    action: str
    symbol: str
    ib_account: str

    @property
    def intent_id(self) -> str:
        parsed = parse_order_ref(self.order_ref)
        return parsed[1] if parsed else ""


def correction_base(exec_id: str) -> str:
    """IB execIds look like `0000e0d5.6553a9b0.01.01`; a correction changes only the last part."""
    head, dot, _tail = exec_id.rpartition(".")
    return head if dot and head else exec_id


def _never(track: OrderTrack) -> bool:
    return False


class IbkrTranslator:
    def __init__(self, client_id: int, tracks: Iterable[OrderTrack] = (), expired: Callable[[OrderTrack], bool] = _never):
        self.client_id = client_id
        self.expired = expired  # is an unrequested Cancelled of this order a DAY expiry? (the gateway's clock)
        self.tracks: dict[str, OrderTrack] = {}
        self.broker_refs: dict[str, BrokerSighting] = {}  # orderRef → the latest sighting
        self.touched: set[str] = set()  # intents whose track changed since the gateway last saved
        self.orphans: set[str] = set()  # intents the rig ended REJECTED that IB then said are working
        self._by_perm: dict[int, str] = {}
        self._by_key: dict[tuple[int, int], str] = {}
        self._by_exec: dict[str, str] = {}
        for track in tracks:
            self._index(track)

    # ----- registry -------------------------------------------------------------------------

    def _index(self, track: OrderTrack) -> None:
        self.tracks[track.intent_id] = track
        self.touched.add(track.intent_id)
        if track.perm_id:
            self._by_perm[track.perm_id] = track.intent_id
        if track.order_id is not None and track.client_id is not None:
            self._by_key[(track.client_id, track.order_id)] = track.intent_id
        for exec_id in track.exec_ids:
            self._by_exec[exec_id] = track.intent_id

    def forget(self, intent_id: str) -> None:
        """Drop an ended track from memory (retention); IB's later word on it routes nowhere."""
        track = self.tracks.pop(intent_id, None)
        if track is None:
            return
        if track.perm_id:
            self._by_perm.pop(track.perm_id, None)
        if track.order_id is not None and track.client_id is not None:
            self._by_key.pop((track.client_id, track.order_id), None)
        for exec_id in track.exec_ids:
            self._by_exec.pop(exec_id, None)

    def register(self, track: OrderTrack) -> OrderTrack:
        self._index(track)
        return track

    def rebind_order_id(self, track: OrderTrack, order_id: int) -> None:
        """The placement takes a new orderId (IB said 103: the old one is someone else's)."""
        if track.order_id is not None and track.client_id is not None:
            self._by_key.pop((track.client_id, track.order_id), None)
        track.order_id = order_id
        if track.client_id is not None:
            self._by_key[(track.client_id, order_id)] = track.intent_id

    def track(self, intent_id: str) -> OrderTrack | None:
        return self.tracks.get(intent_id)

    def track_for_order_id(self, order_id: int) -> OrderTrack | None:
        """This client's order by its (session-scoped, reusable) orderId — for errors only."""
        intent = self._by_key.get((self.client_id, order_id))
        return self.tracks.get(intent) if intent else None

    def _route(self, order_ref: str, perm_id: int, client_id: int, order_id: int, symbol: str, action: str) -> OrderTrack | None:
        if perm_id and perm_id in self._by_perm:
            return self.tracks[self._by_perm[perm_id]]
        intent = self._by_key.get((client_id, order_id)) if order_id > 0 else None
        if intent is not None:
            track = self.tracks[intent]
            if perm_id and track.perm_id and track.perm_id != perm_id:
                return None  # the orderId was reused: a different order
            return track
        parsed = parse_order_ref(order_ref) if order_ref else None
        named = self.tracks.get(parsed[1]) if parsed else None
        if named is None:
            return None
        track = named
        if track.order_ref != order_ref or (perm_id and track.perm_id and track.perm_id != perm_id):
            return None
        if (symbol and track.symbol and symbol != track.symbol) or (action and track.side and action != track.side):
            log.error(
                "IB order %s carries orderRef %s but is %s %s, not the rig's %s %s: ignored",
                perm_id,
                order_ref,
                action,
                symbol,
                track.side,
                track.symbol,
            )
            return None
        return track

    def _found(self, track: OrderTrack | None) -> OrderTrack | None:
        if track is not None:
            self.touched.add(track.intent_id)
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
            text=text[:500],
            **fill,
        )
        track.events.append(event)
        self.touched.add(track.intent_id)
        return event

    def _note(self, track: OrderTrack, note: str) -> None:
        self.touched.add(track.intent_id)
        track.notes = [*track.notes, note][-MAX_NOTES:]

    # ----- callbacks ------------------------------------------------------------------------

    def _sight(self, order: Order, contract: Contract, status: str) -> None:
        if parse_order_ref(order.orderRef or ""):
            self.broker_refs[order.orderRef] = BrokerSighting(
                order_ref=order.orderRef,
                perm_id=order.permId,
                client_id=order.clientId,
                order_id=order.orderId,
                status=status,
                quantity=int(order.totalQuantity or 0),
                action=order.action,
                symbol=contract.symbol,
                ib_account=order.account,
            )

    def on_open_order(self, order: Order, contract: Contract, state: OrderState) -> list[ExecutionEvent]:
        """openOrder: at placement, on every change, and in reqOpenOrders/reqAllOpenOrders answers.
        Its `filledQuantity` is ignored (it can say 0 after a fill); status only."""
        if order.whatIf:
            return []
        self._sight(order, contract, state.status)
        track = self._found(self._route(order.orderRef, order.permId, order.clientId, order.orderId, contract.symbol, order.action))
        if track is None:
            return []
        self._bind(track, order.permId, order.clientId, order.orderId)
        track.seen_by_broker = True
        if track.modifying and order.totalQuantity:
            track.modifying = False
        if order.totalQuantity and int(order.totalQuantity) != track.quantity and track.phase is not Phase.NEW:
            track.quantity = int(order.totalQuantity)  # a modify IB accepted
        if state.status == "Inactive":
            return []  # openOrder has no whyHeld: the orderStatus that follows tells a locate from a reject
        return self._status(track, state.status, None, "")

    def on_completed_order(self, order: Order, contract: Contract, state: OrderState) -> list[ExecutionEvent]:
        """completedOrder (reqCompletedOrders): Filled / Cancelled / Inactive, with IB's words."""
        self._sight(order, contract, state.status)
        track = self._found(self._route(order.orderRef, order.permId, order.clientId, order.orderId, contract.symbol, order.action))
        if track is None:
            return []
        self._bind(track, order.permId, order.clientId, order.orderId)
        track.seen_by_broker = True
        filled = order.filledQuantity
        reported = None if filled is None or float(filled) >= UNSET else float(filled)
        extra = f": {state.completedStatus}" if state.completedStatus and state.completedStatus != state.status else ""
        return self._status(track, state.status, reported, "", extra)

    def on_order_status(self, status: OrderStatus) -> list[ExecutionEvent]:
        track = self._found(self._route("", status.permId, status.clientId, status.orderId, "", ""))
        if track is None:
            return []
        self._bind(track, status.permId, status.clientId, status.orderId)
        track.seen_by_broker = True
        return self._status(track, status.status, status.filled, status.whyHeld or "")

    def _status(self, track: OrderTrack, status: str, filled: float | None, why_held: str, extra: str = "") -> list[ExecutionEvent]:
        track.last_status = status
        if filled is not None and filled > track.status_filled:
            track.status_filled = round(filled)
        effect = status_rule(status).effect
        if track.phase.terminal:
            if track.phase is Phase.REJECTED and effect is SE.ACCEPTED:
                self.orphans.add(track.intent_id)  # the rig ended it; IB says it works: the gateway cancels it
            return []  # terminal absorbs status; only executions still count
        if effect is SE.INACTIVE:
            effect = SE.ACCEPTED if LOCATE_MARKER in why_held.lower() else SE.REJECTED
        text = status + (f" (whyHeld={why_held})" if why_held else "") + extra
        if effect is SE.ACCEPTED:
            if track.phase in (Phase.NEW, Phase.UNKNOWN) and track.held is None:
                track.phase = Phase.ACCEPTED
                return [self._emit(track, ExecKind.ACCEPTED, text)]
            if track.phase is Phase.CANCEL_PENDING and track.cancel_refused:
                track.phase = Phase.ACCEPTED  # IB refused the cancel and says the order works on
            return []
        if effect is SE.CANCEL_PENDING:
            if track.phase in (Phase.NEW, Phase.ACCEPTED, Phase.UNKNOWN) and track.held is None:
                track.phase = Phase.CANCEL_PENDING
                return [self._emit(track, ExecKind.CANCEL_PENDING, text)]
            return []
        if effect is SE.CANCELED:
            unasked = not track.cancel_requested
            return self._terminal(track, ExecKind.EXPIRED if unasked and self.expired(track) else ExecKind.CANCELED, text)
        if effect is SE.REJECTED:
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
        track.phase = TERMINAL_PHASE[kind]
        return [self._emit(track, kind, text)]

    def release_held(self) -> list[ExecutionEvent]:
        """After reconciliation: the executions IB has are all there are; end held orders."""
        events: list[ExecutionEvent] = []
        for track in self.tracks.values():
            events += self._release(track, force=True)
        return events

    def on_execution(self, ex: Execution, contract: Contract) -> list[ExecutionEvent]:
        """execDetails, live or in a reqExecutions answer: the same path, deduplicated by execId."""
        track = self._found(
            self._route(ex.orderRef, ex.permId, ex.clientId, ex.orderId, contract.symbol, {"BOT": "BUY", "SLD": "SELL"}.get(ex.side, ""))
        )
        if track is None or ex.execId in track.exec_ids:
            return []
        self._bind(track, ex.permId, ex.clientId, ex.orderId)
        track.exec_ids.append(ex.execId)
        self._by_exec[ex.execId] = track.intent_id
        base = correction_base(ex.execId)
        shares = round(ex.shares)
        venue_time = ex.time.isoformat() if getattr(ex.time, "year", 1970) > 1970 else None
        commission = track.commissions.get(ex.execId)
        if base in track.applied:
            return self._correction(track, ex, base, shares, venue_time, commission)
        if shares <= 0:
            return []
        events: list[ExecutionEvent] = []
        if track.phase in (Phase.NEW, Phase.UNKNOWN) and track.held is None:
            track.phase = Phase.ACCEPTED
            events.append(self._emit(track, ExecKind.ACCEPTED, "implied by an execution that arrived before the order's status"))
        track.applied[base] = ex.execId
        track.shares[base] = shares
        track.seen_by_broker = True
        track.cum_qty += shares
        if track.cum_qty > track.quantity:
            log.error("executions of %s exceed its quantity: %s > %s", track.intent_id, track.cum_qty, track.quantity)
        if track.cum_qty >= track.quantity:
            track.phase, track.held = Phase.FILLED, None
        events.append(
            self._emit(
                track, ExecKind.FILL, exec_id=ex.execId, last_qty=shares, last_px=float(ex.price), venue_time=venue_time, commission=commission
            )
        )
        return events + self._release(track)

    def _correction(
        self, track: OrderTrack, ex: Execution, base: str, shares: int, venue_time: str | None, commission: float | None
    ) -> list[ExecutionEvent]:
        replaced = track.applied[base]
        first = next((e for e in reversed(track.events) if e.exec_id == replaced), None)
        if first is not None and first.last_qty == shares and abs((first.last_px or 0) - ex.price) <= 1e-9:
            self._note(track, f"execution {ex.execId} repeats {replaced} unchanged: not applied again")
            return []
        before = track.shares.get(base, first.last_qty if first else 0)
        track.applied[base] = ex.execId
        track.shares[base] = shares
        track.cum_qty += shares - before
        if track.cum_qty >= track.quantity and not track.phase.terminal:
            track.phase, track.held = Phase.FILLED, None
        self._note(track, f"execution {ex.execId} corrects {replaced}: {before} → {shares} @ {ex.price}")
        log.warning("IB corrected execution %s of %s: %s → %s @ %s", replaced, track.intent_id, before, shares, ex.price)
        event = self._emit(
            track,
            ExecKind.CORRECTION,
            f"IB corrected {replaced}",
            exec_id=ex.execId,
            corrects=replaced,
            last_qty=shares,
            last_px=float(ex.price),
            venue_time=venue_time,
            commission=commission,
        )
        return [event, *self._release(track)]

    def on_commission(self, report: CommissionReport) -> ExecutionEvent | None:
        """Put IB's commission on its execution's event; returns the event as it is now."""
        intent = self._by_exec.get(report.execId)
        track = self.tracks.get(intent) if intent else None
        if track is None:
            return None
        commission = float(report.commission)
        if not -1e6 <= commission <= 1e6:
            return None
        track.commissions[report.execId] = commission
        self.touched.add(track.intent_id)
        for index, event in enumerate(track.events):
            if event.exec_id == report.execId:
                track.events[index] = event.model_copy(update={"commission": commission})
                return track.events[index]
        return None

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
        if track.modifying and code not in (202,) and not track.phase.terminal and track.phase is not Phase.NEW:
            track.modifying, track.modify_refused = False, note  # IB's answer to the modify: the order stands as it was
            return []
        if code in CANCEL_REFUSED_CODES and track.cancel_requested and not track.phase.terminal:
            track.cancel_requested, track.cancel_refused = False, note
            if track.phase is Phase.CANCEL_PENDING:
                track.phase = Phase.ACCEPTED
            return [self._emit(track, ExecKind.CANCEL_REJECTED, note)]
        acknowledged = track.phase not in (Phase.NEW, Phase.UNKNOWN)
        effect = error_effect(code, acknowledged)
        if effect is ErrorEffect.INFO:
            if not is_informational(code):
                if not acknowledged:  # IB's answer to a placement it has not taken: refused, in its words
                    return self._terminal(track, ExecKind.REJECTED, note)
                log.warning("IB error %s on %s is not in the rig's code list; the order keeps its state: %s", code, track.intent_id, message)
            return []
        if effect is ErrorEffect.CANCEL:
            unasked = not track.cancel_requested
            return self._terminal(track, ExecKind.EXPIRED if unasked and self.expired(track) else ExecKind.CANCELED, note)
        return self._terminal(track, ExecKind.REJECTED, note)

    # ----- decisions the gateway takes ------------------------------------------------------

    def refuse(self, track: OrderTrack, text: str) -> list[ExecutionEvent]:
        """The gateway refuses to place the order (IB's link is down, an orderRef collision)."""
        track.phase = Phase.REJECTED
        return [self._emit(track, ExecKind.REJECTED, text)]

    def mark_unknown(self, intent_id: str, reason: str) -> list[ExecutionEvent]:
        """The broker has no record of an order the rig placed: UNKNOWN_ORDER, never CANCELED."""
        track = self.tracks.get(intent_id)
        if track is None or track.phase.terminal or track.phase is Phase.UNKNOWN:
            return []
        track.phase = Phase.UNKNOWN
        track.held = None
        return [self._emit(track, ExecKind.UNKNOWN_ORDER, reason)]

    def expire_unlisted(self, intent_id: str, reason: str) -> list[ExecutionEvent]:
        """A DAY order of an earlier session that IB no longer lists (outside its window): it ended
        at that close. What filled unseen is resolved from positions (the gateway reports it)."""
        track = self.tracks.get(intent_id)
        if track is None or track.phase.terminal:
            return []
        track.held = None
        track.phase = Phase.EXPIRED
        return [self._emit(track, ExecKind.EXPIRED, reason)]

    def cancel_sent(self, track: OrderTrack) -> None:
        track.cancel_requested, track.cancel_refused = True, ""
        self.touched.add(track.intent_id)

    def adopt(self, track: OrderTrack, sighting: BrokerSighting) -> list[ExecutionEvent]:
        """An order IB lists under the rig's orderRef that the rig has no track of (lost state);
        the gateway has checked account, contract, side and quantity."""
        self.register(track)
        self._bind(track, sighting.perm_id, sighting.client_id, sighting.order_id)
        track.seen_by_broker = True
        return self._status(track, sighting.status, None, "")
