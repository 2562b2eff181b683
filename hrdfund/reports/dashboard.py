"""The home page of reviewers, managers and finance: what waits, what is late, what was
decided in time, where the money went this month, and charts of the same drawn on the
server.

Every figure counts only the cases its reader may open (``visible_cases``: the reader's
fund, without the cases they declared a conflict on, and for finance only the cases with
money); a pool's figures are the pool's own sums, as its page shows them. The page runs
the same few grouped queries whatever the number of cases and pools, in a transaction
that takes no write lock.
"""

import itertools
import statistics
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import format_decimal, format_percent, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import visible_cases
from ..cases.models import Application, ApplicationStatus
from ..cases.states import STAFF_LABELS
from ..core import times
from ..core.charts import Chart, Series
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.sql import before, summed
from ..core.support import CATEGORY_LABELS
from ..disbursements import followup
from ..disbursements.open_items import FirstPayment, among_visible, count_open, late_spans
from ..grants.forms import SecondApprovalForm
from ..grants.waiting import decisions_waiting
from ..ledger.balances import pool_history
from ..pools.chart import chart_days, pool_chart
from ..pools.models import Pool
from ..reviews.forms import RECOMMENDATION_LABELS, RISK_LABELS
from . import bp

#: Weeks in the chart of cases received and decided; months in the monthly charts.
WEEKS, MONTHS = 12, 12
#: The statuses of cases waiting for the fund, in the order of the work.
WAITING = [
    ApplicationStatus.SUBMITTED,
    ApplicationStatus.IN_REVIEW,
    ApplicationStatus.INFO_REQUESTED,
    ApplicationStatus.RECOMMENDED,
    ApplicationStatus.AWAITING_SECOND_APPROVAL,
]
#: Ages of a waiting case since it was sent: (days at least, words).
AGES = [
    (0, _l("Under 2 days")),
    (2, _l("2 to 7 days")),
    (7, _l("7 to 30 days")),
    (30, _l("Over 30 days")),
]


def _month_starts(today, count):
    """The first days of the ``count`` months ending with this one, and of the next."""
    firsts = []
    year, month = today.year, today.month
    for _step in range(count + 1):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    firsts.reverse()
    nxt = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return firsts[1:] + [nxt]


def _counted(condition):
    """SQL: how many rows meet ``condition`` (0 over none)."""
    return summed(sa.case((condition, 1), else_=0))


def waiting_cases(visible, now):
    """Per waiting status: the count in each age band, the total, and how many are past
    their next target (response, then decision) with the clock running. One query, read
    from the queue's index alone, which holds every column it looks at."""
    sent = Application.submitted_at
    bands = []
    for i, (days, _words) in enumerate(AGES):
        band = []
        if days:
            band.append(sent <= now - timedelta(days=days))
        if i + 1 < len(AGES):
            band.append(sent > now - timedelta(days=AGES[i + 1][0]))
        bands.append(_counted(sa.and_(*band)))
    late = _counted(sa.and_(Application.clock_paused_at.is_(None), Application.next_due_at < now))
    rows = db.session.execute(
        sa.select(Application.status, *bands, sa.func.count(), late)
        .where(visible, Application.status.in_([s.value for s in WAITING]))
        .group_by(Application.status)
    ).all()
    found = {ApplicationStatus(row[0]): row[1:] for row in rows}
    empty = (0,) * (len(AGES) + 2)
    return [(status, found.get(status, empty)) for status in WAITING]


def _span_counts(column, spans, visible, *sums):
    """SQL: for each span between two days of ``spans`` (in order), its number (counted
    from 0), the rows whose ``column`` falls in it, and each of ``sums`` over them. One
    statement of a range of ``column``'s index per span: counting a range steps through
    its entries, where grouping the rows by their day would sort them all."""
    parts = [
        sa.select(sa.literal(i), sa.func.count(), *sums).where(
            visible, sa.not_(before(column, start)), before(column, end)
        )
        for i, (start, end) in enumerate(itertools.pairwise(spans))
    ]
    return sa.union_all(*parts)


