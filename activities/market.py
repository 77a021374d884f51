"""The market-data feed activity: truth tick, bid and ask per symbol.

The default feed is simulated and deterministic (`domain/market.py`): the truth tick is the
latest mark the account holds (injected, or the instrument's reference price). A real feed
would replace this activity; workflows only see its recorded result.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from domain.market import quote_from_mark
from domain.models import Quote


class QuoteRequest(BaseModel):
    marks: dict[str, float]


@activity.defn
async def market_quotes(request: QuoteRequest) -> dict[str, Quote]:
    return {symbol: quote_from_mark(mark) for symbol, mark in request.marks.items()}
