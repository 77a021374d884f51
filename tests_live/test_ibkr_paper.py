"""Against a real IB *paper* account: `make test-ibkr-live` (IB_HOST, IB_PORT, IB_ACCOUNT).

Not part of `make test` (it lives outside tests/ and needs TWS or IB Gateway logged in to a
paper account). It places one 1-share BUY LIMIT far below the market (DAY), sees IB acknowledge
it, asks its status, retries the submit (no second order), cancels it and checks the events
(testkit/ibkr/paper_check.py; the unit suite rehearses the same steps against the fake TWS).
It refuses to run on an account that is not a paper account (DU…/DF…), refuses a limit that is
not far below IB's price (or when IB gives no price to check it against), times out every
request, and cancels the order in `finally` whatever failed.

    IB_LIVE_SYMBOL     the stock (default AAPL)
    IB_LIVE_LIMIT      the limit price; default: half of IB's delayed/frozen last or close price
    IB_LIVE_CLIENT_ID  the API client id for this test (default 917, apart from the gateway's IB_CLIENT_ID)
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from domain.execution import ExecKind
from testkit.ibkr.paper_check import WAIT, cancel_if_working, checked_limit, market_price, paper_account, paper_round_trip
from venues.ibkr.gateway import IbkrConfigError, IbkrGateway, IbUnreachable
from venues.ibkr.models import IbkrSettings
from venues.sink import ListSink


async def test_paper_order_acknowledged_then_canceled(tmp_path: Path) -> None:
    settings = replace(
        IbkrSettings.from_env(), client_id=int(os.environ.get("IB_LIVE_CLIENT_ID", "917")), state_dir=tmp_path, ack_timeout=10.0, cancel_timeout=10.0
    )
    sink = ListSink()
    gateway = IbkrGateway(settings, sink)
    try:
        await asyncio.wait_for(gateway.start(), WAIT * 2)
    except (IbUnreachable, IbkrConfigError, TimeoutError) as err:
        await gateway.stop()
        pytest.fail(str(err) or "TWS / IB Gateway did not finish connecting in time")
    intent = f"live-{uuid.uuid4().hex[:10]}"
    try:
        paper_account(gateway)
        symbol = os.environ.get("IB_LIVE_SYMBOL", "AAPL")
        given = float(os.environ["IB_LIVE_LIMIT"]) if os.environ.get("IB_LIVE_LIMIT") else None
        limit = checked_limit(given, await market_price(gateway, symbol))
        events = await paper_round_trip(gateway, sink, intent, symbol, limit)
        print("\n".join(f"{e.kind.value:15} permId={e.venue_order_id} cum={e.cum_qty} leaves={e.leaves_qty} {e.text}" for e in events))
        assert events[0].kind is ExecKind.ACCEPTED
    finally:
        await cancel_if_working(gateway, intent)
        await gateway.stop()