def flow(visible, weeks, months):
    """Cases received and decided in each week of ``weeks`` (their first days, and the day
    after the last), and decided, and decided within target, in each month of
    ``months``. Two statements, each a range of a cases' index per week and month, so
    neither reads the cases' rows nor sorts them."""
    decided = Application.decided_at
    in_time = summed(sa.case((decided <= Application.decision_due_at, 1), else_=0))
    counts = {"received": [0] * (len(weeks) - 1), "decided": [0] * (len(weeks) - 1)}
    counts.update(decided_month=[0] * (len(months) - 1), in_time_month=[0] * (len(months) - 1))
    for i, n in db.session.execute(_span_counts(Application.submitted_at, weeks, visible)):
        counts["received"][i] = n
    split = len(weeks) - 1
    statement = _span_counts(decided, weeks + months, visible, in_time)
    # The weeks and the months are one list of spans: the span from the day after the last
    # week to the first month's first day counts nothing anyone reads, and is left out.
    statement = sa.union_all(*statement.selects[:split], *statement.selects[split + 1 :])
    for i, n, on_time in db.session.execute(statement):
        if i < split:
            counts["decided"][i] = n
        else:
            counts["decided_month"][i - split - 1] = n
            counts["in_time_month"][i - split - 1] = on_time
    return counts


def _days_between(later, earlier):
    """SQL: whole days from the Date ``earlier`` to the Date ``later``."""
    if db.session.get_bind().dialect.name == "postgresql":
        return later - earlier
    return sa.cast(sa.func.julianday(later) - sa.func.julianday(earlier), sa.Integer)


def days_to_first_payment(user, months):
    """For each month of ``months``, the days from decision to first payment of the cases
    first paid that month, as a list: one query over the first payments kept as payments
    are written (``FirstPayment``), counted by the day paid and the day decided, in the
    order of their index (nothing to sort), put in their months here."""
    paid = FirstPayment.paid_on
    rows = db.session.execute(
        sa.select(paid, _days_between(paid, FirstPayment.decided_on), sa.func.count())
        .where(among_visible(user, FirstPayment), paid >= months[0], paid < months[-1])
        .group_by(paid, FirstPayment.decided_on)
        .order_by(paid, FirstPayment.decided_on)
    ).all()
    spans = [[] for _month_start in months[1:]]
    at, next_start = 0, months[1]
    for on, waited, count in rows:
        while on >= next_start:
            at += 1
            next_start = months[at + 1]
        spans[at].extend([max(waited, 0)] * count)
    return spans


@dataclass
class PoolLine:
    """A pool as the dashboard shows it: plain values, read once."""

    id: int
    uid: str
    name: str
    currency: str
    ends_on: date | None


def open_pools(fund_id):
    """The fund's open pools, by name. One query."""
    rows = db.session.execute(
        sa.select(Pool.id, Pool.uid, Pool.name, Pool.currency, Pool.ends_on)
        .where(Pool.fund_id == fund_id, Pool.active.is_(True))
        .order_by(Pool.name, Pool.id)
    ).all()
    return [PoolLine(*row) for row in rows]


def _share(part, whole):
    """``part`` of ``whole`` as a percentage in words; a dash when there is no whole."""
    return format_percent(part / whole, "#,##0 %") if whole else "–"


def _whole(value):
    return format_decimal(round(value), format="#,##0")


def case_charts(counts, weeks, months):
    """The charts of cases received and decided by week, and decided within target by
    month."""
    week_labels = [times.day_of_month(day) for day in weeks[:-1]]
    month_labels = [times.chart_month(day) for day in months[:-1]]
    share = [
        (in_time * 100 / decided) if decided else None
        for in_time, decided in zip(counts["in_time_month"], counts["decided_month"], strict=True)
    ]
    return [
        Chart(
            key="chart-flow",
            title=_("Cases received and decided, by week"),
            summary=_(
                "Cases sent to the fund and cases decided, in each of the last %(n)d weeks, "
                "weeks starting on the day shown.",
                n=WEEKS,
            ),
            labels=week_labels,
            series=[
                Series(
                    _("Cases received"), counts["received"], [str(v) for v in counts["received"]]
                ),
                Series(_("Cases decided"), counts["decided"], [str(v) for v in counts["decided"]]),
            ],
            axis=_whole,
            whole=True,
        ),
        Chart(
            key="chart-in-time",
            title=_("Share decided within target, by month"),
            summary=_(
                "Of the cases decided each month, the share decided by their decision target."
            ),
            labels=month_labels,
            series=[
                Series(
                    _("Decided within target"),
                    share,
                    [format_percent(v / 100, "#,##0 %") if v is not None else "–" for v in share],
                )
            ],
            axis=lambda v: format_percent(v / 100, "#,##0 %"),
            top=100,
        ),
    ]


