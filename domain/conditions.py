"""Sale conditions and round lots as data: which prints may set the last sale, per SIP plan.

Sources
  UTP (Tape C, Nasdaq-listed; the UTDF feed): the *UTP Plan Trade Data Feed (UTDF)
  Specification*, sale-condition matrix, "Consolidated processing guidelines", column "Update
  Last" — as reproduced in Polygon.io's glossary "Conditions & Indicators" (US stocks). Its note 1
  (codes G, P, R, Z, 4): update last "only if the trade is the first or only last sale eligible
  trade transaction of the business day from any UTP participant".
  CTA (Tapes A and B, NYSE-, NYSE Arca-, NYSE American- and Cboe-listed; the CTS feed): the *CTS
  Output Specification*, sale-condition last-sale eligibility — as summarized in Barchart's
  ddfplus "Appendix A — Processing of Special Sale Conditions", NYSE/AMEX rules: live (update
  last) @ E F K X 5 6 9; update last only as the first trade of the day L O P Z 4; all other
  codes volume only. R (Seller) is first-of-day on CTA as on UTP (DESIGN.md §3); on CTA, B is the
  average-price trade (never last) while on UTP it is a bunched trade (last eligible).

Round lots
  SEC Release No. 34-101070 (Sept. 18, 2024), 89 FR 81620, amending the "round lot"
  definition of Regulation NMS Rule 600(b): by the stock's average closing price over the prior
  calendar month, $0.00–$250.00 → 100 shares, $250.01–$1,000.00 → 40, $1,000.01–$10,000.00 →
  10, $10,000.01 and up → 1 (in force from November 2025). A print below its stock's round lot
  is an odd lot (condition I) on both tapes. The rig takes the instrument's reference price
  (yesterday's close) as the average closing price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Annotated, NamedTuple

from pydantic import Field

from domain.base import Frozen


class SipPlan(str, Enum):
    CTA = "CTA"
    UTP = "UTP"


class LastSale(str, Enum):
    """What a sale condition does to the consolidated last sale."""

    YES = "YES"
    NO = "NO"
    FIRST = "FIRST"  # only as the first (or only) last-sale-eligible trade of the day


class SaleCondition(NamedTuple):
    code: str
    name: str
    last: LastSale


Y, N, F = LastSale.YES, LastSale.NO, LastSale.FIRST

UTP_CONDITIONS: dict[str, SaleCondition] = {
    c.code: c
    for c in (
        SaleCondition("@", "Regular Sale", Y),
        SaleCondition("A", "Acquisition", Y),
        SaleCondition("B", "Bunched Trade", Y),
        SaleCondition("C", "Cash Sale", N),
        SaleCondition("D", "Distribution", Y),
        SaleCondition("E", "Placeholder", N),
        SaleCondition("F", "Intermarket Sweep", Y),
        SaleCondition("G", "Bunched Sold Trade", F),
        SaleCondition("H", "Price Variation Trade", N),
        SaleCondition("I", "Odd Lot Trade", N),
        SaleCondition("K", "Rule 155 Trade (AMEX)", Y),
        SaleCondition("L", "Sold Last", Y),
        SaleCondition("M", "Market Center Official Close", N),
        SaleCondition("N", "Next Day", N),
        SaleCondition("O", "Opening Prints", Y),
        SaleCondition("P", "Prior Reference Price", F),
        SaleCondition("Q", "Market Center Official Open", N),
        SaleCondition("R", "Seller", F),
        SaleCondition("S", "Split Trade", Y),
        SaleCondition("T", "Form T", N),
        SaleCondition("U", "Extended Trading Hours (Sold Out of Sequence)", N),
        SaleCondition("V", "Contingent Trade", N),
        SaleCondition("W", "Average Price Trade", N),
        SaleCondition("X", "Cross Trade", Y),
        SaleCondition("Y", "Yellow Flag Regular Trade", Y),
        SaleCondition("Z", "Sold (Out of Sequence)", F),
        SaleCondition("1", "Stopped Stock (Regular Trade)", Y),
        SaleCondition("4", "Derivatively Priced", F),
        SaleCondition("5", "Re-Opening Prints", Y),
        SaleCondition("6", "Closing Prints", Y),
        SaleCondition("7", "Qualified Contingent Trade", N),
        SaleCondition("8", "Placeholder for 611 Exempt", N),
        SaleCondition("9", "Corrected Consolidated Close", Y),
    )
}

CTA_CONDITIONS: dict[str, SaleCondition] = {
    c.code: c
    for c in (
        SaleCondition("@", "Regular Sale", Y),
        SaleCondition("B", "Average Price Trade", N),
        SaleCondition("C", "Cash Trade", N),
        SaleCondition("E", "Automatic Execution", Y),
        SaleCondition("F", "Intermarket Sweep Order", Y),
        SaleCondition("H", "Price Variation Trade", N),
        SaleCondition("I", "Odd Lot Trade", N),
        SaleCondition("K", "Rule 127 (NYSE) / Rule 155 (NYSE American)", Y),
        SaleCondition("L", "Sold Last (late reporting)", F),
        SaleCondition("M", "Market Center Official Close", N),
        SaleCondition("N", "Next Day Trade", N),
        SaleCondition("O", "Market Center Opening Trade", F),
        SaleCondition("P", "Prior Reference Price", F),
        SaleCondition("Q", "Market Center Official Open", N),
        SaleCondition("R", "Seller", F),
        SaleCondition("T", "Extended Hours Trade (Form T)", N),
        SaleCondition("U", "Extended Hours Sold (Out of Sequence)", N),
        SaleCondition("V", "Contingent Trade", N),
        SaleCondition("X", "Cross Trade", Y),
        SaleCondition("Z", "Sold (Out of Sequence)", F),
        SaleCondition("4", "Derivatively Priced", F),
        SaleCondition("5", "Market Center Reopening Trade", Y),
        SaleCondition("6", "Market Center Closing Trade", Y),
        SaleCondition("7", "Qualified Contingent Trade", N),
        SaleCondition("9", "Corrected Consolidated Close", Y),
    )
}

TABLES: Mapping[SipPlan, Mapping[str, SaleCondition]] = {SipPlan.CTA: CTA_CONDITIONS, SipPlan.UTP: UTP_CONDITIONS}
ODD_LOT = "I"
REGULAR = "@"
DEFAULT_PLAN = SipPlan.CTA  # when a day does not say a symbol's tape (Tapes A and B are most symbols)
# Listing venues (SIP participant ids) whose symbols print on the UTP tape; the rest are CTA.
UTP_LISTINGS = frozenset({"Q"})


def plan_of_listing(venue: str) -> SipPlan:
    return SipPlan.UTP if venue in UTP_LISTINGS else SipPlan.CTA


def condition_codes(conditions: str) -> frozenset[str]:
    """The condition characters of a conditions string (blanks and '@', regular sale, dropped)."""
    return frozenset(conditions) - {" ", REGULAR}


def last_sale(conditions: str, plan: SipPlan = DEFAULT_PLAN) -> LastSale:
    """A print's effect on the last sale: NO if any of its codes says no (a code the plan's table
    does not know counts as no), else FIRST if any is first-of-day only, else YES."""
    table = TABLES[plan]
    verdicts = {table[c].last if c in table else LastSale.NO for c in condition_codes(conditions)}
    if LastSale.NO in verdicts:
        return LastSale.NO
    return LastSale.FIRST if LastSale.FIRST in verdicts else LastSale.YES


def eligible_in_order(classes: Iterable[LastSale]) -> list[bool]:
    """Last-sale eligibility of one symbol's prints of a day, oldest first: YES always, FIRST only
    while no eligible print came before it that day, NO never."""
    seen = False
    out = []
    for c in classes:
        ok = c is LastSale.YES or (c is LastSale.FIRST and not seen)
        seen = seen or ok
        out.append(ok)
    return out


# ---------------------------------------------------------------------------------------------
# Round lots


class RoundLotTier(Frozen):
    """Stocks whose average closing price is at most `up_to` (None: no bound) trade in round
    lots of `lot` shares."""

    up_to: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None
    lot: Annotated[int, Field(gt=0)]


ROUND_LOT_TIERS: tuple[RoundLotTier, ...] = (
    RoundLotTier(up_to=250.00, lot=100),
    RoundLotTier(up_to=1_000.00, lot=40),
    RoundLotTier(up_to=10_000.00, lot=10),
    RoundLotTier(up_to=None, lot=1),
)


def round_lot(price: float, tiers: Iterable[RoundLotTier] = ROUND_LOT_TIERS) -> int:
    """The round lot of a stock whose average closing price is `price` (tiers in increasing order)."""
    last = 100
    for tier in tiers:
        last = tier.lot
        if tier.up_to is None or price <= tier.up_to + 1e-9:
            return tier.lot
    return last


def check_tiers(tiers: tuple[RoundLotTier, ...]) -> tuple[RoundLotTier, ...]:
    """Tiers strictly increasing in price, the last unbounded."""
    if not tiers or tiers[-1].up_to is not None:
        raise ValueError("round-lot tiers end with an unbounded tier (up_to: null)")
    bounds = [t.up_to for t in tiers[:-1]]
    if any(b is None for b in bounds) or bounds != sorted(set(bounds)):  # type: ignore[type-var]
        raise ValueError("round-lot tiers need increasing up_to prices, only the last one null")
    return tiers
