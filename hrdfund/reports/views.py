"""The donor's portal, the staff overview of pools, and the donor reports to download."""

import io

import sqlalchemy as sa
from flask import abort, current_app, render_template, request, send_file
from flask_login import current_user

from .. import audit
from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import visible_cases
from ..cases.models import Application
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.support import CATEGORY_LABELS
from ..core.work import perform
from ..disbursements import followup
from ..grants.models import Grant
from ..ledger.balances import pool_figures
from ..ledger.models import Allocation, Contribution, Disbursement, Release
from ..ledger.reversals import reversal_partners
from ..pools.forms import ContributionForm, ContributionReversalForm
from ..pools.models import Pool
from ..pools.views import fund_pool_or_404
from . import bp
from .csv_export import render_csv
from .data import build_report, internal_grants, summaries
from .issue import issue_ended
from .pdf import render_pdf
from .periods import PeriodError, parse_period, recent_periods


@bp.get("/donor")
@role_required(Role.DONOR)
def portal():
    """The donor's own pools, with the figures behind its money."""
    pools = (
        db.session.execute(
            sa.select(Pool)
            .where(Pool.donor_id == current_user.donor_id, Pool.fund_id == current_user.fund_id)
            .order_by(Pool.name)
        )
        .scalars()
        .all()
    )
    figures = pool_figures([p.id for p in pools])
    today = utcnow().date()
    first_days = _first_days(pools, today)
    periods = {p.id: recent_periods(first_days[p.id], today) for p in pools}
    return render_template("reports/portal.html", pools=pools, figures=figures, periods=periods)


def _first_day(pool, today):
    """The first day a report of ``pool`` can cover: its opening, or its first money."""
    return _first_days([pool], today)[pool.id]


def _first_days(pools, today):
    """:func:`_first_day` of each of ``pools``, by pool id, from one query."""
    if not pools:
        return {}
    first_money = dict(
        db.session.execute(
            sa.select(Contribution.pool_id, sa.func.min(Contribution.received_on))
            .where(Contribution.pool_id.in_([p.id for p in pools]))
            .group_by(Contribution.pool_id)
        ).all()
    )
    found = {}
    for pool in pools:
        days = [d for d in (pool.starts_on, first_money.get(pool.id), pool.created_at.date()) if d]
        found[pool.id] = min(min(days), today)
    return found


def _send_report(pool):
    """The donor report of ``pool`` for the period and format asked, as a download; a
    period that is not a fixed one, or has not begun, is a 404."""
    try:
        period = parse_period(request.args.get("period", ""))
    except PeriodError:
        abort(404)
    kind = request.args.get("format", "pdf")
    today = utcnow().date()
    if kind not in ("pdf", "csv") or period.start > today:
        abort(404)
    # Two units of work on purpose: what an ended period says about people is kept (and
    # committed) before the report is read, with no write lock, then the download is
    # recorded with the report's digest.
    perform(issue_ended, pool, period, today)
    with reading():
        report = build_report(pool, period, today=today)
    perform(
        audit.record,
        "report.downloaded",
        pool,
        actor=current_user._get_current_object(),
        period=period.code,
        format=kind,
        digest=report["digest"],
    )
    name = f"report-{pool.uid}-{period.code}.{kind}"
    if kind == "pdf":
        body, mimetype = render_pdf(report), "application/pdf"
    else:
        body, mimetype = render_csv(report).encode(), "text/csv"
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True, download_name=name)


@bp.get("/donor/pools/<uid>/report")
@role_required(Role.DONOR)
def donor_report(uid):
    """A donor's report on one of its own pools; any other pool is a 404."""
    pool = db.session.execute(sa.select(Pool).where(Pool.uid == uid)).scalar_one_or_none()
    if (
        pool is None
        or pool.donor_id != current_user.donor_id
        or pool.fund_id != current_user.fund_id
    ):
        abort(404)
    return _send_report(pool)


@bp.get("/pools/<uid>/report")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def staff_report(uid):
    """The report a donor gets for a pool of the fund, as the donor gets it."""
    return _send_report(fund_pool_or_404(uid))


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


def _newest(query, day, model):
    """The newest POOL_ROWS rows of ``query``: latest ``day`` first, then latest written."""
    return db.session.execute(query.order_by(day.desc(), model.id.desc()).limit(POOL_ROWS)).all()


