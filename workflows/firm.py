"""FirmWorkflow: a firm (id `firm-<FIRM>`), the entity that groups accounts — its aggregate limits, the
allocations of them its accounts hold (domain/firm.py), and the firm's kill switch.

- No order waits on the firm: each account checks its pre-trade against its own allocation. Once a
  cycle an account reports its usage (`report_usage`, a signed internal update) and gets back its
  cumulative grant and, when the firm wants some back, a reclaim target; the firm rebalances from
  those reports, out of its unallocated pool only.
- `firm_halt` (by, reason) records the change once and sets every member HALTED through the accounts'
  own `set_trading_state` (activities/firm_calls.py); a halt of a HALTED firm is refused by the
  validator, so it changes nothing and leaves nothing in the history. `firm_resume` is its mirror and
  resumes only the members this firm halted.
- Liveness as the account's: nothing an account does can fail the firm's task (validators refuse what
  a handler could not apply), the carried state is bounded (≤ 100 members, ≤ 200 changes), and the
  firm continues as new before the server's per-run update limit or when the server suggests it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.firm_calls import FirmCalls, firm_reason
    from domain.enums import TradingState
    from domain.events import TradingStateRequest
    from domain.firm import FirmGrant, FirmLimits, UsageReport, open_book, receive_report
    from protocol import contract as c
    from protocol.firm_messages import (
        CHANGES_KEPT,
        FanOut,
        FirmAnswer,
        FirmChange,
        FirmHaltRequest,
        FirmInput,
        FirmResumeRequest,
        FirmState,
        FirmView,
        MemberOutcome,
        MemberResult,
        MemberView,
    )
    from protocol.parse import first_error, first_line

UPDATES_PER_RUN = 1_500  # the server allows 2,000 updates per run: continue as new well before
FAN_OUT_TIMEOUT = timedelta(minutes=2)
FAN_OUT_HEARTBEAT = timedelta(seconds=30)
FAN_OUT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)


@workflow.defn(name=c.FIRM_WORKFLOW)
class FirmWorkflow:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._problem: str | None = None
        try:
            inp = FirmInput.model_validate(raw)
        except ValidationError as err:  # the run fails cleanly with this; no task ever fails
            self._problem = first_error(err, "(input)")
            inp = FirmInput.model_construct(firm="invalid", limits=FirmLimits(gross=1, credit=1), accounts=[])
        self._inp = inp
        self._state = inp.carried if inp.carried is not None else FirmState(book=open_book(inp.limits, inp.accounts)) if not self._problem else None
        self._updates = 0
        self._must_continue = False

    @property
    def _s(self) -> FirmState:
        assert self._state is not None
        return self._state

    @workflow.run
    async def run(self, raw: Any) -> None:
        if self._problem:
            raise ApplicationError(f"invalid firm input: {self._problem}", type="InvalidFirmInput", non_retryable=True)
        workflow.upsert_search_attributes([c.SA_TRADING_STATE.value_set(self._s.trading_state.value)])
        await workflow.wait_condition(lambda: self._must_continue or workflow.info().is_continue_as_new_suggested())
        self._must_continue = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._inp.model_copy(update={"carried": self._s}))

    def _count_update(self) -> None:
        self._updates += 1
        if self._updates >= UPDATES_PER_RUN:
            self._must_continue = True

    def _validate_ready(self) -> None:
        if self._problem:
            raise ValueError(f"this firm's input is invalid: {self._problem}")

    # ── the accounts' usage reports (internal, signed) ───────────────────────────────────────
    @workflow.update(name=c.UPDATE_REPORT_USAGE)
    def report_usage(self, report: UsageReport) -> FirmGrant:
        self._count_update()
        try:
            book, grant = receive_report(self._s.book, report, halted=self._s.trading_state is TradingState.HALTED)
        except ValueError as err:  # the member's cumulative amounts past their bound: refused, never a failed task
            raise ApplicationError(f"usage report of {report.account} not taken: {first_line(err)}", type="FirmBookBound") from None
        self._s.book = book
        return grant

    @report_usage.validator
    def _validate_report(self, report: UsageReport) -> None:
        self._validate_ready()

    # ── the operators' kill switch ───────────────────────────────────────────────────────────
    @workflow.update(name=c.UPDATE_FIRM_HALT)
    async def halt(self, request: FirmHaltRequest) -> FirmAnswer:
        self._count_update()
        if self._s.trading_state is TradingState.HALTED:  # a second halt validated in the same task as the first
            return FirmAnswer(message=f"firm {self._inp.firm} is HALTED already; nothing to do")
        change = self._record(TradingState.HALTED, request.by, request.reason, request.freeze)
        order = TradingStateRequest(
            state=TradingState.HALTED, by=request.by, reason=firm_reason(self._inp.firm, "halt", request.reason), freeze=request.freeze
        )
        results = await self._fan_out(order, change, resume=False)
        return FirmAnswer(message=self._summary(change, results), results=results)

    @halt.validator
    def _validate_halt(self, request: FirmHaltRequest) -> None:
        self._validate_ready()
        self._refuse_unchanged(TradingState.HALTED)

    @workflow.update(name=c.UPDATE_FIRM_RESUME)
    async def resume(self, request: FirmResumeRequest) -> FirmAnswer:
        self._count_update()
        if self._s.trading_state is TradingState.ACTIVE:
            return FirmAnswer(message=f"firm {self._inp.firm} is ACTIVE already; nothing to do")
        change = self._record(TradingState.ACTIVE, request.by, request.reason, False)
        order = TradingStateRequest(state=TradingState.ACTIVE, by=request.by, reason=firm_reason(self._inp.firm, "resume", request.reason))
        results = await self._fan_out(order, change, resume=True)
        return FirmAnswer(message=self._summary(change, results), results=results)

    @resume.validator
    def _validate_resume(self, request: FirmResumeRequest) -> None:
        self._validate_ready()
        self._refuse_unchanged(TradingState.ACTIVE)

    def _refuse_unchanged(self, state: TradingState) -> None:
        s = self._s
        if s.trading_state is state:
            last = s.changes[-1] if s.changes else None
            since = f" since {last.at}, by {last.by}: {last.reason}" if last else ""
            raise ApplicationError(f"firm {self._inp.firm} is {state.value} already{since}; nothing to do", type=c.FIRM_UNCHANGED)

    def _record(self, state: TradingState, by: str, reason: str, freeze: bool) -> FirmChange:
        """The change, in state and log, before any await: a second request sees it at once."""
        s = self._s
        number = (s.changes[-1].number if s.changes else 0) + 1
        change = FirmChange(state=state, previous=s.trading_state, by=by, reason=reason, freeze=freeze, at=workflow.now().isoformat(), number=number)
        s.changes = [*s.changes, change][-CHANGES_KEPT:]
        s.trading_state, s.frozen = state, freeze
        workflow.upsert_search_attributes([c.SA_TRADING_STATE.value_set(state.value)])
        workflow.logger.warning("firm %s %s → %s by %s: %s", self._inp.firm, change.previous.value, state.value, by, reason)
        return change

    async def _fan_out(self, order: TradingStateRequest, change: FirmChange, *, resume: bool) -> list[MemberResult]:
        fan_out = FanOut(
            firm=self._inp.firm,
            members=list(self._s.book.members),
            request=order,
            tag=f"{c.firm_workflow_id(self._inp.firm)}:{change.number}",
            resume=resume,
        )
        try:
            results: list[MemberResult] = await workflow.execute_activity_method(
                FirmCalls.firm_fan_out,
                fan_out,
                start_to_close_timeout=FAN_OUT_TIMEOUT,
                heartbeat_timeout=FAN_OUT_HEARTBEAT,
                retry_policy=FAN_OUT_RETRY,
            )
        except Exception as err:  # noqa: BLE001 — recorded as every member unreachable; the change stands
            results = [MemberResult(account=a, outcome=MemberOutcome.UNREACHABLE, detail=str(err)[:300]) for a in fan_out.members]
        self._s.last_results = results
        return results

    def _summary(self, change: FirmChange, results: list[MemberResult]) -> str:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
        outcome = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"firm {self._inp.firm}: {change.previous.value} → {change.state.value} by {change.by}: {change.reason}; members: {outcome or 'none'}"

    # ── queries ──────────────────────────────────────────────────────────────────────────────
    @workflow.query(name=c.QUERY_STATE)
    def state(self) -> FirmView:
        s = self._s
        book = s.book
        members = [
            MemberView(
                account=name,
                allocated=m.allocated,
                granted=m.granted,
                released=m.released_seen,
                usage=m.usage,
                reports=m.reports,
                reclaim_to=m.reclaim_to,
            )
            for name, m in book.members.items()
        ]
        return FirmView(
            firm=self._inp.firm,
            trading_state=s.trading_state,
            frozen=s.frozen,
            limits=book.limits,
            allocated=book.allocated(),
            pool=book.pool(),
            members=members,
            changes=s.changes,
            last_results=s.last_results,
        )
