"""The domain's vocabulary. Every state, mode and reason the rig speaks is one of these."""

from __future__ import annotations

from enum import Enum


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, Enum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class Bucket(str, Enum):
    LT = "LT"
    MM_PURE = "MM_PURE"


class Regime(str, Enum):
    OPEN_EARLY = "OPEN_EARLY"
    MID = "MID"
    LATE = "LATE"
    CLOSE = "CLOSE"
    # Before the open or from the close on: nothing trades, new risk is held back.
    OUTSIDE_SESSION = "OUTSIDE_SESSION"


# The trading day in order; "a later regime never gives a looser mode".
SESSION_REGIMES: tuple[Regime, ...] = (Regime.OPEN_EARLY, Regime.MID, Regime.LATE, Regime.CLOSE)


class RiskMode(str, Enum):
    NORMAL = "NORMAL"
    THROTTLE_NEW_ORDERS = "THROTTLE_NEW_ORDERS"
    SOFT_DERISK = "SOFT_DERISK"
    HARD_DERISK = "HARD_DERISK"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]

    @property
    def allows_new_risk(self) -> bool:
        return self is RiskMode.NORMAL


_STRICTNESS = {
    RiskMode.NORMAL: 0,
    RiskMode.THROTTLE_NEW_ORDERS: 1,
    RiskMode.SOFT_DERISK: 2,
    RiskMode.HARD_DERISK: 3,
}


class DecisionReason(str, Enum):
    HARD_CAP_BREACH = "HARD_CAP_BREACH"
    CLOSE_OVER_TOLERANCE = "CLOSE_OVER_TOLERANCE"
    OVER_REGIME_TOLERANCE = "OVER_REGIME_TOLERANCE"
    BUCKET_OVER_MAX = "BUCKET_OVER_MAX"
    POTENTIAL_OVER_LIMIT = "POTENTIAL_OVER_LIMIT"
    WITHIN_LIMITS = "WITHIN_LIMITS"
    # Loss limits (rows of the same table, issue 16).
    DAILY_LOSS_HARD = "DAILY_LOSS_HARD"
    DAILY_LOSS_SOFT = "DAILY_LOSS_SOFT"
    DAILY_LOSS_THROTTLE = "DAILY_LOSS_THROTTLE"


class OrderState(str, Enum):
    ACCEPTED = "ACCEPTED"
    WORKING = "WORKING"
    PARTIAL_FILL = "PARTIAL_FILL"
    PENDING_CANCEL = "PENDING_CANCEL"  # a cancel sent, the venue's answer awaited (fills may still come)
    PENDING_REPLACE = "PENDING_REPLACE"  # a replace under way: checks, then the original's cancel
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED)

    @property
    def is_open(self) -> bool:
        return not self.is_terminal

    @property
    def is_pending(self) -> bool:
        return self in (OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE)


# What an order's OrderState search attribute ends on when it went away or silent and was
# reconciled (LOST): a terminal value the UI can filter, never a working state.
LOST = "LOST"


class IntentKind(str, Enum):
    """Why an order exists: a desk's new order, or a de-risk step of the playbook."""

    NEW = "NEW"
    SOFT_DERISK = "SOFT_DERISK"
    HARD_DERISK = "HARD_DERISK"

    @property
    def is_derisk(self) -> bool:
        return self is not IntentKind.NEW


class PriceRule(str, Enum):
    """How a de-risk intent was priced; scenarios assert on it."""

    NEAR_TRUTH_TICK = "NEAR_TRUTH_TICK"
    AT_BID = "AT_BID"
    AT_ASK = "AT_ASK"
    GIVEN = "GIVEN"


class RejectReason(str, Enum):
    """Why an order ended REJECTED (pre-trade, venue) — one code per refusal."""

    BAD_SIDE = "BAD_SIDE"
    BAD_ORDER_TYPE = "BAD_ORDER_TYPE"
    BAD_QUANTITY = "BAD_QUANTITY"
    NOT_LOT_MULTIPLE = "NOT_LOT_MULTIPLE"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    BAD_PRICE = "BAD_PRICE"
    BAD_BUCKET = "BAD_BUCKET"
    BAD_ACCOUNT = "BAD_ACCOUNT"
    MALFORMED_INTENT = "MALFORMED_INTENT"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    REDUCE_ONLY_WOULD_INCREASE = "REDUCE_ONLY_WOULD_INCREASE"
    MODE_THROTTLE_NEW_ORDERS = "MODE_THROTTLE_NEW_ORDERS"
    MODE_SOFT_DERISK = "MODE_SOFT_DERISK"
    MODE_HARD_DERISK = "MODE_HARD_DERISK"
    HARD_CAP = "HARD_CAP"
    BUCKET_MAX = "BUCKET_MAX"
    VENUE_REJECT = "VENUE_REJECT"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    REDUCE_ONLY_WOULD_FLIP = "REDUCE_ONLY_WOULD_FLIP"
    REGIME_TOLERANCE = "REGIME_TOLERANCE"
    # Trading states (kill switch).
    HALTED = "HALTED"
    REDUCING_ONLY = "REDUCING_ONLY"
    # Pre-trade controls besides exposure (SEC 15c3-5, MiFID II RTS 6).
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    PRICE_COLLAR = "PRICE_COLLAR"
    MAX_POSITION = "MAX_POSITION"
    ORDER_RATE = "ORDER_RATE"
    DUPLICATIVE_ORDER = "DUPLICATIVE_ORDER"
    RESTRICTED_SYMBOL = "RESTRICTED_SYMBOL"
    # Issue 25: every order checked (the rig's own too), messages throttled, the firm's limits.
    BAD_QUOTE = "BAD_QUOTE"  # crossed, locked, zero-size, non-positive or stale L1
    PRICE_BAND = "PRICE_BAND"  # a limit too far from a fresh L1's mid
    MESSAGE_RATE = "MESSAGE_RATE"  # new + cancel + replace per rolling window
    ADV_SHARE = "ADV_SHARE"  # order size vs average daily volume
    MAX_SYMBOL_NOTIONAL = "MAX_SYMBOL_NOTIONAL"  # notional per symbol
    SELF_CROSS = "SELF_CROSS"  # would trade against the account's own resting order
    FIRM_GROSS_LIMIT = "FIRM_GROSS_LIMIT"  # over the account's allocation of the firm's gross limit
    FIRM_CREDIT_LIMIT = "FIRM_CREDIT_LIMIT"  # over the account's allocation of the firm's credit limit
    # Days (issue 22): a desk order between sessions (a calendar's night, weekend or holiday).
    OUTSIDE_SESSION = "OUTSIDE_SESSION"

    @staticmethod
    def for_mode(mode: RiskMode) -> RejectReason:
        return RejectReason("MODE_" + mode.value)


class CancelReason(str, Enum):
    USER = "USER"
    REPLACED = "REPLACED"
    EXPIRED_DAY = "EXPIRED_DAY"
    ESCALATION = "ESCALATION"
    KILL_SWITCH = "KILL_SWITCH"  # the account was HALTED: its open desk orders are canceled


class ReconcileStatus(str, Enum):
    """An order read back from the server: its run's status (Temporal's WorkflowExecutionStatus
    names), or why there was none to read."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    TIMED_OUT = "TIMED_OUT"
    NOT_FOUND = "NOT_FOUND"  # no such workflow
    UNKNOWN = "UNKNOWN"  # the server gave no status, or the order's id could not be read


class TradingState(str, Enum):
    """An account's trading state (kill switch): every change is recorded with who and why."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only reduce-only desk orders
    HALTED = "HALTED"  # open desk orders canceled, new desk orders REJECTED HALTED
