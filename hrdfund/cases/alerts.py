"""Who on staff hears of a case, and when: the case's reviewer, else the staff on duty,
else the fund's managers, never someone with a conflict on it; and the alerts for cases
about to miss a target. The outbox and the mail are ``hrdfund.alerts.outbox``'s."""

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ..alerts import outbox
from ..alerts.models import AlertKind
from ..auth.models import Role, User
from ..core.columns import utcnow
from ..core.extensions import db
from .access import REVIEW_ROLES, can_see, staff_on_case
from .models import Application
from .models import ApplicationStatus as S

#: States in which the next step is the fund's (not the applicant's, not finance's).
WAITING_ON_STAFF = (S.SUBMITTED, S.IN_REVIEW, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)


def recipients(application):
    """The staff on the case: its reviewer; if none, the staff on duty; if none, the fund's
    managers. Never someone who declared a conflict on it."""
    staff = staff_on_case(application, REVIEW_ROLES)
    choices = [User.on_duty.is_(True), User.role == Role.MANAGER]
    if application.assigned_reviewer_id is not None:
        choices.insert(0, User.id == application.assigned_reviewer_id)
    for condition in choices:
        found = db.session.execute(staff.where(condition).order_by(User.id)).scalars().all()
        if found:
            return found
    return []


def notify(application, kind, once=None):
    """Queue an alert of ``kind`` for the staff on ``application``; with ``once``, a
    recipient gets it a single time whatever the number of calls."""
    return outbox.notify_users(recipients(application), application, kind, once=once)


def send_pending(limit=500):
    """Send the outbox to those who may still see each alert's case (``can_see``): one
    who left the fund or declared a conflict since it was queued never gets it."""
    return outbox.send_pending(can_see, limit)


def send_after_response(response):
    """after_request hook: send what this request queued once the response is out."""
    return outbox.send_after_response(response, can_see)


def queue_target_alerts(now=None):
    """Queue an alert, once per target, for every case whose next target falls due within
    ALERT_HOURS_BEFORE_TARGET hours (or has passed) while the next step is the fund's."""
    now = now or utcnow()
    horizon = now + timedelta(hours=current_app.config["ALERT_HOURS_BEFORE_TARGET"])
    waiting = sa.and_(
        Application.status.in_(WAITING_ON_STAFF), Application.clock_paused_at.is_(None)
    )
    response_due = sa.and_(
        Application.first_response_at.is_(None), Application.response_due_at <= horizon
    )
    decision_due = sa.and_(
        Application.first_response_at.is_not(None), Application.decision_due_at <= horizon
    )
    cases = (
        db.session.execute(
            sa.select(Application).where(waiting, sa.or_(response_due, decision_due))
        )
        .scalars()
        .all()
    )
    queued = 0
    for case in cases:
        if case.first_response_at is None:
            what, due = "response", case.response_due_at
        else:
            what, due = "decision", case.decision_due_at
        once = f"target:{case.uid}:{what}:{due:%Y%m%d%H%M}"
        queued += notify(case, AlertKind.TARGET_NEAR, once=once)
    return queued
