"""The alerts of decisions and plans: a first approval waiting for a second manager, a
grant approved for finance to pay, a stipend's renewal review date come. Who may receive
them, at queueing and again at sending, is ``hrdfund.cases.alerts``'s rule."""

import sqlalchemy as sa

from ..alerts import outbox
from ..alerts.models import AlertKind
from ..cases import alerts
from ..cases.models import Application
from ..core.columns import utcnow
from ..core.extensions import db
from .models import Grant, GrantStatus, PaymentPlan


def approval_waits(application, first_manager, recommender_id):
    """Queue an alert for every manager who may confirm the first approval of
    ``application``: none who approved it (``first_manager``), recommended it or declared
    a conflict on it."""
    but = {first_manager.id, recommender_id} - {None}
    return alerts.notify_role(application, AlertKind.SECOND_APPROVAL, but=but)


def grant_approved(grant):
    """Queue an alert for the fund's finance officers: ``grant`` is approved and may be
    paid."""
    return alerts.notify_role(grant.application, AlertKind.GRANT_APPROVED)


def renewal_once(plan):
    """The once-key of a plan's renewal review alert: one per plan and review date."""
    return f"renewal:{plan.id}:{plan.renewal_review_on:%Y%m%d}"


def queue_renewal_alerts(today=None):
    """Queue an alert for the fund's managers, once per plan and review date, for every
    plan of an open grant whose renewal review date has come; returns how many were
    queued."""
    today = today or utcnow().date()
    plans = db.session.execute(
        sa.select(PaymentPlan, Application)
        .join(Grant, Grant.id == PaymentPlan.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Grant.status == GrantStatus.ACTIVE, PaymentPlan.renewal_review_on <= today)
        .order_by(PaymentPlan.id)
    ).all()
    done = outbox.queued_once(AlertKind.RENEWAL_REVIEW, [a.id for _p, a in plans])
    queued = 0
    for plan, application in plans:
        once = renewal_once(plan)
        if once not in done:
            queued += alerts.notify_role(application, AlertKind.RENEWAL_REVIEW, once=once)
    return queued
