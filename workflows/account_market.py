"""What the account knows of the market each cycle: quotes from marks (the simulated feed) or a
named market's views (L1, truth tick, GRPAN, mark and its source, data ages) and prints; the
stale-data gates; the simulated venue's turn for each live order; marks, exposure and P&L."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market import (
        MarketRequest,
        QuoteRequest,
        market_quotes,
        market_snapshot,
        quote_of,
    )
    from domain.clock import exchange_instant
    from domain.enums import Bucket, RiskMode
    from domain.events import shortcut_symbols
    from domain.exposure import Exposure, compute_exposure
    from domain.market import quote_from_mark
    from domain.marketdata import hard_derisk_gate, soft_derisk_gate
    from domain.models import Intent, Quote
    from domain.pnl import PnlSummary, summarize
    from domain.venue import SimOrder
    from protocol.messages import (
        MarkView,
        VenueKind,
    )
    from workflows.account_orders import VenueTurn

QUOTE_TIMEOUT = timedelta(seconds=10)
MARKET_TIMEOUT = timedelta(seconds=60)  # the first call for a day builds or loads it
PRICE_POINTS_KEPT = 500  # per symbol: a trading day of one-minute cycles


class AccountMarket:
    """A part of RiskWorkflow (workflows/risk.py); its state lives there."""

    async def _refresh_quotes(self, now: datetime) -> None:
        if self._inp.market is not None:
            live = {o.footprint.symbol: None for o in self._ledger.live_orders()}
            await self._fetch_market(list(self._held_symbols()), now, prints_for=list(live))
            return
        marks = self._feed_marks()
        if marks == self._quoted_marks:
            return  # the simulated feed quotes from marks: same marks, same quotes
        self._quotes = await workflow.execute_local_activity(market_quotes, QuoteRequest(marks=marks), start_to_close_timeout=QUOTE_TIMEOUT)
        self._quoted_marks = marks

    async def _fetch_market(self, symbols: list[str], now: datetime, prints_for: list[str] | None = None) -> None:
        """The named market's views of `symbols` as of now, and the prints since the last cycle
        of the symbols with working orders (passive fills trade against them)."""
        assert self._inp.market is not None
        as_of = exchange_instant(now, self._rules)
        since = datetime.fromisoformat(self._s.market_as_of) if self._s.market_as_of else as_of
        request = MarketRequest(
            feed=self._inp.market,
            universe=self._config.universe,
            session=self._rules.session,
            rule=self._rules.market_data,
            symbols=symbols,
            as_of=as_of,
            prints_since={s: since for s in prints_for or []},
        )
        snapshot = await workflow.execute_local_activity(market_snapshot, request, start_to_close_timeout=MARKET_TIMEOUT)
        self._views.update(snapshot.views)
        self._quotes.update({s: quote_of(v) for s, v in snapshot.views.items()})
        if prints_for is not None:  # a cycle's fetch (not a single symbol's for pre-trade)
            self._prints, self._prints_since, self._s.market_as_of = snapshot.prints, since, as_of.isoformat()

    def _shortcut_symbols(self) -> list[str]:
        return [s for bucket in Bucket for s in shortcut_symbols(self._config, bucket)]

    def _record_prices(self, now: datetime) -> None:
        """With a market: each held symbol's mark this cycle, for the report's price path."""
        if self._inp.market is None:
            return
        for symbol in self._held_symbols():
            path = self._s.price_path.setdefault(symbol, [])
            path.append((self._stamp(now), self._quote(symbol).truth_tick))
            del path[:-PRICE_POINTS_KEPT]

    def _stale_symbols(self, mode: RiskMode) -> dict[str, str]:
        """Held symbols de-risk may not act on now: SOFT needs a fresh real print (it prices off
        the truth tick), HARD a fresh L1 (it hits the touch). Reason STALE_DATA in the log."""
        if self._inp.market is None:
            return {}
        gate = hard_derisk_gate if mode is RiskMode.HARD_DERISK else soft_derisk_gate
        blocked = {}
        for symbol in dict.fromkeys(p.symbol for p in self._ledger.positions() if p.quantity):
            view = self._views.get(symbol)
            verdict = gate(view, self._rules.market_data) if view is not None else None
            if verdict is None or not verdict.may_act:
                blocked[symbol] = f"{symbol}: STALE_DATA — {verdict.detail if verdict else 'no market data'}"
        return blocked

    def _venue_turns(self, now: datetime) -> list[VenueTurn]:
        """The simulated venue's turn for each live order (a broker's fills come by signal)."""
        if self._inp.venue is not VenueKind.SIM:
            return []
        stamp = now.isoformat()
        return [
            VenueTurn(
                order=self._sim_order(o.intent, cum_qty=o.filled),
                closed=bool(o.expires_at) and stamp >= o.expires_at,
                prints=self._prints.get(o.footprint.symbol, []),
                since=self._prints_since,
            )
            for o in self._ledger.live_orders()
            if o.intent is not None
        ]

    def _sim_order(self, intent: Intent, cum_qty: int = 0) -> SimOrder:
        return SimOrder(
            intent=intent,
            cum_qty=cum_qty,
            lot_size=self._lot_of(intent.symbol),
            params=self._venue_params(intent),
            quote=self._quote(intent.symbol),
            market=self._views.get(intent.symbol) if self._inp.market else None,
            market_rule=self._rules.market_data if self._inp.market else None,
        )

    def _held_symbols(self) -> dict[str, None]:
        symbols = dict.fromkeys(p.symbol for p in self._ledger.s.positions.values())
        symbols.update(dict.fromkeys(symbol for symbol, _ in self._ledger.order_keys()))
        return symbols

    def _feed_marks(self) -> dict[str, float]:
        """What the market-data feed is asked to quote: the injected mark or the reference price."""
        return {sym: self._stored_mark(sym) for sym in self._held_symbols()}

    def _stored_mark(self, symbol: str) -> float:
        return self._s.marks.get(symbol) or self._config.universe.by_symbol[symbol].reference_price

    def _quote(self, symbol: str) -> Quote:
        """This cycle's quote from the feed; between cycles (a new symbol), the feed's rule."""
        return self._quotes.get(symbol) or quote_from_mark(self._stored_mark(symbol))

    def _mark_now(self, symbol: str) -> float:
        """The mark the next quote will carry: the market's view, or the simulated feed's rule."""
        return self._quote(symbol).truth_tick if self._inp.market else quote_from_mark(self._stored_mark(symbol)).truth_tick

    def _quotes_for_positions(self) -> dict[str, Quote]:
        return {p.symbol: self._quote(p.symbol) for p in self._ledger.s.positions.values()}

    def _exposure(self) -> Exposure:
        marks = {sym: self._quote(sym).truth_tick for sym in self._held_symbols()}
        return compute_exposure(
            self._ledger.s.equity,
            self._ledger.positions(),
            self._ledger.footprints(),
            marks,
            self._config,
            open_order_count=len(self._ledger.s.open_orders),
        )

    def _mark_views(self) -> list[MarkView]:
        """Per held symbol: its mark for exposure, where it came from, and how old the data is."""
        views = []
        for symbol in self._held_symbols():
            view = self._views.get(symbol) if self._inp.market else None
            if view is None:
                views.append(MarkView(symbol=symbol, mark=self._quote(symbol).truth_tick, source="MARK"))
            else:
                views.append(
                    MarkView(
                        symbol=symbol,
                        mark=view.mark,
                        source=view.mark_source.value,
                        print_age_seconds=view.print_age_seconds,
                        l1_age_seconds=view.l1_age_seconds,
                    )
                )
        return views

    def _pnl(self) -> PnlSummary:
        marks = {sym: self._quote(sym).truth_tick for sym in self._held_symbols()}
        return summarize(self._ledger.s.pnl, marks, self._config.universe, self._ledger.s.equity)
