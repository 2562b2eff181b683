"""The donor's portal, the managers' internal report, and the donor reports to download."""

import io
import json
import re
import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import current_user

from .. import audit
from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import visible_cases
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.support import CATEGORY_LABELS
from ..core.times import FIRST_DAY
from ..core.work import perform
from ..disbursements import followup
from ..ledger.balances import pool_figures, pool_history
from ..ledger.models import Contribution
from ..pools.chart import chart_days, pool_chart
from ..pools.models import Pool
from ..pools.views import fund_pool_or_404
from . import bp, explanations
from .csv_export import render_csv
from .data import breakdowns, build_report, internal_grants, summaries
from .forms import VarianceNoteForm
from .issue import issue_ended
from .models import IssuedFigures
from .pdf import render_pdf
from .pdf_kit import rolled_note, row_label, shown_figure
from .periods import PeriodError, parse_period, period_name, recent_periods


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
    ids = [p.id for p in pools]
    figures = pool_figures(ids)
    today = utcnow().date()
    first_days = _first_days(pools, today)
    periods = {p.id: recent_periods(first_days[p.id], today) for p in pools}
    # The newest quarter that has ended is chosen first: the one whose report is whole.
    chosen = {
        pid: next((q.code for q in found["quarter"] if q.end <= today), None)
        for pid, found in periods.items()
    }
    days = chart_days(today)
    history = pool_history(ids, days) if pools else {}
    charts = {
        p.id: pool_chart(p, days, history[p.id], today, f"chart-pool-{i}")
        for i, p in enumerate(pools)
    }
    this, last = quarters_around(today)
    compared = {
        "this": this,
        "last": last,
        "now": {pid: money for pid, (money, _end) in summaries(ids, this).items()},
        "before": {pid: money for pid, (money, _end) in summaries(ids, last).items()},
    }
    return render_template(
        "reports/portal.html",
        pools=pools,
        figures=figures,
        periods=periods,
        chosen=chosen,
        period_name=period_name,
        parse_period=parse_period,
        charts=charts,
        compared=compared,
        supported=latest_breakdowns(ids),
        row_label=row_label,
        rolled_note=rolled_note,
        shown_figure=shown_figure,
    )


def latest_breakdowns(pool_ids):
    """Pool id -> (period, its tables of who was supported, each at the level a report
    reads it, rolled up where most of it would be hidden) of the latest quarter or year
    whose figures a report has issued (a year before its fourth quarter, which ends with
    it); pools with none are left out. Read only, in two queries: the portal never issues
    figures (a download does)."""
    periods = db.session.execute(
        sa.select(IssuedFigures.pool_id, IssuedFigures.year, IssuedFigures.period).where(
            IssuedFigures.pool_id.in_(pool_ids),
            sa.or_(IssuedFigures.period.like("%-Q%"), sa.func.length(IssuedFigures.period) == 4),
        )
    ).all()
    latest = {}
    for pid, year, code in periods:
        rank = (parse_period(code).end, len(code) == 4)
        if pid not in latest or rank > latest[pid][2]:
            latest[pid] = (year, code, rank)
    if not latest:
        return {}
    issued = defaultdict(dict)
    for pid, code, text in db.session.execute(
        sa.select(IssuedFigures.pool_id, IssuedFigures.period, IssuedFigures.figures).where(
            sa.or_(
                *(
                    sa.and_(IssuedFigures.pool_id == pid, IssuedFigures.year == year)
                    for pid, (year, _code, _rank) in latest.items()
                )
            )
        )
    ):
        issued[pid][code] = json.loads(text)
    return {pid: (code, breakdowns(code, issued[pid])) for pid, (_y, code, _r) in latest.items()}


def quarters_around(today):
    """This quarter (so far) and the one before it."""
    quarter = (today.month - 1) // 3 + 1
    this = parse_period(f"{today.year}-Q{quarter}")
    last = (
        parse_period(f"{today.year}-Q{quarter - 1}")
        if quarter > 1
        else parse_period(f"{today.year - 1}-Q4")
    )
    return this, last


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
        # No report covers a day before the first (a date recorded so is refused now).
        found[pool.id] = max(min(min(days), today), FIRST_DAY)
    return found


def file_word(name):
    """``name`` as a file name's word: plain letters and digits, words joined by hyphens
    (Réinstallation d'urgence: reinstallation-d-urgence), at most 40 characters; empty
    when nothing of it is plain."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40].strip("-")


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
    # In the language asked at download (the reader's own by default), as the donor reads.
    language = request.args.get("language")
    if language not in current_app.config["STAFF_LANGUAGES"]:
        language = str(get_locale() or "en")
    perform(issue_ended, pool, period, today)
    with reading(), force_locale(language):
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
    name = f"report-{file_word(pool.name) or pool.uid}-{period.code}.{kind}"
    with force_locale(language):
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


@bp.get("/reports/pools/<uid>")
@role_required(Role.MANAGER, Role.FINANCE, Role.ADMIN)
def staff_report(uid):
    """The report a donor gets for a pool of the fund, as the donor gets it."""
    return _send_report(fund_pool_or_404(uid))


@bp.app_template_global()
def pool_variances(pool):
    """For the pool's page: each variance of 10% or more of its ended periods with its
    explanation, and the form to write one (managers only; refused a moment ago, as it
    was sent)."""
    form = None
    if current_user.role == Role.MANAGER:
        form = refused.restore(VarianceNoteForm(formdata=None))
    return {"lines": explanations.flagged(pool.id), "form": form}


@bp.post("/reports/pools/<uid>/variances")
@role_required(Role.MANAGER)
def explain_variance(uid):
    """A manager explains a variance for the donor's report."""
    pool = fund_pool_or_404(uid)
    form = VarianceNoteForm()
    if form.validate_on_submit():
        done = perform(
            explanations.explain_variance,
            pool,
            current_user._get_current_object(),
            form.period.data,
            form.line.data,
            form.text.data,
            refused=explanations.ExplanationError,
        )
        if done.ok:
            flash(
                _(
                    "Explanation kept: the donor's report of %(period)s prints it.",
                    period=form.period.data,
                ),
                "info",
            )
            return redirect(url_for("pools.pool", uid=pool.uid, _anchor="variances"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("pools.pool", uid=pool.uid, _anchor="variances"))


@bp.app_template_global()
def report_periods(pool):
    """The periods of ``pool``'s donor report that a page offers to download, newest
    first; the pool's page shows them beside the figures."""
    today = utcnow().date()
    return recent_periods(_first_day(pool, today), today)


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
