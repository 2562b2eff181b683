"""Finance's home: the latest payments (recording them comes with the money issue)."""

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..extensions import db
from ..pools.models import Pool
from . import bp
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
