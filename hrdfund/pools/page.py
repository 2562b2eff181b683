"""The staff list of pools and a pool's page: its figures and chart, then the rows behind
each figure, each kind in its own list a page at a time, newest first, over the dates
chosen.

The page lists the rows of a case (commitments and releases, added by grants; payments,
added by disbursements: ``register_case_rows``) with the case's code, only where its
reader may open that case: which cases those are is the cases feature's
one rule (``visible_cases``), read here as it is, never restated. The donor report it
offers to download, and the periods it offers, are the reports feature's
(``report_periods``).
"""

import math
from collections.abc import Callable
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import hidden_funded_cases, visible_cases
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.paging import MAX_PAGE, within
from ..ledger.balances import pool_figures, pool_figures_and_payments, pool_history
from ..ledger.models import Contribution, Disbursement
from ..ledger.reversals import reversal_partners
from . import bp
from .chart import chart_days, pool_chart
from .forms import ContributionForm, ContributionReversalForm
from .models import Pool
from .views import fund_pool_or_404

#: The lists of a pool's page, in the order it shows them: each is paged on its own.
SECTIONS = ("contributions", "allocations", "releases", "payments")


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


def _newest(query, day, model, page, size):
    """Page ``page`` of ``query``'s rows, ``size`` to a page: latest ``day`` first, then
    latest written."""
    return db.session.execute(
        query.order_by(day.desc(), model.id.desc()).limit(size).offset((page - 1) * size)
    ).all()


#: The sections of a pool's page that list rows of a case, added by the features that own
#: those rows' cases (grants, payments): pools sit below them and never import them.
_CASE_SECTIONS = []


class CaseRows(NamedTuple):
    """A section of rows on a case, as a feature adds it to the pool page."""

    #: The section's rows of the pool with their case's code and short code:
    #: (row, case, code).
    listed: sa.Select
    #: The row's day, by which the page lists and keeps them to the dates chosen.
    day: sa.ColumnElement
    model: type
    #: The ids of the section's rows of the pool, without their cases: counted alone.
    pooled: sa.Select
    #: ``on_cases(case_ids)``: SQL condition that a row is on one of ``case_ids``.
    on_cases: Callable


def register_case_rows(section):
    """Add ``section(pool) -> {name: CaseRows}`` to the pool page; the page keeps to each
    list the rows of cases its reader may open."""
    _CASE_SECTIONS.append(section)
    return section


def _case_queries(pool):
    """Each section of rows on a case, from every feature that adds one."""
    queries = {}
    for section in _CASE_SECTIONS:
        queries.update(section(pool))
    return queries


