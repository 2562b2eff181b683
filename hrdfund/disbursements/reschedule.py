"""Moving a payment plan's dates: a relocation put off, a stipend starting a month later.

A manager moves the instalments nothing was paid on yet, the plan's last ones: the first of
them to a new date, the others after it as planned (a month apart for a stipend, whose
months move with them; the same days apart for tranches). Amounts never change, nor do the
instalments already paid on (in part or in full, net of reversals), and the ones moved come
after them; a stipend shared with another fund by referral stays off the months that
fund's plan pays. A payment held for a second person on one of them is decided first. What
Follow-up, the alerts and the dashboard list follows at once (the open items are worked out
again as the instalments are written).
"""

from datetime import timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind
from ..grants.plans import (
    FURTHEST_DAYS,
    PlanError,
    check_months_free,
    months_after,
    period_month,
)
from ..ledger.balances import instalments_paid
from .models import HeldPayment, HoldStatus


def movable(plan, paid):
    """The plan's last instalments that nothing was paid on (``paid``: instalment id to
    what its payments settle net of reversals), in order; empty when the last one was."""
    found = []
    for instalment in reversed(plan.instalments):
        if paid.get(instalment.id, 0) > 0:
            break
        found.append(instalment)
    return found[::-1]


def paid_on_instalments(grant_id):
    """Instalment id -> what the grant's payments settle of it, net of reversals."""
    net = instalments_paid(grants=sa.select(Grant.id).where(Grant.id == grant_id))
    return dict(db.session.execute(sa.select(net.c.instalment_id, net.c.paid)).all())


def move_instalments(grant, actor, first_due_on):
    """Move the instalments of ``grant``'s plan not paid on yet (see the module), the first
    of them to ``first_due_on``; the instalments moved."""
    if actor.role != Role.MANAGER or actor.fund_id != grant.fund_id:
        raise PlanError(_l("Only a manager of the fund plans payments."))
    grant = lock_row(Grant, grant.id)
    if grant.status != GrantStatus.ACTIVE:
        raise PlanError(_l("This grant is closed."))
    plan = db.session.execute(
        sa.select(PaymentPlan).where(PaymentPlan.grant_id == grant.id)
    ).scalar_one_or_none()
    if plan is None:
        raise PlanError(_l("This grant has no payment plan yet."))
    today = utcnow().date()
    if first_due_on < today:
        raise PlanError(_l("The new date cannot be in the past."))
    if first_due_on > today + timedelta(days=FURTHEST_DAYS):
        raise PlanError(_l("Choose a date within two years."))
    moving = movable(plan, paid_on_instalments(grant.id))
    if not moving:
        raise PlanError(_l("Every instalment has a payment: none is left to move."))
    before = [i for i in plan.instalments if i.seq < moving[0].seq]
    if before:
        last = before[-1]
        # A stipend's next month is a month later: its months stay in order, one each.
        too_early = (
            period_month(plan.kind, first_due_on) <= last.period_month
            if plan.kind == PlanKind.STIPEND
            else first_due_on <= last.due_on
        )
        if too_early:
            raise PlanError(
                _l(
                    "Instalment %(seq)d, due on %(day)s, has a payment: the instalments"
                    " moved come after it.",
                    seq=last.seq,
                    day=last.due_on.isoformat(),
                )
            )
    waiting = db.session.execute(
        sa.select(Instalment.seq)
        .join(HeldPayment, HeldPayment.instalment_id == Instalment.id)
        .where(
            HeldPayment.instalment_id.in_([i.id for i in moving]),
            HeldPayment.status == HoldStatus.HELD,
        )
        .order_by(Instalment.seq)
    ).first()
    if waiting is not None:
        raise PlanError(
            _l(
                "A payment of instalment %(seq)d waits for a second person: confirm or"
                " refuse it first.",
                seq=waiting[0],
            )
        )
    first = moving[0].due_on
    if plan.kind == PlanKind.STIPEND:
        dues = [months_after(first_due_on, n) for n in range(len(moving))]
    else:
        dues = [first_due_on + (i.due_on - first) for i in moving]
    if dues == [i.due_on for i in moving]:
        raise PlanError(_l("Those are the dates planned already."))
    check_months_free(grant.application_id, plan.kind, dues)
    old_end = plan.ends_on
    for instalment, due in zip(moving, dues, strict=True):
        instalment.due_on = due
        instalment.period_month = period_month(plan.kind, due)
    if not before:
        plan.starts_on = dues[0]
    plan.ends_on = dues[-1]
    if plan.renewal_review_on is not None:
        # The review keeps its distance from the end, between the plan's first and last day.
        review = plan.renewal_review_on + (plan.ends_on - old_end)
        plan.renewal_review_on = min(max(review, plan.starts_on), plan.ends_on)
    db.session.flush()
    audit.record(
        "plan.moved",
        grant,
        actor=actor,
        instalments=len(moving),
        days=(first_due_on - first).days,
    )
    return moving
