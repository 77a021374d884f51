"""The gateway's connection to IB: identity checks (client id, IB account), connect / reconnect,
the taps on ib_async's Wrapper, reconciliation of orders, the positions check, the stuck-order
sweep, market data, and the requests that place and cancel orders. The activities' logic is in
gateway.py; how events leave, in routing.py.

How IB's words reach the rig: the taps run *after* ib_async has updated its Trade objects and hand
the raw callback to the translator — the raw callback, not the Trade's status: ib_async marks a
Trade Cancelled on any error code outside its short warning list (10349 included) and would then
swallow the real Cancelled that comes later. After an error the rig deems informational, the tap
puts the Trade's status back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Order, OrderStatus, StartupFetchNONE

from venues.ibkr.codes import (
    CONNECTIVITY_LOST_CODES,
    CONNECTIVITY_RESTORED_CODES,
    CONNECTIVITY_RESTORED_DATA_LOST,
    DUPLICATE_ORDER_ID,
    ErrorEffect,
    error_effect,
)
from venues.ibkr.contracts import ContractBook, StockContract, UnknownContract
from venues.ibkr.delivery import BookReader, OrderSink
from venues.ibkr.models import (
    BrokerDivergence,
    IbkrOrder,
    IbkrSettings,
)
from venues.ibkr.positions import PositionWatch
from venues.ibkr.routing import EventRouting
from venues.ibkr.store import StateStore
from venues.ibkr.translator import IbkrTranslator, OrderTrack, Phase

log = logging.getLogger("venues.ibkr")

REQUEST_TIMEOUT = 15.0  # one reqAllOpenOrders / reqCompletedOrders / reqExecutions / reqPositions round trip
CANCEL_TARGET_NOT_FOUND = 10147  # IB's answer to a cancel of an order it does not know
MAX_PLACE_ATTEMPTS = 3  # placements of one order (103 Duplicate order id → a new orderId)
EXEC_MARK_MARGIN = timedelta(minutes=5)  # reqExecutions asks from the last execution seen, minus this
POSITIONS_CONFIRM_DELAY = 2.0  # a difference is checked again this soon before it is reported


class IbUnreachable(Exception):
    """TWS / IB Gateway does not answer: the message is one line for the operator."""


class IbkrConfigError(Exception):
    """The gateway cannot serve with this configuration (client id, IB account): one line."""


class NotConnected(Exception):
    """The gateway is between connections; the activity should be retried."""


class CannotCancel(Exception):
    """IB lets only the client that placed an order cancel it."""


def unreachable_line(settings: IbkrSettings, err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0] or type(err).__name__
    return (
        f"cannot reach TWS / IB Gateway at {settings.where} (client id {settings.client_id}): {first}. "
        "Start TWS or IB Gateway, log in (paper: TWS port 7497, IB Gateway 4002), enable "
        "Configure → API → Settings → 'Enable ActiveX and Socket Clients' with that socket port and "
        "127.0.0.1 among the trusted IPs — or set IB_HOST / IB_PORT / IB_CLIENT_ID."
    )


def ib_order_for(order: IbkrOrder, order_ref: str, ib_account: str, price: float | None) -> Order:
    common: dict[str, Any] = {"orderRef": order_ref, "tif": order.time_in_force, "outsideRth": False, "transmit": True, "account": ib_account}
    if order.order_type == "LIMIT":
        assert price is not None
        return LimitOrder(order.side, order.quantity, price, **common)
    return MarketOrder(order.side, order.quantity, **common)


class GatewayCore(EventRouting):
    def __init__(
        self,
        settings: IbkrSettings,
        sink: OrderSink,
        ib: IB | None = None,
        clock: Callable[[], float] = time.time,
        books: BookReader | None = None,
    ) -> None:
        self.settings = settings
        self.books = books
        self.ib = ib or IB()
        self.clock = clock
        store = StateStore(settings.state_dir)
        snap = store.load()
        self._check_client_id(store, snap.meta, snap.tracks)
        EventRouting.__init__(self, sink, store, snap)
        self.translator = IbkrTranslator(settings.client_id, snap.tracks, expired=self._expired)
        self.translator.touched.clear()
        self.contracts = ContractBook({s: StockContract.model_validate_json(b) for s, b in snap.contracts.items()})
        self.market_data: dict[str, int] = json.loads(self.meta.get("market_data", "{}"))
        self.account = ""  # the IB account in use (IB_ACCOUNT, or the login's only account)
        self.link_down: tuple[int, str] | None = None  # IB 1100 / 2110 until 1101 / 1102
        self.tickers: dict[str, Any] = {}
        self.watch = PositionWatch()
        self.divergences: list[BrokerDivergence] = []
        self._resolved_unlisted: dict[str, list[str]] = {}  # symbol → orders ended outside IB's window
        self._broker_lock = asyncio.Lock()
        self._seen_refs: set[str] = set()
        self._connected = asyncio.Event()
        self._stopping = False
        self._serving = False
        self._tasks: list[asyncio.Task] = []
        self._reconnect_task: asyncio.Task | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._stuck_warned: set[str] = set()
        self._lagging: set[str] = set()
        self.reconciliations = 0
        self.position_checks = 0
        self._round = 0  # reconciliation rounds started; orders placed during a round are not judged by it
        self._placed_in_round: dict[str, int] = {}
        self._install_taps()
        self.ib.disconnectedEvent += self._on_disconnected

    # ----- identity -------------------------------------------------------------------------

    def _check_client_id(self, store: StateStore, meta: dict[str, str], tracks: list[OrderTrack]) -> None:
        stored = int(meta["client_id"]) if meta.get("client_id") else None
        if stored is None or stored == self.settings.client_id:
            return
        open_orders = [t.intent_id for t in tracks if not t.phase.terminal and t.client_id == stored]
        if open_orders:
            raise IbkrConfigError(
                f"the gateway's state in {store.path} was written as IB client id {stored} and has {len(open_orders)} open order(s) "
                f"({', '.join(open_orders[:3])}{'…' if len(open_orders) > 3 else ''}); IB tells only client {stored} (or the master client) "
                f"about them and lets only it cancel them — set IB_CLIENT_ID={stored}, not {self.settings.client_id}"
            )
        log.warning("IB client id changes from %s to %s (no open orders of the old one)", stored, self.settings.client_id)

    def _resolve_account(self) -> str:
        managed = [a for a in self.ib.managedAccounts() if a]
        wanted = self.settings.account
        if wanted and wanted not in managed:
            raise IbkrConfigError(f"IB_ACCOUNT {wanted} is not among the accounts this IB login manages ({', '.join(managed) or 'none'})")
        if not wanted and len(managed) != 1:
            raise IbkrConfigError(
                f"this IB login manages {len(managed)} accounts ({', '.join(managed) or 'none'}): set IB_ACCOUNT to the one the rig trades"
            )
        account = wanted or managed[0]
        stored = self.meta.get("ib_account")
        if stored and stored != account and any(not t.phase.terminal for t in self.translator.tracks.values()):
            raise IbkrConfigError(f"the gateway's open orders are in IB account {stored}; this login trades {account} — set IB_ACCOUNT={stored}")
        return account

    # ----- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (IbUnreachable if TWS / IB Gateway does not answer, IbkrConfigError if it cannot
        serve), reconcile, compare positions, then serve."""
        self._tasks.append(asyncio.create_task(self._deliver_loop(), name="ibkr-deliver"))
        if self.outbox:
            self._outbox_wakeup.set()
        await self._connect_once()
        await self._after_connect("connect")
        self._serving = True  # from now on a lost connection is retried
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="ibkr-sweep"))
        self._tasks.append(asyncio.create_task(self._positions_loop(), name="ibkr-positions"))

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        tasks = [*self._tasks, *([self._reconnect_task] if self._reconnect_task else []), *([self._flush_task] if self._flush_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for timer in [*self._hold_timers.values(), *([self._recheck] if self._recheck else [])]:
            timer.cancel()
        for intent in list(self._held):
            self._release_held_events(intent)
        self.ib.disconnectedEvent -= self._on_disconnected
        if self.ib.isConnected():
            self.ib.disconnect()
        self.store.write_now(self._take_batch())
        self.store.close()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected() and self._connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_once(self) -> None:
        s = self.settings
        self.link_down = None
        try:
            await self.ib.connectAsync(
                s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout, account=s.account, fetchFields=StartupFetchNONE
            )
        except (OSError, ConnectionError, TimeoutError) as err:
            raise IbUnreachable(unreachable_line(s, err)) from None
        try:
            self.account = self._resolve_account()
        except IbkrConfigError:
            self.ib.disconnect()
            raise
        self.translator.client_id = s.client_id
        self._meta("client_id", str(s.client_id))
        self._meta("ib_account", self.account)
        log.info("connected to IB at %s as client %s, account %s", s.where, s.client_id, self.account)

    async def _after_connect(self, why: str) -> None:
        await self.reconcile(why)
        self._connected.set()
        self._restore_market_data()
        await self._check_positions_quietly(why)

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
            except (IbUnreachable, IbkrConfigError) as err:
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

    # ----- the exchange's day ---------------------------------------------------------------

    def _local_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), ZoneInfo(self.settings.exchange_tz))

    def _session(self) -> str:
        return self._local_now().date().isoformat()

    def _expired(self, track: OrderTrack) -> bool:
        """An unrequested Cancelled of a DAY order is IB expiring it: its session has closed."""
        if track.tif != "DAY" or not track.session:
            return False
        now = self._local_now()
        if now.date().isoformat() > track.session:
            return True
        hour, minute = (int(x) for x in self.settings.session_close.split(":"))
        return now.date().isoformat() == track.session and (now.hour, now.minute) >= (hour, minute)

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
        tap("commissionReport", self._tap_commission)
        tap("error", self._tap_error)

    def _tap_open_order(self, order_id: int, contract: Any, order: Order, state: Any) -> None:
        if order.orderRef:
            self._seen_refs.add(order.orderRef)
        self._dispatch(self.translator.on_open_order(order, contract, state))

    def _tap_completed_order(self, contract: Any, order: Order, state: Any) -> None:
        if order.orderRef:
            self._seen_refs.add(order.orderRef)
        self._dispatch(self.translator.on_completed_order(order, contract, state))

    def _tap_order_status(self, *fields: Any) -> None:
        self._dispatch(self.translator.on_order_status(OrderStatus(*fields)))  # the wrapper's arguments, in OrderStatus's field order

    def _tap_exec_details(self, req_id: int, contract: Any, execution: Any) -> None:
        if execution.orderRef:
            self._seen_refs.add(execution.orderRef)
        self._dispatch(self.translator.on_execution(execution, contract))

    def _tap_commission(self, report: Any) -> None:
        updated = self.translator.on_commission(report)
        if updated is None:
            return
        queue = self._held.get(updated.intent_id)
        if queue is not None:
            queue[:] = [updated if e.exec_id == updated.exec_id else e for e in queue]
            if not any(e.exec_id and e.commission is None for e in queue):
                self._release_held_events(updated.intent_id)
        elif updated.exec_id in self._journal_ids:
            self.journal = [updated if e.exec_id == updated.exec_id else e for e in self.journal]
            self._batch.journal.append(updated)
            self._flush_soon()

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
        if code == DUPLICATE_ORDER_ID and track is not None and track.phase is Phase.NEW and not track.perm_id:
            if track.place_attempts < MAX_PLACE_ATTEMPTS:
                self.translator._note(track, f"IB {code}: {message} — placed again with a new orderId")
                self._send_place(track)
                return
        self._dispatch(self.translator.on_error(req_id, code, message))
        if code == CANCEL_TARGET_NOT_FOUND and track is not None:
            # IB no longer knows an order the rig holds open: read its books now.
            self._reconcile_soon(f"IB {code}")

    def _connectivity(self, code: int, message: str) -> None:
        if code in CONNECTIVITY_LOST_CODES:
            log.warning("IB %s: %s — new orders are refused until IB says connectivity is restored", code, message)
            self.link_down = (code, message)
        elif code in CONNECTIVITY_RESTORED_CODES:
            log.info("IB %s: %s — reconciling", code, message)
            self.link_down = None
            if code == CONNECTIVITY_RESTORED_DATA_LOST:
                self._restore_market_data()
            self._reconcile_soon(f"IB {code}", positions=True)

    def _reconcile_soon(self, why: str, positions: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile_quietly(why, positions))
        self._tasks.append(task)  # held: a task nobody references may be collected mid-way
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    async def _reconcile_quietly(self, why: str, positions: bool = False) -> None:
        try:
            await self.reconcile(why)
            if positions:
                await self.check_positions(why)
        except Exception:
            log.exception("reconciliation (%s) failed", why)

    # ----- broker queries -------------------------------------------------------------------

    async def _ask(self, request: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(request, REQUEST_TIMEOUT)
        except TimeoutError:
            raise IbUnreachable(
                f"TWS / IB Gateway at {self.settings.where} did not answer {what} within {REQUEST_TIMEOUT:.0f}s (is it logged in?)"
            ) from None

    def _execution_filter(self, symbol: str = "") -> ExecutionFilter:
        """This account's executions since the last one seen (minus a margin), or all of IB's day."""
        since = ""
        mark = self.meta.get("exec_mark")
        if mark:
            since = (datetime.fromisoformat(mark).astimezone(UTC) - EXEC_MARK_MARGIN).strftime("%Y%m%d-%H:%M:%S")
        return ExecutionFilter(acctCode=self.account, time=since, symbol=symbol)

    async def _refresh_orders_locked(self) -> None:
        await self._ask(self.ib.reqAllOpenOrdersAsync(), "reqAllOpenOrders")
        await self._ask(self.ib.reqCompletedOrdersAsync(apiOnly=True), "reqCompletedOrders")

    async def _refresh_executions_locked(self, symbol: str = "") -> None:
        await self._ask(self.ib.reqExecutionsAsync(self._execution_filter(symbol)), "reqExecutions")

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
        """Open + completed orders and executions from IB, held terminal statuses released, and
        every non-terminal order IB does not list → UNKNOWN_ORDER (EXPIRED when it was a DAY order
        of an earlier session: outside IB's window). Returns the intents IB did not list."""
        session = self._session()
        async with self._broker_lock:
            this_round = self._start_round()
            await self._refresh_orders_locked()
            await self._refresh_executions_locked()
            self._dispatch(self.translator.release_held())
            missing = []
            for track in list(self.translator.tracks.values()):
                if track.phase.terminal or track.phase is Phase.UNKNOWN or track.order_ref in self._seen_refs:
                    continue
                if self._placed_in_round.get(track.intent_id) == this_round:
                    continue  # placed while this round ran: IB may not list it yet
                missing.append(track.intent_id)
                if track.tif == "DAY" and track.session and track.session < session and track.seen_by_broker:
                    reason = (
                        f"DAY order of {track.session} that IB no longer lists (outside its window): ended at that close with "
                        f"{track.cum_qty} filled as far as the rig heard — fills it did not hear show in the positions check"
                    )
                    self._resolved_unlisted.setdefault(track.symbol, []).append(track.intent_id)
                    self._dispatch(self.translator.expire_unlisted(track.intent_id, reason))
                else:
                    reason = f"IB lists no order with orderRef {track.order_ref or track.intent_id} (open, completed or executed) — {why or 'reconciliation'}"
                    self._dispatch(self.translator.mark_unknown(track.intent_id, reason))
        self.reconciliations += 1
        if missing:
            log.warning("reconciliation (%s): IB does not list %s", why, ", ".join(missing))
        await self.flush()
        return missing

    # ----- positions ------------------------------------------------------------------------

    def served_accounts(self) -> list[str]:
        return sorted(set(self.settings.rig_accounts) | {t.account for t in self.translator.tracks.values() if t.account})

    async def check_positions(self, why: str = "timer") -> list[BrokerDivergence]:
        """reqPositions against the accounts' books; a difference seen twice is told to every account."""
        if not self.connected and not self.ib.isConnected():
            return []
        positions = await self._ask(self.ib.reqPositionsAsync(), "reqPositions")
        self.position_checks += 1
        ib_held = {p.contract.symbol: int(p.position) for p in positions if p.account == self.account and p.contract.secType == "STK" and p.position}
        accounts = self.served_accounts()
        if self.books is None or not accounts:
            return []
        await self.idle(timeout=30.0)  # what the gateway knows has reached the orders (and so the books)
        books: dict[str, dict[str, int]] = {}
        for account in accounts:
            held = await self.books.positions(account)
            if held is None:
                return []  # an account that does not answer: no sum to compare with
            books[account] = held
        found, again = self.watch.compare(ib_held, books, self._exec_counts)
        told: list[BrokerDivergence] = []
        as_of = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        for diff in found:
            resolved = self._resolved_unlisted.pop(diff.symbol, []) if diff.ib_position != diff.book_position else []
            text = (
                f"IB and the rig's books agree again on {diff.symbol}: {diff.ib_position} ({why})"
                if diff.ib_position == diff.book_position
                else f"IB holds {diff.ib_position} {diff.symbol} in {self.account}; the rig's books hold {diff.book_position} "
                f"({', '.join(f'{a}: {q}' for a, q in diff.by_account.items())}): difference {diff.ib_position - diff.book_position:+d}"
                + (f"; orders ended outside IB's window, fills unknown: {', '.join(resolved)}" if resolved else "")
                + f" ({why})"
            )
            log.log(logging.INFO if diff.ib_position == diff.book_position else logging.ERROR, "position divergence: %s", text)
            for account in accounts:
                message = BrokerDivergence(
                    account=account,
                    ib_account=self.account,
                    symbol=diff.symbol,
                    ib_position=diff.ib_position,
                    book_position=diff.book_position,
                    account_position=diff.by_account.get(account, 0),
                    accounts=accounts,
                    as_of=as_of,
                    resolved_from_positions=resolved,
                    text=text,
                )
                told.append(message)
                self._enqueue("divergence", divergence=message)
        self.divergences += told
        if again and self._recheck is None:
            self._recheck = asyncio.get_running_loop().call_later(POSITIONS_CONFIRM_DELAY, self._recheck_positions)
        self._flush_soon()
        return told

    def _recheck_positions(self) -> None:
        self._recheck = None
        if not self._stopping:
            task = asyncio.get_running_loop().create_task(self._check_positions_quietly("confirming a difference"))
            self._tasks.append(task)
            task.add_done_callback(self._forget_task)

    async def _check_positions_quietly(self, why: str) -> None:
        try:
            await self.check_positions(why)
        except Exception:
            log.exception("positions check (%s) failed", why)

    async def _positions_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.positions_every)
            if self.connected:
                await self._check_positions_quietly("timer")

    # ----- the stuck-order sweep ------------------------------------------------------------

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

    # ----- orders at IB ------------------------------------------------------------------

    def _fresh_order_id(self) -> int:
        order_id = self.ib.client.getReqId()
        while (self.settings.client_id, order_id) in self.ib.wrapper.trades or self.translator.track_for_order_id(order_id):
            order_id = self.ib.client.getReqId()
        return order_id

    def _send_place(self, track: OrderTrack) -> None:
        stock = self.contracts.known[track.symbol]
        order = IbkrOrder(
            intent_id=track.intent_id,
            account=track.account,
            symbol=track.symbol,
            side="SELL" if track.side == "SELL" else "BUY",
            quantity=track.quantity,
            order_type="MARKET" if track.order_type == "MARKET" else "LIMIT",
            limit_price=track.limit_price,
        )
        ib_order = ib_order_for(order, track.order_ref, self.account, track.limit_price)
        ib_order.orderId = self._fresh_order_id()
        self.translator.rebind_order_id(track, ib_order.orderId)
        track.client_id = self.settings.client_id
        track.place_attempts += 1
        self.ib.placeOrder(stock.contract(), ib_order)
        self._flush_soon()
        log.info(
            "placed %s: %s %s %s %s (orderId %s)",
            track.intent_id,
            track.side,
            track.quantity,
            track.symbol,
            track.limit_price or "MKT",
            ib_order.orderId,
        )

    def _send_cancel(self, track: OrderTrack) -> None:
        wrapper = self.ib.wrapper
        trade = wrapper.permId2Trade.get(track.perm_id) if track.perm_id else None
        if trade is None and track.order_id is not None:
            trade = wrapper.trades.get((track.client_id or 0, track.order_id))
        if trade is not None and trade.order.clientId == self.settings.client_id and trade.order.orderId > 0:
            self.ib.cancelOrder(trade.order)
        elif track.client_id == self.settings.client_id and track.order_id is not None:
            self.ib.client.cancelOrder(track.order_id, "")
        else:
            raise CannotCancel(
                f"{track.intent_id} was placed by IB client {track.client_id}; this gateway is client "
                f"{self.settings.client_id} and IB lets only the placing client cancel — keep IB_CLIENT_ID stable"
            )
        self.translator.cancel_sent(track)
        self._flush_soon()
        log.info("cancel sent for %s (orderId %s, permId %s)", track.intent_id, track.order_id, track.perm_id)

    def _after_dispatch(self) -> None:
        """Cancel at IB what the rig ended REJECTED but IB then said works (no orphan)."""
        while self.translator.orphans:
            intent = self.translator.orphans.pop()
            track = self.translator.track(intent)
            if track is not None and not track.cancel_requested and self.ib.isConnected():
                log.error("%s: the rig ended it REJECTED but IB says it works: canceling it at IB", intent)
                with contextlib.suppress(CannotCancel):
                    self._send_cancel(track)

    # ----- market data ----------------------------------------------------------------------

    async def qualify(self, symbol: str) -> StockContract:
        try:
            stock, new = await self.contracts.qualify(self.ib, symbol)
        except ConnectionError:
            raise NotConnected(
                f"the connection to IB at {self.settings.where} dropped while qualifying {symbol}: retry when the gateway has reconnected"
            ) from None
        if new:
            self._batch.contracts[symbol] = stock.model_dump_json()
            self._flush_soon()
        return stock

    async def subscribe_quotes(self, symbol: str) -> Any:
        """Stream quotes for a US stock (qualified once: ib_async keys tickers by conId); the
        subscription is restored after every reconnect. Returns ib_async's Ticker."""
        self._require_connected()
        try:
            stock = await self.qualify(symbol)
        except UnknownContract as err:
            raise ValueError(str(err)) from None
        self.market_data[symbol] = stock.con_id
        self._meta("market_data", json.dumps(self.market_data, sort_keys=True))
        self._flush_soon()
        self.tickers[symbol] = self.ib.reqMktData(stock.contract())
        return self.tickers[symbol]

    def _restore_market_data(self) -> None:
        for symbol in sorted(self.market_data):
            stock = self.contracts.known.get(symbol)
            if stock is not None:
                self.tickers[symbol] = self.ib.reqMktData(stock.contract())
