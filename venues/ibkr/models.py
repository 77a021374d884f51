"""What crosses the IBKR gateway's boundary: the activities' inputs and answers, the messages it
sends an account (a late fill, a divergence between IB's positions and the account's book), the
orderRef namespace, and the gateway's settings (env). Imports only pydantic and the venue seam's
vocabulary, so workflows may import it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from domain.base import Frozen
from domain.execution import ExecutionEvent

DEFAULT_IBKR_TASK_QUEUE = "risk-rig-ibkr"

# Activity names (the order workflow calls them by name on RIG_IBKR_TASK_QUEUE). This module imports
# only pydantic: workflows can import it inside the sandbox; ib_async stays out of workflow code.
IBKR_SUBMIT = "ibkr_submit"  # (IbkrOrder) -> list[ExecutionEvent]: the order's whole history
IBKR_CANCEL = "ibkr_cancel"  # (intent_id: str) -> list[ExecutionEvent]: the order's whole history
IBKR_CANCEL_CONFIRMED = "ibkr_cancel_confirmed"  # (IbkrCancel) -> CancelOutcome: a verdict, for a replace
IBKR_MODIFY = "ibkr_modify"  # (IbkrModify) -> ModifyOutcome: IB's native modify (same order, same permId)
IBKR_ORDER_STATUS = "ibkr_order_status"  # (intent_id: str) -> VenueOrderStatus
IBKR_EXECUTIONS_SINCE = "ibkr_executions_since"  # (exec_cursor: str | None) -> list[ExecutionEvent]

# Signals the gateway sends a rig account (workflow id risk-<account>); the handlers are the account's.
SIGNAL_BROKER_LATE_FILL = "broker_late_fill"  # LateFill: a fill whose order workflow has closed
SIGNAL_BROKER_DIVERGENCE = "broker_divergence"  # BrokerDivergence: IB's position ≠ the account's book
ROOT = Path(__file__).resolve().parents[2]

# The orderRef the rig gives an order at IB: `rig/<account>/<intent_id>`. Rig accounts never hold a
# "/" (protocol.messages: [A-Za-z0-9_.:-]), so the account part is unambiguous; an order whose
# orderRef is not in this namespace is never the rig's, whatever its text.
ORDER_REF_PREFIX = "rig/"


def rig_order_ref(account: str, intent_id: str) -> str:
    return f"{ORDER_REF_PREFIX}{account}/{intent_id}"


def parse_order_ref(order_ref: str) -> tuple[str, str] | None:
    """`rig/<account>/<intent_id>` → (account, intent_id); None for any other orderRef."""
    if not order_ref.startswith(ORDER_REF_PREFIX):
        return None
    account, sep, intent = order_ref[len(ORDER_REF_PREFIX) :].partition("/")
    return (account, intent) if sep and account and intent else None


class IbkrOrder(Frozen):
    """`ibkr_submit`'s input. A US stock routed SMART in USD, a whole number of shares, DAY.

    `rig_order_ref(account, intent_id)` travels to IB in `Order.orderRef`: a retried submit finds
    the order it placed by it, and adopts it only when account, contract, side and quantity match;
    `account` is the rig's account (risk-<account>): the IB account is the gateway's (IB_ACCOUNT)."""

    intent_id: str = Field(min_length=1, max_length=120)
    account: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=12, pattern=r"^[A-Z][A-Z0-9.\- ]*$")
    side: Literal["BUY", "SELL"]
    quantity: int = Field(gt=0, le=10_000_000)
    order_type: Literal["LIMIT", "MARKET"] = "LIMIT"
    limit_price: float | None = None
    time_in_force: Literal["DAY"] = "DAY"

    @field_validator("limit_price")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value <= 0 or value > 1e7):
            raise ValueError("limit_price must be a positive finite price")
        return value

    @model_validator(mode="after")
    def _price_matches_type(self) -> IbkrOrder:
        if self.order_type == "LIMIT" and self.limit_price is None:
            raise ValueError("a LIMIT order needs limit_price")
        if self.order_type == "MARKET" and self.limit_price is not None:
            raise ValueError("a MARKET order has no limit_price")
        return self


class IbkrCancel(Frozen):
    """`ibkr_cancel_confirmed`'s input: cancel the order and wait up to `wait_seconds` for IB's
    last word on it (a terminal state, or the cancel refused)."""

    intent_id: str = Field(min_length=1, max_length=120)
    wait_seconds: float = Field(default=5.0, ge=0.0, le=60.0)


class CancelVerdict(str, Enum):
    CANCELED = "CANCELED"  # IB confirmed the cancel: nothing more will fill (cum_qty is final)
    EXPIRED = "EXPIRED"  # ended by IB at the close (DAY); cum_qty is final
    FILLED = "FILLED"  # too late: the order filled completely
    REJECTED = "REJECTED"  # IB had refused the order itself; cum_qty (0 or the fills before) is final
    PENDING_CANCEL = "PENDING_CANCEL"  # sent, not confirmed within the wait: fills may still come
    REFUSED = "REFUSED"  # IB refused the cancel (161 / 10148 while the order works): it keeps working
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # IB has no record of the order (not placed, or lost)

    @property
    def final(self) -> bool:
        """cum_qty will not change any more: a replacement may be sized from it."""
        return self in (CancelVerdict.CANCELED, CancelVerdict.EXPIRED, CancelVerdict.FILLED, CancelVerdict.REJECTED)


class CancelOutcome(Frozen):
    """`ibkr_cancel_confirmed`'s answer. `events` is the order's whole history (fills included):
    a retried call answers with everything the first one saw and more."""

    intent_id: str
    verdict: CancelVerdict
    cum_qty: int = 0
    leaves_qty: int = 0
    text: str = ""
    events: list[ExecutionEvent] = Field(default_factory=list)


class IbkrModify(Frozen):
    """`ibkr_modify`'s input: IB's native modify of a working order (placeOrder with its orderId).
    `total_quantity` is the order's new total: what has filled plus what may still fill."""

    intent_id: str = Field(min_length=1, max_length=120)
    total_quantity: int = Field(gt=0, le=10_000_000)
    limit_price: float | None = None

    @field_validator("limit_price")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value <= 0 or value > 1e7):
            raise ValueError("limit_price must be a positive finite price")
        return value


