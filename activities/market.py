"""Market data for the risk workflow, as activity results (so replay and digests are stable).

Without a named market, the simulated feed quotes from the account's marks (`domain/market.py`:
truth tick = mark, bid/ask a basis point away). With one — recorded Parquet files or a seeded
generated day (`marketdata/`) — the account calls the simulated exchange where the data is
(`venues/sim/exchange_step.py`: compact views and executions, nothing raw).

`market_snapshot` (views and the raw prints since the last cycle) is what accounts called before
that: kept so that their recorded runs replay (workflow.patched "exchange-step" is false there).
"""

from __future__ import annotations

from temporalio import activity

from domain.market import quote_from_mark
from domain.marketdata import MarketView
from domain.models import Quote
from marketdata.feed import open_feed
from protocol.market import MarketRequest, MarketSnapshot, QuoteRequest


@activity.defn
async def market_quotes(request: QuoteRequest) -> dict[str, Quote]:
    return {symbol: quote_from_mark(mark) for symbol, mark in request.marks.items()}


@activity.defn
def market_snapshot(request: MarketRequest) -> MarketSnapshot:
    """Sync (a thread): the first call for a day builds or loads it, about a second."""
    feed = open_feed(request.feed, request.universe, request.session, request.rule)
    known = [s for s in request.symbols if s in request.universe.by_symbol]
    snap = feed.snapshot(known, request.as_of)
    views = {s: snap[s] for s in known}
    prints = {s: feed.prints_between(s, since, request.as_of) for s, since in request.prints_since.items() if s in views}
    return MarketSnapshot(views=views, prints=prints)


def quote_of(view: MarketView) -> Quote:
    """The account's quote from a view: the mark (fresh truth tick clamped into the bid/ask, else
    a fresh mid, else the last mark flagged stale, else the reference) and the touch."""
    return Quote(
        truth_tick=round(view.mark, 2), bid=view.bid if view.bid is not None else view.mark, ask=view.ask if view.ask is not None else view.mark
    )
