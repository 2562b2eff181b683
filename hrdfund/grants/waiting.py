"""The decisions waiting for the fund's managers, for their dashboard: cases recommended,
and approvals waiting for a second manager, with the split each first approval proposed
and whether the reader may confirm it there. A few queries whatever the number of rows.

Approvals waiting for a second manager come first (one button each), then the cases
marked urgent, then the earliest decision target: the top is what a manager does next.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from ..auth.models import User
from ..cases.access import visible_cases
from ..cases.models import Application, Decision, DecisionOutcome, Urgency
from ..cases.models import ApplicationStatus as S
from ..core.extensions import db
from ..pools.models import Pool
from ..reviews.models import Review
from .models import ApprovalDraw

#: How many the dashboard lists; the queue has the rest.
DASHBOARD_ROWS = 10


@dataclass
class Waiting:
    """One case waiting for a manager's decision."""

    uid: str
    code: str | None
    category: object
    urgency: object
    status: S
    amount: Decimal | None
    currency: str
    decision_due_at: datetime | None
    #: For an approval waiting for a second manager: the first approval's amount, who
    #: gave it, and its split as (pool name, amount in the case's currency).
    approved: Decimal | None = None
    approved_by: int | None = None
    #: The name of the manager who gave it, as colleagues read it.
    approver: str | None = None
    draws: list = field(default_factory=list)
    recommended_by: int | None = None
    #: The review the approval followed: its risk level and recommendation.
    risk: object = None
    recommendation: object = None

    def confirmable_by(self, user):
        """Whether ``user`` may confirm it from the list: a second approval waits, and
        ``user`` neither gave the first nor recommended the case (the service checks it
        all again)."""
        return (
            self.status == S.AWAITING_SECOND_APPROVAL
            and self.approved is not None
            and user.id not in (self.approved_by, self.recommended_by)
        )


def decisions_waiting(user, limit=DASHBOARD_ROWS):
    """Up to ``limit`` cases waiting for a manager's decision that ``user`` may open, in
    order (see the module's docstring), and how many there are in all."""
    waiting = (S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)
    condition = sa.and_(visible_cases(user), Application.status.in_(waiting))
    rows = db.session.execute(
        sa.select(
            Application.id,
            Application.uid,
            Application.code,
            Application.category,
            Application.urgency,
            Application.status,
            Application.amount_requested,
            Application.currency,
            Application.decision_due_at,
        )
        .where(condition)
        .order_by(
            sa.case((Application.status == S.AWAITING_SECOND_APPROVAL, 0), else_=1),
            sa.case((Application.urgency == Urgency.URGENT, 0), else_=1),
            Application.decision_due_at.is_(None),
            Application.decision_due_at,
            Application.id,
        )
        .limit(limit)
    ).all()
    total = db.session.execute(sa.select(sa.func.count(Application.id)).where(condition)).scalar()
    listed = {
        r.id: Waiting(
            r.uid,
            r.code,
            r.category,
            r.urgency,
            r.status,
            r.amount_requested,
            r.currency,
            r.decision_due_at,
        )
        for r in rows
    }
    _add_first_approvals(listed)
    return list(listed.values()), total


def _add_first_approvals(listed):
    """Fill in each approval waiting for a second manager: the latest approval and who gave
    it, its split, and who recommended the case, at which risk. Three queries for all the
    rows."""
    ids = [i for i, w in listed.items() if w.status == S.AWAITING_SECOND_APPROVAL]
    if not ids:
        return
    latest = (
        sa.select(sa.func.max(Decision.id))
        .where(Decision.application_id.in_(ids), Decision.outcome == DecisionOutcome.APPROVE)
        .group_by(Decision.application_id)
    )
    firsts = db.session.execute(
        sa.select(
            Decision.id,
            Decision.application_id,
            Decision.amount,
            Decision.manager_id,
            User,
        )
        .join(User, User.id == Decision.manager_id)
        .where(Decision.id.in_(latest))
    ).all()
    by_decision = {}
    for d in firsts:
        item = listed[d.application_id]
        item.approved, item.approved_by = d.amount, d.manager_id
        item.approver = d.User.display_name or d.User.login
        by_decision[d.id] = item
    for decision_id, name, amount in db.session.execute(
        sa.select(ApprovalDraw.decision_id, Pool.name, ApprovalDraw.amount)
        .join(Pool, Pool.id == ApprovalDraw.pool_id)
        .where(ApprovalDraw.decision_id.in_(list(by_decision)))
        .order_by(ApprovalDraw.id)
    ):
        by_decision[decision_id].draws.append((name, amount))
    latest_review = (
        sa.select(sa.func.max(Review.id))
        .where(Review.application_id.in_(ids))
        .group_by(Review.application_id)
    )
    for application_id, reviewer_id, risk, recommendation in db.session.execute(
        sa.select(
            Review.application_id, Review.reviewer_id, Review.risk_level, Review.recommendation
        ).where(Review.id.in_(latest_review))
    ):
        item = listed[application_id]
        item.recommended_by, item.risk, item.recommendation = reviewer_id, risk, recommendation
