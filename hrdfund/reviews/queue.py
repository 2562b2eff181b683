"""The staff queue: the fund's open cases with the time left to their targets, filtered
and sorted, a page at a time, with what each request is worth in the reporting currency."""

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role, User
from ..cases import access, targets
from ..cases.models import (
    QUEUE_STATES,
    Application,
    ApplicationStatus,
    Urgency,
)
from ..cases.states import OPEN_STATES, STAFF_LABELS
from ..core import geo, limits
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import MoneyError, convert, usable_rate
from ..core.paging import one_page, page_arg
from ..core.support import CATEGORY_LABELS, Category
from ..core.times import OVERDUE_IN_DAYS_AFTER
from ..pools.eligibility import fitting_cases
from ..pools.models import ExchangeRate, Pool
from ..pools.services import entry_rate
from . import bp
from .forms import QuickRecommendForm

#: Sort orders of the queue: name -> ORDER BY, each ending on the id so pages are stable.
QUEUE_SORTS = {
    # The index of waiting cases by fund and next target holds them in this order.
    "due": lambda worth: (Application.next_due_at.nulls_last(), Application.id),
    "oldest": lambda worth: (Application.submitted_at, Application.id),
    "newest": lambda worth: (Application.submitted_at.desc(), Application.id.desc()),
    # Across currencies, by what each amount is worth in the reporting currency; a case
    # whose currency has no recorded rate comes last.
    "amount": lambda worth: (worth.desc().nulls_last(), Application.id),
}


def _latest_rates(fund_id, on):
    """SQL subquery: for each currency with a rate to or from the reporting currency in the
    fund's table, the latest entry on or before ``on`` that counts (either way round, as
    ``rate_entry`` reads it): the currency, the entry's base and its rate as stored."""
    reporting = limits.reporting_currency()
    other = sa.case((ExchangeRate.base == reporting, ExchangeRate.quote), else_=ExchangeRate.base)
    ranked = (
        sa.select(
            other.label("currency"),
            ExchangeRate.base,
            ExchangeRate.rate,
            sa.func.row_number()
            .over(
                partition_by=other,
                order_by=(ExchangeRate.on_date.desc(), ExchangeRate.id.desc()),
            )
            .label("n"),
        )
        .where(
            ExchangeRate.fund_id == fund_id,
            ExchangeRate.on_date <= on,
            sa.or_(ExchangeRate.base == reporting, ExchangeRate.quote == reporting),
            ExchangeRate.counts(),
        )
        .subquery()
    )
    return (
        sa.select(ranked.c.currency, ranked.c.base, ranked.c.rate).where(ranked.c.n == 1).subquery()
    )


def worth(row, reporting):
    """What a queue row's amount is worth in the reporting currency, converted as every
    decision converts it; None when no usable rate says."""
    if row.currency == reporting:
        return row.amount_requested
    if row.amount_requested is None or row.rate is None or not usable_rate(row.rate):
        return None
    try:
        return convert(row.amount_requested, entry_rate(row, row.currency))
    except MoneyError:
        return None


#: The queue's filter by whom a case is assigned to: the reader, no one, or a colleague
#: (by the uid of their account).
ASSIGNED_TO_ME, ASSIGNED_TO_NO_ONE = "me", "none"


def queue_filters(pools, staff):
    """The queue's filters from the query string, and what could not be read in words:
    unknown values of a list are ignored, a country no one is called is refused.
    ``staff``: the reviewers and managers of the fund a case may be assigned to."""
    args = request.args
    chosen, problems = {}, {}
    if args.get("status") in {s.value for s in OPEN_STATES}:
        chosen["status"] = args["status"]
    if args.get("category") in {c.value for c in Category}:
        chosen["category"] = args["category"]
    if args.get("urgency") in {u.value for u in Urgency}:
        chosen["urgency"] = args["urgency"]
    country = (args.get("country") or "").strip()[:80]
    if country:
        code = geo.country_code(country, str(get_locale() or "en"))
        if code is None:
            problems["country"] = _(
                "No country is called “%(text)s”: type its name or its two-letter code.",
                text=country,
            )
            chosen["country"] = country
        else:
            chosen["country"] = code
    assigned = args.get("assigned")
    if args.get("mine") == "1":  # the filter's earlier form, in links kept from before
        assigned = ASSIGNED_TO_ME
    if assigned in (ASSIGNED_TO_ME, ASSIGNED_TO_NO_ONE) or assigned in {
        person.uid for person in staff
    }:
        chosen["assigned"] = assigned
    if args.get("pool") in {str(p.id) for p in pools}:
        chosen["pool"] = args["pool"]
    if args.get("sort") in QUEUE_SORTS:
        chosen["sort"] = args["sort"]
    return chosen, problems


#: Urgent cases in these statuses may be taken and recommended from the queue's row.
QUICK_STATES = (ApplicationStatus.SUBMITTED, ApplicationStatus.IN_REVIEW)

#: The statuses the queue lists: every open one but a draft.
WAITING = [s for s in ApplicationStatus if s in OPEN_STATES and s != ApplicationStatus.DRAFT]


