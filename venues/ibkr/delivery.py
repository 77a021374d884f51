"""Where the gateway's asynchronous words go, and where it reads the accounts' books.

* An order's events: signal `venue_event` to the order workflow (id = intent_id). A workflow that
  no longer runs answers NOT_FOUND: `deliver` returns False, and the gateway sends a fill or a
  correction to the order's account instead (`late_fill`): a fill is never dropped.
* `late_fill` / `divergence`: signals `broker_late_fill` / `broker_divergence` to risk-<account>.
* `books`: the accounts' positions (query `state` of risk-<account>), for the positions check.

`RigSink` does this on Temporal (testkit/ibkr/sinks.py has the tests' sinks)."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.execution import ExecutionEvent
from protocol.contract import QUERY_STATE, risk_workflow_id
from venues.ibkr.models import SIGNAL_BROKER_DIVERGENCE, SIGNAL_BROKER_LATE_FILL, BrokerDivergence, LateFill
from venues.sink import VENUE_EVENT_SIGNAL

log = logging.getLogger("venues.ibkr")


@runtime_checkable
class OrderSink(Protocol):
    async def deliver(self, event: ExecutionEvent) -> bool | None:
        """Signal the order; False when its workflow no longer runs (None: delivered, no word)."""
        ...


@runtime_checkable
class AccountSink(Protocol):
    async def late_fill(self, message: LateFill) -> None: ...
    async def divergence(self, message: BrokerDivergence) -> None: ...


@runtime_checkable
class BookReader(Protocol):
    async def positions(self, account: str) -> dict[str, int] | None:
        """Signed shares per symbol in the account's book; None if the account does not answer."""
        ...


class RigSink:
    """The production sink: Temporal signals (a client made with the pydantic data converter)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def deliver(self, event: ExecutionEvent) -> bool:
        try:
            await self._client.get_workflow_handle(event.intent_id).signal(VENUE_EVENT_SIGNAL, event)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise  # the gateway retries: the event stays first in line
            log.warning("no running order workflow %s for %s %s (%s)", event.intent_id, event.kind.value, event.exec_id or "", err.message)
            return False
        return True

    async def late_fill(self, message: LateFill) -> None:
        await self._to_account(message.account, SIGNAL_BROKER_LATE_FILL, message)

    async def divergence(self, message: BrokerDivergence) -> None:
        await self._to_account(message.account, SIGNAL_BROKER_DIVERGENCE, message)

    async def _to_account(self, account: str, signal: str, message: LateFill | BrokerDivergence) -> None:
        try:
            await self._client.get_workflow_handle(risk_workflow_id(account)).signal(signal, message)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            log.error("account %s is not running: %s for it is dropped: %s", account, signal, message.model_dump_json())


class TemporalBooks:
    """The accounts' books, read with the account workflow's `state` query."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def positions(self, account: str) -> dict[str, int] | None:
        from protocol.messages import RiskView  # the rig's message models: here, not at import time of the gateway

        try:
            view = await self._client.get_workflow_handle(risk_workflow_id(account)).query(QUERY_STATE, result_type=RiskView)
        except RPCError as err:
            log.warning("account %s did not answer its state query (%s): positions not compared", account, err.message)
            return None
        held: dict[str, int] = {}
        for position in view.positions:
            held[position.symbol] = held.get(position.symbol, 0) + position.quantity
        return {k: v for k, v in held.items() if v}
