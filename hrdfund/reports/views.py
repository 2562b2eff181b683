"""The donor's portal and the staff overview of pools."""

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from ..applications.models import Application
from ..auth.guard import role_required
from ..auth.models import Role
from ..disbursements.ledger import pool_figures
from ..disbursements.models import Disbursement
from ..extensions import db
from ..grants.models import Allocation, Grant, Release
from ..pools.forms import ContributionForm
from ..pools.models import Contribution, Pool
from ..pools.views import fund_pool_or_404
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


#: Rows shown per section of the pool page, newest first; the totals cover every row.
POOL_ROWS = 100


def _newest(query, model):
    return db.session.execute(query.order_by(model.id.desc()).limit(POOL_ROWS)).all()


def render_pool(pool, contribution_form=None, status=200):
    """The pool's figures, and the newest rows behind each of them."""
    case = Application.uid.label("case")
    rows = {
        "contributions": _newest(
            sa.select(Contribution).where(Contribution.pool_id == pool.id), Contribution
        ),
        "allocations": _newest(
            sa.select(Allocation, case)
            .join(Grant, Grant.id == Allocation.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(Allocation.pool_id == pool.id),
            Allocation,
        ),
        "releases": _newest(
            sa.select(Release, case)
            .join(Allocation, Allocation.id == Release.allocation_id)
            .join(Grant, Grant.id == Allocation.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(Allocation.pool_id == pool.id),
            Release,
        ),
        "payments": _newest(
            sa.select(Disbursement, case)
            .join(Grant, Grant.id == Disbursement.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(Disbursement.pool_id == pool.id),
            Disbursement,
        ),
    }
    counts = {
        name: db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
        for name, query in (
            ("contributions", sa.select(Contribution.id).where(Contribution.pool_id == pool.id)),
            ("allocations", sa.select(Allocation.id).where(Allocation.pool_id == pool.id)),
            (
                "releases",
                sa.select(Release.id)
                .join(Allocation, Allocation.id == Release.allocation_id)
                .where(Allocation.pool_id == pool.id),
            ),
            ("payments", sa.select(Disbursement.id).where(Disbursement.pool_id == pool.id)),
        )
    }
    keeper = current_user.role in (Role.ADMIN, Role.MANAGER)
    page = render_template(
        "reports/pool.html",
        pool=pool,
        figures=pool_figures([pool.id])[pool.id],
        rows=rows,
        counts=counts,
        limit=POOL_ROWS,
        form=(contribution_form or ContributionForm(formdata=None)) if keeper else None,
        can_reverse=keeper,
    )
    return page, status


@bp.get("/pools/<uid>")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def pool(uid):
    """One pool: received, committed, disbursed, fees, exchange differences, available,
    with the rows behind each figure."""
    return render_pool(fund_pool_or_404(uid))
