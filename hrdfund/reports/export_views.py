"""Staff downloads of the lists they work from (``staff_exports``): each from the page it
exports, for the roles that read that page, each an entry in the fund's audit chain."""

import io
from datetime import date

from flask import current_app, render_template, request, send_file
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.work import perform
from ..disbursements import followup
from ..disbursements.forms import BOUND_WORDS, CHANNEL_LABELS
from ..grants import coverage as coverage_rules
from ..reviews import queue as queue_list
from . import bp
from . import staff_exports as exports


def _download(body, name):
    return send_file(
        io.BytesIO(body.encode()), mimetype="text/csv", as_attachment=True, download_name=name
    )


def _stamp():
    return utcnow().strftime("%Y-%m-%d")


@bp.get("/cases/export.csv")
@role_required(Role.REVIEWER, Role.MANAGER)
def export_queue():
    """The queue as its filters choose and sort it, every page of it; with ``names=1``,
    the defenders' names too (reviewers and managers see them on each case)."""
    user = current_user._get_current_object()
    names = request.args.get("names") == "1"
    with reading():
        pools, staff = queue_list.open_pools(), queue_list.fund_staff()
        filters, problems = queue_list.queue_filters(pools, staff)
        query, reporting = queue_list.listed(filters, problems, pools, staff)
        rows = db.session.execute(query.limit(exports.ROW_LIMIT + 1)).all()
        kept = rows[: exports.ROW_LIMIT]
        named = exports.defender_names([r.uid for r in kept]) if names else None
        assignees = {person.id: person.name for person in staff}
        body = exports.queue_csv(rows, reporting, queue_list.worth, assignees, named)
    perform(exports.record_export, user, "queue", min(len(rows), exports.ROW_LIMIT), names)
    return _download(body, f"cases-{_stamp()}.csv")


def _period():
    """The days asked (``start``, ``end``), this month so far when none is given, and what
    is wrong with them in words."""
    today = utcnow().date()
    values, errors = {}, []
    for name, default in (("start", today.replace(day=1)), ("end", today)):
        text = request.args.get(name, "").strip()[:10]
        try:
            values[name] = date.fromisoformat(text) if text else default
        except ValueError:
            errors.append(_("Enter each date as year-month-day, for example 2026-01-31."))
            values[name] = default
    return values["start"], values["end"], sorted(set(errors))


@bp.get("/payments/export")
@role_required(Role.FINANCE)
def export_payments_page():
    """Choose the period of payments to download."""
    start, end, _errors = _period()
    return render_template("reports/export_payments.html", start=start, end=end, errors=[])


@bp.get("/payments/export.csv")
@role_required(Role.FINANCE)
def export_payments():
    """The payments and reversals of the days asked, with their references; no payee."""
    start, end, errors = _period()
    user = current_user._get_current_object()
    if not errors:
        try:
            with reading():
                body, count = exports.payments_csv(user, start, end, CHANNEL_LABELS)
        except exports.ExportError as exc:
            errors = [str(exc)]
    if errors:
        page = render_template("reports/export_payments.html", start=start, end=end, errors=errors)
        return page, 400
    perform(exports.record_export, user, "payments", count, start=start, end=end)
    return _download(body, f"payments-{start.isoformat()}-{end.isoformat()}.csv")


@bp.get("/payments/follow-up.csv")
@role_required(Role.FINANCE, Role.MANAGER)
def export_follow_up():
    """The follow-up page's lists, each whole up to the downloads' limit of rows."""
    user = current_user._get_current_object()
    today = utcnow().date()
    with reading():
        lists, totals = followup.lists(user, today, current_app.config, exports.ROW_LIMIT)
        body, count = exports.follow_up_csv(lists, BOUND_WORDS, totals)
    perform(exports.record_export, user, "follow-up", count)
    return _download(body, f"follow-up-{_stamp()}.csv")


@bp.get("/coverage.csv")
@role_required(Role.REVIEWER, Role.MANAGER, Role.FINANCE)
def export_coverage():
    """Coverage as its page shows it, every defender's twelve months at once."""
    user = current_user._get_current_object()
    today = utcnow().date()
    with reading():
        days = current_app.config["COVERAGE_WARNING_DAYS"]
        ending = coverage_rules.ending_soon(user, today, days)
        rows, months, _more = coverage_rules.calendar(
            user, today.replace(day=1), 12, 1, exports.ROW_LIMIT
        )
        body, count = exports.coverage_csv(ending, rows, months)
    perform(exports.record_export, user, "coverage", count)
    return _download(body, f"coverage-{_stamp()}.csv")
