"""A fake TWS behind ib_async: no socket, the real ib_async code paths.

`FakeClient` replaces `ib_async.Client` inside an `IB`: the requests the IB object sends
(placeOrder, cancelOrder, reqAllOpenOrders, reqCompletedOrders, reqExecutions, reqMktData…) are
recorded and answered, and everything TWS would say arrives as calls of ib_async's own `Wrapper`
methods (openOrder, orderStatus, execDetails, commissionReport, error, completedOrder,
connectionClosed via the client's socket-loss path) — queued like bytes on a socket and drained
on the event loop. It is the seam NautilusTrader's IB tests use (a mock EClient that answers
through the EWrapper), one level up: Trade objects, ib_async's events and ib_async's quirks all
run for real.

`FakeTWS` keeps the broker's side of the story — orders with their status, executions,
commissions — so what it answers to reqAllOpenOrders / reqCompletedOrders / reqExecutions after a
reconnect agrees with what happened while the rig was away. Callback specs (dicts, the same in
scenario files and in code):

    {"cb": "openOrder",   "order": "<intent>", "status": "Submitted"}
    {"cb": "orderStatus", "order": "<intent>", "status": "PendingCancel", "filled": 0, "whyHeld": ""}
    {"cb": "execDetails", "order": "<intent>", "shares": 100, "price": 190.0, "exec_id": "…01.01"}
    {"cb": "commissionReport", "exec_id": "…", "commission": 1.0}
    {"cb": "error", "order": "<intent>" | null, "code": 10349, "message": "…"}
    {"cb": "fill", "order": "<intent>", "shares": 40, "price": 190.0}   # execDetails + orderStatus + commissionReport
    {"cb": "cancelled", "order": "<intent>"}                           # orderStatus Cancelled + error 202
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ib_async import IB, CommissionReport, Contract, ContractDetails, Execution, Order, OrderState, Stock
from ib_async.client import Client

DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass
class BrokerOrder:
    intent_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: Contract
    order: Order
    status: str = "PendingSubmit"
    why_held: str = ""
    completed_status: str = ""
    executions: dict[str, Execution] = field(default_factory=dict)  # base exec id → latest version

    @property
    def quantity(self) -> int:
        return int(self.order.totalQuantity)

    @property
    def filled(self) -> int:
        return int(sum(e.shares for e in self.executions.values()))

    @property
    def done(self) -> bool:  # an Inactive order held for a short-sale locate is still open
        return self.status in DONE_STATES and not (self.status == "Inactive" and "locate" in self.why_held.lower())


def exec_base(exec_id: str) -> str:
    head, dot, _ = exec_id.rpartition(".")
    return head if dot and head else exec_id


class FakeClient(Client):
    """ib_async's Client with the socket replaced by a FakeTWS."""

    def __init__(self, wrapper: Any, tws: FakeTWS) -> None:
        super().__init__(wrapper)
        self.tws = tws

    async def connectAsync(self, host: str, port: int, clientId: int, timeout: float | None = 2.0) -> None:
        self.host, self.port, self.clientId = host, int(port), int(clientId)
        self.tws.requests.append(("connect", host, int(port), int(clientId)))
        if not self.tws.up:
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        self.connState = Client.CONNECTED
        self._serverVersion = self.tws.server_version
        self._accounts = [self.tws.account]
        self._reqIdSeq = self.tws.next_valid_id
        self._hasReqId = True
        self._apiReady = True
        self.tws.client = self
        self.wrapper.managedAccounts(self.tws.account)  # sent during the handshake
        self.apiStart.emit()

    def disconnect(self) -> None:
        self.connState = Client.DISCONNECTED
        self.reset()

    def send(self, *fields: Any, makeEmpty: bool = True) -> None:
        self.tws.requests.append(("send", fields))

    # --- requests the rig uses ---
    def placeOrder(self, orderId: int, contract: Contract, order: Order) -> None:
        self.tws.on_place(self, orderId, contract, order)

    def cancelOrder(self, orderId: int, manualCancelOrderTime: str = "") -> None:
        self.tws.on_cancel(self, orderId)

    def reqOpenOrders(self) -> None:
        self.tws.answer_open_orders(self, all_clients=False)

    def reqAllOpenOrders(self) -> None:
        self.tws.answer_open_orders(self, all_clients=True)

    def reqCompletedOrders(self, apiOnly: bool) -> None:
        self.tws.answer_completed_orders(self)

    def reqExecutions(self, reqId: int, execFilter: Any) -> None:
        self.tws.answer_executions(self, reqId, execFilter)

    def reqPositions(self) -> None:
        self.tws.requests.append(("reqPositions",))
        self.tws.send("positionEnd")

    def reqAccountUpdates(self, subscribe: bool, acctCode: str) -> None:
        self.tws.send("accountDownloadEnd", acctCode)

    def reqAccountUpdatesMulti(self, reqId: int, account: str, modelCode: str, ledgerAndNLV: bool) -> None:
        self.tws.send("accountUpdateMultiEnd", reqId)

    def reqContractDetails(self, reqId: int, contract: Contract) -> None:
        self.tws.requests.append(("reqContractDetails", contract.symbol))
        con_id = self.tws.con_ids.setdefault(contract.symbol, 265_598 + len(self.tws.con_ids))
        details = ContractDetails(
            contract=Contract(conId=con_id, symbol=contract.symbol, secType="STK", exchange="SMART", primaryExchange="NASDAQ", currency="USD")
        )
        self.tws.send("contractDetails", reqId, details)
        self.tws.send("contractDetailsEnd", reqId)

    def reqMktData(self, reqId: int, contract: Contract, genericTickList: str, snapshot: bool, regulatorySnapshot: bool, mktDataOptions: Any) -> None:
        self.tws.requests.append(("reqMktData", contract.symbol, reqId))

    def cancelMktData(self, reqId: int) -> None:
        self.tws.requests.append(("cancelMktData", reqId))