def render_pool(pool):
    """The pool's figures, and the newest rows behind each of them: the rows of a case only
    where the reader may open that case (not one they declared a conflict on)."""
    case = Application.uid.label("case")
    visible = visible_cases(current_user._get_current_object())
    allocations = (
        sa.select(Allocation, case)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    releases = (
        sa.select(Release, case)
        .join(Allocation, Allocation.id == Release.allocation_id)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    payments = (
        sa.select(Disbursement, case)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Disbursement.pool_id == pool.id)
    )
    rows = {
        "contributions": _newest(
            sa.select(Contribution).where(Contribution.pool_id == pool.id),
            Contribution.received_on,
            Contribution,
        ),
        "allocations": _newest(allocations.where(visible), Allocation.created_at, Allocation),
        "releases": _newest(releases.where(visible), Release.created_at, Release),
        "payments": _newest(payments.where(visible), Disbursement.paid_on, Disbursement),
    }
    contributions = sa.select(Contribution.id).where(Contribution.pool_id == pool.id)
    counts = {
        "contributions": db.session.execute(
            sa.select(sa.func.count()).select_from(contributions.subquery())
        ).scalar()
    }
    hidden = 0  # rows left out: the figures still count them
    for name, query in (
        ("allocations", allocations),
        ("releases", releases),
        ("payments", payments),
    ):
        total, shown = db.session.execute(
            query.with_only_columns(
                sa.func.count(), sa.func.count(sa.case((visible, 1))), maintain_column_froms=True
            )
        ).one()
        counts[name] = shown
        hidden += total - shown
    keeper = current_user.role in (Role.ADMIN, Role.MANAGER)
    partners = {
        "contributions": reversal_partners(
            Contribution, [r for (r,) in rows["contributions"]], Contribution.received_on
        ),
        "payments": reversal_partners(
            Disbursement, [r for r, _case in rows["payments"]], Disbursement.paid_on
        ),
    }
    taking_back = None
    if keeper:
        # Rows offering a take-back: neither a reversal nor reversed.
        offered = {
            r.uid
            for (r,) in rows["contributions"]
            if not r.reversal_of_id and r.id not in partners["contributions"]
        }
        taking_back = refused.restore(ContributionReversalForm(formdata=None), offered)
    return render_template(
        "reports/pool.html",
        partners=partners,
        pool=pool,
        periods=recent_periods(_first_day(pool, utcnow().date()), utcnow().date()),
        figures=pool_figures([pool.id])[pool.id],
        rows=rows,
        counts=counts,
        hidden=hidden,
        limit=POOL_ROWS,
        form=refused.restore(ContributionForm(formdata=None)) if keeper else None,
        can_reverse=keeper,
        # A reversal refused a moment ago comes back on its row.
        taking_back=taking_back if taking_back is not None and taking_back.refused else None,
    )


@bp.get("/pools/<uid>")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def pool(uid):
    """One pool: received, committed, disbursed, fees, exchange differences, available,
    with the rows behind each figure."""
    return render_pool(fund_pool_or_404(uid))


#: Grants listed on the internal report; the totals above it cover every one.
INTERNAL_ROWS = 500


@bp.get("/reports/internal")
@role_required(Role.MANAGER)
def internal():
    """The managers' report over a fixed period: each pool's account, the grants paid by
    case code, and what is overdue. Not for donors: it names cases."""
    today = utcnow().date()
    code = request.args.get("period") or f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    try:
        period = parse_period(code)
    except PeriodError:
        abort(404)
    pools = (
        db.session.execute(
            sa.select(Pool).where(Pool.fund_id == current_user.fund_id).order_by(Pool.name)
        )
        .scalars()
        .all()
    )
    accounts_of = summaries([p.id for p in pools], period)
    accounts = [(pool, accounts_of[pool.id][0]) for pool in pools]
    user = current_user._get_current_object()
    config = current_app.config
    overdue = {
        "mismatches": followup.mismatches(user, count=True),
        "due": followup.instalments_due(user, today, config["INSTALMENT_NOTICE_DAYS"], count=True),
        "receipts": followup.receipts_overdue(
            user, today, config["RECEIPT_OVERDUE_DAYS"], count=True
        ),
        "reports": followup.reports_overdue(user, today, config["REPORT_OVERDUE_DAYS"], count=True),
    }
    choices = recent_periods(min(_first_days(pools, today).values(), default=today), today)
    return render_template(
        "reports/internal.html",
        period=period,
        choices=choices,
        accounts=accounts,
        grants=internal_grants([p.id for p in pools], period, INTERNAL_ROWS, visible_cases(user)),
        pools={p.id: p for p in pools},
        limit=INTERNAL_ROWS,
        overdue=overdue,
        category_labels=CATEGORY_LABELS,
    )
