"""The simulated exchange where the market data is: live orders in, executions and compact views
out (issue 24). Nothing raw — no quote, no print — leaves this activity.

The account's market part calls it as a local activity (workflows/account/market.py): once per
risk cycle for the views of its held symbols and its live orders, once per arrival at the
pre-trade verdict (the one order, as of its arrival), and for the view of a symbol pre-trade has
not seen yet:

    result = exchange_step(ExchangeRequest(feed, universe, session, rule, as_of, since, cycle,
                                           symbols=held, orders=[ExchangeOrder(order, arrived_at, resting)…]))
    result.views      {symbol: CompactView}     one per symbol asked for (`result.market_views()`:
                                                 the same as `MarketView`s)
    result.orders     [OrderOutcome]            the orders the call touched: their events
                                                 (ACCEPTED/REJECTED, fills) and queue place

Per order (`domain/matching.py`): if it has not met the market yet (`resting` None) its arrival
runs first — the venue's collar around the fresh reference as of the arrival, the
acknowledgement, the take against the L1 as of `arrived_at`, its place in the queue — then the
book-execution prints after max(`since`, `arrived_at`) up to `as_of` work off its queue and fill
it, and an L1 at `as_of` that has crossed it fills it at its limit (a MARKET order takes that L1's
touch). Execution ids: `<intent>/A` the arrival's take, `<intent>/C<cycle>` the window's fill
(one, at the limit). Same request ⇒ same result (no randomness, no clock).

Bounds of what a call records in the account's history: one `CompactView` per symbol asked for
(~0.3 KB in JSON), and per order touched at most three events (~0.25 KB each: the acknowledgement
or refusal, the arrival's take, the window's fill) and its queue place.
Nothing grows with the number of prints: AAPL's 2,378 prints in the minute to 16:29 at scale 1.0
cost the same bytes as one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel
from temporalio import activity

from domain.enums import OrderType
from domain.execution import ExecutionEvent
from domain.marketdata import L1, FeedSource, FeedSpec, MarketDataRule, MarketView, MarkSource
from domain.matching import Match, Resting, arrive, crossed_by, take, trade_prints
from domain.rules import Session, Universe
from marketdata.feed import DayFeed, open_day_feed
from venues.sim import model as venue
from venues.sim.model import SimOrder


class ExchangeOrder(BaseModel):
    """One live order at the simulated exchange: the venue's view of it (as for the probability
    model), its arrival (exchange time) and its place in the queue (None: it has not met the
    market yet — its arrival runs in this call)."""

    order: SimOrder
    arrived_at: AwareDatetime
    resting: Resting | None = None


class ExchangeRequest(BaseModel):
    feed: FeedSpec
    universe: Universe
    session: Session
    rule: MarketDataRule
    as_of: AwareDatetime  # the window's end (the cycle's exchange time, or the arrival's)
    since: AwareDatetime | None = None  # the window's start: the previous call's `as_of` (None: each order's arrival)
    cycle: int = 0  # names the window's executions
    symbols: list[str] = []  # the views wanted (the account's held symbols)
    orders: list[ExchangeOrder] = []


class OrderOutcome(BaseModel):
    intent_id: str
    events: list[ExecutionEvent] = []
    resting: Resting | None = None  # its place after the call (keep it for the next call)


class CompactView(BaseModel):
    """A `MarketView` without what the result says once (symbol, time, source) or what its ages
    give back (the data's times): about half the bytes. `ExchangeResult.market_views()` restores them."""

    bid: float | None = None
    ask: float | None = None
    bid_size: int = 0
    ask_size: int = 0
    l1_age: float | None = None
    truth_tick: float | None = None
    print_age: float | None = None
    grpan: float | None = None
    concentration: float | None = None
    grpan_prints: int = 0
    mark: float
    mark_source: MarkSource
    mark_age: float | None = None
    stale: bool = False
    clamped: bool = False

    @classmethod
    def of(cls, v: MarketView) -> CompactView:
        return cls(
            bid=v.bid, ask=v.ask, bid_size=v.l1.bid_size if v.l1 else 0, ask_size=v.l1.ask_size if v.l1 else 0,
            l1_age=v.l1_age_seconds, truth_tick=v.truth_tick, print_age=v.print_age_seconds, grpan=v.grpan,
            concentration=v.concentration, grpan_prints=v.grpan_prints, mark=v.mark, mark_source=v.mark_source,
            mark_age=v.mark_age_seconds, stale=v.mark_stale, clamped=v.mark_clamped,
        )  # fmt: skip

    def view(self, symbol: str, as_of: datetime, source: FeedSource) -> MarketView:
        def then(age: float | None) -> datetime | None:
            return None if age is None else as_of - timedelta(seconds=age)

        l1 = None
        if self.bid is not None and self.ask is not None:
            l1 = L1(symbol=symbol, bid=self.bid, ask=self.ask, bid_size=self.bid_size, ask_size=self.ask_size, time=then(self.l1_age))
        return MarketView(
            symbol=symbol, as_of=as_of, source=source, l1=l1, truth_tick=self.truth_tick, truth_tick_time=then(self.print_age),
            grpan=self.grpan, concentration=self.concentration, grpan_prints=self.grpan_prints,
            print_age_seconds=self.print_age, l1_age_seconds=self.l1_age, mark=self.mark, mark_source=self.mark_source,
            mark_age_seconds=self.mark_age, mark_stale=self.stale, mark_clamped=self.clamped,
        )  # fmt: skip


class ExchangeResult(BaseModel):
    as_of: AwareDatetime
    source: FeedSource
    views: dict[str, CompactView] = {}  # symbol → its view as of `as_of`
    orders: list[OrderOutcome] = []  # only the orders the call touched, in request order

    def market_views(self) -> dict[str, MarketView]:
        return {symbol: v.view(symbol, self.as_of, self.source) for symbol, v in self.views.items()}


@activity.defn
def exchange_step(request: ExchangeRequest) -> ExchangeResult:
    """Sync (a thread): the first call for a day builds or loads it, about a second."""
    feed = open_day_feed(request.feed, request.universe, request.session, request.rule)
    return step(feed, request)


def step(feed: DayFeed, request: ExchangeRequest) -> ExchangeResult:
    """The activity's work on an open feed (tests and the bench call it directly)."""
    known = [s for s in dict.fromkeys(request.symbols) if s in request.universe.by_symbol]
    snap = feed.snapshot(known, request.as_of)
    outcomes = []
    for entry in request.orders:
        outcome = _match(feed, entry, request)
        if outcome.events or outcome.resting != entry.resting:
            outcomes.append(outcome)
    return ExchangeResult(as_of=request.as_of, source=feed.source, views={s: CompactView.of(snap[s]) for s in known}, orders=outcomes)


def _match(feed: DayFeed, entry: ExchangeOrder, request: ExchangeRequest) -> OrderOutcome:
    order, arrived = entry.order, entry.arrived_at
    intent = order.intent
    limit = intent.limit_price if intent.order_type is OrderType.LIMIT else None
    cum, remaining = order.cum_qty, order.leaves
    events: list[ExecutionEvent] = []
    resting = entry.resting

    def filled(tag: str, found: Match) -> None:
        nonlocal cum, remaining
        if found.quantity and found.price is not None:
            cum, remaining = cum + found.quantity, remaining - found.quantity
            events.append(venue.fill_event(order, tag, cum, found.quantity, found.price, found.detail))

    if resting is None:
        at_arrival = feed.snapshot([intent.symbol], arrived)[intent.symbol] if limit is not None else None
        if refusal := venue.venue_collar(order, at_arrival):
            return OrderOutcome(intent_id=intent.intent_id, events=[venue.reject_event(order, refusal)])
        events.append(venue.ack_event(order))
        met = arrive(intent.side, limit, remaining, order.lot_size, feed.l1_at(intent.symbol, arrived))
        filled(venue.ARRIVAL, met.take)
        resting = met.resting or Resting()
    tag = venue.cycle_tag(request.cycle)
    start: datetime = max(request.since or arrived, arrived)
    if remaining > 0 and start < request.as_of:
        now = feed.l1_at(intent.symbol, request.as_of)
        if limit is None:
            filled(tag, take(intent.side, None, remaining, order.lot_size, now))
        else:
            prices, sizes = feed.book_prints(intent.symbol, start, request.as_of)
            traded = trade_prints(intent.side, limit, remaining, order.lot_size, resting, prices, sizes)
            resting = traded.resting
            crossed = crossed_by(intent.side, limit, remaining - traded.match.quantity, order.lot_size, now)
            filled(tag, _at_limit(traded.match, crossed))
    return OrderOutcome(intent_id=intent.intent_id, events=events, resting=resting)


def _at_limit(traded: Match, crossed: Match) -> Match:
    """The window's two passive fills — prints, then the quote's cross — as one, at the limit."""
    if not crossed.quantity:
        return traded
    if not traded.quantity:
        return crossed
    return traded.model_copy(update={"quantity": traded.quantity + crossed.quantity, "detail": f"{traded.detail}; {crossed.detail}"})


EXCHANGE_ACTIVITIES = [exchange_step]
