"""What waits for the applicant side on its cases, for its list of cases to mark in plain
words: a draft to finish and send and a question of the fund to answer (this feature's),
and what higher features register here (a payment to say whether it arrived).
Applications sit below grants and payments and never import them; those features
register a check instead, as they register a panel of the case page."""

import enum
from collections import defaultdict

from flask_babel import lazy_gettext as _l

from .models import ApplicationStatus as S
from .states import NEXT_STEPS


class Waiting(enum.StrEnum):
    #: A draft: the applicant side has yet to finish and send it.
    DRAFT = "draft"
    #: The fund asked a question the applicant side has not answered.
    QUESTION = "question"
    #: A payment stands that no one on the applicant side confirmed receiving.
    PAYMENT = "payment"


#: How the list of cases says what waits, in this order.
WAITING_LABELS = {
    Waiting.DRAFT: NEXT_STEPS[S.DRAFT],
    Waiting.QUESTION: _l("The fund asked you a question: please answer it."),
    Waiting.PAYMENT: _l("A payment was sent: please say whether it arrived."),
}

_CHECKS = []


def register(check):
    """Add ``check(applications) -> iterable of (application id, Waiting)`` to what the
    list of cases marks."""
    _CHECKS.append(check)
    return check


def waiting_on(applications):
    """What waits for the applicant side on each of ``applications`` (which the reader may
    open), as ``{application id: [Waiting, ...]}`` in the order of ``WAITING_LABELS``;
    cases where nothing waits are left out."""
    found = defaultdict(set)
    for application in applications:
        if application.status == S.DRAFT:
            found[application.id].add(Waiting.DRAFT)
        elif application.status == S.INFO_REQUESTED:
            found[application.id].add(Waiting.QUESTION)
    if applications:
        for check in _CHECKS:
            for application_id, what in check(applications):
                found[application_id].add(what)
    order = list(WAITING_LABELS)
    return {key: sorted(values, key=order.index) for key, values in found.items()}
