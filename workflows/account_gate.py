"""The account's pre-trade updates (one judgment at a time) and the reports orders send it.

`pretrade` and `replace_check` are Updates whose update id names the request, so a retried
request cannot reserve twice; an order the account already knows gets its first answer again,
with the account's record of it (a reset order adopts it). Nothing here raises: what cannot be
judged is refused MALFORMED_INTENT."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import venue
    from domain.clock import read_clock
    from domain.enums import OrderState, RejectReason
    from domain.gate import GateContext, gate_desk_intent, gate_replacement
    from domain.ledger import OrderReport
    from domain.models import Intent
    from domain.venue import VenueParams
    from protocol import contract as c
    from protocol.messages import (
        PretradeReply,
        PretradeRequest,
        ReplaceCheck,
        VenueKind,
    )
    from protocol.parse import parse

# The server allows 2,000 updates per run (history.maxTotalUpdates): new requests stop at 1,500
# (the run then continues as new); the cycle's own orders, which must be answered before it can,
# are issued only while the run stays under UPDATES_HARD_LIMIT (the rest wait for the next run).
UPDATES_PER_RUN = 1_500
UPDATES_HARD_LIMIT = 1_900
# … and the signals a run takes (history.maximumSignalsPerExecution in a cluster's config).
SIGNALS_PER_RUN = 5_000
REPORT_FILLS_KEPT = 1_000


class AccountGate:
    """A part of RiskWorkflow (workflows/risk.py); its state lives there."""

    def _gate(self) -> GateContext:
        now = self._moment()
        return GateContext(
            account=self._inp.account,
            ledger=self._ledger,
            mode=self._s.mode,
            regime=read_clock(now.time(), self._rules).regime,
            quote_of=self._quote,
            config=self._config,
            trading_state=self._s.trading_state,
            controls=self._s.controls,
            now_seconds=workflow.now().timestamp(),
        )

    @workflow.update(name=c.UPDATE_PRETRADE)
    async def pretrade(self, raw: Any) -> PretradeReply:
        request = parse(PretradeRequest, raw)
        self._count_update()
        try:
            async with self._gate_lock:  # one judgment at a time, even across a market-data fetch
                symbol = request.raw_intent.get("symbol")
                if (
                    self._inp.market is not None
                    and isinstance(symbol, str)
                    and symbol in self._config.universe.by_symbol
                    and symbol not in self._views
                ):
                    await self._fetch_market([symbol], self._moment())
                return self._pretrade(request)
        except Exception as err:  # noqa: BLE001 — what cannot be judged is refused, never a failed task
            workflow.logger.exception("pre-trade of %s could not be judged", request.intent_id)
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message=f"could not be judged: {type(err).__name__}")

    @pretrade.validator
    def _validate_pretrade(self, raw: Any) -> None:
        self._validate_request(parse(PretradeRequest, raw).intent_id)

    def _validate_request(self, intent_id: str) -> None:
        self._validate_ready()
        # While it waits to continue as new the account takes no new request — but still answers
        # those about orders it knows (its own intents: the cycle cannot end before they arrive).
        if self._must_continue and not self._ledger.knows(intent_id):
            raise ApplicationError("the account is continuing as new: ask again", type=c.ACCOUNT_BUSY)
        if not intent_id or len(intent_id) > 200:
            raise ValueError("intent_id must be 1 to 200 characters")

    def _pretrade(self, request: PretradeRequest) -> PretradeReply:
        intent_id = request.intent_id
        known = self._known(intent_id)
        if known is not None:
            return known
        if request.raw_intent.get("intent_id", intent_id) != intent_id:
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message="intent_id differs from the request's")
        gate = self._gate()
        verdict = gate_desk_intent(request.raw_intent | {"intent_id": intent_id}, gate)
        self._s.controls = gate.controls
        if not verdict.approved or verdict.intent is None:
            self._ledger.record_refusal(verdict.intent, intent_id, verdict.reason or RejectReason.MALFORMED_INTENT, verdict.message)
            return PretradeReply(approved=False, reason=verdict.reason, message=verdict.message)
        self._ledger.reserve(verdict.intent, own=False, cycle=self._s.cycle, expires_at=self._expiry(self._moment()))
        self._dirty = True
        return self._arrive(verdict.intent, self._approval(verdict.intent, verdict.message))

    def _arrive(self, intent: Intent, reply: PretradeReply) -> PretradeReply:
        """The simulated venue's arrival (acknowledge and first attempt) runs here, with the verdict,
        where the book is: the order gets the events in one round trip and sends no report — the
        account applied them already. A broker's arrival happens at the broker."""
        if self._inp.venue is not VenueKind.SIM:
            return reply
        events = venue.submit(reply.sim_order())
        self._ledger.apply_report(venue.arrival_report(intent, events), cycle=self._s.cycle, exchange_time=self._stamp(self._moment()))
        return reply.model_copy(update={"arrival": events})

    def _known(self, intent_id: str, arrive: bool = True) -> PretradeReply | None:
        """A request for an order the account already knows — its own reserved intent, a
        retried request, a reset order — gets the same answer, with the account's record. Only
        the order's own pre-trade runs its arrival (`arrive`): a retried replace check must not
        put the replacement at the venue before its original is canceled."""
        entry = self._ledger.s.open_orders.get(intent_id)
        if arrive and entry is not None and entry.intent is not None and entry.own and entry.state is OrderState.ACCEPTED and not entry.filled:
            return self._arrive(entry.intent, self._approval(entry.intent, "the risk cycle's own intent"))  # its first word
        if entry is not None and entry.intent is not None:
            report = OrderReport(
                intent_id=intent_id,
                state=entry.state,
                quantity=entry.intent.quantity,
                filled_quantity=entry.filled,
                fills=self._ledger.fills_of(intent_id),
            )
            return self._approval(entry.intent, "known to the account", known=report)
        outcome = self._ledger.s.outcomes.get(intent_id)
        if outcome is None:
            return None
        if outcome.reject_reason is not None and outcome.filled_quantity == 0 and outcome.state is OrderState.REJECTED:
            return PretradeReply(approved=False, reason=outcome.reject_reason, message=outcome.reject_message or "refused before")
        report = OrderReport(
            intent_id=intent_id,
            state=outcome.state,
            quantity=outcome.quantity,
            filled_quantity=outcome.filled_quantity,
            fills=self._ledger.fills_of(intent_id),
            cancel_reason=outcome.cancel_reason,
            replaced_by=outcome.replaced_by,
            lost_cause=outcome.lost_cause,
        )
        return PretradeReply(approved=True, message=f"closed already: {outcome.label}", known=report)

    @workflow.update(name=c.UPDATE_REPLACE_CHECK)
    def replace_check(self, raw: Any) -> PretradeReply:
        check = parse(ReplaceCheck, raw)
        self._count_update()
        try:
            expected = c.next_replacement_id(check.original_id)
            known = self._known(expected, arrive=False)
            if known is not None:
                return known
            verdict = gate_replacement(check.original_id, check.raw_replacement, self._gate(), expected)
            if not verdict.approved or verdict.intent is None:
                return PretradeReply(approved=False, reason=verdict.reason, message=verdict.message)
            original = self._ledger.s.open_orders[check.original_id]
            self._ledger.reserve(verdict.intent, own=original.own, cycle=self._s.cycle, expires_at=original.expires_at)
            original.replacement = verdict.intent.intent_id
            self._dirty = True
            return self._approval(verdict.intent, verdict.message)
        except Exception as err:  # noqa: BLE001 — refused, never a failed task
            workflow.logger.exception("replace check of %s could not be judged", check.original_id)
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message=f"could not be judged: {type(err).__name__}")

    @replace_check.validator
    def _validate_replace_check(self, raw: Any) -> None:
        self._validate_request(parse(ReplaceCheck, raw).original_id)

    def _approval(self, intent: Intent, message: str, known: OrderReport | None = None) -> PretradeReply:
        return PretradeReply(
            approved=True,
            message=message,
            intent=intent,
            quote=self._quote(intent.symbol),
            venue=self._inp.venue,
            venue_task_queue=self._inp.venue_task_queue if self._inp.venue is VenueKind.IBKR else None,
            lot_size=self._lot_of(intent.symbol),
            known=known,
            venue_params=self._venue_params(intent),
            position=sum(p.quantity for p in self._ledger.positions() if p.key == intent.key),
            market=self._views.get(intent.symbol) if self._inp.market else None,
            market_rule=self._rules.market_data if self._inp.market else None,
        )

    def _venue_params(self, intent: Intent) -> VenueParams:
        fills = self._rules.fills
        return VenueParams(
            seed=self._inp.seed,
            fill_probability=fills.probability(intent.issued_in_mode),
            partial_fill_probability=fills.partial_fill_probability,
            cancel_cross_probability=fills.cancel_cross_probability,
        )

    def _lot_of(self, symbol: str) -> int:
        return self._config.universe.by_symbol[symbol].lot_size

    def _count_update(self) -> None:
        self._updates += 1
        if self._updates >= UPDATES_PER_RUN:
            self._must_continue = True

    @workflow.signal(name=c.SIGNAL_ORDER_REPORT)
    def order_report(self, report: OrderReport) -> None:
        self._signals += 1
        if self._signals >= SIGNALS_PER_RUN:
            self._must_continue = True
        if not self._ready or len(report.fills) > REPORT_FILLS_KEPT:
            return
        try:
            if self._ledger.apply_report(report, cycle=self._s.cycle, exchange_time=self._stamp(self._moment())) or report.state.is_terminal:
                self._dirty = True
        except Exception:  # noqa: BLE001 — a report the ledger cannot take is logged, never a failed task
            workflow.logger.exception("report of %s could not be applied", report.intent_id)
