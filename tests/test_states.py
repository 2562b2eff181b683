"""The status table: exactly its moves are allowed, closed cases stay closed, every status
has words for staff and for applicants."""

import itertools

import pytest

from hrdfund.cases.models import ApplicationStatus as S
from hrdfund.cases.states import (
    APPLICANT_LABELS,
    NEXT_STEPS,
    OPEN_STATES,
    STAFF_LABELS,
    TERMINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    check_transition,
)

ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
FORBIDDEN = sorted((a, b) for a, b in itertools.product(S, S) if b not in TRANSITIONS[a])


def _ids(pair):
    return f"{pair[0].value}->{pair[1].value}"


def test_the_table_covers_every_status():
    """A status missing from the table would make every move out of it crash."""
    assert set(TRANSITIONS) == set(S)
    assert all(targets <= set(S) for targets in TRANSITIONS.values())


@pytest.mark.parametrize("pair", ALLOWED, ids=_ids)
def test_every_listed_move_is_allowed(pair):
    current, target = pair
    check_transition(current, target)
    check_transition(current.value, target.value)


@pytest.mark.parametrize("pair", FORBIDDEN, ids=_ids)
def test_every_other_move_is_refused(pair):
    current, target = pair
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current.value, target.value)
    assert (caught.value.current, caught.value.target) == (current, target)


def test_closed_cases_have_no_way_out():
    """Rejected, completed and withdrawn cases cannot be reopened by any move."""
    assert TERMINAL_STATES == {S.REJECTED, S.COMPLETED, S.WITHDRAWN}
    for state, target in itertools.product(TERMINAL_STATES, S):
        with pytest.raises(InvalidTransition):
            check_transition(state, target)


def test_every_status_is_reachable_and_every_case_can_close():
    """No status is dead code, and no case can get stuck in a loop with no end."""
    reached, frontier = {S.DRAFT}, [S.DRAFT]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)
    for state in S:
        seen, frontier = {state}, [state]
        while frontier:
            for target in TRANSITIONS[frontier.pop()] - seen:
                seen.add(target)
                frontier.append(target)
        assert seen & TERMINAL_STATES, f"{state} can never close"


def test_an_open_case_can_always_be_withdrawn():
    """A defender may stop at any point before a decision."""
    for state in OPEN_STATES:
        check_transition(state, S.WITHDRAWN)
    assert not OPEN_STATES & TERMINAL_STATES


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.value)
def test_every_status_has_words_for_both_sides(state):
    """Staff see the internal step; the applicant side sees plain words and what comes next."""
    for table in (STAFF_LABELS, APPLICANT_LABELS, NEXT_STEPS):
        text = str(table[state])
        assert text.strip() and "_" not in text


def test_applicants_never_see_internal_steps():
    """Recommendation and a second approval are internal: the applicant reads "reviewed"."""
    internal = {S.IN_REVIEW, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL}
    assert len({str(APPLICANT_LABELS[s]) for s in internal}) == 1
    for state in S:
        assert "recommend" not in str(APPLICANT_LABELS[state]).lower()
