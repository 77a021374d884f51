"""What operators and tests send an account: synthetic events (test accounts only: they replace
the book or move the clock), new rules, and the trading state (the kill switch). Each is an
Update whose validator refuses what its handler could not apply, recorded in the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.events import ExposureEvent, SessionEvent, exposure_event_problem
    from domain.rules import RiskRules
    from protocol import contract as c
    from protocol import run_digest
    from protocol.messages import (
        TradingStateChange,
        TradingStateRequest,
    )
    from protocol.parse import parse

TRADING_CHANGES_KEPT = 200


class AccountOperator:
    """A part of RiskWorkflow (workflows/risk.py); its state lives there."""

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
        self._cycle_time = None  # the operator's clock wins over the running cycle's "work takes no time"
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
            raise ApplicationError("the account is starting: ask again", type=c.ACCOUNT_BUSY)

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
        return self._set_trading_state(request, self._moment()) + "; a cycle runs now"

    def _set_trading_state(self, request: TradingStateRequest, now: datetime) -> str:
        s = self._s
        change = TradingStateChange(**request.model_dump(), previous=s.trading_state, cycle=s.cycle, exchange_time=self._stamp(now))
        s.trading_changes.append(change)
        run_digest.add_trading_change(s.digest, change)
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
