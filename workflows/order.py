"""OrderWorkflow: one order's durable lifecycle. Workflow id = intent_id.

First workflow task: pre-trade (an Update on the account, from a local activity) → the venue
(with the simulated exchange the account ran the arrival with its verdict; a broker is asked
here) → the report. An order that fills at arrival is done in that one task. Afterwards it only
reacts: the venue's executions (the simulated exchange's step, delivered by the account as an
update; a broker gateway's events by signal), and cancel and replace requests
(workflows/order_requests.py). The order has no timers of its own: a time-skipped day moves it
through its account.

Its state is one record (protocol/order_record.py), carried as-is through continue-as-new and
answered as-is to the `state` query; the fold of the venue's events into it is domain/order.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.order_calls import OrderCalls
    from domain.enums import LOST, OrderState, RejectReason
    from domain.execution import ExecKind, ExecutionEvent
    from domain.limits import short_text
    from domain.order import OrderReport, Step
    from protocol import contract as c
    from protocol.account_requests import AccountPretrade, AccountReport
    from protocol.messages import (
        CancelRequest,
        CancelResult,
        PretradeReply,
        PretradeRequest,
        ReplaceRequest,
        ReplaceResult,
        RigReplaceRequest,
    )
    from protocol.order_record import OrderRecord
    from protocol.parse import REFUSED_PAYLOAD, first_line
    from workflows import metrics
    from workflows.failures import LOCAL_ACTIVITY_FAILED
    from workflows.order_requests import OrderRequests, check_cancel, check_replace, sensible_executions
    from workflows.order_venue import OrderVenue

# Asking the account: retried while it is busy (continue-as-new, update limits), then given up.
ACCOUNT_CALL_TIMEOUT = timedelta(seconds=30)
ACCOUNT_CALL_GIVES_UP = timedelta(minutes=3)
ACCOUNT_CALL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5), maximum_attempts=40)
HISTORY_EVENTS_PER_RUN = 2_000  # continue-as-new beyond this: a long-lived order stays bounded
# Patches: what a running order shows changed here (replayed histories keep the old behaviour).
PENDING_VISIBLE = "pending-states-visible"  # PENDING_CANCEL / PENDING_REPLACE in the OrderState search attribute
LOST_VISIBLE = "lost-order-state"  # a LOST order's OrderState ends on LOST


@workflow.defn(name=c.ORDER_WORKFLOW, sandboxed=False)
class OrderWorkflow:
    def __init__(self) -> None:
        self._r = OrderRecord(intent_id=workflow.info().workflow_id)
        self._arrived = False
        self._arrival_waiters = 0
        self._shown: str | None = None  # the OrderState search attribute's value
        self._requests = OrderRequests(self._r, self._venue, self._take, self._report, self._arrival)

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, raw_input: Any) -> OrderRecord:
        carried = OrderRecord.from_input(raw_input, self._r.intent_id) if workflow.info().continued_run_id else None
        if carried is not None:
            self._r = self._requests.record = carried
            self._arrived, self._shown = True, carried.state.value
        else:
            await self._first_task(raw_input)
        await workflow.wait_condition(lambda: self._r.state.is_terminal or self._r.lost_cause is not None or self._history_is_long())
        if not self._r.state.is_terminal and self._r.lost_cause is None:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(self._r.as_input())
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._r.lost_cause is not None and workflow.patched(LOST_VISIBLE):
            workflow.upsert_search_attributes([c.SA_ORDER_STATE.value_set(LOST)])  # the UI filters OrderState="LOST"
        return self._r

    async def _first_task(self, raw_input: Any) -> None:
        raw = self._readable_intent(raw_input)
        if raw is not None:
            self._r.account = raw["account"]
            reply = await self._ask_account(raw)
            async with self._requests.lock:
                await self._open(reply)
        self._arrived = True
        self._upsert_all()  # one upsert for the first task's attributes and state changes
        # The account knows the arrival already when its own simulated exchange ran it with the
        # verdict; whoever awaits the arrival gets the report as its answer.
        if self._arrival_waiters == 0 and not (self._r.reply is not None and self._r.reply.arrival is not None):
            await self._report()

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > HISTORY_EVENTS_PER_RUN or info.is_continue_as_new_suggested()

    def _readable_intent(self, raw_input: Any) -> dict[str, Any] | None:
        """Enough shape to reach the account; anything else ends REJECTED here, with a reason."""
        intent_id = self._r.intent_id
        if isinstance(raw_input, str) and raw_input.startswith(REFUSED_PAYLOAD):
            self._take([self._r.reject(RejectReason.MALFORMED_INTENT, raw_input)])
            return None
        if not isinstance(raw_input, dict):
            self._take([self._r.reject(RejectReason.MALFORMED_INTENT, f"intent must be a JSON object, got {type(raw_input).__name__}")])
            return None
        if raw_input.get("intent_id") not in (None, intent_id):
            message = f"intent_id {str(raw_input['intent_id'])[:80]!r} differs from the workflow id {intent_id!r}"
            self._take([self._r.reject(RejectReason.MALFORMED_INTENT, message)])
            return None
        if problem := short_text(raw_input.get("account"), "account"):
            self._take([self._r.reject(RejectReason.BAD_ACCOUNT, problem)])
            return None
        return {**raw_input, "intent_id": intent_id}

    async def _ask_account(self, raw: dict[str, Any]) -> PretradeReply:
        account = self._r.account
        assert account is not None
        call = AccountPretrade(account=account, request=PretradeRequest(intent_id=self._r.intent_id, raw_intent=raw))
        for attempt in (1, 2):  # asked once more: the account may have taken the request late (same update id: the same answer)
            try:
                return await workflow.execute_local_activity_method(
                    OrderCalls.request_pretrade,
                    call,
                    start_to_close_timeout=ACCOUNT_CALL_TIMEOUT,
                    schedule_to_close_timeout=ACCOUNT_CALL_GIVES_UP,
                    retry_policy=ACCOUNT_CALL_RETRY,
                )
            except LOCAL_ACTIVITY_FAILED as err:
                if attempt == 2:
                    return PretradeReply(
                        approved=False, reason=RejectReason.UNKNOWN_ACCOUNT, message=f"account {account!r} did not answer: {first_line(err)}"
                    )
        raise AssertionError("unreachable")

    async def _open(self, reply: PretradeReply) -> None:
        r = self._r
        r.reply = reply
        if reply.approved and reply.intent is None and reply.known is not None:  # closed already at the account
            self._adopt(reply.known)
            return
        if not reply.approved or reply.intent is None:
            if r.state is OrderState.ACCEPTED:
                self._take([r.reject(reply.reason or RejectReason.MALFORMED_INTENT, reply.message)])
            return
        r.intent = reply.intent
        if reply.known is not None and self._adopt(reply.known):
            return
        venue = self._venue()
        if reply.arrival is not None:  # the simulated exchange ran the arrival at the account: its events
            self._take(r.fold(reply.arrival, cap_at_quantity=not venue.broker).steps)
            return
        if r.state is not OrderState.ACCEPTED:
            return  # canceled while the account was deciding: never sent
        self._requests.submitting = True
        try:
            events = await venue.submit(reply.intent, r.filled)
        finally:
            self._requests.submitting = False
        deferred, self._requests.deferred_unknown = self._requests.deferred_unknown, None
        answered = any(e.kind is not ExecKind.UNKNOWN_ORDER for e in events if e.intent_id == r.intent_id)
        self._take(r.fold(events + ([deferred] if deferred is not None and not answered else []), cap_at_quantity=not venue.broker).steps)

    def _adopt(self, known: OrderReport) -> bool:
        """The account already knew this order (a reset run, a retried start): take its view —
        its fills are the venue's truth. True when that view is final."""
        r, stamp = self._r, workflow.now().isoformat()
        for fill in known.fills:
            r.record_fill(fill)
        if known.lost_cause:
            r.lost_cause = known.lost_cause
            r.note(stamp, f"ADOPTED → LOST: {known.lost_cause}")
            return True
        if known.state.is_terminal:
            r.reject_reason, r.reject_message = known.reject_reason, known.reject_message
            r.cancel_reason, r.replaced_by = known.cancel_reason, known.replaced_by
            self._take([r.set_state(known.state, "ADOPTED", "the account's record of this order")])
            return True
        if known.state is not OrderState.ACCEPTED:
            r.acknowledged = True
            self._take([r.set_state(known.state if r.filled else OrderState.WORKING, "ADOPTED", "the account's record: at the venue already")])
            return True
        return False

    def _venue(self) -> OrderVenue:
        assert self._r.reply is not None
        return OrderVenue(self._r.reply)

    # ── what a change shows ──────────────────────────────────────────────────────────────────
    def _take(self, steps: list[Step]) -> None:
        """A fold's or a request's steps: a history line each; a state change shown in the
        search attributes (after the first task, which upserts once at its end) and counted."""
        r, stamp = self._r, workflow.now().isoformat()
        for step in steps:
            r.note(stamp, step.line)
            if step.fill is not None and r.intent is not None:
                metrics.fill_applied(r.intent.kind.value)
            if step.changed:
                if self._arrived:
                    self._show(step.state)
                if step.state.is_terminal:
                    reason = r.reject_reason or r.cancel_reason
                    metrics.order_finished(step.state.value, reason.value if reason else None)
        if steps:
            workflow.set_current_details(self._details())

    def _show(self, state: OrderState) -> None:
        if state.is_pending and not workflow.patched(PENDING_VISIBLE):
            return  # recorded before pending states were shown: they stayed WORKING / PARTIAL_FILL
        if state.value != self._shown:
            workflow.upsert_search_attributes([c.SA_ORDER_STATE.value_set(state.value)])
            self._shown = state.value

    def _upsert_all(self) -> None:
        r = self._r
        attributes = [c.SA_ORDER_STATE.value_set(r.state.value)]
        if r.account is not None:
            attributes.append(c.SA_ACCOUNT.value_set(r.account))
        if r.intent is not None and r.reply is not None:
            attributes += [
                c.SA_SYMBOL.value_set(r.intent.symbol),
                c.SA_SIDE.value_set(r.intent.side.value),
                c.SA_BUCKET.value_set(r.intent.bucket.value),
                c.SA_INTENT_KIND.value_set(r.intent.kind.value),
                c.SA_VENUE.value_set(r.reply.venue.value),
            ]
        workflow.upsert_search_attributes(attributes)
        self._shown = r.state.value

    def _details(self) -> str:
        r = self._r
        head = r.intent.summary() if r.intent else r.intent_id
        extra = f" ({r.reject_reason.value})" if r.reject_reason else ""
        extra += f" ({r.cancel_reason.value})" if r.cancel_reason else ""
        return f"**{r.state.value}**{extra} — filled {r.filled}/{r.quantity}\n\n{head}"

    async def _report(self) -> None:
        """Tell the account (when it is not the one asking): a missing account is not an error."""
        r = self._r
        if r.account is None or r.reply is None or not r.reply.approved:
            return  # never reached the account, or refused there (the account recorded that)
        call = AccountReport(account=r.account, report=r.report(released=r.released))
        try:
            await workflow.execute_local_activity_method(
                OrderCalls.report_to_account,
                call,
                start_to_close_timeout=ACCOUNT_CALL_TIMEOUT,
                schedule_to_close_timeout=ACCOUNT_CALL_GIVES_UP,
                retry_policy=ACCOUNT_CALL_RETRY,
            )
        except LOCAL_ACTIVITY_FAILED:
            workflow.logger.warning("report of %s to account %s failed; the account will reconcile", r.intent_id, r.account)

    async def _arrival(self) -> None:
        await workflow.wait_condition(lambda: self._arrived)

    # ── messages from the account and the venue ──────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_ARRIVAL)
    async def arrival(self) -> OrderReport:
        self._arrival_waiters += 1
        await self._arrival()
        return self._r.report(released=self._r.released)

    @arrival.validator
    def _validate_arrival(self) -> None:
        """No condition of its own: the rig's signature is checked before it (worker/signing.py)."""

    @workflow.update(name=c.UPDATE_VENUE_EXECUTIONS)
    def venue_executions(self, events: list[ExecutionEvent]) -> OrderReport:
        self._take(self._r.fold(events, cap_at_quantity=not self._venue().broker).steps)
        return self._r.report(released=self._r.released)

    @venue_executions.validator
    def _validate_executions(self, events: list[ExecutionEvent]) -> None:
        if self._r.intent is None or self._r.reply is None:
            raise ValueError(f"order {self._r.intent_id} was never at the venue")
        if len(events) > 100:
            raise ValueError("at most 100 events per delivery")
        if problem := sensible_executions(self._r, events):
            raise ValueError(problem)

    @workflow.signal(name=c.SIGNAL_VENUE_EVENT)
    async def venue_event(self, event: ExecutionEvent) -> None:
        """A broker gateway's asynchronous event (fills, cancels, expiries)."""
        r = self._r
        if r.intent is None or r.reply is None or event.intent_id != r.intent_id:
            return
        if problem := sensible_executions(r, [event]):
            workflow.logger.warning("venue event for %s refused: %s", r.intent_id, problem)
            return
        folded = r.fold([event], cap_at_quantity=not self._venue().broker, submitting=self._requests.submitting)
        if folded.deferred_unknown is not None:
            self._requests.deferred_unknown = folded.deferred_unknown  # judged when the submit answers
        self._take(folded.steps)
        await self._report()

    # ── cancel and replace (workflows/order_requests.py) ─────────────────────────────────────
    @workflow.update(name=c.UPDATE_CANCEL)
    async def cancel(self, request: CancelRequest) -> CancelResult:
        result = await self._requests.cancel(request)
        await self._report()
        return result

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        check_cancel(self._r, request, by_the_rig=False)

    @workflow.update(name=c.UPDATE_RIG_CANCEL)
    async def rig_cancel(self, request: CancelRequest) -> CancelResult:
        return await self._requests.cancel(request)

    @rig_cancel.validator
    def _validate_rig_cancel(self, request: CancelRequest) -> None:
        check_cancel(self._r, request, by_the_rig=True)

    @workflow.update(name=c.UPDATE_REPLACE)
    async def replace(self, request: ReplaceRequest) -> ReplaceResult:
        result = await self._requests.replace(request, kind=None, price_rule=None)
        await self._report()
        return result

    @replace.validator
    def _validate_replace(self, request: ReplaceRequest) -> None:
        if self._r.intent is not None and self._r.intent.kind.is_derisk:
            raise ValueError(f"order {self._r.intent_id} is the risk cycle's own {self._r.intent.kind.value}: only the cycle replaces it")
        check_replace(self._r, request)

    @workflow.update(name=c.UPDATE_RIG_REPLACE)
    async def rig_replace(self, request: RigReplaceRequest) -> ReplaceResult:
        return await self._requests.replace(request, kind=request.kind, price_rule=request.price_rule)

    @rig_replace.validator
    def _validate_rig_replace(self, request: RigReplaceRequest) -> None:
        check_replace(self._r, request)

    # ── query ────────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def snapshot(self) -> OrderRecord:
        return self._r
