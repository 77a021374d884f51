import pytest

from domain.enums import OrderState
from domain.lifecycle import RESUME, TRANSITIONS, IllegalTransition, OrderEvent, transition

S, E = OrderState, OrderEvent
# Every (state × event) pair, spelled out: the expected target, `RESUME` (back where the order
# stood: see test_a_refused_request_resumes…), or None for an illegal pair.
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
        E.CANCEL_REQUESTED: S.PENDING_CANCEL,  # at a broker, an order may be live before its first word
        E.REPLACE_REQUESTED: None,  # not working yet: nothing to replace
        E.CANCEL_REJECTED: None,
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
        E.CANCEL_REQUESTED: S.PENDING_CANCEL,
        E.REPLACE_REQUESTED: S.PENDING_REPLACE,
        E.CANCEL_REJECTED: None,
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
        E.CANCEL_REQUESTED: S.PENDING_CANCEL,
        E.REPLACE_REQUESTED: S.PENDING_REPLACE,
        E.CANCEL_REJECTED: None,
    },
    S.PENDING_CANCEL: {
        E.PRETRADE_REJECTED: None,
        E.VENUE_ACKED: S.PENDING_CANCEL,  # the venue's first word came while the cancel was on its way
        E.VENUE_REJECTED: S.REJECTED,
        E.PARTIAL_FILL: S.PENDING_CANCEL,  # fills may still come until the venue answers
        E.COMPLETE_FILL: S.FILLED,  # too late to cancel
        E.CANCEL_ACKED: S.CANCELED,
        E.EXPIRED: S.CANCELED,
        E.REDUCED_TO_FILLED: None,
        E.REPLACE_REFUSED: None,
        E.CANCEL_REFUSED: RESUME,
        E.CANCEL_REQUESTED: S.PENDING_CANCEL,  # a repeat waits for the first
        E.REPLACE_REQUESTED: None,
        E.CANCEL_REJECTED: RESUME,  # the venue refused the cancel: the order works on
    },
    S.PENDING_REPLACE: {
        E.PRETRADE_REJECTED: None,
        E.VENUE_ACKED: None,
        E.VENUE_REJECTED: None,
        E.PARTIAL_FILL: S.PENDING_REPLACE,
        E.COMPLETE_FILL: S.FILLED,  # too late to replace
        E.CANCEL_ACKED: S.CANCELED,  # the original canceled: REPLACED
        E.EXPIRED: S.CANCELED,
        E.REDUCED_TO_FILLED: S.FILLED,
        E.REPLACE_REFUSED: RESUME,
        E.CANCEL_REFUSED: RESUME,
        E.CANCEL_REQUESTED: None,  # one request at a time: a cancel waits for the replace
        E.REPLACE_REQUESTED: None,
        E.CANCEL_REJECTED: RESUME,
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
    elif expected is RESUME:
        assert transition(state, event, filled=0, acknowledged=True) is S.WORKING
    else:
        assert transition(state, event) is expected


@pytest.mark.parametrize("pending", [S.PENDING_CANCEL, S.PENDING_REPLACE])
def test_a_refused_request_resumes_where_the_order_stood(pending):
    refusal = E.CANCEL_REJECTED
    assert transition(pending, refusal, filled=40, acknowledged=True) is S.PARTIAL_FILL
    assert transition(pending, refusal, filled=0, acknowledged=True) is S.WORKING
    assert transition(pending, refusal, filled=0, acknowledged=False) is S.ACCEPTED


def test_terminal_states_absorb():
    for state in (S.FILLED, S.CANCELED, S.REJECTED):
        assert state.is_terminal and all(transition(state, e) is state for e in E)
