"""The staff list of pools and a pool's page: its figures and the newest rows behind each.

The page lists the rows of a case (commitments and releases, added by grants; payments,
added by disbursements: ``register_case_rows``) with the case's code, only where its
reader may open that case: which cases those are is the cases feature's
one rule (``visible_cases``), read here as it is, never restated. The donor report it
offers to download, and the periods it offers, are the reports feature's
(``report_periods``).
"""

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import visible_cases
from ..core.extensions import db
from ..ledger.balances import pool_figures
from ..ledger.models import Contribution, Disbursement
from ..ledger.reversals import reversal_partners
from . import bp
from .forms import ContributionForm, ContributionReversalForm
from .models import Pool
from .views import fund_pool_or_404

#: Rows shown per section of the pool page, newest first; the totals cover every row.
POOL_ROWS = 100


@bp.get("")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def index():
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
    return render_template("pools/index.html", pools=rows, figures=figures)


@bp.get("/<uid>")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def pool(uid):
    """One pool: received, committed, disbursed, fees, exchange differences, available,
    with the rows behind each figure."""
    return render_pool(fund_pool_or_404(uid))


def _newest(query, day, model):
    """The newest POOL_ROWS rows of ``query``: latest ``day`` first, then latest written."""
    return db.session.execute(query.order_by(day.desc(), model.id.desc()).limit(POOL_ROWS)).all()


#: The sections of a pool's page that list rows of a case, added by the features that own
#: those rows' cases (grants, payments): pools sit below them and never import them.
_CASE_SECTIONS = []


def register_case_rows(section):
    """Add ``section(pool) -> {name: (query of (row, case code), its day, its model)}`` to
    the pool page; the page keeps to each query the rows of cases its reader may open."""
    _CASE_SECTIONS.append(section)
    return section


def _case_queries(pool):
    """Each section of rows on a case, from every feature that adds one."""
    queries = {}
    for section in _CASE_SECTIONS:
        queries.update(section(pool))
    return queries


def pool_rows(pool, visible):
    """The newest rows of each section of the page: every contribution, and the rows of
    the cases ``visible`` (an SQL condition on cases) lets the reader open. Returns (rows,
    counts, hidden): the rows by section, how many each section has, and how many rows
    were left out (the figures still count them)."""
    queries = _case_queries(pool)
    rows = {
        "contributions": _newest(
            sa.select(Contribution).where(Contribution.pool_id == pool.id),
            Contribution.received_on,
            Contribution,
        ),
    }
    for name, (query, day, model) in queries.items():
        rows[name] = _newest(query.where(visible), day, model)
    contributions = sa.select(Contribution.id).where(Contribution.pool_id == pool.id)
    counts = {
        "contributions": db.session.execute(
            sa.select(sa.func.count()).select_from(contributions.subquery())
        ).scalar()
    }
    hidden = 0
    for name, (query, _day, _model) in queries.items():
        total, shown = db.session.execute(
            query.with_only_columns(
                sa.func.count(), sa.func.count(sa.case((visible, 1))), maintain_column_froms=True
            )
        ).one()
        counts[name] = shown
        hidden += total - shown
    return rows, counts, hidden


def _taking_back(rows, partners):
    """The take-back form refused a moment ago, to show again on its row; None when none
    was. Only rows that are neither a reversal nor reversed offer a take-back."""
    offered = {
        r.uid
        for (r,) in rows["contributions"]
        if not r.reversal_of_id and r.id not in partners["contributions"]
    }
    form = refused.restore(ContributionReversalForm(formdata=None), offered)
    return form if form.refused else None


def render_pool(pool):
    """The pool's figures, and the newest rows behind each of them: the rows of a case only
    where the reader may open that case (not one they declared a conflict on)."""
    rows, counts, hidden = pool_rows(pool, visible_cases(current_user._get_current_object()))
    keeper = current_user.role in (Role.ADMIN, Role.MANAGER)
    partners = {
        "contributions": reversal_partners(
            Contribution, [r for (r,) in rows["contributions"]], Contribution.received_on
        ),
        "payments": reversal_partners(
            Disbursement, [r for r, _case in rows["payments"]], Disbursement.paid_on
        ),
    }
    # A reversal refused a moment ago comes back on its row.
    taking_back = _taking_back(rows, partners) if keeper else None
    return render_template(
        "pools/pool.html",
        partners=partners,
        pool=pool,
        figures=pool_figures([pool.id])[pool.id],
        rows=rows,
        counts=counts,
        hidden=hidden,
        limit=POOL_ROWS,
        form=refused.restore(ContributionForm(formdata=None)) if keeper else None,
        can_reverse=keeper,
        taking_back=taking_back,
    )
