"""OrderWorkflow: one order's durable lifecycle. Workflow id = intent_id.

First workflow task: pre-trade (an Update on the account, from a local activity) → the venue
(submit: acknowledge and an arrival attempt) → the report. An order that fills at arrival is
done in that one task. Afterwards it only reacts: the venue's executions (the simulated venue
delivers the risk cycle's matching step as an update; a broker gateway signals), and cancel and
replace requests. The order has no timers: a time-skipped day moves it through its account.

Reports reach the account by signal, except where the caller gets them back directly (the
account's own activities start, step, cancel and replace orders and read the answer).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.client_ops import Reconciled
    from activities.order_calls import (
        AccountPretrade,
        AccountReplaceCheck,
        AccountReport,
        StartReplacement,
    )
    from activities.venue import sim_cancel, sim_precheck, sim_submit
    from domain.enums import (
        CancelReason,
        IntentKind,
        OrderState,
        OrderType,
        RejectReason,
    )
    from domain.execution import ExecKind, ExecutionEvent
    from domain.ledger import OrderReport
    from domain.lifecycle import OrderEvent, fill_event, transition
    from domain.limits import short_text
    from domain.models import Fill, Intent
    from domain.venue import SimOrder
    from protocol import contract as c
    from protocol.messages import (
        RIG_CANCEL_REASONS,
        CancelRefusal,
        CancelRequest,
        CancelResult,
        OrderSnapshot,
        PretradeReply,
        PretradeRequest,
        ReplaceCheck,
        ReplaceRequest,
        ReplaceResult,
        RigReplaceRequest,
        VenueKind,
    )
    from protocol.parse import parse, parse_list
    from venues.ibkr.models import (
        DEFAULT_IBKR_TASK_QUEUE,
        IBKR_CANCEL,
        IBKR_SUBMIT,
        IbkrOrder,
    )
    from workflows import metrics
    from workflows.order_state import OrderCarry

LOCAL = timedelta(seconds=10)
# Asking the account: retried while it is busy (continue-as-new, update limits), then given up.
ACCOUNT_CALL = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=3),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5), maximum_attempts=40),
)
HISTORY_LINES_KEPT = 200
BROKER_CANCEL_WAIT = timedelta(seconds=30)  # a broker confirms a cancel asynchronously
HISTORY_EVENTS_PER_RUN = 2_000  # continue-as-new beyond this: a long-lived order stays bounded


@workflow.defn(name=c.ORDER_WORKFLOW, sandboxed=False)
class OrderWorkflow:
    def __init__(self) -> None:
        self._intent_id = workflow.info().workflow_id
        self._account: str | None = None
        self._state = OrderState.ACCEPTED
        self._intent: Intent | None = None
        self._reply: PretradeReply | None = None
        self._fills: list[Fill] = []
        self._venue_lock = asyncio.Lock()  # one venue interaction at a time: submit, cancel, replace
        self._arrived = False
        self._arrival_waiters = 0
        self._cancel_result: CancelResult | None = None
        self._cancel_pending = False  # a cancel sent to the broker, not yet confirmed
        self._submitting = False  # the broker submit is on its way: the gateway may not know the order yet
        self._deferred_unknown: ExecutionEvent | None = None  # an UNKNOWN_ORDER heard meanwhile
        self._gateway_failed = False  # the latest gateway call never answered
        self._replacing = False
        self._reject_reason: RejectReason | None = None
        self._reject_message: str | None = None
        self._cancel_reason: CancelReason | None = None
        self._replaced_by: str | None = None
        self._lost_cause: str | None = None
        self._history: list[str] = []

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, raw_input: Any) -> OrderSnapshot:
        carry = OrderCarry.from_input(raw_input) if workflow.info().continued_run_id else None
        if carry is not None:
            carry.restore(self)
        else:
            await self._first_task(raw_input)
        await workflow.wait_condition(lambda: self._state.is_terminal or self._lost_cause is not None or self._history_is_long())
        if not self._state.is_terminal and self._lost_cause is None:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(OrderCarry.of(self).as_input())
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.snapshot()

    async def _first_task(self, raw_input: Any) -> None:
        raw = self._readable_intent(raw_input)
        if raw is not None:
            self._account = raw["account"]
            reply = await self._ask_account(raw)
            async with self._venue_lock:
                await self._open(reply)
        self._arrived = True
        self._upsert_all()  # one upsert for the first task's attributes and state changes
        # The account knows the arrival already when its own simulated venue ran it in the
        # verdict; whoever awaits the arrival gets the report as its answer.
        if self._arrival_waiters == 0 and not self._account_has_arrival:
            await self._report()

    @property
    def _account_has_arrival(self) -> bool:
        """The account's simulated venue ran the arrival with the verdict (and booked it)."""
        return self._reply is not None and self._reply.arrival is not None

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > HISTORY_EVENTS_PER_RUN or info.is_continue_as_new_suggested()

    def _readable_intent(self, raw_input: Any) -> dict[str, Any] | None:
        """Enough shape to reach the account; anything else ends REJECTED here, with a reason."""
        if not isinstance(raw_input, dict):
            self._reject(RejectReason.MALFORMED_INTENT, f"intent must be a JSON object, got {type(raw_input).__name__}")
            return None
        if raw_input.get("intent_id") not in (None, self._intent_id):
            self._reject(
                RejectReason.MALFORMED_INTENT, f"intent_id {str(raw_input['intent_id'])[:80]!r} differs from the workflow id {self._intent_id!r}"
            )
            return None
        if problem := short_text(raw_input.get("account"), "account"):
            self._reject(RejectReason.BAD_ACCOUNT, problem)
            return None
        return {**raw_input, "intent_id": self._intent_id}

    async def _ask_account(self, raw: dict[str, Any]) -> PretradeReply:
        assert self._account is not None
        call = AccountPretrade(account=self._account, request=PretradeRequest(intent_id=self._intent_id, raw_intent=raw))
        try:
            return await workflow.execute_local_activity("request_pretrade", call, result_type=PretradeReply, **ACCOUNT_CALL)
        except ActivityError:
            pass  # asked once more: the account may have taken the request late (same run, same update id: the same answer)
        try:
            return await workflow.execute_local_activity("request_pretrade", call, result_type=PretradeReply, **ACCOUNT_CALL)
        except ActivityError as err:
            return PretradeReply(
                approved=False, reason=RejectReason.UNKNOWN_ACCOUNT, message=f"account {self._account!r} did not answer: {err.cause or err}"
            )

    async def _open(self, reply: PretradeReply) -> None:
        self._reply = reply
        if reply.approved and reply.intent is None and reply.known is not None:  # closed already at the account
            self._adopt(reply.known)
            return
        if not reply.approved or reply.intent is None:
            if self._state is OrderState.ACCEPTED:
                self._reject(reply.reason or RejectReason.MALFORMED_INTENT, reply.message)
            return
        self._intent = reply.intent
        if reply.known is not None and self._adopt(reply.known):
            return
        if reply.arrival is not None:  # the simulated venue ran the arrival at the account: its events
            self._apply_events(reply.arrival)
            return
        if self._state is not OrderState.ACCEPTED:
            return  # canceled while the account was deciding: never sent
        self._submitting = True
        try:
            events = await self._venue_submit()
        finally:
            self._submitting = False
        deferred, self._deferred_unknown = self._deferred_unknown, None
        answered = any(e.kind is not ExecKind.UNKNOWN_ORDER for e in events if e.intent_id == self._intent_id)
        self._apply_events(events + ([deferred] if deferred is not None and not answered else []))

    def _upsert_all(self) -> None:
        attributes = [c.SA_ORDER_STATE.value_set(self._state.value)]
        if self._account is not None:
            attributes.append(c.SA_ACCOUNT.value_set(self._account))
        if self._intent is not None and self._reply is not None:
            attributes += [
                c.SA_SYMBOL.value_set(self._intent.symbol),
                c.SA_SIDE.value_set(self._intent.side.value),
                c.SA_BUCKET.value_set(self._intent.bucket.value),
                c.SA_INTENT_KIND.value_set(self._intent.kind.value),
                c.SA_VENUE.value_set(self._reply.venue.value),
            ]
        workflow.upsert_search_attributes(attributes)

    def _adopt(self, known: OrderReport) -> bool:
        """The account already knew this order (a reset run, a retried start): take its view —
        its fills are the venue's truth. True when that view is final."""
        for fill in known.fills:
            self._record_fill(fill)
        if known.lost_cause:
            self._lost_cause = known.lost_cause
            self._history.append(f"{workflow.now().isoformat()} ADOPTED → LOST: {known.lost_cause}")
            return True
        if known.state.is_terminal:
            self._reject_reason, self._reject_message = known.reject_reason, known.reject_message
            self._cancel_reason, self._replaced_by = known.cancel_reason, known.replaced_by
            self._set_state(known.state, "ADOPTED", "the account's record of this order")
            return True
        if known.state is not OrderState.ACCEPTED:
            self._set_state(known.state if self._filled else OrderState.WORKING, "ADOPTED", "the account's record: at the venue already")
            return True
        return False

    # ── the venue seam ───────────────────────────────────────────────────────────────────────
    def _sim_order(self) -> SimOrder:
        assert self._reply is not None
        return self._reply.sim_order(cum_qty=self._filled)

    def _broker(self) -> bool:
        return self._reply is not None and self._reply.venue is VenueKind.IBKR

    async def _venue_submit(self) -> list[ExecutionEvent]:
        if self._broker():
            return await self._gateway(IBKR_SUBMIT, self._ibkr_order())
        return await workflow.execute_local_activity(sim_submit, self._sim_order(), start_to_close_timeout=LOCAL)

    async def _venue_cancel(self) -> list[ExecutionEvent]:
        if self._broker():
            return await self._gateway(IBKR_CANCEL, self._intent_id)
        return await workflow.execute_local_activity(sim_cancel, self._sim_order(), start_to_close_timeout=LOCAL)

    async def _venue_precheck(self, replacement: Intent) -> str | None:
        if self._broker():
            return None  # the broker checks the replacement itself when it is placed
        order = self._sim_order().model_copy(update={"intent": replacement, "cum_qty": 0})
        return await workflow.execute_local_activity(sim_precheck, order, start_to_close_timeout=LOCAL)

    def _ibkr_order(self) -> IbkrOrder:
        intent = self._intent
        assert intent is not None
        return IbkrOrder(
            intent_id=intent.intent_id,
            account=intent.account,
            symbol=intent.symbol,
            side=intent.side.value,
            quantity=intent.quantity,
            order_type=intent.order_type.value,
            limit_price=intent.limit_price,
        )

    async def _gateway(self, activity: str, arg: Any) -> list[ExecutionEvent]:
        """A call to the broker gateway (its own task queue). A gateway that stays away is not a
        venue answer: the order keeps its state and the account's audit reads it back."""
        assert self._reply is not None
        self._gateway_failed = False
        try:
            return await workflow.execute_activity(
                activity,
                arg,
                task_queue=self._reply.venue_task_queue or DEFAULT_IBKR_TASK_QUEUE,
                result_type=list[ExecutionEvent],
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10), non_retryable_error_types=["IbkrCannotCancel"]),
            )
        except ActivityError as err:
            workflow.logger.error("broker gateway %s for %s failed: %s", activity, self._intent_id, err.cause or err)
            self._gateway_failed = True
            return []

    def _apply_events(self, events: list[ExecutionEvent]) -> None:
        events = [e for e in events if e.intent_id == self._intent_id]
        for n, event in enumerate(events):
            if event.kind is ExecKind.FILL:
                self._apply_fill(event)
            elif event.kind is ExecKind.ACCEPTED and self._state is OrderState.ACCEPTED:
                self._apply(OrderEvent.VENUE_ACKED, "acknowledged by the venue")
            elif event.kind is ExecKind.REJECTED and self._state is OrderState.ACCEPTED:
                self._reject(RejectReason.VENUE_REJECT, event.text or "refused by the venue", OrderEvent.VENUE_REJECTED)
            elif event.kind is ExecKind.UNKNOWN_ORDER and self._state.is_open and self._submitting:
                self._deferred_unknown = event  # judged when the submit answers
            elif event.kind is ExecKind.UNKNOWN_ORDER and self._state.is_open and self._venue_may_not_know(events[n + 1 :]):
                # Never a silent cancel: the order ends as it stands, LOST with the cause, and the
                # account records it LOST (releasing its potential) through the reconciliation path.
                self._lost_cause = f"the venue has no record of this order: {event.text or 'unknown order'}"
                self._history.append(f"{workflow.now().isoformat()} UNKNOWN_ORDER → LOST: {self._lost_cause}")
            elif event.kind in (ExecKind.CANCELED, ExecKind.EXPIRED) and self._state.is_open:
                if self._cancel_reason is None:
                    self._cancel_reason = CancelReason.EXPIRED_DAY if event.kind is ExecKind.EXPIRED else CancelReason.USER
                self._apply(OrderEvent.EXPIRED if event.kind is ExecKind.EXPIRED else OrderEvent.CANCEL_ACKED, event.text or event.kind.value)

    @staticmethod
    def _venue_may_not_know(later: list[ExecutionEvent]) -> bool:
        """An UNKNOWN_ORDER is final only when nothing after it says otherwise (a retried submit
        answers [UNKNOWN_ORDER, ACCEPTED] after placing it). One heard while the submit is on its
        way waits for the submit's answer: the gateway may not know yet what it is placing."""
        return all(e.kind is ExecKind.UNKNOWN_ORDER for e in later)

    def _apply_fill(self, event: ExecutionEvent) -> None:
        assert self._intent is not None
        if event.exec_id is None or event.last_px is None or any(f.fill_id == event.exec_id for f in self._fills):
            return
        quantity = event.last_qty
        if self._reply is not None and self._reply.venue is VenueKind.SIM:
            # Two simulated steps (the cycle's match, a cancel's crossing fill) may race for the
            # same remainder; the order is the arbiter. A broker's fills are truth and are kept.
            quantity = min(quantity, self._intent.quantity - self._filled)
        if quantity <= 0:
            return
        fill = Fill(
            fill_id=event.exec_id,
            intent_id=self._intent_id,
            symbol=self._intent.symbol,
            bucket=self._intent.bucket,
            side=self._intent.side,
            quantity=quantity,
            price=event.last_px,
        )
        self._record_fill(fill)
        metrics.fill_applied(self._intent.kind.value)
        if self._state.is_open:
            self._apply(fill_event(self._filled, self._intent.quantity), f"fill {quantity} @ {fill.price:.2f} ({fill.fill_id})")

    def _record_fill(self, fill: Fill) -> None:
        if all(f.fill_id != fill.fill_id for f in self._fills):
            self._fills.append(fill)

    # ── state ────────────────────────────────────────────────────────────────────────────────
    @property
    def _filled(self) -> int:
        return sum(f.quantity for f in self._fills)

    def _apply(self, event: OrderEvent, note: str) -> None:
        self._set_state(transition(self._state, event), event.value, note)

    def _set_state(self, state: OrderState, label: str, note: str) -> None:
        changed = state is not self._state
        self._state = state
        self._history.append(f"{workflow.now().isoformat()} {label} → {state.value}: {note}")
        del self._history[:-HISTORY_LINES_KEPT]
        if changed:
            if self._arrived:  # the first task upserts once, at its end
                workflow.upsert_search_attributes([c.SA_ORDER_STATE.value_set(state.value)])
            if state.is_terminal:
                reason = self._reject_reason or self._cancel_reason
                metrics.order_finished(state.value, reason.value if reason else None)
        workflow.set_current_details(self._details())

    def _reject(self, reason: RejectReason, message: str, event: OrderEvent = OrderEvent.PRETRADE_REJECTED) -> None:
        self._reject_reason, self._reject_message = reason, message[:500]
        self._apply(event, f"{reason.value}: {message[:500]}")

    def _details(self) -> str:
        head = self._intent.summary() if self._intent else self._intent_id
        qty = self._intent.quantity if self._intent else 0
        extra = f" ({self._reject_reason.value})" if self._reject_reason else ""
        extra += f" ({self._cancel_reason.value})" if self._cancel_reason else ""
        return f"**{self._state.value}**{extra} — filled {self._filled}/{qty}\n\n{head}"

    def report(self) -> OrderReport:
        return OrderReport(
            intent_id=self._intent_id,
            state=self._state,
            quantity=self._intent.quantity if self._intent else 0,
            filled_quantity=self._filled,
            fills=list(self._fills),
            reject_reason=self._reject_reason,
            reject_message=self._reject_message,
            cancel_reason=self._cancel_reason,
            replaced_by=self._replaced_by,
            lost_cause=self._lost_cause,
        )

    async def _report(self) -> None:
        """Tell the account (when it is not the one asking): a missing account is not an error."""
        if self._account is None or self._reply is None or not self._reply.approved:
            return  # never reached the account, or refused there (the account recorded that)
        call = AccountReport(account=self._account, report=self.report())
        try:
            await workflow.execute_local_activity("report_to_account", call, **ACCOUNT_CALL)
        except ActivityError:
            workflow.logger.warning("report of %s to account %s failed; the account will reconcile", self._intent_id, self._account)

    # ── messages from the account and the venue ──────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_ARRIVAL)
    async def arrival(self) -> OrderReport:
        self._arrival_waiters += 1
        await workflow.wait_condition(lambda: self._arrived)
        return self.report()

    @workflow.update(name=c.UPDATE_VENUE_EXECUTIONS)
    def venue_executions(self, raw: Any) -> OrderReport:
        self._apply_events(parse_list(ExecutionEvent, raw))
        return self.report()

    @venue_executions.validator
    def _validate_executions(self, raw: Any) -> None:
        events = parse_list(ExecutionEvent, raw)
        if self._intent is None:
            raise ValueError(f"order {self._intent_id} was never at the venue")
        if len(events) > 100:
            raise ValueError("at most 100 events per delivery")

    @workflow.signal(name=c.SIGNAL_VENUE_EVENT)
    async def venue_event(self, event: ExecutionEvent) -> None:
        """A broker gateway's asynchronous event (fills, cancels, expiries)."""
        if self._intent is None or event.intent_id != self._intent_id:
            return
        self._apply_events([event])
        await self._report()

    # ── cancel ───────────────────────────────────────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_CANCEL)
    async def cancel(self, raw: Any) -> CancelResult:
        result = await self._cancel(parse(CancelRequest, raw))
        await self._report()
        return result

    @cancel.validator
    def _validate_cancel(self, raw: Any) -> None:
        request = parse(CancelRequest, raw)
        if request.reason in RIG_CANCEL_REASONS:
            raise ValueError(f"cancel reason {request.reason.value} is the rig's own; a user cancel says USER")
        self._validate_any_cancel()

    @workflow.update(name=c.UPDATE_RIG_CANCEL)
    async def rig_cancel(self, raw: Any) -> CancelResult:
        return await self._cancel(parse(CancelRequest, raw))

    @rig_cancel.validator
    def _validate_rig_cancel(self, raw: Any) -> None:
        parse(CancelRequest, raw)
        self._validate_any_cancel()

    def _validate_any_cancel(self) -> None:
        if self._cancel_result is None and not self._cancel_pending and self._state.is_terminal:
            raise ValueError(self._cancel_answer(False, f"order {self._intent_id} is already {self._state.value}: nothing to cancel").message)

    async def _cancel(self, request: CancelRequest) -> CancelResult:
        # A cancel that overtakes the verdict waits for it (like a cancel of a pending-new order):
        # the simulated venue runs the arrival with the verdict, so only then is it known whether
        # there is anything left to cancel. The wait is bounded by the pre-trade call's own.
        await workflow.wait_condition(lambda: self._arrived)
        async with self._venue_lock:
            if self._cancel_result is not None:
                return self._cancel_result  # idempotent: a repeat gets the first answer
            if self._state.is_terminal and not self._cancel_pending:
                return self._cancel_answer(
                    False, f"order {self._intent_id} is already {self._state.value}: nothing to cancel", CancelRefusal.ORDER_CLOSED
                )
            # At a broker even an order still ACCEPTED after its submit may be live there (IB's
            # first word came late): the cancel goes to the broker, never only to the book.
            if self._state.is_open and (self._state is not OrderState.ACCEPTED or self._broker()) and not self._cancel_pending:
                self._cancel_reason = request.reason  # a broker's CANCELED may arrive by signal, later
                events = await self._venue_cancel()
                self._apply_events([e for e in events if e.kind is ExecKind.FILL])
                if self._broker() and self._state.is_open:
                    if self._gateway_failed:  # not known to have reached the broker: a repeat sends it again
                        self._cancel_reason = None
                        return self._cancel_answer(False, "the broker gateway did not answer: the cancel may not have reached the broker; ask again")
                    self._apply_events([e for e in events if e.kind is not ExecKind.FILL])
                    self._cancel_pending = True  # sent: a repeat waits for the broker, never sends again
            if self._cancel_pending and self._state.is_open and self._lost_cause is None and not await self._settles_within(BROKER_CANCEL_WAIT):
                return self._cancel_answer(True, "cancel pending at the broker: the order ends when the broker confirms")
            if self._lost_cause is not None:  # never a silent cancel: the order is LOST, said so
                self._cancel_reason = None
                return self._cancel_answer(
                    False, f"the venue has no record of this order: recorded LOST ({self._lost_cause})", CancelRefusal.ORDER_CLOSED
                )
            if self._state is OrderState.FILLED:
                self._cancel_reason = None
                self._apply(OrderEvent.CANCEL_REFUSED, "too late to cancel: a fill completed the order first")
                result = self._cancel_answer(
                    False, "too late to cancel: a fill completed the order first; the order is FILLED", CancelRefusal.TOO_LATE_TO_CANCEL
                )
            else:
                self._cancel_reason = request.reason
                if self._state.is_open:
                    self._apply(OrderEvent.CANCEL_ACKED, f"cancel ({request.reason.value}) {request.note[:200]}".strip())
                result = self._cancel_answer(True, f"canceled with {self._filled} filled")
            self._cancel_result = result
            return result

    async def _settles_within(self, wait: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: self._state.is_terminal or self._lost_cause is not None, timeout=wait)
            return True
        except TimeoutError:
            return False

    def _cancel_answer(self, accepted: bool, message: str, refusal: CancelRefusal | None = None) -> CancelResult:
        return CancelResult(
            intent_id=self._intent_id,
            accepted=accepted,
            state=self._state,
            filled_quantity=self._filled,
            message=message,
            refusal=refusal,
            report=self.report(),
        )

    # ── replace (FIX OrderCancelReplaceRequest) ──────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_REPLACE)
    async def replace(self, raw: Any) -> ReplaceResult:
        result = await self._replace(parse(ReplaceRequest, raw), kind=None, price_rule=None)
        await self._report()
        return result

    @replace.validator
    def _validate_replace(self, raw: Any) -> None:
        if self._intent is not None and self._intent.kind.is_derisk:
            raise ValueError(f"order {self._intent_id} is the risk cycle's own {self._intent.kind.value}: only the cycle replaces it")
        self._check_replace(parse(ReplaceRequest, raw))

    def _check_replace(self, request: ReplaceRequest) -> None:
        if self._state.is_terminal:
            raise ValueError(f"order {self._intent_id} is already {self._state.value}: nothing to replace")
        if self._state is OrderState.ACCEPTED or self._intent is None:
            raise ValueError(f"order {self._intent_id} is not working yet: nothing to replace")
        if self._replacing:
            raise ValueError(f"order {self._intent_id} has a replace pending already")
        if isinstance(request.quantity, bool) or not (0 < request.quantity <= 1_000_000_000):
            raise ValueError(f"replace quantity must be a whole number between 1 and 1,000,000,000, got {request.quantity}")
        if request.limit_price is not None and not (0 < request.limit_price <= 10_000_000):
            raise ValueError(f"replace limit_price must be a finite number > 0 and at most 10,000,000, got {request.limit_price}")

    @workflow.update(name=c.UPDATE_RIG_REPLACE)
    async def rig_replace(self, raw: Any) -> ReplaceResult:
        request = parse(RigReplaceRequest, raw)
        return await self._replace(request, kind=request.kind, price_rule=request.price_rule)

    @rig_replace.validator
    def _validate_rig_replace(self, raw: Any) -> None:
        self._check_replace(parse(RigReplaceRequest, raw))

    async def _replace(self, request: ReplaceRequest, kind: IntentKind | None, price_rule: str | None) -> ReplaceResult:
        self._replacing = True
        try:
            async with self._venue_lock:
                return await self._replace_locked(request, kind, price_rule)
        finally:
            self._replacing = False  # cleared on every exit path

    async def _replace_locked(self, request: ReplaceRequest, kind: IntentKind | None, price_rule: str | None) -> ReplaceResult:
        if self._state.is_terminal or self._intent is None:
            return self._replace_answer(
                False, f"order {self._intent_id} is already {self._state.value}: nothing to replace", CancelRefusal.ORDER_CLOSED
            )
        if request.quantity <= self._filled:
            return await self._replace_down_to_filled(request.quantity)
        raw = self._replacement(request, kind, price_rule)
        refusal = await self._venue_precheck(Intent.model_validate(raw | {"bucket": self._intent.bucket}))
        if refusal:
            return self._refuse_replace(f"the venue would refuse the replacement: {refusal}", CancelRefusal.VENUE)
        assert self._account is not None
        check = AccountReplaceCheck(account=self._account, check=ReplaceCheck(original_id=self._intent_id, raw_replacement=raw))
        try:
            verdict = await workflow.execute_local_activity("request_replace_check", check, result_type=PretradeReply, **ACCOUNT_CALL)
        except ActivityError as err:
            return self._refuse_replace(f"the account did not answer: {err.cause or err}", CancelRefusal.PRETRADE)
        if not verdict.approved:
            reason = verdict.reason.value if verdict.reason else "REFUSED"
            return self._refuse_replace(f"replacement refused by pre-trade ({reason}): {verdict.message}", CancelRefusal.PRETRADE, verdict.reason)
        self._apply_events([e for e in await self._venue_cancel() if e.kind is ExecKind.FILL])
        if self._state is OrderState.FILLED:
            return self._refuse_replace(
                "too late to replace: a fill completed the order first; the order is FILLED", CancelRefusal.TOO_LATE_TO_CANCEL
            )
        raw["quantity"] = request.quantity - self._filled  # a crossing partial fill shrinks the replacement
        self._replaced_by, self._cancel_reason = raw["intent_id"], CancelReason.REPLACED
        self._apply(OrderEvent.CANCEL_ACKED, f"replaced by {self._replaced_by}")
        try:
            started: Reconciled = await workflow.execute_local_activity(
                "start_replacement", StartReplacement(raw_intent=raw), result_type=Reconciled, **ACCOUNT_CALL
            )
        except ActivityError as err:  # the account's audit reads the replacement back (or loses it)
            workflow.logger.warning("replacement %s did not start: %s", raw["intent_id"], err.cause or err)
            started = Reconciled(intent_id=raw["intent_id"], status="UNKNOWN")
        return self._replace_answer(True, f"replaced by {self._replaced_by}", new_id=self._replaced_by, new_report=started.report)

    async def _replace_down_to_filled(self, quantity: int) -> ReplaceResult:
        self._apply_events([e for e in await self._venue_cancel() if e.kind is ExecKind.FILL])
        if self._state is not OrderState.FILLED:
            self._apply(OrderEvent.REDUCED_TO_FILLED, f"replaced down to {quantity} with {self._filled} filled")
        return self._replace_answer(True, f"quantity {quantity} ≤ filled {self._filled}: order FILLED")

    def _refuse_replace(self, message: str, refusal: CancelRefusal, reason: RejectReason | None = None) -> ReplaceResult:
        if self._state.is_open:
            self._apply(OrderEvent.REPLACE_REFUSED, message[:300])
        return self._replace_answer(False, message, refusal, reject_reason=reason)

    def _replacement(self, request: ReplaceRequest, kind: IntentKind | None, price_rule: str | None) -> dict[str, Any]:
        intent = self._intent
        assert intent is not None
        return {
            "intent_id": c.next_replacement_id(intent.intent_id),
            "account": intent.account,
            "symbol": intent.symbol,
            "bucket": intent.bucket.value,
            "side": intent.side.value,
            "quantity": request.quantity - self._filled,
            "order_type": OrderType.LIMIT.value if request.limit_price is not None else intent.order_type.value,
            "limit_price": request.limit_price if request.limit_price is not None else intent.limit_price,
            "kind": (kind or intent.kind).value,
            "reduce_only": intent.reduce_only,
            "replaces": intent.intent_id,
            "price_rule": price_rule or intent.price_rule.value,
            "issued_in_mode": intent.issued_in_mode.value,
        }

    def _replace_answer(
        self,
        accepted: bool,
        message: str,
        refusal: CancelRefusal | None = None,
        *,
        new_id: str | None = None,
        reject_reason: RejectReason | None = None,
        new_report: OrderReport | None = None,
    ) -> ReplaceResult:
        return ReplaceResult(
            intent_id=self._intent_id,
            accepted=accepted,
            state=self._state,
            filled_quantity=self._filled,
            new_intent_id=new_id,
            message=message,
            refusal=refusal,
            reject_reason=reject_reason,
            report=self.report(),
            new_report=new_report,
        )

    # ── queries ──────────────────────────────────────────────────────────────────────────────
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
            lost_cause=self._lost_cause,
        )
