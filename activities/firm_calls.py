"""What the firm asks of its member accounts, and what an account asks of its firm, as activities.

- `firm_fan_out`: the firm's halt (resume) sets every member's trading state through the account's own
  `set_trading_state` update — the same one `rig account halt` sends — each with an update id made of
  the firm's change and the account, so a retried activity never records a change twice. A member
  already HALTED is left alone; one that does not exist or is closed is reported, never fatal.
- `report_to_firm`: an account's usage report (signed: an internal message), answered with its grant;
  None when the firm is not running (the account keeps its allocation).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.enums import TradingState
from domain.firm import FirmGrant
from protocol.contract import ACCOUNT_BUSY, QUERY_STATE, UPDATE_REPORT_USAGE, UPDATE_SET_TRADING_STATE, firm_workflow_id, risk_workflow_id
from protocol.firm_messages import FanOut, MemberOutcome, MemberResult, ReportToFirm
from protocol.messages import RiskView
from protocol.parse import first_line

CALL_TIMEOUT = timedelta(seconds=20)
BUSY_ATTEMPTS = 5  # an account starting or continuing as new answers "ask again"
BUSY_BACKOFF_SECONDS = 0.5
CONCURRENCY = 16


def firm_reason(firm: str, verb: str, reason: str) -> str:
    """How a member records the firm's change: the firm named first (a resume finds its own halts by it)."""
    return f"{firm_prefix(firm, verb)}{reason}"[:500]


def firm_prefix(firm: str, verb: str) -> str:
    return f"firm {firm} {verb}: "


class FirmCalls:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def firm_fan_out(self, order: FanOut) -> list[MemberResult]:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(account: str) -> MemberResult:
            async with gate:
                return await self._set(order, account)

        return list(await asyncio.gather(*[one(a) for a in order.members]))

    async def _set(self, order: FanOut, account: str) -> MemberResult:
        handle = self._client.get_workflow_handle(risk_workflow_id(account))
        for attempt in range(BUSY_ATTEMPTS):
            try:
                desc = await handle.describe(rpc_timeout=CALL_TIMEOUT)
                if desc.status is not WorkflowExecutionStatus.RUNNING:
                    status = desc.status.name if desc.status else "UNKNOWN"
                    return MemberResult(account=account, outcome=MemberOutcome.CLOSED, detail=f"account is closed ({status})")
                view = await handle.query(QUERY_STATE, result_type=RiskView, rpc_timeout=CALL_TIMEOUT)
                skip = self._skip(order, account, view)
                if skip is not None:
                    return skip
                answer = await handle.execute_update(
                    UPDATE_SET_TRADING_STATE, order.request, id=f"{order.tag}:{account}", result_type=str, rpc_timeout=CALL_TIMEOUT
                )
                outcome = MemberOutcome.RESUMED if order.resume else MemberOutcome.HALTED
                return MemberResult(account=account, outcome=outcome, detail=answer[:300])
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return MemberResult(account=account, outcome=MemberOutcome.NO_SUCH_ACCOUNT, detail="no such account (never opened)")
                problem = MemberResult(account=account, outcome=MemberOutcome.UNREACHABLE, detail=first_line(err, 300))
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == ACCOUNT_BUSY):
                    return MemberResult(account=account, outcome=MemberOutcome.REFUSED, detail=first_line(cause or err, 300))
                problem = MemberResult(account=account, outcome=MemberOutcome.REFUSED, detail=first_line(cause, 300))
            activity.heartbeat(account, attempt)
            await asyncio.sleep(BUSY_BACKOFF_SECONDS * 2**attempt)
        return problem

    @staticmethod
    def _skip(order: FanOut, account: str, view: RiskView) -> MemberResult | None:
        if not order.resume:
            if view.trading_state is TradingState.HALTED:
                return MemberResult(account=account, outcome=MemberOutcome.ALREADY_HALTED, detail="HALTED already: left as it was")
            return None
        last = view.trading_changes[-1] if view.trading_changes else None
        if view.trading_state is not TradingState.HALTED or last is None or not last.reason.startswith(firm_prefix(order.firm, "halt")):
            return MemberResult(
                account=account, outcome=MemberOutcome.LEFT_AS_IS, detail=f"{view.trading_state.value}, not halted by firm {order.firm}"
            )
        return None

    @activity.defn
    async def report_to_firm(self, sent: ReportToFirm) -> FirmGrant | None:
        handle = self._client.get_workflow_handle(firm_workflow_id(sent.firm))
        try:
            return await handle.execute_update(UPDATE_REPORT_USAGE, sent.report, result_type=FirmGrant, rpc_timeout=CALL_TIMEOUT)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND or "already completed" in str(err):
                return None
            raise

    def all(self) -> list:
        return [self.firm_fan_out, self.report_to_firm]
