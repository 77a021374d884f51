from datetime import UTC, datetime, time

import pytest

from domain.clock import read_clock, to_exchange_time
from domain.enums import Regime
from tests.builders import CONFIG

RULES = CONFIG.rules


@pytest.mark.parametrize(
    ("local", "regime", "to_close"),
    [
        (time(9, 29, 59), Regime.OUTSIDE_SESSION, 420.0 + 1 / 60),
        (time(9, 30), Regime.OPEN_EARLY, 420.0),
        (time(9, 59), Regime.OPEN_EARLY, 391.0),
        (time(10, 0), Regime.MID, 390.0),
        (time(16, 14), Regime.MID, 16.0),
        (time(16, 15), Regime.LATE, 15.0),
        (time(16, 16), Regime.LATE, 14.0),
        (time(16, 27, 59), Regime.LATE, 2 + 1 / 60),
        (time(16, 28), Regime.CLOSE, 2.0),
        (time(16, 29, 59), Regime.CLOSE, 1 / 60),
        (time(16, 30), Regime.OUTSIDE_SESSION, 0.0),
        (time(23, 0), Regime.OUTSIDE_SESSION, 0.0),
    ],
)
def test_regime_boundaries(local, regime, to_close):
    reading = read_clock(local, RULES)
    assert reading.regime is regime
    assert reading.minutes_to_close == pytest.approx(to_close)
    assert reading.in_session == (regime is not Regime.OUTSIDE_SESSION)


def test_exchange_time_follows_the_configured_zone_and_dst():
    summer = to_exchange_time(datetime(2026, 7, 1, 20, 16, tzinfo=UTC), RULES)
    winter = to_exchange_time(datetime(2026, 12, 1, 21, 16, tzinfo=UTC), RULES)
    assert (summer.hour, summer.minute) == (16, 16)
    assert (winter.hour, winter.minute) == (16, 16)
    with pytest.raises(ValueError):
        to_exchange_time(datetime(2026, 7, 1, 20, 16), RULES)
