"""A fake TWS / IB Gateway that speaks the TWS API on a real socket (127.0.0.1, a free port).

The rig's gateway connects to it with ib_async exactly as to IB: ib_async's Client (handshake,
version negotiation, startApi, the request throttle), Connection and Decoder all run; every message
is framed and encoded as TWS does for server version 178 (testkit/ibkr/wire.py).

The broker's side, as IB behaves (the TWS API reference; NautilusTrader's IB adapter tests):

* Sessions have a client id; a second connection with a client id in use is refused (326).
* An order's openOrder / orderStatus / execDetails / commissionReport / error go to the client that
  placed it, and — for every order — to the *master client id* if one is configured (TWS: API →
  Settings → Master API client ID). Nobody else hears of it.
* reqOpenOrders: this client's open orders; reqAllOpenOrders: every client's (not bound);
  reqCompletedOrders: every completed order of the current day (no orderId, no clientId);
  reqExecutions(filter): the current day's executions of this client (all clients' for the master),
  filtered by clientId, account, time (`yyyymmdd-hh:mm:ss` UTC), symbol, side; reqPositions: the
  account's positions.
* placeOrder with the orderId of this client's working order is a modify (quantity, price);
  an orderId not above every id this client used is refused (103 Duplicate order id).
* cancelOrder reaches only this client's orders (10147 otherwise); a done order answers 10148.
* The day ends (`close_day`): working DAY orders are cancelled by IB; `next_day` (the nightly
  restart) forgets the day's completed orders and executions: only positions remember them.
* Connectivity: `link_lost(1100|2110)` / `link_restored(1101|1102)` say it to every session.

Tests drive it with callback specs (the same in scenario files and in code):

    {"cb": "openOrder",   "order": "<intent>", "status": "Submitted"}
    {"cb": "orderStatus", "order": "<intent>", "status": "PendingCancel", "filled": 0, "whyHeld": ""}
    {"cb": "execDetails", "order": "<intent>", "shares": 100, "price": 190.0, "exec_id": "…01.01"}
    {"cb": "commissionReport", "exec_id": "…", "commission": 1.0}
    {"cb": "error", "order": "<intent>" | null, "code": 10349, "message": "…"}
    {"cb": "fill", "order": "<intent>", "shares": 40, "price": 190.0}   # execDetails + orderStatus + commissionReport
    {"cb": "cancelled", "order": "<intent>"}                           # orderStatus Cancelled + error 202
    {"cb": "refuse"}  (in an on-place script only)                     # the order never reaches IB's books
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ib_async import IB

from testkit.ibkr import wire
from testkit.ibkr.wire import IN, WireContract, WireExecution, WireOrder
from venues.ibkr.models import parse_order_ref, rig_order_ref

log = logging.getLogger("testkit.ibkr.tws")

DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
FARM_OK = [
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
]
LINK_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}
US_STOCK_RULE = 26
US_STOCK_INCREMENTS = [(0.0, 0.0001), (1.0, 0.01)]


@dataclass
class Fill:
    execution: WireExecution
    day: int  # the trading day (ordinal) it happened on
    commission: float | None = None


@dataclass
class BrokerOrder:
    order_ref: str
    order_id: int
    client_id: int
    perm_id: int
    contract: WireContract
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    account: str
    day: int
    status: str = "PendingSubmit"
    why_held: str = ""
    completed_status: str = ""
    completed_time: str = ""
    fills: dict[str, Fill] = field(default_factory=dict)  # base exec id → latest version

    @property
    def intent_id(self) -> str:
        parsed = parse_order_ref(self.order_ref)
        return parsed[1] if parsed else self.order_ref

    @property
    def filled(self) -> int:
        return int(sum(f.execution.shares for f in self.fills.values()))

    @property
    def done(self) -> bool:  # an Inactive order held for a short-sale locate is still open
        return self.status in DONE_STATES and not (self.status == "Inactive" and "locate" in self.why_held.lower())

    @property
    def executions(self) -> dict[str, WireExecution]:
        return {base: f.execution for base, f in self.fills.items()}

    asked_con_id: int = 0  # the conId the placeOrder carried (0: none)
    asked_primary: str = ""

    def wire(self) -> WireOrder:
        return WireOrder(
            self.order_id,
            self.client_id,
            self.perm_id,
            self.action,
            self.quantity,
            self.order_type,
            self.lmt_price,
            self.tif,
            self.account,
            self.order_ref,
        )

    @property
    def order(self) -> WireOrder:  # what tests read: lmt_price, total_quantity …
        return self.wire()


def exec_base(exec_id: str) -> str:
    head, dot, _ = exec_id.rpartition(".")
    return head if dot and head else exec_id


class Session(asyncio.Protocol):
    """One API connection."""

    def __init__(self, tws: FakeTWS) -> None:
        self.tws = tws
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.version: int | None = None
        self.client_id: int | None = None
        self.ready = False
        self.sent = 0  # messages sent (the handshake answer included)
        self.received = 0  # messages read (the handshake included)
        self.port = 0
        self.market_data: dict[int, str] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.port = transport.get_extra_info("peername")[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # TWS answers at once (no Nagle delay between a message and the next)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tws.sessions.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.tws.sessions:
            self.tws.sessions.remove(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.version is None:  # `API\0` then one framed hello: `v<min>..<max>`
            if len(self.buffer) < 4:
                return
            if not self.buffer.startswith(wire.HANDSHAKE_PREFIX):
                self.close()
                return
            messages, rest = wire.split_frames(self.buffer[4:])
            if not messages:
                return
            self.received += 1
            version = wire.negotiate(messages[0][0] if messages[0] else "", self.tws.server_version)
            if version is None:
                self.close()
                return
            self.version = version
            self.send([version, wire.connection_time(self.tws.now)])
            for extra in messages[1:]:
                self._handle(extra)
            self.buffer = rest
            return
        messages, self.buffer = wire.split_frames(self.buffer)
        for message in messages:
            self._handle(message)

    def _handle(self, fields: list[str]) -> None:
        self.received += 1
        try:
            self.tws.on_message(self, fields)
        except Exception:  # a request the fake cannot read is a bug in the fake or the client
            log.exception("fake TWS failed on %s", fields[:4])
            raise

    def send(self, fields: list[object]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(wire.frame(fields))
        self.sent += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class FakeTWS:
    def __init__(
        self,
        account: str | list[str] = "DU1234567",
        next_valid_id: int | None = None,
        server_version: int = wire.SERVER_VERSION,
        auto_ack: bool = True,
        auto_cancel: bool = True,
        master_client_id: int | None = None,
        start: datetime = datetime(2025, 6, 10, 13, 30, tzinfo=UTC),
    ) -> None:
        self.accounts = [account] if isinstance(account, str) else list(account)
        self.next_valid_id = next_valid_id
        self.server_version = server_version
        self.auto_ack = auto_ack
        self.auto_cancel = auto_cancel
        self.master_client_id = master_client_id
        self.now = start
        self.day = start.date().toordinal()
        self.orders: list[BrokerOrder] = []
        self.requests: list[tuple] = []
        self.sessions: list[Session] = []
        self.on_place_script: dict[str, list[dict]] = {}
        self.on_cancel_script: dict[str, list[dict]] = {}
        self.con_ids: dict[str, int] = {}
        self.prices: dict[str, float] = {}  # last price per symbol, for market-data snapshots
        self.seed_positions: dict[str, float] = {}  # positions held before the scenario
        self.link_down: int | None = None
        self.max_order_id: dict[int, int] = {}
        self._perm_ids = itertools.count(900_000_001)
        self._exec_seq = itertools.count(1)
        self._ibs: list[IB] = []
        self._server: asyncio.AbstractServer | None = None
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(16)  # the kernel queues a connection made before the server runs
        self.port: int = self._listen.getsockname()[1]
        self._up = True
        self._starting: asyncio.Task | None = None

    # ----- the listening socket ---------------------------------------------------------------

    @property
    def account(self) -> str:
        return self.accounts[0] if self.accounts else ""

    async def start(self) -> FakeTWS:
        if self._server is None and self._up:
            if self._listen.fileno() < 0:
                self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._listen.bind(("127.0.0.1", self.port))
                self._listen.listen(16)
            self._listen.setblocking(False)
            self._server = await asyncio.get_running_loop().create_server(lambda: Session(self), sock=self._listen)
        return self

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        self._listen.close()

    def _start_soon(self) -> None:
        if self._server is None and (self._starting is None or self._starting.done()):
            self._starting = asyncio.get_running_loop().create_task(self.start())

    def make_ib(self) -> IB:
        """An ib_async IB for the gateway (it connects to `port`); `settle` follows its counters."""
        ib = IB()
        self._ibs.append(ib)
        self._start_soon()
        return ib

    @property
    def up(self) -> bool:
        return self._up

    @up.setter
    def up(self, value: bool) -> None:
        """Down: TWS refuses connections (the port is closed). Up: it listens again."""
        self._up = value
        if not value:
            if self._server is not None:
                self._server.close()
                self._server = None
            self._listen.close()
        else:
            self._start_soon()

    @property
    def connected(self) -> bool:
        return any(s.ready for s in self.sessions)

    def drop_connection(self, then_down: bool = False) -> None:
        """The socket closes (TWS / IB Gateway restarts); `then_down`: it refuses reconnects."""
        if then_down:
            self.up = False
        for session in list(self.sessions):
            session.close()

    async def settle(self, timeout: float = 10.0) -> None:
        """Until every connected client has read all the fake sent and the fake has read all it
        sent (ib_async's message counters, its throttle queue), and the loop has run the rest."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 20:
            await asyncio.sleep(0)
            quiet = quiet + 1 if self._in_step() else 0
            if time.monotonic() > deadline:
                raise RuntimeError("the fake TWS and its clients do not settle")

    def _in_step(self) -> bool:
        for ib in self._ibs:
            client = ib.client
            transport = client.conn.transport
            if transport is None or not client.isConnected():
                continue
            port = transport.get_extra_info("sockname")[1]
            session = next((s for s in self.sessions if s.port == port), None)
            if session is None:
                continue
            if client._msgQ or session.received != client.conn.numMsgSent or client._numMsgRecv != session.sent:
                return False
        return all(s.transport is None or s.transport.get_write_buffer_size() == 0 for s in self.sessions)

    # ----- routing -----------------------------------------------------------------------------

    def _listeners(self, book: BrokerOrder) -> list[Session]:
        """Who hears of an order: its client, the master client; client 0 for TWS's own orders."""
        ids = {book.client_id}
        if self.master_client_id is not None:
            ids.add(self.master_client_id)
        return [s for s in self.sessions if s.ready and s.client_id in ids]

    def _tell(self, book: BrokerOrder, fields: list[object]) -> None:
        for session in self._listeners(book):
            session.send(fields)

    def _broadcast(self, fields: list[object]) -> None:
        for session in self.sessions:
            if session.ready:
                session.send(fields)

    # ----- requests ----------------------------------------------------------------------------

    def on_message(self, session: Session, fields: list[str]) -> None:
        msg = int(fields[0])
        if msg == IN.START_API:
            self._start_api(session, int(fields[2]))
        elif not session.ready:
            return
        elif msg == IN.PLACE_ORDER:
            self._place(session, wire.PlacedOrder.read(fields))
        elif msg == IN.CANCEL_ORDER:
            self._cancel(session, int(fields[2]))
        elif msg == IN.REQ_OPEN_ORDERS:
            self._open_orders(session, all_clients=False)
        elif msg == IN.REQ_ALL_OPEN_ORDERS:
            self._open_orders(session, all_clients=True)
        elif msg == IN.REQ_COMPLETED_ORDERS:
            self._completed_orders(session, api_only=fields[1] == "1")
        elif msg == IN.REQ_EXECUTIONS:
            self._executions(session, *wire.ExecFilter.read(fields))
        elif msg == IN.REQ_POSITIONS:
            self._positions(session)
        elif msg == IN.REQ_CONTRACT_DETAILS:
            self._contract_details(session, int(fields[2]), wire.contract_at(fields, 3))
        elif msg == IN.REQ_MARKET_RULE:
            self.requests.append(("reqMarketRule", int(fields[1])))
            session.send(wire.market_rule(int(fields[1]), US_STOCK_INCREMENTS))
        elif msg == IN.REQ_MKT_DATA:
            self._market_data(session, int(fields[2]), wire.contract_at(fields, 3), snapshot=fields[-3] == "1")
        elif msg == IN.CANCEL_MKT_DATA:
            self.requests.append(("cancelMktData", int(fields[2])))
            session.market_data.pop(int(fields[2]), None)
        elif msg == IN.REQ_IDS:
            session.send(wire.next_valid_id(self._next_id(session)))
        elif msg == IN.REQ_CURRENT_TIME:
            session.send(wire.current_time(self.now))
        elif msg == IN.REQ_ACCOUNT_UPDATES:
            session.send(wire.account_download_end(fields[3]))
        elif msg == IN.REQ_MANAGED_ACCTS:
            session.send(wire.managed_accounts(self.accounts))
        else:
            self.requests.append(("unhandled", msg))

    def _next_id(self, session: Session) -> int:
        """IB: above every id this client used. A scripted id (`next_valid_id`) is said as given."""
        assert session.client_id is not None
        if self.next_valid_id is not None:
            return self.next_valid_id
        return self.max_order_id.get(session.client_id, 0) + 1

    def _start_api(self, session: Session, client_id: int) -> None:
        self.requests.append(("connect", "127.0.0.1", self.port, client_id))
        if any(s.ready and s.client_id == client_id for s in self.sessions):
            session.send(wire.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id."))
            asyncio.get_running_loop().call_soon(session.close)
            return
        session.client_id = client_id
        session.ready = True
        session.send(wire.next_valid_id(self._next_id(session)))
        session.send(wire.managed_accounts(self.accounts))
        for code, text in FARM_OK:
            session.send(wire.error(-1, code, text))
        if self.link_down is not None:
            session.send(wire.error(-1, self.link_down, LINK_TEXT[self.link_down]))

    def _place(self, session: Session, placed: wire.PlacedOrder) -> None:
        assert session.client_id is not None
        client_id = session.client_id
        existing = self.find(client_id, placed.order_id)
        if existing is not None and not existing.done:
            self._modify(session, existing, placed)
            return
        parsed = parse_order_ref(placed.order_ref)
        self.requests.append(("placeOrder", parsed[1] if parsed else placed.order_ref, placed.order_id))
        if existing is not None or placed.order_id <= self.max_order_id.get(client_id, 0):
            session.send(wire.error(placed.order_id, 103, "Duplicate order id"))
            return
        self.max_order_id[client_id] = placed.order_id
        account = placed.account or self.account
        if account not in self.accounts:
            session.send(wire.error(placed.order_id, 321, f"Error validating request.-'bN' : cause - The account code is invalid: {account}"))
            return
        book = BrokerOrder(
            order_ref=placed.order_ref,
            order_id=placed.order_id,
            client_id=client_id,
            perm_id=next(self._perm_ids),
            contract=self.contract(placed.contract.symbol, placed.contract.primary_exchange),
            action=placed.action,
            quantity=placed.total_quantity,
            order_type=placed.order_type,
            lmt_price=placed.lmt_price,
            tif=placed.tif or "DAY",
            account=account,
            day=self.day,
            asked_con_id=placed.contract.con_id,
            asked_primary=placed.contract.primary_exchange,
        )
        intent = book.intent_id
        script = self.on_place_script.pop(intent, None)
        if script is None or not any(s.get("cb") == "refuse" for s in script):
            self.orders.append(book)
        if script is None:
            script = [{"cb": "openOrder", "status": "Submitted"}, {"cb": "orderStatus", "status": "Submitted"}] if self.auto_ack else []
        for spec in script:
            if spec.get("cb") != "refuse":
                self.apply({"order": intent, **spec}, book=book)

    def _modify(self, session: Session, book: BrokerOrder, placed: wire.PlacedOrder) -> None:
        self.requests.append(("modify", book.intent_id, placed.order_id))
        if placed.action != book.action or placed.contract.symbol != book.contract.symbol:
            session.send(wire.error(book.order_id, 105, "Order being modified does not match original order."))
            return
        if placed.total_quantity < book.filled:
            session.send(
                wire.error(book.order_id, 105, f"Order being modified does not match original order: quantity below the {book.filled} filled.")
            )
            return
        book.quantity, book.lmt_price = placed.total_quantity, placed.lmt_price
        self._send_open_order(book)
        self._send_status(book)

    def _cancel(self, session: Session, order_id: int) -> None:
        assert session.client_id is not None
        book = self.find(session.client_id, order_id)
        self.requests.append(("cancelOrder", book.intent_id if book else None, order_id))
        if book is None:
            session.send(wire.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."))
            return
        script = self.on_cancel_script.pop(book.intent_id, None)
        if script is None:
            if book.done:
                script = [
                    {
                        "cb": "error",
                        "code": 10148,
                        "message": f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {book.status}.",
                    }
                ]
            elif self.auto_cancel:
                script = [{"cb": "orderStatus", "status": "PendingCancel"}, {"cb": "cancelled"}]
            else:
                script = []
        for spec in script:
            self.apply({"order": book.intent_id, **spec}, book=book)

    def _open_orders(self, session: Session, all_clients: bool) -> None:
        self.requests.append(("reqAllOpenOrders" if all_clients else "reqOpenOrders",))
        for book in self.orders:
            if book.done or (not all_clients and book.client_id != session.client_id):
                continue
            session.send(wire.open_order(book.contract, book.wire(), book.status))
            session.send(self._status_fields(book))
        session.send(wire.open_order_end())

    def _completed_orders(self, session: Session, api_only: bool) -> None:
        self.requests.append(("reqCompletedOrders",))
        for book in self.orders:
            if book.done and book.day == self.day and not (api_only and book.client_id == 0):
                status = book.completed_status or book.status
                session.send(wire.completed_order(book.contract, book.wire(), book.status, float(book.filled), book.completed_time, status))
        session.send(wire.completed_orders_end())

    def _visible_fills(self, session: Session) -> list[tuple[BrokerOrder, Fill]]:
        master = session.client_id == self.master_client_id
        return [
            (book, fill)
            for book in self.orders
            for fill in book.fills.values()
            if fill.day == self.day and (master or book.client_id == session.client_id)
        ]

    def _executions(self, session: Session, req_id: int, flt: wire.ExecFilter) -> None:
        self.requests.append(("reqExecutions", req_id, flt))
        for book, fill in self._visible_fills(session):
            e = fill.execution
            if flt.client_id and book.client_id != flt.client_id:
                continue
            if flt.account and e.account != flt.account:
                continue
            if flt.since is not None and e.time < flt.since:
                continue
            if flt.symbol and book.contract.symbol != flt.symbol:
                continue
            if flt.side and e.side != flt.side:
                continue
            session.send(wire.exec_details(req_id, book.contract, e))
            if fill.commission is not None:
                session.send(wire.commission_report(e.exec_id, fill.commission))
        session.send(wire.exec_details_end(req_id))

    def positions(self) -> dict[str, int]:
        """Signed shares per symbol: what IB holds (seeded positions and every execution ever)."""
        held: dict[str, float] = dict(self.seed_positions)
        for book in self.orders:
            sign = 1 if book.action == "BUY" else -1
            held[book.contract.symbol] = held.get(book.contract.symbol, 0) + sign * book.filled
        return {k: int(v) for k, v in held.items() if v}

    def _positions(self, session: Session) -> None:
        self.requests.append(("reqPositions",))
        for symbol, quantity in sorted(self.positions().items()):
            session.send(wire.position(self.account, self.contract(symbol), float(quantity), self.prices.get(symbol, 100.0)))
        session.send(wire.position_end())

    def contract(self, symbol: str, primary_exchange: str = "") -> WireContract:
        con_id = self.con_ids.setdefault(symbol, 265_598 + len(self.con_ids))
        return WireContract(con_id, symbol, primary_exchange or "NASDAQ")

    def _contract_details(self, session: Session, req_id: int, asked: wire.ContractFields) -> None:
        self.requests.append(("reqContractDetails", asked.symbol))
        if asked.symbol.startswith("ZZ"):  # no such stock
            session.send(wire.error(req_id, 200, "No security definition has been found for the request"))
            return
        session.send(wire.contract_details(req_id, self.contract(asked.symbol), 0.01, US_STOCK_RULE))
        session.send(wire.contract_details_end(req_id))

    def _market_data(self, session: Session, req_id: int, asked: wire.ContractFields, snapshot: bool) -> None:
        self.requests.append(("reqMktData", asked.symbol, req_id))
        session.market_data[req_id] = asked.symbol
        if snapshot:
            price = self.prices.get(asked.symbol)
            if price is not None:
                session.send(wire.tick_price(req_id, 4, price))  # last
                session.send(wire.tick_price(req_id, 9, price))  # close
            session.send(wire.tick_snapshot_end(req_id))

    # ----- the broker's book --------------------------------------------------------------------

    def order(self, intent_id: str) -> BrokerOrder:
        matches = [o for o in self.orders if o.intent_id == intent_id]
        if not matches:
            raise KeyError(f"the fake broker has no order {intent_id}")
        return matches[-1]

    def find(self, client_id: int, order_id: int) -> BrokerOrder | None:
        return next((o for o in reversed(self.orders) if o.client_id == client_id and o.order_id == order_id), None)

    def add_order(
        self,
        intent_id: str,
        symbol: str,
        side: str,
        quantity: int,
        limit_price: float | None = None,
        *,
        status: str = "Submitted",
        client_id: int = 1,
        order_id: int = 1,
        perm_id: int | None = None,
        account: str = "desk1",
        order_ref: str | None = None,
        day_offset: int = 0,
    ) -> BrokerOrder:
        """An order the broker already has (placed before the scenario starts). Its orderRef is the
        rig's (`rig_order_ref(account, intent_id)`) unless `order_ref` says otherwise."""
        book = BrokerOrder(
            order_ref=order_ref if order_ref is not None else rig_order_ref(account, intent_id),
            order_id=order_id,
            client_id=client_id,
            perm_id=perm_id or next(self._perm_ids),
            contract=self.contract(symbol),
            action=side,
            quantity=quantity,
            order_type="LMT" if limit_price is not None else "MKT",
            lmt_price=limit_price,
            tif="DAY",
            account=self.account,
            day=self.day + day_offset,
            status=status,
        )
        self.max_order_id[client_id] = max(self.max_order_id.get(client_id, 0), order_id)
        self.orders.append(book)
        return book

    # ----- the day and the link ------------------------------------------------------------------

    def close_day(self) -> None:
        """The session closes: IB cancels every working DAY order (orderStatus Cancelled)."""
        for book in self.orders:
            if not book.done and book.tif == "DAY":
                book.completed_status = "Cancelled by System: DAY order expired"
                self.apply({"cb": "orderStatus", "status": "Cancelled"}, book=book)

    def next_day(self) -> None:
        """IB's nightly restart: a new day; the old day's completed orders and executions are no
        longer served (reqCompletedOrders / reqExecutions), positions keep them."""
        self.close_day()
        self.day += 1
        self.now = datetime.fromordinal(self.day).replace(hour=13, minute=30, tzinfo=UTC)

    def link_lost(self, code: int = 1100) -> None:
        self.link_down = code
        self._broadcast(wire.error(-1, code, LINK_TEXT[code]))

    def link_restored(self, code: int = 1102) -> None:
        self.link_down = None
        self._broadcast(wire.error(-1, code, LINK_TEXT[code]))

    def say(self, req_id: int, code: int, message: str) -> None:
        """An error / notice to every connected client (reqId -1: about the connection)."""
        self._broadcast(wire.error(req_id, code, message))

    # ----- scripted callbacks --------------------------------------------------------------------

    def _status_fields(
        self, book: BrokerOrder, status: str | None = None, filled: float | None = None, remaining: float | None = None, why_held: str | None = None
    ) -> list[object]:
        filled = float(book.filled) if filled is None else float(filled)
        remaining = float(book.quantity) - filled if remaining is None else float(remaining)
        fills = [f.execution for f in book.fills.values()]
        last = fills[-1].price if fills else 0.0
        avg = (sum(e.shares * e.price for e in fills) / book.filled) if book.filled else 0.0
        return wire.order_status(
            book.order_id,
            status or book.status,
            filled,
            remaining,
            avg,
            book.perm_id,
            last,
            book.client_id,
            book.why_held if why_held is None else why_held,
        )

    def _send_status(self, book: BrokerOrder, **kw: Any) -> None:
        self._tell(book, self._status_fields(book, **kw))

    def _send_open_order(self, book: BrokerOrder, status: str | None = None) -> None:
        self._tell(book, wire.open_order(book.contract, book.wire(), status or book.status))

    def next_exec_id(self, book: BrokerOrder) -> str:
        return f"{book.perm_id:08x}.{next(self._exec_seq):08x}.01.01"

    def apply(self, spec: dict, book: BrokerOrder | None = None, deliver: bool = True) -> str | None:
        """Change the broker's book as the spec says and (when `deliver`) tell the listeners."""
        kind = spec["cb"]
        if book is None and spec.get("order"):
            book = self.order(spec["order"])
        tell: Callable[[list[object]], None] = (lambda fields: self._tell(book, fields)) if (deliver and book is not None) else (lambda fields: None)
        if kind == "openOrder":
            assert book is not None
            book.status = spec.get("status", book.status)
            tell(wire.open_order(book.contract, book.wire(), book.status))
        elif kind == "orderStatus":
            assert book is not None
            book.status = spec.get("status", book.status)
            if "whyHeld" in spec:
                book.why_held = spec["whyHeld"]
            if book.done and not book.completed_time:
                book.completed_time = wire.ib_time(self.now)
            tell(self._status_fields(book, spec.get("status"), spec.get("filled"), spec.get("remaining"), spec.get("whyHeld")))
        elif kind == "execDetails":
            assert book is not None
            self.now += timedelta(seconds=1)
            exec_id = spec.get("exec_id") or self.next_exec_id(book)
            shares = float(spec["shares"])
            price = float(spec["price"])
            base = exec_base(exec_id)
            prior = book.fills.get(base)
            cum = book.filled - (prior.execution.shares if prior else 0) + shares
            execution = WireExecution(
                exec_id=exec_id,
                time=self.now,
                account=book.account,
                exchange=spec.get("exchange", "ISLAND"),
                side="BOT" if book.action == "BUY" else "SLD",
                shares=shares,
                price=price,
                perm_id=book.perm_id,
                client_id=book.client_id,
                order_id=book.order_id,
                cum_qty=float(cum),
                avg_price=price,
                order_ref=book.order_ref,
            )
            book.fills[base] = Fill(execution, self.day, prior.commission if prior else None)  # a correction replaces its earlier version
            self.prices[book.contract.symbol] = price
            tell(wire.exec_details(int(spec.get("reqId", -1)), book.contract, execution))
            return exec_id
        elif kind == "commissionReport":
            exec_id = spec["exec_id"]
            commission = float(spec.get("commission", 1.0))
            owner = next((b for b in self.orders for f in b.fills.values() if f.execution.exec_id == exec_id), None)
            if owner is not None:
                owner.fills[exec_base(exec_id)].commission = commission
                if deliver:
                    self._tell(owner, wire.commission_report(exec_id, commission))
        elif kind == "error":
            message = spec.get("message", "")
            if book is None:
                if deliver:
                    self._broadcast(wire.error(-1, int(spec["code"]), message))
            else:
                # an error about an order goes to the client that placed it (its orderId space)
                for session in self.sessions:
                    if deliver and session.ready and session.client_id == book.client_id:
                        session.send(wire.error(book.order_id, int(spec["code"]), message))
        elif kind == "fill":
            assert book is not None
            exec_id = self.apply(
                {
                    "cb": "execDetails",
                    "shares": spec["shares"],
                    "price": spec["price"],
                    **({"exec_id": spec["exec_id"]} if "exec_id" in spec else {}),
                },
                book,
                deliver,
            )
            status = "Filled" if book.filled >= book.quantity else book.status if book.status == "PendingCancel" else "Submitted"
            self.apply({"cb": "orderStatus", "status": status}, book, deliver)
            self.apply({"cb": "commissionReport", "exec_id": exec_id, "commission": spec.get("commission", 1.0)}, book, deliver)
        elif kind == "cancelled":
            assert book is not None
            book.completed_status = spec.get("message", "Cancelled")
            self.apply({"cb": "orderStatus", "status": "Cancelled"}, book, deliver)
            self.apply({"cb": "error", "code": 202, "message": "Order Canceled - reason:"}, book, deliver)
        else:
            raise ValueError(f"unknown fake TWS callback {kind!r}")
        return None
