"""A firm's aggregate limits over its accounts, kept without a round trip per order (DESIGN.md §3:
"A firm groups accounts: aggregate limits and a firm kill switch"; SEC 15c3-5 credit thresholds in the
aggregate). Pure.

Two limits, in whole units of account currency, each on a usage the account computes from its book at
its marks:
  - gross: the potential gross notional — per symbol the larger of |position + open buys| and
    |position − open sells| (the worst side filling), summed;
  - credit: positions' notional plus every open order that would add to a position, on both sides
    (a market maker quoting both sides uses credit on both, gross on the worse one).
An order that raises neither (reduces a position) is never held back: de-risk and reduce-only pass.
Fills and cancels never raise either (at the marks): only an approved order can.

How no order waits on the firm: each account holds an ALLOCATION of each limit and judges its orders
locally (`check_order`: usage with the order ≤ allocation). The firm rebalances allocations from the
usage the accounts report once a cycle. The sum of usage through approved orders can never exceed the
firm's limit, whatever the reports' delays, duplicates or order, because allocations only move as two
monotonic counters per account and dimension:
  - `granted`: cumulative grants, raised only by the firm and only out of its unallocated pool;
    the account keeps the largest value it has seen (a stale or repeated grant changes nothing);
  - `released`: cumulative give-backs, raised only by the account and only out of allocation it does
    not use; the firm keeps the largest value reported.
The account may use granted_seen − released ≤ granted − released_seen, which is what the firm counts
as allocated; the firm's allocated total never exceeds its limit. So
Σ usage ≤ Σ account allocations ≤ Σ firm-side allocations ≤ limit. A reclaim is only a request ("give
back down to X"): the account gives back what it does not use, nothing more.

Prices move: a position's usage can grow past its allocation without any order. Then that account's
risk-raising orders are refused until usage falls (or the firm grants more); the firm's limit holds for
everything approved orders add.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated

from pydantic import Field

from domain.base import Finite
from domain.enums import RejectReason, Side
from domain.models import OpenOrder, Position
from domain.policy import over

MAX_FIRM_LIMIT = 10**15  # account currency
MAX_MEMBERS = 100
Refusal = tuple[RejectReason, str]


Units = Annotated[int, Field(ge=0, le=MAX_FIRM_LIMIT)]


class Amounts(Finite):
    """Whole currency units per limit (exact arithmetic: allocations are sums of these)."""

    gross: Units = 0
    credit: Units = 0

    def plus(self, other: Amounts) -> Amounts:
        return Amounts(gross=self.gross + other.gross, credit=self.credit + other.credit)

    def minus(self, other: Amounts) -> Amounts:
        """Never below zero (a difference of the counters is ≥ 0 by construction)."""
        return Amounts(gross=max(0, self.gross - other.gross), credit=max(0, self.credit - other.credit))

    def merged(self, other: Amounts) -> Amounts:
        """The larger of each: how a monotonic counter takes a message that may be stale."""
        return Amounts(gross=max(self.gross, other.gross), credit=max(self.credit, other.credit))


class FirmLimits(Finite):
    gross: Annotated[int, Field(gt=0, le=MAX_FIRM_LIMIT)]
    credit: Annotated[int, Field(gt=0, le=MAX_FIRM_LIMIT)]


class Usage(Finite):
    gross: Annotated[float, Field(ge=0)] = 0.0
    credit: Annotated[float, Field(ge=0)] = 0.0

    def units(self) -> Amounts:
        """Rounded up: the firm plans with at least what is used."""
        return Amounts(gross=min(MAX_FIRM_LIMIT, math.ceil(self.gross)), credit=min(MAX_FIRM_LIMIT, math.ceil(self.credit)))


# ----- usage from a book -----


class _Book:
    """A book's shares per symbol: held, open buys, open sells (and a limit to value it without a mark)."""

    def __init__(self, positions: Iterable[Position], open_orders: Iterable[OpenOrder]) -> None:
        self.held: dict[str, int] = {}
        self.buys: dict[str, int] = {}
        self.sells: dict[str, int] = {}
        self.limit_of: dict[str, float] = {}
        for position in positions:
            self.held[position.symbol] = self.held.get(position.symbol, 0) + position.quantity
        for o in open_orders:
            self.add(o)

    def add(self, o: OpenOrder) -> None:
        side = self.buys if o.side is Side.BUY else self.sells
        side[o.symbol] = side.get(o.symbol, 0) + max(0, o.remaining)
        if o.limit_price is not None:
            self.limit_of.setdefault(o.symbol, o.limit_price)

    def symbols(self) -> set[str]:
        return self.held.keys() | self.buys.keys() | self.sells.keys()

    def usage(self, symbol: str, marks: Mapping[str, float]) -> tuple[float, float]:
        price = marks.get(symbol, self.limit_of.get(symbol, 0.0))
        if not (math.isfinite(price) and price > 0):
            return 0.0, 0.0
        p, b, s = self.held.get(symbol, 0), self.buys.get(symbol, 0), self.sells.get(symbol, 0)
        gross = max(abs(p + b), abs(p - s)) * price
        credit = (abs(p) + max(0, b - max(0, -p)) + max(0, s - max(0, p))) * price
        return gross, credit


