"""US stocks as IB knows them: qualified once (conId, primary exchange, the market rule of price
increments) and cached — in memory and in the gateway's store — and limit prices put on the
contract's tick toward the passive side (a BUY rounds down, a SELL up: never more aggressive than
the desk asked)."""

from __future__ import annotations

import asyncio
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ib_async import IB, Contract, Stock
from pydantic import BaseModel

QUALIFY_TIMEOUT = 15.0
DEFAULT_INCREMENTS = [(0.0, 0.0001), (1.0, 0.01)]  # US equities (Reg NMS sub-penny rule): IB's market rule 26


class UnknownContract(Exception):
    """IB has no US stock of that symbol (SMART, USD)."""


class StockContract(BaseModel):
    symbol: str
    con_id: int
    primary_exchange: str
    min_tick: float
    market_rule_id: int | None = None
    increments: list[tuple[float, float]] = DEFAULT_INCREMENTS  # (low edge, increment), ascending

    def contract(self) -> Contract:
        return Stock(self.symbol, "SMART", "USD", conId=self.con_id, primaryExchange=self.primary_exchange)

    def tick_at(self, price: float) -> Decimal:
        tick = self.increments[0][1] if self.increments else self.min_tick
        for low, increment in self.increments:
            if price >= low:
                tick = increment
        return Decimal(str(tick))

    def passive_price(self, side: str, price: float) -> float:
        """On the tick grid, toward the passive side (BUY down, SELL up)."""
        tick = self.tick_at(price)
        steps = (Decimal(str(price)) / tick).to_integral_value(rounding=ROUND_FLOOR if side == "BUY" else ROUND_CEILING)
        rounded = float(steps * tick)
        if rounded <= 0:  # a BUY below one tick: the smallest price there is
            rounded = float(tick)
        return rounded


class ContractBook:
    def __init__(self, known: dict[str, StockContract] | None = None) -> None:
        self.known: dict[str, StockContract] = dict(known or {})
        self._asking: dict[str, asyncio.Future[StockContract]] = {}

    async def qualify(self, ib: IB, symbol: str) -> tuple[StockContract, bool]:
        """The contract, from the cache or from IB (once); True when it was new."""
        if symbol in self.known:
            return self.known[symbol], False
        if symbol in self._asking:
            return await asyncio.shield(self._asking[symbol]), False
        future: asyncio.Future[StockContract] = asyncio.get_running_loop().create_future()
        self._asking[symbol] = future
        try:
            stock = await self._ask(ib, symbol)
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: a waiter may be gone
            raise
        finally:
            del self._asking[symbol]
        self.known[symbol] = stock
        future.set_result(stock)
        return stock, True

    @staticmethod
    async def _ask(ib: IB, symbol: str) -> StockContract:
        details = await asyncio.wait_for(ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD")), QUALIFY_TIMEOUT)
        stocks = [d for d in details or [] if d.contract is not None and d.contract.secType == "STK"]
        if len(stocks) != 1 or stocks[0].contract is None:
            raise UnknownContract(f"IB knows {len(stocks)} US stocks {symbol} (SMART/USD), not one")
        found = stocks[0]
        contract = found.contract
        assert contract is not None
        rule_ids = [int(r) for r in (found.marketRuleIds or "").split(",") if r.strip().isdigit()]
        increments = DEFAULT_INCREMENTS
        if rule_ids:
            rule = await asyncio.wait_for(ib.reqMarketRuleAsync(rule_ids[0]), QUALIFY_TIMEOUT)
            if rule:
                increments = sorted((float(p.lowEdge), float(p.increment)) for p in rule)
        return StockContract(
            symbol=symbol,
            con_id=contract.conId,
            primary_exchange=contract.primaryExchange or "",
            min_tick=float(found.minTick or 0.01),
            market_rule_id=rule_ids[0] if rule_ids else None,
            increments=increments,
        )
