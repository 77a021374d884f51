"""The controls that judge one order on its own (no look-back): restricted list, max quantity, price
collar, max position (issue 16); quote sanity, price band, the MARKET collar, size vs ADV, notional
per symbol, self-cross and max notional (issue 25). Each returns None (passes) or a `Refusal`.

A control that is on and lacks what it needs (no fresh L1, no usable mark) refuses with its own
code: it fails closed. Boundaries: a limit is reached, not broken, at exactly its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from domain.controls.base import Refusal, TopOfBook, clamp, positive
from domain.enums import RejectReason, Side
from domain.models import OpenOrder
from domain.policy import over
from domain.rules import (
    AdvShareRule,
    MarketCollarRule,
    MaxOrderQuantityRule,
    MaxPositionRule,
    PriceBandRule,
    PriceCollarRule,
    RestrictedListRule,
    SelfCrossRule,
    SymbolNotionalRule,
)


def check_restricted(symbol: str, rule: RestrictedListRule) -> Refusal | None:
    if symbol in rule.symbols:
        return RejectReason.RESTRICTED_SYMBOL, f"{symbol} is on the restricted list ({len(rule.symbols)} symbols)"
    return None


def check_max_order_quantity(symbol: str, quantity: int, rule: MaxOrderQuantityRule) -> Refusal | None:
    limit = rule.limit_for(symbol)
    if limit is None or quantity <= limit:
        return None
    which = f"{symbol}'s max order quantity" if symbol in rule.per_symbol else "the max order quantity"
    return RejectReason.MAX_ORDER_QUANTITY, f"quantity {clamp(quantity):,} is above {which} {limit:,}"


def check_price_collar(limit_price: float | None, truth_tick: float | None, rule: PriceCollarRule) -> Refusal | None:
    """A LIMIT more than `band_pct` % away from the truth tick, either side (a fat finger either
    way: a buy far through the market trades badly, one far below is a typo). MARKET: see
    `check_market_collar`. With market data the reference is the fresh mark (`MarketView.collar_reference`:
    the truth tick clamped into the bid/ask, else the mid); None when nothing is fresh — the collar refuses."""
    band = rule.band_pct
    if band is None or limit_price is None:
        return None
    if truth_tick is None:
        return RejectReason.PRICE_COLLAR, f"no fresh reference price (truth tick or L1 mid) to hold the limit to the {band:g}% collar"
    if not positive(truth_tick):
        return RejectReason.PRICE_COLLAR, f"no usable truth tick ({truth_tick!r}) to hold the limit to the {band:g}% collar"
    if not positive(limit_price):
        return RejectReason.PRICE_COLLAR, f"limit price {limit_price!r} is not a finite price > 0"
    off_pct = abs(limit_price - truth_tick) / truth_tick * 100.0
    if over(off_pct, band):
        return (
            RejectReason.PRICE_COLLAR,
            f"limit {limit_price:,.2f} is {off_pct:.2f}% from the truth tick {truth_tick:,.2f}, outside the {band:g}% price collar",
        )
    return None


def check_max_position(
    symbol: str,
    side: Side,
    quantity: int,
    *,
    position: int,
    open_same_side: int,
    mark: float,
    equity: float,
    rule: MaxPositionRule,
) -> Refusal | None:
    """The symbol's position (all buckets) after this order and every open order on its side
    fill, valued at the mark, against `max_pct` % of equity. An order that brings that worst case
    closer to flat passes even over the limit: it does not add to the position."""
    limit_pct = rule.limit_for(symbol)
    if limit_pct is None:
        return None
    if not (positive(mark) and positive(equity)):
        return RejectReason.MAX_POSITION, f"cannot value {symbol}'s position (mark {mark!r}, equity {equity!r})"
    before, after = _worst_case(side, quantity, position, open_same_side)
    if abs(after) <= abs(before):
        return None
    after_pct = abs(after) * mark / equity * 100.0
    if over(after_pct, limit_pct):
        return (
            RejectReason.MAX_POSITION,
            f"{symbol} position after the order and open {side.value.lower()}s would be {after:,} shares "
            f"({after_pct:.2f}% of equity), above the max position {limit_pct:g}%",
        )
    return None


def _worst_case(side: Side, quantity: int, position: int, open_same_side: int) -> tuple[int, int]:
    """The position once every open order on `side` fills, without and with this order."""
    before = clamp(position) + side.sign * clamp(open_same_side)
    return before, before + side.sign * clamp(quantity)


# ----- issue 25 -----


def check_quote(top: TopOfBook | None, max_age_seconds: float) -> Refusal | None:
    """BAD_QUOTE: the L1 cannot be traded on — missing, a price not finite and > 0, crossed, locked, a
    side showing zero shares (when the feed gives sizes), or older than `max_age_seconds`."""
    if top is None:
        return RejectReason.BAD_QUOTE, "no L1 quote to trade on"
    if not (positive(top.bid) and positive(top.ask)):
        return RejectReason.BAD_QUOTE, f"L1 bid {top.bid!r} / ask {top.ask!r}: a price is not finite and > 0"
    if top.bid > top.ask:
        return RejectReason.BAD_QUOTE, f"L1 is crossed: bid {top.bid:,.4f} above ask {top.ask:,.4f}"
    if top.bid == top.ask:
        return RejectReason.BAD_QUOTE, f"L1 is locked: bid = ask = {top.bid:,.4f}"
    if top.bid_size == 0 or top.ask_size == 0:
        return RejectReason.BAD_QUOTE, f"L1 shows zero size (bid size {top.bid_size}, ask size {top.ask_size})"
    age = top.age_seconds
    if age is not None and not (math.isfinite(age) and age <= max_age_seconds):
        return RejectReason.BAD_QUOTE, f"L1 is {age:g} s old (limit {max_age_seconds:g} s)"
    return None


def _fresh_mid(top: TopOfBook | None, max_age_seconds: float) -> float | None:
    """The mid of a fresh, two-sided L1, or None."""
    if top is None or not (positive(top.bid) and positive(top.ask)):
        return None
    age = top.age_seconds
    if age is not None and not (math.isfinite(age) and age <= max_age_seconds):
        return None
    return top.mid


def check_price_band(limit_price: float | None, top: TopOfBook | None, max_age_seconds: float, rule: PriceBandRule) -> Refusal | None:
    """PRICE_BAND: a limit more than `band_pct` % from a fresh L1's mid. MARKET orders: the MARKET
    collar. No fresh L1: refused (the band cannot be held)."""
    band = rule.band_pct
    if band is None or limit_price is None:
        return None
    mid = _fresh_mid(top, max_age_seconds)
    if mid is None:
        return RejectReason.PRICE_BAND, f"no fresh L1 to hold the limit to the {band:g}% price band"
    if not positive(limit_price):
        return RejectReason.PRICE_BAND, f"limit price {limit_price!r} is not a finite price > 0"
    off_pct = abs(limit_price - mid) / mid * 100.0
    if over(off_pct, band):
        return RejectReason.PRICE_BAND, f"limit {limit_price:,.2f} is {off_pct:.2f}% from the L1 mid {mid:,.4f}, outside the {band:g}% price band"
    return None


def check_market_collar(
    side: Side, limit_price: float | None, top: TopOfBook | None, reference: float | None, max_age_seconds: float, rule: MarketCollarRule
) -> Refusal | None:
    """PRICE_COLLAR for a MARKET order: the far touch (a buy's ask, a sell's bid) more than `band_pct` %
    from the reference (the fresh mark) is refused; so is a MARKET order without a fresh L1 or
    reference. LIMIT orders: `check_price_collar`."""
    band = rule.band_pct
    if band is None or limit_price is not None:
        return None
    if _fresh_mid(top, max_age_seconds) is None or top is None:
        return RejectReason.PRICE_COLLAR, f"no fresh L1 to collar a MARKET {side.value.lower()} ({band:g}%)"
    if not positive(reference):
        return RejectReason.PRICE_COLLAR, f"no fresh reference price to collar a MARKET {side.value.lower()} ({band:g}%)"
    assert reference is not None
    touch = top.far_touch(side)
    off_pct = abs(touch - reference) / reference * 100.0
    if over(off_pct, band):
        which = "ask" if side is Side.BUY else "bid"
        return (
            RejectReason.PRICE_COLLAR,
            f"MARKET {side.value.lower()}: the {which} {touch:,.4f} is {off_pct:.2f}% from the reference {reference:,.4f}, outside the {band:g}% collar",
        )
    return None


def check_adv_share(symbol: str, quantity: int, adv: int, rule: AdvShareRule) -> Refusal | None:
    """ADV_SHARE: more than `max_share` of the instrument's average daily volume in one order."""
    share = rule.max_share
    if share is None:
        return None
    if adv <= 0:
        return RejectReason.ADV_SHARE, f"{symbol} has no average daily volume to size the order against"
    limit = share * adv
    if over(clamp(quantity), limit):
        return (
            RejectReason.ADV_SHARE,
            f"quantity {clamp(quantity):,} is {clamp(quantity) / adv:.2%} of {symbol}'s ADV {adv:,}, above the {share:.2%} limit",
        )
    return None


