"""What an order asks of its account, and the replacement it starts (`activities/order_calls.py`)."""

from __future__ import annotations

from typing import Any

from domain.base import Record
from domain.order import OrderReport
from protocol.messages import PretradeRequest, ReplaceCheck


class AccountPretrade(Record):
    account: str
    request: PretradeRequest


class AccountReplaceCheck(Record):
    account: str
    check: ReplaceCheck


class AccountReport(Record):
    account: str
    report: OrderReport


class StartReplacement(Record):
    raw_intent: dict[str, Any]
