"""The one table of allowed status moves, and the names each side sees."""

from flask_babel import lazy_gettext as _l

from .models import ApplicationStatus as S


class InvalidTransition(Exception):
    """A status move that the table below does not allow."""

    def __init__(self, current, target):
        super().__init__(f"{current} -> {target} is not allowed")
        self.current = current
        self.target = target


OPEN_STATES = frozenset(
    {S.DRAFT, S.SUBMITTED, S.IN_REVIEW, S.INFO_REQUESTED, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL}
)

TRANSITIONS = {
    S.DRAFT: {S.SUBMITTED, S.WITHDRAWN},
    S.SUBMITTED: {S.IN_REVIEW, S.WITHDRAWN},
    S.IN_REVIEW: {S.INFO_REQUESTED, S.RECOMMENDED, S.REJECTED, S.WITHDRAWN},
    S.INFO_REQUESTED: {S.IN_REVIEW, S.WITHDRAWN},
    S.RECOMMENDED: {
        S.APPROVED,
        S.AWAITING_SECOND_APPROVAL,
        S.REJECTED,
        S.INFO_REQUESTED,
        S.IN_REVIEW,
        S.WITHDRAWN,
    },
    S.AWAITING_SECOND_APPROVAL: {S.APPROVED, S.REJECTED, S.IN_REVIEW, S.WITHDRAWN},
    S.APPROVED: {S.PAYING, S.COMPLETED},
    S.PAYING: {S.COMPLETED},
    S.REJECTED: set(),
    S.COMPLETED: set(),
    S.WITHDRAWN: set(),
}


def check_transition(current, target):
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    if S(target) not in TRANSITIONS[S(current)]:
        raise InvalidTransition(S(current), S(target))


#: What staff see.
STAFF_LABELS = {
    S.DRAFT: _l("Draft"),
    S.SUBMITTED: _l("Submitted"),
    S.IN_REVIEW: _l("In review"),
    S.INFO_REQUESTED: _l("Information requested"),
    S.RECOMMENDED: _l("Recommended"),
    S.AWAITING_SECOND_APPROVAL: _l("Awaiting second approval"),
    S.APPROVED: _l("Approved"),
    S.REJECTED: _l("Rejected"),
    S.PAYING: _l("Paying"),
    S.COMPLETED: _l("Completed"),
    S.WITHDRAWN: _l("Withdrawn"),
}

#: What applicants and partners see: plain words, no internal steps.
APPLICANT_LABELS = {
    S.DRAFT: _l("Not sent yet"),
    S.SUBMITTED: _l("Received"),
    S.IN_REVIEW: _l("Being reviewed"),
    S.INFO_REQUESTED: _l("The fund has a question for you"),
    S.RECOMMENDED: _l("Being reviewed"),
    S.AWAITING_SECOND_APPROVAL: _l("Being reviewed"),
    S.APPROVED: _l("Approved"),
    S.REJECTED: _l("Not approved"),
    S.PAYING: _l("Approved, payments under way"),
    S.COMPLETED: _l("Completed"),
    S.WITHDRAWN: _l("Withdrawn"),
}
