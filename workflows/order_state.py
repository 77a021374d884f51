"""What an order carries into its next run when its history grows long (continue-as-new)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from domain.enums import CancelReason, OrderState, RejectReason
from domain.models import Fill, Intent
from protocol.messages import CancelResult, PretradeReply

if TYPE_CHECKING:
    from workflows.order import OrderWorkflow

CARRY_KEY = "carried"


class OrderCarry(BaseModel):
    account: str | None
    state: OrderState
    intent: Intent | None
    reply: PretradeReply | None
    fills: list[Fill]
    history: list[str]
    cancel_result: CancelResult | None
    reject_reason: RejectReason | None
    reject_message: str | None
    cancel_reason: CancelReason | None
    replaced_by: str | None
    cancel_pending: bool = False

    @classmethod
    def of(cls, order: OrderWorkflow) -> OrderCarry:
        return cls(
            account=order._account,
            state=order._state,
            intent=order._intent,
            reply=order._reply,
            fills=order._fills,
            history=order._history,
            cancel_result=order._cancel_result,
            reject_reason=order._reject_reason,
            reject_message=order._reject_message,
            cancel_reason=order._cancel_reason,
            replaced_by=order._replaced_by,
            cancel_pending=order._cancel_pending,
        )

    def as_input(self) -> dict[str, Any]:
        return {CARRY_KEY: self.model_dump(mode="json")}

    @classmethod
    def from_input(cls, raw: Any) -> OrderCarry | None:
        """Only a continued run reads this (the caller checks): a desk cannot forge it."""
        if not isinstance(raw, dict) or CARRY_KEY not in raw:
            return None
        try:
            return cls.model_validate(raw[CARRY_KEY])
        except ValidationError:
            return None

    def restore(self, order: OrderWorkflow) -> None:
        order._account, order._state, order._intent, order._reply = self.account, self.state, self.intent, self.reply
        order._fills, order._history, order._cancel_result = list(self.fills), list(self.history), self.cancel_result
        order._reject_reason, order._reject_message = self.reject_reason, self.reject_message
        order._cancel_reason, order._replaced_by, order._cancel_pending = self.cancel_reason, self.replaced_by, self.cancel_pending
        order._arrived = True
