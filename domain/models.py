"""Account state and order models shared by the core, the workflows and the activities."""

from __future__ import annotations

from domain.base import Record
from domain.enums import Bucket, IntentKind, OrderType, PriceRule, RiskMode, Side

PositionKey = tuple[str, Bucket]


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