class ModifyOutcome(Frozen):
    intent_id: str
    accepted: bool
    total_quantity: int
    limit_price: float | None = None
    cum_qty: int = 0
    text: str = ""
    events: list[ExecutionEvent] = Field(default_factory=list)


class LateFill(Frozen):
    """Signal `broker_late_fill` to risk-<account>: IB executed (or corrected) a fill of an order
    whose order workflow has closed. The account books it (the fill is the truth, however late),
    and raises an alarm naming the order. Idempotent by `event.exec_id`."""

    account: str
    intent_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    event: ExecutionEvent  # kind FILL (or CORRECTION), with exec_id, last_qty, last_px, commission
    detail: str = ""


class BrokerDivergence(Frozen):
    """Signal `broker_divergence` to risk-<account>: IB's position in `symbol` for the IB account
    differs from the sum of the books of the rig accounts trading through it (seen on two checks in
    a row with no execution in between). The account moves to a trading state that stops new
    risk in the symbol (or all) and shows `text` as the reason; never overwrites its book. A
    message whose `difference` is 0 says the divergence in `symbol` is resolved."""

    account: str  # the rig account told (every account the gateway serves in that IB account)
    ib_account: str
    symbol: str
    ib_position: int
    book_position: int  # the sum over `accounts`
    account_position: int  # this account's own book
    accounts: list[str]
    as_of: str  # ISO time of the check (the gateway's clock)
    resolved_from_positions: list[str] = Field(default_factory=list)  # orders IB no longer lists, ended without all their fills known
    text: str

    @property
    def difference(self) -> int:
        return self.ib_position - self.book_position


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class IbkrSettings:
    """IB_HOST / IB_PORT / IB_CLIENT_ID / IB_ACCOUNT (like TEMPORAL_ADDRESS for Temporal) and the
    gateway's own knobs (RIG_IBKR_*). Times in seconds."""

    host: str = "127.0.0.1"
    port: int = 7497  # TWS paper; IB Gateway paper is 4002
    client_id: int = 17
    account: str = ""  # the IB account (DU… for paper); empty: the only managed account
    task_queue: str = DEFAULT_IBKR_TASK_QUEUE
    state_dir: Path = ROOT / ".state" / "ibkr"
    connect_timeout: float = 10.0
    ack_timeout: float = 5.0  # ibkr_submit waits this long for IB's first word on a new order
    cancel_timeout: float = 5.0  # ibkr_cancel waits this long for PendingCancel / Cancelled
    stuck_after: float = 30.0  # an order with no word from IB this long is reconciled (→ UNKNOWN_ORDER)
    sweep_every: float = 5.0
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    positions_every: float = 60.0  # reqPositions on this period (and on every connect, 1101/1102)
    commission_wait: float = 2.0  # a FILL waits this long for IB's commissionReport before it is sent
    exchange_tz: str = "America/New_York"
    session_close: str = "16:00"  # a DAY order IB cancels unasked at or after this is EXPIRED
    rig_accounts: tuple[str, ...] = ()  # rig accounts whose books IB's positions are compared with (also: every account seen in an order)

    @classmethod
    def from_env(cls) -> IbkrSettings:
        env = os.environ
        return cls(
            host=env.get("IB_HOST") or cls.host,
            port=int(env.get("IB_PORT") or cls.port),
            client_id=int(env.get("IB_CLIENT_ID") or cls.client_id),
            account=env.get("IB_ACCOUNT", ""),
            task_queue=env.get("RIG_IBKR_TASK_QUEUE") or DEFAULT_IBKR_TASK_QUEUE,
            state_dir=Path(env.get("RIG_IBKR_STATE_DIR") or cls.state_dir),
            connect_timeout=_env_float("IB_CONNECT_TIMEOUT", cls.connect_timeout),
            ack_timeout=_env_float("RIG_IBKR_ACK_TIMEOUT", cls.ack_timeout),
            cancel_timeout=_env_float("RIG_IBKR_CANCEL_TIMEOUT", cls.cancel_timeout),
            stuck_after=_env_float("RIG_IBKR_STUCK_SECONDS", cls.stuck_after),
            reconnect_max_delay=_env_float("RIG_IBKR_RECONNECT_MAX_DELAY", cls.reconnect_max_delay),
            positions_every=_env_float("RIG_IBKR_POSITIONS_SECONDS", cls.positions_every),
            commission_wait=_env_float("RIG_IBKR_COMMISSION_WAIT", cls.commission_wait),
            exchange_tz=env.get("RIG_IBKR_EXCHANGE_TZ") or cls.exchange_tz,
            session_close=env.get("RIG_IBKR_SESSION_CLOSE") or cls.session_close,
            rig_accounts=tuple(a for a in (env.get("RIG_IBKR_ACCOUNTS") or "").split(",") if a),
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"
