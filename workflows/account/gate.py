"""The account's pre-trade gate: one judgment at a time against the book (domain/gate.py), and
with the simulated exchange, the approved order's arrival in the same round trip — with a named
market, at the exchange step as of the arrival (the L1 then, its queue place kept), else on the
order's quote (the simulated feed's mode probabilities).

A request for an order the account already knows — its own reserved intent, a retried request,
a reset order — gets the same answer again, with the account's record of it (a reset order
adopts it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.clock import exchange_instant, read_clock
    from domain.enums import OrderState, RejectReason, RiskMode, TradingState
    from domain.gate import GateContext, gate_desk_intent, gate_replacement
    from domain.ledger import Ledger
    from domain.models import Intent
    from domain.order import OrderReport, arrival
    from domain.rules import RigConfig
    from protocol import contract as c
    from protocol.account_state import GateState
    from protocol.messages import PretradeReply, PretradeRequest, ReplaceCheck, VenueKind
    from venues.sim.exchange import SimExchange
    from venues.sim.model import within_position
    from workflows.account.clock import AccountClock
    from workflows.account.controls import controls_wired
    from workflows.account.firm import AccountFirm
    from workflows.account.market import AccountMarket


class AccountGate:
    def __init__(
        self,
        account: str,
        state: GateState,
        venue: VenueKind,
        venue_task_queue: str,
        ledger: Ledger,
        clock: AccountClock,
        market: AccountMarket,
        exchange: SimExchange,
        config: Callable[[], RigConfig],
        mode: Callable[[], RiskMode],
        trading_state: Callable[[], TradingState],
        cycle: Callable[[], int],
        expiry: Callable[[datetime], str],
        changed: Callable[[], None],
        firm: AccountFirm,
    ) -> None:
        self._account = account
        self._s = state
        self._venue = venue
        self._venue_task_queue = venue_task_queue
        self._ledger = ledger
        self._clock = clock
        self._market = market
        self._exchange = exchange
        self._config = config
        self._mode = mode
        self._trading_state = trading_state
        self._cycle = cycle
        self._expiry = expiry
        self._changed = changed
        self._firm = firm
        self._lock = asyncio.Lock()  # one judgment at a time, even across a market-data fetch

    def _context(self) -> GateContext:
        now = self._clock.moment()
        config = self._config()
        market = self._market
        return GateContext(
            account=self._account,
            ledger=self._ledger,
            mode=self._mode(),
            regime=read_clock(now.time(), config.rules).regime,
            quote_of=self._market.quote,
            config=config,
            trading_state=self._trading_state(),
            controls=self._s.controls,
            now_seconds=workflow.now().timestamp(),
            collar_reference_of=lambda symbol: market.collar_reference(symbol, now),
            wired=controls_wired(config.rules),
            top_of=lambda symbol: market.top(symbol, now),
            firm_check=self._firm.refusal if self._firm.firm is not None else None,
        )

    # ── a new order ──────────────────────────────────────────────────────────────────────────
    async def pretrade(self, request: PretradeRequest) -> PretradeReply:
        async with self._lock:  # held through the arrival: the next judgment sees this one's book
            symbol = request.raw_intent.get("symbol")
            if isinstance(symbol, str):
                await self._market.know(symbol, self._clock.moment())
            reply, arriving = self._pretrade(request)
            return await self._arrive(arriving, reply) if arriving is not None else reply

    def _pretrade(self, request: PretradeRequest) -> tuple[PretradeReply, Intent | None]:
        """The verdict, and the intent whose arrival runs with it (None: nothing arrives now)."""
        intent_id = request.intent_id
        quantity = request.raw_intent.get("quantity")
        if type(quantity) is int:  # a reserved replacement asks for what its original left (never more)
            self._ledger.shrink_reserved(intent_id, quantity)
        entry = self._ledger.open_order(intent_id)
        if entry is not None and entry.intent is not None and entry.own and entry.state is OrderState.ACCEPTED and not entry.filled:
            return self.approval(entry.intent, "the risk cycle's own intent"), entry.intent  # its first word: it arrives
        if entry is not None and entry.intent is not None and entry.intent.replaces and entry.state is OrderState.ACCEPTED:
            self._placed_by_order(entry.intent)
        known = self.known(intent_id)
        if known is not None:
            return known, None
        if request.raw_intent.get("intent_id", intent_id) != intent_id:
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message="intent_id differs from the request's"), None
        context = self._context()
        verdict = gate_desk_intent(request.raw_intent | {"intent_id": intent_id}, context)
        self._s.controls = context.controls
        if not verdict.approved or verdict.intent is None:
            self._ledger.record_refusal(verdict.intent, intent_id, verdict.reason or RejectReason.MALFORMED_INTENT, verdict.message)
            return PretradeReply(approved=False, reason=verdict.reason, message=verdict.message), None
        self._ledger.reserve(verdict.intent, own=False, cycle=self._cycle(), expires_at=self._expiry(self._clock.moment()))
        self._changed()
        return self.approval(verdict.intent, verdict.message), verdict.intent

    async def _arrive(self, intent: Intent, reply: PretradeReply) -> PretradeReply:
        """The simulated exchange's arrival (acknowledge and first attempt) runs here, with the
        verdict, where the book is: the order gets the events in one round trip and sends no
        report — the account applied them already. With a named market it runs at the exchange
        step as of the arrival (the L1 then; its queue place kept for the cycles after). A
        broker's arrival happens at the broker."""
        if self._venue is not VenueKind.SIM:
            return reply
        moment = self._clock.moment()
        order = reply.sim_order()
        if self._market.matches_at_the_data():
            events = await self._market.arrive(order, moment)
            if order.position is not None:
                events = within_position(events, intent, order.position)
        else:
            events = self._exchange.arrive(order)
        self._ledger.apply_report(arrival(intent, events), cycle=self._cycle(), exchange_time=self._clock.stamp(moment))
        return reply.model_copy(update={"arrival": events})

    def _placed_by_order(self, replacement: Intent) -> None:
        """A desk's replacement, reserved by its replace check, asks now: its order places it
        itself (venues/sim/activities.py) against the view in this answer — with a named market
        the exchange keeps its queue place from that view's L1, arrived now."""
        if self._venue is VenueKind.SIM and self._market.matches_at_the_data():
            self._exchange.placed_by_order(replacement, exchange_instant(self._clock.moment(), self._config().rules))

    def known(self, intent_id: str) -> PretradeReply | None:
        """A request for an order the account already knows gets the same answer, with the
        account's record (a retried replace check must not put the replacement at the venue
        before its original is canceled: only the order's own pre-trade runs its arrival)."""
        entry = self._ledger.open_order(intent_id)
        if entry is not None and entry.intent is not None:
            report = OrderReport(
                intent_id=intent_id,
                state=entry.state,
                quantity=entry.intent.quantity,
                filled_quantity=entry.filled,
                fills=self._ledger.fills_of(intent_id),
            )
            return self.approval(entry.intent, "known to the account", known=report)
        outcome = self._ledger.outcome(intent_id)
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

    # ── a cancel/replace ─────────────────────────────────────────────────────────────────────
    def replace_check(self, check: ReplaceCheck) -> PretradeReply:
        expected = c.next_replacement_id(check.original_id)
        known = self.known(expected)
        if known is not None:
            return known
        context = self._context()
        verdict = gate_replacement(check.original_id, check.raw_replacement, context, expected)
        self._s.controls = context.controls
        if not verdict.approved or verdict.intent is None:
            return PretradeReply(approved=False, reason=verdict.reason, message=verdict.message)
        original = self._ledger.open_order(check.original_id)
        assert original is not None  # gate_replacement refuses an order that is not open
        self._ledger.reserve(verdict.intent, own=original.own, cycle=self._cycle(), expires_at=original.expires_at)
        self._ledger.start_replacing(check.original_id, verdict.intent.intent_id)
        self._changed()
        return self.approval(verdict.intent, verdict.message)

    def approval(self, intent: Intent, message: str, known: OrderReport | None = None) -> PretradeReply:
        market = self._market.view(intent.symbol)
        return PretradeReply(
            approved=True,
            message=message,
            intent=intent,
            quote=self._market.quote(intent.symbol),
            venue=self._venue,
            venue_task_queue=self._venue_task_queue if self._venue is VenueKind.IBKR else None,
            lot_size=self._exchange.lot(intent.symbol),
            known=known,
            venue_params=self._exchange.params(intent.issued_in_mode),
            position=self._ledger.position(intent.key),
            market=market,
            market_rule=self._config().rules.market_data if market is not None else None,
        )
