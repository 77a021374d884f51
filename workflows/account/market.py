"""What the account knows of the market: quotes from marks (the simulated feed) or a named market's
views (L1, truth tick, GRPAN, the mark with its source, age and staleness); the stale-data gates,
the collar's reference; and what marks value — exposure and P&L.

With a named market the simulated exchange matches where the data is: each cycle one local
activity (`exchange_step`) returns the held symbols' compact views and the executions of the
live orders since the last cycle, and each arrival is one call as of its own time — nothing raw
enters history (per cycle at most one view per held symbol and three events per order touched).
Runs recorded before that (`workflow.patched(EXCHANGE_STEP)` false: replay sets v1/v2) fetch the
views and the prints since the last cycle (`market_snapshot`) and match in the workflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.market import market_quotes, market_snapshot, quote_of
    from domain.clock import exchange_instant
    from domain.controls import TopOfBook, top_of_book
    from domain.enums import Bucket, RiskMode
    from domain.events import shortcut_symbols
    from domain.execution import ExecutionEvent
    from domain.exposure import Exposure, compute_exposure
    from domain.ledger import Ledger
    from domain.market import quote_from_mark
    from domain.marketdata import FeedSource, FeedSpec, MarketView, Print, hard_derisk_gate, soft_derisk_gate
    from domain.models import Quote
    from domain.pnl import PnlSummary, summarize
    from domain.rules import RigConfig
    from protocol.account_state import MarketState
    from protocol.market import MarketRequest, QuoteRequest
    from protocol.messages import MarkView
    from protocol.parse import first_line
    from venues.sim.exchange import SimExchange
    from venues.sim.exchange_step import ExchangeOrder, ExchangeRequest, ExchangeResult, OrderOutcome, exchange_step
    from venues.sim.model import SimOrder, reject_event
    from workflows.failures import LOCAL_ACTIVITY_FAILED

QUOTE_TIMEOUT = timedelta(seconds=10)
MARKET_TIMEOUT = timedelta(seconds=60)  # the first call for a day builds or loads it
# The report's price path: at most this many points per symbol, and per account (what the account
# carries and returns stays bounded however many symbols it holds). A full path keeps every
# other point: older stretches at half the resolution, the whole day kept.
PRICE_POINTS_PER_SYMBOL = 200
PRICE_POINTS_PER_ACCOUNT = 10_000
EXCHANGE_STEP = "exchange-step"  # the patch: matching where the data is (runs recorded before it replay the old path)
# A market that cannot be read (a broken file, a bug in a reader) is tried this often per call,
# then the account goes on with its last views, every one flagged stale, the outage in the log.
VIEWS_BEFORE_JUDGING = "views-before-judging"  # the patch: pre-trade reads every held symbol's view; no view, no fresh price
MARKET_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


class AccountMarket:
    def __init__(
        self,
        state: MarketState,
        feed: FeedSpec | None,
        config: Callable[[], RigConfig],
        ledger: Ledger,
        exchange: SimExchange | None,
        cycle: Callable[[], int],
    ) -> None:
        self._s = state
        # A MARKS spec names the simulated feed itself: quotes from marks, as with no market.
        self.feed = feed if feed is not None and feed.source is not FeedSource.MARKS else None
        self._config = config
        self._ledger = ledger
        self._exchange = exchange  # None: the account's orders are at a broker (views only)
        self._cycle = cycle
        self._exchange_path: bool | None = None  # decided once per run (workflow.patched)
        self._quotes: dict[str, Quote] = {}
        self._quoted_marks: dict[str, float] | None = None
        self._views: dict[str, MarketView] = {}  # with a named market: each symbol's latest view
        self._prints: dict[str, list[Print]] = {}  # runs before the exchange step: the prints since the last cycle
        self.prints_since: datetime | None = None
        self.outage: str | None = None  # why the last call for market data failed (None: it answered)
        self._judge_on_views: bool | None = None  # the patch views-before-judging, decided at this run's first pre-trade

    def matches_at_the_data(self) -> bool:
        """A named market whose matching runs where the data is (the exchange step). Not from a
        query: the first call of a run records the patch marker."""
        if self.feed is None:
            return False
        if self._exchange_path is None:
            self._exchange_path = workflow.patched(EXCHANGE_STEP)
        return self._exchange_path

    # ── fetching ─────────────────────────────────────────────────────────────────────────────
    async def refresh(self, now: datetime) -> None:
        """The cycle's quotes: the named market's views with the exchange's step for the live
        orders (their executions wait for the cycle's venue step), or the simulated feed's
        quotes from marks when the marks changed."""
        if self.matches_at_the_data():
            await self._exchange_cycle(now)
            return
        if self.feed is not None:
            live = {o.footprint.symbol: None for o in self._ledger.live_orders()}
            await self.fetch(list(self.held_symbols()), now, prints_for=list(live))
            return
        marks = {sym: self._stored_mark(sym) for sym in self.held_symbols()}
        if marks == self._quoted_marks:
            return  # the simulated feed quotes from marks: same marks, same quotes
        try:
            self._quotes = await workflow.execute_local_activity(
                market_quotes, QuoteRequest(marks=marks), start_to_close_timeout=QUOTE_TIMEOUT, retry_policy=MARKET_RETRY
            )
        except LOCAL_ACTIVITY_FAILED as err:  # the last quotes stay; the next cycle asks again
            self._lost_market(err)
            return
        self.outage = None
        self._quoted_marks = marks

    async def _exchange_cycle(self, now: datetime) -> None:
        """The held symbols' views and the live orders' executions since the last cycle, in one
        call; orders whose DAY ends now are left to the venue step (they expire)."""
        rules = self._config().rules
        as_of = exchange_instant(now, rules)
        since = datetime.fromisoformat(self._s.market_as_of) if self._s.market_as_of else as_of
        stamp = now.isoformat()
        orders = []
        if self._exchange is not None:
            live = [o for o in self._ledger.live_orders() if not (o.expires_at and stamp >= o.expires_at)]
            self._exchange.prune(o.intent_id for o in self._ledger.open_orders())
            orders = self._exchange.working(live, since)
        result = await self._call(as_of, list(self.held_symbols()), orders, since=since, cycle=self._cycle())
        if result is None:
            return  # nothing matched: the next call covers this stretch too
        if self._exchange is not None:
            self._exchange.took(result.orders)
        self._s.market_as_of = as_of.isoformat()

    async def arrive(self, order: SimOrder, moment: datetime) -> list[ExecutionEvent]:
        """An order's arrival at the exchange as of `moment`: the venue's collar around the fresh
        reference then, the acknowledgement, the take against the L1 then; its queue place is
        kept by the exchange."""
        at = exchange_instant(moment, self._config().rules)
        bare = order.model_copy(update={"market": None, "market_rule": None, "position": None})
        result = await self._call(at, [], [ExchangeOrder(order=bare, arrived_at=at)])
        if result is None:  # no market to match against: the exchange refuses the order
            return [reject_event(order, f"market data unavailable ({self.outage})")]
        outcome = result.orders[0] if result.orders else OrderOutcome(intent_id=order.intent.intent_id)
        assert self._exchange is not None  # only the simulated venue's arrivals come here
        self._exchange.arrived(outcome.intent_id, at, outcome.resting)
        return outcome.events

    async def _call(
        self, as_of: datetime, symbols: list[str], orders: list[ExchangeOrder], since: datetime | None = None, cycle: int = 0
    ) -> ExchangeResult | None:
        """The exchange's step, or None when the market could not be read (the outage kept)."""
        assert self.feed is not None
        config = self._config()
        request = ExchangeRequest(
            feed=self.feed,
            universe=config.universe,
            session=config.rules.session,
            rule=config.rules.market_data,
            as_of=as_of,
            since=since,
            cycle=cycle,
            symbols=symbols,
            orders=orders,
        )
        try:
            result = await workflow.execute_local_activity(exchange_step, request, start_to_close_timeout=MARKET_TIMEOUT, retry_policy=MARKET_RETRY)
        except LOCAL_ACTIVITY_FAILED as err:
            self._lost_market(err)
            return None
        self.outage = None
        views = result.market_views()
        self._views.update(views)
        self._quotes.update({s: quote_of(v) for s, v in views.items()})
        return result

    async def fetch(self, symbols: list[str], now: datetime, prints_for: list[str] | None = None) -> None:
        """The named market's views of `symbols` as of now (runs before the exchange step: and
        the prints since the last cycle of the symbols with working orders)."""
        assert self.feed is not None
        if self.matches_at_the_data():
            await self._call(exchange_instant(now, self._config().rules), symbols, [])
            return
        rules = self._config().rules
        as_of = exchange_instant(now, rules)
        since = datetime.fromisoformat(self._s.market_as_of) if self._s.market_as_of else as_of
        request = MarketRequest(
            feed=self.feed,
            universe=self._config().universe,
            session=rules.session,
            rule=rules.market_data,
            symbols=symbols,
            as_of=as_of,
            prints_since={s: since for s in prints_for or []},
        )
        try:
            snapshot = await workflow.execute_local_activity(
                market_snapshot, request, start_to_close_timeout=MARKET_TIMEOUT, retry_policy=MARKET_RETRY
            )
        except LOCAL_ACTIVITY_FAILED as err:
            self._lost_market(err)
            return
        self.outage = None
        self._views.update(snapshot.views)
        self._quotes.update({s: quote_of(v) for s, v in snapshot.views.items()})
        if prints_for is not None:  # a cycle's fetch (not a single symbol's for pre-trade)
            self._prints, self.prints_since, self._s.market_as_of = snapshot.prints, since, as_of.isoformat()

    def _lost_market(self, err: Exception) -> None:
        self.outage = first_line(err, limit=200)
        workflow.logger.error("market data unavailable: %s", self.outage)

    async def know(self, symbol: str, now: datetime) -> None:
        """Pre-trade judges on views: the order's symbol's and (from the patch views-before-judging)
        every held symbol's — a run that has not cycled yet (just continued as new) has none, and
        the book must not be valued at reference prices meanwhile."""
        if self.feed is None:
            return
        if self._judge_on_views is None:
            self._judge_on_views = workflow.patched(VIEWS_BEFORE_JUDGING)
        universe = self._config().universe.by_symbol
        if not self._judge_on_views:
            if symbol in universe and symbol not in self._views:
                await self.fetch([symbol], now)
            return
        missing = [s for s in dict.fromkeys([symbol, *self.held_symbols()]) if s in universe and s not in self._views]
        if missing:
            await self.fetch(missing, now)

    # ── reading ──────────────────────────────────────────────────────────────────────────────
    def quote(self, symbol: str) -> Quote:
        """This cycle's quote from the feed; between cycles (a new symbol), the feed's rule."""
        return self._quotes.get(symbol) or quote_from_mark(self._stored_mark(symbol))

    def view(self, symbol: str) -> MarketView | None:
        return self._views.get(symbol) if self.feed is not None else None

    def views(self) -> dict[str, MarketView]:
        return self._views if self.feed is not None else {}

    def top(self, symbol: str, moment: datetime) -> TopOfBook | None:
        """The symbol's L1 as the controls judge it at `moment`, its age carried to then; without a
        market, the simulated quote (always fresh)."""
        view = self.view(symbol)
        if view is None and self._no_view_is_stale():
            return None  # a market account that could not read this symbol: no L1 to judge on
        return top_of_book(view, self.quote(symbol), exchange_instant(moment, self._config().rules))

    def _no_view_is_stale(self) -> bool:
        """With a named market, a symbol without a view has no fresh price (never the reference)."""
        return self.feed is not None and bool(self._judge_on_views)

    def collar_reference(self, symbol: str, moment: datetime) -> float | None:
        """The price collar's reference for an order judged at `moment`: with a market the
        view's fresh mark, aged to `moment` (None once nothing is fresh: the collar refuses);
        the simulated feed's mark is fresh by construction."""
        view = self.view(symbol)
        if view is None:
            return None if self._no_view_is_stale() else self.quote(symbol).truth_tick
        rules = self._config().rules
        return view.collar_reference_at(exchange_instant(moment, rules), rules.market_data)

    def prints(self, symbol: str) -> list[Print]:
        return self._prints.get(symbol, [])

    def mark_now(self, symbol: str) -> float:
        """The mark the next quote will carry: the market's view, or the simulated feed's rule."""
        return self.quote(symbol).truth_tick if self.feed is not None else quote_from_mark(self._stored_mark(symbol)).truth_tick

    def held_symbols(self) -> dict[str, None]:
        symbols = dict.fromkeys(p.symbol for p in self._ledger.positions())
        symbols.update(dict.fromkeys(symbol for symbol, _ in self._ledger.order_keys()))
        return symbols

    def quotes_for_positions(self) -> dict[str, Quote]:
        return {p.symbol: self.quote(p.symbol) for p in self._ledger.positions()}

    def _stored_mark(self, symbol: str) -> float:
        return self._s.marks.get(symbol) or self._config().universe.by_symbol[symbol].reference_price

    def _marks(self) -> dict[str, float]:
        return {sym: self.quote(sym).truth_tick for sym in self.held_symbols()}

    def exposure(self) -> Exposure:
        return compute_exposure(
            self._ledger.equity, self._ledger.positions(), self._ledger.footprints(), self._marks(), self._config(),
            open_order_count=self._ledger.open_count(),
        )  # fmt: skip

    def pnl(self) -> PnlSummary:
        return summarize(self._ledger.pnl, self._marks(), self._config().universe, self._ledger.equity)

    def mark_views(self) -> list[MarkView]:
        """Per held symbol: its mark for exposure, where it came from, and how old the data is."""
        views = []
        for symbol in self.held_symbols():
            view = self.view(symbol)
            if view is None:
                views.append(MarkView(symbol=symbol, mark=self.quote(symbol).truth_tick, source="MARK", stale=self.outage is not None))
            else:
                views.append(
                    MarkView(
                        symbol=symbol,
                        mark=view.mark,
                        source=view.mark_source.value,
                        stale=view.mark_stale or self.outage is not None,
                        age_seconds=view.mark_age_seconds,
                        print_age_seconds=view.print_age_seconds,
                        l1_age_seconds=view.l1_age_seconds,
                    )
                )
        return views

    def stale_symbols(self, mode: RiskMode) -> dict[str, str]:
        """Held symbols de-risk may not act on now: SOFT needs a fresh real print (it prices off
        the truth tick), HARD a fresh L1 (it hits the touch). Reason STALE_DATA in the log."""
        if self.feed is None:
            return {}
        gate = hard_derisk_gate if mode is RiskMode.HARD_DERISK else soft_derisk_gate
        blocked = {}
        for symbol in dict.fromkeys(p.symbol for p in self._ledger.positions() if p.quantity):
            if self.outage is not None:
                blocked[symbol] = f"{symbol}: STALE_DATA — market data unavailable ({self.outage})"
                continue
            view = self._views.get(symbol)
            verdict = gate(view, self._config().rules.market_data) if view is not None else None
            if verdict is None or not verdict.may_act:
                blocked[symbol] = f"{symbol}: STALE_DATA — {verdict.detail if verdict else 'no market data'}"
        return blocked

    # ── recording ────────────────────────────────────────────────────────────────────────────
    def set_marks(self, marks: dict[str, float]) -> None:
        self._s.marks.update(marks)

    def record_prices(self, stamp: str) -> None:
        """With a market: each held symbol's mark this cycle, for the report's price path."""
        if self.feed is None:
            return
        held = self.held_symbols()
        kept = max(2, min(PRICE_POINTS_PER_SYMBOL, PRICE_POINTS_PER_ACCOUNT // max(1, len(set(self._s.price_path) | set(held)))))
        for symbol in held:
            path = self._s.price_path.setdefault(symbol, [])
            path.append((stamp, self.quote(symbol).truth_tick))
            while len(path) > kept:
                del path[-2::-2]  # every other point before the newest: half the resolution, the whole day

    def price_path(self) -> dict[str, list[tuple[str, float]]]:
        return self._s.price_path

    def shortcut_symbols(self) -> list[str]:
        return [s for bucket in Bucket for s in shortcut_symbols(self._config(), bucket)]

    def shortcut_marks(self) -> dict[str, float] | None:
        """A shortcut's positions are sized at the market's marks when the account has a market."""
        return {s: self.quote(s).truth_tick for s in self.shortcut_symbols()} if self.feed is not None else None
