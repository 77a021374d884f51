"""The risk cycle, on whole multiples of `cycle_seconds` of exchange time: due events → quotes →
the exchange's step for open orders (executions delivered, silent orders read back) → exposure →
decision → on SOFT→HARD, the cycle's own SOFT orders replaced at bid/ask → de-risk intents
started with their arrival awaited → due desk orders, cancels and replaces (scenarios) → the
decision recorded and folded into the run digest. Every wait for an order is an activity with a
deadline, so fills land in the same order on every run and nothing an order does (or fails to
do) can stall the account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.clock import on_boundary, parse_hms, read_clock
    from domain.controls import RigOrder
    from domain.days import DayTally
    from domain.enums import IntentKind, OrderType, PriceRule, Regime, RiskMode, TradingState
    from domain.events import ExposureEvent, TimedEvent, build_shortcut
    from domain.exposure import Exposure
    from domain.ledger import Journal, Ledger, LedgerOrder, keep_last
    from domain.models import Intent, position_key
    from domain.planner import derisk_price, plan_derisk
    from domain.pnl import BodPosition
    from domain.policy import Decision, decide, decision_input
    from domain.reprice import RestingDerisk, plan_reprices
    from domain.rules import RigConfig
    from protocol import contract as c
    from protocol import run_digest
    from protocol.account_state import CycleState
    from protocol.messages import DecisionRecord, IntentRecord
    from workflows import metrics
    from workflows.account.clock import AccountClock, Slept
    from workflows.account.controls import AccountControls
    from workflows.account.firm import AccountFirm
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator
    from workflows.account.orders import AccountOrders

INTENTS_KEPT = 2_000


class AccountCycle:
    def __init__(
        self,
        account: str,
        state: CycleState,
        config: Callable[[], RigConfig],
        clock: AccountClock,
        market: AccountMarket,
        ledger: Ledger,
        orders: AccountOrders,
        operator: AccountOperator,
        update_room: Callable[[], int],
        defer_to_next_run: Callable[[], None],
        controls: AccountControls,
        firm: AccountFirm,
    ) -> None:
        self._account = account
        self._s = state
        self._config = config
        self._clock = clock
        self._market = market
        self._ledger = ledger
        self._orders = orders
        self._operator = operator
        self._update_room = update_room
        self._defer_to_next_run = defer_to_next_run
        self._controls = controls
        self._firm = firm

    @property
    def number(self) -> int:
        return self._s.cycle

    @property
    def mode(self) -> RiskMode:
        return self._s.mode

    def decisions(self) -> list[DecisionRecord]:
        return self._s.decisions

    def intents(self) -> list[IntentRecord]:
        return self._s.intents

    # ── one cycle ────────────────────────────────────────────────────────────────────────────
    async def run(self, now: datetime) -> DecisionRecord:
        self._s.cycle += 1
        stamp = self._clock.stamp(now)
        due = await self._due_events(now, stamp)
        await self._market.refresh(now)
        self._market.record_prices(stamp)
        await self._orders.venue_step(self._orders.turns(now), self._s.cycle, stamp)
        await self._firm.report(self._s.cycle, stamp)  # the grant (or the firm's halt) before this cycle's decisions
        if self._operator.trading_state is TradingState.HALTED:
            self._controls.sent(await self._orders.cancel_desk_orders(self._s.cycle, stamp))
        exposure = self._market.exposure()
        clock = read_clock(now.time(), self._config().rules)
        decision = decide(
            decision_input(exposure, clock.regime, clock.minutes_to_close, daily_loss_pct=self._market.pnl().daily_loss_pct), self._config().rules
        )
        previous = self._take_mode(decision)
        intents: list[Intent] = []
        skipped: list[str] = []
        if clock.in_session and decision.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK) and not self._operator.frozen:
            intents, skipped = await self._derisk(decision, previous, now, stamp)
        if self._market.outage is not None:  # the cycle went on with the last marks, each flagged stale
            skipped = [f"MARKET_DATA: unavailable, last marks kept — {self._market.outage}", *skipped]
        for event in due:
            await self._orders.apply_desk_event(event, self._s.cycle, stamp)
        return self._record(decision, clock.regime, exposure, intents, skipped, stamp)

    async def _due_events(self, now: datetime, stamp: str) -> list[TimedEvent]:
        """The timeline's events due now: exposure and trading-state events applied here; desk
        orders, cancels and replaces later in the cycle."""
        due = [e for e in self._s.pending_events if _due(e, now)]
        self._s.pending_events = self._s.pending_events[len(due) :]
        if self._market.feed is not None and any(e.exposure is not None and e.exposure.is_shortcut for e in due):
            await self._market.fetch(self._market.shortcut_symbols(), now)  # the market's marks size the shortcut's positions
        for event in due:
            if event.exposure is not None:
                self.apply_exposure(event.exposure)
            if event.trading_state is not None:
                self._operator.set_trading_state(event.trading_state, self._s.cycle, stamp)
        return due

    def _take_mode(self, decision: Decision) -> RiskMode:
        previous, self._s.mode = self._s.mode, decision.mode
        metrics.decision_made(decision.mode.value, decision.reason.value)
        if previous is not decision.mode:
            metrics.mode_changed(previous.value, decision.mode.value)
            workflow.upsert_search_attributes([c.SA_RISK_MODE.value_set(decision.mode.value)])
            workflow.logger.info("mode %s → %s: %s", previous.value, decision.mode.value, decision.sentence)
        if decision.mode is not RiskMode.HARD_DERISK:
            self._s.hard_base = {}
        return previous

    async def _derisk(self, decision: Decision, previous: RiskMode, now: datetime, stamp: str) -> tuple[list[Intent], list[str]]:
        """SOFT/HARD: reprice the cycle's own working orders (or escalate on entering HARD), then
        plan and issue de-risk intents for the symbols with fresh enough data. Returns the issued
        intents and what was skipped, for the log."""
        blocked = self._market.stale_symbols(decision.mode)
        if decision.mode is RiskMode.HARD_DERISK and previous is not RiskMode.HARD_DERISK:
            self._s.hard_base = {position_key(p.symbol, p.bucket): abs(p.quantity) for p in self._ledger.positions()}
        not_repriced = await self._reprice(decision.mode, previous, blocked, now, stamp)
        positions = self._ledger.positions()
        hard_base = {p.key: self._s.hard_base[position_key(*p.key)] for p in positions if position_key(*p.key) in self._s.hard_base}
        planned = plan_derisk(
            account=self._account,
            cycle=self._s.cycle,
            decision=decision,
            exposure=self._market.exposure(),
            positions=positions,
            open_orders=self._ledger.footprints(),
            quotes=self._market.quotes_for_positions(),
            config=self._config(),
            hard_base=hard_base,
            blocked=blocked,
        )
        planned, clipped = self._controls.clip(planned)
        planned, refused = self._checked(planned, now)
        issued, deferred = await self._issue(planned, now, stamp)
        return issued, list(blocked.values()) + not_repriced + clipped + refused + deferred

    def _checked(self, intents: list[Intent], now: datetime) -> tuple[list[Intent], list[str]]:
        """The rig's own orders pass the controls that make sense for them before they are sent; a
        refused one is not sent, noted with its reason, and planned again next cycle."""
        sent: list[Intent] = []
        refused: list[str] = []
        for intent in intents:
            price = intent.limit_price if intent.order_type is OrderType.LIMIT else None
            order = RigOrder(symbol=intent.symbol, side=intent.side, quantity=intent.quantity, limit_price=price)
            if (note := self._controls.refusal(intent.symbol, order, now)) is not None:
                refused.append(note)
            else:
                sent.append(intent)
        return sent, refused

    async def _replace_own(self, repriced: list[tuple[LedgerOrder, float, PriceRule, IntentKind]], now: datetime, stamp: str) -> list[str]:
        """The cycle's own orders replaced at their new prices, each checked first (a refused one
        stays as it is, noted); every replace sent is a message."""
        sent, refused = [], []
        for entry, price, rule, kind in repriced:
            order = RigOrder(symbol=entry.footprint.symbol, side=entry.footprint.side, quantity=entry.footprint.remaining, limit_price=price)
            if (note := self._controls.refusal(entry.footprint.symbol, order, now)) is not None:
                refused.append(f"{note} (its de-risk order not repriced)")
            else:
                sent.append((entry, price, rule, kind))
        await self._orders.replace_own(sent, self._s.cycle, stamp)
        self._controls.sent(len(sent))
        return refused

    async def _reprice(self, mode: RiskMode, previous: RiskMode, blocked: dict[str, str], now: datetime, stamp: str) -> list[str]:
        """The cycle's own working de-risk orders. With a market matched where the data is, every
        SOFT/HARD cycle: those the market moved away from by more than the rule's ticks are
        replaced at the price they would get now, and on HARD every SOFT one goes to the touch
        (domain/reprice.py). Otherwise on entering HARD only: SOFT orders replaced at bid/ask.
        Returns the log's notes for orders left alone on stale data."""
        if not self._market.matches_at_the_data():
            if mode is RiskMode.HARD_DERISK and previous is not RiskMode.HARD_DERISK:
                soft = [o for o in self._ledger.live_orders() if o.own and o.footprint.kind is IntentKind.SOFT_DERISK]
                priced = [
                    (o, *derisk_price(o.footprint.side, self._market.quote(o.footprint.symbol), mode, 0.0), IntentKind.HARD_DERISK) for o in soft
                ]
                return await self._replace_own(priced, now, stamp)
            return []
        own = [o for o in self._ledger.live_orders() if o.own and o.intent is not None and o.replacement is None]
        resting = [
            RestingDerisk(
                intent_id=o.intent_id, symbol=o.footprint.symbol, side=o.footprint.side, kind=o.intent.kind, limit_price=o.intent.limit_price
            )
            for o in own
            if o.intent is not None and o.intent.kind.is_derisk and o.intent.limit_price is not None
        ]
        rules = self._config().rules
        views = {} if self._market.outage is not None else self._market.views()  # an outage's frozen views look fresh: nothing is repriced on them
        plan = plan_reprices(resting, views, mode, rules.market_data, rules.derisk.truth_tick_offset)
        by_id = {o.intent_id: o for o in own}
        room = max(0, self._update_room())  # each replace is checked by this account: an update
        refused = await self._replace_own([(by_id[r.intent_id], r.price, r.price_rule, r.kind) for r in plan.reprices[:room]], now, stamp)
        stale = [f"{symbol}: STALE_DATA — {why} (its de-risk order not repriced)" for symbol, why in plan.skipped.items() if symbol not in blocked]
        return stale + refused

    async def _issue(self, intents: list[Intent], now: datetime, stamp: str) -> tuple[list[Intent], list[str]]:
        """Reserve and start the cycle's intents; those over this run's update budget wait for the
        next run (the next cycle plans them again). Returns the issued ones and a note for the log."""
        room = max(0, self._update_room())
        intents, deferred = intents[:room], intents[room:]
        note = [f"{len(deferred)} de-risk intents wait for the next run (update budget)"] if deferred else []
        if deferred:
            self._defer_to_next_run()
        if not intents:
            return intents, note
        expires = self._clock.close_after(now)
        for intent in intents:
            self._ledger.reserve(intent, own=True, cycle=self._s.cycle, expires_at=expires)
            metrics.derisk_intent(intent.kind.value, self._s.mode.value)
            keep_last(self._s.intents, IntentRecord(cycle=self._s.cycle, exchange_time=stamp, intent=intent), INTENTS_KEPT)
        await self._orders.start(intents, self._s.cycle, stamp)
        self._controls.sent(len(intents))
        return intents, note

    def _record(
        self, decision: Decision, regime: Regime, exposure: Exposure, intents: list[Intent], skipped: list[str], stamp: str
    ) -> DecisionRecord:
        record = DecisionRecord(
            cycle=self._s.cycle,
            exchange_time=stamp,
            regime=regime,
            mode=decision.mode,
            reason=decision.reason,
            sentence=decision.sentence,
            gross_pct=exposure.gross_exposure_pct,
            potential_pct=exposure.potential_exposure_pct,
            tolerance_pct=decision.tolerance_pct,
            gross_pct_after=self._market.exposure().gross_exposure_pct,
            intents=[i.intent_id for i in intents],
            inputs=decision.inputs,
            pnl=self._market.pnl().account,
            skipped=skipped,
        )
        keep_last(self._s.decisions, record, self._config().rules.risk_cycle.decisions_kept)
        self._controls.fold(self.fold_journal(), self._s.cycle, stamp)
        self._controls.alarm(self._s.cycle, stamp)
        run_digest.add_decision(self._s.digest, record)
        self._s.digest.seal()
        self._tally(record.mode, 1)
        return record

    def fold_journal(self) -> Journal:
        """What became final since the last fold, into the run digest (and the day's fill count)."""
        journal = self._ledger.take_journal()
        self._s.day.fills += len(journal.fills)
        for closed in journal.closed:
            if closed.outcome.lost_cause:
                metrics.order_lost(closed.outcome.lost_cause)
        run_digest.add_journal(self._s.digest, journal, self._account)
        return journal

    def _tally(self, mode: RiskMode, cycles: int) -> None:
        day = self._s.day
        day.first_cycle = day.first_cycle or self._s.cycle
        day.cycles += cycles
        day.modes[mode] = day.modes.get(mode, 0) + cycles

    def start_day(self) -> tuple[DayTally, list[DecisionRecord]]:
        """The roll: the closed session's tally and decision log; the next starts empty."""
        tally, decisions = self._s.day, self._s.decisions
        self._s.day, self._s.decisions = DayTally(), []
        return tally, decisions

    # ── around the cycles ────────────────────────────────────────────────────────────────────
    def apply_exposure(self, event: ExposureEvent) -> None:
        """Synthetic exposure (scenario and test accounts): equity, marks, or a whole new book."""
        if event.equity is not None:
            self._ledger.set_equity(event.equity)
        if event.replaces_book:
            if event.is_shortcut:
                positions, marks, resting = build_shortcut(event, self._ledger.equity, self._config(), self._market.shortcut_marks())
            else:
                positions, marks, resting = event.positions or [], {}, event.resting_orders or []
            self._market.set_marks(marks)
            self._market.set_marks(event.marks)
            # Booked at this moment's mark, as if held since the beginning of the day: P&L starts at 0.
            self._ledger.replace_book(
                [
                    BodPosition(
                        symbol=p.symbol,
                        bucket=p.bucket,
                        quantity=p.quantity,
                        avg_cost=self._market.mark_now(p.symbol),
                        mark=self._market.mark_now(p.symbol),
                    )
                    for p in positions
                ]
            )
            self._ledger.drop_synthetic()
            for order in resting:
                self._ledger.add_resting(order)
        self._market.set_marks(event.marks)

    def quiet(self, now: datetime, stop_at: str | None) -> list[time] | None:
        """Nothing can change the decision until the regime or a due event does (the last cycle ran
        on a cycle time, no order is open, marks come from the simulated feed, no de-risk): the
        extra moments that end the quiet stretch (the next due event, the stop); else None."""
        last = self._s.decisions[-1] if self._s.decisions else None
        rules = self._config().rules
        quiet = (
            last is not None
            and self._market.feed is None  # a market moves marks every cycle
            and on_boundary(datetime.strptime(last.exchange_time, "%H:%M:%S"), rules.risk_cycle.cycle_seconds)
            and (now - datetime.combine(now.date(), parse_hms(last.exchange_time))).total_seconds() < 1
            and all(o.synthetic for o in self._ledger.open_orders())
            and not self._firm.waiting_for_grant
            and not (read_clock(now.time(), rules).in_session and last.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK))
        )
        if not quiet:
            return None
        today = [e for e in self._s.pending_events[:1] if e.date is None or e.date == now.date().isoformat()]  # a later day's: after a close
        return [parse_hms(e.at) for e in today] + ([parse_hms(stop_at)] if stop_at else [])

    def slept(self, slept: Slept) -> None:
        """Cycle times slept through in a quiet stretch: the last decision's repeats."""
        if slept.repeats and slept.last is not None:
            until = slept.last + slept.repeats * timedelta(seconds=self._config().rules.risk_cycle.cycle_seconds)
            run_digest.add_quiet(self._s.digest, self._s.cycle + 1, slept.repeats, until.strftime("%H:%M:%S"))
        self._s.decisions[-1].repeats += slept.repeats
        self._s.cycle += slept.repeats
        if slept.repeats:
            self._tally(self._s.decisions[-1].mode, slept.repeats)

    async def expire_open_orders(self) -> None:
        """The end of a scenario day: every live order expires at the venue; then none is open."""
        for attempt in range(3):
            if all(o.synthetic for o in self._ledger.open_orders()):
                return
            self._s.cycle += 1
            now = self._clock.moment()
            await self._orders.venue_step(self._orders.turns(now, closing=True), self._s.cycle, self._clock.stamp(now), audit_all=attempt > 0)


def _due(event: TimedEvent, now: datetime) -> bool:
    """A timeline event is due at its time of day — on its date, when it has one (a multi-day run)."""
    if event.date is None:
        return parse_hms(event.at) <= now.time()
    return datetime.combine(date.fromisoformat(event.date), parse_hms(event.at)) <= now
