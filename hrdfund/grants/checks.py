"""The invariants `flask hrdfund check` verifies on grants: a closed grant commits nothing
more than it paid, no instalment is paid beyond its amount, no defender is paid twice for
a stipend month, a grant's allocations add up to its amount and draw on each pool once and
within its cap, and a grant is committed on what its approvals chose (weighed again from
what each kept)."""

from decimal import Decimal

import sqlalchemy as sa

from ..cases.models import Application, Decision, DecisionOutcome
from ..core.extensions import db
from ..core.money import quantize
from ..core.sql import summed
from ..ledger.balances import PAID, instalments_paid
from ..ledger.invariants import allocation_sums, paid_at
from ..ledger.models import Allocation
from ..pools.models import Pool
from ..pools.rate_table import RateTable
from .models import ApprovalDraw, Grant, GrantStatus, Instalment, PaymentPlan


def check_grant_payments():
    """What is wrong with what grants paid: closed grants still committing, instalments
    paid beyond their amount, stipend months paid twice."""
    return _check_closed_grants() + _check_instalments() + _check_stipend_months()


def check_grant_draws():
    """What is wrong with what grants draw: allocations not adding up to the grant, a pool
    drawn twice or beyond its cap per grant."""
    return _check_grant_totals() + _check_caps()


def check_approvals(table=None):
    """A grant is committed on what its approvals chose: the split of pools each recorded,
    and, approved by one manager alone, an amount worth less than the four-eyes threshold
    then in force, weighed at a table rate that manager did not record alone. Each
    single-manager approval is weighed again from what it kept (its worth, the table
    entry and the threshold); one from before approvals kept them is not."""
    table = table or RateTable()
    rows = db.session.execute(
        sa.select(
            Grant.id.label("grant_id"),
            Decision.id,
            Decision.round,
            Decision.manager_id,
            Decision.amount,
            Decision.currency,
            Decision.worth,
            Decision.worth_currency,
            Decision.weighed_rate_id,
            Decision.threshold,
            Decision.created_at,
        )
        .join(Grant, Grant.application_id == Decision.application_id)
        .where(Decision.outcome == DecisionOutcome.APPROVE)
        .order_by(Grant.id, Decision.id)
    )
    approvals = {}
    for row in rows:
        approvals.setdefault(row.grant_id, []).append(row)
    draws = {}
    for decision_id, pool_id, amount in db.session.execute(
        sa.select(ApprovalDraw.decision_id, ApprovalDraw.pool_id, ApprovalDraw.amount)
    ):
        draws.setdefault(decision_id, []).append((pool_id, amount))
    splits = {}
    for grant_id, pool_id, amount in db.session.execute(
        sa.select(Allocation.grant_id, Allocation.pool_id, Allocation.grant_amount)
    ):
        splits.setdefault(grant_id, []).append((pool_id, amount))
    problems = []
    for grant_id, decisions in approvals.items():
        last = max(d.round for d in decisions)
        decisions = [d for d in decisions if d.round == last]
        split = sorted(splits.get(grant_id, []))
        for decision in decisions:
            chosen = draws.get(decision.id)
            if chosen is not None and sorted(chosen) != split:
                problems.append(
                    f"grant {grant_id} commits a split of pools its approval {decision.id} "
                    "did not choose"
                )
        if len({d.manager_id for d in decisions}) == 1:
            problems += _weigh_again(grant_id, decisions[0], table)
    return problems


def _weigh_again(grant_id, decision, table):
    """What is wrong with ``decision`` committing grant ``grant_id`` alone."""
    if decision.worth is None:
        return []
    alone = f"grant {grant_id} was approved by one manager (decision {decision.id})"
    entry = table.entries.get(decision.weighed_rate_id)
    if decision.worth_currency == decision.currency:
        worth = quantize(decision.amount) if decision.weighed_rate_id is None else None
    elif entry is None or {entry.base, entry.quote} != {
        decision.currency,
        decision.worth_currency,
    }:
        worth = None
    else:
        worth = paid_at(decision.amount, table.rate(entry, decision.currency))
    if worth is None:
        return [
            f"{alone}, weighed with no rate from {decision.currency} to {decision.worth_currency}"
        ]
    problems = []
    if worth != decision.worth:
        problems.append(
            f"{alone}, recorded as worth {decision.worth} {decision.worth_currency} where "
            f"its rate makes it {worth}"
        )
    if decision.threshold is not None and worth >= decision.threshold:
        problems.append(
            f"{alone} though worth {worth} {decision.worth_currency}, at or above the "
            f"four-eyes threshold of {decision.threshold} then"
        )
    if table.alone(entry, decision.manager_id, decision.created_at):
        problems.append(f"{alone}, weighed at a rate that manager recorded alone")
    return problems


