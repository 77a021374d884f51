"""The IBKR gateway: one long-lived connection to TWS / IB Gateway through ib_async, serving the
order workflows' venue activities (this module) over the connection (session.py) and pushing what
IB says asynchronously through the sinks (routing.py).

Every answer is the order's whole history (a retried call answers with what the first one saw and
more); consumers apply fills once by exec_id and treat repeated status events as no-ops.

Identity: the orderRef is `rig/<account>/<intent_id>`; a retried submit finds the order it placed
in the gateway's store, or among the orders IB listed at the last reconciliation (no book is asked
for per submit); an order IB lists under the rig's orderRef is adopted only when account,
contract, side and quantity match. The IB client id is pinned and IB_ACCOUNT checked (session.py).

Reconciliation (session.py): on every (re)connect and 1101/1102 — all open orders, the day's
completed orders, executions since the last one seen (a time filter), then positions against the
accounts' books. An order IB no longer lists ends UNKNOWN_ORDER, or EXPIRED when it was a DAY
order of an earlier session (outside IB's window: what filled unseen shows in the positions
check). 1100/2110 (TWS has lost IB) refuse new orders until 1101/1102.
"""

from __future__ import annotations

import contextlib
import logging

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from venues.ibkr.contracts import UnknownContract
from venues.ibkr.models import CancelOutcome, CancelVerdict, IbkrCancel, IbkrModify, IbkrOrder, ModifyOutcome, rig_order_ref
from venues.ibkr.session import CannotCancel, GatewayCore, IbkrConfigError, IbUnreachable, NotConnected, unreachable_line
from venues.ibkr.translator import BrokerSighting, OrderTrack, Phase

__all__ = ["CannotCancel", "IbUnreachable", "IbkrConfigError", "IbkrGateway", "NotConnected", "unreachable_line"]

log = logging.getLogger("venues.ibkr")


def _verdict(track: OrderTrack) -> CancelVerdict:
    return {
        Phase.FILLED: CancelVerdict.FILLED,
        Phase.CANCELED: CancelVerdict.CANCELED,
        Phase.EXPIRED: CancelVerdict.EXPIRED,
        Phase.REJECTED: CancelVerdict.REJECTED,
        Phase.UNKNOWN: CancelVerdict.UNKNOWN_ORDER,
    }.get(track.phase, CancelVerdict.REFUSED if track.cancel_refused else CancelVerdict.PENDING_CANCEL)


