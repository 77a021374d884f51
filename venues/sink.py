"""Where a venue gateway sends what happens asynchronously (fills, cancels, IB's own word).

`EventSink` is the seam; `TemporalSignalSink` signals the order workflow (workflow id =
intent_id, signal `venue_event`, the ExecutionEvent as its argument); `ListSink` keeps them for
tests. A signal to an order workflow that does not exist (never started, already closed) is
logged and skipped: a venue report must never crash the gateway."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.execution import ExecutionEvent

VENUE_EVENT_SIGNAL = "venue_event"

log = logging.getLogger("venues.sink")


@runtime_checkable
class EventSink(Protocol):
    async def deliver(self, event: ExecutionEvent) -> None: ...


class ListSink:
    """Keeps every delivered event, in order (tests)."""

    def __init__(self) -> None:
        self.events: list[ExecutionEvent] = []
        self._changed = asyncio.Event()

    async def deliver(self, event: ExecutionEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def for_intent(self, intent_id: str) -> list[ExecutionEvent]:
        return [e for e in self.events if e.intent_id == intent_id]

    async def wait_for(self, predicate, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)


class TemporalSignalSink:
    """Signals `venue_event` to the order workflow whose id is the event's intent_id.

    Use a client made with the pydantic data converter (worker.connection.connect() does)."""

    def __init__(self, client: Client, signal: str = VENUE_EVENT_SIGNAL) -> None:
        self._client = client
        self._signal = signal
        self.skipped: list[ExecutionEvent] = []

    async def deliver(self, event: ExecutionEvent) -> None:
        handle = self._client.get_workflow_handle(event.intent_id)
        try:
            await handle.signal(self._signal, event)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise  # the gateway's delivery loop retries: the event stays first in line
            log.warning("no running order workflow %s for %s %s (%s): skipped", event.intent_id, event.kind.value, event.exec_id or "", err.message)
            self.skipped.append(event)
