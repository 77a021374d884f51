"""A full trading day at scale 1.0 (real trade counts: ~7.7M prints, ~23M quotes for the universe)
on the dev server: an account with orders working in all 44 symbols all day (and one in each that
fills as the day trades at its price), time-skipped 09:30 → 16:30, every cycle through the
exchange step. What it records stays far below the
server's limits: the largest payload (limit 2 MB) and each run's history (50K events, 50 MB).

What a cycle records is bounded per symbol, not per print: one compact view per held symbol
(~0.3 KB) and, per order the cycle touched, at most three execution events (~0.25 KB each) and
its queue place — a cycle of 44 symbols with both orders touched is under 70 KB, whatever traded.

Heavy (the day in memory: ~3.5 GB at its peak; minutes): `make test-scale`, not the default suite.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from config.load import load_config
from domain.enums import CancelReason, OrderState
from domain.events import OrderEventSpec, TimedEvent
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay, Shock
from marketdata.feed import DayFeed, generated_index, reference_prices
from protocol.contract import RISK_WORKFLOW, account_task_queue, risk_workflow_id
from protocol.messages import RiskInput, RiskResult
from tests.conftest import TASK_QUEUE

BASE = load_config()
# Orders of twice a day's volume: no order-notional cap in the way (the equity bounds the rest).
CONFIG = BASE.model_copy(
    update={"rules": BASE.rules.model_copy(update={"orders": BASE.rules.orders.model_copy(update={"max_order_notional": 1e13})})}
)
RULES, UNIVERSE = CONFIG.rules, CONFIG.universe
SYMBOLS = [i.symbol for i in UNIVERSE.instruments]
DATE = dt.date(2024, 6, 3)
RECIPE = GeneratedDay(seed=17, date=DATE, scale=1.0, shocks=(Shock(at="11:00", move_pct=-4), Shock(at="15:00", symbols=("AAPL", "MSFT"), move_pct=6)))
EQUITY = 1e13  # the orders' potential stays a small share of it: no limit refuses them, no de-risk
PAYLOAD_LIMIT = 2 * 1024 * 1024  # the server's blob limit per payload
HISTORY_EVENTS_LIMIT = 50_000
HISTORY_BYTES_LIMIT = 50 * 1024 * 1024


def payloads(message: Message) -> Iterator[int]:
    """The size of every payload in a history event (however deeply nested)."""
    if isinstance(message, Payload):
        yield message.ByteSize()
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from payloads(item)


def working_orders(feed: DayFeed) -> list[TimedEvent]:
    """At 09:31 in every symbol: a buy and a sell far enough from the market that no move of the
    day reaches them (7% under the bid, 8% over the ask: they work all day, matched every cycle),
    and a buy at the bid for 0.2% of the symbol's daily volume, which fills as the day trades at
    its price — a fill per cycle at most, so its fills (and its order's reports) stay few."""
    at = feed.index.manifest.local("09:31")
    snap = feed.snapshot(SYMBOLS, at)
    events = []
    for instrument in UNIVERSE.instruments:
        view = snap[instrument.symbol]
        assert view.bid is not None and view.ask is not None
        adv = instrument.adv or 1_000_000
        orders = [("FAR-BUY", "BUY", round(view.bid * 0.93, 2), adv), ("FAR-SELL", "SELL", round(view.ask * 1.08, 2), adv),
                  ("BID", "BUY", view.bid, max(100, adv // 500))]  # fmt: skip
        for name, side, price, quantity in orders:
            spec = OrderEventSpec(id=f"{instrument.symbol}-{name}", symbol=instrument.symbol, side=side, quantity=quantity, limit_price=price)
            events.append(TimedEvent(at="09:31", order=spec))
    return events


def result_parts(result: RiskResult) -> dict[str, int]:
    parts = {name: len(json.dumps(value)) for name, value in result.model_dump(mode="json").items()}
    return dict(sorted(parts.items(), key=lambda kv: -kv[1])[:6])


class Run(NamedTuple):
    events: int
    bytes: int
    largest: int  # the largest payload of any event
    largest_in: str  # … in which kind of event
    largest_step: int  # the largest exchange step a cycle recorded (its local-activity marker)


async def account_runs(client: Client, workflow_id: str) -> list[Run]:
    """Each run of the account (oldest first): its history's length and bytes, its largest payloads."""
    runs = sorted([(w.start_time, w.run_id) async for w in client.list_workflows(f'WorkflowId="{workflow_id}"')])
    out = []
    for _, run_id in runs:
        events = [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
        sizes = [(max(payloads(e), default=0), EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")) for e in events]
        step = [size for (size, kind), e in zip(sizes, events) if kind == "MARKER_RECORDED" and b"exchange_step" in e.SerializeToString()]
        largest, kind = max(sizes)
        out.append(Run(len(events), sum(e.ByteSize() for e in events), largest, kind, max(step, default=0)))
    return out


@pytest.mark.timeout(3600)
async def test_a_scale_one_day_with_orders_working_in_every_symbol(client, worker):
    started = time.monotonic()
    # The activity builds the same day in this process (cached by recipe): built once here.
    index = generated_index(RECIPE, UNIVERSE, RULES.session, RULES.market_data)
    feed = DayFeed(index, reference_prices(UNIVERSE), RULES.market_data, FeedSource.GENERATED)
    assert index.manifest.prints > 5_000_000, "real trade counts"
    built = time.monotonic() - started
    account = f"scale-{time.time_ns()}"
    result: RiskResult = await client.execute_workflow(
        RISK_WORKFLOW,
        RiskInput(
            account=account,
            config=CONFIG,
            synthetic=True,
            equity=EQUITY,
            start_exchange_time="09:30",
            stop_at="16:30",
            exchange_date=DATE.isoformat(),
            market=FeedSpec(source=FeedSource.GENERATED, generated=RECIPE),
            timeline=working_orders(feed),
        ),
        id=risk_workflow_id(account),
        task_queue=account_task_queue(TASK_QUEUE),
        result_type=RiskResult,
    )
    ran = time.monotonic() - started - built
    runs = await account_runs(client, risk_workflow_id(account))
    largest = max(runs, key=lambda r: r.largest)
    fills = len(result.fills)
    filled_symbols = {f.symbol for f in result.fills}
    print(
        f"\nscale 1.0: {index.manifest.prints:,} prints, {index.manifest.quotes:,} quotes (built in {built:.0f} s); "
        f"the day ran in {ran:.0f} s: {len(result.decisions)} cycles, {fills:,} fills in {len(filled_symbols)} symbols"
        + "".join(
            f"\n  run {n}: {r.events:,} events, {r.bytes:,} B; largest payload {r.largest:,} B ({r.largest_in}), largest exchange step {r.largest_step:,} B"
            for n, r in enumerate(runs, 1)
        )
        + f"\n  largest payload {largest.largest:,} B in {largest.largest_in} (limit {PAYLOAD_LIMIT:,}); longest run {max(r.events for r in runs):,} events"
        f" (limit {HISTORY_EVENTS_LIMIT:,}), largest {max(r.bytes for r in runs):,} B (limit {HISTORY_BYTES_LIMIT:,})"
        f"\n  the account's result by field (JSON bytes): {result_parts(result)}"
    )
    assert len(result.decisions) == 421, "every cycle of the day ran"
    assert all(100 < len(path) <= 200 for path in result.price_path.values()), "the price path: the whole day, bounded"
    assert len(filled_symbols) >= 40 and fills > 200, "the buys at the bid traded"
    working = [o for o in result.outcomes.values() if "-FAR-" in o.intent_id]
    assert len(working) == 2 * len(SYMBOLS) and all(o.state is OrderState.CANCELED and o.cancel_reason is CancelReason.EXPIRED_DAY for o in working)
    assert largest.largest < PAYLOAD_LIMIT
    assert max(r.largest_step for r in runs) < 100_000, "a cycle's exchange step is bounded per symbol and order, not per print"
    assert max(r.events for r in runs) < HISTORY_EVENTS_LIMIT / 5
    assert max(r.bytes for r in runs) < HISTORY_BYTES_LIMIT / 10
