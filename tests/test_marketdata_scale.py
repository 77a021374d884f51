"""A full generated day at scale 1.0 (real trade counts: ~7M prints, ~21M quotes) with working
orders in all 44 symbols, every cycle through the exchange activity: the largest payload a cycle
records and a run's history of them stay far below the server's limits (2 MB per payload; the
history warns at 10 MB), while the prints the account used to carry would not fit one payload.

Heavy: about 10 s and 3.5 GB at its peak (the day in memory), once per session.
"""

from __future__ import annotations

import datetime as dt

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from config.load import load_config
from domain.enums import Bucket, OrderType, Side
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay, MarketDataRule, Shock
from domain.models import Intent, Quote
from marketdata.feed import DayFeed, DayIndex, reference_prices
from marketdata.generator import generate_day
from protocol.market import MarketSnapshot
from venues.sim.exchange_step import ExchangeOrder, ExchangeRequest, step
from venues.sim.model import SimOrder, VenueParams

CONFIG = load_config()
UNIVERSE, SESSION, RULES = CONFIG.universe, CONFIG.rules.session, CONFIG.rules
RULE = RULES.market_data
SYMBOLS = [i.symbol for i in UNIVERSE.instruments]
RECIPE = GeneratedDay(
    seed=17,
    date=dt.date(2024, 6, 3),
    scale=1.0,
    shocks=(Shock(at="11:00", move_pct=-4), Shock(at="15:00", symbols=("AAPL", "MSFT"), move_pct=6)),
)
PAYLOAD_LIMIT = 2 * 1024 * 1024  # the server's blob size limit per payload
HISTORY_WARN = 10 * 1024 * 1024  # the server warns when a history passes this size
PARAMS = VenueParams(seed=1, fill_probability=0.5, partial_fill_probability=0.3, cancel_cross_probability=0.2)


def size(value: object) -> int:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([value])
    return len(payload.SerializeToString())


@pytest.fixture(scope="module")
def feed() -> DayFeed:
    rule = MarketDataRule()
    return DayFeed(DayIndex(generate_day(RECIPE, UNIVERSE, SESSION), rule), reference_prices(UNIVERSE), rule, FeedSource.GENERATED)


def working(symbol: str, side: Side, price: float, arrived: dt.datetime) -> ExchangeOrder:
    intent = Intent(intent_id=f"acct-{symbol}-{side.value}", account="acct", symbol=symbol, bucket=Bucket.LT, side=side,
                    quantity=10_000_000, order_type=OrderType.LIMIT, limit_price=price)  # fmt: skip
    quote = Quote(truth_tick=price, bid=price, ask=price)
    return ExchangeOrder(order=SimOrder(intent=intent, cum_qty=0, lot_size=1, params=PARAMS, quote=quote), arrived_at=arrived)


@pytest.mark.timeout(600)
def test_a_scale_one_day_with_orders_in_every_symbol_records_little(feed):
    m = feed.manifest
    assert m.prints > 5_000_000, "real trade counts"
    spec = FeedSpec(source=FeedSource.GENERATED, generated=RECIPE)
    opening = m.local(SESSION.open)
    cycles = (RULES.session.close_minute - RULES.session.open_minute) * 60 // RULES.risk_cycle.cycle_seconds + 1
    times = [opening + dt.timedelta(seconds=RULES.risk_cycle.cycle_seconds * k) for k in range(cycles)]
    # At 09:31 every symbol gets a buy at its bid and a sell at its ask far larger than the day
    # trades: they work all day, taking every print that reaches them.
    first = feed.snapshot(SYMBOLS, times[1])
    orders = [working(s, side, first[s].bid or 1.0 if side is Side.BUY else first[s].ask or 1.0, times[1]) for s in SYMBOLS for side in Side]
    sizes, fills = [], 0
    previous = times[0]
    for k, now in enumerate(times[1:], start=1):
        request = ExchangeRequest(feed=spec, universe=UNIVERSE, session=SESSION, rule=RULE, as_of=now, since=previous, cycle=k,
                                  symbols=SYMBOLS, orders=orders)  # fmt: skip
        result = step(feed, request)
        sizes.append(size(result))
        touched = {o.intent_id: o for o in result.orders}
        for i, entry in enumerate(orders):
            out = touched.get(entry.order.intent.intent_id)
            if out is not None:
                got = sum(e.last_qty for e in out.events if e.last_qty)
                fills += sum(1 for e in out.events if e.last_qty)
                order = entry.order.model_copy(update={"cum_qty": entry.order.cum_qty + got})
                orders[i] = entry.model_copy(update={"order": order, "resting": out.resting})
        previous = now
    per_run = RULES.risk_cycle.cycles_per_run
    run_history = max(sum(sizes[i : i + per_run]) for i in range(0, len(sizes), per_run))
    # What today's account records instead: the busiest minute's prints of the symbols it works in.
    busy = m.local("16:28")
    old = MarketSnapshot(
        views={s: v for s, v in feed.snapshot(SYMBOLS, busy).items()},
        prints={s: feed.prints_between(s, busy - dt.timedelta(minutes=1), busy) for s in SYMBOLS},
    )
    aapl = len(old.prints["AAPL"])
    print(
        f"\nscale 1.0: {m.prints:,} prints, {m.quotes:,} quotes; {len(orders)} orders working, {fills:,} fills over {len(sizes)} cycles"
        f"\n  largest cycle payload {max(sizes):,} B (limit {PAYLOAD_LIMIT:,}); a run of {per_run} cycles records {run_history:,} B"
        f" (history warns at {HISTORY_WARN:,}); the whole day {sum(sizes):,} B"
        f"\n  today's path at 16:27–16:28: {size(old):,} B in one payload (AAPL alone {aapl:,} prints)"
    )
    assert fills > 1000, "the orders did trade"
    assert max(sizes) < PAYLOAD_LIMIT / 20
    assert run_history < HISTORY_WARN / 2
    assert size(old) > PAYLOAD_LIMIT, "the raw prints the account carried would not even fit one payload"
