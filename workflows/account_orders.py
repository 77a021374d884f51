"""The account's dealings with its orders, from inside the risk workflow: the simulated venue's
step (matching computed here, deterministically; delivered by an activity), starting de-risk
and desk orders, escalation, and reading back whatever went away or silent.

Every activity result is applied to the ledger at once and in list order, so the account's
state after a cycle does not depend on how fast orders answered. An order that is gone
(terminated, reset away, failed, never started) is reconciled from the server and, unless it
finished normally, recorded LOST with the cause; its potential is released and the cycle goes
on. One that still runs but cannot be read right now stays open and is read back later.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.account_calls import (
        CancelOrder,
        CancelOrders,
        Delivery,
        ReplaceOrder,
        ReplaceOrders,
        StartOrders,
        VenueStep,
    )
    from activities.client_ops import Reconciled
    from domain import venue
    from domain.digest import RunDigest
    from domain.enums import CancelReason, IntentKind
    from domain.events import TimedEvent
    from domain.execution import ExecKind
    from domain.ledger import Ledger, LedgerOrder, OrderReport
    from domain.marketdata import Print
    from domain.venue import SimOrder
    from protocol import run_digest
    from protocol.messages import Answer, CancelRequest, CancelResult, ReplaceResult

CALL = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=10),  # the calls heartbeat: a killed worker's call is retried in seconds
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5),
)
AUDIT_AFTER_CYCLES = 3  # an open order not heard from for this many cycles is read back
AUDIT_BATCH = 100  # at most this many per cycle, oldest first
DELIVERIES_PER_CALL = 250
ANSWERS_KEPT = 500


class VenueTurn(NamedTuple):
    """One live order's turn at the simulated venue this cycle."""

    order: SimOrder
    closed: bool  # its DAY ended: it expires
    prints: list[Print]  # with market data: the prints since the last cycle
    since: datetime | None


