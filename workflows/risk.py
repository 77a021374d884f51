"""RiskWorkflow: the account entity (id `risk-<account>`), as the Temporal wiring of its parts
(workflows/account/): the clock, the market, the simulated exchange it owns, the pre-trade gate,
its dealings with orders, the operator's trading state, and the risk cycle. Each part has its
own state (protocol/account_state.py) and is given what it reads; the book is the ledger's
(domain/ledger.py), changed only through its methods.

The run loop: a cycle on every cycle time, a quiet stretch slept through, continue-as-new every
`cycles_per_run` cycles, before the server's per-run update limit, or when the server suggests
it. An account with a calendar (`session.calendar`) cycles only in its sessions: at each close
the daily roll (workflows/account/day.py), then a wait until the next open; its parts read that
day's rules (the session's hours) — an account without one runs exactly as before. Updates
(pre-trade, replace checks, operator events) are refused by their validators when they cannot be
applied; nothing an order does or fails to do can fail the account's task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.scenarios import load_default_config
    from domain.clock import parse_hms
    from domain.events import ExposureEvent, SessionEvent, TradingStateRequest, exposure_event_problem
    from domain.exposure import Exposure
    from domain.ledger import BookState, Ledger
    from domain.order import OrderReport
    from domain.rules import RigConfig, RiskRules
    from protocol import contract as c
    from protocol.account_state import AccountState, CycleState
    from protocol.carry import pack, unpack
    from protocol.decision_log import expand
    from protocol.messages import DecisionRecord, PretradeReply, PretradeRequest, ReplaceCheck, RiskInput, RiskResult, RiskView, VenueKind
    from protocol.parse import first_error
    from venues.ibkr.models import SIGNAL_BROKER_DIVERGENCE, SIGNAL_BROKER_LATE_FILL, BrokerDivergence, LateFill
    from venues.sim.exchange import SimExchange
    from workflows.account.broker import AccountBroker
    from workflows.account.clock import AccountClock
    from workflows.account.controls import AccountControls
    from workflows.account.cycle import AccountCycle
    from workflows.account.day import AccountDay
    from workflows.account.firm import AccountFirm
    from workflows.account.gate import AccountGate
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator
    from workflows.account.orders import AccountOrders
    from workflows.account.views import AccountViews

CONFIG_TIMEOUT = timedelta(seconds=10)
CONFIG_RETRY = RetryPolicy(maximum_attempts=3)  # then the account fails, saying why: it has no rules to run on
# The server allows 2,000 updates per run (history.maxTotalUpdates): new requests stop at 1,500
# (the run then continues as new); the cycle's own orders, which must be answered before it can,
# are issued only while the run stays under UPDATES_HARD_LIMIT (the rest wait for the next run).
UPDATES_PER_RUN = 1_500
UPDATES_HARD_LIMIT = 1_900
# … and the signals a run takes (history.maximumSignalsPerExecution in a cluster's config).
SIGNALS_PER_RUN = 5_000
REPORT_FILLS_KEPT = 1_000
SESSIONS_RETRY_AFTER = timedelta(hours=1)  # a calendar that could not be read is asked again
WAKE_KEPT = "wake-kept-at-run-start"  # the patch: a halt in a continued run's first task still wakes a cycle
COSTS_BOOKED = "broker-commissions"  # the patch: fills are costed (the schedule's, or a broker's reported commission; id kept from its first use)


@workflow.defn(name=c.RISK_WORKFLOW)
class RiskWorkflow:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._problem: str | None = None
        try:
            inp = RiskInput.model_validate(raw)
        except ValidationError as err:  # the run fails cleanly with this; no task ever fails
            self._problem = first_error(err, "(input)")
            inp = RiskInput.model_construct(account="invalid", synthetic=False)
        self._inp = inp
        self._wake = False  # run a cycle now (an injected event)
        self._dirty = False  # something changed: a quiet sleep ends at the next cycle time
        self._must_continue = False
        self._updates = self._signals = 0
        self._ready = False  # until the rules are known: requests are refused ("starting")
        if not self._problem and inp.config is not None:
            self._setup(inp.config)

    def _setup(self, config: RigConfig) -> None:
        """The parts, each with its state and what it reads. Here, not in run: pre-trade updates
        may be handled before run starts."""
        inp = self._inp
        self._config = config
        if inp.carried:
            carried = unpack(inp.carried)
            state, book = carried.state, carried.book
        else:
            state = AccountState(cycle=CycleState(pending_events=sorted(inp.timeline, key=lambda e: (e.date or "", parse_hms(e.at)))))
            book = BookState(equity=inp.equity)
        self._state = state
        self._ledger = ledger = Ledger(book)
        if not inp.carried and inp.bod:
            ledger.replace_book(inp.bod)
        digest = state.cycle.digest
        self._clock = clock = AccountClock(state.clock, inp.synthetic, lambda: self._config.rules)
        # The parts read the day's rules: with a calendar, that session's hours (else the rules as they are).
        exchange = SimExchange(inp.seed, self._day_config, lambda s: self._market.quote(s), lambda s: self._market.view(s), state.exchange)
        at_exchange = exchange if inp.venue is VenueKind.SIM else None  # a broker's orders are matched at the broker
        self._market = market = AccountMarket(state.market, inp.market, self._day_config, ledger, at_exchange, cycle=lambda: self._cycle.number)
        ledger.costs, ledger.matched_at_the_data = config.rules.costs, market.matches_at_the_data
        ledger.costs_booked = lambda: workflow.patched(COSTS_BOOKED)  # asked at the first fill with a cost
        self._operator = operator = AccountOperator(state.operator, digest)
        self._orders = orders = AccountOrders(inp.account, state.orders, digest, inp.venue, ledger, market, exchange)
        controls = AccountControls(state.gate, self._day_config, market, ledger, operator)
        firm = AccountFirm(inp.account, inp.firm, state.firm, ledger, market, operator)
        self._cycle = AccountCycle(
            inp.account, state.cycle, self._day_config, clock, market, ledger, orders, operator,
            update_room=lambda: UPDATES_HARD_LIMIT - self._updates, defer_to_next_run=self._continue_soon, controls=controls, firm=firm,
        )  # fmt: skip
        self._day = AccountDay(inp.account, state.day, clock, market, ledger, self._cycle, operator, digest)
        self._views = AccountViews(lambda: self._inp, lambda: self._config, state, clock, self._cycle, market, ledger, operator, self._day, orders)
        self._broker = AccountBroker(ledger, operator, clock, cycle=lambda: self._cycle.number)
        self._gate = AccountGate(
            inp.account, state.gate, inp.venue, inp.venue_task_queue, ledger, clock, market, exchange, self._day_config,
            mode=lambda: self._cycle.mode, trading_state=lambda: operator.trading_state, cycle=lambda: self._cycle.number,
            expiry=clock.close_after, changed=self._changed, firm=firm,
        )  # fmt: skip
        if inp.synthetic and not clock.anchored():
            clock.anchor(inp.start_exchange_time, inp.exchange_date)
        else:
            clock.start_run()
        self._ready = True

    def _day_config(self) -> RigConfig:
        return self._clock.day_config(self._config)

    def _changed(self) -> None:
        self._dirty = True

    def _continue_soon(self) -> None:
        self._must_continue = True

    # ── run ──────────────────────────────────────────────────────────────────────────────────
    @workflow.run
    async def run(self, raw: Any) -> RiskResult:
        if self._problem:
            raise ApplicationError(f"invalid account input: {self._problem}", type="InvalidAccountInput", non_retryable=True)
        if not self._ready:  # opened without rules (e.g. from the `temporal` CLI): the worker's, recorded here
            self._setup(await workflow.execute_local_activity(load_default_config, start_to_close_timeout=CONFIG_TIMEOUT, retry_policy=CONFIG_RETRY))
        inp = self._inp
        workflow.upsert_search_attributes(
            [
                c.SA_ACCOUNT.value_set(inp.account),
                c.SA_RISK_MODE.value_set(self._cycle.mode.value),
                c.SA_TRADING_STATE.value_set(self._operator.trading_state.value),  # carried: a HALTED account stays HALTED
                c.SA_VENUE.value_set(inp.venue.value),
            ]
        )
        cycles = 0
        if inp.carried:  # continued-as-new: the carried cycle already ran this minute
            # An update in this run's first task (handlers run before this method) that asked for a
            # cycle now — a halt — keeps its wake; runs recorded before this patch dropped it.
            await self._sleep(keep_wake=workflow.patched(WAKE_KEPT))
        while True:
            if self._day.enabled and not await self._sessions_turn(cycles):
                await self._cycle.expire_open_orders()
                break
            record = await self._cycle.run(self._clock.begin_cycle())
            workflow.set_current_details(self._details(record))
            cycles += 1
            if self._clock.past(inp.stop_at, inp.stop_date):
                await self._cycle.expire_open_orders()
                break
            self._clock.end_cycle()
            while True:
                if cycles >= self._config.rules.risk_cycle.cycles_per_run or self._must_continue or workflow.info().is_continue_as_new_suggested():
                    await self._continue_as_new()
                await self._sleep()
                if not self._must_continue:
                    break
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._views.result()

    async def _sessions_turn(self, cycles: int) -> bool:
        """A calendar account before each cycle: its sessions read, the roll at a close, and between
        sessions the wait for the next open (no cycle, no de-risk, desk orders refused). True when
        a session is under way (a cycle runs now); False when the run has reached its stop."""
        while True:
            now = self._clock.now()
            pending = self._day.session
            if self._clock.needs_sessions(now, pending):
                read = await self._clock.refresh_sessions(now, pending)
                self._clock.resume_at(now)  # a virtual day: reading the calendar takes no exchange time
                if not read and not self._clock.sessions_known(now):
                    await self._clock.wait_until(now + SESSIONS_RETRY_AFTER, lambda: self._must_continue)  # the calendar could not be read
                    continue
            self._day.begin(now)
            closed = self._day.roll_due(now)
            if closed is not None:
                await self._day.roll(closed, now)
                self._clock.resume_at(now)  # nor does the roll
                continue
            if self._clock.past(self._inp.stop_at, self._inp.stop_date):
                return False
            if self._clock.in_session(now):
                return True
            if cycles >= self._config.rules.risk_cycle.cycles_per_run or self._must_continue or workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new()
            self._wake = False
            await self._clock.wait_until(self._next_wake(now), lambda: self._wake or self._must_continue)

    def _next_wake(self, now: datetime) -> datetime:
        """Between sessions: the next open's first cycle time, or the stop if sooner."""
        opening = self._clock.next_open(now)
        target = self._clock.first_cycle_at(opening) if opening is not None else now + SESSIONS_RETRY_AFTER
        stop = self._clock.stop_moment(self._inp.stop_at, self._inp.stop_date)
        return min(target, stop) if stop is not None and stop > now else target

    def _stop_today(self, now: datetime) -> str | None:
        """The stop, for a quiet stretch to end at: a multi-day run's only on its own date."""
        stop_date = self._inp.stop_date
        return self._inp.stop_at if stop_date is None or stop_date == now.date().isoformat() else None

    async def _sleep(self, keep_wake: bool = False) -> None:
        self._wake = self._wake and keep_wake
        self._dirty = False
        await self._clock.sleep(
            quiet=lambda now: self._cycle.quiet(now, self._stop_today(now)),
            woken=lambda: self._wake or self._must_continue,
            changed=lambda: self._dirty,
            slept=self._cycle.slept,
        )

    async def _continue_as_new(self) -> None:
        self._must_continue = True  # refuse new updates meanwhile (they retry on the next run)
        await workflow.wait_condition(workflow.all_handlers_finished)
        state = self._state.model_copy(update={"clock": self._clock.carried()})
        workflow.continue_as_new(self._inp.model_copy(update={"carried": pack(state, self._ledger.carried()), "timeline": [], "bod": []}))

    # ── orders' requests ─────────────────────────────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_PRETRADE)
    async def pretrade(self, request: PretradeRequest) -> PretradeReply:
        self._count_update()
        return await self._gate.pretrade(request)

    @pretrade.validator
    def _validate_pretrade(self, request: PretradeRequest) -> None:
        self._validate_request(request.intent_id)
        update = workflow.current_update_info()
        if update is None or not c.is_pretrade_update_id(update.id, request.intent_id):
            raise ValueError(
                f"a pre-trade request is the order workflow's own: update id <intent id>@<its run id>, got {update.id if update else None!r:.80}"
            )

    @workflow.update(name=c.UPDATE_REPLACE_CHECK)
    def replace_check(self, check: ReplaceCheck) -> PretradeReply:
        self._count_update()
        return self._gate.replace_check(check)

    @replace_check.validator
    def _validate_replace_check(self, check: ReplaceCheck) -> None:
        self._validate_request(check.original_id)

    def _validate_request(self, intent_id: str) -> None:
        self._validate_ready()
        if not self._clock.sessions_known(self._clock.now()):
            raise ApplicationError("the account is reading its trading calendar: ask again", type=c.ACCOUNT_BUSY)
        # While it waits to continue as new the account takes no new request — but still answers
        # those about orders it knows (its own intents: the cycle cannot end before they arrive).
        if self._must_continue and not self._ledger.knows(intent_id):
            raise ApplicationError("the account is continuing as new: ask again", type=c.ACCOUNT_BUSY)
        if not intent_id or len(intent_id) > 200:
            raise ValueError("intent_id must be 1 to 200 characters")

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
            if self._orders.take_report(report, self._cycle.number, self._clock.stamp(self._clock.moment())):
                self._dirty = True
        except ValueError as err:  # a fill the book refuses (absurd price or size): logged, nothing applied
            workflow.logger.warning("report of %s refused: %s", report.intent_id, err)

    # ── what a broker's gateway tells the account (venues/ibkr) ─────────────────────────────
    @workflow.signal(name=SIGNAL_BROKER_LATE_FILL)
    def broker_late_fill(self, late: LateFill) -> None:
        """A broker's fill of an order whose workflow has closed: booked however late (once, by
        its execution id), with an alarm naming the order."""
        if self._ready and late.account == self._inp.account and self._broker.late_fill(late):
            self._dirty = True

    @workflow.signal(name=SIGNAL_BROKER_DIVERGENCE)
    def broker_divergence(self, told: BrokerDivergence) -> None:
        if self._ready and told.account == self._inp.account:
            self._broker.divergence(told)
            self._wake = True

    # ── operators' and tests' updates ────────────────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_INJECT_EXPOSURE)
    def inject_exposure(self, event: ExposureEvent) -> str:
        self._cycle.apply_exposure(event)
        self._wake = True
        exposure = self._market.exposure()
        return f"applied: gross {exposure.gross_exposure_pct:.2f}%, potential {exposure.potential_exposure_pct:.2f}%; a cycle runs now"

    @inject_exposure.validator
    def _validate_exposure(self, event: ExposureEvent) -> None:
        self._validate_synthetic("inject_exposure")
        problem = exposure_event_problem(event, self._config)
        if problem:
            raise ValueError(problem)

    @workflow.update(name=c.UPDATE_SET_SESSION)
    def set_session(self, event: SessionEvent) -> str:
        anchored = self._clock.anchor(event.exchange_time, event.exchange_date)
        self._wake = True
        return f"exchange clock set to {anchored}"

    @set_session.validator
    def _validate_session(self, event: SessionEvent) -> None:
        self._validate_synthetic("set_session")  # the event's own validators checked the date is one the clock can run through

    @workflow.update(name=c.UPDATE_SET_RULES)
    def set_rules(self, rules: RiskRules) -> str:
        self._config = self._config.model_copy(update={"rules": rules})
        self._inp = self._inp.model_copy(update={"config": self._config})
        self._ledger.costs = rules.costs
        self._wake = True
        workflow.logger.info("rules replaced through an update")
        return f"rules applied: hard cap {rules.hard_cap_pct:g}%, cycle {rules.risk_cycle.cycle_seconds}s; a cycle runs now"

    @set_rules.validator
    def _validate_rules(self, rules: RiskRules) -> None:
        self._validate_ready()

    @workflow.update(name=c.UPDATE_SET_TRADING_STATE)
    def set_trading_state(self, request: TradingStateRequest) -> str:
        self._wake = True  # a cycle runs now: HALTED cancels the open desk orders at once
        answer = self._operator.set_trading_state(request, self._cycle.number, self._clock.stamp(self._clock.moment()))
        return answer + "; a cycle runs now"

    @set_trading_state.validator
    def _validate_trading_state(self, request: TradingStateRequest) -> None:
        self._validate_ready()

    def _validate_ready(self) -> None:
        if self._problem:
            raise ValueError(f"this account's input is invalid: {self._problem}")
        if not self._ready:
            raise ApplicationError("the account is starting: ask again", type=c.ACCOUNT_BUSY)

    def _validate_synthetic(self, name: str) -> None:
        self._validate_ready()
        if not self._inp.synthetic:
            raise ValueError(f"{name} replaces the book or moves the clock: only accounts opened for testing (--synthetic) accept it")

    # ── queries ──────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def state(self) -> RiskView:
        self._validate_ready()  # before its rules are read there is nothing to show: "starting, ask again"
        return self._views.state()

    def _details(self, record: DecisionRecord) -> str:
        """The UI's details after a cycle (a release's hook: tests/versioning/release_b.py)."""
        return self._views.details(record)

    @workflow.query(name=c.QUERY_EXPOSURE)
    def exposure(self) -> Exposure:
        self._validate_ready()
        return self._market.exposure()

    @workflow.query(name=c.QUERY_DECISIONS)
    def decisions(self) -> list[DecisionRecord]:
        self._validate_ready()
        return expand(self._cycle.decisions(), self._clock.day_rules())
