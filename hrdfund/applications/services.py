"""Services on applications. Each checks its rules, mutates, flushes and audits."""

from .. import audit
from ..columns import utcnow
from ..extensions import db
from .models import ApplicationStatus as S
from .models import StatusChange
from .states import check_transition

#: Timestamp columns set on the first move into these states.
_STAMPS = {
    S.SUBMITTED: "submitted_at",
    S.APPROVED: "decided_at",
    S.REJECTED: "decided_at",
    S.COMPLETED: "closed_at",
    S.WITHDRAWN: "closed_at",
}
#: Moves that count as the fund's first response to a submitted case.
_RESPONSES = frozenset({S.IN_REVIEW, S.INFO_REQUESTED, S.REJECTED, S.WITHDRAWN})


def change_status(application, target, actor=None, at=None):
    """Move ``application`` to ``target`` through the table of allowed moves.

    Raises :class:`~hrdfund.applications.states.InvalidTransition` for any other move;
    records the step with its time, and stamps submission, first response, decision and
    closing times the first time each happens.
    """
    target = S(target)
    current = S(application.status)
    check_transition(current, target)
    at = at or utcnow()
    application.status = target
    application.updated_at = at
    stamp = _STAMPS.get(target)
    if stamp and getattr(application, stamp) is None:
        setattr(application, stamp, at)
    if (
        target in _RESPONSES
        and current != S.DRAFT
        and application.first_response_at is None
        and (actor is None or actor.is_staff)
    ):
        application.first_response_at = at
    db.session.add(
        StatusChange(
            application=application,
            from_status=current,
            to_status=target,
            actor_id=actor.id if actor else None,
            at=at,
        )
    )
    db.session.flush()
    audit.record(
        "application.status",
        application,
        actor=actor,
        from_status=current.value,
        to_status=target.value,
    )
    return application
