"""IB's positions against the rig's books: a difference is reported, never overwritten.

Each check (on every connect, 1101/1102, and every `positions_every` seconds) compares IB's
position per symbol in the gateway's IB account with the sum of the books of the rig accounts
trading through it. A book lags IB by the time a fill takes to reach it, so a difference counts
only when a second check sees the same numbers with no execution of that symbol in between; then
every account is told once (BrokerDivergence), again only when the numbers change, and once more
when IB and the books agree again (a BrokerDivergence with difference 0: resolved)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Difference:
    symbol: str
    ib_position: int
    book_position: int
    by_account: dict[str, int]


@dataclass
class PositionWatch:
    pending: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # symbol → (ib, book, executions seen) at the last check
    reported: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol → the (ib, book) last reported

    def compare(self, ib: dict[str, int], books: dict[str, dict[str, int]], executions: dict[str, int]) -> tuple[list[Difference], bool]:
        """(differences confirmed now, whether another check should follow soon)."""
        total: dict[str, int] = {}
        for held in books.values():
            for symbol, quantity in held.items():
                total[symbol] = total.get(symbol, 0) + quantity
        confirmed: list[Difference] = []
        pending: dict[str, tuple[int, int, int]] = {}
        for symbol in sorted(set(ib) | set(total) | set(self.reported)):
            ib_qty, book_qty = ib.get(symbol, 0), total.get(symbol, 0)
            if ib_qty == book_qty:
                if self.reported.pop(symbol, None) is not None:  # it had been told: now it is resolved
                    confirmed.append(Difference(symbol, ib_qty, book_qty, {a: held.get(symbol, 0) for a, held in sorted(books.items())}))
                continue
            seen = executions.get(symbol, 0)
            before = self.pending.get(symbol)
            if before == (ib_qty, book_qty, seen) and self.reported.get(symbol) != (ib_qty, book_qty):
                self.reported[symbol] = (ib_qty, book_qty)
                confirmed.append(Difference(symbol, ib_qty, book_qty, {a: held.get(symbol, 0) for a, held in sorted(books.items())}))
            elif self.reported.get(symbol) != (ib_qty, book_qty):
                pending[symbol] = (ib_qty, book_qty, seen)
        self.pending = pending
        return confirmed, bool(pending)
