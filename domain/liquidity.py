"""Liquidity: de-risk orders sized to what the market can take (rules `liquidity`).

A de-risk order takes at most `adv_share_per_cycle` of the instrument's average daily volume
(universe `adv`, shares/day) per risk cycle:

- cap = ADV × share, rounded down to whole lots but never below one lot — a thin name still
  makes progress every cycle instead of never trading;
- whole lots beyond the cap wait for the next cycles (the planner asks again each cycle);
- a residual below one lot (an odd lot left of a position) goes only when every whole lot goes
  in the same order and either the mode is HARD_DERISK or the close is at most
  `residual_minutes` away: odd lots trade worse, so they wait until they must go.

Without a share configured (`adv_share_per_cycle: null`) the quantity is returned as it came:
the playbook as before.
"""

from __future__ import annotations

import math

from domain.enums import RiskMode

MAX_SHARES = 10**15  # beyond any real volume; keeps float arithmetic finite


def adv_cap(adv: int, share_per_cycle: float, lot: int) -> int:
    """Whole lots of ADV × share, at least one lot. A volume or share that cannot be read
    (≤ 0, NaN) gives the floor: one lot."""
    lot = max(1, lot)
    if not (adv > 0 and math.isfinite(share_per_cycle) and share_per_cycle > 0):
        return lot
    shares = min(adv, MAX_SHARES) * share_per_cycle  # bounded before float arithmetic
    return max(lot, int(shares // lot) * lot)


def clip_to_adv(
    quantity: int,
    adv: int,
    share_per_cycle: float | None,
    lot: int,
    *,
    mode: RiskMode,
    minutes_to_close: float,
    residual_minutes: float,
) -> int:
    """The part of a de-risk `quantity` to send this cycle (0 ≤ result ≤ quantity)."""
    if quantity <= 0:
        return 0
    if share_per_cycle is None:
        return quantity
    lot = max(1, lot)
    whole = quantity // lot * lot
    take = min(whole, adv_cap(adv, share_per_cycle, lot))
    residual = quantity - whole
    late = minutes_to_close <= residual_minutes  # NaN: not late
    if residual and take == whole and (mode is RiskMode.HARD_DERISK or late):
        take += residual
    return take
