"""Who on staff hears of a case, and when: the case's reviewer, else the staff on duty,
else the fund's managers, never someone with a conflict on it; the alerts for cases about
to miss a target; and who may still receive an alert when it goes out. The outbox and the
mail are ``hrdfund.alerts.outbox``'s; the alerts of decisions and plans are queued by
``hrdfund.grants.alerts`` and ``hrdfund.disbursements.alerts``."""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..alerts import notices, outbox
from ..alerts.models import Alert, AlertKind
from ..auth.models import APPLICANT_ROLES, Role, User
from ..core.columns import utcnow
from ..core.extensions import db
from .access import REVIEW_ROLES, can_see, staff_on_case
from .models import Application, Decision, DecisionOutcome
from .models import ApplicationStatus as S

#: States in which the next step is the fund's (not the applicant's, not finance's).
WAITING_ON_STAFF = (S.SUBMITTED, S.IN_REVIEW, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)

#: The roles each kind of alert is for: one who has since moved to another role no longer
#: receives it.
ROLES = {
    AlertKind.URGENT_CASE: REVIEW_ROLES,
    AlertKind.TARGET_NEAR: REVIEW_ROLES,
    AlertKind.APPLICANT_ANSWER: REVIEW_ROLES,
    AlertKind.PAYMENT_HELD: frozenset({Role.FINANCE, Role.MANAGER}),
    AlertKind.SECOND_APPROVAL: frozenset({Role.MANAGER}),
    AlertKind.GRANT_APPROVED: frozenset({Role.FINANCE}),
    AlertKind.INSTALMENT_DUE: frozenset({Role.FINANCE}),
    AlertKind.RENEWAL_REVIEW: frozenset({Role.MANAGER}),
    AlertKind.RECEIPT_PROBLEM: frozenset({Role.FINANCE}),
    AlertKind.APPLICANT_NEWS: APPLICANT_ROLES,
}


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


def notify_role(application, kind, but=(), once=None):
    """Queue an alert of ``kind`` for every active member of the fund's staff in the role
    it is for (``ROLES``) who may work on ``application``, except the users whose ids are
    in ``but``; never someone with a conflict on it."""
    staff = staff_on_case(application, ROLES[kind])
    if but:
        staff = staff.where(User.id.not_in(list(but)))
    users = db.session.execute(staff.order_by(User.id)).scalars().all()
    return outbox.notify_users(users, application, kind, once=once)


def first_approver_id(application):
    """The manager of the latest approval of ``application`` (the one a second manager
    confirms), or None."""
    return db.session.execute(
        sa.select(Decision.manager_id)
        .where(
            Decision.application_id == application.id,
            Decision.outcome == DecisionOutcome.APPROVE,
        )
        .order_by(Decision.id.desc())
        .limit(1)
    ).scalar()


def may_receive(alert, user):
    """Whether ``user`` may still receive ``alert`` as it goes out: they may open its case
    (``can_see``: still of its fund, no conflict declared), still hold the role it is for,
    and a second approval still waits for them (not the first approver's own). A notice
    to the applicant side goes only while the account still wants notices at an email
    address."""
    application = alert.application
    if not can_see(application, user) or user.role not in ROLES.get(alert.kind, ()):
        return False
    if alert.kind == AlertKind.APPLICANT_NEWS:
        return notices.wants_notices(user)
    if alert.kind == AlertKind.SECOND_APPROVAL:
        return (
            application.status == S.AWAITING_SECOND_APPROVAL
            and first_approver_id(application) != user.id
        )
    return True


def held_back_notices():
    """SQL condition on alerts: the discreet notices the settings hold back (every one, or
    those on the cases of the funds a setting names: ``notices.held_back_funds``); None
    when they hold none back."""
    funds = notices.held_back_funds()
    if not funds:
        return None
    condition = sa.and_(
        Alert.kind == AlertKind.APPLICANT_NEWS,
        Alert.user_id.in_(sa.select(User.id).where(User.notices_discreet.is_(True))),
    )
    if funds is True:
        return condition
    cases = sa.select(Application.id).where(Application.fund_id.in_(funds))
    return sa.and_(condition, Alert.application_id.in_(cases))


def send_pending(limit=500):
    """Send the outbox to those who may still receive each alert (``may_receive``): one
    who left the fund or declared a conflict since it was queued never gets it. The
    notices the settings hold back wait, unread."""
    return outbox.send_pending(may_receive, limit, held_back_notices)


def send_after_response(response):
    """after_request hook: send what this request queued once the response is out."""
    return outbox.send_after_response(response, may_receive, held_back_notices)


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


@dataclass(frozen=True)
class FundOutbox:
    """What a fund's admin reads of the outbox: the alerts on the fund's cases, counted,
    and nothing of what they say or whom they are for."""

    waiting: int
    #: Notices a setting holds back (not among ``waiting``): they go out once it changes.
    held_back: int
    #: Of those waiting, how many the mail server refused at least once.
    refused_before: int
    #: When the oldest alert still waiting was written (None: none waits).
    oldest_waiting: object
    sent_this_week: int
    #: Given up: alerts to staff, and notices to the applicant side (not what they told).
    given_up_alerts: int
    given_up_notices: int

    @property
    def given_up_total(self):
        return self.given_up_alerts + self.given_up_notices


def _of_fund(query, fund_id):
    """``query`` (over alerts) kept to the alerts on the cases of fund ``fund_id``."""
    return query.join(Application, Application.id == Alert.application_id).where(
        Application.fund_id == fund_id
    )


def fund_outbox(fund_id, now=None):
    """The outbox of the cases of fund ``fund_id``, counted."""
    week_ago = (now or utcnow()) - timedelta(days=7)
    held = held_back_notices()
    pending = outbox.pending()
    waits = pending if held is None else sa.and_(pending, sa.not_(held))
    held_back = sa.false() if held is None else sa.and_(pending, held)
    notice = Alert.kind == AlertKind.APPLICANT_NEWS
    row = db.session.execute(
        _of_fund(
            sa.select(
                sa.func.count().filter(waits),
                sa.func.count().filter(held_back),
                sa.func.count().filter(waits, Alert.attempts > 0),
                sa.func.min(Alert.created_at).filter(waits),
                sa.func.count().filter(Alert.sent_at >= week_ago),
                sa.func.count().filter(outbox.given_up(), sa.not_(notice)),
                sa.func.count().filter(outbox.given_up(), notice),
            ).select_from(Alert),
            fund_id,
        )
    ).one()
    return FundOutbox(*row)


def try_again(actor, fund_id):
    """Give the alerts of fund ``fund_id``'s cases that the mail server refused too often
    another round of attempts: the next run of ``flask hrdfund alerts`` sends them.
    Audited with their number; returns it."""
    ids = _of_fund(sa.select(Alert.id), fund_id).where(outbox.given_up())
    count = db.session.execute(
        sa.update(Alert)
        .where(Alert.id.in_(ids))
        .values(attempts=0, claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if count:
        audit.record("alerts.tried_again", actor=actor, fund=fund_id, alerts=count)
    return count
