"""The staff side of a case before the money: assignment, conflicts of interest, reference
checks, the reviewer's recommendation and a manager's rejection."""

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import check_currency, total
from .access import REVIEW_ROLES, can_see, visible_cases
from .models import Application, Message, StatusChange, VerificationStatus
from .models import ApplicationStatus as S
from .review_models import (
    CaseNote,
    Cofunding,
    ConflictDeclaration,
    Decision,
    DecisionOutcome,
    NoteKind,
    Recommendation,
    Review,
    RiskLevel,
)
from .services import case_rows, change_status


class ReviewError(Exception):
    """A review step the rules do not allow; the message says which rule."""


def _check_staff(application, user, roles=REVIEW_ROLES):
    if user.role not in roles:
        raise ReviewError(_l("This step is for reviewers and managers."))
    if not can_see(application, user):
        raise ReviewError(_l("This case is outside your fund or you declared a conflict."))


class AssignOthersError(ReviewError):
    """Someone other than a manager gave a case to another person."""


def assign_reviewer(application, reviewer, actor):
    """Give the case to ``reviewer``; a newly submitted case goes into review. A manager
    gives a case to anyone on its staff; a reviewer takes it only for themself."""
    _check_staff(application, actor)
    if actor.role != Role.MANAGER and reviewer.id != actor.id:
        raise AssignOthersError(_l("Only a manager gives a case to someone else."))
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
        raise ReviewError(_l("Only staff of the case's fund declare conflicts on it."))
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