def payment_chart(spans, months):
    """The chart of the days from decision to first payment, by month."""
    medians = [statistics.median(s) if s else None for s in spans]
    return Chart(
        key="chart-first-payment",
        title=_("Days from decision to first payment, by month"),
        summary=_(
            "For the cases first paid each month, the median number of days since their decision."
        ),
        labels=[times.chart_month(day) for day in months[:-1]],
        series=[
            Series(
                _("Median days"),
                medians,
                [
                    ngettext("%(num)d day", "%(num)d days", round(m)) if m is not None else "–"
                    for m in medians
                ],
            ),
            Series(_("Cases paid"), [len(s) for s in spans], [str(len(s)) for s in spans]),
        ],
        axis=_whole,
        whole=True,
    )


def pool_money(pools, days, history, today):
    """Per pool: committed and paid this month, and what is available now."""
    month_start = days.index(date(today.year, today.month, 1))
    rows = []
    for pool in pools:
        points = history[pool.id]
        now, then = points[-1], points[month_start]
        rows.append(
            {
                "pool": pool,
                "committed": now["committed"] - then["committed"],
                "paid": now["disbursed"] - then["disbursed"],
                "available": now["available"],
            }
        )
    return rows


def money_things(user, today):
    """What finance and managers chase, counted: payments held for a second person, then
    instalments past due or due soon, receipts and reports that did not come, payments a
    bank or the payee side reported short or failed, and for finance its grants to pay:
    the open items Follow-up lists, counted in one statement through their index."""
    found = count_open(user, late_spans(today, current_app.config))
    found["held"] = followup.held_payments(user, count=True)
    # Reported short or failed by a statement or by the payee side, as Follow-up lists them.
    found["mismatches"] += found.pop("answers")
    found["to_pay"] = found["instalments_due"] + found.pop("unplanned")
    return found


@bp.get("/dashboard")
@role_required(Role.REVIEWER, Role.MANAGER, Role.FINANCE)
def dashboard():
    """The fund's day at a glance for its reviewers, managers and finance."""
    with reading():
        return render_template("reports/dashboard.html", **dashboard_figures())


def dashboard_figures():
    """Everything the dashboard shows, for the signed-in reader."""
    user = current_user._get_current_object()
    role = user.role
    now = utcnow()
    today = now.date()
    visible = visible_cases(user)
    monday = today - timedelta(days=today.weekday())
    weeks = [monday - timedelta(weeks=k) for k in range(WEEKS - 1, -1, -1)]
    weeks.append(monday + timedelta(weeks=1))
    months = _month_starts(today, MONTHS)
    figures = {
        "role": role.value,
        "today": today,
        "ages": AGES,
        "labels": STAFF_LABELS,
        # A decision due in more than two days is said in days, as the queue says it.
        "in_days_after": times.OVERDUE_IN_DAYS_AFTER,
    }
    charts = []
    if role in (Role.REVIEWER, Role.MANAGER):
        waiting = waiting_cases(visible, now)
        counts = flow(visible, weeks, months)
        figures["waiting"] = waiting
        figures["late"] = sum(row[-1] for _status, row in waiting)
        figures["in_time"] = [
            (months[i], counts["in_time_month"][i], counts["decided_month"][i])
            for i in (MONTHS - 1, MONTHS - 2)
        ]
        figures["in_time"] = [
            (month, in_time, decided, _share(in_time, decided))
            for month, in_time, decided in figures["in_time"]
        ]
        charts += case_charts(counts, weeks, months)
    if role in (Role.MANAGER, Role.FINANCE):
        figures["chase"] = money_things(user, today)
        charts.append(payment_chart(days_to_first_payment(user, months), months))
        pools = open_pools(user.fund_id)
        days = chart_days(today)
        history = pool_history([p.id for p in pools], days)
        figures["money"] = pool_money(pools, days, history, today)
        figures["pool_charts"] = [
            (pool, pool_chart(pool, days, history[pool.id], today, f"chart-pool-{i}"))
            for i, pool in enumerate(pools)
        ]
    if role == Role.MANAGER:
        figures["decisions"], figures["decisions_total"] = decisions_waiting(user)
        figures["second_form"] = SecondApprovalForm(formdata=None)
        figures["kinds"], figures["now"] = CATEGORY_LABELS, now
        figures["risk_labels"], figures["recommendation_labels"] = (
            RISK_LABELS,
            RECOMMENDATION_LABELS,
        )
    if role == Role.FINANCE:
        figures["to_pay"] = figures["chase"]["to_pay"]
    figures["charts"] = charts
    return figures
