"""Marks from market data, fresh or flagged stale (DESIGN.md §3 "Marks"), and the collar's
reference, which is the same price and fails closed when nothing is fresh. Pure.

The mark of a symbol as of `as_of`:
  1. the truth tick while it is fresh (its age ≤ `print_max_age_seconds`), clamped into the
     current bid/ask when a fresh L1 has the tick outside it (the market moved since);
  2. else the mid of a fresh L1 (age ≤ `l1_max_age_seconds`);
  3. else the last mark the data gave, flagged stale with its age: the newer of the truth tick
     and the L1 mid, aged from its own time (the feed keeps no per-account history: this is the
     mark the account had when that datum was last fresh);
  4. else (no data at all) the reference price, stale with no age.
The collar reference is the mark while it is fresh (1 or 2), else None: a limit cannot be held
to a collar around a price nobody can trade at, so the collar refuses (fails closed).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import NamedTuple


class MarkSource(str, Enum):
    TRUTH_TICK = "TRUTH_TICK"
    MID = "MID"
    REFERENCE = "REFERENCE"
    MARK = "MARK"  # an account without a named market: the simulated feed quotes from the account's own mark


class Mark(NamedTuple):
    price: float
    source: MarkSource
    age_seconds: float | None  # None: the reference price (no market data at all)
    stale: bool
    clamped: bool = False  # the truth tick was outside the fresh bid/ask and was moved to it

    @property
    def collar_reference(self) -> float | None:
        return None if self.stale else self.price


def fresh_mark(
    *,
    truth: float | None,
    print_age: float | None,
    bid: float | None,
    ask: float | None,
    l1_age: float | None,
    reference_price: float | None,
    print_max_age_seconds: float,
    l1_max_age_seconds: float,
) -> Mark:
    """The mark from a view's parts (ages in seconds to the view's time; None: no such data)."""
    l1_fresh = bid is not None and ask is not None and l1_age is not None and l1_age <= l1_max_age_seconds
    if truth is not None and print_age is not None and print_age <= print_max_age_seconds:
        if l1_fresh:
            assert bid is not None and ask is not None
            low, high = min(bid, ask), max(bid, ask)  # a crossed quote clamps into its range
            inside = min(max(truth, low), high)
            return Mark(inside, MarkSource.TRUTH_TICK, print_age, stale=False, clamped=inside != truth)
        return Mark(truth, MarkSource.TRUTH_TICK, print_age, stale=False)
    if l1_fresh:
        assert bid is not None and ask is not None
        return Mark(round((bid + ask) / 2, 6), MarkSource.MID, l1_age, stale=False)
    last = _newest(truth, print_age, bid, ask, l1_age)
    if last is not None:
        return last
    if reference_price is not None:
        return Mark(reference_price, MarkSource.REFERENCE, None, stale=True)
    raise ValueError("no truth tick, no L1 and no reference price: nothing to mark with")


def _newest(truth: float | None, print_age: float | None, bid: float | None, ask: float | None, l1_age: float | None) -> Mark | None:
    tick = Mark(truth, MarkSource.TRUTH_TICK, print_age, stale=True) if truth is not None and print_age is not None else None
    mid = Mark(round((bid + ask) / 2, 6), MarkSource.MID, l1_age, stale=True) if bid is not None and ask is not None and l1_age is not None else None
    if tick is None or mid is None:
        return tick or mid
    assert tick.age_seconds is not None and mid.age_seconds is not None
    return tick if tick.age_seconds <= mid.age_seconds else mid


def collar_reference_at(reference: float | None, mark_age: float | None, view_time: datetime, now: datetime, max_age: float) -> float | None:
    """A view's collar reference judged at `now` (a pre-trade check between two cycles): still
    the reference while the mark's age at `now` is within `max_age` (the limit of its source),
    else None (fail closed)."""
    if reference is None or mark_age is None:
        return None
    return reference if mark_age + max(0.0, (now - view_time).total_seconds()) <= max_age else None
