import pytest

from domain.enums import OrderState
from domain.lifecycle import TRANSITIONS, IllegalTransition, OrderEvent, transition

S, E = OrderState, OrderEvent
# Every (state × event) pair, spelled out: the expected target, or None for an illegal pair.
EXPECTED = {
    S.ACCEPTED: {
        E.PRETRADE_REJECTED: S.REJECTED,
        E.VENUE_ACKED: S.WORKING,
        E.VENUE_REJECTED: S.REJECTED,
        E.PARTIAL_FILL: None,
        E.COMPLETE_FILL: None,
        E.CANCEL_ACKED: S.CANCELED,
        E.EXPIRED: S.CANCELED,
        E.REDUCED_TO_FILLED: None,
        E.REPLACE_REFUSED: None,
        E.CANCEL_REFUSED: S.ACCEPTED,
    },
    S.WORKING: {
        E.PRETRADE_REJECTED: None,
        E.VENUE_ACKED: None,
        E.VENUE_REJECTED: None,
        E.PARTIAL_FILL: S.PARTIAL_FILL,
        E.COMPLETE_FILL: S.FILLED,
        E.CANCEL_ACKED: S.CANCELED,
        E.EXPIRED: S.CANCELED,
        E.REDUCED_TO_FILLED: None,
        E.REPLACE_REFUSED: S.WORKING,
        E.CANCEL_REFUSED: S.WORKING,
    },
    S.PARTIAL_FILL: {
        E.PRETRADE_REJECTED: None,
        E.VENUE_ACKED: None,
        E.VENUE_REJECTED: None,
        E.PARTIAL_FILL: S.PARTIAL_FILL,
        E.COMPLETE_FILL: S.FILLED,
        E.CANCEL_ACKED: S.CANCELED,
        E.EXPIRED: S.CANCELED,
        E.REDUCED_TO_FILLED: S.FILLED,
        E.REPLACE_REFUSED: S.PARTIAL_FILL,
        E.CANCEL_REFUSED: S.PARTIAL_FILL,
    },
    **{terminal: {event: terminal for event in E} for terminal in (S.FILLED, S.CANCELED, S.REJECTED)},
}
PAIRS = [(state, event) for state in S for event in E]


def test_table_covers_every_pair():
    assert set(TRANSITIONS) == set(PAIRS)


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_every_state_event_pair(state, event):
    expected = EXPECTED[state][event]
    if expected is None:
        with pytest.raises(IllegalTransition):
            transition(state, event)
    else:
        assert transition(state, event) is expected


def test_terminal_states_absorb():
    for state in (S.FILLED, S.CANCELED, S.REJECTED):
        assert state.is_terminal and all(transition(state, e) is state for e in E)
