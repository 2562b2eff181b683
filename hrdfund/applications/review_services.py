"""The staff side of a case before the money: assignment, conflicts of interest, reference
checks, the reviewer's recommendation and a manager's rejection."""

import sqlalchemy as sa

from .. import audit
from ..auth.models import Role
from ..columns import utcnow
from ..extensions import db
from ..money import quantize
from .access import can_see
from .models import ApplicationStatus as S
from .models import VerificationStatus
from .review_models import (
    ConflictDeclaration,
    Decision,
    DecisionOutcome,
    Recommendation,
    Review,
    RiskLevel,
)
from .services import change_status

REVIEW_ROLES = (Role.REVIEWER, Role.MANAGER)


class ReviewError(Exception):
    """A review step the rules do not allow; the message says which rule."""


def _check_staff(application, user, roles=REVIEW_ROLES):
    if user.role not in roles:
        raise ReviewError("this step is for reviewers and managers")
    if not can_see(application, user):
        raise ReviewError("this case is outside your fund or you declared a conflict")


def assign_reviewer(application, reviewer, actor):
    """Give the case to ``reviewer``; a newly submitted case goes into review."""
    _check_staff(application, actor)
    _check_staff(application, reviewer)
    application.assigned_reviewer_id = reviewer.id
    db.session.flush()
    audit.record("application.assigned", application, actor=actor, reviewer=reviewer.pseudonym)
    if application.status == S.SUBMITTED:
        change_status(application, S.IN_REVIEW, actor=actor)
    return application


def declare_conflict(application, user):
    """Record a conflict of interest; the declarer leaves the case and cannot decide on it."""
    if not can_see(application, user) or not user.is_staff:
        raise ReviewError("only staff of the case's fund declare conflicts on it")
    db.session.add(ConflictDeclaration(application_id=application.id, user_id=user.id))
    if application.assigned_reviewer_id == user.id:
        application.assigned_reviewer_id = None
    db.session.flush()
    audit.record("application.conflict_declared", application, actor=user)
    return application


def record_reference_check(reference, status, notes, actor):
    """What a reference said when the fund contacted them (notes stay encrypted)."""
    application = reference.application
    _check_staff(application, actor)
    reference.status = VerificationStatus(status)
    reference.notes = (notes or "").strip() or None
    reference.contacted_at = utcnow()
    reference.contacted_by_id = actor.id
    db.session.flush()
    audit.record(
        "reference.checked",
        reference,
        actor=actor,
        case=application.uid,
        status=reference.status.value,
    )
    return reference


def recommend(application, reviewer, risk_level, recommendation, amount, assessment):
    """The reviewer's assessment and recommendation; the case then waits for a manager."""
    _check_staff(application, reviewer)
    if application.status != S.IN_REVIEW:
        raise ReviewError("only a case in review can be recommended")
    recommendation = Recommendation(recommendation)
    if recommendation != Recommendation.REJECT and not amount:
        raise ReviewError("a recommendation to approve names an amount")
    review = Review(
        application_id=application.id,
        reviewer_id=reviewer.id,
        risk_level=RiskLevel(risk_level),
        recommendation=recommendation,
        recommended_amount=quantize(amount) if amount else None,
        currency=application.currency,
    )
    review.assessment = (assessment or "").strip() or None
    db.session.add(review)
    db.session.flush()
    audit.record(
        "review.recorded",
        review,
        actor=reviewer,
        case=application.uid,
        recommendation=recommendation.value,
    )
    change_status(application, S.RECOMMENDED, actor=reviewer)
    return review


def reject_application(application, manager, reason):
    """A manager's refusal, with a reason the applicant reads in plain words."""
    _check_staff(application, manager, roles=(Role.MANAGER,))
    if not (reason or "").strip():
        raise ReviewError("a rejection gives the applicant a reason")
    round_ = (
        db.session.execute(
            sa.select(sa.func.max(Decision.round)).where(Decision.application_id == application.id)
        ).scalar()
        or 0
    ) + 1
    decision = Decision(
        application_id=application.id,
        manager_id=manager.id,
        outcome=DecisionOutcome.REJECT,
        currency=application.currency,
        round=round_,
    )
    decision.reason = reason.strip()
    db.session.add(decision)
    db.session.flush()
    change_status(application, S.REJECTED, actor=manager)
    return decision
