"""What IB's order statuses and error codes mean for the rig — as data, so tests can walk it.

Order statuses. The mapping follows NautilusTrader's Interactive Brokers adapter
(`nautilus_trader/adapters/interactive_brokers/parsing/execution.py`, `MAP_ORDER_STATUS`:
ApiPending/PendingSubmit/PreSubmitted → SUBMITTED, Submitted → ACCEPTED, PendingCancel →
PENDING_CANCEL, ApiCancelled/Cancelled → CANCELED, Filled → FILLED, Inactive → DENIED) and IB's
own list (https://interactivebrokers.github.io/tws-api/order_submission.html#order_status), with
three rig decisions:

* PreSubmitted emits ACCEPTED. IB has taken the order (it has a permId, it can be canceled) and
  holds it before routing: outside regular hours, a simulated order type, a short-sale locate.
  An order resting in PreSubmitted until the open would otherwise look unacknowledged to the
  order workflow all night. The event's text says "PreSubmitted" (and whyHeld), so a reader can
  tell a held acceptance from a routed one. ApiPending and PendingSubmit emit nothing: nobody
  but the API has seen the order yet.
* Filled emits nothing: fills come from executions (execDetails), each with its execId. The
  FILL whose leaves_qty is 0 is the order's completion.
* Inactive emits REJECTED — unless whyHeld says "locate" (IB is locating shares for a short
  sale; the order is still alive), and CANCELED if the order already has fills (the remainder
  ended; a fill is never un-done by a reject).

Terminal statuses (Cancelled, ApiCancelled, Inactive) are held back until the executions account
for the `filled` quantity the status reports, so consumers see the fills first; reconciliation
(reqExecutions) releases whatever is still held. Status callbacks are advisory; executions are
the truth.

Error codes (https://www.interactivebrokers.com/campus/ibkr-api-page/tws-api-error-codes/).
ib_async's Wrapper.error treats every code outside a short warning list as fatal and marks the
Trade Cancelled — 10349 "Order TIF was set to DAY based on order preset" included, although the
order is alive. The rig decides from the sets below instead. An unlisted code on an order IB has
acknowledged changes nothing (it is logged): a wrongly canceled order is worse than a late one,
and the next orderStatus or the reconciliation tells the truth. An unlisted, non-informational
code on an order IB has *not* acknowledged is IB refusing the placement: REJECTED with IB's code
and text (should IB later say the order works, the gateway cancels it: no orphan). NautilusTrader's client (client/error.py)
takes the same line: only {201, 203, 321, 10289, 10293} reject, 202 cancels, the rest is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class StatusEffect(str, Enum):
    NONE = "NONE"  # nothing to tell the order (not yet seen by the broker, or told by executions)
    ACCEPTED = "ACCEPTED"  # acknowledged by IB (once per order)
    CANCEL_PENDING = "CANCEL_PENDING"  # a cancel is on its way; fills may still come
    CANCELED = "CANCELED"  # terminal, held until executions cover the reported filled quantity
    REJECTED = "REJECTED"  # terminal (CANCELED instead when the order has fills), held likewise
    INACTIVE = "INACTIVE"  # REJECTED, unless whyHeld contains "locate" (then: still working)


@dataclass(frozen=True)
class StatusRule:
    effect: StatusEffect
    meaning: str


# IB orderStatus / openOrder / completedOrder status string → what the rig does with it.
IB_ORDER_STATUS: dict[str, StatusRule] = {
    "ApiPending": StatusRule(StatusEffect.NONE, "created by the API, not yet transmitted"),
    "PendingSubmit": StatusRule(StatusEffect.NONE, "transmitted, no confirmation from the order destination yet"),
    "PreSubmitted": StatusRule(StatusEffect.ACCEPTED, "accepted by IB and held before routing (outside RTH, simulated type, locate)"),
    "Submitted": StatusRule(StatusEffect.ACCEPTED, "accepted by the order destination and working"),
    "PendingCancel": StatusRule(StatusEffect.CANCEL_PENDING, "cancel sent, not confirmed; executions may still occur"),
    "ApiCancelled": StatusRule(StatusEffect.CANCELED, "canceled before IB accepted it"),
    "Cancelled": StatusRule(StatusEffect.CANCELED, "canceled (by the rig, a user, or IB's system)"),
    "Filled": StatusRule(StatusEffect.NONE, "completely filled: the FILL events come from executions"),
    "Inactive": StatusRule(StatusEffect.INACTIVE, "received but not working: rejected or canceled by IB — or held for a locate"),
    # ib_async's own pseudo-statuses, never sent by TWS: ignored.
    "ValidationError": StatusRule(StatusEffect.NONE, "ib_async marker for a warning on the order"),
    "ApiUpdate": StatusRule(StatusEffect.NONE, "ib_async marker"),
}

LOCATE_MARKER = "locate"  # whyHeld value while IB locates shares for a short sale


def status_rule(status: str) -> StatusRule:
    return IB_ORDER_STATUS.get(status, StatusRule(StatusEffect.NONE, "unknown IB status"))


# Error codes that end an order that IB has NOT yet acknowledged (phase NEW): REJECTED.
# After an acknowledgement the same codes are about a modify/cancel request, not the order.
ORDER_REJECT_CODES: dict[int, str] = {
    103: "Duplicate order id: IB refused this placement (the id is in use)",
    106: "Can't transmit order id",
    107: "Cannot transmit incomplete order",
    109: "Price out of the range defined by the Percentage setting at order defaults",
    110: "The price does not conform to the minimum price variation for this contract",
    111: "The TIF and the order type are incompatible",
    116: "The order cannot be transmitted to a dead exchange",
    200: "No security definition has been found for the request",
    201: "Order rejected",
    203: "The security is not available or allowed for this account",
    321: "Error validating request",
    434: "The order size cannot be zero",
}

DUPLICATE_ORDER_ID = 103  # the gateway takes a new orderId and places the order again (MAX_PLACE_ATTEMPTS)

# IB refused a cancel: the order works on (a CANCEL_REJECTED; a later cancel is sent again).
CANCEL_REFUSED_CODES: frozenset[int] = frozenset({161, 10148})

# Reject codes that keep their meaning after an acknowledgement (IB rejects a working order).
REJECT_AFTER_ACK_CODES: frozenset[int] = frozenset({201, 203})

# Error codes that end an order as CANCELED (held like a Cancelled status).
ORDER_CANCEL_CODES: dict[int, str] = {
    202: "Order cancelled (IB sends it with the Cancelled status, e.g. after a cancel request)",
}

# Codes that say something about an order but never end it.
INFORMATIONAL_CODES: dict[int, str] = {
    161: "Cancel attempted when the order is not in a cancellable state (the cancel is refused)",
    399: "Order message error: a warning (e.g. held until the market opens); the order is live",
    404: "Shares not immediately available for short sale: held while IB locates them",
    10147: "The order to cancel was not found (the cancel is refused)",
    10148: "The order cannot be cancelled in its current state (the cancel is refused)",
    10167: "Market data not subscribed: delayed data shown",
    10311: "The order will be directly routed (precautionary notice)",
    10349: "Order TIF was set to DAY based on order preset",
}
# 2100–2199 are warnings (data-farm connectivity, "Order Event Warning: attribute ignored" 2109,
# "closing quantity greater than the position" 2137…): informational, never order-ending.
INFORMATIONAL_RANGE = range(2100, 2200)

# Connection-level codes (reqId -1).
CONNECTIVITY_LOST_CODES: frozenset[int] = frozenset({1100, 2110})  # TWS ↔ IB servers lost
CONNECTIVITY_RESTORED_DATA_LOST = 1101  # restored, market data subscriptions lost: resubscribe
CONNECTIVITY_RESTORED_CODES: frozenset[int] = frozenset({1101, 1102})


class ErrorEffect(str, Enum):
    INFO = "INFO"
    REJECT = "REJECT"
    CANCEL = "CANCEL"


def error_effect(code: int, acknowledged: bool) -> ErrorEffect:
    """What an error code on one of the rig's orders does; `acknowledged` = IB has accepted it."""
    if code in ORDER_CANCEL_CODES:
        return ErrorEffect.CANCEL
    if code in ORDER_REJECT_CODES and (not acknowledged or code in REJECT_AFTER_ACK_CODES):
        return ErrorEffect.REJECT
    return ErrorEffect.INFO  # informational, listed or not: the order keeps its state


def is_informational(code: int) -> bool:
    return code in INFORMATIONAL_CODES or code in INFORMATIONAL_RANGE
