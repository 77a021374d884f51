"""What a broker's gateway tells the account outside an order's own messages (venues/ibkr): a
fill of an order whose workflow has closed, booked however late with an alarm naming the order;
a difference between the broker's positions and the book, handed to the operator."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.enums import Bucket, Side
    from domain.execution import ExecKind
    from domain.ledger import Ledger
    from domain.models import Fill
    from protocol.messages import Alarm
    from venues.ibkr.models import BrokerDivergence, LateFill
    from workflows.account.clock import AccountClock
    from workflows.account.operator import AccountOperator


class AccountBroker:
    def __init__(self, ledger: Ledger, operator: AccountOperator, clock: AccountClock, cycle: Callable[[], int]) -> None:
        self._ledger, self._operator, self._clock, self._cycle = ledger, operator, clock, cycle

    def late_fill(self, late: LateFill) -> bool:
        """Book the fill once (by its execution id); True when it was booked (the alarm raised)."""
        event = late.event
        if event.kind not in (ExecKind.FILL, ExecKind.CORRECTION) or not event.exec_id or event.last_px is None or event.last_qty <= 0:
            return False
        entry, outcome = self._ledger.open_order(late.intent_id), self._ledger.outcome(late.intent_id)
        intent = entry.intent if entry is not None else None
        bucket = intent.bucket if intent is not None else Bucket.LT
        fill = Fill(
            fill_id=event.exec_id, intent_id=late.intent_id, symbol=late.symbol, bucket=bucket, side=Side(late.side), quantity=event.last_qty,
            price=event.last_px, commission=event.commission,
        )  # fmt: skip
        stamp = self._clock.stamp(self._clock.moment())
        try:
            booked = self._ledger.apply_fill(fill, cycle=self._cycle(), exchange_time=stamp)
        except ValueError as err:  # a fill the book refuses (absurd price or size): nothing applied
            workflow.logger.warning("late fill %s refused: %s", event.exec_id, err)
            return False
        if booked:
            whose = f"{late.intent_id} ({outcome.label})" if outcome is not None else late.intent_id
            text = f"late fill booked: {late.side} {event.last_qty} {late.symbol} @ {event.last_px:g} of {whose}, after its order workflow closed"
            self._operator.alarm(
                Alarm(kind="LATE_FILL", text=text, symbol=late.symbol, intent_id=late.intent_id, cycle=self._cycle(), exchange_time=stamp)
            )
        return booked

    def divergence(self, told: BrokerDivergence) -> None:
        self._operator.divergence(told, self._cycle(), self._clock.stamp(self._clock.moment()))
