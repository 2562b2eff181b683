"""A case's message thread: who writes in it, and what a message does to the case (an
answer puts it back in review, a question from review makes it wait for the answer)."""

import sqlalchemy as sa

from .. import audit
from ..alerts.models import AlertKind
from ..core.extensions import db
from . import access, alerts, notices
from .models import ApplicationStatus as S
from .models import Message
from .services import case_rows, change_status, read_status_again
from .states import TRANSITIONS


class ThreadClosedError(Exception):
    """A draft has no thread yet, a closed case takes no more messages, and only those who
    read a case's thread write in it."""


#: Staff whose message on a case in review is a question: the case waits for the answer and
#: its target clock stops. A message from finance (which sees a case only once approved,
#: to pay it) never is, and never moves the case.
QUESTION_ROLES = access.REVIEW_ROLES


def post_message(application, author, body):
    """Add a message to the case's thread.

    The applicant side writes on its own case; reviewers and managers on the fund's cases
    they have no conflict on; finance from the approval on. An answer from the applicant
    side to a question puts the case back in review; a message from a reviewer or manager
    on a case in review is a question and the case waits for the applicant. Nothing else
    a message does changes the case's status or its target clock. A message from staff
    sends the applicant side a notice (``notices``).
    """
    # The status this message may move, as stored: another answer sent at the same moment
    # may have put the case back in review already; this one is kept all the same.
    status = read_status_again(application)
    if status == S.DRAFT or not TRANSITIONS[status]:
        raise ThreadClosedError()
    readable = access.sections(application, author)
    if not readable & {access.Section.THREAD, access.Section.PAYMENT_MESSAGES}:
        raise ThreadClosedError()
    from_staff = author.is_staff
    message = Message(
        application_id=application.id,
        author_id=author.id,
        from_staff=from_staff,
        body=body.strip(),
        is_question=author.role in QUESTION_ROLES and application.status == S.IN_REVIEW,
    )
    db.session.add(message)
    db.session.flush()
    audit.record(
        "message.posted", message, actor=author, fund=application.fund_id, case=application.uid
    )
    if from_staff:
        notices.tell_applicant_side(application)
    else:
        alerts.notify(application, AlertKind.APPLICANT_ANSWER)
    if not from_staff and application.status == S.INFO_REQUESTED:
        change_status(application, S.IN_REVIEW, actor=author)
    elif message.is_question:
        change_status(application, S.INFO_REQUESTED, actor=author)
    return message


def thread(application, since=None):
    """The case's messages, oldest first; with ``since``, those written from then on."""
    if since is None:
        return case_rows(Message, application)
    return (
        db.session.execute(
            sa.select(Message)
            .where(Message.application_id == application.id, Message.created_at >= since)
            .order_by(Message.id)
        )
        .scalars()
        .all()
    )
