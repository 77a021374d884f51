"""OrderWorkflow: one order's durable lifecycle. Workflow id = intent_id.

Flow: ask the account's risk workflow for a pre-trade verdict (serialized there) → venue
acknowledge → an arrival attempt → one attempt per risk-cycle tick until FILLED, CANCELED
(user, replace, or DAY expiry at the close) or REJECTED. Every change is reported to the account
(fills carry deterministic ids; the account applies each once).

The order has no timers of its own: attempts follow the risk cycle's ticks, so a time-skipped
trading day moves its orders too, and fills land in a deterministic order.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.orders import StartOrders
    from activities.venue import AckResult, AttemptResult, VenueOrder, venue_acknowledge, venue_attempt, venue_cancel
    from domain.enums import CancelReason, IntentKind, OrderState, OrderType, RejectReason
    from domain.lifecycle import OrderEvent, fill_event, transition
    from domain.models import Fill, Intent, Quote
    from domain.pretrade import RawIntent
    from workflows import contract as c
    from workflows import metrics
    from workflows.messages import (
        CancelRequest,
        CancelResult,
        OrderReport,
        OrderSnapshot,
        PretradeReply,
        PretradeRequest,
        ReplaceRequest,
        ReplaceResult,
        VenueTick,
    )

VENUE_TIMEOUT = timedelta(seconds=10)
CLIENT_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=c.ORDER_WORKFLOW)
class OrderWorkflow:
    def __init__(self) -> None:
        self._intent_id = workflow.info().workflow_id
        self._account: str | None = None
        self._state = OrderState.ACCEPTED
        self._intent: Intent | None = None
        self._reply: PretradeReply | None = None
        self._fills: list[Fill] = []
        self._reported_fills = 0
        self._attempt = 0
        self._cycle = 0
        self._quote: Quote | None = None
        self._ticks: list[VenueTick] = []
        self._venue = asyncio.Lock()  # one venue interaction at a time: attempts, cancel, replace
        self._cancel_result: CancelResult | None = None
        self._replacing = False
        self._reject_reason: RejectReason | None = None
        self._reject_message: str | None = None
        self._cancel_reason: CancelReason | None = None
        self._replaced_by: str | None = None
        self._history: list[str] = []

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, raw_input: Any) -> OrderSnapshot:
        raw = self._readable_intent(raw_input)
        if raw is None:
            return self.snapshot()
        self._account = raw["account"]
        workflow.upsert_search_attributes([c.SA_ACCOUNT.value_set(self._account), c.SA_ORDER_STATE.value_set(self._state.value)])
        await self._ask_for_pretrade(raw)
        await workflow.wait_condition(lambda: self._reply is not None)
        reply = self._reply
        assert reply is not None
        async with self._venue:
            if self._state is OrderState.ACCEPTED:
                await self._open_at_venue(reply)
        await self._report()
        while not self._state.is_terminal:
            await workflow.wait_condition(lambda: bool(self._ticks) or self._state.is_terminal)
            if self._state.is_terminal:
                break
            tick = self._ticks.pop(0)
            async with self._venue:
                self._cycle, self._quote = tick.cycle, tick.quote
                if self._state.is_open and tick.session_closed:
                    self._cancel_reason = CancelReason.EXPIRED_DAY
                    self._apply(OrderEvent.EXPIRED, f"expired at the close ({tick.exchange_time})")
                elif self._state.is_open:  # a cancel may have closed it while the tick waited
                    await self._attempt_fill()
            await self._report()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.snapshot()

    def _readable_intent(self, raw_input: Any) -> dict[str, Any] | None:
        """Enough shape to reach the account; anything else ends REJECTED here, with a reason."""
        if not isinstance(raw_input, dict):
            self._reject(RejectReason.MALFORMED_INTENT, f"intent must be a JSON object, got {type(raw_input).__name__}")
            return None
        raw = RawIntent.model_validate(raw_input).model_dump()
        if raw.get("intent_id") not in (None, self._intent_id):
            self._reject(RejectReason.MALFORMED_INTENT, f"intent_id {raw['intent_id']!r} differs from the workflow id {self._intent_id!r}")
            return None
        raw["intent_id"] = self._intent_id
        if not isinstance(raw.get("account"), str) or not raw["account"]:
            self._reject(RejectReason.BAD_ACCOUNT, "account must be a non-empty string")
            return None
        return raw

    async def _ask_for_pretrade(self, raw: dict[str, Any]) -> None:
        assert self._account is not None
        request = PretradeRequest(order_workflow_id=self._intent_id, raw_intent=raw)
        risk = workflow.get_external_workflow_handle(c.risk_workflow_id(self._account))
        try:
            await risk.signal(c.SIGNAL_PRETRADE_REQUEST, request)
        except Exception:  # noqa: BLE001 — the account has no running risk workflow yet
            await workflow.execute_activity(
                "ensure_account", self._account, start_to_close_timeout=CLIENT_TIMEOUT
            )
            await risk.signal(c.SIGNAL_PRETRADE_REQUEST, request)

    async def _open_at_venue(self, reply: PretradeReply) -> None:
        if not reply.approved or reply.intent is None:
            self._reject(reply.reason or RejectReason.MALFORMED_INTENT, reply.message, event=OrderEvent.PRETRADE_REJECTED)
            return
        self._intent, self._quote, self._cycle = reply.intent, reply.quote, reply.cycle
        intent = reply.intent
        workflow.upsert_search_attributes(
            [
                c.SA_SYMBOL.value_set(intent.symbol),
                c.SA_SIDE.value_set(intent.side.value),
                c.SA_BUCKET.value_set(intent.bucket.value),
                c.SA_INTENT_KIND.value_set(intent.kind.value),
            ]
        )
        ack: AckResult = await workflow.execute_local_activity(
            venue_acknowledge, self._venue_order(), start_to_close_timeout=VENUE_TIMEOUT
        )
        if not ack.acknowledged:
            self._reject(RejectReason.VENUE_REJECT, ack.message, event=OrderEvent.VENUE_REJECTED)
            return
        self._apply(OrderEvent.VENUE_ACKED, "acknowledged by the venue")
        await self._attempt_fill()

    # ── venue ────────────────────────────────────────────────────────────────────────────────
    def _venue_order(self) -> VenueOrder:
        assert self._intent is not None and self._reply is not None and self._quote is not None
        assert self._reply.venue is not None
        return VenueOrder(
            intent=self._intent,
            attempt=self._attempt,
            remaining=self._intent.quantity - self._filled,
            lot_size=self._reply.lot_size,
            params=self._reply.venue,
            quote=self._quote,
        )

    async def _attempt_fill(self) -> None:
        self._attempt += 1
        result: AttemptResult = await workflow.execute_local_activity(
            venue_attempt, self._venue_order(), start_to_close_timeout=VENUE_TIMEOUT
        )
        if result.fill is not None:
            self._apply_fill(result.fill)

    def _apply_fill(self, fill: Fill) -> None:
        assert self._intent is not None
        if any(f.fill_id == fill.fill_id for f in self._fills):
            return
        self._fills.append(fill)
        metrics.fill_applied(self._intent.kind.value)
        self._apply(fill_event(self._filled, self._intent.quantity), f"fill {fill.quantity} @ {fill.price:.2f} ({fill.fill_id})")

    async def _cancel_at_venue(self) -> None:
        """Send the cancel; a fill that crosses it is applied first."""
        self._attempt += 1
        result: AttemptResult = await workflow.execute_local_activity(
            venue_cancel, self._venue_order(), start_to_close_timeout=VENUE_TIMEOUT
        )
        if result.fill is not None:
            self._apply_fill(result.fill)

    # ── state ────────────────────────────────────────────────────────────────────────────────
    @property
    def _filled(self) -> int:
        return sum(f.quantity for f in self._fills)

    def _apply(self, event: OrderEvent, note: str) -> None:
        self._state = transition(self._state, event)
        self._history.append(f"{workflow.now().isoformat()} {event.value} → {self._state.value}: {note}")
        workflow.upsert_search_attributes([c.SA_ORDER_STATE.value_set(self._state.value)])
        workflow.set_current_details(self._details())
        if self._state.is_terminal:
            reason = self._reject_reason or self._cancel_reason
            metrics.order_finished(self._state.value, reason.value if reason else None)

    def _reject(self, reason: RejectReason, message: str, event: OrderEvent = OrderEvent.PRETRADE_REJECTED) -> None:
        self._reject_reason, self._reject_message = reason, message
        self._apply(event, f"{reason.value}: {message}")

    def _details(self) -> str:
        head = self._intent.summary() if self._intent else self._intent_id
        qty = self._intent.quantity if self._intent else 0
        extra = f" ({self._reject_reason.value})" if self._reject_reason else ""
        extra += f" ({self._cancel_reason.value})" if self._cancel_reason else ""
        return f"**{self._state.value}**{extra} — filled {self._filled}/{qty}\n\n{head}"

    async def _report(self) -> None:
        if self._account is None:
            return
        intent = self._intent
        report = OrderReport(
            intent_id=self._intent_id,
            state=self._state,
            quantity=intent.quantity if intent else 0,
            filled_quantity=self._filled,
            new_fills=self._fills[self._reported_fills :],
            cycle=self._cycle,
            reject_reason=self._reject_reason,
            cancel_reason=self._cancel_reason,
            replaced_by=self._replaced_by,
        )
        self._reported_fills = len(self._fills)
        await workflow.get_external_workflow_handle(c.risk_workflow_id(self._account)).signal(c.SIGNAL_ORDER_REPORT, report)

    # ── messages ─────────────────────────────────────────────────────────────────────────────
    @workflow.signal(name=c.SIGNAL_PRETRADE_VERDICT)
    def pretrade_verdict(self, reply: PretradeReply) -> None:
        if self._reply is None:
            self._reply = reply

    @workflow.signal(name=c.SIGNAL_VENUE_TICK)
    def venue_tick(self, tick: VenueTick) -> None:
        self._ticks.append(tick)

    @workflow.update(name=c.UPDATE_CANCEL)
    async def cancel(self, request: CancelRequest) -> CancelResult:
        async with self._venue:
            if self._cancel_result is not None:
                return self._cancel_result  # idempotent: a repeat gets the first answer
            if self._state.is_terminal:
                return self._cancel_refused()
            if self._state is not OrderState.ACCEPTED:
                await self._cancel_at_venue()
            if self._state is OrderState.FILLED:
                message = "a fill crossed the cancel: the order is FILLED"
            else:
                self._cancel_reason = request.reason
                self._apply(OrderEvent.CANCEL_ACKED, f"cancel ({request.reason.value}) {request.note}".strip())
                message = f"canceled with {self._filled} filled"
            self._cancel_result = self._cancel_answer(True, message)
        await self._report()
        return self._cancel_result

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self._cancel_result is None and self._state.is_terminal:
            raise ValueError(self._cancel_refused().message)

    def _cancel_refused(self) -> CancelResult:
        return self._cancel_answer(False, f"order {self._intent_id} is already {self._state.value}: nothing to cancel")

    def _cancel_answer(self, accepted: bool, message: str) -> CancelResult:
        return CancelResult(intent_id=self._intent_id, accepted=accepted, state=self._state, filled_quantity=self._filled, message=message)

    @workflow.update(name=c.UPDATE_REPLACE)
    async def replace(self, request: ReplaceRequest) -> ReplaceResult:
        self._replacing = True
        new_raw: dict[str, Any] | None = None
        async with self._venue:
            if self._state.is_terminal or self._intent is None:
                return self._replace_answer(False, f"order {self._intent_id} is already {self._state.value}: nothing to replace")
            await self._cancel_at_venue()
            if self._state is OrderState.FILLED:
                result = self._replace_answer(False, "a fill crossed the replace: the order is FILLED")
            elif request.quantity <= self._filled:
                self._apply(OrderEvent.REDUCED_TO_FILLED, f"replaced down to {request.quantity} with {self._filled} filled")
                result = self._replace_answer(True, f"quantity {request.quantity} ≤ filled {self._filled}: order FILLED")
            else:
                new_raw = self._replacement(request)
                self._replaced_by = new_raw["intent_id"]
                self._cancel_reason = CancelReason.REPLACED
                self._apply(OrderEvent.CANCEL_ACKED, f"replaced by {self._replaced_by}")
                result = self._replace_answer(True, f"replaced by {self._replaced_by}", new_raw["intent_id"])
        await self._report()  # the account releases this order before the new one asks
        if new_raw is not None:
            await workflow.execute_activity(
                "start_orders", StartOrders(intents=[new_raw]), start_to_close_timeout=CLIENT_TIMEOUT
            )
        return result

    @replace.validator
    def _validate_replace(self, request: ReplaceRequest) -> None:
        if self._state.is_terminal:
            raise ValueError(f"order {self._intent_id} is already {self._state.value}: nothing to replace")
        if self._replacing:
            raise ValueError(f"order {self._intent_id} has a replace pending already")
        if request.quantity <= 0:
            raise ValueError(f"replace quantity must be > 0, got {request.quantity}")
        if request.limit_price is not None and not (0 < request.limit_price < float("inf")):
            raise ValueError(f"replace limit_price must be a finite number > 0, got {request.limit_price}")

    def _replacement(self, request: ReplaceRequest) -> dict[str, Any]:
        assert self._intent is not None
        intent = self._intent
        generation = intent.intent_id.count(".R") + 1
        base_id = intent.intent_id.split(".R")[0]
        kind = request.kind or intent.kind
        return {
            "intent_id": c.replacement_intent_id(base_id, generation),
            "account": intent.account,
            "symbol": intent.symbol,
            "bucket": intent.bucket.value,
            "side": intent.side.value,
            "quantity": request.quantity - self._filled,
            "order_type": OrderType.LIMIT.value if request.limit_price is not None else intent.order_type.value,
            "limit_price": request.limit_price if request.limit_price is not None else intent.limit_price,
            "kind": kind.value,
            "reduce_only": intent.reduce_only or kind is not IntentKind.NEW,
            "replaces": intent.intent_id,
            "price_rule": (request.price_rule or intent.price_rule).value,
            "issued_in_mode": intent.issued_in_mode.value,
        }

    def _replace_answer(self, accepted: bool, message: str, new_id: str | None = None) -> ReplaceResult:
        return ReplaceResult(
            intent_id=self._intent_id, accepted=accepted, state=self._state, filled_quantity=self._filled,
            new_intent_id=new_id, message=message,
        )

    @workflow.query(name=c.QUERY_STATE)
    def snapshot(self) -> OrderSnapshot:
        fills_notional = sum(f.quantity * f.price for f in self._fills)
        return OrderSnapshot(
            intent_id=self._intent_id,
            account=self._account,
            state=self._state,
            intent=self._intent,
            quantity=self._intent.quantity if self._intent else 0,
            filled_quantity=self._filled,
            average_price=fills_notional / self._filled if self._filled else None,
            fills=list(self._fills),
            reject_reason=self._reject_reason,
            reject_message=self._reject_message,
            cancel_reason=self._cancel_reason,
            replaces=self._intent.replaces if self._intent else None,
            replaced_by=self._replaced_by,
            cancel_result=self._cancel_result,
            history=list(self._history),
        )

    @workflow.query(name=c.QUERY_FILLS)
    def fills(self) -> list[Fill]:
        return list(self._fills)
