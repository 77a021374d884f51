"""Matching a simulated venue's orders against market data: fills that could have happened
(DESIGN.md §3 "Fills with market data"). Pure; no randomness.

An order meets the market in three ways, each judged on data stamped no later than the moment:
  - Arrival, against the L1 *as of its arrival time*: marketable (buy limit ≥ ask, sell limit ≤
    bid, or MARKET) → it takes the touch (the ask for a buy, the bid for a sell) up to the size
    displayed there; the rest rests at its limit. Otherwise it rests with `ahead` = the size
    displayed at its price when it arrived: the touch size when its limit is the touch, 0 when
    it improves on the touch (a new price level), and the touch size again when it sits behind
    the touch (L1 shows no deeper level: the touch is the estimate, said plainly).
  - Prints after its arrival (and after the last window already matched), oldest first, counted
    only when they executed against a lit book at their price (`book_execution`: exchange
    prints — TRF prints never touched a book — whose conditions all update last regularly;
    odd lots count): volume *at* the limit first works off `ahead`, then fills the order; volume
    *through* the limit (a sell printed below a resting buy) would have met the order first, so
    it fills it, and nobody is left ahead at its price. Fills are at the limit.
  - A resting order that the L1 at the window's end has crossed (the ask at or below a resting
    buy) trades at its limit against the size displayed on the other side: it was there first.
A MARKET order that found no L1 stays working and takes the touch at the next window.
Quantities are whole lots unless the fill completes the order; a fill never exceeds what
remains and is never at a price worse than the limit.

`match_order` and friends at the end are the path before the exchange step (prints since the
last cycle, a queue draw): runs recorded before it replay on it (workflow.patched
"exchange-step"), and an order's own replacement arrival takes the touch through it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum

import numpy as np

from domain.base import Frozen
from domain.conditions import DEFAULT_PLAN, ODD_LOT, LastSale, SipPlan, last_sale
from domain.enums import Side
from domain.marketdata import L1, TRF_VENUE, MarketDataRule, Print, Shares

EPSILON = 1e-9  # prices compare to a billionth of a dollar


class Liquidity(str, Enum):
    """How a match happened: took the displayed touch, or rested and was traded against."""

    TAKE = "TAKE"
    PASSIVE = "PASSIVE"


class Match(Frozen):
    """A venue match: `quantity` shares at `price` (0 and None: nothing filled, `detail` says why)."""

    quantity: Shares = 0
    price: float | None = None
    liquidity: Liquidity | None = None
    detail: str = ""


class Resting(Frozen):
    """A resting order's place at its price: displayed shares still ahead of it there."""

    ahead: Shares = 0


class Arrival(Frozen):
    take: Match
    resting: Resting | None  # None: a MARKET order (it never rests)


class PrintsResult(Frozen):
    match: Match
    resting: Resting


def book_execution(conditions: str, venue: str, plan: SipPlan = DEFAULT_PLAN) -> bool:
    """A print that executed against a lit book at its price: not a TRF print, and every
    condition updates last regularly (odd lots do trade in the book)."""
    return venue != TRF_VENUE and last_sale(conditions.replace(ODD_LOT, ""), plan) is LastSale.YES


def whole_lots(quantity: int, remaining: int, lot: int) -> int:
    quantity = max(0, min(quantity, remaining))
    return quantity if quantity == remaining else quantity // lot * lot


def is_marketable(side: Side, limit_price: float | None, l1: L1) -> bool:
    if limit_price is None:
        return True
    return limit_price >= l1.ask - EPSILON if side is Side.BUY else limit_price <= l1.bid + EPSILON


def take(side: Side, limit_price: float | None, remaining: int, lot: int, l1: L1 | None) -> Match:
    """Take the displayed touch: a buy at the ask up to the ask size, a sell at the bid up to
    the bid size. `limit_price` None is a MARKET order."""
    if remaining <= 0:
        return Match(detail="nothing remaining")
    if l1 is None:
        return Match(detail="no L1 quote")
    if not is_marketable(side, limit_price, l1):
        return Match(detail="not marketable")
    touch, shown = (l1.ask, l1.ask_size) if side is Side.BUY else (l1.bid, l1.bid_size)
    quantity = whole_lots(shown, remaining, lot)
    if quantity == 0:
        return Match(detail=f"displayed {shown} at {touch:.2f} is less than a lot")
    return Match(quantity=quantity, price=touch, liquidity=Liquidity.TAKE, detail=f"took {quantity} of {shown} displayed at {touch:.2f}")


def queue_ahead(side: Side, limit_price: float, l1: L1 | None) -> int:
    """Displayed shares ahead of a new resting order at its price (see the module docstring)."""
    if l1 is None:
        return 0
    touch, shown = (l1.bid, l1.bid_size) if side is Side.BUY else (l1.ask, l1.ask_size)
    better = limit_price - touch if side is Side.BUY else touch - limit_price
    return 0 if better > EPSILON else shown


def arrive(side: Side, limit_price: float | None, remaining: int, lot: int, l1: L1 | None) -> Arrival:
    """The order meets the L1 as of its arrival: takes the touch if marketable, rests otherwise."""
    found = take(side, limit_price, remaining, lot, l1)
    if limit_price is None:
        return Arrival(take=found, resting=None)
    if found.quantity or (l1 is not None and is_marketable(side, limit_price, l1)):
        return Arrival(take=found, resting=Resting(ahead=0))  # what is left rests at a price level of its own
    return Arrival(take=found, resting=Resting(ahead=queue_ahead(side, limit_price, l1)))


