"""The gateway's sinks and book readers for tests."""

from __future__ import annotations

import asyncio

from domain.execution import ExecutionEvent
from venues.ibkr.models import BrokerDivergence, LateFill
from venues.sink import ListSink


class RecordingSink(ListSink):
    """Tests: every order event, late fill and divergence, in order; `closed` intents answer as a
    closed order workflow does (not delivered)."""

    def __init__(self) -> None:
        super().__init__()
        self.late_fills: list[LateFill] = []
        self.divergences: list[BrokerDivergence] = []
        self.closed: set[str] = set()
        self.undelivered: list[ExecutionEvent] = []

    async def deliver(self, event: ExecutionEvent) -> bool:  # type: ignore[override]
        if event.intent_id in self.closed:
            self.undelivered.append(event)
            return False
        await super().deliver(event)
        return True

    async def late_fill(self, message: LateFill) -> None:
        self.late_fills.append(message)
        self._changed.set()

    async def divergence(self, message: BrokerDivergence) -> None:
        self.divergences.append(message)
        self._changed.set()


class StaticBooks:
    """Tests: books as the test says they are."""

    def __init__(self, books: dict[str, dict[str, int]] | None = None) -> None:
        self.books: dict[str, dict[str, int]] = books or {}
        self.asked: list[str] = []

    async def positions(self, account: str) -> dict[str, int] | None:
        self.asked.append(account)
        await asyncio.sleep(0)
        return dict(self.books.get(account, {}))
