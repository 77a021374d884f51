"""The account's clock: a live account reads the exchange clock from workflow time (DST-correct); a
test or scenario account runs a virtual day anchored at its start. Cycles fall on whole multiples
of `cycle_seconds`; a quiet stretch — nothing that can change the decision before the regime or a
due event does — is slept through and shown as repeats of the last decision."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.clock import (
        ClockAnchor,
        exchange_now,
        next_change,
        on_boundary,
        parse_hms,
        read_clock,
        seconds_to_next_cycle,
    )
    from domain.enums import RiskMode
    from protocol import run_digest


class AccountClock:
    """A part of RiskWorkflow (workflows/risk.py); its state lives there."""

    def _anchor_clock(self, start: str | None, date: str | None) -> None:
        live = exchange_now(workflow.now(), self._rules, None)
        day = datetime.fromisoformat(date).date() if date else live.date()
        self._s.clock_anchor_exchange = datetime.combine(day, parse_hms(start) if start else live.time()).isoformat()
        self._s.clock_anchor_workflow = workflow.now().isoformat()

    def _now(self) -> datetime:
        anchor = None
        if self._inp.synthetic and self._s.clock_anchor_exchange and self._s.clock_anchor_workflow:
            anchor = ClockAnchor(
                exchange=datetime.fromisoformat(self._s.clock_anchor_exchange), workflow=datetime.fromisoformat(self._s.clock_anchor_workflow)
            )
        return exchange_now(workflow.now(), self._rules, anchor)

    def _moment(self) -> datetime:
        """The exchange time of what happens now (a pre-trade, an arrival, a report). In a virtual
        day a cycle's work takes no exchange time: during a cycle it is the cycle's own time, so
        what the cycle causes is stamped the same on every run. Live accounts read the clock."""
        if self._inp.synthetic and self._in_cycle and self._cycle_time is not None:
            return self._cycle_time
        return self._now()

    def _past_stop(self) -> bool:
        return self._inp.stop_at is not None and self._now().time() >= parse_hms(self._inp.stop_at)

    async def _sleep(self) -> None:
        """Until the next cycle time — through a quiet stretch when nothing can change the
        decision before it ends — or at once when an injected event wakes the cycle (or the run
        must continue as new). Boundaries slept through are the last decision's repeats."""
        period = timedelta(seconds=self._rules.risk_cycle.cycle_seconds)
        if self._cycle_time is not None:
            self._resume_at(self._cycle_time)  # a virtual day: the cycle's own work takes no exchange time
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
        if passed:
            run_digest.add_quiet(self._s.digest, self._s.cycle + 1, passed, (last + passed * period).strftime("%H:%M:%S"))
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
        except TimeoutError:
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
