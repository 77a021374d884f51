"""The paper-account round trip `make test-ibkr-live` runs (tests_live/test_ibkr_paper.py), kept
here so the unit suite can rehearse it against the fake TWS: one 1-share BUY LIMIT far below
the market, acknowledged, looked up, retried (no second order), canceled, and the events checked.

Every request to IB has a timeout; the limit — given or derived — is checked against IB's price
before anything is placed; and the order is canceled in `finally`, whatever failed on the way."""

from __future__ import annotations

import asyncio
import contextlib
import math

from ib_async import Stock

from domain.execution import ExecKind, ExecutionEvent
from testkit.contract import ContractRun, contract_violations
from venues.ibkr.gateway import IbkrGateway
from venues.ibkr.models import IbkrOrder
from venues.sink import ListSink

WAIT = 30.0
FAR = 0.8  # a BUY limit must be at most this fraction of the market to be "far below" it


def paper_account(gateway: IbkrGateway) -> str:
    accounts = gateway.ib.managedAccounts()
    account = gateway.settings.account or (accounts[0] if len(accounts) == 1 else "")
    assert account, f"several accounts {accounts}: set IB_ACCOUNT"
    assert account.startswith(("DU", "DF")), f"{account} is not a paper account: this check only runs on paper"
    return account


async def market_price(gateway: IbkrGateway, symbol: str, timeout: float = WAIT) -> float | None:
    """IB's last / close price (delayed-frozen data: paper accounts often have no live data)."""
    gateway.ib.reqMarketDataType(4)
    contract = Stock(symbol, "SMART", "USD")
    await asyncio.wait_for(gateway.ib.qualifyContractsAsync(contract), timeout)
    tickers = await asyncio.wait_for(gateway.ib.reqTickersAsync(contract), timeout)
    ticker = tickers[0] if tickers else None
    for value in (ticker.last, ticker.close, ticker.marketPrice()) if ticker is not None else ():
        if value and not math.isnan(value) and value > 0:
            return float(value)
    return None


def checked_limit(limit: float | None, market: float | None) -> float:
    """The limit to place: the one given, if it is far below the market; else half the market."""
    assert market is not None, "no price from IB (delayed-frozen) to check the limit against: refusing to place an order blind"
    if limit is None:
        return round(market * 0.5, 2)
    assert limit <= market * FAR, f"IB_LIVE_LIMIT {limit} is not far below the market ({market}): a BUY there could fill — refusing to place it"
    return limit


async def paper_round_trip(gateway: IbkrGateway, sink: ListSink, intent: str, symbol: str, limit: float) -> list[ExecutionEvent]:
    paper_account(gateway)
    order = IbkrOrder(intent_id=intent, account="live-check", symbol=symbol, side="BUY", quantity=1, limit_price=limit)
    try:
        returned = await asyncio.wait_for(gateway.submit(order), WAIT)
        if not returned:
            await sink.wait_for(lambda evs: any(e.intent_id == intent for e in evs), WAIT)
        first = (returned + sink.for_intent(intent))[0]
        notes = gateway.translator.tracks[intent].notes
        assert first.kind is ExecKind.ACCEPTED, f"IB did not acknowledge: {first} (IB said: {notes})"

        again = await asyncio.wait_for(gateway.submit(order), WAIT)  # a retried activity: the same order, not a second one
        assert again[0] == first
        await asyncio.wait_for(gateway.refresh(executions=False), WAIT)
        track = gateway.translator.tracks[intent]
        assert gateway.translator.broker_refs[track.order_ref].perm_id == int(first.venue_order_id or 0)

        status = await asyncio.wait_for(gateway.order_status(intent), WAIT)
        assert status.known and status.leaves_qty == 1 and status.cum_qty == 0, status

        canceled = await asyncio.wait_for(gateway.cancel(intent), WAIT)
        if not any(e.kind is ExecKind.CANCELED for e in canceled):
            await sink.wait_for(lambda evs: any(e.intent_id == intent and e.kind is ExecKind.CANCELED for e in evs), WAIT)
        await gateway.idle(WAIT)
    finally:
        await cancel_if_working(gateway, intent)
    events = returned + again + canceled + sink.for_intent(intent)
    assert contract_violations(ContractRun(venue="ibkr-paper", events=events), {intent: 1}) == []
    kinds = [e.kind for e in events]
    assert ExecKind.FILL not in kinds and kinds[-1] is ExecKind.CANCELED, kinds
    assert {e.venue_order_id for e in events} == {first.venue_order_id}, "one permId throughout"
    assert (await asyncio.wait_for(gateway.order_status(intent), WAIT)).last_kind is ExecKind.CANCELED
    assert not [f for f in await asyncio.wait_for(gateway.executions_since(None), WAIT) if f.intent_id == intent]
    return events


async def cancel_if_working(gateway: IbkrGateway, intent: str) -> None:
    """Whatever happened, no order of this check stays working at IB."""
    track = gateway.translator.track(intent)
    if track is None or track.phase.terminal or not gateway.connected:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(gateway.cancel(intent), WAIT)
