"""Who may see which case: a single rule used by every view and download."""

import sqlalchemy as sa
from flask import abort, request

from ..auth.models import Role
from ..extensions import db
from .models import Application
from .review_models import ConflictDeclaration


def can_see(application, user):
    """The applicant, the referring organisation, and staff of the fund without a conflict.
    A purged case is left to staff only, as the figures it was reduced to."""
    if user.role in (Role.APPLICANT, Role.PARTNER) and application.purged_at is not None:
        return False
    if user.role == Role.APPLICANT:
        return application.applicant_id == user.id
    if user.role == Role.PARTNER:
        return (
            application.partner_organisation_id is not None
            and application.partner_organisation_id == user.partner_organisation_id
        )
    if user.role in (Role.REVIEWER, Role.MANAGER, Role.FINANCE):
        if application.fund_id != user.fund_id:
            return False
        conflict = db.session.execute(
            sa.select(ConflictDeclaration.id).where(
                ConflictDeclaration.application_id == application.id,
                ConflictDeclaration.user_id == user.id,
            )
        ).first()
        return conflict is None
    return False


def staff_cases(user):
    """SQL condition on Application: the cases of ``user``'s fund they have no conflict on,
    for lists that must show what ``can_see`` allows and nothing more."""
    conflicted = sa.select(ConflictDeclaration.application_id).where(
        ConflictDeclaration.user_id == user.id
    )
    return sa.and_(Application.fund_id == user.fund_id, Application.id.not_in(conflicted))


def get_application_or_404(uid, user):
    """The case with this code if ``user`` may see it; 404 otherwise, whether it exists or not."""
    application = db.session.execute(
        sa.select(Application).where(Application.uid == uid)
    ).scalar_one_or_none()
    if application is None or not can_see(application, user):
        abort(404)
    if application.purged_at is not None and request.method != "GET":
        abort(404)  # a purged case takes no more changes
    return application
