"""An order's cancel and replace (FIX OrderCancelRequest / OrderCancelReplaceRequest), as states
of its lifecycle: PENDING_CANCEL / PENDING_REPLACE from the request until the venue's answer.

- Cancel: idempotent (a repeat gets the first answer); a fill that completes the order first
  answers "too late to cancel" and the order is FILLED. At a broker the cancel's verdict may be
  pending (a repeat waits for it, never sends again), refused (the order works on; asked again,
  it is sent again) or the broker may not know the order (LOST, said so).
- Replace: the replacement is checked in full (the venue's collar, the account's pre-trade)
  before anything changes; then the original is canceled and the replacement — sized from what
  actually filled, `<id>.R<n>` — started. At a broker the replacement waits for the broker's last
  word on the original: refused when the broker refused the cancel, never answered, or the
  original filled first; never two live orders for one intent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.order_calls import OrderCalls
    from domain.enums import CancelReason, IntentKind, OrderState, OrderType, PriceRule, ReconcileStatus, RejectReason, Side
    from domain.execution import ExecKind, ExecutionEvent
    from domain.lifecycle import OrderEvent
    from domain.models import Intent
    from domain.order import OrderReport, Step
    from protocol import contract as c
    from protocol.account_requests import AccountReplaceCheck, StartReplacement
    from protocol.messages import (
        RIG_CANCEL_REASONS,
        CancelRefusal,
        CancelRequest,
        CancelResult,
        ReplaceCheck,
        ReplaceRequest,
        ReplaceResult,
        VenueKind,
    )
    from protocol.order_record import OrderRecord, Reconciled
    from protocol.parse import first_line
    from venues.ibkr.models import CancelVerdict
    from workflows.failures import LOCAL_ACTIVITY_FAILED
    from workflows.order_venue import BROKER_LAST_WORD, OrderVenue

BROKER_CANCEL_WAIT = timedelta(seconds=30)  # a broker confirms a cancel asynchronously
ACCOUNT_CALL_TIMEOUT = timedelta(seconds=30)
ACCOUNT_CALL_GIVES_UP = timedelta(minutes=3)


class OrderRequests:
    def __init__(
        self,
        record: OrderRecord,
        venue: Callable[[], OrderVenue],
        take: Callable[[list[Step]], None],
        report: Callable[[], Awaitable[None]],
        arrival: Callable[[], Awaitable[None]],
    ) -> None:
        self.record = record
        self._venue = venue
        self._take = take
        self._report = report
        self._arrival = arrival
        self.lock = asyncio.Lock()  # one venue interaction at a time: submit, cancel, replace
        self.submitting = False  # the broker submit is on its way: the gateway may not know the order yet
        self.deferred_unknown: ExecutionEvent | None = None  # an UNKNOWN_ORDER heard meanwhile

    # ── cancel ───────────────────────────────────────────────────────────────────────────────
    async def cancel(self, request: CancelRequest) -> CancelResult:
        # A cancel that overtakes the verdict waits for it (like a cancel of a pending-new order):
        # the simulated exchange runs the arrival with the verdict, so only then is it known
        # whether there is anything left to cancel.
        await self._arrival()
        async with self.lock:
            r = self.record
            if r.cancel_result is not None:
                return r.cancel_result  # idempotent: a repeat gets the first answer
            if r.state.is_terminal:
                return self._cancel_answer(False, f"order {r.intent_id} is already {r.state.value}: nothing to cancel", CancelRefusal.ORDER_CLOSED)
            if r.state is not OrderState.PENDING_CANCEL:  # a repeat of a pending cancel waits for it, never sends again
                r.cancel_reason = request.reason  # a broker's CANCELED may arrive by signal, later
                self._take([r.apply(OrderEvent.CANCEL_REQUESTED, f"cancel ({request.reason.value}) {request.note[:200]}".strip())])
                refused = await self._send_cancel(request)
                if refused is not None:
                    return refused
            return await self._cancel_settled(request)

    async def _send_cancel(self, request: CancelRequest) -> CancelResult | None:
        """The cancel at the venue; an answer when the venue (or its gateway) refused it."""
        r, venue = self.record, self._venue()
        outcome = await venue.cancel(r.intent_id, r.filled) if r.acknowledged or venue.broker else None
        if outcome is None and venue.broker:  # not known to have reached the broker: a repeat sends it again
            self._resume("the broker gateway did not answer")
            return self._cancel_answer(False, "the broker gateway did not answer: the cancel may not have reached the broker; ask again")
        if outcome is not None:
            events = outcome.events if venue.broker else [e for e in outcome.events if e.kind is ExecKind.FILL]
            self._take(r.fold(events, cap_at_quantity=not venue.broker).steps)
            if outcome.verdict is CancelVerdict.REFUSED and r.state is OrderState.PENDING_CANCEL:
                self._resume(outcome.text or "the broker refused the cancel")
                return self._cancel_answer(False, f"the broker refused the cancel: {outcome.text}; ask again to send it again", CancelRefusal.VENUE)
        return None

    async def _cancel_settled(self, request: CancelRequest) -> CancelResult:
        r, venue = self.record, self._venue()
        if venue.broker and r.state is OrderState.PENDING_CANCEL and r.lost_cause is None and not await self._settles_within(BROKER_CANCEL_WAIT):
            return self._cancel_answer(True, "cancel pending at the broker: the order ends when the broker confirms")
        if r.lost_cause is not None:  # never a silent cancel: the order is LOST as it stood, said so
            self._resume("the venue has no record of this order")
            return self._cancel_answer(False, f"the venue has no record of this order: recorded LOST ({r.lost_cause})", CancelRefusal.ORDER_CLOSED)
        if r.state is OrderState.FILLED:
            r.cancel_reason = None
            self._take([r.apply(OrderEvent.CANCEL_REFUSED, "too late to cancel: a fill completed the order first")])
            result = self._cancel_answer(
                False, "too late to cancel: a fill completed the order first; the order is FILLED", CancelRefusal.TOO_LATE_TO_CANCEL
            )
        else:
            if r.state.is_open:
                r.cancel_reason = request.reason
                self._take([r.apply(OrderEvent.CANCEL_ACKED, f"cancel ({request.reason.value}) {request.note[:200]}".strip())])
            result = self._cancel_answer(True, f"canceled with {r.filled} filled")
        r.cancel_result = result
        return result

    def _resume(self, why: str) -> None:
        """A cancel that did not happen: the order works on as it stood."""
        r = self.record
        r.cancel_reason = None
        if r.state.is_pending:
            self._take([r.apply(OrderEvent.CANCEL_REJECTED, why)])

    async def _settles_within(self, wait: timedelta) -> bool:
        r = self.record
        try:
            await workflow.wait_condition(lambda: r.state.is_terminal or r.lost_cause is not None, timeout=wait)
            return True
        except TimeoutError:
            return False

    def _cancel_answer(self, accepted: bool, message: str, refusal: CancelRefusal | None = None) -> CancelResult:
        r = self.record
        return CancelResult(
            intent_id=r.intent_id,
            accepted=accepted,
            state=r.state,
            filled_quantity=r.filled,
            message=message,
            refusal=refusal,
            report=r.report(released=r.released),
        )

    # ── replace ──────────────────────────────────────────────────────────────────────────────
    async def replace(self, request: ReplaceRequest, kind: IntentKind | None, price_rule: PriceRule | None) -> ReplaceResult:
        async with self.lock:
            r = self.record
            if r.state.is_terminal or r.intent is None:
                return self._replace_answer(False, f"order {r.intent_id} is already {r.state.value}: nothing to replace", CancelRefusal.ORDER_CLOSED)
            self._take([r.apply(OrderEvent.REPLACE_REQUESTED, f"replace to {request.quantity} @ {request.limit_price}")])
            if request.quantity <= r.filled:
                return await self._replace_down_to_filled(request.quantity)
            raw = self._replacement(request, kind, price_rule)
            refusal = await self._venue().precheck(Intent.model_validate(raw | {"bucket": r.intent.bucket}))
            if refusal:
                return self._refuse(f"the venue would refuse the replacement: {refusal}", CancelRefusal.VENUE)
            verdict = await self._check_with_the_account(raw)
            if isinstance(verdict, ReplaceResult):
                return verdict
            r.released = raw["intent_id"]  # reserved by the account: released unless it is placed below
            refused, filled = await self._cancel_the_original()
            if refused is not None:
                return refused
            raw["quantity"] = request.quantity - filled  # what filled before the cancel shrinks the replacement
            r.replaced_by, r.cancel_reason, r.released = raw["intent_id"], CancelReason.REPLACED, None
            if r.state.is_open:
                self._take([r.apply(OrderEvent.CANCEL_ACKED, f"replaced by {r.replaced_by}")])
            started = await self._start_replacement(raw)
            return self._replace_answer(True, f"replaced by {r.replaced_by}", new_id=r.replaced_by, new_report=started.report)

    async def _check_with_the_account(self, raw: dict[str, Any]) -> ReplaceResult | None:
        """The replacement's full pre-trade at the account (which reserves it when approved)."""
        r = self.record
        assert r.account is not None
        check = AccountReplaceCheck(account=r.account, check=ReplaceCheck(original_id=r.intent_id, raw_replacement=raw))
        try:
            verdict = await workflow.execute_local_activity_method(
                OrderCalls.request_replace_check, check, start_to_close_timeout=ACCOUNT_CALL_TIMEOUT, schedule_to_close_timeout=ACCOUNT_CALL_GIVES_UP
            )
        except LOCAL_ACTIVITY_FAILED as err:
            return self._refuse(f"the account did not answer: {first_line(err)}", CancelRefusal.PRETRADE)
        if not verdict.approved:
            reason = verdict.reason.value if verdict.reason else "REFUSED"
            return self._refuse(f"replacement refused by pre-trade ({reason}): {verdict.message}", CancelRefusal.PRETRADE, verdict.reason)
        return None

    async def _cancel_the_original(self) -> tuple[ReplaceResult | None, int]:
        """The original's cancel before the replacement exists: a refusal when it did not end, and
        what filled (the broker's final count may be ahead of the fills it has delivered yet)."""
        r, venue = self.record, self._venue()
        if venue.broker:
            r.cancel_reason = CancelReason.REPLACED  # the broker's CANCELED, when it comes, is the replace's
        outcome = await venue.cancel(r.intent_id, r.filled)
        if outcome is not None and outcome.verdict is CancelVerdict.PENDING_CANCEL:
            outcome = await venue.cancel(r.intent_id, r.filled, wait=BROKER_LAST_WORD)  # asked again, longer (idempotent)
        if outcome is not None:
            events = outcome.events if venue.broker else [e for e in outcome.events if e.kind is ExecKind.FILL]
            self._take(r.fold(events, cap_at_quantity=not venue.broker).steps)
        filled = max(r.filled, outcome.cum_qty if outcome is not None and venue.broker else 0)
        if r.state is OrderState.FILLED or (r.intent is not None and filled >= r.intent.quantity):
            r.cancel_reason = None
            return self._refuse(
                "too late to replace: a fill completed the order first; the order is FILLED", CancelRefusal.TOO_LATE_TO_CANCEL
            ), filled
        if r.lost_cause is not None:
            return self._refuse(f"the venue has no record of this order: recorded LOST ({r.lost_cause})", CancelRefusal.ORDER_CLOSED), filled
        if venue.broker and (outcome is None or not outcome.verdict.final):
            why = (
                "the broker gateway did not answer"
                if outcome is None
                else f"the broker's answer to the cancel: {outcome.verdict.value} {outcome.text}"
            )
            r.cancel_reason = None
            refused = self._refuse(f"{why}; nothing was replaced", CancelRefusal.VENUE)
            if outcome is not None and outcome.verdict is CancelVerdict.PENDING_CANCEL and r.state.is_open:
                # The cancel is on its way at the broker: the original ends when the broker confirms.
                self._take([r.apply(OrderEvent.CANCEL_REQUESTED, "the replace's cancel is pending at the broker")])
                refused = refused.model_copy(update={"state": r.state, "report": r.report(released=r.released)})
            return refused, filled
        return None, filled

    async def _start_replacement(self, raw: dict[str, Any]) -> Reconciled:
        try:
            return await workflow.execute_local_activity_method(
                OrderCalls.start_replacement,
                StartReplacement(raw_intent=raw),
                start_to_close_timeout=ACCOUNT_CALL_TIMEOUT,
                schedule_to_close_timeout=ACCOUNT_CALL_GIVES_UP,
            )
        except LOCAL_ACTIVITY_FAILED as err:  # the account's audit reads the replacement back (or loses it)
            workflow.logger.warning("replacement %s did not start: %s", raw["intent_id"], first_line(err))
            return Reconciled(intent_id=raw["intent_id"], status=ReconcileStatus.UNKNOWN)

    async def _replace_down_to_filled(self, quantity: int) -> ReplaceResult:
        r = self.record
        outcome = await self._venue().cancel(r.intent_id, r.filled)
        if outcome is not None:
            self._take(r.fold([e for e in outcome.events if e.kind is ExecKind.FILL], cap_at_quantity=not self._venue().broker).steps)
        if r.state is not OrderState.FILLED:
            self._take([r.apply(OrderEvent.REDUCED_TO_FILLED, f"replaced down to {quantity} with {r.filled} filled")])
        return self._replace_answer(True, f"quantity {quantity} ≤ filled {r.filled}: order FILLED")

    def _refuse(self, message: str, refusal: CancelRefusal, reason: RejectReason | None = None) -> ReplaceResult:
        r = self.record
        if r.state.is_open:
            self._take([r.apply(OrderEvent.REPLACE_REFUSED, message[:300])])
        return self._replace_answer(False, message, refusal, reject_reason=reason)

    def _replacement(self, request: ReplaceRequest, kind: IntentKind | None, price_rule: PriceRule | None) -> dict[str, Any]:
        r = self.record
        intent = r.intent
        assert intent is not None
        return {
            "intent_id": c.next_replacement_id(intent.intent_id),
            "account": intent.account,
            "symbol": intent.symbol,
            "bucket": intent.bucket.value,
            "side": intent.side.value,
            "quantity": request.quantity - r.filled,
            "order_type": OrderType.LIMIT.value if request.limit_price is not None else intent.order_type.value,
            "limit_price": request.limit_price if request.limit_price is not None else intent.limit_price,
            "kind": (kind or intent.kind).value,
            "reduce_only": intent.reduce_only,
            "replaces": intent.intent_id,
            "price_rule": (price_rule or intent.price_rule).value,
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
        r = self.record
        return ReplaceResult(
            intent_id=r.intent_id,
            accepted=accepted,
            state=r.state,
            filled_quantity=r.filled,
            new_intent_id=new_id,
            message=message,
            refusal=refusal,
            reject_reason=reject_reason,
            report=r.report(released=r.released),
            new_report=new_report,
        )


# ── what a request must be before anything changes (the updates' validators) ────────────────
def check_cancel(record: OrderRecord, request: CancelRequest, *, by_the_rig: bool) -> None:
    if not by_the_rig and request.reason in RIG_CANCEL_REASONS:
        raise ValueError(f"cancel reason {request.reason.value} is the rig's own; a user cancel says USER")
    if not by_the_rig and record.intent is not None and record.intent.kind.is_derisk:
        raise ValueError(f"order {record.intent_id} is the risk cycle's own {record.intent.kind.value}: only the rig cancels it")
    if record.cancel_result is None and record.state.is_terminal:
        raise ValueError(f"order {record.intent_id} is already {record.state.value}: nothing to cancel")


def check_replace(record: OrderRecord, request: ReplaceRequest) -> None:
    if record.state.is_terminal:
        raise ValueError(f"order {record.intent_id} is already {record.state.value}: nothing to replace")
    if record.state is OrderState.ACCEPTED or record.intent is None:
        raise ValueError(f"order {record.intent_id} is not working yet: nothing to replace")
    if record.state is OrderState.PENDING_REPLACE:
        raise ValueError(f"order {record.intent_id} has a replace pending already")
    if record.state is OrderState.PENDING_CANCEL:
        raise ValueError(f"order {record.intent_id} has a cancel pending: nothing to replace")
    if isinstance(request.quantity, bool) or not (0 < request.quantity <= 1_000_000_000):
        raise ValueError(f"replace quantity must be a whole number between 1 and 1,000,000,000, got {request.quantity}")
    if request.limit_price is not None and not (0 < request.limit_price <= 10_000_000):
        raise ValueError(f"replace limit_price must be a finite number > 0 and at most 10,000,000, got {request.limit_price}")


def sensible_executions(record: OrderRecord, events: list[ExecutionEvent]) -> str | None:
    """What no venue would say of this order: a fill of another order, at a price through its
    limit on the wrong side, for more than it still needs, or under an id not in the venue's
    shape. Refused before anything is applied (whoever sent it)."""
    intent, reply = record.intent, record.reply
    if intent is None or reply is None:
        return f"order {record.intent_id} was never at the venue"
    leaves = intent.quantity - record.filled
    for event in events:
        if event.intent_id != record.intent_id:
            return f"an event of {event.intent_id[:80]} delivered to {record.intent_id}"
        if event.kind not in (ExecKind.FILL, ExecKind.CORRECTION):
            continue
        if not event.exec_id or event.last_px is None or not 0 < event.last_px <= 10_000_000 or event.last_qty <= 0:
            return f"fill {str(event.exec_id)[:60]}: needs an execution id, a positive price and a positive quantity"
        if reply.venue is VenueKind.SIM and not event.exec_id.startswith(f"{record.intent_id}/"):
            return f"fill {event.exec_id[:60]}: not an execution id of the simulated venue (<intent id>/<tag>)"
        known = any(f.fill_id == event.exec_id for f in record.fills)
        # The simulated venue's steps may race for the same remainder (the order caps them);
        # a broker's fill over what the order still needs is nonsense.
        if reply.venue is not VenueKind.SIM and event.kind is ExecKind.FILL and event.last_qty > leaves and not known:
            return f"fill {event.exec_id[:60]}: {event.last_qty} is more than the {leaves} the order still needs"
        if intent.order_type is OrderType.LIMIT and intent.limit_price is not None:
            through = event.last_px > intent.limit_price + 1e-9 if intent.side is Side.BUY else event.last_px < intent.limit_price - 1e-9
            if through:
                return f"fill {event.exec_id[:60]} at {event.last_px:g}: through the {intent.side.value} limit {intent.limit_price:g}"
    return None
