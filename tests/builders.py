"""Small builders for accounts at given exposure levels (pure data, no Temporal)."""

from __future__ import annotations

from config.load import load_config
from domain.enums import Bucket
from domain.exposure import Exposure, compute_exposure
from domain.models import OpenOrder, Position, Quote
from domain.rules import RigConfig

CONFIG: RigConfig = load_config()
EQUITY = 1_000_000.0
PRICE = 100.0


def lt_mm_positions(lt_pct: float, mm_pct: float, equity: float = EQUITY) -> list[Position]:
    """Longs at $100 in lot-1 symbols: AAPL/MSFT share LT, SPY/QQQ share MM_PURE."""
    positions = []
    for symbols, bucket, pct in ((("AAPL", "MSFT"), Bucket.LT, lt_pct), (("SPY", "QQQ"), Bucket.MM_PURE, mm_pct)):
        total = round(pct / 100 * equity / PRICE)
        first = total // 2
        for symbol, qty in zip(symbols, (first, total - first)):
            if qty:
                positions.append(Position(symbol=symbol, bucket=bucket, quantity=qty))
    return positions


def marks_for(positions: list[Position], orders: list[OpenOrder] = ()) -> dict[str, float]:  # type: ignore[assignment]
    return {p.symbol: PRICE for p in positions} | {o.symbol: PRICE for o in orders}


def quotes_for(marks: dict[str, float], spread: float = 0.04) -> dict[str, Quote]:
    return {s: Quote(truth_tick=m, bid=round(m - spread / 2, 2), ask=round(m + spread / 2, 2)) for s, m in marks.items()}


def exposure_of(positions: list[Position], orders: list[OpenOrder] = (), equity: float = EQUITY) -> Exposure:  # type: ignore[assignment]
    orders = list(orders)
    return compute_exposure(equity, positions, orders, marks_for(positions, orders), CONFIG)
