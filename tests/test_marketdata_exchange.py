"""The simulated exchange where the data is (venues/sim/exchange_step.py): orders in, executions and
compact views out. Fills that could have happened — never from prints before the arrival, the
arrival against the L1 as of its time, queue ahead — deterministic; and HARD reaching its target
in a falling market when its resting orders are repriced (domain/reprice.py), not without."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from config.load import load_config
from domain.enums import Bucket, IntentKind, OrderType, RiskMode, Side
from domain.execution import ExecKind
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay, MarketDataRule, Shock
from domain.matching import Resting
from domain.models import Intent, Quote
from domain.reprice import RestingDerisk, plan_reprices
from marketdata.feed import DayFeed, DayIndex, generated_index, reference_prices
from marketdata.files import write_day
from marketdata.schema import PRINTS_SCHEMA, QUOTES_SCHEMA, Day, DayManifest, DayOrigin, normalize
from venues.sim.exchange_step import ExchangeOrder, ExchangeRequest, exchange_step, step
from venues.sim.model import SimOrder, VenueParams

CONFIG = load_config()
UNIVERSE, SESSION = CONFIG.universe, CONFIG.rules.session
RULE = MarketDataRule()
REFS = reference_prices(UNIVERSE)
DATE = dt.date(2024, 6, 3)
T = dt.datetime(2024, 6, 3, 18, 0, tzinfo=dt.UTC)  # 14:00 New York
PARAMS = VenueParams(seed=7, fill_probability=0.5, partial_fill_probability=0.3, cancel_cross_probability=0.2)


def s(seconds: float) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def hand_day(quotes: list[tuple], prints: list[tuple]) -> Day:
    """quotes: (seconds after 14:00, bid, ask, bid_size, ask_size); prints: (seconds, price, size[, venue, conditions])."""
    ns = lambda secs: pa.array([int((T.timestamp() + x) * 1e9) for x in secs], pa.int64()).cast(pa.timestamp("ns", tz="UTC"))  # noqa: E731
    q = pa.table({"ts_event": ns([r[0] for r in quotes]), "symbol": ["AAPL"] * len(quotes), "bid": [r[1] for r in quotes],
                  "ask": [r[2] for r in quotes], "bid_size": [r[3] for r in quotes], "ask_size": [r[4] for r in quotes]})  # fmt: skip
    p = pa.table({"ts_event": ns([r[0] for r in prints]), "symbol": pa.array(["AAPL"] * len(prints), pa.string()),
                  "price": pa.array([float(r[1]) for r in prints], pa.float64()), "size": pa.array([r[2] for r in prints], pa.int64()),
                  "venue": pa.array([r[3] if len(r) > 3 else "Q" for r in prints], pa.string()),
                  "conditions": pa.array([r[4] if len(r) > 4 else "" for r in prints], pa.string())})  # fmt: skip
    manifest = DayManifest(date=DATE, symbols=["AAPL"], origin=DayOrigin.RECORDED)
    return Day(manifest, normalize(q, QUOTES_SCHEMA), normalize(p, PRINTS_SCHEMA))


def feed_of(day: Day) -> DayFeed:
    return DayFeed(DayIndex(day, RULE), REFS, RULE)


def sim(intent_id: str, side: Side, quantity: int, limit: float | None, cum: int = 0, kind: IntentKind = IntentKind.NEW) -> SimOrder:
    intent = Intent(
        intent_id=intent_id, account="acct", symbol="AAPL", bucket=Bucket.LT, side=side, quantity=quantity,
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET, limit_price=limit, kind=kind,
    )  # fmt: skip
    return SimOrder(intent=intent, cum_qty=cum, lot_size=1, params=PARAMS, quote=Quote(truth_tick=100.0, bid=99.99, ask=100.01))


def request(orders: list[ExchangeOrder], as_of: dt.datetime, since: dt.datetime | None = None, cycle: int = 1) -> ExchangeRequest:
    spec = FeedSpec(source=FeedSource.RECORDED, path="/unused")
    return ExchangeRequest(feed=spec, universe=UNIVERSE, session=SESSION, rule=RULE, as_of=as_of, since=since, cycle=cycle,
                           symbols=["AAPL"], orders=orders)  # fmt: skip


def fills(outcome) -> list[tuple[str, int, float]]:
    return [(e.exec_id.split("/")[1], e.last_qty, e.last_px) for e in outcome.events if e.kind is ExecKind.FILL]


QUOTES = [(0, 99.99, 100.01, 500, 300), (45, 100.49, 100.50, 200, 200)]


def test_an_order_never_fills_from_prints_before_its_arrival():
    # A buy at 100.00 arrives 30 s into the cycle; prints through its limit at 10 s and 40 s.
    feed = feed_of(hand_day(QUOTES, [(10, 99.95, 400), (40, 99.96, 150)]))
    order = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 100.00), arrived_at=s(30))
    [out] = step(feed, request([order], as_of=s(60), since=s(0))).orders
    assert out.events[0].kind is ExecKind.ACCEPTED
    assert fills(out) == [("C1", 150, 100.00)]  # only the print after the arrival


def test_the_arrival_meets_the_l1_as_of_its_own_time():
    feed = feed_of(hand_day(QUOTES, []))
    early = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 100.05), arrived_at=s(30))
    late = ExchangeOrder(order=sim("o2", Side.BUY, 1000, 100.05), arrived_at=s(50))
    a, b = step(feed, request([early, late], as_of=s(60), since=s(0))).orders
    assert fills(a) == [("A", 300, 100.01)] and a.resting == Resting(ahead=0)  # the 14:00:00 quote, in force at 14:00:30
    assert fills(b) == [] and b.resting == Resting(ahead=200)  # at 14:00:50 the ask is 100.50: it rests behind the 100.49 bid


def test_a_passive_order_fills_only_after_the_displayed_size_ahead_has_traded():
    # Arrives at the 99.99 bid with 500 displayed: 300 then 400 trade there afterwards.
    feed = feed_of(hand_day([(0, 99.99, 100.01, 500, 300)], [(10, 99.99, 300), (20, 99.99, 400)]))
    order = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 99.99), arrived_at=s(5))
    [out] = step(feed, request([order], as_of=s(15), since=s(0))).orders
    assert fills(out) == [] and out.resting == Resting(ahead=200)
    resting = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 99.99), arrived_at=s(5), resting=out.resting)
    [out] = step(feed, request([resting], as_of=s(60), since=s(15), cycle=2)).orders
    assert fills(out) == [("C2", 200, 99.99)] and out.resting == Resting(ahead=0)


def test_prints_off_the_lit_book_do_not_fill():
    prints = [(10, 99.90, 500, "D", ""), (11, 99.90, 500, "Q", "W"), (12, 99.90, 500, "Q", "Z"), (13, 99.90, 500, "Q", "T")]
    feed = feed_of(hand_day(QUOTES[:1], prints))
    order = ExchangeOrder(order=sim("o1", Side.BUY, 100, 100.00), arrived_at=s(5))
    [out] = step(feed, request([order], as_of=s(40), since=s(0))).orders
    assert fills(out) == []


def test_a_resting_order_the_quote_moved_through_fills_at_its_limit_and_a_market_order_takes_the_touch():
    feed = feed_of(hand_day([(0, 99.99, 100.01, 500, 300), (30, 99.80, 99.85, 100, 250)], []))
    buy = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 99.99), arrived_at=s(1), resting=Resting(ahead=500))
    market = ExchangeOrder(order=sim("o2", Side.SELL, 150, None), arrived_at=s(1), resting=Resting())
    a, b = step(feed, request([buy, market], as_of=s(60), since=s(0), cycle=4)).orders
    assert fills(a) == [("C4", 250, 99.99)]
    assert fills(b) == [("C4", 100, 99.80)]


def test_the_venue_collar_holds_a_limit_to_the_fresh_reference_and_stands_aside_without_one():
    feed = feed_of(hand_day([(0, 99.99, 100.01, 500, 300)], [(1, 100.00, 100)]))
    wild = ExchangeOrder(order=sim("o1", Side.BUY, 100, 120.00), arrived_at=s(5))
    [out] = step(feed, request([wild], as_of=s(5))).orders
    assert [e.kind for e in out.events] == [ExecKind.REJECTED] and "reference price 100.00" in out.events[0].text
    later = ExchangeOrder(order=sim("o2", Side.BUY, 100, 120.00), arrived_at=s(4000))  # nothing fresh: no venue collar
    [out] = step(feed, request([later], as_of=s(4000))).orders
    assert out.events[0].kind is ExecKind.ACCEPTED


def test_same_request_same_result_and_nothing_raw_in_it(tmp_path):
    prints = [(i * 0.01, 99.99 - (i % 3) * 0.01, 100 + i) for i in range(3000)]  # a busy minute
    day = hand_day(QUOTES, prints)
    write_day(day, tmp_path)
    spec = FeedSpec(source=FeedSource.RECORDED, path=str(tmp_path))
    orders = [ExchangeOrder(order=sim(f"o{i}", Side.BUY, 100_000, 99.98 + i * 0.01), arrived_at=s(0.5 + i)) for i in range(3)]
    req = ExchangeRequest(feed=spec, universe=UNIVERSE, session=SESSION, rule=RULE, as_of=s(60), since=s(0), cycle=9,
                          symbols=["AAPL", "MSFT"], orders=orders)  # fmt: skip
    first, again = exchange_step(req), exchange_step(req)
    assert first == again
    assert set(first.views) == {"AAPL", "MSFT"} and first.views["MSFT"].mark_source.value == "REFERENCE"
    feed = DayFeed(DayIndex(day, RULE), REFS, RULE)
    assert first.market_views() == dict(feed.snapshot(["AAPL", "MSFT"], s(60)))  # the compact views restore in full
    assert all(len(o.events) <= 3 for o in first.orders) and any(fills(o) for o in first.orders)
    payload = first.model_dump_json()
    assert len(payload) < 2 * 350 + 3 * (3 * 250 + 50) + 100  # views and events only, whatever the number of prints
    assert '"conditions"' not in payload  # no print travels


# --- HARD in a falling market ------------------------------------------------------------------

FALL = GeneratedDay(seed=9, date=DATE, scale=0.02, shocks=(Shock(at="14:00", symbols=("AAPL",), move_pct=-6, over_seconds=900),))


def hard_sell_down(position: int, reprice: bool, cycles: int = 30) -> tuple[int, list[tuple[str, int, float]]]:
    """A HARD de-risk of a long AAPL position from 14:00, one cycle a minute, as the account would
    run it: match the live order, reprice it (cancel/replace: a new order arriving now) if the
    market left it, issue a sell at the bid for what is left when nothing works."""
    index = generated_index(FALL, UNIVERSE, SESSION, RULE)
    feed = DayFeed(index, REFS, RULE, FeedSource.GENERATED)
    start = index.manifest.local("14:00")
    live: ExchangeOrder | None = None
    done: list[tuple[str, int, float]] = []
    n = 0

    def send(at: dt.datetime, price: float) -> ExchangeOrder:
        nonlocal n, position
        n += 1
        order = ExchangeOrder(order=sim(f"h{n}", Side.SELL, position, price, kind=IntentKind.HARD_DERISK), arrived_at=at)
        [out] = step(feed, request([order], as_of=at)).orders  # the arrival, with the verdict
        return absorb(order, out)

    def absorb(order: ExchangeOrder, out) -> ExchangeOrder:
        nonlocal position
        got = fills(out)
        done.extend(got)
        position -= sum(q for _, q, _ in got)
        cum = order.order.cum_qty + sum(q for _, q, _ in got)
        return order.model_copy(update={"order": order.order.model_copy(update={"cum_qty": cum}), "resting": out.resting or order.resting})

    previous = start
    for k in range(cycles):
        now = start + dt.timedelta(minutes=k)
        if live is not None and now > previous:
            outs = step(feed, request([live], as_of=now, since=previous, cycle=k)).orders
            live = absorb(live, outs[0]) if outs else live
            if live.order.leaves == 0:
                live = None
        previous = now
        view = step(feed, request([], as_of=now)).market_views()["AAPL"]
        if live is not None and reprice:
            mine = RestingDerisk(intent_id=live.order.intent.intent_id, symbol="AAPL", side=Side.SELL, kind=IntentKind.HARD_DERISK,
                                 limit_price=live.order.intent.limit_price)  # fmt: skip
            if plan_reprices([mine], {"AAPL": view}, RiskMode.HARD_DERISK, RULE, 0.01).reprices:
                live = None  # canceled: the replacement goes out below
        if live is None and position > 0:
            assert view.l1 is not None
            live = send(now, view.l1.bid)
            if live.order.leaves == 0:
                live = None
    return position, done


def test_hard_reaches_its_target_in_a_falling_market_when_repriced():
    left, done = hard_sell_down(20_000, reprice=True)
    assert left == 0, f"{left} shares still held after {len(done)} fills"
    assert hard_sell_down(20_000, reprice=True) == (left, done)  # deterministic
    stuck, first = hard_sell_down(20_000, reprice=False)
    assert stuck > 10_000, "without repricing the order rests at an old bid the falling market never comes back to"
    assert len(first) < len(done)


@pytest.mark.parametrize("since", [None, s(0)])
def test_an_arrival_in_the_cycle_call_is_the_same_as_one_at_the_verdict(since):
    # The account may run the arrival with the verdict (a call at the arrival time) or leave it
    # to the next cycle's call: the same fills either way.
    feed = feed_of(hand_day(QUOTES, [(40, 100.00, 500), (50, 99.90, 300)]))
    order = ExchangeOrder(order=sim("o1", Side.BUY, 1000, 100.01), arrived_at=s(30))
    [together] = step(feed, request([order], as_of=s(60), since=since)).orders
    [arrival] = step(feed, request([order], as_of=s(30))).orders
    moved = order.model_copy(update={"resting": arrival.resting, "order": order.order.model_copy(update={"cum_qty": 300})})
    [later] = step(feed, request([moved], as_of=s(60), since=since)).orders
    assert fills(together) == fills(arrival) + fills(later) == [("A", 300, 100.01), ("C1", 700, 100.01)]


# --- what the account carries for the exchange -------------------------------------------------


def test_queue_places_and_the_price_path_at_their_caps_carry_in_a_tenth_of_the_payload_limit():
    # 5,000 open orders resting with queue ahead (the carried-state test's open-order cap), 1,500
    # of them arrived since the last cycle (a run's update budget), and the price path full across
    # 50 symbols (10,000 points): what they add to continue-as-new.
    from domain.ledger import BookState
    from protocol.account_state import AccountState, AtExchange, ExchangeState, MarketState
    from protocol.carry import pack
    from workflows.account.market import PRICE_POINTS_PER_ACCOUNT, PRICE_POINTS_PER_SYMBOL

    rnd = __import__("random").Random(3)
    symbols = [f"S{n:03d}" for n in range(PRICE_POINTS_PER_ACCOUNT // PRICE_POINTS_PER_SYMBOL)]
    path = {s: [(f"1{n // 60 % 6}:{n % 60:02d}:00", round(rnd.uniform(5, 900), 4)) for n in range(PRICE_POINTS_PER_SYMBOL)] for s in symbols}
    places = {
        f"desk-account-7-{n:08d}-{rnd.getrandbits(32):08x}": AtExchange(
            ahead=rnd.randrange(10**6), arrived_at=f"2026-11-26T1{n % 6}:{n % 60:02d}:{n % 60:02d}.{n:06d}-05:00" if n < 1_500 else None
        )
        for n in range(5_000)
    }
    empty = len(pack(AccountState(), BookState(equity=1.0)))
    carried = len(pack(AccountState(market=MarketState(price_path=path), exchange=ExchangeState(orders=places)), BookState(equity=1.0))) - empty
    print(f"\nqueue places of 5,000 orders and {sum(map(len, path.values())):,} price points: {carried:,} B carried")
    assert carried < 2 * 1024 * 1024 / 10
