"""Market data: replay a generated day for the whole universe through the feed — a snapshot of
every symbol at each risk cycle of the session (every 60 s, 09:30–16:30: 421 cycles) — against
a plain pyarrow read of the same files.

The replay starts cold (the feed's cache cleared): it reads and checks the files, indexes them and
then answers, as a worker's first cycle on a day would. Snapshots are columnar (L1, truth tick,
ages for the whole batch); a `MarketView` is built only for a symbol asked for. Besides the aim's
figure: the same replay with all 44 views built every cycle, and the exchange activity's cycle
(views of the 44 symbols and a buy and a sell working in each, matched against the minute's
prints). Two day sizes: the generator's default scale and 5× it (real trade counts are ~20× the
default). Times are the best of 5 runs. Aim: within 3× of the plain read.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pyarrow.parquet as pq

from bench.support import figure
from config.load import load_config
from domain.enums import Bucket, OrderType, Side
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay, MarketDataRule, Shock
from domain.models import Intent, Quote
from marketdata.feed import DayFeed, clear_cache, load_index, reference_prices
from marketdata.files import write_day
from marketdata.generator import DEFAULT_DAY, generate_day
from marketdata.schema import PRINTS_FILE, QUOTES_FILE
from venues.sim.exchange_step import ExchangeOrder, ExchangeRequest, ExchangeResult, step
from venues.sim.model import SimOrder, VenueParams

ROUNDS = 5
SCALES = (GeneratedDay.model_fields["scale"].default, 5 * GeneratedDay.model_fields["scale"].default)
# The replay's ratio to the plain read before issue 24 (commit 6cf12eb, measured the same way).
BEFORE = {0.05: 10.36, 0.25: 4.30}
AIM = 3.0


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    """Best of `rounds`: on a shared 2-core machine the median measures the neighbours too."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples)


def working_orders(feed: DayFeed, symbols: list[str], at: datetime) -> list[ExchangeOrder]:
    """A buy at the bid and a sell at the ask in every symbol, far larger than the day trades."""
    params = VenueParams(seed=1, fill_probability=0.5, partial_fill_probability=0.3, cancel_cross_probability=0.2)
    snap = feed.snapshot(symbols, at)
    orders = []
    for symbol in symbols:
        for side in Side:
            price = (snap[symbol].bid if side is Side.BUY else snap[symbol].ask) or snap[symbol].mark
            intent = Intent(intent_id=f"bench-{symbol}-{side.value}", account="bench", symbol=symbol, bucket=Bucket.LT, side=side,
                            quantity=10_000_000, order_type=OrderType.LIMIT, limit_price=price)  # fmt: skip
            order = SimOrder(intent=intent, cum_qty=0, lot_size=1, params=params, quote=Quote(truth_tick=price, bid=price, ask=price))
            orders.append(ExchangeOrder(order=order, arrived_at=at))
    return orders


def carried(orders: list[ExchangeOrder], result: ExchangeResult) -> list[ExchangeOrder]:
    """The orders as the account carries them to the next call: filled quantity and queue place."""
    touched = {o.intent_id: o for o in result.orders}
    out = []
    for entry in orders:
        done = touched.get(entry.order.intent.intent_id)
        if done is not None:
            cum = entry.order.cum_qty + sum(e.last_qty for e in done.events)
            entry = entry.model_copy(update={"order": entry.order.model_copy(update={"cum_qty": cum}), "resting": done.resting})
        out.append(entry)
    return out


def run() -> dict[str, float]:
    config = load_config()
    rules, universe = config.rules, config.universe
    symbols = [i.symbol for i in universe.instruments]
    refs = reference_prices(universe)
    cycle = rules.risk_cycle.cycle_seconds
    cycles = (rules.session.close_minute - rules.session.open_minute) * 60 // cycle + 1
    results: dict[str, float] = {}
    print(f"market: replay a generated day through the feed ({len(symbols)} symbols × {cycles} cycles of {cycle} s)")
    for scale in SCALES:
        recipe = GeneratedDay(seed=7, date=DEFAULT_DAY, shocks=(Shock(at="14:00", move_pct=-5),), scale=scale)
        day = generate_day(recipe, universe, rules.session)
        with tempfile.TemporaryDirectory() as tmp:
            write_day(day, tmp)
            opening = day.manifest.local(rules.session.hours()[0])
            times = [opening + timedelta(seconds=cycle * k) for k in range(cycles)]

            def plain_read() -> None:
                pq.read_table(f"{tmp}/{QUOTES_FILE}")
                pq.read_table(f"{tmp}/{PRINTS_FILE}")

            def replay(times: list[datetime] = times, tmp: str = tmp, views: bool = False) -> None:
                clear_cache()
                feed = DayFeed(load_index(tmp), refs, MarketDataRule())  # read, check, index
                for as_of in times:
                    snap = feed.snapshot(symbols, as_of)
                    if views:
                        for symbol in symbols:
                            snap[symbol]

            plain = timed(plain_read)
            real = timed(replay)
            with_views = timed(lambda: replay(views=True))
            warm = DayFeed(load_index(tmp), refs, MarketDataRule())
            orders = working_orders(warm, symbols, times[0])
            spec = FeedSpec(source=FeedSource.GENERATED, generated=recipe)

            def exchange_cycles(
                warm: DayFeed = warm, orders: list[ExchangeOrder] = orders, times: list[datetime] = times, spec: FeedSpec = spec
            ) -> None:
                live = list(orders)
                for k in range(1, len(times)):
                    request = ExchangeRequest(feed=spec, universe=universe, session=rules.session, rule=rules.market_data,
                                              as_of=times[k], since=times[k - 1], cycle=k, symbols=symbols, orders=live)  # fmt: skip
                    live = carried(live, step(warm, request))

            exchange = timed(exchange_cycles, rounds=2)
            clear_cache()
        ratio = real / plain
        m = day.manifest
        print(f"  day at scale {scale:g}: {m.quotes:,} quotes + {m.prints:,} prints")
        figure("feed replay: read + index + snapshots", f"{real * 1000:.1f} ms", baseline=f"plain pyarrow read {plain * 1000:.1f} ms")
        figure(
            "ratio to the plain read", f"{ratio:.2f}x", before=f"{BEFORE[scale]}x", aim=f"≤ {AIM:g}x", ok=ratio <= AIM
        )  # fmt: skip
        figure("… with all 44 views built each cycle", f"{with_views * 1000:.1f} ms", note=f"{with_views / plain:.2f}x the plain read")
        figure("exchange activity, per cycle", f"{exchange / (cycles - 1) * 1000:.2f} ms", note=f"44 views, {len(orders)} orders working")
        results[f"scale_{scale:g}_ratio"] = ratio
        results[f"scale_{scale:g}_plain_ms"] = plain * 1000
        results[f"scale_{scale:g}_replay_ms"] = real * 1000
    return results


if __name__ == "__main__":
    run()
