"""The run digest's chain (domain/digest.py) and its items (protocol/run_digest.py), pure: every
component a run records changes the digest when it alone changes; the order in which one cycle's
items arrived does not; the chain covers the whole run, however long (no tail)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from domain.digest import ITEMS_KEPT, DigestKind, RunDigest, digest_of, first_difference
from domain.enums import Bucket, CancelReason, IntentKind, OrderState, Regime, RejectReason, RiskMode, Side, TradingState
from domain.ledger import ClosedOrder, FillRecord, Journal, LedgerOrder
from domain.models import Intent, OpenOrder, Position
from domain.order import OrderOutcome
from domain.pnl import PnlTotals
from domain.policy import DecisionInput
from protocol import run_digest
from protocol.messages import Answer, CancelRefusal, DecisionRecord, TradingStateChange

ACCOUNT = "acct"


def decision(**changes) -> DecisionRecord:
    base = DecisionRecord(
        cycle=3,
        exchange_time="16:16:00",
        regime="LATE",
        mode=RiskMode.SOFT_DERISK,
        reason="OVER_REGIME_TOLERANCE",
        sentence="gross 115% reaches the LATE tolerance",
        gross_pct=115.0,
        potential_pct=116.0,
        tolerance_pct=115.0,
        gross_pct_after=113.0,
        inputs=DecisionInput(
            regime=Regime.LATE,
            gross_exposure_pct=115.0,
            potential_exposure_pct=116.0,
            lt_current_pct=90.0,
            lt_potential_pct=91.0,
            mm_current_pct=25.0,
            mm_potential_pct=25.0,
            minutes_to_close=14.0,
        ),
        skipped=["XOM: STALE_DATA print 400s old"],
    )
    return base.model_copy(update=changes)


def intent(**changes) -> Intent:
    return Intent(
        intent_id=f"{ACCOUNT}-o1", account=ACCOUNT, symbol="AAPL", bucket=Bucket.LT, side=Side.SELL, quantity=500, limit_price=190.0
    ).model_copy(update=changes)


def closed(**changes) -> ClosedOrder:
    outcome = OrderOutcome(intent_id=f"{ACCOUNT}-o1", state=OrderState.FILLED, quantity=500, filled_quantity=500, kind=IntentKind.NEW)
    order = ClosedOrder(outcome=outcome, intent=intent(), own=False)
    outcome_changes = {k: v for k, v in changes.items() if k in OrderOutcome.model_fields}
    intent_changes = {k: v for k, v in changes.items() if k in Intent.model_fields and k not in outcome_changes}
    return order.model_copy(
        update={"outcome": outcome.model_copy(update=outcome_changes), "intent": intent().model_copy(update=intent_changes)}
        | ({"own": changes["own"]} if "own" in changes else {})
    )


def fill(**changes) -> FillRecord:
    return FillRecord(
        cycle=3,
        exchange_time="16:16:00",
        fill_id=f"{ACCOUNT}-o1/C3",
        intent_id=f"{ACCOUNT}-o1",
        symbol="AAPL",
        bucket=Bucket.LT,
        side=Side.SELL,
        quantity=500,
        price=190.0,
    ).model_copy(update=changes)


def answer(**changes) -> Answer:
    return Answer(action="cancel", intent_id=f"{ACCOUNT}-o2", accepted=False, refusal=CancelRefusal.TOO_LATE_TO_CANCEL, message="x").model_copy(
        update=changes
    )


def change(**changes) -> TradingStateChange:
    return TradingStateChange(
        state=TradingState.HALTED, by="ops", reason="kill", previous=TradingState.ACTIVE, cycle=3, exchange_time="16:16:00"
    ).model_copy(update=changes)


def open_order(**changes) -> LedgerOrder:
    footprint = OpenOrder(intent_id=f"{ACCOUNT}-o3", symbol="MSFT", bucket=Bucket.LT, side=Side.BUY, remaining=100, kind=IntentKind.NEW)
    return LedgerOrder(intent=intent(intent_id=f"{ACCOUNT}-o3"), footprint=footprint, state=OrderState.WORKING).model_copy(update=changes)


def run(
    *,
    d: DecisionRecord | None = None,
    c: ClosedOrder | None = None,
    f: FillRecord | None = None,
    a: Answer | None = None,
    t: TradingStateChange | None = None,
    o: LedgerOrder | None = None,
    position: int = -500,
    pnl: PnlTotals | None = None,
    quiet: int = 5,
) -> str:
    """One small run with one item of every kind; `None` arguments take the reference value."""
    digest = RunDigest()
    run_digest.add_decision(digest, d or decision())
    run_digest.add_journal(digest, Journal(fills=[f or fill()], closed=[c or closed()]), ACCOUNT)
    run_digest.add_answer(digest, a or answer(), ACCOUNT)
    run_digest.add_trading_change(digest, t or change())
    digest.seal()
    run_digest.add_quiet(digest, 4, quiet, "16:21:00")
    digest.seal()
    run_digest.add_final(
        digest,
        [o or open_order()],
        [Position(symbol="AAPL", bucket=Bucket.LT, quantity=position)],
        pnl or PnlTotals(realized=12.5, unrealized=-3.0, daily=9.5),
        ACCOUNT,
    )
    digest.seal()
    return digest.value


MUTATIONS: dict[str, Callable[[], str]] = {
    "decision mode": lambda: run(d=decision(mode=RiskMode.HARD_DERISK)),
    "decision reason": lambda: run(d=decision(reason="CLOSE_OVER_TOLERANCE")),
    "decision gross": lambda: run(d=decision(gross_pct=115.5)),
    "decision gross after": lambda: run(d=decision(gross_pct_after=112.0)),
    "decision skipped symbols": lambda: run(d=decision(skipped=[])),
    "decision time": lambda: run(d=decision(exchange_time="16:17:00")),
    "quiet stretch length": lambda: run(quiet=6),
    "order final state": lambda: run(c=closed(state=OrderState.CANCELED)),
    "order reject reason (the collar tamper)": lambda: run(c=closed(state=OrderState.REJECTED, reject_reason=RejectReason.PRICE_COLLAR)),
    "order reject reason code": lambda: run(c=closed(state=OrderState.REJECTED, reject_reason=RejectReason.MAX_ORDER_QUANTITY)),
    "order cancel reason": lambda: run(c=closed(state=OrderState.CANCELED, cancel_reason=CancelReason.USER)),
    "order lost cause": lambda: run(c=closed(lost_cause="terminated")),
    "order filled quantity": lambda: run(c=closed(filled_quantity=400)),
    "order replaced by": lambda: run(c=closed(replaced_by=f"{ACCOUNT}-o1.R1")),
    "order desk or rig": lambda: run(c=closed(own=True)),
    "intent symbol": lambda: run(c=closed(symbol="MSFT")),
    "intent side": lambda: run(c=closed(side=Side.BUY)),
    "intent limit price": lambda: run(c=closed(limit_price=190.01)),
    "fill time": lambda: run(f=fill(exchange_time="16:17:00")),
    "fill symbol": lambda: run(f=fill(symbol="MSFT")),
    "fill side": lambda: run(f=fill(side=Side.BUY)),
    "fill quantity": lambda: run(f=fill(quantity=499)),
    "fill price": lambda: run(f=fill(price=190.000002)),
    "fill id": lambda: run(f=fill(fill_id=f"{ACCOUNT}-o1/C4")),
    "answer accepted": lambda: run(a=answer(accepted=True, refusal=None)),
    "answer refusal": lambda: run(a=answer(refusal=CancelRefusal.ORDER_CLOSED)),
    "trading state": lambda: run(t=change(state=TradingState.REDUCING)),
    "trading state who": lambda: run(t=change(by="someone else")),
    "trading state why": lambda: run(t=change(reason="another reason")),
    "still open at the end": lambda: run(o=open_order(state=OrderState.PARTIAL_FILL, filled=10)),
    "final position": lambda: run(position=-400),
    "final P&L": lambda: run(pnl=PnlTotals(realized=12.5, unrealized=-3.0, daily=9.6)),
}


def test_the_reference_run_is_stable() -> None:
    assert run() == run() and run().startswith("sha256:") and len(run()) == len("sha256:") + 64


@pytest.mark.parametrize("component", list(MUTATIONS))
def test_changing_one_component_changes_the_digest(component: str) -> None:
    assert MUTATIONS[component]() != run(), f"the digest does not see {component}"


def test_the_order_in_which_one_cycles_items_arrived_does_not_matter() -> None:
    a, b = RunDigest(), RunDigest()
    run_digest.add_journal(a, Journal(fills=[fill(), fill(fill_id="x/2")], closed=[closed(), closed(intent_id="acct-o9")]), ACCOUNT)
    run_digest.add_journal(b, Journal(fills=[fill(fill_id="x/2"), fill()], closed=[closed(intent_id="acct-o9"), closed()]), ACCOUNT)
    a.seal()
    b.seal()
    assert a.value == b.value and a.count == 4


def test_the_digest_covers_the_whole_run_not_a_tail() -> None:
    """Two runs that differ only in their first item differ however long they go on, though the
    kept log holds only the tail."""
    runs = []
    for first_mode in (RiskMode.NORMAL, RiskMode.THROTTLE_NEW_ORDERS):
        digest = RunDigest()
        run_digest.add_decision(digest, decision(cycle=1, mode=first_mode))
        digest.seal()
        for cycle in range(2, ITEMS_KEPT + 50):
            run_digest.add_decision(digest, decision(cycle=cycle))
            digest.seal()
        runs.append(digest)
    assert runs[0].log == runs[1].log and len(runs[0].log) == ITEMS_KEPT
    assert runs[0].value != runs[1].value
    assert first_difference(runs[0].log, runs[1].log) is None  # the kept tails agree; the chains do not


def test_a_carried_digest_continues_the_same_chain() -> None:
    """Continue-as-new carries the model: folding after a round trip through JSON gives the chain
    an uninterrupted run gives, pending items included."""
    whole, first = RunDigest(), RunDigest()
    for digest in (whole, first):
        run_digest.add_decision(digest, decision(cycle=1))
        digest.seal()
        run_digest.add_journal(digest, Journal(fills=[fill()]), ACCOUNT)  # pending at the continue-as-new
    carried = RunDigest.model_validate_json(first.model_dump_json())
    for digest in (whole, carried):
        run_digest.add_decision(digest, decision(cycle=2))
        digest.seal()
    assert carried.value == whole.value and carried.count == whole.count == 3


def test_digest_of_recomputes_a_whole_log_and_first_difference_names_the_item() -> None:
    digest = RunDigest()
    run_digest.add_decision(digest, decision())
    run_digest.add_journal(digest, Journal(fills=[fill()], closed=[closed()]), ACCOUNT)
    digest.seal()
    assert digest_of(digest.log) == digest.value
    changed = copy.deepcopy(digest.log)
    order = next(i for i in changed if i.kind is DigestKind.ORDER)
    order.body["reject"] = "PRICE_COLLAR"
    assert digest_of(changed) != digest.value
    said = first_difference(digest.log, changed)
    assert said is not None and said.startswith(f"item #{order.seq}: expected #{order.seq} order ") and "PRICE_COLLAR" in said
    assert first_difference(digest.log, digest.log) is None
    assert "more items than expected" in (first_difference(digest.log[:-1], digest.log) or "")
