"""The account's issue-25 controls around the cycle (the desk's pre-trade is the gate's): the rig's own
orders checked before they are sent (a refusal is not sent: it is the decision's `skipped` note and
the next cycle plans again), every message counted (the rig's new orders, replaces and cancels; a
desk's cancel once it is seen canceled), every fill counted (the repeated-execution throttle puts
the account REDUCING, by `controls`, with its reason), the order-to-trade alarm once a cycle.

It shares the gate's look-back (`GateState.controls`). All of it runs only once the controls are
configured (with the shipped rules, all off, nothing here runs) and behind the patch
`controls-wired`: a run recorded before it replays as it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.controls import (
        RigOrder,
        check_rig_order,
        clip_rig_quantity,
        order_to_trade_alarm,
        record_fill,
        record_message,
    )
    from domain.enums import CancelReason, RejectReason
    from domain.ledger import Journal, Ledger
    from domain.models import Intent
    from domain.rules import ControlsRule, RigConfig, RiskRules
    from protocol.account_state import GateState
    from protocol.messages import Alarm
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator

CONTROLS_WIRED = "controls-wired"  # the patch: the issue-25 controls judge the account's orders
_OFF = ControlsRule()


def controls_wired(rules: RiskRules) -> bool:
    """Are the controls on and this run past the patch? With the shipped rules (all off) no marker
    is recorded and nothing changes."""
    return rules.controls != _OFF and workflow.patched(CONTROLS_WIRED)


class AccountControls:
    def __init__(
        self,
        state: GateState,
        config: Callable[[], RigConfig],
        market: AccountMarket,
        ledger: Ledger,
        operator: AccountOperator,
    ) -> None:
        self._s = state
        self._config = config
        self._market = market
        self._ledger = ledger
        self._operator = operator

    def wired(self) -> bool:
        return controls_wired(self._config().rules)

    # ── the rig's own orders ─────────────────────────────────────────────────────────────────
    def clip(self, intents: list[Intent]) -> tuple[list[Intent], list[str]]:
        """De-risk steps sized to the size limits (`rig_orders.size_limits`): smaller rather than
        refused every cycle; one that cannot keep a lot is not sent (a note)."""
        config = self._config()
        rule = config.rules.controls
        if not rule.rig_orders.size_limits or not self.wired():
            return intents, []
        kept: list[Intent] = []
        notes: list[str] = []
        for intent in intents:
            price = intent.limit_price if intent.limit_price is not None else self._market.quote(intent.symbol).truth_tick
            lot = config.universe.by_symbol[intent.symbol].lot_size
            quantity = clip_rig_quantity(
                intent.symbol, intent.quantity, price, lot, rule=rule, max_order_notional=config.rules.orders.max_order_notional
            )
            if quantity <= 0:
                notes.append(f"{intent.symbol}: {RejectReason.MAX_ORDER_NOTIONAL.value}: not one lot of {lot} fits the size limits at {price:,.2f}")
            else:
                kept.append(intent if quantity == intent.quantity else intent.model_copy(update={"quantity": quantity}))
        return kept, notes

    def refusal(self, symbol: str, order: RigOrder, now: datetime) -> str | None:
        """A rig order about to be sent, against the controls that make sense for it (quote sanity,
        price band, MARKET collar, size limits): None, or the note "SYM: CODE: message"."""
        if not self.wired():
            return None
        rules = self._config().rules
        refused = check_rig_order(
            order,
            top=self._market.top(symbol, now),
            reference=self._market.collar_reference(symbol, now),
            rule=rules.controls,
            max_order_notional=rules.orders.max_order_notional,
            l1_max_age_seconds=rules.market_data.l1_max_age_seconds,
        )
        return f"{symbol}: {refused[0].value}: {refused[1]}" if refused is not None else None

    # ── messages and fills ───────────────────────────────────────────────────────────────────
    def sent(self, messages: int) -> None:
        """The rig sent `messages` (new orders, replaces, cancels): counted, never refused."""
        if messages <= 0 or not self.wired():
            return
        rule, at = self._config().rules.controls, workflow.now().timestamp()
        state = self._s.controls
        for _ in range(messages):
            state = record_message(state, at, rule)
        self._s.controls = state

    def fold(self, journal: Journal, cycle: int, stamp: str) -> None:
        """What became final since the last fold: a desk's cancel seen done counts as a message; each
        fill counts for the order-to-trade ratio and, a desk's, for the repeated-execution throttle."""
        if not self.wired() or not (journal.fills or journal.closed):
            return
        rule, at = self._config().rules.controls, workflow.now().timestamp()
        state = self._s.controls
        for closed in journal.closed:
            if closed.outcome.cancel_reason is CancelReason.USER and not closed.own:
                state = record_message(state, at, rule)
        own = {c.outcome.intent_id for c in journal.closed if c.own}
        for fill in journal.fills:
            entry = self._ledger.open_order(fill.intent_id)
            desk = not (fill.intent_id in own or (entry is not None and entry.own))
            throttle, state = record_fill(state, fill.symbol, fill.side, at, rule, desk=desk)
            if throttle is not None and (request := throttle.request(self._operator.trading_state)) is not None:
                self._s.controls = state
                self._operator.set_trading_state(request, cycle, stamp)
        self._s.controls = state

    def alarm(self, cycle: int, stamp: str) -> None:
        """The order-to-trade ratio over its window, once a cycle: an operator alarm (once a window)."""
        if not self.wired():
            return
        raised, self._s.controls = order_to_trade_alarm(self._s.controls, workflow.now().timestamp(), self._config().rules.controls.order_to_trade)
        if raised is not None:
            self._operator.alarm(Alarm(kind="ORDER_TO_TRADE", text=raised.text, symbol=raised.symbol, cycle=cycle, exchange_time=stamp))
