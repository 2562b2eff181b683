"""The network report's pages: a fund's managers read what their fund's referrals came to
over the days they choose, on the page or as CSV; the network's administrator reads the
network's totals."""

import io
import re
from datetime import date

from flask import render_template, request, send_file
from flask_babel import gettext as _
from flask_login import current_user

from .. import audit
from ..auth.guard import role_required
from ..auth.models import Fund, Role
from ..cases.access import visible_cases
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.support import CATEGORY_LABELS
from ..core.work import perform
from . import bp
from . import network as data
from .network_csv import render_network_csv
from .pdf_kit import shown_figure


def _range():
    """The days asked (``start``, ``end``, as YYYY-MM-DD), the twelve months up to today
    when none is given, and what is wrong with them in words, if anything."""
    start, end = data.default_range(utcnow().date())
    errors = []
    values = {}
    for name, default in (("start", start), ("end", end)):
        text = request.args.get(name, "").strip()
        if not text:
            values[name] = default
            continue
        try:
            values[name] = date.fromisoformat(text[:10]) if len(text) == 10 else None
        except ValueError:
            values[name] = None
        if values[name] is None:
            errors.append(_("Enter each date as year-month-day, for example 2026-01-31."))
            values[name] = default
    if not errors:
        try:
            data.check_range(values["start"], values["end"])
        except data.RangeError as exc:
            errors.append(
                _("The first day comes before the last.")
                if str(exc) == "order"
                else _("The report covers at most ten years at once.")
            )
    return values["start"], values["end"], sorted(set(errors))


def _page(template, errors, start, end, report):
    return render_template(
        template,
        start=start,
        end=end,
        errors=errors,
        report=report,
        states=data.STATES,
        category_labels=CATEGORY_LABELS,
    ), (400 if errors else 200)


@bp.get("/reports/network")
@role_required(Role.MANAGER)
def network():
    """What the fund's referrals to and from other funds came to, over the days chosen:
    on the page, or as CSV (each download an entry in the fund's audit chain)."""
    start, end, errors = _range()
    kind = request.args.get("format", "html")
    if kind not in ("html", "csv"):
        kind = "html"
    if errors:
        return _page("reports/network.html", errors, start, end, None)
    user = current_user._get_current_object()
    with reading():
        report = data.fund_report(user.fund_id, start, end, visible_cases(user))
    if kind == "html":
        return _page("reports/network.html", errors, start, end, report)
    perform(
        audit.record,
        "report.network_downloaded",
        db.session.get(Fund, user.fund_id),
        actor=user,
        fund=user.fund_id,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    body = render_network_csv(report).encode()
    name = f"network-report-{start.isoformat()}-{end.isoformat()}.csv"
    return send_file(io.BytesIO(body), mimetype="text/csv", as_attachment=True, download_name=name)


@bp.get("/network/report")
@role_required(Role.NETWORK_ADMIN)
def network_totals():
    """The network's referrals in each ended quarter of the year chosen, as it stood at its
    end, counted, small counts hidden: no fund, no case."""
    today = utcnow().date()
    text = request.args.get("year", "").strip()
    with reading():
        years = data.report_years(today)
        year = int(text) if re.fullmatch(r"[0-9]{4}", text) else None
        if not text:
            year = years[0]
        report = data.network_totals(year, today) if year in years else None
    page = render_template(
        "reports/network_totals.html",
        errors=[] if report else [_("Choose one of the years in the list.")],
        years=years,
        year=year if report else years[0],
        report=report,
        category_labels=CATEGORY_LABELS,
        shown_figure=shown_figure,
    )
    return page, (200 if report else 400)