def usage_of(positions: Iterable[Position], open_orders: Iterable[OpenOrder], marks: Mapping[str, float]) -> Usage:
    """Gross and credit usage of a book at `marks` (a symbol without a mark: its orders' limits, else 0)."""
    book = _Book(positions, open_orders)
    gross = credit = 0.0
    for symbol in book.symbols():
        g, c = book.usage(symbol, marks)
        gross, credit = gross + g, credit + c
    return Usage(gross=gross, credit=credit)


def check_order(before: Usage, after: Usage, allocation: Amounts) -> Refusal | None:
    """The account's local pre-trade against its allocation: an order that raises gross (credit) usage
    past the allocation is refused FIRM_GROSS_LIMIT (FIRM_CREDIT_LIMIT); one that raises neither passes."""
    if after.gross > before.gross and over(after.gross, allocation.gross):
        return (
            RejectReason.FIRM_GROSS_LIMIT,
            f"potential gross {after.gross:,.2f} with the order is above this account's allocation {allocation.gross:,} of the firm's gross limit",
        )
    if after.credit > before.credit and over(after.credit, allocation.credit):
        return (
            RejectReason.FIRM_CREDIT_LIMIT,
            f"credit {after.credit:,.2f} with the order is above this account's allocation {allocation.credit:,} of the firm's credit limit",
        )
    return None


def check_firm_order(
    positions: Sequence[Position], open_orders: Sequence[OpenOrder], marks: Mapping[str, float], order: OpenOrder, allocation: Amounts
) -> Refusal | None:
    """`check_order` for a book and one more order (an `OpenOrder` footprint: its side, remaining and
    limit; a MARKET order with limit None is valued at the mark). One pass over the book: only the
    order's symbol changes."""
    book = _Book(positions, open_orders)
    gross = credit = 0.0
    for symbol in book.symbols():
        g, c = book.usage(symbol, marks)
        gross, credit = gross + g, credit + c
    sym_gross, sym_credit = book.usage(order.symbol, marks)
    book.add(order)
    new_gross, new_credit = book.usage(order.symbol, marks)
    before = Usage(gross=gross, credit=credit)
    after = Usage(gross=max(0.0, gross - sym_gross + new_gross), credit=max(0.0, credit - sym_credit + new_credit))
    return check_order(before, after, allocation)


# ----- the account's side -----


