"""Finance's home: the latest payments (recording them comes with the money issue)."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..applications.access import can_see
from ..auth.guard import role_required
from ..auth.models import Role
from ..extensions import db
from ..pools.models import Pool
from . import bp, services
from .forms import ReceiptForm
from .models import Disbursement


@bp.get("/payments")
@role_required(Role.FINANCE)
def index():
    """The fund's most recent disbursements and reversals."""
    rows = db.session.execute(
        sa.select(
            Disbursement.uid,
            Disbursement.paid_on,
            Disbursement.amount_paid,
            Disbursement.currency_paid,
            Disbursement.amount,
            Disbursement.channel,
            Disbursement.reversal_of_id,
            Pool.name.label("pool"),
            Pool.currency.label("pool_currency"),
        )
        .join(Pool, Pool.id == Disbursement.pool_id)
        .where(Pool.fund_id == current_user.fund_id)
        .order_by(Disbursement.id.desc())
        .limit(50)
    ).all()
    return render_template("disbursements/index.html", rows=rows)


@bp.post("/payments/<uid>/received")
def confirm(uid):
    """The applicant side confirms a payment arrived."""
    disbursement = db.session.execute(
        sa.select(Disbursement).where(Disbursement.uid == uid)
    ).scalar_one_or_none()
    application = disbursement.grant.application if disbursement is not None else None
    if (
        application is None
        or not current_user.is_applicant_side
        or not can_see(application, current_user)
        or not services.stands(disbursement)
    ):
        abort(404)
    if ReceiptForm().validate_on_submit():
        try:
            services.confirm_receipt(disbursement, current_user._get_current_object())
            db.session.commit()
            flash(_("Thank you: the fund knows this payment arrived."), "info")
        except (services.AlreadyConfirmedError, sa.exc.IntegrityError):
            # IntegrityError: a second click won the race to the unique receipt row.
            db.session.rollback()
            flash(_("This payment was already confirmed."), "info")
    return redirect(url_for("applications.case", uid=application.uid))
