"""Inputs of the IBKR gateway: the order an activity places, and the gateway's settings (env)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_IBKR_TASK_QUEUE = "risk-rig-ibkr"

# Activity names (the order workflow calls them by name on RIG_IBKR_TASK_QUEUE). This module imports
# only pydantic: workflows can import it inside the sandbox; ib_async stays out of workflow code.
IBKR_SUBMIT = "ibkr_submit"  # (IbkrOrder) -> list[ExecutionEvent]
IBKR_CANCEL = "ibkr_cancel"  # (intent_id: str) -> list[ExecutionEvent]
IBKR_ORDER_STATUS = "ibkr_order_status"  # (intent_id: str) -> VenueOrderStatus
IBKR_EXECUTIONS_SINCE = "ibkr_executions_since"  # (exec_cursor: str | None) -> list[ExecutionEvent]
ROOT = Path(__file__).resolve().parents[2]


class IbkrOrder(BaseModel):
    """`ibkr_submit`'s input. A US stock routed SMART in USD, a whole number of shares, DAY.

    `intent_id` travels to IB in `Order.orderRef` and is how a retried submit finds the order it
    already placed; `account` is the rig's account (risk-<account>): the IB account is the
    gateway's (IB_ACCOUNT)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"