class AccountAllocation(Finite):
    """What an account holds of its firm's limits: granted_seen − released."""

    granted_seen: Amounts = Amounts()
    released: Amounts = Amounts()

    @property
    def allocation(self) -> Amounts:
        return self.granted_seen.minus(self.released)

    def take_grant(self, granted: Amounts) -> AccountAllocation:
        """The firm's cumulative grant (stale, repeated or out of order: the largest wins)."""
        return self.model_copy(update={"granted_seen": self.granted_seen.merged(granted)})

    def give_back(self, usage: Usage, down_to: Amounts) -> AccountAllocation:
        """Release allocation above `down_to`, but never what is used (usage rounded up)."""
        used = usage.units()
        have = self.allocation
        keep = Amounts(gross=max(down_to.gross, used.gross), credit=max(down_to.credit, used.credit))
        give = have.minus(keep)
        return self.model_copy(update={"released": self.released.plus(give)}) if give != Amounts() else self


class UsageReport(Finite):
    """What an account tells its firm each cycle."""

    account: str = Field(min_length=1, max_length=80)
    usage: Usage
    released: Amounts  # cumulative
    granted_seen: Amounts = Amounts()  # cumulative, for the firm's view of what arrived


class FirmGrant(Finite):
    """The firm's answer to a report: its cumulative grant to the account, and, when it wants some back,
    the allocation to give back down to."""

    account: str
    granted: Amounts
    reclaim_to: Amounts | None = None
    halted: bool = False


# ----- the firm's side -----


class Member(Finite):
    granted: Amounts = Amounts()  # cumulative
    released_seen: Amounts = Amounts()  # cumulative, the largest reported
    usage: Usage = Usage()  # as last reported
    reports: int = 0
    reclaim_to: Amounts | None = None

    @property
    def allocated(self) -> Amounts:
        return self.granted.minus(self.released_seen)


class FirmBook(Finite):
    limits: FirmLimits
    members: dict[str, Member] = Field(default_factory=dict, max_length=MAX_MEMBERS)

    def allocated(self) -> Amounts:
        total = Amounts()
        for m in self.members.values():
            total = total.plus(m.allocated)
        return total

    def pool(self) -> Amounts:
        """What the firm may still grant."""
        return Amounts(gross=self.limits.gross, credit=self.limits.credit).minus(self.allocated())


def open_book(limits: FirmLimits, accounts: Sequence[str]) -> FirmBook:
    """A firm with each member granted an equal share of each limit (rounded down)."""
    n = max(1, len(accounts))
    share = Amounts(gross=limits.gross // n, credit=limits.credit // n)
    return FirmBook(limits=limits, members={a: Member(granted=share) for a in accounts})


def _target(book: FirmBook, account: str) -> Amounts:
    """What `account` should hold: its usage plus an equal share of the room no member uses."""
    used = [m.usage.units() for m in book.members.values()]
    free_gross = max(0, book.limits.gross - sum(u.gross for u in used))
    free_credit = max(0, book.limits.credit - sum(u.credit for u in used))
    n = len(book.members)
    mine = book.members[account].usage.units()
    return Amounts(gross=mine.gross + free_gross // n, credit=mine.credit + free_credit // n)


def receive_report(book: FirmBook, report: UsageReport, *, halted: bool = False) -> tuple[FirmBook, FirmGrant]:
    """The firm takes a member's report and rebalances that member: grants up to its target out of the
    pool, or asks it to give back down to its target. A report from a non-member gets a zero grant."""
    member = book.members.get(report.account)
    if member is None:
        return book, FirmGrant(account=report.account, granted=Amounts(), halted=halted)
    member = member.model_copy(
        update={"released_seen": member.released_seen.merged(report.released), "usage": report.usage, "reports": member.reports + 1}
    )
    book = book.model_copy(update={"members": {**book.members, report.account: member}})
    target = _target(book, report.account)
    pool, have = book.pool(), member.allocated
    grant = Amounts(gross=min(pool.gross, max(0, target.gross - have.gross)), credit=min(pool.credit, max(0, target.credit - have.credit)))
    reclaim = target if (have.gross > target.gross or have.credit > target.credit) else None
    member = member.model_copy(update={"granted": member.granted.plus(grant), "reclaim_to": reclaim})
    book = book.model_copy(update={"members": {**book.members, report.account: member}})
    return book, FirmGrant(account=report.account, granted=member.granted, reclaim_to=reclaim, halted=halted)