def _count(query):
    return db.session.execute(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()


def pool_rows(pool, reader, period=(None, None), pages=None, size=50, known=None):
    """A page of rows of each section of the page, within ``period``: every contribution,
    and the rows of the cases ``reader`` may open. ``pages`` maps a section to the page
    of it asked for (1 by default); ``known`` maps a section to how many rows the pool
    has in it, counted already (used when no dates are chosen). Returns (rows, counts,
    hidden): the rows by section, how many each section has within the period, and how
    many rows of the period were left out (the figures still count them).

    Each section's rows are counted on their own, then less those of the few cases the
    reader may not open (``hidden_funded_cases``: a pool's rows are all on approved cases
    of its fund), so no count joins every row to its case. A few queries a section,
    whatever the number of rows."""
    pages = pages or {}
    known = (known or {}) if period == (None, None) else {}
    visible = visible_cases(reader)
    hidden_cases = hidden_funded_cases(reader, pool.fund_id)
    rows, counts, hidden = {}, {}, 0
    contributions = sa.select(Contribution).where(Contribution.pool_id == pool.id)
    contributions = contributions.where(within(Contribution.received_on, period))
    rows["contributions"] = _newest(
        contributions, Contribution.received_on, Contribution, pages.get("contributions", 1), size
    )
    counts["contributions"] = _count(contributions)
    for name, section in _case_queries(pool).items():
        dated = within(section.day, period)
        total = known[name] if name in known else _count(section.pooled.where(dated))
        if hidden_cases is None:
            rows[name] = []
            shown = 0
        else:
            listed = section.listed.where(dated, visible)
            rows[name] = _newest(listed, section.day, section.model, pages.get(name, 1), size)
            shown = total - _count(section.pooled.where(dated, section.on_cases(hidden_cases)))
        counts[name] = shown
        hidden += total - shown
    return rows, counts, hidden


def _day_arg(name):
    """The date asked in the filter ``name``: (the date or None, the date to show in the
    field, what is wrong with it in words or None). A date field holds only a date: what
    is not one is quoted in the words instead."""
    text = (request.args.get(name) or "").strip()[:40]
    if not text:
        return None, "", None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, "", _("“%(text)s” is not a date: write it as 2026-03-31.", text=text)
    return day, day.isoformat(), None


def period_args():
    """The period the page's lists keep to, from the query string: (first day, last day),
    either None; what was typed; and what could not be read, by field."""
    first, first_text, first_problem = _day_arg("from")
    last, last_text, last_problem = _day_arg("to")
    problems = {k: v for k, v in (("from", first_problem), ("to", last_problem)) if v}
    if first and last and first > last:
        problems["to"] = _("The last day comes before the first.")
    return (first, last), {"from": first_text, "to": last_text}, problems


def _pages_asked():
    """The page of each section asked for, from 1 to MAX_PAGE."""
    pages = {}
    for name in SECTIONS:
        page = request.args.get(f"{name}_page", 1, type=int)
        pages[name] = max(1, min(page, MAX_PAGE))
    return pages


def _pagers(pool, counts, pages, size):
    """For each section: its page, how many pages it has, which rows it shows, and the
    addresses of the newer and older pages (every other choice kept)."""
    kept = {k: request.args[k] for k in ("from", "to", *_page_names()) if k in request.args}

    def link(name, page):
        args = {**kept, f"{name}_page": page}
        return url_for("pools.pool", uid=pool.uid, **args, _anchor=_ANCHORS[name])

    pagers = {}
    for name in SECTIONS:
        page, count = pages[name], counts[name]
        last = max(1, math.ceil(count / size))
        first_row = (page - 1) * size + 1
        pagers[name] = {
            "page": page,
            "pages": last,
            "first": first_row,
            "last": min(page * size, count),
            "count": count,
            "newer": link(name, page - 1) if page > 1 else None,
            "older": link(name, page + 1) if page < last else None,
        }
    return pagers


def _page_names():
    return tuple(f"{name}_page" for name in SECTIONS)


#: Where each section starts on the page.
_ANCHORS = {
    "contributions": "contributions",
    "allocations": "commitments",
    "releases": "releases",
    "payments": "payments",
}


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


def _partner_link(pool, rows):
    """``link(kind, partner)``: the address of a row's partner (its reversal, or the row
    it reverses) from ``reversal_partners``: on this page when it is listed here, else on
    the page of the partner's day."""
    here = {
        "contributions": {r.uid for (r,) in rows["contributions"]},
        "payments": {r.uid for r, *_case in rows["payments"]},
    }

    def link(kind, partner):
        anchor = f"{kind[:-1]}-{partner['uid']}"
        if partner["uid"] in here[kind]:
            return f"#{anchor}"
        day = partner["day"].isoformat()
        return url_for("pools.pool", uid=pool.uid, _anchor=anchor, **{"from": day, "to": day})

    return link


def render_pool(pool):
    """The pool's figures and chart, then a page of the rows behind each figure within the
    dates chosen: the rows of a case only where the reader may open that case (not one
    they declared a conflict on)."""
    size = current_app.config["PAGE_SIZE"]
    period, typed, problems = period_args()
    pages = _pages_asked()
    figures, payment_rows = pool_figures_and_payments(pool.id)
    if problems:
        # Dates that cannot be read list nothing, rather than every row unfiltered.
        rows, counts, hidden = {n: [] for n in SECTIONS}, dict.fromkeys(SECTIONS, 0), 0
    else:
        rows, counts, hidden = pool_rows(
            pool,
            current_user._get_current_object(),
            period,
            pages,
            size,
            known={"payments": payment_rows},
        )
    keeper = current_user.role in (Role.ADMIN, Role.MANAGER)
    partners = {
        "contributions": reversal_partners(
            Contribution, [r for (r,) in rows["contributions"]], Contribution.received_on
        ),
        "payments": reversal_partners(
            Disbursement, [r for r, *_case in rows["payments"]], Disbursement.paid_on
        ),
    }
    # A reversal refused a moment ago comes back on its row.
    taking_back = _taking_back(rows, partners) if keeper else None
    today = utcnow().date()
    days = chart_days(today)
    history = pool_history([pool.id], days)[pool.id]
    return render_template(
        "pools/pool.html",
        partners=partners,
        pool=pool,
        figures=figures,
        chart=pool_chart(pool, days, history, today, "chart-pool"),
        rows=rows,
        partner=_partner_link(pool, rows),
        counts=counts,
        hidden=hidden,
        pagers=_pagers(pool, counts, pages, size),
        typed=typed,
        problems=problems,
        filtered=any(typed.values()) or bool(problems),
        form=refused.restore(ContributionForm(formdata=None)) if keeper else None,
        can_reverse=keeper,
        taking_back=taking_back,
    )
