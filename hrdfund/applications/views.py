"""Role homes for the applicant side and the staff queue (first versions)."""

import sqlalchemy as sa
from flask import current_app, render_template, request
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..extensions import db
from . import bp
from .models import Application, ApplicationStatus, Category
from .states import APPLICANT_LABELS, OPEN_STATES, STAFF_LABELS


@bp.get("/my")
@role_required(Role.APPLICANT)
def mine():
    """The applicant's own applications."""
    rows = (
        db.session.execute(
            sa.select(Application)
            .where(Application.applicant_id == current_user.id)
            .order_by(Application.created_at.desc())
        )
        .scalars()
        .all()
    )
    return render_template("applications/mine.html", applications=rows, labels=APPLICANT_LABELS)


@bp.get("/referrals")
@role_required(Role.PARTNER)
def referrals():
    """The cases a partner organisation referred, and nothing else."""
    rows = (
        db.session.execute(
            sa.select(Application)
            .where(Application.partner_organisation_id == current_user.partner_organisation_id)
            .order_by(Application.created_at.desc())
        )
        .scalars()
        .all()
    )
    return render_template(
        "applications/referrals.html", applications=rows, labels=APPLICANT_LABELS
    )


@bp.get("/cases")
@role_required(Role.REVIEWER, Role.MANAGER)
def queue():
    """Open cases of the fund, oldest submission first, one page at a time."""
    page = request.args.get("page", 1, type=int)
    page = max(1, min(page, 100000))
    size = current_app.config["PAGE_SIZE"]
    open_states = [s.value for s in OPEN_STATES if s != ApplicationStatus.DRAFT]
    rows = db.session.execute(
        sa.select(
            Application.uid,
            Application.category,
            Application.status,
            Application.urgency,
            Application.country,
            Application.amount_requested,
            Application.currency,
            Application.submitted_at,
        )
        .where(Application.fund_id == current_user.fund_id, Application.status.in_(open_states))
        .order_by(Application.submitted_at, Application.id)
        .limit(size + 1)
        .offset((page - 1) * size)
    ).all()
    return render_template(
        "applications/queue.html",
        rows=rows[:size],
        page=page,
        has_next=len(rows) > size,
        labels=STAFF_LABELS,
        categories=Category,
    )