class FakeTWS:
    def __init__(
        self,
        account: str = "DU1234567",
        next_valid_id: int = 1,
        server_version: int = 176,
        auto_ack: bool = True,
        auto_cancel: bool = True,
        start: datetime = datetime(2025, 6, 2, 13, 30, tzinfo=UTC),
    ) -> None:
        self.account = account
        self.next_valid_id = next_valid_id
        self.server_version = server_version
        self.auto_ack = auto_ack
        self.auto_cancel = auto_cancel
        self.up = True
        self.client: FakeClient | None = None
        self.orders: list[BrokerOrder] = []
        self.commissions: dict[str, CommissionReport] = {}
        self.con_ids: dict[str, int] = {}
        self.requests: list[tuple] = []
        self.on_place_script: dict[str, list[dict]] = {}
        self.on_cancel_script: dict[str, list[dict]] = {}
        self._queue: deque[tuple[str, tuple]] = deque()
        self._drain_scheduled = False
        self._perm_ids = itertools.count(900_000_001)
        self._exec_seq = itertools.count(1)
        self._now = start

    # ----- wiring -----------------------------------------------------------------------------

    def make_ib(self) -> IB:
        ib = IB()
        fake = FakeClient(ib.wrapper, self)
        fake.apiEnd += ib.disconnectedEvent  # what IB.__init__ wires on its own client
        ib.client = fake
        return ib

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.isReady()

    # ----- the socket -------------------------------------------------------------------------

    def send(self, method: str, *args: Any) -> None:
        """Queue a wrapper call as if its message had arrived from TWS."""
        if not self.connected:
            return
        self._queue.append((method, args))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._queue:
            if not self.connected:
                self._queue.clear()
                return
            method, args = self._queue.popleft()
            wrapper = self.client.wrapper
            wrapper.tcpDataArrived()
            getattr(wrapper, method)(*args)
            wrapper.tcpDataProcessed()

    async def settle(self) -> None:
        for _ in range(10_000):
            if not self._queue and not self._drain_scheduled:
                return
            await asyncio.sleep(0)
        raise RuntimeError("the fake TWS queue does not drain")

    def drop_connection(self, then_down: bool = False) -> None:
        """The socket closes (TWS / IB Gateway restarts): ib_async's own socket-loss path runs."""
        self._queue.clear()
        if then_down:
            self.up = False
        client = self.client
        if client is not None and client.isConnected():
            client._onSocketDisconnected("")

    # ----- the broker's book ------------------------------------------------------------------

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
    ) -> BrokerOrder:
        """An order the broker already has (placed before the scenario starts)."""
        order = Order(
            orderId=order_id,
            clientId=client_id,
            permId=perm_id or next(self._perm_ids),
            action=side,
            totalQuantity=quantity,
            orderType="LMT" if limit_price is not None else "MKT",
            lmtPrice=limit_price if limit_price is not None else 0.0,
            tif="DAY",
            orderRef=intent_id,
            account=self.account,
        )
        book = BrokerOrder(intent_id, order_id, client_id, order.permId, Stock(symbol, "SMART", "USD"), order, status=status)
        self.orders.append(book)
        return book

    def positions(self) -> dict[str, int]:
        """Signed shares per symbol from the broker's executions (corrections counted once)."""
        held: dict[str, int] = {}
        for book in self.orders:
            sign = 1 if book.order.action == "BUY" else -1
            held[book.contract.symbol] = held.get(book.contract.symbol, 0) + sign * book.filled
        return {k: v for k, v in held.items() if v}

    # ----- requests ---------------------------------------------------------------------------

    def on_place(self, client: FakeClient, order_id: int, contract: Contract, order: Order) -> None:
        intent = order.orderRef
        self.requests.append(("placeOrder", intent, order_id))
        existing = self.find(client.clientId, order_id)
        if existing is not None and not existing.done:
            return  # a modify of a working order (the rig never sends one)
        placed = copy.copy(order)
        placed.orderId, placed.clientId, placed.permId = order_id, client.clientId, next(self._perm_ids)
        placed.account = placed.account or self.account
        book = BrokerOrder(intent, order_id, client.clientId, placed.permId, copy.copy(contract), placed)
        script = self.on_place_script.pop(intent, None)
        if script is None or not any(s.get("cb") == "refuse" for s in script):
            self.orders.append(book)
        if script is None:
            script = [{"cb": "openOrder", "status": "Submitted"}, {"cb": "orderStatus", "status": "Submitted"}] if self.auto_ack else []
        for spec in script:
            if spec.get("cb") != "refuse":
                self.apply({"order": intent, **spec}, book=book)

    def on_cancel(self, client: FakeClient, order_id: int) -> None:
        book = self.find(client.clientId, order_id)
        self.requests.append(("cancelOrder", book.intent_id if book else None, order_id))
        if book is None:
            self.send("error", order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.", "")
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

    def answer_open_orders(self, client: FakeClient, all_clients: bool) -> None:
        self.requests.append(("reqAllOpenOrders" if all_clients else "reqOpenOrders",))
        for book in self.orders:
            if book.done or (not all_clients and book.client_id != client.clientId):
                continue
            self._send_open_order(book)
            self._send_status(book)
        self.send("openOrderEnd")

    def answer_completed_orders(self, client: FakeClient) -> None:
        self.requests.append(("reqCompletedOrders",))
        for book in self.orders:
            if book.done:
                order = copy.copy(book.order)
                order.filledQuantity = float(book.filled)
                self.send("completedOrder", copy.copy(book.contract), order, OrderState(status=book.status, completedStatus=book.completed_status))
        self.send("completedOrdersEnd")

    def answer_executions(self, client: FakeClient, req_id: int, execution_filter: Any) -> None:
        self.requests.append(("reqExecutions", req_id))
        for book in self.orders:
            for execution in book.executions.values():
                if execution_filter.acctCode and execution.acctNumber != execution_filter.acctCode:
                    continue
                self.send("execDetails", req_id, copy.copy(book.contract), copy.copy(execution))
                if execution.execId in self.commissions:
                    self.send("commissionReport", copy.copy(self.commissions[execution.execId]))
        self.send("execDetailsEnd", req_id)

    # ----- scripted callbacks -----------------------------------------------------------------

    def _send_open_order(self, book: BrokerOrder, status: str | None = None) -> None:
        order = copy.copy(book.order)
        order.filledQuantity = 0.0  # TWS's openOrder does not keep this current: the rig must not trust it
        self.send("openOrder", book.order_id, copy.copy(book.contract), order, OrderState(status=status or book.status))

    def _send_status(
        self, book: BrokerOrder, status: str | None = None, filled: float | None = None, remaining: float | None = None, why_held: str | None = None
    ) -> None:
        filled = float(book.filled) if filled is None else float(filled)
        remaining = float(book.quantity) - filled if remaining is None else float(remaining)
        last = list(book.executions.values())[-1].price if book.executions else 0.0
        avg = (sum(e.shares * e.price for e in book.executions.values()) / book.filled) if book.filled else 0.0
        self.send(
            "orderStatus",
            book.order_id,
            status or book.status,
            filled,
            remaining,
            avg,
            book.perm_id,
            0,
            last,
            book.client_id,
            book.why_held if why_held is None else why_held,
            0.0,
        )

    def next_exec_id(self, book: BrokerOrder) -> str:
        return f"{book.perm_id:08x}.{next(self._exec_seq):08x}.01.01"

    def apply(self, spec: dict, book: BrokerOrder | None = None, deliver: bool = True) -> str | None:
        """Change the broker's book as the spec says and (when `deliver`) send the callback.
        `{"cb": "refuse"}` in an on-place script: the broker keeps no record of the order."""
        kind = spec["cb"]
        if book is None and spec.get("order"):
            book = self.order(spec["order"])
        send = self.send if deliver else (lambda *a: None)
        if kind == "openOrder":
            if "status" in spec:
                book.status = spec["status"]
            if not deliver:
                return
            self._send_open_order(book, spec.get("status"))
        elif kind == "orderStatus":
            book.status = spec.get("status", book.status)
            if "whyHeld" in spec:
                book.why_held = spec["whyHeld"]
            if deliver:
                self._send_status(book, spec.get("status"), spec.get("filled"), spec.get("remaining"), spec.get("whyHeld"))
        elif kind == "execDetails":
            self._now += timedelta(seconds=1)
            exec_id = spec.get("exec_id") or self.next_exec_id(book)
            shares = float(spec["shares"])
            execution = Execution(
                execId=exec_id,
                time=self._now,
                acctNumber=self.account,
                exchange=spec.get("exchange", "ISLAND"),
                side="BOT" if book.order.action == "BUY" else "SLD",
                shares=shares,
                price=float(spec["price"]),
                permId=book.perm_id,
                clientId=book.client_id,
                orderId=book.order_id,
                orderRef=book.intent_id,
                cumQty=float(book.filled + shares),
                avgPrice=float(spec["price"]),
            )
            book.executions[exec_base(exec_id)] = execution  # a correction replaces its earlier version
            send("execDetails", spec.get("reqId", -1), copy.copy(book.contract), copy.copy(execution))
            return exec_id
        elif kind == "commissionReport":
            report = CommissionReport(execId=spec["exec_id"], commission=float(spec.get("commission", 1.0)), currency="USD")
            self.commissions[report.execId] = report
            send("commissionReport", copy.copy(report))
        elif kind == "error":
            req_id = book.order_id if book is not None else -1
            send("error", req_id, int(spec["code"]), spec.get("message", ""), "")
        elif kind == "fill":
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
            status = "Filled" if book.filled >= book.quantity else book.status if book.status in ("PendingCancel",) else "Submitted"
            self.apply({"cb": "orderStatus", "status": status}, book, deliver)
            self.apply({"cb": "commissionReport", "exec_id": exec_id, "commission": spec.get("commission", 1.0)}, book, deliver)
        elif kind == "cancelled":
            book.completed_status = spec.get("message", "Cancelled")
            self.apply({"cb": "orderStatus", "status": "Cancelled"}, book, deliver)
            self.apply({"cb": "error", "code": 202, "message": "Order Canceled - reason:"}, book, deliver)
        else:
            raise ValueError(f"unknown fake TWS callback {kind!r}")
        return None
