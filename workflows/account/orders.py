"""The account's dealings with its orders: the simulated exchange's step (matching computed here,
deterministically; delivered by an activity), starting de-risk and desk orders, escalation,
cancels, and reading back whatever went away or silent.

Every activity result is applied to the ledger at once and in list order, so the account's
state after a cycle does not depend on how fast orders answered. An order that is gone
(terminated, reset away, failed, never started) is reconciled from the server and, unless it
finished normally, recorded LOST with the cause; its potential is released and the cycle goes
on. One that still runs but cannot be read right now stays open and is read back later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.account_calls import AccountCalls
    from domain.digest import RunDigest
    from domain.enums import CancelReason, IntentKind, PriceRule, ReconcileStatus
    from domain.events import TimedEvent
    from domain.ledger import Ledger, LedgerOrder
    from domain.models import Intent
    from domain.order import OrderReport
    from protocol import run_digest
    from protocol.account_state import OrdersState
    from protocol.messages import Answer, CancelRequest, CancelResult, ReplaceResult, VenueKind
    from protocol.order_commands import CancelOrder, CancelOrders, Delivery, ReplaceOrder, ReplaceOrders, StartOrders, VenueStep
    from protocol.order_record import Reconciled
    from venues.sim.exchange import SimExchange, Turn
    from workflows.account.market import AccountMarket

T = TypeVar("T")
CALL_TIMEOUT = timedelta(minutes=2)
CALL_HEARTBEAT = timedelta(seconds=10)  # the calls heartbeat: a killed worker's call is retried in seconds
CALL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)
AUDIT_AFTER_CYCLES = 3  # an open order not heard from for this many cycles is read back
AUDIT_BATCH = 100  # at most this many per cycle, oldest first
DELIVERIES_PER_CALL = 250
ANSWERS_KEPT = 500


class AccountOrders:
    def __init__(
        self,
        account: str,
        state: OrdersState,
        digest: RunDigest,
        venue: VenueKind,
        ledger: Ledger,
        market: AccountMarket,
        exchange: SimExchange,
    ) -> None:
        self._account = account
        self._s = state
        self._digest = digest
        self._venue = venue
        self._ledger = ledger
        self._market = market
        self._exchange = exchange

    def answers(self) -> list[Answer]:
        return self._s.answers

    # ── reading results ──────────────────────────────────────────────────────────────────────
    def apply(self, found: Reconciled, cycle: int, stamp: str) -> None:
        if found.report is not None and (found.alive or found.finished_normally):
            self._ledger.apply_report(found.report, cycle=cycle, exchange_time=stamp)
            return
        cause = (found.report.lost_cause if found.report else None) or found.cause or found.status.lower()
        if found.status is ReconcileStatus.RUNNING and found.report is None:
            # Running but unreadable (its worker just died, the server is restarting): not gone.
            # Recorded LOST it would be forgotten while it still works at the venue, an orphan the
            # close never expires; it stays open, its potential counted, and is read back later.
            workflow.logger.warning("order %s did not answer (%s): kept open, read back again later", found.intent_id, cause)
            return
        if self._ledger.mark_lost(found.intent_id, cause, found.report.fills if found.report else [], cycle=cycle, exchange_time=stamp):
            workflow.logger.warning("order %s LOST: %s", found.intent_id, cause)

    def take_report(self, report: OrderReport, cycle: int, stamp: str) -> bool:
        """An order's own report; True when it changed the book (new fills, or the order closed)."""
        return bool(self._ledger.apply_report(report, cycle=cycle, exchange_time=stamp)) or report.state.is_terminal

    def _apply_report(self, report: OrderReport | None, cycle: int, stamp: str) -> None:
        if report is not None:
            self._ledger.apply_report(report, cycle=cycle, exchange_time=stamp)

    @staticmethod
    async def _call(method: Callable[[AccountCalls, Any], Awaitable[list[T]]], arg: Any) -> list[T]:
        try:
            return await workflow.execute_activity_method(
                method, arg, start_to_close_timeout=CALL_TIMEOUT, heartbeat_timeout=CALL_HEARTBEAT, retry_policy=CALL_RETRY
            )
        except ActivityError as err:  # the audit reads the orders back next cycles
            workflow.logger.error("%s failed: %s", method.__name__, err.cause or err)
            return []

    # ── the exchange's step ──────────────────────────────────────────────────────────────────
    def turns(self, now: datetime, closing: bool = False) -> list[Turn]:
        """The simulated exchange's turn for each live order (a broker's fills come by signal);
        `closing`: the end of a scenario day, every live order expires."""
        if self._venue is not VenueKind.SIM:
            return []
        stamp = now.isoformat()
        return [
            Turn(
                order=self._exchange.order(o.intent, cum_qty=o.filled),
                closed=closing or (bool(o.expires_at) and stamp >= o.expires_at),
                prints=self._market.prints(o.footprint.symbol),
                since=self._market.prints_since,
            )
            for o in self._ledger.live_orders()
            if o.intent is not None
        ]

    async def venue_step(self, turns: list[Turn], cycle: int, stamp: str, *, audit_all: bool = False) -> None:
        """One matching attempt (or the expiry at the close) for every live order, delivered to
        those it touches; orders not heard from lately are read back."""
        held = {(p.symbol, p.bucket): p.quantity for p in self._ledger.positions()}
        deliveries = [Delivery(intent_id=m.intent_id, events=m.events) for m in self._exchange.step(turns, cycle, held)]
        delivered = {d.intent_id for d in deliveries}
        candidates = [o for o in self._ledger.open_orders() if not o.synthetic and o.intent_id not in delivered]
        stale = [o for o in candidates if audit_all or cycle - o.heard_cycle >= AUDIT_AFTER_CYCLES]
        audit = [o.intent_id for o in sorted(stale, key=lambda o: (o.heard_cycle, o.intent_id))[:AUDIT_BATCH]]
        if not deliveries and not audit:
            return
        # In calls of at most DELIVERIES_PER_CALL orders, run at once: each call stays well inside
        # its start-to-close however many orders a step touches (the close expires them all), and
        # the results are applied in list order whichever call finishes first.
        steps = [VenueStep(deliveries=deliveries[i : i + DELIVERIES_PER_CALL]) for i in range(0, len(deliveries), DELIVERIES_PER_CALL)]
        steps += [VenueStep(audit=audit)] if audit else []
        results = await asyncio.gather(*[self._call(AccountCalls.deliver_executions, step) for step in steps])
        for found in (f for result in results for f in result):
            self.apply(found, cycle, stamp)

    # ── starting, escalating, cancelling ─────────────────────────────────────────────────────
    async def start(self, intents: list[Intent] | list[dict[str, Any]], cycle: int, stamp: str) -> None:
        raws = [i.model_dump(mode="json") if isinstance(i, Intent) else i for i in intents]
        for found in await self._call(AccountCalls.start_orders, StartOrders(intents=raws)):
            self.apply(found, cycle, stamp)

    async def replace_own(self, repriced: list[tuple[LedgerOrder, float, PriceRule, IntentKind]], cycle: int, stamp: str) -> None:
        """The cycle's own working de-risk orders replaced at their new price (the escalation
        SOFT → HARD, a reprice after the market moved away), each as `kind` priced by its rule."""
        orders = [
            ReplaceOrder(
                intent_id=entry.intent_id,
                quantity=entry.intent.quantity if entry.intent else entry.footprint.remaining,
                limit_price=price,
                kind=kind,
                price_rule=rule.value,
            )
            for entry, price, rule, kind in repriced
        ]
        if orders:
            for result in await self._call(AccountCalls.replace_orders, ReplaceOrders(orders=orders)):
                self._apply_replace(result, cycle, stamp)

    def _apply_replace(self, result: ReplaceResult, cycle: int, stamp: str) -> None:
        # A replacement that did not answer stays reserved; the audit reads it back.
        self._apply_report(result.report, cycle, stamp)
        self._apply_report(result.new_report, cycle, stamp)

    async def cancel_desk_orders(self, cycle: int, stamp: str) -> int:
        """HALTED (kill switch): every open desk order is canceled — cancels are never blocked.
        Returns how many cancels were sent (messages)."""
        desk = [o.intent_id for o in self._ledger.open_orders() if not o.own and not o.synthetic]
        if not desk:
            return 0
        request = CancelRequest(reason=CancelReason.KILL_SWITCH, note="account HALTED")
        orders = [CancelOrder(intent_id=i, request=request, rig=True) for i in desk]
        for result in await self._call(AccountCalls.cancel_orders, CancelOrders(orders=orders)):
            self._apply_report(result.report, cycle, stamp)
        return len(orders)

    # ── a scenario's desk orders, cancels and replaces ───────────────────────────────────────
    async def apply_desk_event(self, event: TimedEvent, cycle: int, stamp: str) -> None:
        if event.order is not None:
            spec = event.order
            raw = {k: v for k, v in spec.model_dump(exclude={"id"}).items() if v is not None}
            await self.start([raw | {"intent_id": f"{self._account}-{spec.id}", "account": self._account}], cycle, stamp)
        if event.cancel is not None:
            request = CancelOrder(intent_id=f"{self._account}-{event.cancel.id}", request=CancelRequest(reason=event.cancel.reason))
            for result in await self._call(AccountCalls.cancel_orders, CancelOrders(orders=[request])):
                self._apply_report(result.report, cycle, stamp)
                self._answer(self._cancel_answer(result))
        if event.replace is not None:
            spec_r = event.replace
            replace = ReplaceOrder(intent_id=f"{self._account}-{spec_r.id}", quantity=spec_r.quantity, limit_price=spec_r.limit_price)
            for replaced in await self._call(AccountCalls.replace_orders, ReplaceOrders(orders=[replace])):
                self._apply_replace(replaced, cycle, stamp)
                self._answer(
                    Answer(
                        action="replace",
                        intent_id=replaced.intent_id,
                        accepted=replaced.accepted,
                        refusal=replaced.refusal,
                        reject_reason=replaced.reject_reason,
                        new_intent_id=replaced.new_intent_id,
                        message=replaced.message,
                        state=replaced.state,
                    )
                )

    @staticmethod
    def _cancel_answer(result: CancelResult) -> Answer:
        return Answer(
            action="cancel", intent_id=result.intent_id, accepted=result.accepted, refusal=result.refusal, message=result.message, state=result.state
        )

    def _answer(self, answer: Answer) -> None:
        run_digest.add_answer(self._digest, answer, self._account)
        self._s.answers.append(answer)
        del self._s.answers[:-ANSWERS_KEPT]
