"""The IBKR gateway: one long-lived connection to TWS / IB Gateway through ib_async, serving the
order workflows' venue activities and pushing what IB says asynchronously through an EventSink.

How IB's words reach the rig: the gateway taps ib_async's `Wrapper` (openOrder, orderStatus,
execDetails, commissionReport, error, completedOrder) *after* ib_async has updated its Trade
objects, and hands the raw callback to the translator. The raw callback, not the Trade's status:
ib_async marks a Trade Cancelled on any error code outside its short warning list (10349 "TIF
set to DAY" included) and, having done so, would swallow the real Cancelled that comes later
(its orderStatus drops an update that changes nothing it stores). After an error the rig deems
informational, the tap puts the Trade's status back, so ib_async's own view stays true too.

Event routing: while an ibkr_submit or ibkr_cancel call for an intent is in progress, that
intent's events are returned by the call; every other event goes to the sink (in order, retried until delivered,
persisted in the outbox across restarts). `ibkr_submit` returns the intent's whole history, so a
retried call answers with what the first one saw and more. Consumers apply fills once by exec_id
and treat repeated status events as no-ops: the gateway may repeat, it never loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Order, OrderStatus, StartupFetchNONE, Stock

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus
from venues.ibkr.codes import (
    CONNECTIVITY_LOST_CODES,
    CONNECTIVITY_RESTORED_CODES,
    CONNECTIVITY_RESTORED_DATA_LOST,
    ErrorEffect,
    error_effect,
)
from venues.ibkr.models import IbkrOrder, IbkrSettings
from venues.ibkr.state import GatewayState, StateStore
from venues.ibkr.translator import IbkrTranslator, OrderTrack, Phase
from venues.sink import EventSink

log = logging.getLogger("venues.ibkr")

REQUEST_TIMEOUT = 15.0  # one reqAllOpenOrders / reqCompletedOrders / reqExecutions round trip
CANCEL_TARGET_NOT_FOUND = 10147  # IB's answer to a cancel of an order it does not know


class IbUnreachable(Exception):
    """TWS / IB Gateway does not answer: the message is one line for the operator."""


class NotConnected(Exception):
    """The gateway is between connections; the activity should be retried."""


class CannotCancel(Exception):
    """IB lets only the client that placed an order cancel it (or the master client id)."""


def unreachable_line(settings: IbkrSettings, err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0] or type(err).__name__
    return (
        f"cannot reach TWS / IB Gateway at {settings.where} (client id {settings.client_id}): {first}. "
        "Start TWS or IB Gateway, log in (paper: TWS port 7497, IB Gateway 4002), enable "
        "Configure → API → Settings → 'Enable ActiveX and Socket Clients' with that socket port and "
        "127.0.0.1 among the trusted IPs — or set IB_HOST / IB_PORT / IB_CLIENT_ID."
    )


def contract_for(symbol: str) -> Stock:
    """US stock, SMART routed, USD (no round trip to qualify it: IB resolves SMART/USD stocks)."""
    return Stock(symbol, "SMART", "USD")


def ib_price(price: float) -> float:
    """US equities trade in cents from $1, in 1/100 cent below (Reg NMS sub-penny rule)."""
    return round(price, 2) if price >= 1.0 else round(price, 4)


def ib_order_for(order: IbkrOrder, ib_account: str) -> Order:
    common: dict[str, Any] = {"orderRef": order.intent_id, "tif": order.time_in_force, "outsideRth": False, "transmit": True}
    if ib_account:
        common["account"] = ib_account
    if order.order_type == "LIMIT":
        assert order.limit_price is not None
        return LimitOrder(order.side, order.quantity, ib_price(order.limit_price), **common)
    return MarketOrder(order.side, order.quantity, **common)


class IbkrGateway:
    def __init__(self, settings: IbkrSettings, sink: EventSink, ib: IB | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.sink = sink
        self.ib = ib or IB()
        self.clock = clock
        self.store = StateStore(settings.state_dir)
        state = self.store.load()
        self.translator = IbkrTranslator(settings.client_id, state.tracks)
        self.journal: list[ExecutionEvent] = list(state.journal)
        self._journal_ids = {e.exec_id for e in self.journal}
        self.cursor: str | None = state.cursor
        self.outbox: list[ExecutionEvent] = list(state.outbox)
        self.market_data: dict[str, int] = dict(state.market_data)  # symbol → conId, restored on reconnect
        self.tickers: dict[str, Any] = {}
        self._captures: dict[str, list[ExecutionEvent]] = {}
        self._capture_signal: dict[str, asyncio.Event] = {}
        self._intent_locks: dict[str, asyncio.Lock] = {}
        self._broker_lock = asyncio.Lock()
        self._seen_refs: set[str] = set()
        self._outbox_wakeup = asyncio.Event()
        self._outbox_idle = asyncio.Event()
        self._outbox_idle.set()
        self._connected = asyncio.Event()
        self._stopping = False
        self._serving = False
        self._tasks: list[asyncio.Task] = []
        self._reconnect_task: asyncio.Task | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._stuck_warned: set[str] = set()
        self._lagging: set[str] = set()
        self.reconciliations = 0
        self._round = 0  # reconciliation rounds started; orders placed during a round are not judged by it
        self._placed_in_round: dict[str, int] = {}
        self._install_taps()
        self.ib.disconnectedEvent += self._on_disconnected

    # ----- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (IbUnreachable if TWS / IB Gateway does not answer), reconcile, then serve."""
        self._tasks.append(asyncio.create_task(self._deliver_loop(), name="ibkr-deliver"))
        if self.outbox:
            self._outbox_wakeup.set()
        await self._connect_once()
        await self._after_connect("connect")
        self._serving = True  # from now on a lost connection is retried
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="ibkr-sweep"))

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        tasks = [*self._tasks, *([self._reconnect_task] if self._reconnect_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.ib.disconnectedEvent -= self._on_disconnected
        if self.ib.isConnected():
            self.ib.disconnect()
        self.save_now()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected() and self._connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_once(self) -> None:
        s = self.settings
        try:
            await self.ib.connectAsync(
                s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout, account=s.account, fetchFields=StartupFetchNONE
            )
        except (OSError, ConnectionError, TimeoutError) as err:
            raise IbUnreachable(unreachable_line(s, err)) from None
        self.translator.client_id = s.client_id
        log.info("connected to IB at %s as client %s (accounts %s)", s.where, s.client_id, ",".join(self.ib.managedAccounts()))

    async def _after_connect(self, why: str) -> None:
        await self.reconcile(why)
        self._connected.set()
        self._restore_market_data()

    def _on_disconnected(self) -> None:
        self._connected.clear()
        if self._stopping or not self._serving:
            return
        log.warning("lost the connection to IB at %s; reconnecting", self.settings.where)
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop(), name="ibkr-reconnect")

    async def _reconnect_loop(self) -> None:
        delay = self.settings.reconnect_min_delay
        while not self._stopping:
            try:
                await self._connect_once()
                await self._after_connect("reconnect")
                log.info("reconnected to IB at %s and reconciled", self.settings.where)
                return
            except IbUnreachable as err:
                log.warning("%s (retrying in %.0fs)", err, delay)
            except Exception:
                log.exception("reconciliation after reconnect failed; retrying")
                if self.ib.isConnected():
                    self.ib.disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_delay)

    def _require_connected(self) -> None:
        if not self.connected:
            raise NotConnected(f"not connected to IB at {self.settings.where}: retry when the gateway has reconnected")

    # ----- taps on ib_async's Wrapper -------------------------------------------------------

    def _install_taps(self) -> None:
        w = self.ib.wrapper

        def tap(name: str, after: Callable[..., None]) -> None:
            original = getattr(w, name)

            def tapped(*args: Any, **kwargs: Any) -> None:
                context = self._before_error(*args) if name == "error" else None
                original(*args, **kwargs)
                try:
                    if name == "error":
                        after(context, *args, **kwargs)
                    else:
                        after(*args, **kwargs)
                except Exception:
                    log.exception("translating IB %s failed", name)

            setattr(w, name, tapped)

        tap("openOrder", self._tap_open_order)
        tap("completedOrder", self._tap_completed_order)
        tap("orderStatus", self._tap_order_status)
        tap("execDetails", self._tap_exec_details)
        tap("commissionReport", lambda report: self.translator.on_commission(report))
        tap("error", self._tap_error)

    def _tap_open_order(self, order_id: int, contract: Any, order: Order, state: Any) -> None:
        if order.orderRef:
            self._seen_refs.add(order.orderRef)
        self._dispatch(self.translator.on_open_order(order, state))

    def _tap_completed_order(self, contract: Any, order: Order, state: Any) -> None:
        if order.orderRef:
            self._seen_refs.add(order.orderRef)
        self._dispatch(self.translator.on_completed_order(order, state))

    def _tap_order_status(
        self,
        orderId: int,
        status: str,
        filled: float,
        remaining: float,
        avgFillPrice: float,
        permId: int,
        parentId: int,
        lastFillPrice: float,
        clientId: int,
        whyHeld: str,
        mktCapPrice: float = 0.0,
    ) -> None:
        snapshot = OrderStatus(
            orderId=orderId,
            status=status,
            filled=filled,
            remaining=remaining,
            avgFillPrice=avgFillPrice,
            permId=permId,
            parentId=parentId,
            lastFillPrice=lastFillPrice,
            clientId=clientId,
            whyHeld=whyHeld,
            mktCapPrice=mktCapPrice,
        )
        self._dispatch(self.translator.on_order_status(snapshot))

    def _tap_exec_details(self, req_id: int, contract: Any, execution: Any) -> None:
        if execution.orderRef:
            self._seen_refs.add(execution.orderRef)
        self._dispatch(self.translator.on_execution(execution))

    def _before_error(self, req_id: int, code: int, *_: Any) -> tuple[bool, Any, str | None]:
        wrapper = self.ib.wrapper
        is_request = req_id in wrapper._futures
        trade = wrapper.trades.get((wrapper.clientId, req_id)) if req_id > 0 else None
        return is_request, trade, trade.orderStatus.status if trade else None

    def _tap_error(self, context: tuple[bool, Any, str | None], req_id: int, code: int, message: str, *_: Any) -> None:
        is_request, trade, before = context
        if req_id <= 0:
            self._connectivity(code, message)
            return
        if is_request:
            return
        track = self.translator.track_for_order_id(req_id)
        acknowledged = track is not None and track.phase not in (Phase.NEW, Phase.UNKNOWN)
        if trade is not None and error_effect(code, acknowledged) is ErrorEffect.INFO and trade.orderStatus.status != before:
            trade.orderStatus.status = before  # undo ib_async's "Cancelled"/"ValidationError": the order is live
        self._dispatch(self.translator.on_error(req_id, code, message))
        if code == CANCEL_TARGET_NOT_FOUND and track is not None:
            # IB no longer knows an order the rig holds open: read its books now, not at the next
            # reconnect (the order then ends UNKNOWN_ORDER → LOST, or with what IB did to it).
            self._reconcile_soon(f"IB {code}")

    def _connectivity(self, code: int, message: str) -> None:
        if code in CONNECTIVITY_LOST_CODES:
            log.warning("IB %s: %s", code, message)
        elif code in CONNECTIVITY_RESTORED_CODES:
            log.info("IB %s: %s — reconciling", code, message)
            if code == CONNECTIVITY_RESTORED_DATA_LOST:
                self._restore_market_data()
            self._reconcile_soon(f"IB {code}")

    def _reconcile_soon(self, why: str) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile_quietly(why))
        self._tasks.append(task)  # held: a task nobody references may be collected mid-way
        task.add_done_callback(lambda t: t in self._tasks and self._tasks.remove(t))

    async def _reconcile_quietly(self, why: str) -> None:
        try:
            await self.reconcile(why)
        except Exception:
            log.exception("reconciliation (%s) failed", why)

    # ----- event routing --------------------------------------------------------------------

    def _dispatch(self, events: list[ExecutionEvent]) -> None:
        if not events:
            return
        for event in events:
            if event.kind is ExecKind.FILL and event.exec_id not in self._journal_ids:
                self.journal.append(event)
                self._journal_ids.add(event.exec_id)
                self.cursor = event.exec_id
            capture = self._captures.get(event.intent_id)
            if capture is not None:
                capture.append(event)
                self._capture_signal[event.intent_id].set()
            else:
                self.outbox.append(event)
        if self.outbox:
            self._outbox_idle.clear()
            self._outbox_wakeup.set()
        self._save_soon()

    @contextlib.contextmanager
    def _capture(self, intent_id: str):
        self._captures[intent_id] = []
        self._capture_signal[intent_id] = asyncio.Event()
        try:
            yield self._captures[intent_id]
        finally:
            del self._captures[intent_id]
            del self._capture_signal[intent_id]

    async def _wait_captured(self, intent_id: str, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self._capture_signal[intent_id].wait(), timeout)

    async def _deliver_loop(self) -> None:
        delay = 0.5
        while True:
            if not self.outbox:
                self._outbox_idle.set()
                self._outbox_wakeup.clear()
                await self._outbox_wakeup.wait()
                continue
            event = self.outbox[0]
            try:
                await self.sink.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 — keep it first in line and try again
                log.warning(
                    "delivering %s %s to %s failed (%s); retrying in %.1fs", event.kind.value, event.intent_id, type(self.sink).__name__, err, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            self.outbox.pop(0)
            self._save_soon()

    async def idle(self, timeout: float = 5.0) -> None:
        """Every event produced so far has been delivered to the sink (tests, shutdown)."""
        await asyncio.wait_for(self._outbox_idle.wait(), timeout)

    def _lock(self, intent_id: str) -> asyncio.Lock:
        return self._intent_locks.setdefault(intent_id, asyncio.Lock())

    # ----- persistence ----------------------------------------------------------------------

    def state(self) -> GatewayState:
        return GatewayState(
            client_id=self.settings.client_id,
            tracks=list(self.translator.tracks.values()),
            journal=self.journal,
            cursor=self.cursor,
            outbox=self.outbox,
            market_data=dict(self.market_data),
        )

    def save_now(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self.store.save(self.state())

    def _save_soon(self) -> None:
        if self._save_handle is None:

            def save() -> None:
                self._save_handle = None
                self.store.save(self.state())

            self._save_handle = asyncio.get_running_loop().call_later(0.2, save)

    # ----- broker queries -------------------------------------------------------------------

    async def _ask(self, request: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(request, REQUEST_TIMEOUT)
        except TimeoutError:
            raise IbUnreachable(
                f"TWS / IB Gateway at {self.settings.where} did not answer {what} within "
                f"{REQUEST_TIMEOUT:.0f}s (is it logged in? an old TWS without completed orders?)"
            ) from None

    async def _refresh_orders_locked(self) -> None:
        await self._ask(self.ib.reqAllOpenOrdersAsync(), "reqAllOpenOrders")
        await self._ask(self.ib.reqCompletedOrdersAsync(apiOnly=True), "reqCompletedOrders")

    async def _refresh_executions_locked(self) -> None:
        await self._ask(self.ib.reqExecutionsAsync(ExecutionFilter(acctCode=self.settings.account)), "reqExecutions")

    async def refresh(self, executions: bool = True) -> None:
        """Ask IB for all open orders (every client), completed orders and (optionally) executions;
        the answers flow through the taps like live callbacks."""
        async with self._broker_lock:
            await self._refresh_orders_locked()
            if executions:
                await self._refresh_executions_locked()

    def _start_round(self) -> int:
        self._round += 1
        self._seen_refs = set()
        return self._round

    async def reconcile(self, why: str = "") -> list[str]:
        """On connect, reconnect, IB's "connectivity restored", and for orders IB has said nothing of:
        open + completed orders and executions from IB, held terminal statuses released, and every
        non-terminal order the broker does not list → UNKNOWN_ORDER. Returns those intents."""
        async with self._broker_lock:
            this_round = self._start_round()
            await self._refresh_orders_locked()
            await self._refresh_executions_locked()
            self._dispatch(self.translator.release_held())
            missing = []
            for track in list(self.translator.tracks.values()):
                if track.phase.terminal or track.phase is Phase.UNKNOWN or track.intent_id in self._seen_refs:
                    continue
                if self._placed_in_round.get(track.intent_id) == this_round:
                    continue  # placed while this round ran: IB may not list it yet
                missing.append(track.intent_id)
                self._dispatch(
                    self.translator.mark_unknown(
                        track.intent_id,
                        f"IB lists no order with orderRef {track.intent_id} (open, completed or executed) — {why or 'reconciliation'}",
                    )
                )
        self.reconciliations += 1
        if missing:
            log.warning("reconciliation (%s): IB does not know %s", why, ", ".join(missing))
        self.save_now()
        return missing

    async def sweep(self) -> list[str]:
        """Every `sweep_every` seconds: reconcile when an order has had no word from IB for
        `stuck_after` seconds, or when, two sweeps running, a status reported more filled than
        the executions received (an execDetails lost on the way) or a terminal status is held."""
        now = self.clock()
        stale = [
            t
            for t in self.translator.tracks.values()
            if t.phase is Phase.NEW and t.placed_at is not None and now - t.placed_at >= self.settings.stuck_after
        ]
        lagging = {
            t.intent_id for t in self.translator.tracks.values() if t.held is not None or (not t.phase.terminal and t.status_filled > t.cum_qty)
        }
        still_lagging, self._lagging = lagging & self._lagging, lagging
        if not (stale or still_lagging) or not self.connected:
            return []
        why = f"no word from IB for {self.settings.stuck_after:.0f}s" if stale else "executions lag the order status"
        missing = await self.reconcile(why)
        self._lagging = {
            t.intent_id for t in self.translator.tracks.values() if t.held is not None or (not t.phase.terminal and t.status_filled > t.cum_qty)
        }
        for track in stale:
            if track.phase is Phase.NEW and track.intent_id not in self._stuck_warned:
                self._stuck_warned.add(track.intent_id)
                log.warning(
                    "%s: IB lists it as %s for %.0fs; the order workflow's deadline decides (cancel)",
                    track.intent_id,
                    track.last_status or "pending",
                    now - (track.placed_at or now),
                )
        return missing

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_every)
            for intent in [i for i, lock in self._intent_locks.items() if not lock.locked()]:
                track = self.translator.track(intent)
                if track is None or track.phase.terminal:
                    del self._intent_locks[intent]
            try:
                await self.sweep()
            except Exception:
                log.exception("stuck-order sweep failed")

    # ----- market data ----------------------------------------------------------------------

    async def subscribe_quotes(self, symbol: str) -> Any:
        """Stream quotes for a US stock (the contract is qualified once: ib_async keys tickers by
        conId); the subscription is restored after every reconnect. Returns ib_async's Ticker."""
        self._require_connected()
        contract = contract_for(symbol)
        if symbol in self.market_data:
            contract.conId = self.market_data[symbol]
        else:
            qualified = await asyncio.wait_for(self.ib.qualifyContractsAsync(contract), REQUEST_TIMEOUT)
            if not qualified or qualified[0] is None:
                raise ValueError(f"IB does not know the US stock {symbol} (SMART/USD)")
        self.market_data[symbol] = contract.conId
        self._save_soon()
        self.tickers[symbol] = self.ib.reqMktData(contract)
        return self.tickers[symbol]

    def _restore_market_data(self) -> None:
        for symbol, con_id in sorted(self.market_data.items()):
            contract = contract_for(symbol)
            contract.conId = con_id
            self.tickers[symbol] = self.ib.reqMktData(contract)

    # ----- the venue activities -------------------------------------------------------------

    async def submit(self, order: IbkrOrder) -> list[ExecutionEvent]:
        """Place the order unless IB already has it; returns the intent's events so far.

        A retry never places a second order: the intent is looked up in the gateway's book and,
        failing that, among IB's open and completed orders by orderRef (all clients)."""
        intent = order.intent_id
        async with self._lock(intent):
            with self._capture(intent):
                track = self.translator.track(intent)
                if track is not None and (track.events or track.seen_by_broker) and not self._never_reached_ib(track):
                    return list(track.events)
                self._require_connected()
                await self.refresh(executions=False)
                sighting = self.translator.broker_refs.get(intent)
                track = self.translator.track(intent)
                if sighting is not None:
                    if track is None:
                        self._dispatch(self.translator.adopt(intent, sighting, now=self.clock()))
                    await self.refresh()  # its executions
                    return list(self.translator.tracks[intent].events)
                self._place(order)
                await self._wait_captured(intent, self.settings.ack_timeout)
                return list(self.translator.tracks[intent].events)

    @staticmethod
    def _never_reached_ib(track: OrderTrack) -> bool:
        """Written ahead, then found nowhere at IB (open, completed, executions) and never heard of:
        the placement did not leave (a crash, a dropped socket). A retried submit may place it."""
        return track.phase is Phase.UNKNOWN and not track.seen_by_broker and track.cum_qty == 0 and track.perm_id is None

    def _place(self, order: IbkrOrder) -> None:
        client_id = self.settings.client_id
        order_id = self.ib.client.getReqId()
        while (client_id, order_id) in self.ib.wrapper.trades or self.translator.track_for_order_id(order_id):
            order_id = self.ib.client.getReqId()
        ib_order = ib_order_for(order, self.settings.account)
        ib_order.orderId = order_id
        self.translator.register(order.intent_id, order.quantity, order.symbol, order.side, client_id=client_id, order_id=order_id, now=self.clock())
        self.translator.tracks[order.intent_id].phase = Phase.NEW
        self._placed_in_round[order.intent_id] = self._round
        self.save_now()  # written before the order leaves: a restart knows it may exist
        self.ib.placeOrder(contract_for(order.symbol), ib_order)
        log.info(
            "placed %s: %s %s %s %s (orderId %s)",
            order.intent_id,
            order.side,
            order.quantity,
            order.symbol,
            order.limit_price if order.limit_price is not None else "MKT",
            order_id,
        )

    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        """Ask IB to cancel; returns what answers the cancel: the order's terminal event if it has
        ended, its CANCEL_PENDING if a cancel is already working, else what IB says within
        `cancel_timeout` (possibly nothing yet: the answer then comes through the sink).
        An order IB does not know answers UNKNOWN_ORDER."""
        async with self._lock(intent_id):
            with self._capture(intent_id) as captured:
                track = self.translator.track(intent_id)
                if track is None:
                    self._require_connected()
                    await self.refresh(executions=False)
                    sighting = self.translator.broker_refs.get(intent_id)
                    if sighting is None:
                        return [ExecutionEvent(intent_id=intent_id, kind=ExecKind.UNKNOWN_ORDER, text=f"IB lists no order with orderRef {intent_id}")]
                    self._dispatch(self.translator.adopt(intent_id, sighting, now=self.clock()))
                    await self.refresh()
                    track = self.translator.tracks[intent_id]
                    captured.clear()
                if track.phase.terminal:
                    return [self._now(track, track.events[-1])] if track.events else []
                if track.phase is Phase.CANCEL_PENDING and track.cancel_requested:
                    return [self._now(track, next(e for e in reversed(track.events) if e.kind is ExecKind.CANCEL_PENDING))]
                self._require_connected()
                self._send_cancel(track)
                if track.phase is Phase.UNKNOWN:
                    return [track.events[-1]]  # sent anyway, in case IB holds it unlisted; its answer is signalled
                await self._wait_captured(intent_id, self.settings.cancel_timeout)
                return list(captured)

    @staticmethod
    def _now(track: OrderTrack, event: ExecutionEvent) -> ExecutionEvent:
        """A status event repeated as an answer carries the order's quantities as they are now."""
        if event.kind is ExecKind.FILL:
            return event
        return event.model_copy(update={"cum_qty": track.cum_qty, "leaves_qty": track.leaves})

    def _send_cancel(self, track: OrderTrack) -> None:
        wrapper = self.ib.wrapper
        trade = wrapper.permId2Trade.get(track.perm_id) if track.perm_id else None
        if trade is None and track.order_id is not None:
            trade = wrapper.trades.get((track.client_id, track.order_id))
        if trade is not None and trade.order.clientId == self.settings.client_id and trade.order.orderId > 0:
            self.ib.cancelOrder(trade.order)
        elif track.client_id == self.settings.client_id and track.order_id is not None:
            self.ib.client.cancelOrder(track.order_id, "")
        else:
            raise CannotCancel(
                f"{track.intent_id} was placed by IB client {track.client_id}; this gateway is client "
                f"{self.settings.client_id} and IB lets only the placing client cancel — keep IB_CLIENT_ID stable"
            )
        track.cancel_requested = True
        log.info("cancel sent for %s (orderId %s, permId %s)", track.intent_id, track.order_id, track.perm_id)

    async def order_status(self, intent_id: str) -> VenueOrderStatus:
        """What IB knows of the order now (asked, not remembered, unless it is over)."""
        track = self.translator.track(intent_id)
        if track is not None and track.phase.terminal and track.held is None:
            return track.to_status()
        self._require_connected()
        async with self._lock(intent_id):
            async with self._broker_lock:
                this_round = self._start_round()
                await self._refresh_orders_locked()
                await self._refresh_executions_locked()
            track = self.translator.track(intent_id)
            sighting = self.translator.broker_refs.get(intent_id)
            if track is None and sighting is not None:
                self._dispatch(self.translator.adopt(intent_id, sighting, now=self.clock()))
                await self.refresh()
                track = self.translator.track(intent_id)
            if track is None:
                return VenueOrderStatus(intent_id=intent_id, known=False, last_kind=ExecKind.UNKNOWN_ORDER)
            if (
                intent_id not in self._seen_refs
                and not track.phase.terminal
                and track.phase is not Phase.UNKNOWN
                and self._placed_in_round.get(intent_id) != this_round
            ):
                self._dispatch(self.translator.mark_unknown(intent_id, f"IB lists no order with orderRef {intent_id}"))
            status = track.to_status()
            if track.phase is Phase.UNKNOWN:
                status = status.model_copy(update={"known": False, "last_kind": ExecKind.UNKNOWN_ORDER})
            return status

    async def executions_since(self, exec_cursor: str | None) -> list[ExecutionEvent]:
        """FILL events after `exec_cursor` (an exec id) in the order the gateway saw them; all of
        them when the cursor is None or unknown. Asks IB for executions first when connected."""
        if self.connected:
            await self.refresh(executions=True)
        if exec_cursor:
            for index, event in enumerate(self.journal):
                if event.exec_id == exec_cursor:
                    return self.journal[index + 1 :]
        return list(self.journal)