def recommend(
    application, reviewer, risk_level, recommendation, amount, assessment, line_amounts=None
):
    """The reviewer's assessment and recommendation; the case then waits for a manager.

    ``line_amounts`` maps budget line ids to the amount recommended for each; without an
    overall ``amount`` their sum is the recommended amount.
    """
    _check_staff(application, reviewer)
    if application.status != S.IN_REVIEW:
        raise ReviewError(_l("Only a case in review can be recommended."))
    recommendation = Recommendation(recommendation)
    if not amount and line_amounts:
        # Refused (MoneyError) before anything changes when the lines add up to more
        # than one amount holds.
        amount = total(line_amounts.values())
    lines = {line.id: line for line in application.budget_lines}
    for line_id, line_amount in (line_amounts or {}).items():
        if line_id in lines and line_amount is not None:
            lines[line_id].recommended_amount = line_amount
    if recommendation != Recommendation.REJECT and not amount:
        raise ReviewError(_l("A recommendation to approve names an amount."))
    review = Review(
        application_id=application.id,
        reviewer_id=reviewer.id,
        risk_level=RiskLevel(risk_level),
        recommendation=recommendation,
        recommended_amount=amount or None,
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


def latest_review(application):
    """The most recent assessment of the case, or None."""
    return (
        db.session.execute(
            sa.select(Review)
            .where(Review.application_id == application.id)
            .order_by(Review.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def decision_round(application):
    """Which decision round the case is in: one more each time it is recommended again."""
    return max(
        1,
        db.session.execute(
            sa.select(sa.func.count(StatusChange.id)).where(
                StatusChange.application_id == application.id,
                StatusChange.to_status == S.RECOMMENDED,
            )
        ).scalar(),
    )


def reject_application(application, manager, reason):
    """A manager's refusal, with a reason the applicant reads in plain words."""
    _check_staff(application, manager, roles=(Role.MANAGER,))
    if not (reason or "").strip():
        raise ReviewError(_l("A rejection gives the applicant a reason."))
    decision = Decision(
        application_id=application.id,
        manager_id=manager.id,
        outcome=DecisionOutcome.REJECT,
        currency=application.currency,
        round=decision_round(application),
    )
    decision.reason = reason.strip()
    db.session.add(decision)
    db.session.flush()
    change_status(application, S.REJECTED, actor=manager)
    return decision


#: Where a question can be asked: in review, or by a manager at the decision.
QUESTION_STATES = (S.IN_REVIEW, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)


def request_information(application, user, question):
    """Ask the applicant side a question; the case and its target clock wait for the answer.
    A manager asking at the decision stage records it as that round's decision."""
    _check_staff(application, user)
    question = (question or "").strip()
    if not question:
        raise ReviewError(_l("Write the question the applicant should answer."))
    if application.status not in QUESTION_STATES:
        raise ReviewError(_l("This case is not waiting for the fund."))
    if application.status != S.IN_REVIEW:
        if user.role != Role.MANAGER:
            raise ReviewError(_l("Once recommended, only a manager asks for more."))
        decision = Decision(
            application_id=application.id,
            manager_id=user.id,
            outcome=DecisionOutcome.REQUEST_INFO,
            currency=application.currency,
            round=decision_round(application),
        )
        decision.reason = question
        db.session.add(decision)
        if application.status == S.AWAITING_SECOND_APPROVAL:
            # The first approval lapses: the answer may change the case.
            change_status(application, S.IN_REVIEW, actor=user)
    message = Message(
        application_id=application.id,
        author_id=user.id,
        from_staff=True,
        body=question,
        is_question=True,
    )
    db.session.add(message)
    db.session.flush()
    audit.record("message.posted", message, actor=user, case=application.uid)
    change_status(application, S.INFO_REQUESTED, actor=user)
    return message


def add_note(application, author, kind, body):
    """A confidential note, or what a local partner said when the fund checked the case."""
    _check_staff(application, author)
    body = (body or "").strip()
    if not body:
        raise ReviewError(_l("Write the note first."))
    note = CaseNote(application_id=application.id, author_id=author.id, kind=NoteKind(kind))
    note.body = body
    db.session.add(note)
    db.session.flush()
    audit.record("case_note.added", note, actor=author, case=application.uid, kind=note.kind.value)
    return note


def case_notes(application):
    """The case's notes, oldest first, each with its author: one query for all."""
    return case_rows(CaseNote, application, sa.orm.joinedload(CaseNote.author))


def record_cofunding(application, actor, funder, amount, currency, starts_on, ends_on):
    """Another funder pays part of the same need."""
    _check_staff(application, actor)
    funder = (funder or "").strip()
    if not funder:
        raise ReviewError(_l("Name the other funder."))
    if starts_on and ends_on and ends_on < starts_on:
        raise ReviewError(_l("The period ends before it starts."))
    row = Cofunding(
        application_id=application.id,
        funder=funder,
        amount=amount or None,
        currency=check_currency(currency or application.currency),
        starts_on=starts_on,
        ends_on=ends_on,
        recorded_by_id=actor.id,
    )
    db.session.add(row)
    db.session.flush()
    audit.record("cofunding.recorded", row, actor=actor, case=application.uid)
    return row


def cofundings(application):
    return case_rows(Cofunding, application)


#: Cases that paid nothing and cannot overlap with another need.
_NOT_SUPPORT = (S.DRAFT, S.REJECTED, S.WITHDRAWN)


def possible_duplicates(application, reader):
    """Other cases of the fund that look like the same need: the same defender (the same
    applicant account, or the same name and country), the same category, and a period that
    overlaps (the other case is open, or closed less than DUPLICATE_WINDOW_DAYS before this
    one was sent)."""
    same_defender = []
    if application.defender_key:
        same_defender.append(Application.defender_key == application.defender_key)
    if application.applicant_id and application.partner_organisation_id is None:
        same_defender.append(
            sa.and_(
                Application.applicant_id == application.applicant_id,
                Application.partner_organisation_id.is_(None),
            )
        )
    if not same_defender:
        return []
    since = (application.submitted_at or utcnow()) - timedelta(
        days=current_app.config["DUPLICATE_WINDOW_DAYS"]
    )
    return db.session.execute(
        sa.select(Application.uid, Application.status, Application.submitted_at)
        .where(
            Application.fund_id == application.fund_id,
            Application.id != application.id,
            Application.category == application.category,
            Application.status.not_in(_NOT_SUPPORT),
            sa.or_(*same_defender),
            sa.or_(Application.closed_at.is_(None), Application.closed_at >= since),
            # A case the reader may not open (one they stepped away from) stays out of
            # their sight here too.
            visible_cases(reader),
        )
        .order_by(Application.submitted_at.desc())
        .limit(20)
    ).all()