def check_symbol_notional(
    symbol: str, side: Side, quantity: int, *, position: int, open_same_side: int, mark: float, rule: SymbolNotionalRule
) -> Refusal | None:
    """MAX_SYMBOL_NOTIONAL: |position + open orders on the side + this order| × mark above the limit;
    an order that brings that worst case closer to flat passes."""
    limit = rule.max_notional
    if limit is None:
        return None
    if not positive(mark):
        return RejectReason.MAX_SYMBOL_NOTIONAL, f"cannot value {symbol}'s position (mark {mark!r})"
    before, after = _worst_case(side, quantity, position, open_same_side)
    if abs(after) <= abs(before):
        return None
    notional = abs(after) * mark
    if over(notional, limit):
        return (
            RejectReason.MAX_SYMBOL_NOTIONAL,
            f"{symbol} after the order and open {side.value.lower()}s would be {after:,} shares = {notional:,.2f} at {mark:,.2f}, "
            f"above the notional limit {limit:,.2f}",
        )
    return None


def crosses(side: Side, limit_price: float | None, resting: OpenOrder) -> bool:
    """Would an order on `side` at `limit_price` (None: MARKET) trade against `resting`?"""
    if resting.side is side or resting.remaining <= 0:
        return False
    if limit_price is None or resting.limit_price is None:
        return True
    return limit_price >= resting.limit_price if side is Side.BUY else limit_price <= resting.limit_price


