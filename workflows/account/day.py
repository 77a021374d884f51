"""The daily roll of an account with a calendar: at each session's close, one event.

In order: DAY orders still working expire at the venue; the closing marks are fixed (the market
read as of the close); the day's P&L is fixed at them and the next day's beginning-of-day book is
the closing positions at those marks — realized P&L moves to the prior days, daily P&L and with
it the loss rows (L1–L3) start again at 0; the decision log starts a new day (the closed one kept,
bounded); the run digest folds a ROLL item; and a `daily_roll` local activity leaves its marker
in the history — the event to look for in the UI. The trading state and the kill switch are not
touched: they persist until an operator changes them. Between sessions nothing cycles.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calendar import daily_roll
    from domain.days import DayRecord, keep_days
    from domain.digest import RunDigest
    from domain.enums import CancelReason
    from domain.ledger import Ledger
    from domain.pnl import PnlTotals, daily_loss_pct
    from domain.sessions import SessionDay
    from protocol import run_digest
    from protocol.account_state import DayState
    from protocol.messages import DayLog, DecisionRecord
    from protocol.parse import first_line
    from protocol.sessions import RollNotice
    from workflows.account.clock import AccountClock
    from workflows.account.cycle import AccountCycle
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator
    from workflows.failures import LOCAL_ACTIVITY_FAILED

ROLL_TIMEOUT = timedelta(seconds=10)
ROLL_RETRY = RetryPolicy(maximum_attempts=3)
LOG_DAYS_KEPT = 10  # closed sessions whose decision logs are kept …
LOG_RECORDS_KEPT = 2_000  # … at most this many decision records in all (the newest days first)


class AccountDay:
    def __init__(
        self,
        account: str,
        state: DayState,
        clock: AccountClock,
        market: AccountMarket,
        ledger: Ledger,
        cycle: AccountCycle,
        operator: AccountOperator,
        digest: RunDigest,
    ) -> None:
        self._account = account
        self._s = state
        self._clock = clock
        self._market = market
        self._ledger = ledger
        self._cycle = cycle
        self._operator = operator
        self._digest = digest

    @property
    def enabled(self) -> bool:
        return self._clock.calendar is not None

    @property
    def session(self) -> str | None:
        return self._s.session

    def days(self) -> list[DayRecord]:
        return self._s.days

    def logs(self) -> list[DayLog]:
        return self._s.logs

    def begin(self, now: datetime) -> None:
        """The session the book's day belongs to: the one under way, else the next. A test
        account's clock set back before it (`set_session`) re-dates it; forward, its roll comes."""
        session = self._clock.current_or_next(now)
        if session is not None and (self._s.session is None or session.date < self._s.session):
            self._s.session = session.date

    def roll_due(self, now: datetime) -> SessionDay | None:
        """The session whose close has come, when it has."""
        session = self._clock.session_of(self._s.session) if self._s.session else None
        return session if session is not None and now >= self._clock.close_at(session) else None

    async def roll(self, session: SessionDay, now: datetime) -> DayRecord:
        await self._cycle.expire_open_orders()  # DAY orders end at the close
        await self._market.refresh(now)  # the closing marks: the market as of the close
        book = self._ledger.pnl
        marks = {entry.symbol: self._market.mark_now(entry.symbol) for entry in book.positions.values()}
        realized_prior = book.realized_prior
        day = self._ledger.close_day(marks)
        journal = self._cycle.fold_journal()  # the expired orders (and any last fills): the closing day's
        tally, decisions = self._cycle.start_day()
        record = DayRecord(
            date=session.date,
            open=self._clock.open_at(session).strftime("%H:%M"),
            close=self._clock.close_at(session).strftime("%H:%M"),
            early_close=session.early_close,
            rolled_at=now.isoformat(),
            equity=self._ledger.equity,
            pnl=PnlTotals(realized=day.realized, unrealized=day.unrealized, daily=day.daily, costs=day.costs),
            daily_loss_pct=daily_loss_pct(day.daily - day.costs, self._ledger.equity),  # the loss rows read net
            realized_prior=realized_prior,
            marks=dict(sorted(day.marks.items())),
            bod_next=day.bod,
            positions=len(day.bod),
            expired=sum(1 for c in journal.closed if c.outcome.cancel_reason is CancelReason.EXPIRED_DAY),
            tally=tally,
            trading_state=self._operator.trading_state,
        )
        run_digest.add_roll(self._digest, record)
        self._digest.seal()
        keep_days(self._s.days, record)
        self._keep_log(DayLog(date=session.date, decisions=decisions))
        following = self._clock.after(session.date)
        self._s.session = following.date if following is not None else None
        notice = RollNotice(
            account=self._account,
            date=record.date,
            close=record.close,
            daily=record.pnl.daily,
            realized=record.pnl.realized,
            unrealized=record.pnl.unrealized,
            positions=record.positions,
            expired=record.expired,
            next_session=self._s.session,
            trading_state=record.trading_state.value,
        )
        try:
            sentence = await workflow.execute_local_activity(daily_roll, notice, start_to_close_timeout=ROLL_TIMEOUT, retry_policy=ROLL_RETRY)
        except LOCAL_ACTIVITY_FAILED as err:  # the marker is for readers: the roll itself is done
            sentence = f"{notice.date} rolled (its marker failed: {first_line(err)})"
        workflow.set_current_details(f"**{sentence}**")
        return record

    def _keep_log(self, log: DayLog) -> None:
        logs = self._s.logs
        logs.append(log.model_copy(update={"decisions": log.decisions[-LOG_RECORDS_KEPT:]}))
        while len(logs) > LOG_DAYS_KEPT or sum(len(x.decisions) for x in logs) > LOG_RECORDS_KEPT:
            del logs[0]

    def decisions_of(self, day: str) -> list[DecisionRecord] | None:
        return next((log.decisions for log in self._s.logs if log.date == day), None)
