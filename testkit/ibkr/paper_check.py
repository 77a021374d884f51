"""The paper-account round trip `make test-ibkr-live` runs (tests_live/test_ibkr_paper.py), kept
here so the unit suite can rehearse it against the fake TWS: one 1-share BUY LIMIT far below
the market, acknowledged, looked up, retried (no second order), canceled, and the events checked."""

from __future__ import annotations

import math

from ib_async import Stock

from domain.execution import ExecKind, ExecutionEvent
from venues.contract import ContractRun, contract_violations
from venues.ibkr.gateway import IbkrGateway
from venues.ibkr.models import IbkrOrder
from venues.sink import ListSink

WAIT = 30.0


def paper_account(gateway: IbkrGateway) -> str:
    accounts = gateway.ib.managedAccounts()
    account = gateway.settings.account or (accounts[0] if len(accounts) == 1 else "")
    assert account, f"several accounts {accounts}: set IB_ACCOUNT"
    assert account.startswith(("DU", "DF")), f"{account} is not a paper account: this check only runs on paper"
    return account


async def far_limit(gateway: IbkrGateway, symbol: str) -> float:
    """Half of IB's delayed/frozen price (paper accounts often have no live data)."""
    gateway.ib.reqMarketDataType(4)
    contract = Stock(symbol, "SMART", "USD")
    await gateway.ib.qualifyContractsAsync(contract)
    ticker = (await gateway.ib.reqTickersAsync(contract))[0]
    for value in (ticker.last, ticker.close, ticker.marketPrice()):
        if value and not math.isnan(value) and value > 0:
            return round(float(value) * 0.5, 2)
    raise AssertionError(f"no reference price for {symbol} from IB: set IB_LIVE_LIMIT to a price far below the market")


async def paper_round_trip(gateway: IbkrGateway, sink: ListSink, intent: str, symbol: str, limit: float) -> list[ExecutionEvent]:
    paper_account(gateway)
    order = IbkrOrder(intent_id=intent, account="live-check", symbol=symbol, side="BUY", quantity=1, limit_price=limit)

    returned = await gateway.submit(order)
    if not returned:
        await sink.wait_for(lambda evs: any(e.intent_id == intent for e in evs), WAIT)
    first = (returned + sink.for_intent(intent))[0]
    notes = gateway.translator.tracks[intent].notes
    assert first.kind is ExecKind.ACCEPTED, f"IB did not acknowledge: {first} (IB said: {notes})"

    again = await gateway.submit(order)  # a retried activity: the same order, not a second one
    assert again[0] == first
    await gateway.refresh(executions=False)
    assert gateway.translator.broker_refs[intent].perm_id == int(first.venue_order_id or 0)

    status = await gateway.order_status(intent)
    assert status.known and status.leaves_qty == 1 and status.cum_qty == 0, status

    canceled = await gateway.cancel(intent)
    if not any(e.kind is ExecKind.CANCELED for e in canceled):
        await sink.wait_for(lambda evs: any(e.intent_id == intent and e.kind is ExecKind.CANCELED for e in evs), WAIT)
    await gateway.idle(WAIT)
    events = returned + again + canceled + sink.for_intent(intent)
    assert contract_violations(ContractRun(venue="ibkr-paper", events=events), {intent: 1}) == []
    kinds = [e.kind for e in events]
    assert ExecKind.FILL not in kinds and kinds[-1] is ExecKind.CANCELED, kinds
    assert {e.venue_order_id for e in events} == {first.venue_order_id}, "one permId throughout"
    assert (await gateway.order_status(intent)).last_kind is ExecKind.CANCELED
    assert not [f for f in await gateway.executions_since(None) if f.intent_id == intent]
    return events
