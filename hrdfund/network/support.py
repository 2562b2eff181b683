"""Co-funding across member funds: one support plan for a case shared by referral. Each
fund's money stays in its own pools and ledger; what another fund learns of it is only
what the fund committed and paid for this case, by month, and the fund's name."""

from collections import defaultdict

import sqlalchemy as sa

from ..auth.models import Fund
from ..cases.models import Application
from ..core.extensions import db
from ..core.sql import alias
from ..core.times import months_after
from ..grants import coverage
from ..grants.models import Grant, Instalment, PaymentPlan, PlanKind
from ..ledger.balances import PAID, instalments_paid
from .models import Referral, ReferralStatus


def counterparts(case_ids, lock=False):
    """For each of ``case_ids``, the cases of other funds it shares a referral with
    (accepted ones only): {case id: [(other case id, other fund id)]}. With ``lock``, the
    referrals that link them are locked until the transaction ends (on PostgreSQL; SQLite
    writes one at a time anyway): two funds paying a month of a shared stay take turns."""
    found = defaultdict(list)
    if not case_ids:
        return found
    accepted = Referral.status == ReferralStatus.ACCEPTED
    linked = alias(Application, "counterparts: linked")
    outgoing = (
        sa.select(
            Referral.id, Referral.application_id, Referral.linked_application_id, linked.fund_id
        )
        .join(linked, linked.id == Referral.linked_application_id)
        .where(accepted, Referral.application_id.in_(case_ids))
    )
    source_case = alias(Application, "counterparts: source")
    incoming = (
        sa.select(
            Referral.id,
            Referral.linked_application_id,
            Referral.application_id,
            source_case.fund_id,
        )
        .join(source_case, source_case.id == Referral.application_id)
        .where(accepted, Referral.linked_application_id.in_(case_ids))
    )
    referrals = set()
    for query in (outgoing, incoming):
        for referral_id, case_id, other, fund_id in db.session.execute(query):
            referrals.add(referral_id)
            found[case_id].append((other, fund_id))
    if lock and referrals:
        # In one order, every transaction alike: none waits on another that waits on it.
        db.session.execute(
            sa.select(Referral.id)
            .where(Referral.id.in_(sorted(referrals)))
            .order_by(Referral.id)
            .with_for_update()
        ).all()
    return found


def money_by_month(case_ids):
    """For each case: its grant's currency, what it committed and paid, and by month what
    its plan pays and what was paid: {case id: {"currency", "committed", "paid",
    "months": {month: (planned, paid)}}}. Cases without a grant are left out."""
    figures = {}
    if not case_ids:
        return figures
    for case_id, amount, currency in db.session.execute(
        sa.select(Grant.application_id, Grant.amount, Grant.currency).where(
            Grant.application_id.in_(case_ids)
        )
    ):
        figures[case_id] = {"currency": currency, "committed": amount, "paid": 0, "months": {}}
    paid = instalments_paid()
    for case_id, due_on, planned, settled in db.session.execute(
        sa.select(Grant.application_id, Instalment.due_on, Instalment.amount, paid.c.paid)
        .join(PaymentPlan, PaymentPlan.grant_id == Grant.id)
        .join(Instalment, Instalment.plan_id == PaymentPlan.id)
        .outerjoin(paid, paid.c.instalment_id == Instalment.id)
        .where(Grant.application_id.in_(case_ids))
    ):
        month = due_on.replace(day=1)
        row = figures[case_id]
        before = row["months"].get(month, (0, 0))
        row["months"][month] = (before[0] + planned, before[1] + (settled or 0))
        row["paid"] += settled or 0
    return figures


def _fund_names(fund_ids):
    return dict(
        db.session.execute(sa.select(Fund.id, Fund.name).where(Fund.id.in_(fund_ids))).all()
    )


@coverage.register_network
def months_other_funds_cover(case_ids):
    """For each case of ``case_ids``: the months another member fund's plan covers on the
    case shared with it, by that fund's name only: {case id: {month: fund name}}."""
    shared = counterparts(case_ids)
    others = {other for pairs in shared.values() for other, _fund in pairs}
    money = money_by_month(others)
    names = _fund_names({fund for pairs in shared.values() for _o, fund in pairs})
    covered = {}
    for case_id, pairs in shared.items():
        for other, fund_id in pairs:
            for month in money.get(other, {}).get("months", {}):
                covered.setdefault(case_id, {})[month] = names[fund_id]
    return covered