def _check_caps():
    """A grant draws on a pool once, and no more than the pool's cap per grant."""
    rows = db.session.execute(
        sa.select(
            Allocation.grant_id,
            Allocation.pool_id,
            sa.func.count(Allocation.id),
            summed(Allocation.amount),
            Pool.cap_per_grant,
        )
        .join(Pool, Pool.id == Allocation.pool_id)
        .group_by(Allocation.grant_id, Allocation.pool_id, Pool.cap_per_grant)
        .having(
            sa.or_(
                sa.func.count(Allocation.id) > 1,
                summed(Allocation.amount)
                > sa.func.coalesce(Pool.cap_per_grant, summed(Allocation.amount)),
            )
        )
    )
    problems = []
    for grant_id, pool_id, count, total, cap in rows:
        if count > 1:
            problems.append(f"grant {grant_id} draws on pool {pool_id} {count} times")
        if cap is not None and quantize(total) > cap:
            problems.append(
                f"grant {grant_id} draws {quantize(total)} from pool {pool_id}, above its cap "
                f"of {cap} per grant"
            )
    return problems


def _check_closed_grants():
    """A closed grant commits nothing more than it paid: the rest went back to the pools."""
    released, paid = allocation_sums()
    rest = (
        Allocation.amount
        - sa.func.coalesce(released.c.released, 0)
        - sa.func.coalesce(paid.c.paid, 0)
    )
    rows = db.session.execute(
        sa.select(Grant.id, Allocation.id, rest)
        .join(Allocation, Allocation.grant_id == Grant.id)
        .outerjoin(released, released.c.allocation_id == Allocation.id)
        .outerjoin(paid, paid.c.allocation_id == Allocation.id)
        .where(Grant.status == GrantStatus.CLOSED)
    )
    return [
        f"grant {gid} is closed but allocation {aid} still commits {quantize(left)}"
        for gid, aid, left in rows
        if quantize(left) != 0
    ]


def _check_instalments():
    """No instalment is paid beyond its amount (in the grant's currency), net of reversals."""
    net = instalments_paid()
    rows = db.session.execute(
        sa.select(Instalment.id, Instalment.amount, net.c.paid, net.c.payments).join(
            net, net.c.instalment_id == Instalment.id
        )
    )
    return [
        f"instalment {iid} is paid {quantize(paid)} by {count} payments, more than its {amount}"
        for iid, amount, paid, count in rows
        if count > 1 and quantize(paid) > amount + Decimal("1.00") * count
    ]


def _check_stipend_months():
    """No defender is paid twice for the same stipend month, across grants: at most one
    instalment of each month keeps money net of reversals."""
    net = instalments_paid()
    rows = db.session.execute(
        sa.select(Application.defender_key, Instalment.period_month, sa.func.count(Instalment.id))
        .select_from(Instalment)
        .join(net, net.c.instalment_id == Instalment.id)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .join(Grant, Grant.id == PaymentPlan.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            net.c.paid >= PAID,
            Instalment.period_month.is_not(None),
            Application.defender_key.is_not(None),
        )
        .group_by(Application.fund_id, Application.defender_key, Instalment.period_month)
        .having(sa.func.count(Instalment.id) > 1)
    )
    return [
        f"a defender is paid {count} times for the stipend month {month}"
        for _key, month, count in rows
    ]


def _check_grant_totals():
    """A grant's allocations add up to its amount, in the grant's currency."""
    rows = db.session.execute(
        sa.select(Grant.id, Grant.amount, summed(Allocation.grant_amount))
        .join(Allocation, Allocation.grant_id == Grant.id)
        .group_by(Grant.id, Grant.amount)
    )
    return [
        f"grant {gid} of {amount} has allocations adding up to {quantize(total)}"
        for gid, amount, total in rows
        if quantize(total) != amount
    ]
