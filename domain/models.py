"""Account state and order models shared by the core, the workflows and the activities."""

from __future__ import annotations

from typing import Any

from domain.base import Record
from domain.enums import Bucket, IntentKind, OrderType, PriceRule, RiskMode, Side

PositionKey = tuple[str, Bucket]  # in memory; a book carried as JSON is keyed by `position_key`
OLD_BOOK_SEPARATOR = "|"  # the ledger's keys before issue 21 ("AAPL|LT"), still in carried state


def position_key(symbol: str, bucket: Bucket) -> str:
    """A book's key: "AAPL/LT" (symbols have no "/"), a string so the book survives JSON."""
    return f"{symbol}/{bucket.value}"


def book_keys(book: Any) -> Any:
    """A carried book (a dict by position key) with the ledger's old "AAPL|LT" keys read as
    "AAPL/LT" (symbols hold neither character); anything else as it is, for the model to judge."""
    if isinstance(book, dict):
        return {k.replace(OLD_BOOK_SEPARATOR, "/") if isinstance(k, str) else k: v for k, v in book.items()}
    return book


class Position(Record):
    symbol: str
    bucket: Bucket
    quantity: int  # signed: long > 0, short < 0

    @property
    def key(self) -> PositionKey:
        return (self.symbol, self.bucket)


class Quote(Record):
    """A symbol's market: the truth tick (fair last trade) inside bid/ask."""

    truth_tick: float
    bid: float
    ask: float


class OpenOrder(Record):
    """An order's footprint on the account while it is open: what potential exposure sees."""

    intent_id: str
    symbol: str
    bucket: Bucket
    side: Side
    remaining: int
    kind: IntentKind = IntentKind.NEW
    reduce_only: bool = False
    limit_price: float | None = None

    @property
    def key(self) -> PositionKey:
        return (self.symbol, self.bucket)


class Intent(Record):
    """A validated order intent (after pre-trade parsing of what a user sent)."""

    intent_id: str
    account: str
    symbol: str
    bucket: Bucket
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LIMIT
    limit_price: float | None = None
    kind: IntentKind = IntentKind.NEW
    reduce_only: bool = False
    price_rule: PriceRule = PriceRule.GIVEN
    issued_in_mode: RiskMode = RiskMode.NORMAL
    replaces: str | None = None
    # The desk says an identical order inside the duplicative-order window is intended.
    intended_duplicate: bool = False

    @property
    def key(self) -> PositionKey:
        return (self.symbol, self.bucket)

    def summary(self) -> str:
        price = f"@ {self.limit_price:.2f} LIMIT" if self.order_type is OrderType.LIMIT else "MARKET"
        return f"{self.side.value} {self.quantity} {self.symbol} {price} — {self.kind.value}"


class Fill(Record):
    fill_id: str  # the venue's execution id: the simulated venue's "<intent_id>/<tag>", IB's execId
    intent_id: str
    symbol: str
    bucket: Bucket
    side: Side
    quantity: int
    price: float
    commission: float | None = None  # what the broker reported it cost (costs and net P&L)
    corrects: str | None = None  # the fill this one replaces (a broker's correction of shares or price)

    @property
    def signed_quantity(self) -> int:
        return self.quantity * self.side.sign
