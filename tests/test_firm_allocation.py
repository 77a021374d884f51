"""The firm's aggregate limits held through per-account allocations (domain/firm.py), pure: usage of a
book, the local pre-trade, grants and give-backs, and the property the design exists for — whatever the
interleaving of orders, fills, cancels and stale, repeated or reordered reports and replies over 2–5
accounts, the usage approved orders add never exceeds the firm's limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.enums import Bucket, RejectReason, Side
from domain.firm import (
    AccountAllocation,
    Amounts,
    FirmBook,
    FirmGrant,
    FirmLimits,
    Usage,
    UsageReport,
    check_firm_order,
    check_order,
    open_book,
    receive_report,
    usage_of,
)
from domain.models import OpenOrder, Position

MARKS = {"AAA": 10.0, "BBB": 25.0, "CCC": 7.0}


def order(symbol: str, side: Side, remaining: int, name: str = "o", limit: float | None = None) -> OpenOrder:
    return OpenOrder(intent_id=name, symbol=symbol, bucket=Bucket.LT, side=side, remaining=remaining, limit_price=limit)


def pos(symbol: str, quantity: int) -> Position:
    return Position(symbol=symbol, bucket=Bucket.LT, quantity=quantity)


# ----- usage -----


def test_usage_gross_is_the_worse_side_credit_counts_both_sides_that_add():
    # Long 100 AAA ($1,000) with a buy of 50 working and a sell of 300 (100 close the long, 200 go short).
    usage = usage_of([pos("AAA", 100)], [order("AAA", Side.BUY, 50), order("AAA", Side.SELL, 300)], MARKS)
    assert usage.gross == max(150, 200) * 10.0  # |100 + 50| vs |100 − 300|
    assert usage.credit == (100 + 50 + 200) * 10.0  # the position, the buy, the part of the sell beyond the long


def test_usage_reducing_orders_add_nothing_and_fills_never_raise_usage():
    flat = usage_of([pos("BBB", -40)], [order("BBB", Side.BUY, 40)], MARKS)
    assert (flat.gross, flat.credit) == (40 * 25.0, 40 * 25.0)  # the cover adds no credit, gross is the short
    before = usage_of([pos("AAA", 10)], [order("AAA", Side.BUY, 30), order("AAA", Side.SELL, 5)], MARKS)
    after_fill = usage_of([pos("AAA", 30)], [order("AAA", Side.BUY, 10), order("AAA", Side.SELL, 5)], MARKS)
    assert after_fill.gross <= before.gross and after_fill.credit <= before.credit


def test_usage_without_a_mark_uses_the_orders_limit():
    assert usage_of([], [order("ZZZ", Side.BUY, 10, limit=3.0)], {}).gross == 30.0


# ----- the local pre-trade -----


def test_check_order_refuses_over_the_allocation_and_passes_what_reduces():
    allocation = Amounts(gross=1_000, credit=1_500)
    assert check_order(Usage(gross=500, credit=500), Usage(gross=1_000, credit=1_000), allocation) is None  # at the limit: reached, not broken
    reason, message = check_order(Usage(gross=500, credit=500), Usage(gross=1_000.5, credit=1_000.5), allocation)
    assert reason is RejectReason.FIRM_GROSS_LIMIT and "allocation 1,000" in message
    reason, _ = check_order(Usage(gross=900, credit=1_400), Usage(gross=900, credit=1_600), allocation)
    assert reason is RejectReason.FIRM_CREDIT_LIMIT  # a second side quoted: credit, not gross
    assert check_order(Usage(gross=5_000, credit=5_000), Usage(gross=4_000, credit=5_000), allocation) is None  # over, but reducing


# ----- grants and give-backs -----


def test_a_grant_seen_late_or_twice_changes_nothing_and_give_back_keeps_what_is_used():
    mine = AccountAllocation().take_grant(Amounts(gross=700, credit=900)).take_grant(Amounts(gross=500, credit=500))
    assert mine.allocation == Amounts(gross=700, credit=900)  # the stale grant (500) is ignored
    used = Usage(gross=640.2, credit=100.0)
    back = mine.give_back(used, down_to=Amounts(gross=0, credit=300))
    assert back.allocation == Amounts(gross=641, credit=300)  # never below the usage (rounded up)
    assert back.released == Amounts(gross=59, credit=600)
    assert back.give_back(used, down_to=Amounts(gross=0, credit=300)) == back  # nothing more to give


def test_the_firm_grants_from_its_pool_and_reclaims_from_the_idle():
    book = open_book(FirmLimits(gross=1_000, credit=2_000), ["a", "b"])
    assert book.pool() == Amounts() and book.allocated() == Amounts(gross=1_000, credit=2_000)
    # a uses 480 of its 500: its target is 480 + half the free room (520 / 2), but the pool is empty.
    book, to_a = receive_report(book, UsageReport(account="a", usage=Usage(gross=480, credit=480), released=Amounts()))
    assert (to_a.granted, to_a.reclaim_to) == (Amounts(gross=500, credit=1_000), None)
    # b uses nothing: asked to give back down to its target (0 + 520 / 2; credit 0 + 1,520 / 2).
    book, to_b = receive_report(book, UsageReport(account="b", usage=Usage(), released=Amounts()))
    assert to_b.reclaim_to == Amounts(gross=260, credit=760)
    b = AccountAllocation().take_grant(to_b.granted).give_back(Usage(), to_b.reclaim_to)
    assert b.released == Amounts(gross=240, credit=240)
    # Nothing moves in the firm's books until b's release is reported; then a is granted out of the pool.
    book, _ = receive_report(book, UsageReport(account="b", usage=Usage(), released=b.released))
    assert book.pool() == Amounts(gross=240, credit=240)
    book, to_a = receive_report(book, UsageReport(account="a", usage=Usage(gross=480, credit=480), released=Amounts()))
    assert to_a.granted == Amounts(gross=740, credit=1_240) and book.pool() == Amounts() and book.allocated() == Amounts(gross=1_000, credit=2_000)


def test_a_report_from_a_stranger_gets_nothing():
    book = open_book(FirmLimits(gross=100, credit=100), ["a"])
    same, grant = receive_report(book, UsageReport(account="x", usage=Usage(gross=1), released=Amounts()), halted=True)
    assert same == book and grant == FirmGrant(account="x", granted=Amounts(), halted=True)


# ----- the property -----


@dataclass
class Account:
    positions: dict[str, int] = field(default_factory=dict)
    orders: list[OpenOrder] = field(default_factory=list)
    allocation: AccountAllocation = field(default_factory=AccountAllocation)

    def usage(self) -> Usage:
        return usage_of([pos(s, q) for s, q in self.positions.items() if q], self.orders, MARKS)


SYMBOLS = sorted(MARKS)
_order = st.tuples(st.just("order"), st.integers(0, 4), st.sampled_from(SYMBOLS), st.sampled_from(list(Side)), st.integers(1, 20))
_round_trip = st.tuples(st.just("round_trip"), st.integers(0, 4))  # a report delivered at once, its answer applied
ops = st.one_of(
    _order,
    _order,
    _order,
    _round_trip,
    _round_trip,
    st.tuples(st.just("cycle")),  # every account's round trip, in turn (one cycle of reports)
    st.tuples(st.just("cycle")),
    st.tuples(st.just("fill"), st.integers(0, 4), st.integers(0, 50), st.floats(0.01, 1.0)),
    st.tuples(st.just("cancel"), st.integers(0, 4), st.integers(0, 50)),
    st.tuples(st.just("report"), st.integers(0, 4)),  # in flight: delivered later, maybe twice, in any order
    st.tuples(st.just("deliver_report"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("deliver_reply"), st.integers(0, 50), st.booleans()),
)


def _assert_within(book: FirmBook, accounts: dict[str, Account]) -> None:
    total_gross = sum(a.usage().gross for a in accounts.values())
    total_credit = sum(a.usage().credit for a in accounts.values())
    assert total_gross <= book.limits.gross and total_credit <= book.limits.credit, (total_gross, total_credit, book.limits)
    assert book.allocated().gross <= book.limits.gross and book.allocated().credit <= book.limits.credit
    for name, account in accounts.items():
        mine, firm_view = account.allocation.allocation, book.members[name].allocated
        assert mine.gross <= firm_view.gross and mine.credit <= firm_view.credit, (name, mine, firm_view)
        usage = account.usage()
        assert usage.gross <= mine.gross and usage.credit <= mine.credit, (name, usage, mine)


@settings(max_examples=300)
@given(
    n=st.integers(2, 5),
    gross=st.integers(1_000, 8_000),
    credit=st.integers(1_000, 12_000),
    steps=st.lists(ops, min_size=30, max_size=150),
)
def test_aggregate_usage_through_approved_orders_never_exceeds_the_firm_limit(n, gross, credit, steps):
    names = [f"acct{i}" for i in range(n)]
    book = open_book(FirmLimits(gross=gross, credit=credit), names)
    # Each account has had the firm's opening grant (its first report's answer).
    accounts = {name: Account(allocation=AccountAllocation().take_grant(book.members[name].granted)) for name in names}
    reports: list[UsageReport] = []  # in flight to the firm
    replies: list[FirmGrant] = []  # in flight to the accounts
    approved = 0
    for step in steps:
        kind = step[0]
        if kind == "order":
            _, i, symbol, side, quantity = step
            account = accounts[names[i % n]]
            new = order(symbol, side, quantity, name=f"o{approved}")
            held = [pos(s, q) for s, q in account.positions.items() if q]
            if check_firm_order(held, account.orders, MARKS, new, account.allocation.allocation) is None:  # the account's local pre-trade
                account.orders.append(new)
                approved += 1
        elif kind == "fill":
            _, i, k, share = step
            account = accounts[names[i % n]]
            if account.orders:
                target = account.orders[k % len(account.orders)]
                quantity = max(1, int(target.remaining * share))
                account.positions[target.symbol] = account.positions.get(target.symbol, 0) + target.side.sign * quantity
                rest = target.remaining - quantity
                account.orders.remove(target)
                if rest:
                    account.orders.append(target.model_copy(update={"remaining": rest}))
        elif kind == "cancel":
            _, i, k = step
            account = accounts[names[i % n]]
            if account.orders:
                account.orders.pop(k % len(account.orders))
        elif kind == "report":
            name = names[step[1] % n]
            account = accounts[name]
            reports.append(UsageReport(account=name, usage=account.usage(), released=account.allocation.released))
        elif kind in ("round_trip", "cycle"):
            for name in [names[step[1] % n]] if kind == "round_trip" else names:
                account = accounts[name]
                book, grant = receive_report(book, UsageReport(account=name, usage=account.usage(), released=account.allocation.released))
                account.allocation = account.allocation.take_grant(grant.granted)
                if grant.reclaim_to is not None:
                    account.allocation = account.allocation.give_back(account.usage(), grant.reclaim_to)
        elif kind == "deliver_report" and reports:
            _, k, again = step
            report = reports[k % len(reports)] if again else reports.pop(k % len(reports))  # `again`: delivered, and still in flight (a duplicate)
            book, grant = receive_report(book, report)
            replies.append(grant)
        elif kind == "deliver_reply" and replies:
            _, k, again = step
            grant = replies[k % len(replies)] if again else replies.pop(k % len(replies))
            account = accounts[grant.account]
            account.allocation = account.allocation.take_grant(grant.granted)
            if grant.reclaim_to is not None:
                account.allocation = account.allocation.give_back(account.usage(), grant.reclaim_to)
        _assert_within(book, accounts)
    event(f"approved orders: {min(approved, 20) // 5 * 5}+")
    event(
        "an account used more than its opening share"
        if any(a.usage().gross > gross // n for a in accounts.values())
        else "none above its opening share"
    )
    event(
        "an allocation moved"
        if any(m.allocated != Amounts(gross=gross // n, credit=credit // n) for m in book.members.values())
        else "allocations as opened"
    )


def test_check_firm_order_values_a_market_order_at_the_mark():
    book = [pos("AAA", 50)]
    buy = order("AAA", Side.BUY, 60)  # MARKET: 60 × 10 more gross and credit
    assert check_firm_order(book, [], MARKS, buy, Amounts(gross=1_100, credit=1_100)) is None
    assert check_firm_order(book, [], MARKS, buy, Amounts(gross=1_099, credit=5_000))[0] is RejectReason.FIRM_GROSS_LIMIT
    assert check_firm_order(book, [], MARKS, order("AAA", Side.SELL, 50), Amounts()) is None  # closes the long: passes at no allocation
