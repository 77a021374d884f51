"""The TWS API socket protocol, server side: framing, the handshake, and the messages the fake TWS
sends and reads — field by field in the order ib_async 2.1.0's Decoder (decoder.py) and Client
(client.py) use for the negotiated server version.

Framing: every message is a 4-byte big-endian length and fields each ended by NUL. The client opens
with the raw bytes `API\\0` and one framed message `v<min>..<max>[ options]`; the server answers
one message `<version>\\0<connection time>\\0` and, after the client's startApi, nextValidId and
managedAccounts. Server version 178 (the client's MaxClientVersion): openOrder / completedOrder
without faProfile (≥ 177), execDetails with pendingPriceRevision (≥ 178), error with its
advancedOrderRejectJson (≥ 166), cancelOrder with manualOrderCancelTime (≥ 169)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
SERVER_VERSION = 178
HANDSHAKE_PREFIX = b"API\0"


class IN:
    """Message ids the server receives (client.py)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_MARKET_RULE = 91
    REQ_COMPLETED_ORDERS = 99


def field(value: object) -> str:
    """One field as ib_async's Client.send formats it (unset numbers are empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value == UNSET_DOUBLE:
            return ""
        return "Infinite" if value == math.inf else str(value)
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(value)
    return str(value)


def frame(fields: Iterable[object]) -> bytes:
    body = "".join(field(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def split_frames(buffer: bytes) -> tuple[list[list[str]], bytes]:
    """Complete messages in `buffer` (as field lists) and the incomplete rest."""
    messages = []
    while len(buffer) >= 4:
        end = 4 + struct.unpack(">I", buffer[:4])[0]
        if len(buffer) < end:
            break
        text = buffer[4:end].decode(errors="backslashreplace")
        buffer = buffer[end:]
        fields = text.split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        messages.append(fields)
    return messages, buffer


def negotiate(hello: str, server_max: int = SERVER_VERSION) -> int | None:
    """`v157..178[ +options]` → the version both speak, None when there is none."""
    spec = hello.split(" ", 1)[0].lstrip("v")
    low, _, high = spec.partition("..")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        return None
    version = min(hi, server_max)
    return version if version >= lo else None


def ib_time(moment: datetime) -> str:
    """`20250602 13:30:01 UTC`: what util.parseIBDatetime reads with a time zone."""
    return moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def parse_filter_time(text: str) -> datetime | None:
    """ExecutionFilter.time: `yyyymmdd-hh:mm:ss` (UTC) or `yyyymmdd hh:mm:ss` (UTC here)."""
    text = text.strip()
    if not text:
        return None
    head = text[:17].replace("-", " ", 1) if len(text) > 8 and text[8] == "-" else text[:17]
    return datetime.strptime(head, "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)


# ----- what the server reads ---------------------------------------------------------------------


@dataclass
class ContractFields:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str


def contract_at(fields: list[str], start: int) -> ContractFields:
    """The 12 contract fields Client.send writes for a Contract, from `start`."""
    f = fields[start : start + 12]
    return ContractFields(int(f[0] or 0), f[1], f[2], f[7], f[8], f[9])


@dataclass
class PlacedOrder:
    """The fields of a placeOrder the fake needs (client.py placeOrder, in order)."""

    order_id: int
    contract: ContractFields
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    outside_rth: bool

    @classmethod
    def read(cls, fields: list[str]) -> PlacedOrder:
        # [3, orderId, contract×12, secIdType, secId, action, totalQuantity, orderType, lmtPrice,
        #  auxPrice, tif, ocaGroup, account, openClose, origin, orderRef, transmit, parentId,
        #  blockOrder, sweepToFill, displaySize, triggerMethod, outsideRth, hidden, …]
        return cls(
            order_id=int(fields[1]),
            contract=contract_at(fields, 2),
            action=fields[16],
            total_quantity=float(fields[17] or 0),
            order_type=fields[18],
            lmt_price=float(fields[19]) if fields[19] else None,
            tif=fields[21],
            account=fields[23],
            order_ref=fields[26],
            transmit=fields[27] == "1",
            outside_rth=fields[33] == "1",
        )


@dataclass
class ExecFilter:
    client_id: int
    account: str
    since: datetime | None
    symbol: str
    sec_type: str
    exchange: str
    side: str

    @classmethod
    def read(cls, fields: list[str]) -> tuple[int, ExecFilter]:
        # [7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side]
        return int(fields[2]), cls(int(fields[3] or 0), fields[4], parse_filter_time(fields[5]), fields[6], fields[7], fields[8], fields[9])


# ----- what the server sends ---------------------------------------------------------------------


@dataclass
class WireContract:
    con_id: int
    symbol: str
    primary_exchange: str = "NASDAQ"
    exchange: str = "SMART"
    currency: str = "USD"
    sec_type: str = "STK"

    def short(self) -> list[object]:
        """conId … tradingClass as openOrder / completedOrder / execDetails / position carry it
        (no primaryExchange; `exchange` where the decoder reads it)."""
        return [self.con_id, self.symbol, self.sec_type, "", 0.0, "", "", self.exchange, self.currency, self.symbol, "NMS"]


@dataclass
class WireOrder:
    order_id: int
    client_id: int
    perm_id: int
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    account: str
    order_ref: str
    outside_rth: bool = False


def _lmt(order: WireOrder) -> float:
    return order.lmt_price if order.lmt_price is not None else UNSET_DOUBLE


def next_valid_id(order_id: int) -> list[object]:
    return [9, 1, order_id]


def managed_accounts(accounts: list[str]) -> list[object]:
    return [15, 1, ",".join(accounts)]


def error(req_id: int, code: int, message: str) -> list[object]:
    return [4, 2, req_id, code, message, ""]


def order_status(
    order_id: int,
    status: str,
    filled: float,
    remaining: float,
    avg_price: float,
    perm_id: int,
    last_price: float,
    client_id: int,
    why_held: str = "",
) -> list[object]:
    return [3, order_id, status, filled, remaining, avg_price, perm_id, 0, last_price, client_id, why_held, 0.0]


def open_order(contract: WireContract, order: WireOrder, status: str, warning: str = "") -> list[object]:
    """decoder.openOrder at server version ≥ 177 (no faProfile), ≥ 170 (the PEG fields)."""
    c = contract
    o = order
    return [
        5,
        o.order_id,
        *c.short(),
        o.action,
        o.total_quantity,
        o.order_type,
        _lmt(o),
        UNSET_DOUBLE,  # auxPrice
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin: customer
        o.order_ref,
        o.client_id,
        o.perm_id,
        o.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (deprecated)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        UNSET_DOUBLE,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        UNSET_DOUBLE,  # startingPrice
        UNSET_DOUBLE,  # stockRefPrice
        UNSET_DOUBLE,  # delta
        UNSET_DOUBLE,  # stockRangeLower
        UNSET_DOUBLE,  # stockRangeUpper
        0,  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER,  # minQty
        0,  # ocaType
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        UNSET_DOUBLE,  # nbboPriceCap
        0,  # parentId
        0,  # triggerMethod
        UNSET_DOUBLE,  # volatility
        UNSET_INTEGER,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral block)
        UNSET_DOUBLE,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        UNSET_INTEGER,  # referencePriceType
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # trailingPercent
        UNSET_DOUBLE,  # basisPoints
        UNSET_INTEGER,  # basisPointsType
        "",  # comboLegsDescrip
        0,  # combo legs
        0,  # order combo legs
        0,  # smart combo routing params
        UNSET_INTEGER,  # scaleInitLevelSize
        UNSET_INTEGER,  # scaleSubsLevelSize
        UNSET_DOUBLE,  # scalePriceIncrement (unset: no scale block)
        "",  # hedgeType
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # delta-neutral contract present
        "",  # algoStrategy
        False,  # solicited
        False,  # whatIf
        status,
        "",  # initMarginBefore
        "",  # maintMarginBefore
        "",  # equityWithLoanBefore
        "",  # initMarginChange
        "",  # maintMarginChange
        "",  # equityWithLoanChange
        "",  # initMarginAfter
        "",  # maintMarginAfter
        "",  # equityWithLoanAfter
        UNSET_DOUBLE,  # commission
        UNSET_DOUBLE,  # minCommission
        UNSET_DOUBLE,  # maxCommission
        "",  # commissionCurrency
        warning,  # warningText
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions
        "",  # adjustedOrderType
        UNSET_DOUBLE,  # triggerPrice
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # lmtPriceOffset
        UNSET_DOUBLE,  # adjustedStopPrice
        UNSET_DOUBLE,  # adjustedStopLimitPrice
        UNSET_DOUBLE,  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier.name
        "",  # softDollarTier.val
        "",  # softDollarTier.displayName
        UNSET_DOUBLE,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
        UNSET_INTEGER,  # duration (≥ 159)
        UNSET_INTEGER,  # postToAts (≥ 160)
        False,  # autoCancelParent (≥ 162)
        UNSET_INTEGER,  # minTradeQty (≥ 170)
        UNSET_INTEGER,  # minCompeteSize
        UNSET_DOUBLE,  # competeAgainstBestOffset
        UNSET_DOUBLE,  # midOffsetAtWhole
        UNSET_DOUBLE,  # midOffsetAtHalf
    ]


def completed_order(contract: WireContract, order: WireOrder, status: str, filled: float, completed_time: str, completed_status: str) -> list[object]:
    """decoder.completedOrder at server version ≥ 177. It carries no orderId and no clientId:
    a completed order is known by its permId (and orderRef)."""
    c = contract
    o = order
    return [
        101,
        *c.short(),
        o.action,
        o.total_quantity,
        o.order_type,
        _lmt(o),
        UNSET_DOUBLE,  # auxPrice
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin
        o.order_ref,
        o.perm_id,
        o.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        UNSET_DOUBLE,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        UNSET_DOUBLE,  # startingPrice
        UNSET_DOUBLE,  # stockRefPrice
        UNSET_DOUBLE,  # delta
        UNSET_DOUBLE,  # stockRangeLower
        UNSET_DOUBLE,  # stockRangeUpper
        0,  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER,  # minQty
        0,  # ocaType
        0,  # triggerMethod
        UNSET_DOUBLE,  # volatility
        UNSET_INTEGER,  # volatilityType
        "",  # deltaNeutralOrderType
        UNSET_DOUBLE,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        UNSET_INTEGER,  # referencePriceType
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # trailingPercent
        "",  # comboLegsDescrip
        0,  # combo legs
        0,  # order combo legs
        0,  # smart combo routing params
        UNSET_INTEGER,  # scaleInitLevelSize
        UNSET_INTEGER,  # scaleSubsLevelSize
        UNSET_DOUBLE,  # scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # delta-neutral contract present
        "",  # algoStrategy
        False,  # solicited
        status,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # lmtPriceOffset
        UNSET_DOUBLE,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        filled,  # filledQuantity
        UNSET_INTEGER,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        UNSET_INTEGER,  # parentPermId
        completed_time,
        completed_status,
        UNSET_INTEGER,  # minTradeQty (≥ 170)
        UNSET_INTEGER,  # minCompeteSize
        UNSET_DOUBLE,  # competeAgainstBestOffset
        UNSET_DOUBLE,  # midOffsetAtWhole
        UNSET_DOUBLE,  # midOffsetAtHalf
    ]


@dataclass
class WireExecution:
    exec_id: str
    time: datetime
    account: str
    exchange: str
    side: str  # BOT / SLD
    shares: float
    price: float
    perm_id: int
    client_id: int
    order_id: int
    cum_qty: float
    avg_price: float
    order_ref: str


def exec_details(req_id: int, contract: WireContract, e: WireExecution) -> list[object]:
    """decoder.execDetails (no version field; pendingPriceRevision at ≥ 178)."""
    c = contract
    return [
        11,
        req_id,
        e.order_id,
        c.con_id,
        c.symbol,
        c.sec_type,
        "",  # lastTradeDateOrContractMonth
        0.0,  # strike
        "",  # right
        "",  # multiplier
        e.exchange,
        c.currency,
        c.symbol,  # localSymbol
        "NMS",  # tradingClass
        e.exec_id,
        ib_time(e.time),
        e.account,
        e.exchange,
        e.side,
        e.shares,
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        e.cum_qty,
        e.avg_price,
        e.order_ref,
        "",  # evRule
        UNSET_DOUBLE,  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity: added
        False,  # pendingPriceRevision
    ]


def exec_details_end(req_id: int) -> list[object]:
    return [55, 1, req_id]


def commission_report(exec_id: str, commission: float, currency: str = "USD") -> list[object]:
    return [59, 1, exec_id, commission, currency, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_INTEGER]


def open_order_end() -> list[object]:
    return [53, 1]


def completed_orders_end() -> list[object]:
    return [102]


def position(account: str, contract: WireContract, quantity: float, avg_cost: float) -> list[object]:
    c = contract
    return [61, 3, account, c.con_id, c.symbol, c.sec_type, "", 0.0, "", "", c.exchange, c.currency, c.symbol, "NMS", quantity, avg_cost]


def position_end() -> list[object]:
    return [62, 1]


def contract_details(req_id: int, contract: WireContract, min_tick: float, market_rule_id: int) -> list[object]:
    """decoder.contractDetails at server version ≥ 164 (no version field)."""
    c = contract
    return [
        10,
        req_id,
        c.symbol,
        c.sec_type,
        "",  # lastTradeDateOrContractMonth [+ lastTradeTime, timeZone]
        0.0,  # strike
        "",  # right
        c.exchange,
        c.currency,
        c.symbol,  # localSymbol
        "NMS",  # marketName
        "NMS",  # tradingClass
        c.con_id,
        min_tick,
        "",  # multiplier
        "LMT,MKT",  # orderTypes
        f"SMART,{c.primary_exchange}",  # validExchanges
        1,  # priceMagnifier
        0,  # underConId
        f"{c.symbol} COMMON STOCK",  # longName
        c.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        "US/Eastern",  # timeZoneId
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        UNSET_DOUBLE,  # evMultiplier
        0,  # secIdList
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        f"{market_rule_id},{market_rule_id}",  # marketRuleIds (one per valid exchange)
        "",  # realExpirationDate
        "COMMON",  # stockType
        1.0,  # minSize
        1.0,  # sizeIncrement
        100.0,  # suggestedSizeIncrement
    ]


def contract_details_end(req_id: int) -> list[object]:
    return [52, 1, req_id]


def market_rule(rule_id: int, increments: list[tuple[float, float]]) -> list[object]:
    return [93, rule_id, len(increments), *[v for pair in increments for v in pair]]


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0.0) -> list[object]:
    return [1, 6, req_id, tick_type, price, size, 0]


def tick_snapshot_end(req_id: int) -> list[object]:
    return [57, 1, req_id]


def current_time(moment: datetime) -> list[object]:
    return [49, 1, int(moment.timestamp())]


def account_download_end(account: str) -> list[object]:
    return [54, 1, account]


def connection_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"
