"""The firm's property at the account level: desk orders judged by each member's own pre-trade
(domain/gate.py with workflows/account/firm.py `AccountFirm` — the code the account runs), usage
reports and the firm's answers in any order, stale answers taken again: the usage approved orders add
across the members never exceeds the firm's limits. (The pure model's property: test_firm_allocation.py.)"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from config.load import load_config
from domain.enums import Regime, RejectReason, RiskMode
from domain.firm import FirmBook, FirmGrant, FirmLimits, open_book, receive_report, usage_of
from domain.gate import GateContext, gate_desk_intent
from domain.ledger import BookState, Ledger
from domain.market import quote_from_mark
from domain.models import Quote
from protocol.account_state import FirmMembership
from workflows.account.firm import AccountFirm

CONFIG = load_config()
SYMBOLS = ("AAPL", "MSFT", "SPY")
QUOTES = {s: quote_from_mark(100.0) for s in SYMBOLS}
LIMITS = FirmLimits(gross=60_000, credit=80_000)  # orders up to 30,000: one member alone could pass it
MEMBERS = ("m0", "m1", "m2")


class _Market:
    """What AccountFirm reads of the market: a symbol's quote (marks fixed at 100)."""

    def quote(self, symbol: str) -> Quote:
        return QUOTES[symbol]


orders = st.tuples(st.just("order"), st.sampled_from(MEMBERS), st.sampled_from(SYMBOLS), st.sampled_from(["BUY", "SELL"]), st.integers(1, 300))
reports = st.tuples(st.just("report"), st.sampled_from(MEMBERS), st.booleans())  # True: the answer is delivered later
deliveries = st.tuples(st.just("deliver"), st.integers(0, 20))


@settings(max_examples=100)
@given(st.lists(st.one_of(orders, reports, deliveries), min_size=1, max_size=60))
def test_approved_orders_never_take_the_members_past_the_firms_limits(steps):
    book: FirmBook = open_book(LIMITS, list(MEMBERS))
    ledgers = {m: Ledger(BookState(equity=100_000_000.0)) for m in MEMBERS}
    firms = {m: AccountFirm(m, "F", FirmMembership(), ledgers[m], _Market(), operator=None) for m in MEMBERS}
    pending: list[tuple[str, FirmGrant, object]] = []
    approved, refused = 0, False
    for member in MEMBERS[:2]:  # two members have their first grant; the third trades only once it reports
        report, usage = firms[member].report_of()
        book, grant = receive_report(book, report)
        firms[member].take(grant, usage)
    for n, step in enumerate(steps):
        if step[0] == "order":
            _, member, symbol, side, quantity = step
            ctx = GateContext(
                account=member, ledger=ledgers[member], mode=RiskMode.NORMAL, regime=Regime.MID, quote_of=QUOTES.__getitem__, config=CONFIG,
                firm_check=firms[member].refusal,
            )  # fmt: skip
            raw = {"intent_id": f"{member}-{n}", "account": member, "symbol": symbol, "side": side, "quantity": quantity, "limit_price": 100.0}
            verdict = gate_desk_intent(raw, ctx)
            refused = refused or verdict.reason in (RejectReason.FIRM_GROSS_LIMIT, RejectReason.FIRM_CREDIT_LIMIT)
            if verdict.approved and verdict.intent is not None:
                ledgers[member].reserve(verdict.intent, own=False, cycle=n, expires_at="")
                approved += 1
        elif step[0] == "report":
            _, member, later = step
            report, usage = firms[member].report_of()
            book, grant = receive_report(book, report)
            if later:
                pending.append((member, grant, usage))
            else:
                firms[member].take(grant, usage)
        elif pending:  # an answer arrives late (and may be one the member already has a newer one of)
            member, grant, usage = pending.pop(step[1] % len(pending))
            firms[member].take(grant, usage)
        total = [usage_of(ledgers[m].positions(), ledgers[m].footprints(), {s: 100.0 for s in SYMBOLS}) for m in MEMBERS]
        assert sum(u.gross for u in total) <= LIMITS.gross + 1e-6
        assert sum(u.credit for u in total) <= LIMITS.credit + 1e-6
    event(f"approved orders: {min(approved, 5)}{'+' if approved >= 5 else ''}")
    event("a member refused for its allocation" if refused else "no allocation refusal")
