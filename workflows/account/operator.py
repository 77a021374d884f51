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
    from protocol.messages import Alarm, TradingStateChange
    from venues.ibkr.models import BrokerDivergence

TRADING_CHANGES_KEPT = 200
ALARMS_KEPT = 200
BROKER = "broker"  # who a trading-state change the broker's divergence made names


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

    # ── what a broker tells the account ──────────────────────────────────────────────────────
    def alarms(self, last: int = 20) -> list[Alarm]:
        return self._s.alarms[-last:]

    def divergences(self) -> dict[str, str]:
        return self._s.divergences

    def alarm(self, alarm: Alarm) -> None:
        workflow.logger.warning("alarm %s: %s", alarm.kind, alarm.text)
        self._s.alarms.append(alarm)
        del self._s.alarms[:-ALARMS_KEPT]

    def divergence(self, told: BrokerDivergence, cycle: int, stamp: str) -> None:
        """The broker's position differs from the book (never overwritten): new risk stops
        (REDUCING) until every divergence is resolved; an operator's own HALTED or REDUCING
        stands, and is not lifted by the broker."""
        s = self._s
        resolved = told.difference == 0
        if resolved:
            s.divergences.pop(told.symbol, None)
        else:
            s.divergences[told.symbol] = told.text
        kind = "DIVERGENCE_RESOLVED" if resolved else "DIVERGENCE"
        self.alarm(Alarm(kind=kind, text=told.text, symbol=told.symbol, cycle=cycle, exchange_time=stamp))
        if s.divergences and s.trading_state is TradingState.ACTIVE:
            request = TradingStateRequest(state=TradingState.REDUCING, by=BROKER, reason=f"broker position differs from the book: {told.text}"[:500])
            self.set_trading_state(request, cycle, stamp)
            s.reducing_for_divergence = True
        elif not s.divergences and s.reducing_for_divergence and s.trading_state is TradingState.REDUCING:
            self.set_trading_state(
                TradingStateRequest(state=TradingState.ACTIVE, by=BROKER, reason="broker positions agree with the book again"), cycle, stamp
            )
            s.reducing_for_divergence = False
