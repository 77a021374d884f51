"""The account's clock: a live account reads the exchange clock from workflow time (DST-correct); a
test or scenario account runs a virtual day anchored at its start. Cycles fall on whole multiples
of `cycle_seconds`; `sleep` waits for the next one — through a quiet stretch when the caller says
nothing can change the decision before it ends — and says how many cycle times it slept through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.clock import ClockAnchor, exchange_now, next_change, parse_hms, seconds_to_next_cycle
    from domain.rules import RiskRules
    from protocol.account_state import ClockState


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
        """The close that ends a DAY order placed at `moment` (exchange-local ISO datetime)."""
        close = datetime.combine(moment.date(), parse_hms(self._rules().session.close))
        return (close if moment < close else close + timedelta(days=1)).isoformat()

    def past(self, stop_at: str | None) -> bool:
        return stop_at is not None and self.now().time() >= parse_hms(stop_at)

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
        return ClockState(anchor_exchange=self.now().isoformat(), anchor_workflow=None)

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
            end = next_change(start, rules, extra)
            while target < end:  # the first cycle time at or after the change
                target += period
        timed_out = not await self._wait(lambda: woken() or (extra is not None and changed()), target - start)
        if timed_out:
            self.resume_at(target)
        if extra is None:
            return
        last = start - (start - datetime.combine(start.date(), time(0))) % period  # the quiet cycle's own time
        reached = target if timed_out else self.now()
        repeats = max(0, -(-(reached - last) // period) - 1)  # cycle times strictly between: slept through
        slept(Slept(repeats, last))
        if not timed_out and not woken():  # an order arrived: cycle at the next cycle time
            due = last + (repeats + 1) * period
            if not await self._wait(woken, due - self.now()):
                self.resume_at(due)

    @staticmethod
    async def _wait(condition: Callable[[], bool], timeout: timedelta) -> bool:
        """True if `condition` came true before `timeout`."""
        try:
            await workflow.wait_condition(condition, timeout=timeout)
            return True
        except TimeoutError:
            return False
