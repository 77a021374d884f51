"""RiskWorkflow: the account entity (id `risk-<account>`) and its periodic risk cycle.

It owns positions, open orders and applied fill ids; pre-trade checks for the account run here
one at a time (signal handlers of one workflow never interleave), so no two orders can jointly
breach a limit. Each cycle: due events → quotes → tick open orders (one venue attempt each) and
wait for their reports → exposure → decision → de-risk intents (started as order workflows,
their arrival reports awaited). Waiting for reports makes fills land in a deterministic order
whatever the wall-clock timing. Continues-as-new every `cycles_per_run` cycles.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market import QuoteRequest, market_quotes
    from activities.orders import CancelOrder, ReplaceOrder, StartOrders
    from domain.clock import ClockReading, read_clock, to_exchange_time
    from domain.enums import Bucket, IntentKind, OrderState, RejectReason, RiskMode
    from domain.events import ExposureEvent, SessionEvent, TimedEvent, build_shortcut, exposure_event_problem
    from domain.exposure import Exposure, compute_exposure
    from domain.market import quote_from_mark
    from domain.models import AccountSnapshot, Intent, OpenOrder, Position, Quote
    from domain.planner import derisk_price, plan_derisk
    from domain.policy import decide, decision_input
    from domain.pretrade import RawIntent, check_order
    from domain.venue import VenueParams
    from workflows import contract as c
    from workflows import metrics
    from workflows.messages import (
        CancelRequest,
        DecisionRecord,
        FillRecord,
        IntentRecord,
        LedgerOrder,
        OrderOutcome,
        OrderReport,
        PretradeReply,
        PretradeRequest,
        ReplaceRequest,
        ReplaceResult,
        RiskInput,
        RiskResult,
        RiskState,
        RiskView,
        VenueTick,
    )

CLIENT_TIMEOUT = timedelta(seconds=30)
QUOTE_TIMEOUT = timedelta(seconds=10)
FILL_IDS_KEPT = 20_000
OUTCOMES_KEPT = 2_000
FILLS_KEPT = 2_000
INTENTS_KEPT = 2_000


def keep_last(items: list, item: object, kept: int) -> None:
    """Append, dropping the oldest beyond `kept`: what the account carries stays bounded."""
    items.append(item)
    if len(items) > kept:
        del items[: len(items) - kept]


def position_key(symbol: str, bucket: Bucket) -> str:
    return f"{symbol}|{bucket.value}"


def parse_hms(text: str) -> time:
    parts = [int(p) for p in text.split(":")]
    return time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


@workflow.defn(name=c.RISK_WORKFLOW)
class RiskWorkflow:
    @workflow.init
    def __init__(self, inp: RiskInput) -> None:
        self._inp = inp
        self._config = inp.config
        self._rules = inp.config.rules
        self._instruments = inp.config.universe.by_symbol
        self._s = inp.state or RiskState(
            equity=inp.equity, pending_events=sorted(inp.timeline, key=lambda e: parse_hms(e.at))
        )
        self._fill_ids = dict.fromkeys(self._s.applied_fill_ids)
        self._quotes: dict[str, Quote] = {}
        self._wake = False
        # Anchored here, not in run: signals (pre-trade requests) may be handled before run starts.
        if self._s.clock_anchor_exchange is None:
            self._anchor_clock(inp.start_exchange_time, inp.exchange_date)
        elif self._s.clock_anchor_workflow is None:
            self._s.clock_anchor_workflow = workflow.now().isoformat()

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, inp: RiskInput) -> RiskResult:
        workflow.upsert_search_attributes([c.SA_ACCOUNT.value_set(inp.account), c.SA_RISK_MODE.value_set(self._s.mode.value)])
        cycles = 0
        if inp.state is not None:  # continued-as-new: the carried cycle already ran this minute
            await self._wait_for_next_cycle()
        while True:
            await self._cycle()
            cycles += 1
            if self._past_stop():
                await self._expire_open_orders("end of scenario")
                break
            if cycles >= self._rules.risk_cycle.cycles_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._s.applied_fill_ids = list(self._fill_ids)[-FILL_IDS_KEPT:]
                # The next run re-anchors the exchange clock on its own workflow time: a new
                # run's clock need not continue the old one's (time skipping, for one).
                self._s.clock_anchor_exchange = self._exchange_now().isoformat()
                self._s.clock_anchor_workflow = None
                workflow.continue_as_new(inp.model_copy(update={"state": self._s, "timeline": []}))
            await self._wait_for_next_cycle()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _cycle(self) -> None:
        s = self._s
        s.cycle += 1
        now = self._exchange_now()
        clock = read_clock(now.time(), self._rules)
        due = self._take_due_events(now)
        for event in due:
            if event.exposure is not None:
                self._apply_exposure(event.exposure)
        self._quotes = await workflow.execute_local_activity(
            market_quotes, QuoteRequest(marks=self._feed_marks()), start_to_close_timeout=QUOTE_TIMEOUT
        )
        await self._tick_open_orders(now, clock)
        exposure = self._exposure()
        decision = decide(decision_input(exposure, clock.regime, clock.minutes_to_close), self._rules)
        previous = s.mode
        s.mode = decision.mode
        metrics.decision_made(decision.mode.value, decision.reason.value)
        if previous is not decision.mode:
            metrics.mode_changed(previous.value, decision.mode.value)
            workflow.upsert_search_attributes([c.SA_RISK_MODE.value_set(decision.mode.value)])
            workflow.logger.info("mode %s → %s: %s", previous.value, decision.mode.value, decision.sentence)
        if decision.mode is not RiskMode.HARD_DERISK:
            s.hard_base = {}
        intents: list[Intent] = []
        if clock.in_session and decision.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK):
            if decision.mode is RiskMode.HARD_DERISK and previous is not RiskMode.HARD_DERISK:
                s.hard_base = {k: abs(p.quantity) for k, p in s.positions.items()}
                await self._replace_soft_orders()
                exposure_now = self._exposure()  # the replacements are open orders now
            else:
                exposure_now = exposure
            intents = plan_derisk(
                account=self._inp.account, cycle=s.cycle, decision=decision, exposure=exposure_now,
                positions=list(s.positions.values()), open_orders=self._open_orders(), quotes=self._quotes_for_positions(),
                config=self._config, hard_base={s.positions[k].key: base for k, base in s.hard_base.items() if k in s.positions},
            )
            await self._issue(intents, now)
        for event in due:
            await self._apply_order_event(event, now)
        record = DecisionRecord(
            cycle=s.cycle, exchange_time=now.strftime("%H:%M:%S"), regime=clock.regime.value, mode=decision.mode,
            reason=decision.reason.value, sentence=decision.sentence, gross_pct=exposure.gross_exposure_pct,
            potential_pct=exposure.potential_exposure_pct, tolerance_pct=decision.tolerance_pct,
            gross_pct_after=self._exposure().gross_exposure_pct, intents=[i.intent_id for i in intents],
        )
        keep_last(s.decisions, record, self._rules.risk_cycle.decisions_kept)
        workflow.set_current_details(self._details(record))

    # ── clock and events ─────────────────────────────────────────────────────────────────────
    def _anchor_clock(self, start: str | None, date: str | None) -> None:
        local_now = to_exchange_time(workflow.now(), self._rules).replace(tzinfo=None)
        day = datetime.fromisoformat(date).date() if date else local_now.date()
        at = parse_hms(start) if start else local_now.time()
        self._s.clock_anchor_exchange = datetime.combine(day, at).isoformat()
        self._s.clock_anchor_workflow = workflow.now().isoformat()

    def _exchange_now(self) -> datetime:
        anchor_x = datetime.fromisoformat(self._s.clock_anchor_exchange or "")
        anchor_w = datetime.fromisoformat(self._s.clock_anchor_workflow or "")
        return anchor_x + (workflow.now() - anchor_w)

    async def _wait_for_next_cycle(self) -> None:
        """Until the next cycle time, or at once when an injected event wakes the cycle."""
        self._wake = False
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=self._until_next_cycle())
        except asyncio.TimeoutError:
            pass

    def _until_next_cycle(self) -> timedelta:
        """Cycles fall on whole multiples of cycle_seconds of exchange time (16:15:00, 16:16:00…)."""
        period = self._rules.risk_cycle.cycle_seconds
        now = self._exchange_now()
        into = (now - datetime.combine(now.date(), time(0))).total_seconds() % period
        return timedelta(seconds=period - into)

    def _past_stop(self) -> bool:
        if self._inp.stop_at is None:
            return False
        return self._exchange_now().time() >= parse_hms(self._inp.stop_at)

    def _take_due_events(self, now: datetime) -> list[TimedEvent]:
        due = [e for e in self._s.pending_events if parse_hms(e.at) <= now.time()]
        self._s.pending_events = self._s.pending_events[len(due) :]
        return due

    def _apply_exposure(self, event: ExposureEvent) -> None:
        s = self._s
        if event.equity is not None:
            s.equity = event.equity
        if event.replaces_book:
            if event.is_shortcut:
                positions, marks, resting = build_shortcut(event, s.equity, self._config)
            else:
                positions, marks, resting = event.positions or [], {}, event.resting_orders or []
            s.positions = {position_key(p.symbol, p.bucket): p for p in positions}
            s.marks.update(marks)
            s.open_orders = {k: o for k, o in s.open_orders.items() if not o.synthetic}
            for order in resting:
                s.open_orders[order.intent_id] = LedgerOrder(order=order, quantity=order.remaining, synthetic=True, state=OrderState.WORKING)
        s.marks.update(event.marks)

    async def _apply_order_event(self, event: TimedEvent, now: datetime) -> None:
        account = self._inp.account
        if event.order is not None:
            spec = event.order
            intent_id = f"{account}-{spec.id}"
            raw = spec.model_dump(exclude={"id"}) | {"intent_id": intent_id, "account": account}
            await workflow.execute_activity(
                "start_orders", StartOrders(intents=[raw]),
                start_to_close_timeout=CLIENT_TIMEOUT,
            )
            await workflow.wait_condition(lambda: self._reported(intent_id, self._s.cycle))
        if event.cancel is not None:
            intent_id = f"{account}-{event.cancel.id}"
            await workflow.execute_activity(
                "cancel_order", CancelOrder(intent_id=intent_id, request=CancelRequest(reason=event.cancel.reason)),
                start_to_close_timeout=CLIENT_TIMEOUT,
            )
            await workflow.wait_condition(lambda: intent_id in self._s.outcomes)

    def _reported(self, intent_id: str, cycle: int) -> bool:
        if intent_id in self._s.outcomes:
            return True
        entry = self._s.open_orders.get(intent_id)
        return entry is not None and entry.last_report_cycle >= cycle

    # ── orders ───────────────────────────────────────────────────────────────────────────────
    async def _tick_open_orders(self, now: datetime, clock: ClockReading) -> None:
        cycle = self._s.cycle
        live = [o for o in self._s.open_orders.values() if not o.synthetic and o.state in (OrderState.WORKING, OrderState.PARTIAL_FILL)]
        ticks = []
        for entry in live:
            closed = bool(entry.expires_at) and now.isoformat() >= entry.expires_at
            tick = VenueTick(cycle=cycle, exchange_time=clock.exchange_time, quote=self._quote(entry.order.symbol), session_closed=closed)
            ticks.append(workflow.get_external_workflow_handle(entry.order.intent_id).signal(c.SIGNAL_VENUE_TICK, tick))
        await asyncio.gather(*ticks)
        ids = [e.order.intent_id for e in live]
        await workflow.wait_condition(lambda: all(self._reported(i, cycle) for i in ids))

    async def _expire_open_orders(self, why: str) -> None:
        live = [o for o in self._s.open_orders.values() if not o.synthetic]
        for entry in live:
            entry.expires_at = self._exchange_now().isoformat()
        if live:
            workflow.logger.info("expiring %d open orders: %s", len(live), why)
            self._s.cycle += 1
            now = self._exchange_now()
            await self._tick_open_orders(now, read_clock(now.time(), self._rules))
            await workflow.wait_condition(lambda: not any(not o.synthetic for o in self._s.open_orders.values()))

    async def _replace_soft_orders(self) -> None:
        """SOFT → HARD: working SOFT orders are replaced (cancel → ack → new) at bid/ask."""
        soft = [o for o in self._s.open_orders.values() if not o.synthetic and o.order.kind is IntentKind.SOFT_DERISK and o.state.is_open]
        new_ids: list[str] = []
        for entry in soft:
            order = entry.order
            price, rule = derisk_price(order.side, self._quote(order.symbol), RiskMode.HARD_DERISK, 0.0)
            outcome = await workflow.execute_activity(
                "replace_order",
                ReplaceOrder(intent_id=order.intent_id, request=ReplaceRequest(quantity=entry.quantity, limit_price=price, kind=IntentKind.HARD_DERISK, price_rule=rule)),
                start_to_close_timeout=CLIENT_TIMEOUT,
                result_type=ReplaceResult,
            )
            if outcome.new_intent_id:
                new_ids.append(outcome.new_intent_id)
        cycle = self._s.cycle
        await workflow.wait_condition(lambda: all(self._reported(i, cycle) for i in new_ids))

    async def _issue(self, intents: list[Intent], now: datetime) -> None:
        if not intents:
            return
        s = self._s
        for intent in intents:
            s.open_orders[intent.intent_id] = LedgerOrder(
                order=self._open_order(intent), intent=intent, quantity=intent.quantity, expires_at=self._expiry(now)
            )
            keep_last(s.intents, IntentRecord(cycle=s.cycle, exchange_time=now.strftime("%H:%M:%S"), intent=intent), INTENTS_KEPT)
        await workflow.execute_activity(
            "start_orders",
            StartOrders(intents=[i.model_dump(mode="json") for i in intents]),
            start_to_close_timeout=CLIENT_TIMEOUT,
        )
        ids = [i.intent_id for i in intents]
        await workflow.wait_condition(lambda: all(self._reported(i, s.cycle) for i in ids))

    def _expiry(self, placed: datetime) -> str:
        close = parse_hms(self._rules.session.close)
        day = placed.date() if placed.time() < close else placed.date() + timedelta(days=1)
        return datetime.combine(day, close).isoformat()

    @staticmethod
    def _open_order(intent: Intent) -> OpenOrder:
        return OpenOrder(
            intent_id=intent.intent_id, symbol=intent.symbol, bucket=intent.bucket, side=intent.side,
            remaining=intent.quantity, kind=intent.kind, reduce_only=intent.reduce_only, limit_price=intent.limit_price,
        )

    # ── exposure ─────────────────────────────────────────────────────────────────────────────
    def _held_symbols(self) -> dict[str, None]:
        symbols = dict.fromkeys(p.symbol for p in self._s.positions.values())
        symbols.update(dict.fromkeys(o.order.symbol for o in self._s.open_orders.values()))
        return symbols

    def _feed_marks(self) -> dict[str, float]:
        """What the market-data feed is asked to quote: the injected mark or the reference price."""
        return {sym: self._stored_mark(sym) for sym in self._held_symbols()}

    def _stored_mark(self, symbol: str) -> float:
        return self._s.marks.get(symbol) or self._instruments[symbol].reference_price

    def _quote(self, symbol: str) -> Quote:
        """This cycle's quote from the feed; between cycles (a new symbol), the feed's rule."""
        return self._quotes.get(symbol) or quote_from_mark(self._stored_mark(symbol))

    def _quotes_for_positions(self) -> dict[str, Quote]:
        return {p.symbol: self._quote(p.symbol) for p in self._s.positions.values()}

    def _open_orders(self) -> list[OpenOrder]:
        return [o.order for o in self._s.open_orders.values()]

    def _exposure(self) -> Exposure:
        marks = {sym: self._quote(sym).truth_tick for sym in self._held_symbols()}
        return compute_exposure(self._s.equity, list(self._s.positions.values()), self._open_orders(), marks, self._config)

    # ── signals from orders ──────────────────────────────────────────────────────────────────
    @workflow.signal(name=c.SIGNAL_PRETRADE_REQUEST)
    async def pretrade_request(self, request: PretradeRequest) -> None:
        reply = self._judge(request)
        await workflow.get_external_workflow_handle(request.order_workflow_id).signal(c.SIGNAL_PRETRADE_VERDICT, reply)

    def _judge(self, request: PretradeRequest) -> PretradeReply:
        s = self._s
        intent_id = request.order_workflow_id
        entry = s.open_orders.get(intent_id)
        if entry is not None and entry.intent is not None:  # our own de-risk intent: reserved already
            return self._approval(entry.intent, "de-risk intent of the risk cycle")
        if intent_id in s.outcomes or entry is not None:
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message=f"{intent_id} was already checked")
        raw = RawIntent.model_validate(request.raw_intent | {"issued_in_mode": s.mode.value})
        if raw.account != self._inp.account:
            return PretradeReply(approved=False, reason=RejectReason.BAD_ACCOUNT, message=f"account {raw.account!r} is not {self._inp.account!r}")
        # The order's mark is the truth tick exposure uses. model_construct: the ledger holds
        # validated models already; re-validating them per request would make the serialized
        # pre-trade path quadratic in open orders.
        known = isinstance(raw.symbol, str) and raw.symbol in self._instruments
        marks = {raw.symbol: self._quote(raw.symbol).truth_tick} if known else {}
        snapshot = AccountSnapshot.model_construct(equity=s.equity, positions=list(s.positions.values()), open_orders=self._open_orders(), marks=marks)
        verdict = check_order(raw, snapshot, self._exposure(), s.mode, self._config)
        if not verdict.approved or verdict.intent is None:
            return PretradeReply(approved=False, reason=verdict.reason, message=verdict.message)
        intent = verdict.intent
        s.open_orders[intent_id] = LedgerOrder(order=self._open_order(intent), quantity=intent.quantity, expires_at=self._expiry(self._exchange_now()))
        return self._approval(intent, verdict.message)

    def _approval(self, intent: Intent, message: str) -> PretradeReply:
        fills = self._rules.fills
        return PretradeReply(
            approved=True, message=message, intent=intent, quote=self._quote(intent.symbol), cycle=self._s.cycle,
            lot_size=self._instruments[intent.symbol].lot_size,
            venue=VenueParams(
                seed=self._inp.seed, fill_probability=fills.probability(intent.issued_in_mode),
                partial_fill_probability=fills.partial_fill_probability, cancel_cross_probability=fills.cancel_cross_probability,
            ),
        )

    @workflow.signal(name=c.SIGNAL_ORDER_REPORT)
    def order_report(self, report: OrderReport) -> None:
        s = self._s
        for fill in report.new_fills:
            if fill.fill_id in self._fill_ids:
                continue
            self._fill_ids[fill.fill_id] = None
            record = FillRecord(
                exchange_time=self._exchange_now().strftime("%H:%M:%S"), fill_id=fill.fill_id, intent_id=fill.intent_id,
                symbol=fill.symbol, side=fill.side.value, quantity=fill.quantity, price=fill.price,
            )
            keep_last(s.fills, record, FILLS_KEPT)
            key = position_key(fill.symbol, fill.bucket)
            held = s.positions.get(key)
            qty = (held.quantity if held else 0) + fill.signed_quantity
            s.positions[key] = Position(symbol=fill.symbol, bucket=fill.bucket, quantity=qty)
        entry = s.open_orders.get(report.intent_id)
        if entry is not None:
            entry.state = report.state
            entry.filled_quantity = report.filled_quantity
            entry.order.remaining = max(0, entry.quantity - report.filled_quantity)
            entry.last_report_cycle = max(entry.last_report_cycle, report.cycle)
        if report.state.is_terminal:
            s.open_orders.pop(report.intent_id, None)
            kind = entry.order.kind if entry else IntentKind.NEW
            s.outcomes[report.intent_id] = OrderOutcome(
                intent_id=report.intent_id, state=report.state, quantity=report.quantity, filled_quantity=report.filled_quantity,
                kind=kind, reject_reason=report.reject_reason, cancel_reason=report.cancel_reason, replaced_by=report.replaced_by,
            )
            while len(s.outcomes) > OUTCOMES_KEPT:
                del s.outcomes[next(iter(s.outcomes))]

    # ── synthetic events (updates with validators) ───────────────────────────────────────────
    @workflow.update(name=c.UPDATE_INJECT_EXPOSURE)
    def inject_exposure(self, event: ExposureEvent) -> str:
        self._apply_exposure(event)
        self._wake = True
        exposure = self._exposure()
        return f"applied: gross {exposure.gross_exposure_pct:.2f}%, potential {exposure.potential_exposure_pct:.2f}%; a cycle runs now"

    @inject_exposure.validator
    def _validate_exposure(self, event: ExposureEvent) -> None:
        problem = exposure_event_problem(event, self._config)
        if problem:
            raise ValueError(problem)

    @workflow.update(name=c.UPDATE_SET_SESSION)
    def set_session(self, event: SessionEvent) -> str:
        self._anchor_clock(event.exchange_time, event.exchange_date)
        self._wake = True
        return f"exchange clock set to {self._s.clock_anchor_exchange}"

    @set_session.validator
    def _validate_session(self, event: SessionEvent) -> None:
        if event.exchange_date is not None:
            try:
                datetime.fromisoformat(event.exchange_date)
            except ValueError:
                raise ValueError(f"exchange_date {event.exchange_date!r} is not a date (YYYY-MM-DD)") from None

    # ── queries ──────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def state(self) -> RiskView:
        now = self._exchange_now()
        clock = read_clock(now.time(), self._rules)
        return RiskView(
            account=self._inp.account, cycle=self._s.cycle, exchange_time=now.isoformat(), regime=clock.regime.value,
            mode=self._s.mode, last_decision=self._s.decisions[-1] if self._s.decisions else None, exposure=self._exposure(),
            positions=list(self._s.positions.values()), open_orders=list(self._s.open_orders.values()),
            recent_decisions=self._s.decisions[-20:],
        )

    @workflow.query(name=c.QUERY_EXPOSURE)
    def exposure(self) -> Exposure:
        return self._exposure()

    @workflow.query(name=c.QUERY_DECISIONS)
    def decisions(self) -> list[DecisionRecord]:
        return list(self._s.decisions)

    def _result(self) -> RiskResult:
        return RiskResult(
            account=self._inp.account, decisions=self._s.decisions, intents=self._s.intents, outcomes=self._s.outcomes,
            fills=self._s.fills, hard_cap_pct=self._rules.hard_cap_pct, final_exposure=self._exposure(),
            positions=list(self._s.positions.values()),
        )

    def _details(self, record: DecisionRecord) -> str:
        return (
            f"**{record.mode.value}** ({record.reason}) at {record.exchange_time} {record.regime}\n\n"
            f"gross {record.gross_pct:.2f}% → {record.gross_pct_after:.2f}% "
            f"(tolerance {record.tolerance_pct:g}%), potential {record.potential_pct:.2f}%; "
            f"{len(self._s.open_orders)} open orders; cycle {record.cycle}"
        )
