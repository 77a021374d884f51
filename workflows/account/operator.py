"""The account's trading state (ACTIVE / REDUCING / HALTED, de-risk frozen or not): the kill switch
and its siblings, each change recorded with who and why, and shown as a search attribute."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.digest import RunDigest
    from domain.enums import TradingState
    from domain.events import TradingStateRequest
    from protocol import contract as c
    from protocol import run_digest
    from protocol.account_state import OperatorState
    from protocol.messages import TradingStateChange

TRADING_CHANGES_KEPT = 200


class AccountOperator:
    def __init__(self, state: OperatorState, digest: RunDigest) -> None:
        self._s = state
        self._digest = digest

    @property
    def trading_state(self) -> TradingState:
        return self._s.trading_state

    @property
    def frozen(self) -> bool:
        return self._s.frozen

    def changes(self, last: int | None = None) -> list[TradingStateChange]:
        return self._s.trading_changes if last is None else self._s.trading_changes[-last:]

    def set_trading_state(self, request: TradingStateRequest, cycle: int, stamp: str) -> str:
        s = self._s
        change = TradingStateChange(**request.model_dump(), previous=s.trading_state, cycle=cycle, exchange_time=stamp)
        s.trading_changes.append(change)
        del s.trading_changes[:-TRADING_CHANGES_KEPT]
        run_digest.add_trading_change(self._digest, change)
        s.trading_state, s.frozen = request.state, request.freeze
        workflow.upsert_search_attributes([c.SA_TRADING_STATE.value_set(request.state.value)])
        workflow.logger.warning("trading state %s → %s by %s: %s", change.previous.value, request.state.value, request.by, request.reason)
        frozen = " and de-risk frozen" if request.freeze else ""
        return f"{change.previous.value} → {request.state.value}{frozen} by {request.by}: {request.reason}"