@bp.get("/cases")
@role_required(Role.REVIEWER, Role.MANAGER)
def queue():
    """Open cases of the fund with the time left to their targets, filtered and sorted, a
    page at a time; the same few queries whatever the number of cases."""
    page = page_arg()
    size = current_app.config["PAGE_SIZE"]
    pools = open_pools()
    staff = fund_staff()
    filters, problems = queue_filters(pools, staff)
    query, reporting = listed(filters, problems, pools, staff)
    rows, has_next = one_page(query, page, size)
    now = utcnow()
    deadlines = [targets.next_target(row, now) for row in rows]
    worths = [worth(row, reporting) for row in rows]
    fresh = QuickRecommendForm(formdata=None)
    return render_template(
        "reviews/queue.html",
        quick=refused.restore(QuickRecommendForm(formdata=None), {r.uid for r in rows}),
        fresh_quick=fresh,
        quick_states=QUICK_STATES,
        rows=list(zip(rows, deadlines, worths, strict=True)),
        page=page,
        has_next=has_next,
        filters=filters,
        problems=problems,
        reporting=reporting,
        pools=pools,
        staff=sorted(staff, key=lambda p: not p.active),  # those who left after the rest
        names={p.id: p.name for p in staff},
        statuses=WAITING,
        overdue_in_days_after=OVERDUE_IN_DAYS_AFTER,
        **_queue_words(),
    )


def listed(filters, problems, pools, staff):
    """The query of the queue's rows as ``filters`` choose and sort them (none when a
    filter could not be read), and the reporting currency their worth is sorted in: the
    page and its download list the same cases in the same order."""
    reporting = limits.reporting_currency()
    rates = _latest_rates(current_user.fund_id, utcnow().date())
    query = _filtered(_case_rows(rates), filters, pools, staff)
    if problems:
        # A filter that cannot be read lists nothing, rather than everything unfiltered.
        query = query.where(sa.false())
    order = QUEUE_SORTS[filters.get("sort", "due")](_worth_sql(rates, reporting))
    return query.order_by(*order), reporting


@dataclass(frozen=True)
class Colleague:
    """A reviewer or manager of the reader's fund, as the queue names them."""

    id: int
    uid: str
    name: str
    active: bool


def fund_staff():
    """The reviewers and managers of the reader's fund a case may be assigned to, active
    or not (a case may stay assigned to someone who has left), by the name colleagues
    read: one query, the names decrypted here (they are encrypted, so ordered here)."""
    people = db.session.execute(
        sa.select(User).where(
            User.fund_id == current_user.fund_id,
            User.role.in_((Role.REVIEWER, Role.MANAGER)),
        )
    ).scalars()
    found = [Colleague(u.id, u.uid, u.display_name or u.login, u.active) for u in people]
    return sorted(found, key=lambda p: (p.name.casefold(), p.uid))


def open_pools():
    """The fund's open pools, with their restrictions, for the pool filter."""
    return (
        db.session.execute(
            sa.select(Pool)
            .where(Pool.fund_id == current_user.fund_id, Pool.active.is_(True))
            .options(selectinload(Pool.restrictions))
            .order_by(Pool.name)
        )
        .scalars()
        .all()
    )


def _worth_sql(rates, reporting):
    """The sort key only: the worth shown is converted in Python, to the cent."""
    amount = Application.amount_requested
    return sa.case(
        (Application.currency == reporting, amount),
        (rates.c.base == reporting, amount / rates.c.rate),
        else_=amount * rates.c.rate,
    )


def _case_rows(rates):
    """The columns a queue row shows, with its currency's latest rate, for the cases the
    reader may open."""
    return (
        sa.select(
            Application.uid,
            Application.code,
            Application.category,
            Application.status,
            Application.urgency,
            Application.country,
            Application.region,
            Application.amount_requested,
            Application.currency,
            Application.submitted_at,
            Application.first_response_at,
            Application.response_due_at,
            Application.decision_due_at,
            Application.clock_paused_at,
            Application.assigned_reviewer_id,
            rates.c.base,
            rates.c.rate,
        )
        .outerjoin(rates, rates.c.currency == Application.currency)
        .where(access.visible_cases(current_user))
    )


def _filtered(query, filters, pools, staff):
    """``query`` kept to the cases the chosen filters select."""
    if "status" in filters:
        query = query.where(Application.status == filters["status"])
    else:
        # Written out in the statement, in the index's order, so that SQLite sees the
        # terms of the queue's partial index (it compares them as written).
        waiting = sa.bindparam(
            "waiting", [s.value for s in QUEUE_STATES], expanding=True, literal_execute=True
        )
        query = query.where(Application.status.in_(waiting))
    for name in ("category", "urgency", "country"):
        if name in filters:
            query = query.where(getattr(Application, name) == filters[name])
    assigned = filters.get("assigned")
    if assigned == ASSIGNED_TO_ME:
        query = query.where(Application.assigned_reviewer_id == current_user.id)
    elif assigned == ASSIGNED_TO_NO_ONE:
        query = query.where(Application.assigned_reviewer_id.is_(None))
    elif assigned is not None:
        person = next(p for p in staff if p.uid == assigned)
        query = query.where(Application.assigned_reviewer_id == person.id)
    if "pool" in filters:
        pool = next(p for p in pools if str(p.id) == filters["pool"])
        query = query.where(*fitting_cases(pool, Application))
    return query


def _queue_words():
    """The page's words, translated once for the page rather than once per row."""
    return {
        "labels": {status: str(label) for status, label in STAFF_LABELS.items()},
        "kinds": {kind: str(label) for kind, label in CATEGORY_LABELS.items()},
        "words": {
            "urgent": _("Urgent"),
            "normal": _("Not urgent"),
            "response": _("first response"),
            "decision": _("decision"),
            # Formats without their values: gettext returns them as they are.
            "overdue": _("%(what)s overdue by %(h)d h"),
            "due_in": _("%(what)s in %(h)d h"),
            "paused": _("clock paused: waiting for the applicant"),
        },
        "sorts": {
            "due": _("Next target first"),
            "oldest": _("Oldest first"),
            "newest": _("Newest first"),
            "amount": _("Largest amount first"),
        },
    }