@coverage.register_paid_elsewhere
def months_other_funds_paid(case_ids):
    """For each case of ``case_ids``: the stipend months another member fund paid (net of
    reversals) on the case shared with it, by that fund's name: {case id: {month: fund
    name}}. The referrals linking them are locked: a month is paid once, whichever fund
    comes first."""
    shared = counterparts(case_ids, lock=True)
    others = {other for pairs in shared.values() for other, _fund in pairs}
    if not others:
        return {}
    net = instalments_paid(
        grants=sa.select(Grant.id).where(Grant.application_id.in_(sorted(others)))
    )
    paid = defaultdict(set)
    for case_id, month in db.session.execute(
        sa.select(Grant.application_id, Instalment.period_month)
        .join(PaymentPlan, PaymentPlan.grant_id == Grant.id)
        .join(Instalment, Instalment.plan_id == PaymentPlan.id)
        .join(net, net.c.instalment_id == Instalment.id)
        .where(
            Grant.application_id.in_(sorted(others)),
            Instalment.period_month.is_not(None),
            net.c.paid >= PAID,
        )
    ):
        paid[case_id].add(month)
    names = _fund_names({fund for pairs in shared.values() for _o, fund in pairs})
    found = {}
    for case_id, pairs in shared.items():
        for other, fund_id in pairs:
            for month in paid.get(other, ()):
                found.setdefault(case_id, {})[month] = names[fund_id]
    return found


@coverage.register_asked
def months_asked(case_id):
    """The months of a stay the referral the case answers asked of its fund, placed by the
    referring fund's stipend on the case referred (the stay's first month is that
    stipend's first): see :func:`coverage.months_asked`."""
    referral = db.session.execute(
        sa.select(Referral)
        .where(
            Referral.linked_application_id == case_id,
            Referral.status == ReferralStatus.ACCEPTED,
            Referral.months_from.is_not(None),
        )
        .order_by(Referral.id)
        .limit(1)
    ).scalar_one_or_none()
    if referral is None:
        return None
    first_due = None
    if not referral.from_fund.elsewhere:
        first_due = db.session.execute(
            sa.select(sa.func.min(Instalment.due_on))
            .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
            .join(Grant, Grant.id == PaymentPlan.grant_id)
            .where(
                Grant.application_id == referral.application_id,
                PaymentPlan.kind == PlanKind.STIPEND,
            )
        ).scalar()
    return {
        "fund": referral.from_fund.name,
        "first": referral.months_from,
        "last": referral.months_to,
        "count": referral.months_to - referral.months_from + 1,
        "starts_on": None
        if first_due is None
        else months_after(first_due, referral.months_from - 1),
    }


def support_plan(application):
    """The case's one support plan across the network: for the case and each case of
    another fund it shares a referral with, the fund's name, what it committed and paid,
    and the months its plan pays; then each fund on another server that said it supports
    a part, with the months it said."""
    shared = counterparts([application.id])[application.id]
    ids = [application.id, *(other for other, _fund in shared)]
    money = money_by_month(ids)
    names = _fund_names({application.fund_id, *(fund for _o, fund in shared)})
    rows = []
    for case_id, fund_id in [(application.id, application.fund_id), *shared]:
        figures = money.get(case_id)
        months = sorted(figures["months"]) if figures else []
        rows.append(
            {
                "fund": names[fund_id],
                "own": case_id == application.id,
                "currency": figures["currency"] if figures else None,
                "committed": figures["committed"] if figures else None,
                "paid": figures["paid"] if figures else None,
                "first": months[0] if months else None,
                "last": months[-1] if months else None,
            }
        )
    return rows + _supported_elsewhere(application)


def _supported_elsewhere(application):
    """The funds on other servers whose answer packet said they support a part of the
    case: by name and the months of the stay they said (7 to 12), as nothing else of
    their money reaches this server."""
    return [
        {
            "fund": name,
            "own": False,
            "elsewhere": True,
            "covered": None if first is None else (first, last),
        }
        for name, first, last in db.session.execute(
            sa.select(Fund.name, Referral.covered_from, Referral.covered_to)
            .join(Fund, Fund.id == Referral.to_fund_id)
            .where(
                Referral.application_id == application.id,
                Referral.supported_at.is_not(None),
                Referral.status == ReferralStatus.ACCEPTED,
            )
            .order_by(Referral.id)
        )
    ]
