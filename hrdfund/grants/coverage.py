"""Coverage: who is supported in which months by which grant and pool, and the stipends
and relocations about to end with nothing decided after them."""

from datetime import timedelta

import sqlalchemy as sa

from ..cases.access import visible_cases
from ..cases.models import Application
from ..core.extensions import db
from ..core.paging import one_page
from ..core.sql import alias
from ..core.support import Category
from ..core.times import months_after
from ..ledger.models import Allocation
from ..pools.models import Pool
from .models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind

#: Providers of the months other member funds cover on a fund's cases (the network
#: registers one): ``provider(case_ids) -> {case id: {month: fund name}}``.
_NETWORK = []


def register_network(provider):
    """Add the months other funds cover to the calendar and to what ends soon."""
    _NETWORK.append(provider)
    return provider


#: Providers of the stipend months other member funds paid on a fund's cases, net of
#: reversals (the network registers one): ``provider(case_ids) -> {case id: {month:
#: fund name}}``.
_PAID = []


def register_paid_elsewhere(provider):
    """Add the months other funds paid, so that no fund pays one a second time."""
    _PAID.append(provider)
    return provider


#: Providers of the months of a shared stay another member fund asked a fund's case to
#: pay, by referral (the network registers one): ``provider(case_id) -> dict or None``.
_ASKED = []


def register_asked(provider):
    """Add the months a referral asked of a case, to plan them."""
    _ASKED.append(provider)
    return provider


def months_asked(case_id):
    """The months of a stay another member fund asked the case's fund to pay, when the
    case is its part of a referral that asked months: {"fund": the referring fund's name,
    "first", "last": the months asked (7 and 12: counted from the stay's first), "count",
    "starts_on": when the first of them falls by the referring fund's stipend (None while
    it has none here)}; else None."""
    for provider in _ASKED:
        asked = provider(case_id)
        if asked is not None:
            return asked
    return None


def paid_elsewhere(case_ids):
    """{case id: {month: fund name}}: the stipend months other member funds paid on these
    cases (a stay they share by referral), net of reversals."""
    found = {}
    for provider in _PAID:
        for case_id, months in provider(case_ids).items():
            found.setdefault(case_id, {}).update(months)
    return found


def covered_elsewhere(case_ids):
    """{case id: {month: fund name}}: the months other member funds cover on these cases."""
    found = {}
    for provider in _NETWORK:
        for case_id, months in provider(case_ids).items():
            found.setdefault(case_id, {}).update(months)
    return found


def ending_soon(user, today, days):
    """Active stipends and relocations, on cases ``user`` may open, whose plan ends within
    ``days`` of ``today`` or whose renewal review date has passed while the plan still
    runs, and for whose defender no later grant was approved: (application, grant, plan)
    rows, soonest end first."""
    later = alias(Grant, "ending soon: later grant")
    later_case = alias(Application, "ending soon: later case")
    follow_on = (
        sa.select(later.id)
        .join(later_case, later_case.id == later.application_id)
        .where(
            later_case.fund_id == Application.fund_id,
            later_case.defender_key == Application.defender_key,
            later.id != Grant.id,
            later.approved_at > Grant.approved_at,
        )
        .exists()
    )
    rows = db.session.execute(
        sa.select(Application, Grant, PaymentPlan)
        .join(Grant, Grant.application_id == Application.id)
        .join(PaymentPlan, PaymentPlan.grant_id == Grant.id)
        .where(
            visible_cases(user),
            Grant.status == GrantStatus.ACTIVE,
            sa.or_(
                PaymentPlan.kind == PlanKind.STIPEND,
                Application.category == Category.RELOCATION,
            ),
            PaymentPlan.ends_on >= today,
            sa.or_(
                PaymentPlan.ends_on <= today + timedelta(days=days),
                PaymentPlan.renewal_review_on < today,
            ),
            sa.or_(Application.defender_key.is_(None), ~follow_on),
        )
        .order_by(PaymentPlan.ends_on, Grant.id)
    ).all()
    # Support another member fund plans after the end, on the case it shares, follows on.
    elsewhere = covered_elsewhere([application.id for application, _g, _p in rows])
    return [
        (application, grant, plan)
        for application, grant, plan in rows
        if not any(
            month > plan.ends_on.replace(day=1) for month in elsewhere.get(application.id, {})
        )
    ]


def calendar(user, first_month, months, page, page_size):
    """Each defender's planned support over ``months`` months from ``first_month``, on the
    cases ``user`` may open: rows of (defender key or case code, case code, short code, pools,
    {month: amount}, currency), a page of grants at a time, grouped by defender. Returns
    (rows, month list, has_next)."""
    month_list = [months_after(first_month, n) for n in range(months)]
    end = months_after(first_month, months)
    grants, has_next = one_page(
        sa.select(
            Grant.id,
            Grant.currency,
            Application.id.label("case_id"),
            Application.uid,
            Application.code,
            Application.defender_key,
        )
        .join(Application, Application.id == Grant.application_id)
        .join(PaymentPlan, PaymentPlan.grant_id == Grant.id)
        .where(
            visible_cases(user),
            Grant.status == GrantStatus.ACTIVE,
            PaymentPlan.ends_on >= first_month,
            PaymentPlan.starts_on < end,
        )
        .order_by(Application.defender_key, Grant.id),
        page,
        page_size,
    )
    ids = [g.id for g in grants]
    cells = {}
    for grant_id, due, amount in db.session.execute(
        sa.select(PaymentPlan.grant_id, Instalment.due_on, Instalment.amount)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .where(
            PaymentPlan.grant_id.in_(ids),
            Instalment.due_on >= first_month,
            Instalment.due_on < end,
        )
    ):
        month = due.replace(day=1)
        row = cells.setdefault(grant_id, {})
        row[month] = row.get(month, 0) + amount
    pools = {}
    for grant_id, name in db.session.execute(
        sa.select(Allocation.grant_id, Pool.name)
        .join(Pool, Pool.id == Allocation.pool_id)
        .where(Allocation.grant_id.in_(ids))
    ):
        pools.setdefault(grant_id, []).append(name)
    elsewhere = covered_elsewhere([g.case_id for g in grants])
    rows = [
        {
            "defender": g.defender_key or g.uid,
            "case": g.uid,
            "code": g.code,
            "pools": ", ".join(pools.get(g.id, [])),
            "months": cells.get(g.id, {}),
            "elsewhere": elsewhere.get(g.case_id, {}),
            "currency": g.currency,
        }
        for g in grants
    ]
    return rows, month_list, has_next
