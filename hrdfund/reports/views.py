"""The donor's portal and the staff overview of pools."""

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..disbursements.ledger import pool_figures
from ..extensions import db
from ..pools.models import Pool
from . import bp


@bp.get("/donor")
@role_required(Role.DONOR)
def portal():
    """The donor's own pools, with the figures behind its money."""
    pools = (
        db.session.execute(
            sa.select(Pool).where(Pool.donor_id == current_user.donor_id).order_by(Pool.name)
        )
        .scalars()
        .all()
    )
    figures = pool_figures([p.id for p in pools])
    return render_template("reports/portal.html", pools=pools, figures=figures)


@bp.get("/pools")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def pools():
    """Every pool of the fund with received, committed, disbursed and available."""
    rows = (
        db.session.execute(
            sa.select(Pool)
            .where(Pool.fund_id == current_user.fund_id)
            .options(sa.orm.joinedload(Pool.donor))
            .order_by(Pool.name)
        )
        .scalars()
        .all()
    )
    figures = pool_figures([p.id for p in rows])
    return render_template("reports/pools.html", pools=rows, figures=figures)
