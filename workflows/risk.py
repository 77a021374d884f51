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
from datetime import datetime, time, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.market import MarketRequest, QuoteRequest, market_quotes, market_snapshot, quote_of
    from activities.scenarios import load_default_config
    from domain.clock import ClockAnchor, exchange_instant, exchange_now, next_change, on_boundary, read_clock, seconds_to_next_cycle
    from domain.enums import Bucket, IntentKind, OrderState, RejectReason, RiskMode, TradingState
    from domain.events import ExposureEvent, SessionEvent, TimedEvent, build_shortcut, exposure_event_problem, shortcut_symbols
    from domain.exposure import Exposure, compute_exposure
    from domain.gate import GateContext, gate_desk_intent, gate_replacement
    from domain.ledger import BookState, Ledger, OrderReport, keep_last, position_key
    from domain.market import quote_from_mark
    from domain.marketdata import MarketView, Print, hard_derisk_gate, soft_derisk_gate
    from domain.models import Intent, Position, Quote
    from domain.pnl import BodPosition, PnlSummary, summarize
    from domain.planner import derisk_price, plan_derisk
    from domain.policy import decide, decision_input
    from domain.rules import RigConfig, RiskRules
    from domain.venue import SimOrder, VenueParams
    from protocol import contract as c
    from protocol.carry import pack, unpack
    from protocol.decision_log import expand
    from protocol.parse import parse
    from protocol.messages import (
        DecisionRecord,
        IntentRecord,
        MarkView,
        PretradeReply,
        PretradeRequest,
        ReplaceCheck,
        RiskInput,
        RiskResult,
        RiskState,
        RiskView,
        TradingStateChange,
        VenueKind,
        TradingStateRequest,
    )
    from protocol.run_digest import run_digest
    from workflows import metrics
    from workflows.account_orders import AccountOrders, VenueTurn

QUOTE_TIMEOUT = timedelta(seconds=10)
MARKET_TIMEOUT = timedelta(seconds=60)  # the first call for a day builds or loads it
INTENTS_KEPT = 2_000
TRADING_CHANGES_KEPT = 200
PRICE_POINTS_KEPT = 500  # per symbol: a trading day of one-minute cycles
# The server allows 2,000 updates per run (history.maxTotalUpdates): continue well before.
UPDATES_PER_RUN = 1_500
REPORT_FILLS_KEPT = 1_000


def parse_hms(text: str) -> time:
    parts = [int(p) for p in text.split(":")]
    return time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


def first_problem(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or '(input)'}: {first['msg']}"


