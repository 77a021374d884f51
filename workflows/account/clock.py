"""The account's clock: a live account reads the exchange clock from workflow time (DST-correct); a
test or scenario account runs a virtual day anchored at its start. Cycles fall on whole multiples
of `cycle_seconds`; `sleep` waits for the next one — through a quiet stretch when the caller says
nothing can change the decision before it ends — and says how many cycle times it slept through.

With a calendar (`session.calendar`) the clock also knows the sessions ahead, as data: a window of
a few weeks read by the `exchange_sessions` local activity (recorded in history, refreshed before
it runs out, carried through continue-as-new). From it come the day's rules (that session's hours,
regimes anchored to its close), whether a session is under way, the next open and close, and the
close that ends a DAY order. Accounts without a calendar never ask and never change path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calendar import exchange_sessions
    from domain.clock import ClockAnchor, between, exchange_now, next_change, on_boundary, parse_hms, read_clock, seconds_to_next_cycle
    from domain.rules import RigConfig, RiskRules, parse_hhmm
    from domain.sessions import SessionDay, SessionWindow, session_hours, session_rules, window_start
    from protocol.account_state import ClockState
    from protocol.messages import SessionView
    from protocol.parse import first_line
    from protocol.sessions import SessionsRequest
    from workflows import metrics
    from workflows.failures import LOCAL_ACTIVITY_FAILED

SESSIONS_TIMEOUT = timedelta(seconds=30)
SESSIONS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
SESSIONS_RETRY_AFTER = timedelta(hours=1)  # a calendar that could not be read is asked again this much later


@dataclass(frozen=True)
class Slept:
    """What a sleep passed: `repeats` cycle times slept through after the quiet cycle at `last`."""

    repeats: int = 0
    last: datetime | None = None


class AccountClock:
    def __init__(self, state: ClockState, synthetic: bool, rules: Callable[[], RiskRules]) -> None:
        self._s = state
        self._synthetic = synthetic
        self._rules = rules
        self.cycle_time: datetime | None = None  # the running (or last) cycle's own time, to the second
        self._in_cycle = False
        self._day: tuple[RiskRules, date, RiskRules] | None = None  # (rules, date) → that day's rules
        self._day_config: tuple[RigConfig, RiskRules, RigConfig] | None = None

    # ── reading ──────────────────────────────────────────────────────────────────────────────
    def now(self) -> datetime:
        anchor = None
        if self._synthetic and self._s.anchor_exchange and self._s.anchor_workflow:
            anchor = ClockAnchor(exchange=datetime.fromisoformat(self._s.anchor_exchange), workflow=datetime.fromisoformat(self._s.anchor_workflow))
        return exchange_now(workflow.now(), self._rules(), anchor)

    def moment(self) -> datetime:
        """The exchange time of what happens now (a pre-trade, an arrival, a report). In a virtual
        day a cycle's work takes no exchange time: during a cycle it is the cycle's own time, so
        what the cycle causes is stamped the same on every run. Live accounts read the clock."""
        if self._synthetic and self._in_cycle and self.cycle_time is not None:
            return self.cycle_time
        return self.now()

    @staticmethod
    def stamp(moment: datetime) -> str:
        return moment.strftime("%H:%M:%S")

    def close_after(self, moment: datetime) -> str:
        """The close that ends a DAY order placed at `moment` (exchange-local ISO datetime): with a
        calendar, the close of the session under way or next."""
        session = self.current_or_next(moment) if self.calendar else None
        if session is not None:
            return self.close_at(session).isoformat()
        rules = self._rules()
        close = datetime.combine(moment.date(), parse_hms(rules.session.close or "16:00"))
        return (close if moment < close else close + timedelta(days=1)).isoformat()

    def past(self, stop_at: str | None, stop_date: str | None = None) -> bool:
        """At or past the stop: a time of day, or on a multi-day run a date and time."""
        if stop_at is None:
            return False
        stop = self.stop_moment(stop_at, stop_date)
        return self.now() >= stop if stop is not None else self.now().time() >= parse_hms(stop_at)

    @staticmethod
    def stop_moment(stop_at: str | None, stop_date: str | None) -> datetime | None:
        if stop_at is None or stop_date is None:
            return None
        return datetime.combine(date.fromisoformat(stop_date), parse_hms(stop_at))

    # ── sessions (an account with a calendar) ────────────────────────────────────────────────
    @property
    def calendar(self) -> str | None:
        return self._rules().session.calendar

    def needs_sessions(self, now: datetime, pending: str | None = None) -> bool:
        """A calendar account whose window is missing, running out, or no longer holds the session
        `pending` (the one whose close is still to be rolled)."""
        calendar = self.calendar
        window = self._s.sessions
        if calendar is None:
            return False
        return window is None or window.needs_refresh(calendar, now) or (pending is not None and not window.covers(date.fromisoformat(pending)))

    def sessions_known(self, now: datetime) -> bool:
        """No calendar, or one whose window covers today (pre-trade waits for it otherwise)."""
        window = self._s.sessions
        return self.calendar is None or (window is not None and window.calendar == self.calendar and window.covers(now.date()))

    async def refresh_sessions(self, now: datetime, pending: str | None = None) -> bool:
        """Ask the calendar for the sessions ahead, from `pending` if it is older (a local activity:
        recorded, replayed as is)."""
        rules = self._rules()
        assert rules.session.calendar is not None
        first = min(window_start(now), date.fromisoformat(pending)) if pending else window_start(now)
        request = SessionsRequest(calendar=rules.session.calendar, time_zone=rules.session.time_zone, first=first.isoformat())
        try:
            window: SessionWindow = await workflow.execute_local_activity(
                exchange_sessions, request, start_to_close_timeout=SESSIONS_TIMEOUT, retry_policy=SESSIONS_RETRY
            )
        except LOCAL_ACTIVITY_FAILED as err:  # an account never fails for its calendar: no session until it reads
            workflow.logger.error("the %s calendar could not be read: %s", request.calendar, first_line(err))
            return False
        self._s.sessions = window
        self._day = self._day_config = None
        return True

    def session_on(self, day: date) -> SessionDay | None:
        window = self._s.sessions
        return window.on(day) if window is not None and window.calendar == self.calendar else None

    def session_of(self, day: str) -> SessionDay | None:
        return self.session_on(date.fromisoformat(day))

    def current_or_next(self, moment: datetime) -> SessionDay | None:
        window = self._s.sessions
        if window is None or window.calendar != self.calendar:
            return None
        return next((s for s in window.sessions if self.close_at(s) > moment), None)

    def next_open(self, moment: datetime) -> datetime | None:
        """The next session's open after `moment` (None: not in the window)."""
        window = self._s.sessions
        if window is None or window.calendar != self.calendar:
            return None
        return next((self.open_at(s) for s in window.sessions if self.open_at(s) > moment), None)

    def after(self, day: str) -> SessionDay | None:
        window = self._s.sessions
        return window.after(day) if window is not None else None

    def open_at(self, session: SessionDay) -> datetime:
        return datetime.combine(session.day, parse_hhmm(session_hours(self._rules(), session)[0]))

    def close_at(self, session: SessionDay) -> datetime:
        return datetime.combine(session.day, parse_hhmm(session_hours(self._rules(), session)[1]))

    def day_rules(self, moment: datetime | None = None) -> RiskRules:
        """The rules of `moment`'s date (default now): with a calendar, that day's session hours
        (none on a holiday); without, the rules themselves."""
        rules = self._rules()
        if rules.session.calendar is None:
            return rules
        day = (moment or self.now()).date()
        if self._day is None or self._day[0] is not rules or self._day[1] != day:
            self._day = (rules, day, session_rules(rules, self.session_on(day)))
        return self._day[2]

    def day_config(self, config: RigConfig) -> RigConfig:
        """`config` with the day's rules (the same object without a calendar)."""
        if config.rules.session.calendar is None:
            return config
        rules = self.day_rules()
        if self._day_config is None or self._day_config[0] is not config or self._day_config[1] is not rules:
            self._day_config = (config, rules, config.model_copy(update={"rules": rules}))
        return self._day_config[2]

    def in_session(self, moment: datetime) -> bool:
        return read_clock(moment.time(), self.day_rules(moment)).in_session

    def first_cycle_at(self, moment: datetime) -> datetime:
        """The first cycle time at or after `moment`."""
        period = self._rules().risk_cycle.cycle_seconds
        return moment if on_boundary(moment, period) else moment + timedelta(seconds=seconds_to_next_cycle(moment, period))

    def view(self, session: str | None) -> SessionView | None:
        calendar = self.calendar
        if calendar is None:
            return None
        now = self.now()
        today = self.session_on(now.date())
        current = self.current_or_next(now)
        nxt = self.next_open(now)
        return SessionView(
            calendar=calendar,
            in_session=self.in_session(now),
            today=today.model_copy(update=dict(zip(("open", "close"), session_hours(self._rules(), today), strict=True))) if today else None,
            current=session,
            next_open=nxt.isoformat() if nxt else None,
            next_close=self.close_at(current).isoformat() if current else None,
        )

    async def wait_until(self, target: datetime, woken: Callable[[], bool]) -> bool:
        """Sleep until the exchange-local `target` (DST counted) unless `woken()` first; True if woken.
        A virtual day resumes exactly at the target however late the timer fired."""
        remaining = between(self.now(), target, self._rules())
        if remaining <= timedelta(0):
            return False
        if await self._wait(woken, remaining):
            return True
        self._fired(target)
        return False

    # ── setting ──────────────────────────────────────────────────────────────────────────────
    def anchor(self, start: str | None, date: str | None) -> str:
        """The virtual day starts now at `start` (HH:MM[:SS]) on `date` (default: today's); the anchor."""
        live = exchange_now(workflow.now(), self._rules(), None)
        day = datetime.fromisoformat(date).date() if date else live.date()
        self._s.anchor_exchange = datetime.combine(day, parse_hms(start) if start else live.time()).isoformat()
        self._s.anchor_workflow = workflow.now().isoformat()
        self.cycle_time = None  # the operator's clock wins over a running cycle's "work takes no time"
        return self._s.anchor_exchange

    def anchored(self) -> bool:
        return self._s.anchor_exchange is not None

    def start_run(self) -> None:
        """A continued run re-anchors the virtual day on its own workflow time."""
        if self._synthetic and self._s.anchor_workflow is None:
            self._s.anchor_workflow = workflow.now().isoformat()

    def carried(self) -> ClockState:
        """The state the next run starts from (a copy: a query answered by this closed run still
        reads the virtual clock)."""
        if not self._synthetic:
            return self._s
        return ClockState(anchor_exchange=self.now().isoformat(), anchor_workflow=None, sessions=self._s.sessions)

    def begin_cycle(self) -> datetime:
        # The cycle's own time, to the second: a timer fires a few milliseconds after its cycle
        # time, by an amount the machine decides; what the cycle reads must not depend on that.
        self.cycle_time = self.now().replace(microsecond=0)
        self._in_cycle = True
        return self.cycle_time

    def end_cycle(self) -> None:
        self._in_cycle = False

    def resume_at(self, due: datetime) -> None:
        """A synthetic day's cycle runs at its cycle time, however late the task of its timer came:
        a killed worker, a restarting server or a busy machine delays it, and under time skipping
        the delay passes as workflow time. The virtual clock is re-anchored at the cycle time, so
        no delay shows in the day (DESIGN §3: the same digest through worker kills and server
        restarts). Live accounts read the real clock: a late cycle is late."""
        if self._synthetic and self._s.anchor_workflow is not None and self.now() > due:
            self._s.anchor_exchange, self._s.anchor_workflow = due.isoformat(), workflow.now().isoformat()

    def _fired(self, due: datetime) -> None:
        """A timer for the cycle time `due` fired: how late (the rig_cycle_lag metric), then resume."""
        metrics.cycle_lag(int(between(due, self.now(), self._rules()).total_seconds() * 1000))
        self.resume_at(due)

    # ── sleeping ─────────────────────────────────────────────────────────────────────────────
    async def sleep(
        self,
        quiet: Callable[[datetime], list[time] | None],
        woken: Callable[[], bool],
        changed: Callable[[], bool],
        slept: Callable[[Slept], None],
    ) -> None:
        """Until the next cycle time — through a quiet stretch when `quiet(now)` gives the extra
        moments that end it (a due event, the stop) — or at once when `woken()`. A quiet sleep also
        ends when `changed()` (an order arrived): the cycle then runs at the next cycle time.
        `slept` hears of the cycle times slept through as soon as they are known."""
        rules = self._rules()
        period = timedelta(seconds=rules.risk_cycle.cycle_seconds)
        if self.cycle_time is not None:
            self.resume_at(self.cycle_time)  # a virtual day: the cycle's own work takes no exchange time
        start = self.now()
        target = start + timedelta(seconds=seconds_to_next_cycle(start, rules.risk_cycle.cycle_seconds))
        extra = quiet(start)
        if extra is not None:
            end = next_change(start, self.day_rules(start), extra)
            while target < end:  # the first cycle time at or after the change
                target += period
        timed_out = not await self._wait(lambda: woken() or (extra is not None and changed()), target - start)
        if timed_out:
            self._fired(target)
        if extra is None:
            return
        last = start - (start - datetime.combine(start.date(), time(0))) % period  # the quiet cycle's own time
        reached = target if timed_out else self.now()
        repeats = max(0, -(-(reached - last) // period) - 1)  # cycle times strictly between: slept through
        slept(Slept(repeats, last))
        if not timed_out and not woken():  # an order arrived: cycle at the next cycle time
            due = last + (repeats + 1) * period
            if not await self._wait(woken, due - self.now()):
                self._fired(due)

    @staticmethod
    async def _wait(condition: Callable[[], bool], timeout: timedelta) -> bool:
        """True if `condition` came true before `timeout`."""
        try:
            await workflow.wait_condition(condition, timeout=timeout)
            return True
        except TimeoutError:
            return False
