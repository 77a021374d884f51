"""Quotes from marks: the simulated feed's one rule, shared by the feed activity and pre-trade."""

from domain.models import Quote


def half_spread(price: float) -> float:
    """One basis point of the price each side, at least a cent."""
    return max(0.01, round(price * 0.0001, 2))


def quote_from_mark(mark: float) -> Quote:
    half = half_spread(mark)
    return Quote(truth_tick=round(mark, 2), bid=round(mark - half, 2), ask=round(mark + half, 2))