@workflow.defn(name=c.RISK_WORKFLOW)
class RiskWorkflow:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._problem: str | None = None
        try:
            inp = RiskInput.model_validate(raw)
        except ValidationError as err:  # the run fails cleanly with this; no task ever fails
            self._problem = first_problem(err)
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
        self._gate_lock = asyncio.Lock()
        self._updates = 0
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
            self._setup(await workflow.execute_local_activity(load_default_config, start_to_close_timeout=QUOTE_TIMEOUT))
        inp = self._inp
        workflow.upsert_search_attributes([
            c.SA_ACCOUNT.value_set(inp.account), c.SA_RISK_MODE.value_set(self._s.mode.value),
            c.SA_TRADING_STATE.value_set(TradingState.ACTIVE.value), c.SA_VENUE.value_set(inp.venue.value),
        ])
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

    # ── clock ────────────────────────────────────────────────────────────────────────────────
    def _anchor_clock(self, start: str | None, date: str | None) -> None:
        live = exchange_now(workflow.now(), self._rules, None)
        day = datetime.fromisoformat(date).date() if date else live.date()
        self._s.clock_anchor_exchange = datetime.combine(day, parse_hms(start) if start else live.time()).isoformat()
        self._s.clock_anchor_workflow = workflow.now().isoformat()

    def _now(self) -> datetime:
        anchor = None
        if self._inp.synthetic and self._s.clock_anchor_exchange and self._s.clock_anchor_workflow:
            anchor = ClockAnchor(exchange=datetime.fromisoformat(self._s.clock_anchor_exchange), workflow=datetime.fromisoformat(self._s.clock_anchor_workflow))
        return exchange_now(workflow.now(), self._rules, anchor)

    def _past_stop(self) -> bool:
        return self._inp.stop_at is not None and self._now().time() >= parse_hms(self._inp.stop_at)

    async def _sleep(self) -> None:
        """Until the next cycle time — through a quiet stretch when nothing can change the
        decision before it ends — or at once when an injected event wakes the cycle (or the run
        must continue as new). Boundaries slept through are the last decision's repeats."""
        period = timedelta(seconds=self._rules.risk_cycle.cycle_seconds)
        start = self._now()
        target = start + timedelta(seconds=seconds_to_next_cycle(start, self._rules.risk_cycle.cycle_seconds))
        quiet = self._quiet(start)
        if quiet:
            extra = [parse_hms(e.at) for e in self._s.pending_events[:1]] + ([parse_hms(self._inp.stop_at)] if self._inp.stop_at else [])
            end = next_change(start, self._rules, extra)
            while target < end:  # the first cycle time at or after the change
                target += period
        self._wake = self._dirty = False
        timed_out = not await self._wait(lambda: self._wake or self._must_continue or (quiet and self._dirty), target - start)
        if timed_out:
            self._resume_at(target)
        if not quiet:
            return
        last = start - (start - datetime.combine(start.date(), time(0))) % period  # the quiet cycle's own time
        reached = target if timed_out else self._now()
        passed = max(0, -(-(reached - last) // period) - 1)  # cycle times strictly between: slept through
        self._s.decisions[-1].repeats += passed
        self._s.cycle += passed
        if not timed_out and not self._wake and not self._must_continue:  # an order arrived: cycle at the next cycle time
            due = last + (passed + 1) * period
            if not await self._wait(lambda: self._wake or self._must_continue, due - self._now()):
                self._resume_at(due)

    def _resume_at(self, due: datetime) -> None:
        """A synthetic day's cycle runs at its cycle time, however late the task of its timer came:
        a killed worker, a restarting server or a busy machine delays it, and under time skipping
        the delay passes as workflow time. The virtual clock is re-anchored at the cycle time, so
        no delay shows in the day (DESIGN §3: the same digest through worker kills and server
        restarts). Live accounts read the real clock: a late cycle is late."""
        if self._inp.synthetic and self._s.clock_anchor_workflow is not None and self._now() > due:
            self._s.clock_anchor_exchange, self._s.clock_anchor_workflow = due.isoformat(), workflow.now().isoformat()

    async def _wait(self, condition: Any, timeout: timedelta) -> bool:
        """True if `condition` came true before `timeout`."""
        try:
            await workflow.wait_condition(condition, timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def _quiet(self, now: datetime) -> bool:
        """Nothing can change the decision until the regime or a due event does: the last cycle
        ran on a cycle time, no order is open, marks come from the static feed, no de-risk."""
        last = self._s.decisions[-1] if self._s.decisions else None
        return (
            last is not None
            and self._inp.market is None  # a market moves marks every cycle
            and on_boundary(datetime.strptime(last.exchange_time, "%H:%M:%S"), self._rules.risk_cycle.cycle_seconds)
            and (now - datetime.combine(now.date(), parse_hms(last.exchange_time))).total_seconds() < 1
            and all(o.synthetic for o in self._ledger.s.open_orders.values())
            and not (read_clock(now.time(), self._rules).in_session and last.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK))
        )

    # ── the cycle ────────────────────────────────────────────────────────────────────────────
    async def _cycle(self) -> None:
        s = self._s
        s.cycle += 1
        # The cycle's own time, to the second: a timer fires a few milliseconds after its cycle
        # time, by an amount the machine decides; what the cycle reads (market data as of, DAY
        # expiry) must not depend on that.
        now = self._now().replace(microsecond=0)
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
        if clock.in_session and decision.mode in (RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK) and not s.frozen:
            blocked = self._stale_symbols(decision.mode)
            if decision.mode is RiskMode.HARD_DERISK and previous is not RiskMode.HARD_DERISK:
                s.hard_base = {k: abs(p.quantity) for k, p in self._ledger.s.positions.items()}
                await self._escalate(now)
            intents = plan_derisk(
                account=self._inp.account, cycle=s.cycle, decision=decision, exposure=self._exposure(),
                positions=self._ledger.positions(), open_orders=self._ledger.footprints(), quotes=self._quotes_for_positions(),
                config=self._config,
                hard_base={p.key: s.hard_base[k] for k, p in self._ledger.s.positions.items() if k in s.hard_base}, blocked=blocked,
            )
            await self._issue(intents, now)
        for event in due:
            await self._orders.apply_desk_event(event, s.cycle, self._stamp(now))
        record = DecisionRecord(
            cycle=s.cycle, exchange_time=now.strftime("%H:%M:%S"), regime=clock.regime.value, mode=decision.mode,
            reason=decision.reason.value, sentence=decision.sentence, gross_pct=exposure.gross_exposure_pct,
            potential_pct=exposure.potential_exposure_pct, tolerance_pct=decision.tolerance_pct,
            gross_pct_after=self._exposure().gross_exposure_pct, intents=[i.intent_id for i in intents], inputs=decision.inputs,
            pnl=self._pnl().account, skipped=list(blocked.values()),
        )
        keep_last(s.decisions, record, self._rules.risk_cycle.decisions_kept)
        workflow.set_current_details(self._details(record))

    def _stamp(self, now: datetime) -> str:
        return now.strftime("%H:%M:%S")

    def _take_due_events(self, now: datetime) -> list[TimedEvent]:
        due = [e for e in self._s.pending_events if parse_hms(e.at) <= now.time()]
        self._s.pending_events = self._s.pending_events[len(due):]
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
            self._ledger.replace_book([
                BodPosition(symbol=p.symbol, bucket=p.bucket, quantity=p.quantity, avg_cost=self._mark_now(p.symbol), mark=self._mark_now(p.symbol))
                for p in positions
            ])
            self._ledger.drop_synthetic()
            for order in resting:
                self._ledger.add_resting(order)
        self._s.marks.update(event.marks)

    async def _refresh_quotes(self, now: datetime) -> None:
        if self._inp.market is not None:
            live = {o.footprint.symbol: None for o in self._ledger.live_orders()}
            await self._fetch_market(list(self._held_symbols()), now, prints_for=list(live))
            return
        marks = self._feed_marks()
        if marks == self._quoted_marks:
            return  # the simulated feed quotes from marks: same marks, same quotes
        self._quotes = await workflow.execute_local_activity(market_quotes, QuoteRequest(marks=marks), start_to_close_timeout=QUOTE_TIMEOUT)
        self._quoted_marks = marks

    async def _fetch_market(self, symbols: list[str], now: datetime, prints_for: list[str] | None = None) -> None:
        """The named market's views of `symbols` as of now, and the prints since the last cycle
        of the symbols with working orders (passive fills trade against them)."""
        assert self._inp.market is not None
        as_of = exchange_instant(now, self._rules)
        since = datetime.fromisoformat(self._s.market_as_of) if self._s.market_as_of else as_of
        request = MarketRequest(feed=self._inp.market, universe=self._config.universe, session=self._rules.session,
                                rule=self._rules.market_data, symbols=symbols, as_of=as_of, prints_since={s: since for s in prints_for or []})
        snapshot = await workflow.execute_local_activity(market_snapshot, request, start_to_close_timeout=MARKET_TIMEOUT)
        self._views.update(snapshot.views)
        self._quotes.update({s: quote_of(v) for s, v in snapshot.views.items()})
        if prints_for is not None:  # a cycle's fetch (not a single symbol's for pre-trade)
            self._prints, self._prints_since, self._s.market_as_of = snapshot.prints, since, as_of.isoformat()

    def _shortcut_symbols(self) -> list[str]:
        return [s for bucket in Bucket for s in shortcut_symbols(self._config, bucket)]

    def _record_prices(self, now: datetime) -> None:
        """With a market: each held symbol's mark this cycle, for the report's price path."""
        if self._inp.market is None:
            return
        for symbol in self._held_symbols():
            path = self._s.price_path.setdefault(symbol, [])
            path.append((self._stamp(now), self._quote(symbol).truth_tick))
            del path[:-PRICE_POINTS_KEPT]

    def _stale_symbols(self, mode: RiskMode) -> dict[str, str]:
        """Held symbols de-risk may not act on now: SOFT needs a fresh real print (it prices off
        the truth tick), HARD a fresh L1 (it hits the touch). Reason STALE_DATA in the log."""
        if self._inp.market is None:
            return {}
        gate = hard_derisk_gate if mode is RiskMode.HARD_DERISK else soft_derisk_gate
        blocked = {}
        for symbol in dict.fromkeys(p.symbol for p in self._ledger.positions() if p.quantity):
            view = self._views.get(symbol)
            verdict = gate(view, self._rules.market_data) if view is not None else None
            if verdict is None or not verdict.may_act:
                blocked[symbol] = f"{symbol}: STALE_DATA — {verdict.detail if verdict else 'no market data'}"
        return blocked

    def _venue_turns(self, now: datetime) -> list[VenueTurn]:
        """The simulated venue's turn for each live order (a broker's fills come by signal)."""
        if self._inp.venue is not VenueKind.SIM:
            return []
        stamp = now.isoformat()
        return [
            VenueTurn(order=self._sim_order(o.intent, cum_qty=o.filled), closed=bool(o.expires_at) and stamp >= o.expires_at,
                      prints=self._prints.get(o.footprint.symbol, []), since=self._prints_since)
            for o in self._ledger.live_orders() if o.intent is not None
        ]

    def _sim_order(self, intent: Intent, cum_qty: int = 0) -> SimOrder:
        return SimOrder(intent=intent, cum_qty=cum_qty, lot_size=self._lot_of(intent.symbol), params=self._venue_params(intent),
                        quote=self._quote(intent.symbol), market=self._views.get(intent.symbol) if self._inp.market else None,
                        market_rule=self._rules.market_data if self._inp.market else None)

    async def _escalate(self, now: datetime) -> None:
        """SOFT → HARD: the cycle's own working SOFT orders are replaced at bid/ask."""
        soft = [o for o in self._ledger.live_orders() if o.own and o.footprint.kind is IntentKind.SOFT_DERISK]
        priced = [(o, *derisk_price(o.footprint.side, self._quote(o.footprint.symbol), RiskMode.HARD_DERISK, 0.0)) for o in soft]
        await self._orders.escalate(priced, self._s.cycle, self._stamp(now))

    async def _issue(self, intents: list[Intent], now: datetime) -> None:
        if not intents:
            return
        expires = self._expiry(now)
        for intent in intents:
            self._ledger.reserve(intent, own=True, cycle=self._s.cycle, expires_at=expires)
            keep_last(self._s.intents, IntentRecord(cycle=self._s.cycle, exchange_time=self._stamp(now), intent=intent), INTENTS_KEPT)
        await self._orders.start([i.model_dump(mode="json") for i in intents], self._s.cycle, self._stamp(now))

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

    # ── marks, quotes, exposure ──────────────────────────────────────────────────────────────
    def _held_symbols(self) -> dict[str, None]:
        symbols = dict.fromkeys(p.symbol for p in self._ledger.s.positions.values())
        symbols.update(dict.fromkeys(o.footprint.symbol for o in self._ledger.s.open_orders.values()))
        return symbols

    def _feed_marks(self) -> dict[str, float]:
        """What the market-data feed is asked to quote: the injected mark or the reference price."""
        return {sym: self._stored_mark(sym) for sym in self._held_symbols()}

    def _stored_mark(self, symbol: str) -> float:
        return self._s.marks.get(symbol) or self._config.universe.by_symbol[symbol].reference_price

    def _quote(self, symbol: str) -> Quote:
        """This cycle's quote from the feed; between cycles (a new symbol), the feed's rule."""
        return self._quotes.get(symbol) or quote_from_mark(self._stored_mark(symbol))

    def _mark_now(self, symbol: str) -> float:
        """The mark the next quote will carry: the market's view, or the simulated feed's rule."""
        return self._quote(symbol).truth_tick if self._inp.market else quote_from_mark(self._stored_mark(symbol)).truth_tick

    def _quotes_for_positions(self) -> dict[str, Quote]:
        return {p.symbol: self._quote(p.symbol) for p in self._ledger.s.positions.values()}

    def _exposure(self) -> Exposure:
        marks = {sym: self._quote(sym).truth_tick for sym in self._held_symbols()}
        return compute_exposure(self._ledger.s.equity, self._ledger.positions(), self._ledger.footprints(), marks, self._config)

    def _mark_views(self) -> list[MarkView]:
        """Per held symbol: its mark for exposure, where it came from, and how old the data is."""
        views = []
        for symbol in self._held_symbols():
            view = self._views.get(symbol) if self._inp.market else None
            if view is None:
                views.append(MarkView(symbol=symbol, mark=self._quote(symbol).truth_tick, source="MARK"))
            else:
                views.append(MarkView(symbol=symbol, mark=view.mark, source=view.mark_source.value,
                                      print_age_seconds=view.print_age_seconds, l1_age_seconds=view.l1_age_seconds))
        return views

    def _pnl(self) -> PnlSummary:
        marks = {sym: self._quote(sym).truth_tick for sym in self._held_symbols()}
        return summarize(self._ledger.s.pnl, marks, self._config.universe, self._ledger.s.equity)

    def _gate(self) -> GateContext:
        now = self._now()
        return GateContext(account=self._inp.account, ledger=self._ledger, mode=self._s.mode,
                           regime=read_clock(now.time(), self._rules).regime, quote_of=self._quote, config=self._config,
                           trading_state=self._s.trading_state, controls=self._s.controls, now_seconds=workflow.now().timestamp())

    # ── pre-trade (updates: handlers without awaits never interleave) ────────────────────────
    @workflow.update(name=c.UPDATE_PRETRADE)
    async def pretrade(self, raw: Any) -> PretradeReply:
        request = parse(PretradeRequest, raw)
        self._count_update()
        try:
            async with self._gate_lock:  # one judgment at a time, even across a market-data fetch
                symbol = request.raw_intent.get("symbol")
                if self._inp.market is not None and isinstance(symbol, str) and symbol in self._config.universe.by_symbol and symbol not in self._views:
                    await self._fetch_market([symbol], self._now())
                return self._pretrade(request)
        except Exception as err:  # noqa: BLE001 — what cannot be judged is refused, never a failed task
            workflow.logger.exception("pre-trade of %s could not be judged", request.intent_id)
            return PretradeReply(approved=False, reason=RejectReason.MALFORMED_INTENT, message=f"could not be judged: {type(err).__name__}")

    @pretrade.validator
    def _validate_pretrade(self, raw: Any) -> None:
        self._validate_request(parse(PretradeRequest, raw).intent_id)

    def _validate_request(self, intent_id: str) -> None:
        self._validate_ready()
        if self._must_continue:
            raise ValueError("the account is continuing as new: retry")
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
        self._ledger.reserve(verdict.intent, own=False, cycle=self._s.cycle, expires_at=self._expiry(self._now()))
        self._dirty = True
        return self._approval(verdict.intent, verdict.message)

    def _known(self, intent_id: str) -> PretradeReply | None:
        """A request for an order the account already knows — its own reserved intent, a
        retried request, a reset order — gets the same answer, with the account's record."""
        entry = self._ledger.s.open_orders.get(intent_id)
        if entry is not None and entry.intent is not None:
            report = OrderReport(intent_id=intent_id, state=entry.state, quantity=entry.intent.quantity, filled_quantity=entry.filled,
                                 fills=self._ledger.fills_of(intent_id))
            return self._approval(entry.intent, "known to the account", known=report)
        outcome = self._ledger.s.outcomes.get(intent_id)
        if outcome is None:
            return None
        if outcome.reject_reason is not None and outcome.filled_quantity == 0 and outcome.state is OrderState.REJECTED:
            return PretradeReply(approved=False, reason=outcome.reject_reason, message=outcome.reject_message or "refused before")
        report = OrderReport(intent_id=intent_id, state=outcome.state if not outcome.lost_cause else OrderState.CANCELED,
                             quantity=outcome.quantity, filled_quantity=outcome.filled_quantity, fills=self._ledger.fills_of(intent_id),
                             cancel_reason=outcome.cancel_reason, replaced_by=outcome.replaced_by)
        return PretradeReply(approved=True, message=f"closed already: {outcome.label}", known=report)

    @workflow.update(name=c.UPDATE_REPLACE_CHECK)
    def replace_check(self, raw: Any) -> PretradeReply:
        check = parse(ReplaceCheck, raw)
        self._count_update()
        try:
            expected = c.next_replacement_id(check.original_id)
            known = self._known(expected)
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
            approved=True, message=message, intent=intent, quote=self._quote(intent.symbol), venue=self._inp.venue,
            venue_task_queue=self._inp.venue_task_queue if self._inp.venue is VenueKind.IBKR else None,
            lot_size=self._lot_of(intent.symbol), known=known, venue_params=self._venue_params(intent),
            position=sum(p.quantity for p in self._ledger.positions() if p.key == intent.key),
            market=self._views.get(intent.symbol) if self._inp.market else None,
            market_rule=self._rules.market_data if self._inp.market else None,
        )

    def _venue_params(self, intent: Intent) -> VenueParams:
        fills = self._rules.fills
        return VenueParams(
            seed=self._inp.seed, fill_probability=fills.probability(intent.issued_in_mode),
            partial_fill_probability=fills.partial_fill_probability, cancel_cross_probability=fills.cancel_cross_probability,
        )

    def _lot_of(self, symbol: str) -> int:
        return self._config.universe.by_symbol[symbol].lot_size

    def _count_update(self) -> None:
        self._updates += 1
        if self._updates >= UPDATES_PER_RUN:
            self._must_continue = True

    # ── reports from orders ──────────────────────────────────────────────────────────────────
    @workflow.signal(name=c.SIGNAL_ORDER_REPORT)
    def order_report(self, report: OrderReport) -> None:
        if not self._ready or len(report.fills) > REPORT_FILLS_KEPT:
            return
        try:
            if self._ledger.apply_report(report, cycle=self._s.cycle, exchange_time=self._stamp(self._now())) or report.state.is_terminal:
                self._dirty = True
        except Exception:  # noqa: BLE001 — a report the ledger cannot take is logged, never a failed task
            workflow.logger.exception("report of %s could not be applied", report.intent_id)

    # ── synthetic events, rules (updates with validators) ────────────────────────────────────
    @workflow.update(name=c.UPDATE_INJECT_EXPOSURE)
    def inject_exposure(self, raw: Any) -> str:
        self._apply_exposure(parse(ExposureEvent, raw))
        self._wake = True
        exposure = self._exposure()
        return f"applied: gross {exposure.gross_exposure_pct:.2f}%, potential {exposure.potential_exposure_pct:.2f}%; a cycle runs now"

    @inject_exposure.validator
    def _validate_exposure(self, raw: Any) -> None:
        self._validate_synthetic("inject_exposure")
        problem = exposure_event_problem(parse(ExposureEvent, raw), self._config)
        if problem:
            raise ValueError(problem)

    @workflow.update(name=c.UPDATE_SET_SESSION)
    def set_session(self, raw: Any) -> str:
        event = parse(SessionEvent, raw)
        self._anchor_clock(event.exchange_time, event.exchange_date)
        self._wake = True
        return f"exchange clock set to {self._s.clock_anchor_exchange}"

    @set_session.validator
    def _validate_session(self, raw: Any) -> None:
        self._validate_synthetic("set_session")
        event = parse(SessionEvent, raw)
        if event.exchange_date is not None:
            try:
                datetime.fromisoformat(event.exchange_date)
            except ValueError:
                raise ValueError(f"exchange_date {event.exchange_date!r} is not a date (YYYY-MM-DD)") from None

    def _validate_ready(self) -> None:
        if self._problem:
            raise ValueError(f"this account's input is invalid: {self._problem}")
        if not self._ready:
            raise ValueError("the account is starting: retry")

    def _validate_synthetic(self, name: str) -> None:
        self._validate_ready()
        if not self._inp.synthetic:
            raise ValueError(f"{name} replaces the book or moves the clock: only accounts opened for testing (--synthetic) accept it")

    @workflow.update(name=c.UPDATE_SET_RULES)
    def set_rules(self, raw: Any) -> str:
        rules = parse(RiskRules, raw)
        self._config = self._config.model_copy(update={"rules": rules})
        self._inp = self._inp.model_copy(update={"config": self._config})
        self._wake = True
        workflow.logger.info("rules replaced through an update")
        return f"rules applied: hard cap {rules.hard_cap_pct:g}%, cycle {rules.risk_cycle.cycle_seconds}s; a cycle runs now"

    @set_rules.validator
    def _validate_rules(self, raw: Any) -> None:
        self._validate_ready()
        parse(RiskRules, raw)

    @workflow.update(name=c.UPDATE_SET_TRADING_STATE)
    def set_trading_state(self, raw: Any) -> str:
        request = parse(TradingStateRequest, raw)
        self._wake = True  # a cycle runs now: HALTED cancels the open desk orders at once
        return self._set_trading_state(request, self._now()) + "; a cycle runs now"

    def _set_trading_state(self, request: TradingStateRequest, now: datetime) -> str:
        s = self._s
        change = TradingStateChange(**request.model_dump(), previous=s.trading_state, cycle=s.cycle, exchange_time=self._stamp(now))
        s.trading_changes.append(change)
        del s.trading_changes[:-TRADING_CHANGES_KEPT]
        s.trading_state, s.frozen = request.state, request.freeze
        workflow.upsert_search_attributes([c.SA_TRADING_STATE.value_set(request.state.value)])
        workflow.logger.warning("trading state %s → %s by %s: %s", change.previous.value, request.state.value, request.by, request.reason)
        frozen = " and de-risk frozen" if request.freeze else ""
        return f"{change.previous.value} → {request.state.value}{frozen} by {request.by}: {request.reason}"

    @set_trading_state.validator
    def _validate_trading_state(self, raw: Any) -> None:
        self._validate_ready()
        parse(TradingStateRequest, raw)

    # ── queries ──────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def state(self) -> RiskView:
        now = self._now()
        clock = read_clock(now.time(), self._rules)
        recent = expand(self._s.decisions, self._rules, last=20)
        return RiskView(
            account=self._inp.account, synthetic=self._inp.synthetic, venue=self._inp.venue, cycle=self._s.cycle,
            exchange_time=now.isoformat(), regime=clock.regime.value, mode=self._s.mode, trading_state=self._s.trading_state,
            frozen=self._s.frozen, trading_changes=self._s.trading_changes[-20:], pnl=self._pnl(), marks=self._mark_views(),
            last_decision=recent[-1] if recent else None, exposure=self._exposure(), positions=self._ledger.positions(),
            open_orders=list(self._ledger.s.open_orders.values()),
            lost=[o for o in self._ledger.s.outcomes.values() if o.lost_cause], recent_decisions=recent,
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
            account=self._inp.account, decisions=decisions, intents=self._s.intents, outcomes=self._ledger.s.outcomes,
            fills=self._ledger.s.fills, answers=self._s.answers, trading_changes=self._s.trading_changes,
            pnl=self._pnl().account, price_path=self._s.price_path, hard_cap_pct=self._rules.hard_cap_pct, final_exposure=self._exposure(), positions=positions,
            digest=run_digest(self._inp.account, decisions, self._s.intents, self._ledger.s.fills, positions, self._pnl().account),
        )

    def _details(self, record: DecisionRecord) -> str:
        lost = sum(1 for o in self._ledger.s.outcomes.values() if o.lost_cause)
        return (
            f"**{record.mode.value}** ({record.reason}) at {record.exchange_time} {record.regime}\n\n"
            f"gross {record.gross_pct:.2f}% → {record.gross_pct_after:.2f}% "
            f"(tolerance {record.tolerance_pct:g}%), potential {record.potential_pct:.2f}%; "
            f"{len(self._ledger.s.open_orders)} open orders" + (f", {lost} lost" if lost else "") + f"; cycle {record.cycle}\n\n"
            + (f"P&L today {record.pnl.daily:,.2f} (realized {record.pnl.realized:,.2f}, unrealized {record.pnl.unrealized:,.2f}); " if record.pnl else "")
            + f"trading state **{self._s.trading_state.value}**" + (" (de-risk frozen)" if self._s.frozen else "")
        )
