"""The staff side of a case before the money: assignment, conflicts of interest, reference
checks, the reviewer's recommendation and a manager's rejection."""

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..cases.access import can_see, check_staff, note_conflict, visible_cases
from ..cases.models import (
    Application,
    ConflictDeclaration,
    VerificationStatus,
)
from ..cases.models import ApplicationStatus as S
from ..cases.services import amount_asked, case_rows, change_status
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import MoneyError, check_currency, check_units, money_words, total
from .models import CaseNote, Cofunding, NoteKind, Recommendation, Review, RiskLevel


class ReviewError(Exception):
    """A review step the rules do not allow; the message says which rule."""


class AssignOthersError(ReviewError):
    """Someone other than a manager gave a case to another person."""


def assign_reviewer(application, reviewer, actor):
    """Give the case to ``reviewer``; a newly submitted case goes into review. A manager
    gives a case to anyone on its staff; a reviewer takes it only for themself."""
    check_staff(application, actor, ReviewError)
    if actor.role != Role.MANAGER and reviewer.id != actor.id:
        raise AssignOthersError(_l("Only a manager gives a case to someone else."))
    check_staff(application, reviewer, ReviewError)
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
    note_conflict(application, user)
    if application.assigned_reviewer_id == user.id:
        application.assigned_reviewer_id = None
    db.session.flush()
    audit.record("application.conflict_declared", application, actor=user)
    return application


def record_reference_check(reference, status, notes, actor):
    """What a reference said when the fund contacted them (notes stay encrypted)."""
    application = reference.application
    check_staff(application, actor, ReviewError)
    reference.status = VerificationStatus(status)
    reference.notes = (notes or "").strip() or None
    reference.contacted_at = utcnow()
    reference.contacted_by_id = actor.id
    db.session.flush()
    audit.record(
        "reference.checked",
        reference,
        actor=actor,
        fund=application.fund_id,
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
    check_staff(application, reviewer, ReviewError)
    if application.status != S.IN_REVIEW:
        raise ReviewError(_l("Only a case in review can be recommended."))
    recommendation = Recommendation(recommendation)
    try:
        for each in (amount, *(line_amounts or {}).values()):
            check_units(each, application.currency)
    except MoneyError as exc:
        raise ReviewError(str(exc)) from exc
    if not amount and line_amounts:
        # Refused (MoneyError) before anything changes when the lines add up to more
        # than one amount holds.
        amount = total(line_amounts.values())
    lines = {line.id: line for line in application.budget_lines}
    for line_id, line_amount in (line_amounts or {}).items():
        if line_id in lines and line_amount is not None:
            line = lines[line_id]
            if line.amount is not None and line_amount > line.amount:
                raise ReviewError(
                    _l(
                        "A line is recommended for at most what it asks: %(asked)s for “%(line)s”.",
                        asked=money_words(line.amount, application.currency),
                        line=line.description or "",
                    )
                )
            line.recommended_amount = line_amount
    if recommendation != Recommendation.REJECT and not amount:
        raise ReviewError(_l("A recommendation to approve names an amount."))
    asked = amount_asked(application)
    if recommendation != Recommendation.REJECT and asked is not None:
        if amount > asked:
            raise ReviewError(
                _l(
                    "A recommendation is at most what the application asks: %(asked)s.",
                    asked=money_words(asked, application.currency),
                )
            )
        if recommendation == Recommendation.APPROVE_PARTLY and amount >= asked:
            raise ReviewError(
                _l(
                    "Approving in part recommends less than the %(asked)s asked: to "
                    "recommend all of it, choose Approve.",
                    asked=money_words(asked, application.currency),
                )
            )
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
        fund=application.fund_id,
        case=application.uid,
        recommendation=recommendation.value,
    )
    change_status(application, S.RECOMMENDED, actor=reviewer)
    return review


def take_and_recommend(application, reviewer, risk_level, recommendation, assessment):
    """From the queue: take the case when nobody has it, then recommend each budget line
    as asked (or rejection), by the same services and rules as the case page's two steps.
    A case someone else reviews is left to them."""
    if application.assigned_reviewer_id not in (None, reviewer.id):
        raise ReviewError(_l("Someone else reviews this case: open it to see their work."))
    recommendation = Recommendation(recommendation)
    if recommendation == Recommendation.APPROVE_PARTLY:
        raise ReviewError(_l("A part is recommended on the case page, line by line."))
    if application.assigned_reviewer_id is None:
        assign_reviewer(application, reviewer, reviewer)
    amounts = {}
    if recommendation != Recommendation.REJECT:
        amounts = {
            line.id: line.recommended_amount or line.amount for line in application.budget_lines
        }
    return recommend(
        application, reviewer, risk_level, recommendation, None, assessment, line_amounts=amounts
    )


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


def add_note(application, author, kind, body):
    """A confidential note, or what a local partner said when the fund checked the case."""
    check_staff(application, author, ReviewError)
    body = (body or "").strip()
    if not body:
        raise ReviewError(_l("Write the note first."))
    note = CaseNote(application_id=application.id, author_id=author.id, kind=NoteKind(kind))
    note.body = body
    db.session.add(note)
    db.session.flush()
    audit.record(
        "case_note.added",
        note,
        actor=author,
        fund=application.fund_id,
        case=application.uid,
        kind=note.kind.value,
    )
    return note


def case_notes(application):
    """The case's notes, oldest first, each with its author: one query for all."""
    return case_rows(CaseNote, application, sa.orm.joinedload(CaseNote.author))


def record_cofunding(application, actor, funder, amount, currency, starts_on, ends_on):
    """Another funder pays part of the same need."""
    check_staff(application, actor, ReviewError)
    funder = (funder or "").strip()
    if not funder:
        raise ReviewError(_l("Name the other funder."))
    if starts_on and ends_on and ends_on < starts_on:
        raise ReviewError(_l("The period ends before it starts."))
    currency = check_currency(currency or application.currency)
    try:
        check_units(amount, currency)
    except MoneyError as exc:
        raise ReviewError(str(exc)) from exc
    row = Cofunding(
        application_id=application.id,
        funder=funder,
        amount=amount or None,
        currency=currency,
        starts_on=starts_on,
        ends_on=ends_on,
        recorded_by_id=actor.id,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "cofunding.recorded", row, actor=actor, fund=application.fund_id, case=application.uid
    )
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
        sa.select(Application.uid, Application.code, Application.status, Application.submitted_at)
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