class AccountOrders:
    def __init__(self, account: str, ledger: Ledger, answers: list[Answer], digest: RunDigest) -> None:
        self._account = account
        self._ledger = ledger
        self._answers = answers
        self._digest = digest

    # ── reading results ──────────────────────────────────────────────────────────────────────
    def apply(self, found: Reconciled, cycle: int, stamp: str) -> None:
        if found.report is not None and (found.alive or found.finished_normally):
            self._ledger.apply_report(found.report, cycle=cycle, exchange_time=stamp)
            return
        cause = (found.report.lost_cause if found.report else None) or found.cause or found.status.lower()
        if found.status == "RUNNING" and found.report is None:
            # Running but unreadable (its worker just died, the server is restarting): not gone.
            # Recorded LOST it would be forgotten while it still works at the venue, an orphan the
            # close never expires; it stays open, its potential counted, and is read back later.
            workflow.logger.warning("order %s did not answer (%s): kept open, read back again later", found.intent_id, cause)
            return
        if self._ledger.mark_lost(found.intent_id, cause, found.report.fills if found.report else [], cycle=cycle, exchange_time=stamp):
            workflow.logger.warning("order %s LOST: %s", found.intent_id, cause)

    def _apply_report(self, report: OrderReport | None, cycle: int, stamp: str) -> None:
        if report is not None:
            self._ledger.apply_report(report, cycle=cycle, exchange_time=stamp)

    async def _call(self, name: str, arg: Any, result_type: type) -> Any:
        try:
            return await workflow.execute_activity(name, arg, result_type=result_type, **CALL)
        except ActivityError as err:  # the audit reads the orders back next cycles
            workflow.logger.error("%s failed for account %s: %s", name, self._account, err.cause or err)
            return []

    # ── the venue's step ─────────────────────────────────────────────────────────────────────
    async def venue_step(self, live: list[VenueTurn], cycle: int, stamp: str, *, audit_all: bool = False) -> None:
        """One matching attempt (or the expiry at the close) for every live order, delivered to
        those it touches; orders not heard from lately are read back."""
        deliveries = []
        held = {(p.symbol, p.bucket): p.quantity for p in self._ledger.positions()}  # as this step's fills leave it
        for turn in live:
            intent = turn.order.intent
            events = venue.within_position(venue.match(turn.order, cycle, turn.closed, turn.prints, turn.since), intent, held.get(intent.key, 0))
            held[intent.key] = held.get(intent.key, 0) + intent.side.sign * sum(e.last_qty for e in events if e.kind is ExecKind.FILL)
            if events:
                deliveries.append(Delivery(intent_id=intent.intent_id, events=events))
        delivered = {d.intent_id for d in deliveries}
        candidates = [o for o in self._ledger.s.open_orders.values() if not o.synthetic and o.intent_id not in delivered]
        stale = [o for o in candidates if audit_all or cycle - o.heard_cycle >= AUDIT_AFTER_CYCLES]
        audit = [o.intent_id for o in sorted(stale, key=lambda o: (o.heard_cycle, o.intent_id))[:AUDIT_BATCH]]
        if not deliveries and not audit:
            return
        # In calls of at most DELIVERIES_PER_CALL orders, run at once: each call stays well inside
        # its start-to-close however many orders a step touches (the close expires them all), and
        # the results are applied in list order whichever call finishes first.
        steps = [VenueStep(deliveries=deliveries[i : i + DELIVERIES_PER_CALL]) for i in range(0, len(deliveries), DELIVERIES_PER_CALL)]
        steps += [VenueStep(audit=audit)] if audit else []
        results = await asyncio.gather(*[self._call("deliver_executions", step, list[Reconciled]) for step in steps])
        for found in (f for result in results for f in result):
            self.apply(found, cycle, stamp)

    # ── starting, escalating ─────────────────────────────────────────────────────────────────
    async def start(self, raws: list[dict[str, Any]], cycle: int, stamp: str) -> None:
        for found in await self._call("start_orders", StartOrders(intents=raws), list[Reconciled]):
            self.apply(found, cycle, stamp)

    async def escalate(self, priced: list[tuple[LedgerOrder, float, Any]], cycle: int, stamp: str) -> None:
        orders = [
            ReplaceOrder(
                intent_id=entry.intent_id,
                quantity=entry.intent.quantity if entry.intent else entry.footprint.remaining,
                limit_price=price,
                kind=IntentKind.HARD_DERISK,
                price_rule=rule.value,
            )
            for entry, price, rule in priced
        ]
        if orders:
            for result in await self._call("replace_orders", ReplaceOrders(orders=orders), list[ReplaceResult]):
                self._apply_replace(result, cycle, stamp)

    def _apply_replace(self, result: ReplaceResult, cycle: int, stamp: str) -> None:
        # A replacement that did not answer stays reserved; the audit reads it back.
        self._apply_report(result.report, cycle, stamp)
        self._apply_report(result.new_report, cycle, stamp)

    async def cancel_desk_orders(self, cycle: int, stamp: str) -> None:
        """HALTED (kill switch): every open desk order is canceled — cancels are never blocked."""
        desk = [o.intent_id for o in self._ledger.s.open_orders.values() if not o.own and not o.synthetic]
        if not desk:
            return
        orders = [CancelOrder(intent_id=i, request=CancelRequest(reason=CancelReason.KILL_SWITCH, note="account HALTED"), rig=True) for i in desk]
        for result in await self._call("cancel_orders", CancelOrders(orders=orders), list[CancelResult]):
            self._apply_report(result.report, cycle, stamp)

    # ── a scenario's desk orders, cancels and replaces ───────────────────────────────────────
    async def apply_desk_event(self, event: TimedEvent, cycle: int, stamp: str) -> None:
        if event.order is not None:
            spec = event.order
            raw = {k: v for k, v in spec.model_dump(exclude={"id"}).items() if v is not None}
            await self.start([raw | {"intent_id": f"{self._account}-{spec.id}", "account": self._account}], cycle, stamp)
        if event.cancel is not None:
            request = CancelOrder(intent_id=f"{self._account}-{event.cancel.id}", request=CancelRequest(reason=event.cancel.reason))
            for result in await self._call("cancel_orders", CancelOrders(orders=[request]), list[CancelResult]):
                self._apply_report(result.report, cycle, stamp)
                self._answer(
                    Answer(
                        action="cancel",
                        intent_id=result.intent_id,
                        accepted=result.accepted,
                        refusal=result.refusal,
                        message=result.message,
                        state=result.state,
                    )
                )
        if event.replace is not None:
            spec = event.replace
            request = ReplaceOrder(intent_id=f"{self._account}-{spec.id}", quantity=spec.quantity, limit_price=spec.limit_price)
            for result in await self._call("replace_orders", ReplaceOrders(orders=[request]), list[ReplaceResult]):
                self._apply_replace(result, cycle, stamp)
                self._answer(
                    Answer(
                        action="replace",
                        intent_id=result.intent_id,
                        accepted=result.accepted,
                        refusal=result.refusal,
                        reject_reason=result.reject_reason,
                        new_intent_id=result.new_intent_id,
                        message=result.message,
                        state=result.state,
                    )
                )

    def _answer(self, answer: Answer) -> None:
        run_digest.add_answer(self._digest, answer, self._account)
        self._answers.append(answer)
        del self._answers[:-ANSWERS_KEPT]
