"""The one table of allowed status moves, and the names each side sees."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from .models import ApplicationStatus as S


class InvalidTransition(Exception):
    """A status move that the table below does not allow."""

    def __init__(self, current, target):
        super().__init__(f"{current} -> {target} is not allowed")
        self.current = current
        self.target = target


class CaseMoved(Exception):
    """The case's status moved on (another person's decision, sent at the same moment)
    after the request read it: what the request did is undone, and the person is told."""

    def __init__(self, application):
        super().__init__(f"case {application.uid} moved on")
        self.uid = application.uid


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
    # Said of the application, as "Received" is: in French, la demande (approuvée), where
    # staff read of the case, le dossier (approuvé).
    S.APPROVED: lazy_pgettext("application", "Approved"),
    S.REJECTED: _l("Not approved"),
    S.PAYING: _l("Approved, payments under way"),
    S.COMPLETED: lazy_pgettext("application", "Completed"),
    S.WITHDRAWN: lazy_pgettext("application", "Withdrawn"),
}

#: States with no way out: the thread is closed.
TERMINAL_STATES = frozenset(state for state, moves in TRANSITIONS.items() if not moves)

#: What happens next, told to the applicant side.
NEXT_STEPS = {
    S.DRAFT: _l("Fill in the missing answers, then send the application."),
    S.SUBMITTED: _l(
        "The fund has your application and will answer soon. Urgent cases get a "
        "first answer within a day."
    ),
    S.IN_REVIEW: _l(
        "The fund is checking the case with your references. It may ask you questions here."
    ),
    S.INFO_REQUESTED: _l("The fund asked a question below. Your answer lets the review go on."),
    S.RECOMMENDED: _l("The review is done; a manager will decide soon."),
    S.AWAITING_SECOND_APPROVAL: _l("The review is done; a manager will decide soon."),
    S.APPROVED: _l("The support was approved. The fund will tell you here when it pays."),
    S.PAYING: _l("Payments are being made. Please confirm each one you receive."),
    S.COMPLETED: _l("This support is complete. A short report on how it helped is welcome."),
    S.REJECTED: _l("The fund could not support this request. The reason is below."),
    S.WITHDRAWN: _l("This application was withdrawn."),
}
#: A draft with every answer sending needs: nothing is missing, it waits to be sent.
DRAFT_COMPLETE = _l(
    "Every answer is there: read them over on the last step, then send the application."
)
#: Support complete, its report sent: nothing more is asked.
COMPLETE_AND_REPORTED = _l("This support is complete. Thank you for your report.")
#: What happens next to a case that is not urgent, where it differs: no promise of a day.
NEXT_STEPS_NOT_URGENT = {
    S.SUBMITTED: _l("The fund has your application and will answer soon."),
}