def check_self_cross(symbol: str, side: Side, limit_price: float | None, resting: Sequence[OpenOrder], rule: SelfCrossRule) -> Refusal | None:
    """SELF_CROSS: the order would trade against a resting order of the same account (`resting`: the
    account's open orders, desk and rig, with the one being replaced left out)."""
    if not rule.enabled:
        return None
    for order in resting:
        if order.symbol == symbol and crosses(side, limit_price, order):
            price = "MARKET" if limit_price is None else f"at {limit_price:,.2f}"
            theirs = "MARKET" if order.limit_price is None else f"at {order.limit_price:,.2f}"
            return (
                RejectReason.SELF_CROSS,
                f"{side.value} {symbol} {price} would trade against the account's own resting {order.side.value} {order.intent_id} {theirs}",
            )
    return None


def check_max_notional(quantity: int, price: float, limit: float) -> Refusal | None:
    """MAX_ORDER_NOTIONAL for orders that did not pass pre-trade's own (the rig's)."""
    if not positive(price):
        return RejectReason.MAX_ORDER_NOTIONAL, f"cannot value the order (price {price!r})"
    notional = clamp(quantity) * price
    if over(notional, limit):
        return (
            RejectReason.MAX_ORDER_NOTIONAL,
            f"notional {notional:,.2f} ({clamp(quantity):,} × {price:,.2f}) is above the max order notional {limit:,.2f}",
        )
    return None
