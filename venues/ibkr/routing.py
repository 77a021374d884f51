"""How the gateway's events leave it, and what it writes down.

An event of an intent whose ibkr_* call is in progress is captured by the call (which answers
with the order's whole history, and hands the captured events to the outbox should it fail);
every other event goes to the outbox, delivered in order to the order workflow (retried until
delivered, persisted across restarts); a fill whose order workflow has closed goes to its account
(LateFill). A FILL waits up to `commission_wait` for IB's commissionReport so that it carries the
commission, and the intent's later events wait with it. Changes reach the store in small batches
(the tracks the translator touched, new journal rows, outbox items), written off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel

from domain.execution import ExecKind, ExecutionEvent
from venues.ibkr.delivery import AccountSink, OrderSink
from venues.ibkr.models import BrokerDivergence, IbkrSettings, LateFill
from venues.ibkr.store import MAX_JOURNAL, MAX_TERMINAL_TRACKS, Batch, Snapshot, StateStore
from venues.ibkr.translator import IbkrTranslator

log = logging.getLogger("venues.ibkr")


class Outgoing(BaseModel):
    """One item of the outbox (persisted until delivered)."""

    id: int
    to: Literal["order", "late_fill", "divergence"]
    event: ExecutionEvent | None = None
    late_fill: LateFill | None = None
    divergence: BrokerDivergence | None = None


class EventRouting:
    settings: IbkrSettings
    translator: IbkrTranslator

    def __init__(self, sink: OrderSink, store: StateStore, snap: Snapshot) -> None:
        self.sink = sink
        self.store = store
        self.meta = dict(snap.meta)
        self.journal: list[ExecutionEvent] = list(snap.journal)[-MAX_JOURNAL:]
        self._journal_ids = {e.exec_id for e in self.journal}
        self.outbox: list[Outgoing] = [Outgoing.model_validate_json(body) for _, body in snap.outbox]
        self._next_out = max((o.id for o in self.outbox), default=0) + 1
        self._exec_counts: dict[str, int] = {}  # symbol → executions routed (the positions check's clock)
        self._batch = Batch()
        self._captures: dict[str, asyncio.Event] = {}
        self._captured: dict[str, list[ExecutionEvent]] = {}
        self._held: dict[str, list[ExecutionEvent]] = {}  # intent → events waiting for a FILL's commission
        self._hold_timers: dict[str, asyncio.TimerHandle] = {}
        self._intent_locks: dict[str, asyncio.Lock] = {}
        self._outbox_wakeup = asyncio.Event()
        self._outbox_idle = asyncio.Event()
        self._outbox_idle.set()
        self._flush_task: asyncio.Task | None = None

    def _after_dispatch(self) -> None:
        """What the gateway does once a batch of events is routed (a hook)."""

    def _dispatch(self, events: list[ExecutionEvent]) -> None:
        for event in events:
            queue = self._held.get(event.intent_id)
            if queue is not None:
                queue.append(event)
            elif event.exec_id and event.commission is None and self.settings.commission_wait > 0:
                self._held[event.intent_id] = [event]
                self._outbox_idle.clear()
                loop = asyncio.get_running_loop()
                self._hold_timers[event.intent_id] = loop.call_later(self.settings.commission_wait, self._release_held_events, event.intent_id)
            else:
                self._route_out(event)
        self._after_dispatch()
        self._flush_soon()

    def _release_held_events(self, intent_id: str) -> None:
        timer = self._hold_timers.pop(intent_id, None)
        if timer is not None:
            timer.cancel()
        for event in self._held.pop(intent_id, []):
            self._route_out(event)
        if not self.outbox and not self._held:
            self._outbox_idle.set()
        self._flush_soon()

    def _route_out(self, event: ExecutionEvent) -> None:
        if event.exec_id and event.exec_id not in self._journal_ids:
            self.journal.append(event)
            self._journal_ids.add(event.exec_id)
            self._batch.journal.append(event)
            if len(self.journal) > MAX_JOURNAL:
                for old in self.journal[:-MAX_JOURNAL]:
                    self._journal_ids.discard(old.exec_id)
                self.journal = self.journal[-MAX_JOURNAL:]
            if event.venue_time:
                self._meta("exec_mark", max(self.meta.get("exec_mark", ""), event.venue_time))
            track = self.translator.track(event.intent_id)
            if track is not None:
                self._exec_counts[track.symbol] = self._exec_counts.get(track.symbol, 0) + 1
        capture = self._captures.get(event.intent_id)
        if capture is not None:
            capture.set()
            self._captured[event.intent_id].append(event)
        else:
            self._enqueue("order", event=event)

    def _enqueue(self, to: Literal["order", "late_fill", "divergence"], **payload: Any) -> None:
        item = Outgoing(id=self._next_out, to=to, **payload)
        self._next_out += 1
        self.outbox.append(item)
        self._batch.outbox_add.append((item.id, item.model_dump_json()))
        self._outbox_idle.clear()
        self._outbox_wakeup.set()

    @contextlib.contextmanager
    def _capture(self, intent_id: str) -> Iterator[asyncio.Event]:
        """The call answers with the intent's events; if it fails instead, they go to the sink."""
        self._captures[intent_id] = signal = asyncio.Event()
        self._captured[intent_id] = []
        try:
            yield signal
        except BaseException:
            for event in self._captured[intent_id]:
                self._enqueue("order", event=event)
            raise
        finally:
            del self._captures[intent_id]
            del self._captured[intent_id]

    async def _wait_until(self, intent_id: str, done: Callable[[], bool], timeout: float) -> None:
        """Until `done()` (checked on every event of the intent) or `timeout` seconds."""
        signal = self._captures[intent_id]
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            signal.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), remaining)

    async def _history(self, intent_id: str) -> list[ExecutionEvent]:
        """The order's whole history, once the fills waiting for their commission are out."""
        if intent_id in self._held:
            with contextlib.suppress(TimeoutError):
                await self._wait_until(intent_id, lambda: intent_id not in self._held, self.settings.commission_wait + 1.0)
        track = self.translator.track(intent_id)
        return list(track.events) if track is not None else []

    async def _deliver_loop(self) -> None:
        delay = 0.5
        while True:
            if not self.outbox:
                if not self._held:
                    self._outbox_idle.set()
                self._outbox_wakeup.clear()
                await self._outbox_wakeup.wait()
                continue
            item = self.outbox[0]
            try:
                delivered = await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 — keep it first in line and try again
                log.warning(
                    "delivering outbox item %s (%s) to %s failed (%s); retrying in %.1fs", item.id, item.to, type(self.sink).__name__, err, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            self.outbox.pop(0)
            self._batch.outbox_done.append(item.id)
            if delivered is False and item.event is not None:
                self._late(item.event)
            self._flush_soon()

    async def _deliver(self, item: Outgoing) -> bool | None:
        if item.to == "order" and item.event is not None:
            return await self.sink.deliver(item.event)
        if isinstance(self.sink, AccountSink):
            if item.late_fill is not None:
                await self.sink.late_fill(item.late_fill)
            elif item.divergence is not None:
                await self.sink.divergence(item.divergence)
        else:
            log.error("the sink takes no account messages: %s", item.model_dump_json())
        return True

    def _late(self, event: ExecutionEvent) -> None:
        """An event whose order workflow no longer runs: a fill goes to the order's account."""
        track = self.translator.track(event.intent_id)
        if event.kind not in (ExecKind.FILL, ExecKind.CORRECTION) or track is None or not track.account:
            return
        log.error("fill %s of %s arrived after its order workflow closed: sent to account %s", event.exec_id, event.intent_id, track.account)
        side: Literal["BUY", "SELL"] = "SELL" if track.side == "SELL" else "BUY"
        detail = f"IB executed {event.last_qty} @ {event.last_px} after the order's workflow closed (order at IB: {track.phase.value})"
        self._enqueue(
            "late_fill",
            late_fill=LateFill(account=track.account, intent_id=track.intent_id, symbol=track.symbol, side=side, event=event, detail=detail),
        )

    async def idle(self, timeout: float = 5.0) -> None:
        """Every event produced so far has been delivered (tests, shutdown)."""
        await asyncio.wait_for(self._outbox_idle.wait(), timeout)

    def _lock(self, intent_id: str) -> asyncio.Lock:
        return self._intent_locks.setdefault(intent_id, asyncio.Lock())

    # ----- persistence ----------------------------------------------------------------------

    def _meta(self, key: str, value: str) -> None:
        if self.meta.get(key) != value:
            self.meta[key] = value
            self._batch.meta[key] = value

    def _take_batch(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        touched, self.translator.touched = self.translator.touched, set()
        for intent in sorted(touched):
            track = self.translator.tracks.get(intent)
            if track is not None:
                batch.tracks.append((intent, track.phase.terminal, track.model_dump_json()))
        self._retire_tracks()
        return batch

    def _retire_tracks(self) -> None:
        ended = [t for t in self.translator.tracks.values() if t.phase.terminal]
        for track in ended[: max(len(ended) - MAX_TERMINAL_TRACKS, 0)]:
            if track.intent_id not in self._captures and track.intent_id not in self._held:
                self.translator.forget(track.intent_id)

    async def flush(self) -> None:
        """Write what changed (durably: the caller waits for the commit)."""
        batch = self._take_batch()
        if batch:
            await self.store.write(batch)

    def _flush_soon(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(0.05)
        try:
            await self.flush()
        except Exception:
            log.exception("writing the gateway's state failed; retrying with the next change")

    def save_now(self) -> None:
        """Blocking write (tests that stage a crash, shutdown)."""
        self.store.write_now(self._take_batch())
