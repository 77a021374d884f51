"""RiskWorkflow: the account entity (id `risk-<account>`) and its periodic risk cycle.

This module is the Temporal wiring; the parts are elsewhere: the book (domain/ledger.py), the
pre-trade gate (domain/gate.py), the policy table and the planner (domain/), the calls to
orders (activities/account_calls.py) and the reading of their results (workflows/account_orders.py).

Each cycle, on whole multiples of `cycle_seconds` of exchange time: due events → quotes → the
venue's step for open orders (executions delivered, silent orders read back) → exposure →
decision → on SOFT→HARD, the cycle's own SOFT orders replaced at bid/ask → de-risk intents
started with their arrival awaited → due desk orders, cancels and replaces (scenarios). Every
wait for an order is an activity with a deadline, so fills land in the same order on every run
and nothing an order does (or fails to do) can stall the account. A quiet stretch — nothing
that can change the decision — is slept through and shown as one row per cycle time.
Continues-as-new every `cycles_per_run` cycles, before the update limit, or when suggested.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.scenarios import load_default_config
    from domain.clock import parse_hms, read_clock
    from domain.enums import IntentKind, RiskMode, TradingState
    from domain.events import ExposureEvent, TimedEvent, build_shortcut
    from domain.exposure import Exposure
    from domain.ledger import BookState, Ledger, keep_last
    from domain.marketdata import MarketView, Print
    from domain.models import Intent, Quote
    from domain.planner import derisk_price, plan_derisk
    from domain.pnl import BodPosition
    from domain.policy import decide, decision_input
    from domain.rules import RigConfig, RiskRules
    from protocol import contract as c
    from protocol.carry import pack, unpack
    from protocol.decision_log import expand
    from protocol.messages import (
        DecisionRecord,
        IntentRecord,
        RiskInput,
        RiskResult,
        RiskState,
        RiskView,
    )
    from protocol.parse import first_error
    from protocol.run_digest import run_digest
    from workflows import metrics
    from workflows.account_clock import AccountClock
    from workflows.account_gate import UPDATES_HARD_LIMIT, AccountGate
    from workflows.account_market import AccountMarket
    from workflows.account_operator import AccountOperator
    from workflows.account_orders import AccountOrders

CONFIG_TIMEOUT = timedelta(seconds=10)
INTENTS_KEPT = 2_000
OPEN_ORDERS_SHOWN = 500  # the state query lists this many (an account may work thousands); the count is exact


@workflow.defn(name=c.RISK_WORKFLOW)
class RiskWorkflow(AccountClock, AccountMarket, AccountGate, AccountOperator):
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._problem: str | None = None
        try:
            inp = RiskInput.model_validate(raw)
        except ValidationError as err:  # the run fails cleanly with this; no task ever fails
            self._problem = first_error(err, "(input)")
            inp = RiskInput.model_construct(account="invalid", synthetic=False)
        self._inp = inp
        self._quotes: dict[str, Quote] = {}
        self._quoted_marks: dict[str, float] | None = None
        self._views: dict[str, MarketView] = {}  # with a named market: each symbol's latest view
        self._prints: dict[str, list[Print]] = {}  # … and the prints since the last cycle
        self._prints_since: datetime | None = None
        self._wake = False  # run a cycle now (an injected event)
        self._dirty = False  # something changed: a quiet sleep ends at the next cycle time
        self._must_continue = False
        self._cycle_time: datetime | None = None
        self._gate_lock = asyncio.Lock()
        self._updates = self._signals = 0
        self._ready = False  # until the rules are known: requests are refused ("starting")
        if not self._problem and inp.config is not None:
            self._setup(inp.config)

    def _setup(self, config: RigConfig) -> None:
        inp = self._inp
        self._config = config
        if inp.carried:
            carried = unpack(inp.carried)
            self._s, book = carried.state, carried.book
        else:
            self._s = RiskState(pending_events=sorted(inp.timeline, key=lambda e: parse_hms(e.at)))
            book = BookState(equity=inp.equity)
        self._ledger = Ledger(book)
        if not inp.carried and inp.bod:
            self._ledger.replace_book(inp.bod)
        self._orders = AccountOrders(inp.account, self._ledger, self._s.answers)
        # Anchored here, not in run: pre-trade updates may be handled before run starts.
        if inp.synthetic and self._s.clock_anchor_exchange is None:
            self._anchor_clock(inp.start_exchange_time, inp.exchange_date)
        elif inp.synthetic and self._s.clock_anchor_workflow is None:
            self._s.clock_anchor_workflow = workflow.now().isoformat()  # a new run re-anchors on its own time
        self._ready = True

    @property
    def _rules(self) -> RiskRules:
        return self._config.rules

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, raw: Any) -> RiskResult:
        if self._problem:
            raise ApplicationError(f"invalid account input: {self._problem}", type="InvalidAccountInput", non_retryable=True)
        if not self._ready:  # opened without rules (e.g. from the `temporal` CLI): the worker's, recorded here
            self._setup(await workflow.execute_local_activity(load_default_config, start_to_close_timeout=CONFIG_TIMEOUT))
        inp = self._inp
        workflow.upsert_search_attributes(
            [
                c.SA_ACCOUNT.value_set(inp.account),
                c.SA_RISK_MODE.value_set(self._s.mode.value),
                c.SA_TRADING_STATE.value_set(TradingState.ACTIVE.value),
                c.SA_VENUE.value_set(inp.venue.value),
            ]
        )
        cycles = 0
        if inp.carried:  # continued-as-new: the carried cycle already ran this minute
            await self._sleep()
        while True:
            await self._cycle()
            cycles += 1
            if self._past_stop():
                await self._expire_open_orders()
                break
            while True:
                if cycles >= self._rules.risk_cycle.cycles_per_run or self._must_continue or workflow.info().is_continue_as_new_suggested():
                    await self._continue_as_new()
                await self._sleep()
                if not self._must_continue:
                    break
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _continue_as_new(self) -> None:
        self._must_continue = True  # refuse new updates meanwhile (they retry on the next run)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._inp.synthetic:  # the next run re-anchors the virtual day on its own workflow time
            self._s.clock_anchor_exchange, self._s.clock_anchor_workflow = self._now().isoformat(), None
        carried = pack(self._s, self._ledger.carried())
        workflow.continue_as_new(self._inp.model_copy(update={"carried": carried, "timeline": [], "bod": []}))

    # ── the cycle ────────────────────────────────────────────────────────────────────────────
    async def _cycle(self) -> None:
        s = self._s
        s.cycle += 1
        # The cycle's own time, to the second: a timer fires a few milliseconds after its cycle
        # time, by an amount the machine decides; what the cycle reads (market data as of, DAY
        # expiry) must not depend on that.
        now = self._now().replace(microsecond=0)
        self._cycle_time = now
        clock = read_clock(now.time(), self._rules)
        due = self._take_due_events(now)
        if self._inp.market is not None and any(e.exposure is not None and e.exposure.is_shortcut for e in due):
            await self._fetch_market(self._shortcut_symbols(), now)  # the market's marks size the shortcut's positions
        for event in due:
            if event.exposure is not None:
                self._apply_exposure(event.exposure)
            if event.trading_state is not None:
                self._set_trading_state(event.trading_state, now)
        await self._refresh_quotes(now)
        self._record_prices(now)
        await self._orders.venue_step(self._venue_turns(now), s.cycle, self._stamp(now))
        if s.trading_state is TradingState.HALTED:
            await self._orders.cancel_desk_orders(s.cycle, self._stamp(now))
        exposure = self._exposure()
        pnl = self._pnl()
        decision = decide(decision_input(exposure, clock.regime, clock.minutes_to_close, daily_loss_pct=pnl.daily_loss_pct), self._rules)
        previous, s.mode = s.mode, decision.mode
        metrics.decision_made(decision.mode.value, decision.reason.value)
        if previous is not decision.mode:
            metrics.mode_changed(previous.value, decision.mode.value)
            workflow.upsert_search_attributes([c.SA_RISK_MODE.value_set(decision.mode.value)])
            workflow.logger.info("mode %s → %s: %s", previous.value, decision.mode.value, decision.sentence)
        if decision.mode is not RiskMode.HARD_DERISK:
            s.hard_base = {}
        intents: list[Intent] = []
        blocked: dict[str, str] = {}
        deferred: list[str] = []
        if clock.in_session and decision.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK) and not s.frozen:
            blocked = self._stale_symbols(decision.mode)
            if decision.mode is RiskMode.HARD_DERISK and previous is not RiskMode.HARD_DERISK:
                s.hard_base = {k: abs(p.quantity) for k, p in self._ledger.s.positions.items()}
                await self._escalate(now)
            intents = plan_derisk(
                account=self._inp.account,
                cycle=s.cycle,
                decision=decision,
                exposure=self._exposure(),
                positions=self._ledger.positions(),
                open_orders=self._ledger.footprints(),
                quotes=self._quotes_for_positions(),
                config=self._config,
                hard_base={p.key: s.hard_base[k] for k, p in self._ledger.s.positions.items() if k in s.hard_base},
                blocked=blocked,
            )
            intents, deferred = await self._issue(intents, now)
        for event in due:
            await self._orders.apply_desk_event(event, s.cycle, self._stamp(now))
        record = DecisionRecord(
            cycle=s.cycle,
            exchange_time=now.strftime("%H:%M:%S"),
            regime=clock.regime.value,
            mode=decision.mode,
            reason=decision.reason.value,
            sentence=decision.sentence,
            gross_pct=exposure.gross_exposure_pct,
            potential_pct=exposure.potential_exposure_pct,
            tolerance_pct=decision.tolerance_pct,
            gross_pct_after=self._exposure().gross_exposure_pct,
            intents=[i.intent_id for i in intents],
            inputs=decision.inputs,
            pnl=self._pnl().account,
            skipped=list(blocked.values()) + deferred,
        )
        keep_last(s.decisions, record, self._rules.risk_cycle.decisions_kept)
        workflow.set_current_details(self._details(record))

    def _stamp(self, now: datetime) -> str:
        return now.strftime("%H:%M:%S")

    def _take_due_events(self, now: datetime) -> list[TimedEvent]:
        due = [e for e in self._s.pending_events if parse_hms(e.at) <= now.time()]
        self._s.pending_events = self._s.pending_events[len(due) :]
        return due

    def _apply_exposure(self, event: ExposureEvent) -> None:
        book = self._ledger.s
        if event.equity is not None:
            book.equity = event.equity
        if event.replaces_book:
            if event.is_shortcut:
                market_marks = {s: self._quote(s).truth_tick for s in self._shortcut_symbols()} if self._inp.market else None
                positions, marks, resting = build_shortcut(event, book.equity, self._config, market_marks)
            else:
                positions, marks, resting = event.positions or [], {}, event.resting_orders or []
            self._s.marks.update(marks)
            self._s.marks.update(event.marks)
            # Booked at this moment's mark, as if held since the beginning of the day: P&L starts at 0.
            self._ledger.replace_book(
                [
                    BodPosition(
                        symbol=p.symbol, bucket=p.bucket, quantity=p.quantity, avg_cost=self._mark_now(p.symbol), mark=self._mark_now(p.symbol)
                    )
                    for p in positions
                ]
            )
            self._ledger.drop_synthetic()
            for order in resting:
                self._ledger.add_resting(order)
        self._s.marks.update(event.marks)

    async def _escalate(self, now: datetime) -> None:
        """SOFT → HARD: the cycle's own working SOFT orders are replaced at bid/ask."""
        soft = [o for o in self._ledger.live_orders() if o.own and o.footprint.kind is IntentKind.SOFT_DERISK]
        priced = [(o, *derisk_price(o.footprint.side, self._quote(o.footprint.symbol), RiskMode.HARD_DERISK, 0.0)) for o in soft]
        await self._orders.escalate(priced, self._s.cycle, self._stamp(now))

    async def _issue(self, intents: list[Intent], now: datetime) -> tuple[list[Intent], list[str]]:
        """Reserve and start the cycle's intents; those over this run's update budget wait for the
        next run (the next cycle plans them again). Returns the issued ones and a note for the log."""
        room = max(0, UPDATES_HARD_LIMIT - self._updates)
        intents, deferred = intents[:room], intents[room:]
        note = [f"{len(deferred)} de-risk intents wait for the next run (update budget)"] if deferred else []
        if deferred:
            self._must_continue = True
        if not intents:
            return intents, note
        expires = self._expiry(now)
        for intent in intents:
            self._ledger.reserve(intent, own=True, cycle=self._s.cycle, expires_at=expires)
            keep_last(self._s.intents, IntentRecord(cycle=self._s.cycle, exchange_time=self._stamp(now), intent=intent), INTENTS_KEPT)
        await self._orders.start([i.model_dump(mode="json") for i in intents], self._s.cycle, self._stamp(now))
        return intents, note

    def _expiry(self, now: datetime) -> str:
        close = datetime.combine(now.date(), parse_hms(self._rules.session.close))
        return (close if now < close else close + timedelta(days=1)).isoformat()

    async def _expire_open_orders(self) -> None:
        """The end of a scenario day: every live order expires at the venue; then none is open."""
        for attempt in range(3):
            if not any(not o.synthetic for o in self._ledger.s.open_orders.values()):
                return
            self._s.cycle += 1
            now = self._now()
            live = [turn._replace(closed=True) for turn in self._venue_turns(now)]
            await self._orders.venue_step(live, self._s.cycle, self._stamp(now), audit_all=attempt > 0)

    # ── queries ──────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def state(self) -> RiskView:
        now = self._now()
        clock = read_clock(now.time(), self._rules)
        recent = expand(self._s.decisions, self._rules, last=20)
        return RiskView(
            account=self._inp.account,
            synthetic=self._inp.synthetic,
            venue=self._inp.venue,
            cycle=self._s.cycle,
            exchange_time=now.isoformat(),
            regime=clock.regime.value,
            mode=self._s.mode,
            trading_state=self._s.trading_state,
            frozen=self._s.frozen,
            trading_changes=self._s.trading_changes[-20:],
            pnl=self._pnl(),
            marks=self._mark_views(),
            last_decision=recent[-1] if recent else None,
            exposure=self._exposure(),
            positions=self._ledger.positions(),
            open_orders=list(self._ledger.s.open_orders.values())[:OPEN_ORDERS_SHOWN],
            open_order_count=len(self._ledger.s.open_orders),
            open_order_states=self._ledger.state_counts(),
            lost=[o for o in self._ledger.s.outcomes.values() if o.lost_cause],
            recent_decisions=recent,
        )

    @workflow.query(name=c.QUERY_EXPOSURE)
    def exposure(self) -> Exposure:
        return self._exposure()

    @workflow.query(name=c.QUERY_DECISIONS)
    def decisions(self) -> list[DecisionRecord]:
        return expand(self._s.decisions, self._rules)

    def _result(self) -> RiskResult:
        decisions = expand(self._s.decisions, self._rules)
        positions = self._ledger.positions()
        return RiskResult(
            account=self._inp.account,
            decisions=decisions,
            intents=self._s.intents,
            outcomes=self._ledger.s.outcomes,
            fills=self._ledger.s.fills,
            answers=self._s.answers,
            trading_changes=self._s.trading_changes,
            pnl=self._pnl().account,
            price_path=self._s.price_path,
            hard_cap_pct=self._rules.hard_cap_pct,
            final_exposure=self._exposure(),
            positions=positions,
            digest=run_digest(self._inp.account, decisions, self._s.intents, self._ledger.s.fills, positions, self._pnl().account),
        )

    def _details(self, record: DecisionRecord) -> str:
        lost = sum(1 for o in self._ledger.s.outcomes.values() if o.lost_cause)
        return (
            f"**{record.mode.value}** ({record.reason}) at {record.exchange_time} {record.regime}\n\n"
            f"gross {record.gross_pct:.2f}% → {record.gross_pct_after:.2f}% "
            f"(tolerance {record.tolerance_pct:g}%), potential {record.potential_pct:.2f}%; "
            f"{len(self._ledger.s.open_orders)} open orders"
            + (f", {lost} lost" if lost else "")
            + f"; cycle {record.cycle}\n\n"
            + (
                f"P&L today {record.pnl.daily:,.2f} (realized {record.pnl.realized:,.2f}, unrealized {record.pnl.unrealized:,.2f}); "
                if record.pnl
                else ""
            )
            + f"trading state **{self._s.trading_state.value}**"
            + (" (de-risk frozen)" if self._s.frozen else "")
        )