class IbkrGateway(GatewayCore):
    # ----- the venue activities -------------------------------------------------------------

    def _sighting_of(self, intent_id: str) -> BrokerSighting | None:
        """The rig's order IB listed for this intent (any rig account), in this IB account."""
        found = [s for s in self.translator.broker_refs.values() if s.intent_id == intent_id and (not s.ib_account or s.ib_account == self.account)]
        return found[-1] if found else None

    async def submit(self, order: IbkrOrder) -> list[ExecutionEvent]:
        """Place the order unless IB already has it; returns the order's whole history.

        A retry never places a second order: the intent is looked up in the gateway's book and,
        failing that, among the orders IB listed at the last reconciliation or since (its
        orderRef). No book is downloaded per submit."""
        intent = order.intent_id
        async with self._lock(intent):
            with self._capture(intent):
                track = self.translator.track(intent)
                if track is not None and (track.events or track.seen_by_broker) and not self._never_reached_ib(track):
                    return await self._history(intent)
                self._require_connected()
                ref = rig_order_ref(order.account, intent)
                if self.link_down is not None:
                    code, text = self.link_down
                    return await self._refuse(
                        order, ref, f"not placed: IB {code} ({text}) — new orders are refused until IB says connectivity is restored (1101/1102)"
                    )
                sighting = self.translator.broker_refs.get(ref)
                if sighting is not None and track is None:
                    problem = self._mismatch(sighting, order)
                    if problem:
                        return await self._refuse(
                            order, ref, f"not placed: IB already has an order under orderRef {ref} that is not this one ({problem}); not adopted"
                        )
                    adopted = self._new_track(order, ref)
                    self._dispatch(self.translator.adopt(adopted, sighting))
                    async with self._broker_lock:
                        await self._refresh_executions_locked(order.symbol)
                    return await self._history(intent)
                try:
                    stock = await self.qualify(order.symbol)
                except UnknownContract as err:
                    return await self._refuse(order, ref, f"not placed: {err}")
                track = self._new_track(order, ref, previous=track)
                if order.limit_price is not None:
                    track.limit_price = stock.passive_price(order.side, order.limit_price)
                self.translator.register(track)
                self._placed_in_round[intent] = self._round
                await self.flush()  # written before the order leaves: a restart knows it may exist
                self._send_place(track)
                await self._wait_until(
                    intent, lambda: bool(track.events) and track.events[-1].kind is not ExecKind.UNKNOWN_ORDER, self.settings.ack_timeout
                )
                return await self._history(intent)

    def _new_track(self, order: IbkrOrder, ref: str, previous: OrderTrack | None = None) -> OrderTrack:
        track = previous or OrderTrack(intent_id=order.intent_id, quantity=order.quantity)
        track.quantity, track.symbol, track.side, track.account, track.order_ref = order.quantity, order.symbol, order.side, order.account, ref
        track.tif, track.order_type, track.limit_price = order.time_in_force, order.order_type, order.limit_price
        track.session, track.placed_at, track.client_id = self._session(), self.clock(), self.settings.client_id
        return track

    def _mismatch(self, sighting: BrokerSighting, order: IbkrOrder) -> str:
        wanted = (self.account, order.symbol, order.side, order.quantity)
        found = (sighting.ib_account or self.account, sighting.symbol, sighting.action, sighting.quantity)
        return "" if wanted == found else f"{found[2]} {found[3]} {found[1]} in {found[0]}, not {wanted[2]} {wanted[3]} {wanted[1]} in {wanted[0]}"

    async def _refuse(self, order: IbkrOrder, ref: str, text: str) -> list[ExecutionEvent]:
        track = self._new_track(order, ref, previous=self.translator.track(order.intent_id))
        self.translator.register(track)
        self._dispatch(self.translator.refuse(track, text))
        log.warning("%s: %s", order.intent_id, text)
        await self.flush()
        return await self._history(order.intent_id)

    @staticmethod
    def _never_reached_ib(track: OrderTrack) -> bool:
        """Written ahead, then found nowhere at IB (open, completed, executions) and never heard of:
        the placement did not leave (a crash, a dropped socket). A retried submit may place it."""
        return track.phase is Phase.UNKNOWN and not track.seen_by_broker and track.cum_qty == 0 and track.perm_id is None

    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        """Ask IB to cancel; answers with the order's whole history as it stands after up to
        `cancel_timeout` seconds (the rest comes through the sink). An order IB does not know
        answers UNKNOWN_ORDER."""
        outcome = await self.cancel_confirmed(IbkrCancel(intent_id=intent_id, wait_seconds=self.settings.cancel_timeout))
        return outcome.events

    async def cancel_confirmed(self, request: IbkrCancel) -> CancelOutcome:
        """Cancel and wait up to `wait_seconds` for IB's last word: CANCELED / EXPIRED / FILLED /
        REJECTED (final: cum_qty is what filled), PENDING_CANCEL (fills may still come), REFUSED
        (IB refused the cancel; asked again, the gateway sends it again), UNKNOWN_ORDER."""
        intent = request.intent_id
        async with self._lock(intent):
            with self._capture(intent):
                track = self.translator.track(intent)
                if track is None:
                    self._require_connected()
                    sighting = self._sighting_of(intent)
                    if sighting is None:
                        event = ExecutionEvent(
                            intent_id=intent, kind=ExecKind.UNKNOWN_ORDER, text=f"IB lists no order of the rig for intent {intent}"
                        )
                        return CancelOutcome(intent_id=intent, verdict=CancelVerdict.UNKNOWN_ORDER, text=event.text, events=[event])
                    track = OrderTrack(
                        intent_id=intent, quantity=sighting.quantity, symbol=sighting.symbol, side=sighting.action, order_ref=sighting.order_ref
                    )
                    track.account = sighting.order_ref.split("/")[1]
                    self._dispatch(self.translator.adopt(track, sighting))
                    async with self._broker_lock:
                        await self._refresh_executions_locked(track.symbol)
                if not track.phase.terminal:
                    if track.phase is Phase.UNKNOWN:
                        if self.connected and track.order_id is not None:
                            with contextlib.suppress(CannotCancel):
                                self._send_cancel(track)  # in case IB holds it unlisted; its answer is signalled
                    else:
                        self._require_connected()
                        if not track.cancel_requested:
                            self._send_cancel(track)
                        await self._wait_until(
                            intent, lambda: track.phase.terminal or bool(track.cancel_refused) or track.phase is Phase.UNKNOWN, request.wait_seconds
                        )
                events = await self._history(intent)
                verdict = _verdict(track)
                text = track.cancel_refused if verdict is CancelVerdict.REFUSED else (events[-1].text if events else "")
                return CancelOutcome(intent_id=intent, verdict=verdict, cum_qty=track.cum_qty, leaves_qty=track.leaves, text=text, events=events)

    async def modify(self, request: IbkrModify) -> ModifyOutcome:
        """IB's native modify: the same order (orderId, permId) with a new total quantity and/or
        limit price. Accepted once IB's openOrder shows it; refused with IB's words otherwise."""
        intent = request.intent_id
        async with self._lock(intent):
            with self._capture(intent):
                track = self.translator.track(intent)

                def answer(accepted: bool, text: str) -> ModifyOutcome:
                    assert track is not None
                    return ModifyOutcome(
                        intent_id=intent, accepted=accepted, total_quantity=track.quantity, limit_price=track.limit_price, cum_qty=track.cum_qty,
                        text=text, events=list(track.events),
                    )  # fmt: skip

                if track is None:
                    return ModifyOutcome(intent_id=intent, accepted=False, total_quantity=0, text="IB lists no such order of the rig")
                if track.phase.terminal or track.phase in (Phase.NEW, Phase.UNKNOWN, Phase.CANCEL_PENDING):
                    return answer(False, f"the order is {track.phase.value} at IB: nothing to modify")
                if request.total_quantity < track.cum_qty:
                    return answer(False, f"total quantity {request.total_quantity} is below the {track.cum_qty} filled")
                self._require_connected()
                stock = await self.qualify(track.symbol)
                price = stock.passive_price(track.side, request.limit_price) if request.limit_price is not None else track.limit_price
                trade = self.ib.wrapper.trades.get((track.client_id or 0, track.order_id or 0))
                if trade is None or track.client_id != self.settings.client_id:
                    return answer(False, f"IB lets only client {track.client_id} modify this order")
                trade.order.totalQuantity = request.total_quantity
                if price is not None:
                    trade.order.lmtPrice = price
                track.modifying, track.modify_refused = True, ""
                self.ib.placeOrder(trade.contract, trade.order)
                await self._wait_until(intent, lambda: not track.modifying, self.settings.ack_timeout)
                if track.modify_refused or track.modifying:
                    track.modifying = False
                    return answer(False, track.modify_refused or "IB did not confirm the modify in time")
                track.limit_price = price
                self._flush_soon()
                return answer(True, f"modified at IB: total {track.quantity} @ {price if price is not None else 'MKT'}")

    async def order_status(self, intent_id: str) -> VenueOrderStatus:
        """What IB knows of the order now (asked, not remembered, unless it is over)."""
        track = self.translator.track(intent_id)
        if track is not None and track.phase.terminal and track.held is None:
            return track.to_status()
        self._require_connected()
        async with self._lock(intent_id):
            async with self._broker_lock:
                this_round = self._start_round()
                await self._refresh_orders_locked()
                await self._refresh_executions_locked(track.symbol if track is not None else "")
            track = self.translator.track(intent_id)
            sighting = self._sighting_of(intent_id)
            if track is None and sighting is not None:
                track = OrderTrack(
                    intent_id=intent_id, quantity=sighting.quantity, symbol=sighting.symbol, side=sighting.action, order_ref=sighting.order_ref
                )
                track.account = sighting.order_ref.split("/")[1]
                self._dispatch(self.translator.adopt(track, sighting))
                async with self._broker_lock:
                    await self._refresh_executions_locked(track.symbol)
            if track is None:
                return VenueOrderStatus(intent_id=intent_id, known=False, last_kind=ExecKind.UNKNOWN_ORDER)
            if (
                track.order_ref not in self._seen_refs
                and not track.phase.terminal
                and track.phase is not Phase.UNKNOWN
                and self._placed_in_round.get(intent_id) != this_round
            ):
                self._dispatch(self.translator.mark_unknown(intent_id, f"IB lists no order with orderRef {track.order_ref}"))
            status = track.to_status()
            if track.phase is Phase.UNKNOWN:
                status = status.model_copy(update={"known": False, "last_kind": ExecKind.UNKNOWN_ORDER})
            return status

    async def executions_since(self, exec_cursor: str | None) -> list[ExecutionEvent]:
        """FILL (and CORRECTION) events after `exec_cursor` (an exec id) in the order the gateway
        saw them; all of them when the cursor is None or unknown. Asks IB first when connected."""
        if self.connected:
            async with self._broker_lock:
                await self._refresh_executions_locked()
        if exec_cursor:
            for index, event in enumerate(self.journal):
                if event.exec_id == exec_cursor:
                    return self.journal[index + 1 :]
        return list(self.journal)