def trade_prints(
    side: Side,
    limit_price: float,
    remaining: int,
    lot: int,
    resting: Resting,
    prices: Sequence[float] | np.ndarray,
    sizes: Sequence[int] | np.ndarray,
) -> PrintsResult:
    """A resting order against book-execution prints after it (oldest first): at-limit volume
    works off `ahead` then fills; through-limit volume fills and clears the queue. At the limit."""
    price = np.asarray(prices, dtype=np.float64)
    size = np.asarray(sizes, dtype=np.int64)
    gap = (limit_price - price) if side is Side.BUY else (price - limit_price)
    through = gap > EPSILON
    at = np.abs(gap) <= EPSILON
    hits = np.flatnonzero(through)
    first_through = int(hits[0]) if hits.size else price.size
    at_size = np.where(at, size, 0)
    # Before the first through print, at-limit volume reaches the order once `ahead` has traded.
    cum_at = np.cumsum(at_size[:first_through])
    before = int(np.clip(cum_at - resting.ahead, 0, at_size[:first_through]).sum()) if first_through else 0
    after = int(size[first_through:][at[first_through:] | through[first_through:]].sum())
    available = before + after
    ahead = 0 if hits.size else max(0, resting.ahead - int(at_size.sum()))
    if remaining <= 0:
        return PrintsResult(match=Match(detail="nothing remaining"), resting=Resting(ahead=ahead))
    quantity = whole_lots(available, remaining, lot)
    if quantity == 0:
        why = f"{resting.ahead} ahead at {limit_price:.2f}" if at_size.any() and not hits.size else "no prints at or through the limit"
        return PrintsResult(match=Match(detail=why), resting=Resting(ahead=ahead))
    detail = f"{int(size[through].sum())} traded through, {int(at_size.sum())} at {limit_price:.2f} with {resting.ahead} ahead"
    return PrintsResult(match=Match(quantity=quantity, price=limit_price, liquidity=Liquidity.PASSIVE, detail=detail), resting=Resting(ahead=ahead))


def crossed_by(side: Side, limit_price: float, remaining: int, lot: int, l1: L1 | None) -> Match:
    """A resting order the L1 has moved through trades at its own limit, up to the size shown
    on the other side (it was resting there first)."""
    if remaining <= 0 or l1 is None or not is_marketable(side, limit_price, l1):
        return Match(detail="not crossed")
    shown = l1.ask_size if side is Side.BUY else l1.bid_size
    quantity = whole_lots(shown, remaining, lot)
    if quantity == 0:
        return Match(detail="crossed by less than a lot")
    touch = l1.ask if side is Side.BUY else l1.bid
    return Match(quantity=quantity, price=limit_price, liquidity=Liquidity.PASSIVE, detail=f"crossed by {shown} at {touch:.2f}: filled at the limit")


# ---------------------------------------------------------------------------------------------
# The account's current path (prints since the last cycle, one queue draw): until phase 2.


def counts_for_passive(p: Print, plan: SipPlan = DEFAULT_PLAN) -> bool:
    return book_execution(p.conditions, p.venue, plan)


def match_passive(
    side: Side,
    limit_price: float,
    remaining: int,
    lot: int,
    prints: Iterable[Print],
    since: datetime,
    rng: random.Random,
    queue_fill_probability: float = MarketDataRule().queue_fill_probability,
) -> Match:
    """A resting limit against the prints after `since`: volume through the limit fills for
    sure, volume at the limit if the queue draw says our place was reached; at the limit."""
    reached = rng.random() < queue_fill_probability  # always one draw: a stable stream
    if remaining <= 0:
        return Match(detail="nothing remaining")
    through = at = 0
    for p in prints:
        if p.time <= since or not counts_for_passive(p):
            continue
        gap = limit_price - p.price if side is Side.BUY else p.price - limit_price
        if gap > EPSILON:
            through += p.size
        elif gap > -EPSILON:
            at += p.size
    available = through + (at if reached else 0)
    quantity = whole_lots(available, remaining, lot)
    if quantity == 0:
        why = "queue not reached" if at and not reached else "no prints at or through the limit"
        return Match(detail=f"{why} (through {through}, at {at})")
    return Match(
        quantity=quantity,
        price=limit_price,
        liquidity=Liquidity.PASSIVE,
        detail=f"{through} traded through, {at} at {limit_price:.2f}{' (queue reached)' if reached and at else ''}",
    )


def match_order(
    side: Side,
    limit_price: float | None,
    remaining: int,
    lot: int,
    l1: L1 | None,
    prints: Iterable[Print],
    since: datetime,
    rng: random.Random,
    rule: MarketDataRule = MarketDataRule(),
) -> Match:
    """One venue attempt: marketable now → take the touch; else rest and match the prints since
    the last attempt. On arrival pass `since` = now (no prints yet)."""
    if l1 is not None and is_marketable(side, limit_price, l1):
        return take(side, limit_price, remaining, lot, l1)
    if limit_price is None:
        return Match(detail="MARKET order without an L1 quote")
    return match_passive(side, limit_price, remaining, lot, prints, since, rng, rule.queue_fill_probability)
