"""The order workflow's state: one record, carried as-is through continue-as-new and answered
as-is to the `state` query (it is also the workflow's result).

It is the order's lifecycle facts (domain/order.py `OrderCore`: intent, state, fills, why it
ended) plus what the workflow keeps beside them: its account, the pre-trade reply that routes it
to its venue, the cancel's first answer (a repeat gets it again) and a bounded history. The
`quantity`, `filled_quantity`, `average_price` and `replaces` a reader wants are computed from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, computed_field

from domain.base import Record
from domain.enums import OrderState, ReconcileStatus
from domain.order import OrderCore, OrderReport
from protocol.messages import CancelResult, PretradeReply

HISTORY_LINES_KEPT = 200
RECORD_KEY = "record"  # a continued run's input: {"record": <OrderRecord>}
OLD_CARRY_KEY = "carried"  # … as runs before the record carried it (regrouped on read)


class OrderRecord(OrderCore):
    account: str | None = None
    reply: PretradeReply | None = None  # the account's verdict: venue, routing, the simulated venue's parameters
    cancel_result: CancelResult | None = None  # the first cancel's answer (cancel is idempotent)
    released: str | None = None  # a refused replace's replacement the account reserved: never placed
    history: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filled_quantity(self) -> int:
        return self.filled

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quantity(self) -> int:
        return self.intent.quantity if self.intent else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def average_price(self) -> float | None:
        fills = self.effective_fills()
        return sum(f.quantity * f.price for f in fills) / self.filled if self.filled else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def replaces(self) -> str | None:
        return self.intent.replaces if self.intent else None

    def note(self, stamp: str, line: str) -> None:
        self.history.append(f"{stamp} {line}")
        del self.history[:-HISTORY_LINES_KEPT]

    def as_input(self) -> dict[str, Any]:
        return {RECORD_KEY: self.model_dump(mode="json")}

    @classmethod
    def from_input(cls, raw: Any, intent_id: str) -> OrderRecord | None:
        """A continued run's record (only a continued run reads this: a desk cannot forge it)."""
        if not isinstance(raw, dict):
            return None
        try:
            if RECORD_KEY in raw:
                return cls.model_validate(raw[RECORD_KEY])
            if OLD_CARRY_KEY in raw:
                return cls._from_old_carry(raw[OLD_CARRY_KEY], intent_id)
        except ValidationError:
            return None
        return None

    @classmethod
    def _from_old_carry(cls, carried: Any, intent_id: str) -> OrderRecord:
        """What runs before the record carried: the same facts, a cancel pending as a flag."""
        record = cls.model_validate({**carried, "intent_id": intent_id})
        record.acknowledged = record.state is not OrderState.ACCEPTED or bool(record.fills)
        if carried.get("cancel_pending") and record.state.is_open:
            record.state = OrderState.PENDING_CANCEL
        return record


OrderSnapshot = OrderRecord  # what the `state` query answers: the record itself


class Reconciled(Record):
    """An order read back from the server (activities/client_ops.py): how it runs (or ended) and
    what it recorded."""

    intent_id: str
    status: ReconcileStatus
    report: OrderReport | None = None
    cause: str = ""

    @property
    def alive(self) -> bool:
        return self.status is ReconcileStatus.RUNNING and self.report is not None

    @property
    def finished_normally(self) -> bool:
        return self.status is ReconcileStatus.COMPLETED and self.report is not None and self.report.state.is_terminal
