"""The rig's simulated venue behind the contract seam (testkit/contract.py), for the one suite
every venue runs. The venue itself is pure (venues/sim/model.py); this adapter keeps the book a
real venue would keep — each order's events, its executions journal — and plays the market's
side: `venue_fill` is the risk cycle's matching step filling the order, `venue_cancel` the DAY
expiry at the close."""

from __future__ import annotations

from domain.enums import OrderType, Side
from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from domain.models import Intent, Quote
from testkit.contract import Submit
from venues.sim import model as venue
from venues.sim.model import SimOrder, VenueParams

# Nothing fills by chance here: the script says when the market trades.
QUIET = VenueParams(seed=1, fill_probability=0.0, partial_fill_probability=0.0, cancel_cross_probability=0.0)


class SimVenueHarness:
    name = "sim"

    def __init__(self) -> None:
        self._orders: dict[str, SimOrder] = {}
        self._events: dict[str, list[ExecutionEvent]] = {}
        self._journal: list[ExecutionEvent] = []
        self._pushed: list[ExecutionEvent] = []
        self._matches = 0

    def _ended(self, intent_id: str) -> ExecutionEvent | None:
        for event in reversed(self._events.get(intent_id, [])):
            if event.kind in (ExecKind.CANCELED, ExecKind.EXPIRED, ExecKind.REJECTED) or (event.kind is ExecKind.FILL and not event.leaves_qty):
                return event
        return None

    def _record(self, intent_id: str, events: list[ExecutionEvent]) -> list[ExecutionEvent]:
        self._events.setdefault(intent_id, []).extend(events)
        self._journal += [e for e in events if e.kind is ExecKind.FILL]
        if intent_id in self._orders:
            cum = max((e.cum_qty for e in self._events[intent_id]), default=0)
            self._orders[intent_id] = self._orders[intent_id].model_copy(update={"cum_qty": cum})
        return events

    async def submit(self, cmd: Submit) -> list[ExecutionEvent]:
        if cmd.intent_id in self._orders:  # a retried submit: the order's history, not a second order
            return list(self._events[cmd.intent_id])
        price = cmd.limit_price or 100.0
        intent = Intent(
            intent_id=cmd.intent_id,
            account=cmd.account,
            symbol=cmd.symbol,
            bucket="LT",
            side=Side(cmd.side),
            quantity=cmd.quantity,
            order_type=OrderType(cmd.order_type),
            limit_price=cmd.limit_price,
        )
        self._orders[cmd.intent_id] = SimOrder(
            intent=intent, cum_qty=0, lot_size=1, params=QUIET, quote=Quote(truth_tick=price, bid=round(price - 0.01, 2), ask=round(price + 0.01, 2))
        )
        return self._record(cmd.intent_id, venue.submit(self._orders[cmd.intent_id]))

    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        if intent_id not in self._orders:
            return [ExecutionEvent(intent_id=intent_id, kind=ExecKind.UNKNOWN_ORDER, text="no such order at the venue")]
        if (ended := self._ended(intent_id)) is not None:
            return [ended]
        return self._record(intent_id, venue.cancel(self._orders[intent_id]))

    async def order_status(self, intent_id: str) -> VenueOrderStatus:
        events = self._events.get(intent_id)
        if events is None:
            return VenueOrderStatus(intent_id=intent_id, known=False, last_kind=ExecKind.UNKNOWN_ORDER)
        order = self._orders[intent_id]
        return VenueOrderStatus(
            intent_id=intent_id,
            known=True,
            venue_order_id=f"SIM-{intent_id}",
            last_kind=events[-1].kind,
            cum_qty=order.cum_qty,
            leaves_qty=0 if self._ended(intent_id) else order.leaves,
            executions=[e for e in events if e.kind is ExecKind.FILL],
        )

    async def executions_since(self, cursor: str | None) -> list[ExecutionEvent]:
        ids = [e.exec_id for e in self._journal]
        return list(self._journal[ids.index(cursor) + 1 :] if cursor in ids else self._journal)

    async def venue_fill(self, intent_id: str, quantity: int, price: float) -> None:
        """The risk cycle's matching step fills `quantity` at `price` (certain for this step)."""
        order = self._orders[intent_id]
        if self._ended(intent_id) is not None:
            return
        self._matches += 1
        step = order.model_copy(
            update={
                "params": QUIET.model_copy(update={"fill_probability": 1.0}),
                "quote": order.quote.model_copy(update={"bid": price, "ask": price}),
            }
        )
        step = step.model_copy(update={"intent": step.intent.model_copy(update={"limit_price": price, "quantity": order.cum_qty + quantity})})
        events = [e.model_copy(update={"leaves_qty": order.intent.quantity - e.cum_qty}) for e in venue.match(step, self._matches, False)]
        self._pushed += self._record(intent_id, events)

    async def venue_cancel(self, intent_id: str) -> None:
        if self._ended(intent_id) is None:
            self._pushed += self._record(intent_id, venue.match(self._orders[intent_id], self._matches, True))

    async def settle(self) -> list[ExecutionEvent]:
        pushed, self._pushed = self._pushed, []
        return pushed
