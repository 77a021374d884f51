import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.enums import RiskMode
from domain.liquidity import adv_cap, clip_to_adv
from tests.builders import CONFIG

SOFT, HARD = RiskMode.SOFT_DERISK, RiskMode.HARD_DERISK


def clip(quantity, adv=1_000_000, share=0.001, lot=1, mode=SOFT, minutes=60.0, residual_minutes=5.0):
    return clip_to_adv(quantity, adv, share, lot, mode=mode, minutes_to_close=minutes, residual_minutes=residual_minutes)


def test_off_returns_the_quantity_as_it_came():
    assert clip(123_457, share=None, lot=100) == 123_457
    assert clip(50, share=None, lot=100) == 50


@pytest.mark.parametrize(
    ("quantity", "kwargs", "expected"),
    [
        (5000, {}, 1000),  # 0.1% of 1,000,000
        (1000, {}, 1000),  # at the cap
        (800, {}, 800),  # below the cap
        (5000, dict(adv=1_234_567, lot=100), 1200),  # 1234.567 → whole lots, rounded down
        (5000, dict(adv=10_000, lot=100), 100),  # the cap is 10 shares: one lot still goes
        (5000, dict(mode=HARD), 1000),  # HARD is clipped too
        (0, {}, 0),
        (-100, {}, 0),
    ],
)
def test_clip_to_a_share_of_adv(quantity, kwargs, expected):
    assert clip(quantity, **kwargs) == expected


@pytest.mark.parametrize(
    ("quantity", "mode", "minutes", "expected"),
    [
        (250, SOFT, 60.0, 200),  # the odd 50 waits
        (250, SOFT, 5.0, 250),  # the last residual_minutes: it goes
        (250, SOFT, 5.01, 200),
        (250, HARD, 60.0, 250),  # HARD: it goes
        (50, SOFT, 60.0, 0),  # only a residual, and not yet
        (50, SOFT, 0.0, 50),
        (50, HARD, 60.0, 50),
        (1250, HARD, 1.0, 1000),  # clipped: the residual waits for the last whole lot
        (250, SOFT, math.nan, 200),  # unknown time to close: not late
    ],
)
def test_residual_below_a_lot(quantity, mode, minutes, expected):
    assert clip(quantity, adv=1_000_000, share=0.001, lot=100, mode=mode, minutes=minutes) == expected


def test_absurd_inputs_are_bounded():
    assert adv_cap(10**30, 1.0, 1) == 10**15
    assert adv_cap(10**400, 0.5, 1) == 5 * 10**14
    assert adv_cap(0, 0.001, 100) == 100  # no volume to go by: one lot
    assert adv_cap(1_000_000, math.nan, 100) == 100
    assert clip(10**30, adv=10**30, share=1.0) == 10**15
    assert clip(500, lot=0) == 500  # a lot below one counts as one


@given(
    quantity=st.integers(0, 10**9),
    adv=st.integers(1, 10**9),
    share=st.floats(min_value=1e-6, max_value=1.0),
    lot=st.sampled_from([1, 10, 100]),
    mode=st.sampled_from([SOFT, HARD]),
    minutes=st.floats(min_value=0, max_value=400),
)
def test_clip_properties(quantity, adv, share, lot, mode, minutes):
    take = clip(quantity, adv=adv, share=share, lot=lot, mode=mode, minutes=minutes)
    assert 0 <= take <= quantity
    assert take <= adv_cap(adv, share, lot) + lot - 1  # at most the cap, plus a residual under a lot
    assert take % lot == 0 or take == quantity  # whole lots, unless everything left goes
    if quantity >= lot:
        assert take >= lot  # every cycle makes progress
    more = clip(quantity, adv=adv, share=min(1.0, share * 2), lot=lot, mode=mode, minutes=minutes)
    assert more >= take  # a larger share never sends less


def test_the_universe_has_an_adv_for_every_instrument():
    instruments = CONFIG.universe.instruments
    assert len(instruments) == 44
    assert all(i.adv >= 100_000 for i in instruments)
