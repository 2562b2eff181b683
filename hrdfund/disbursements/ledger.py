"""Pool figures as sums over ledger rows, and the ledger invariants `check` verifies.

Every query here is grouped, so the number of queries does not grow with the rows.
"""

import bisect
from decimal import Decimal

import sqlalchemy as sa

from .. import audit
from ..applications.models import Application
from ..applications.review_models import Decision, DecisionOutcome
from ..auth.models import User
from ..core.extensions import db
from ..core.money import RATE_PLACES, ConversionError, convert, quantize
from ..core.sql import before, signed_amount, summed
from ..grants.models import ApprovalDraw, Grant, GrantStatus, Instalment, PaymentPlan
from ..grants.services import pool_commitments
from ..ledger.models import Allocation, Contribution, Delivery, Disbursement, Release
from ..pools.models import ExchangeRate, Pool, confirmed_before
from .bounds import SECOND_PERSONS, Bounds, bounds_passed, rate_beyond_tolerance
from .services import PAID, instalments_paid

ZERO = Decimal("0.00")


def _net(column):
    """A payment column summed with reversal rows counted negative."""
    return summed(sa.case((Disbursement.reversal_of_id.is_(None), column), else_=-column))


def pool_figures(pool_ids=None, until=None):
    """Map pool id -> received, committed, disbursed, fees, exchange differences, available
    (what can still be committed) and outstanding (committed, not yet paid). With
    ``until`` (a date), as they stood at the start of that day."""
    ids = (
        pool_ids if pool_ids is not None else db.session.execute(sa.select(Pool.id)).scalars().all()
    )
    commitments = pool_commitments(ids, until)
    dated = [] if until is None else [before(Disbursement.paid_on, until)]
    paid = {
        row[0]: [quantize(v) for v in row[1:]]
        for row in db.session.execute(
            sa.select(
                Disbursement.pool_id,
                _net(Disbursement.amount),
                _net(Disbursement.fee_amount),
                _net(Disbursement.exchange_difference),
            )
            .where(Disbursement.pool_id.in_(ids), *dated)
            .group_by(Disbursement.pool_id)
        )
    }
    figures = {}
    for pid in ids:
        received, committed, costs = commitments[pid]
        disbursed, fees, differences = paid.get(pid, (ZERO, ZERO, ZERO))
        figures[pid] = {
            "received": received,
            "committed": committed,
            "disbursed": disbursed,
            "fees": fees,
            "exchange_differences": differences,
            "available": received - committed - costs,
            "outstanding": committed - disbursed,
        }
    return figures


def reversal_partners(model, rows, dated):
    """For ledger ``rows`` of ``model`` (payments or contributions): map each row's id to
    its partner, ``{"day": ..., "uid": ...}``: for a row that was reversed, its reversal;
    for a reversal row, the row it reverses. ``dated`` is the model's date column. Two
    queries, whatever the number of rows."""
    ids = [row.id for row in rows]
    originals = [row.reversal_of_id for row in rows if row.reversal_of_id]
    found = {}
    if ids:
        for original, day, uid in db.session.execute(
            sa.select(model.reversal_of_id, dated, model.uid).where(model.reversal_of_id.in_(ids))
        ):
            found[original] = {"day": day, "uid": uid}
    if originals:
        partners = dict(
            (row[0], {"day": row[1], "uid": row[2]})
            for row in db.session.execute(
                sa.select(model.id, dated, model.uid).where(model.id.in_(originals))
            )
        )
        for row in rows:
            if row.reversal_of_id in partners:
                found[row.id] = partners[row.reversal_of_id]
    return found


#: The figures `check` recomputes row by row and the pool page shows.
FIGURES = ("received", "committed", "disbursed", "fees", "exchange_differences", "available")


def sums_of_rows():
    """Each pool's figures added up here, row by row in Python, from the ledger tables
    alone: a second computation, independent of the grouped SQL of `pool_figures`."""
    sums = {pid: dict.fromkeys(FIGURES, ZERO) for pid in db.session.scalars(sa.select(Pool.id))}

    def rows(query):
        return db.session.execute(query.execution_options(yield_per=5000))

    contributions = sa.select(
        Contribution.pool_id, Contribution.amount, Contribution.reversal_of_id
    )
    for pid, amount, reversal in rows(contributions):
        sums[pid]["received"] += -amount if reversal else amount
    for pid, amount in rows(sa.select(Allocation.pool_id, Allocation.amount)):
        sums[pid]["committed"] += amount
    releases = sa.select(Allocation.pool_id, Release.amount).join(
        Allocation, Allocation.id == Release.allocation_id
    )
    for pid, amount in rows(releases):
        sums[pid]["committed"] -= amount
    payments = sa.select(
        Disbursement.pool_id,
        Disbursement.amount,
        Disbursement.fee_amount,
        Disbursement.exchange_difference,
        Disbursement.reversal_of_id,
    )
    for pid, amount, fee, difference, reversal in rows(payments):
        sign = -1 if reversal else 1
        sums[pid]["disbursed"] += sign * amount
        sums[pid]["fees"] += sign * fee
        sums[pid]["exchange_differences"] += sign * difference
    for fig in sums.values():
        for key in FIGURES:
            fig[key] = quantize(fig[key])
        fig["available"] = (
            fig["received"] - fig["committed"] - fig["fees"] - fig["exchange_differences"]
        )
    return sums


def check_ledger(sums=None):
    """Return a list of broken ledger invariants, each naming the rows; empty when healthy.
    ``sums``: the pools' sums of rows, when the caller has added them up already."""
    problems = []
    problems += _check_seals()
    figures = pool_figures()
    for pid, fig in (sums if sums is not None else sums_of_rows()).items():
        differ = [k for k in FIGURES if fig[k] != figures[pid][k]]
        if differ:
            problems.append(
                f"pool {pid}: the sums of its rows differ from its figures in {', '.join(differ)}"
            )
    for pid, fig in figures.items():
        if fig["available"] < 0:
            problems.append(
                f"pool {pid} is below zero: committed {fig['committed']} "
                f"exceeds received {fig['received']}"
            )
    problems += _check_allocations()
    problems += _check_reversals(Disbursement, "disbursement")
    problems += _check_reversals(Contribution, "contribution")
    problems += _check_ties()
    problems += _check_costs()
    problems += _check_closed_grants()
    problems += _check_instalments()
    problems += _check_stipend_months()
    problems += _check_deliveries()
    problems += _check_grant_totals()
    problems += _check_caps()
    table = _Table()
    problems += _check_second_persons(table)
    problems += _check_approvals(table)
    return problems


class _Table:
    """The fund's rate table in memory for `check`: every entry by id, and the entries
    that count by pair in order, to find the latest on or before a day as ``table_rate``
    does (today's table: only for payments from before each kept what it was weighed
    against)."""

    def __init__(self):
        self.entries = {}
        self.pairs = {}
        for entry in db.session.execute(
            sa.select(
                ExchangeRate.id,
                ExchangeRate.fund_id,
                ExchangeRate.on_date,
                ExchangeRate.base,
                ExchangeRate.quote,
                ExchangeRate.rate,
                ExchangeRate.set_by_id,
                ExchangeRate.confirmed_at,
                ExchangeRate.counts().label("counts"),
            ).order_by(ExchangeRate.on_date, ExchangeRate.id)
        ):
            self.entries[entry.id] = entry
            if entry.counts:
                key = (entry.fund_id, frozenset((entry.base, entry.quote)))
                self.pairs.setdefault(key, []).append(entry)

    def latest(self, fund_id, paid, quote, on):
        """The entry that counts from ``paid`` to ``quote`` on the day ``on``, or None."""
        rows = self.pairs.get((fund_id, frozenset((paid, quote))), [])
        at = bisect.bisect_right(rows, (on, float("inf")), key=lambda r: (r.on_date, r.id))
        return rows[at - 1] if at else None

    @staticmethod
    def rate(entry, paid):
        """The ``entry``'s rate read from ``paid``, or None without an entry."""
        if entry is None:
            return None
        rate = Decimal(entry.rate)
        return rate if entry.base == paid else (Decimal(1) / rate).quantize(RATE_PLACES)

    @staticmethod
    def alone(entry, user_id, at):
        """Whether ``entry`` was ``user_id``'s alone at the time ``at``."""
        return (
            entry is not None
            and entry.set_by_id == user_id
            and not confirmed_before(entry.confirmed_at, at)
        )


def _check_second_persons(table=None):
    """A payment beyond a bound one person may not pass was confirmed by a second person:
    finance or a manager of the fund, not the one who entered it. The bounds: a rate beyond
    the tolerance of the table rate of its day (or any rate without one), a table entry
    that was the payer's alone, a fee or an exchange difference above its share. Each is
    judged against what the payment kept of its day (its table rate and entry, the limits
    then in force, sealed); a payment from before they were kept, against today's table
    and settings."""
    table = table or _Table()
    in_force = Bounds.in_force()
    confirmer = sa.orm.aliased(User)
    rows = db.session.execute(
        sa.select(
            Disbursement.id,
            Disbursement.amount,
            Disbursement.fee_amount,
            Disbursement.exchange_difference,
            Disbursement.currency_paid,
            Disbursement.fx_rate,
            Disbursement.paid_on,
            Disbursement.recorded_by_id,
            Disbursement.confirmed_by_id,
            Disbursement.created_at,
            Disbursement.table_rate,
            Disbursement.rate_entry_id,
            Disbursement.rate_tolerance_percent,
            Disbursement.max_fee_percent,
            Disbursement.max_difference_percent,
            Pool.fund_id,
            Pool.currency,
            confirmer.role,
            confirmer.fund_id.label("confirmer_fund"),
        )
        .join(Pool, Pool.id == Disbursement.pool_id)
        .outerjoin(confirmer, confirmer.id == Disbursement.confirmed_by_id)
        .where(Disbursement.reversal_of_id.is_(None))
        .order_by(Disbursement.id)
    ).yield_per(5000)
    problems = []
    for row in rows:
        bounds = Bounds.kept_on(row)
        kept = bounds is not None
        if not kept:
            # Booked before payments kept these: judged as then, against today's table and
            # settings, by the rules of then (a rate of one's own was no bound yet).
            entry = table.latest(row.fund_id, row.currency_paid, row.currency, row.paid_on)
            reference, bounds = table.rate(entry, row.currency_paid), in_force
        else:
            entry = table.entries.get(row.rate_entry_id)
            reference = row.table_rate
            if entry is not None and table.rate(entry, row.currency_paid) != reference:
                problems.append(
                    f"disbursement {row.id}: its table rate {reference} is not that of the "
                    f"table entry {entry.id} it names"
                )
        foreign = row.currency_paid != row.currency
        beyond = foreign and rate_beyond_tolerance(row.fx_rate, reference, bounds.tolerance)
        own = foreign and kept and table.alone(entry, row.recorded_by_id, row.created_at)
        passed = bounds_passed(
            row.amount, row.fee_amount, row.exchange_difference, bounds, beyond, own
        )
        if passed and row.confirmed_by_id is None:
            problems.append(
                f"disbursement {row.id} is beyond {', '.join(passed)} bounds and no second "
                "person confirmed it"
            )
        if row.confirmed_by_id is not None and (
            row.confirmed_by_id == row.recorded_by_id
            or row.role not in SECOND_PERSONS
            or row.confirmer_fund != row.fund_id
        ):
            problems.append(
                f"disbursement {row.id} was confirmed by user {row.confirmed_by_id}, who may "
                "not confirm it"
            )
    return problems


def _check_approvals(table=None):
    """A grant is committed on what its approvals chose: the split of pools each recorded,
    and, approved by one manager alone, an amount worth less than the four-eyes threshold
    then in force, weighed at a table rate that manager did not record alone. Each
    single-manager approval is weighed again from what it kept (its worth, the table
    entry and the threshold); one from before approvals kept them is not."""
    table = table or _Table()
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
        worth = _cost(decision.amount, table.rate(entry, decision.currency))
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


def _check_costs():
    """A payment's commitment share plus its exchange difference is what it cost the pool:
    the amount paid at the frozen rate."""
    rows = db.session.execute(
        sa.select(
            Disbursement.id,
            Disbursement.amount,
            Disbursement.exchange_difference,
            Disbursement.amount_paid,
            Disbursement.fx_rate,
        ).where(Disbursement.reversal_of_id.is_(None))
    )
    return [
        f"disbursement {pid}: amount {amount} + exchange difference {diff} is not "
        f"{paid} at rate {rate}"
        for pid, amount, diff, paid, rate in rows
        if amount + diff != _cost(paid, rate)
    ]


def _cost(paid, rate):
    """``paid`` at ``rate``, or None when the rate converts to no amount at all (a rate
    put in behind the application): the check reports the row, it does not fail."""
    try:
        return convert(paid, rate)
    except ConversionError:
        return None


def _check_closed_grants():
    """A closed grant commits nothing more than it paid: the rest went back to the pools."""
    released, paid = _allocation_sums()
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


def _check_deliveries():
    """A bank's report is matched to a payment, never to a reversal."""
    rows = db.session.execute(
        sa.select(Delivery.id)
        .join(Disbursement, Disbursement.id == Delivery.disbursement_id)
        .where(Disbursement.reversal_of_id.is_not(None))
    ).scalars()
    return [f"delivery {did} is matched to a reversal" for did in rows]


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


def _check_seals():
    problems = []
    for model in (Contribution, Allocation, Release, Disbursement):
        table = model.__tablename__
        fields = audit.sealed_fields(table)
        query = sa.select(model.id, model.seal, *(getattr(model, f) for f in fields))
        for row in db.session.execute(query).yield_per(5000):
            values = dict(zip(fields, row[2:], strict=True))
            if audit.seal(table, values) != row.seal:
                problems.append(
                    f"{table} row {row.id} was altered in the database "
                    "(its seal does not match its amounts)"
                )
    return problems


def _allocation_sums():
    """Subqueries of released and paid (net of reversals) per allocation."""
    released = (
        sa.select(Release.allocation_id, summed(Release.amount).label("released"))
        .group_by(Release.allocation_id)
        .subquery()
    )
    paid = (
        sa.select(Disbursement.allocation_id, summed(signed_amount(Disbursement)).label("paid"))
        .group_by(Disbursement.allocation_id)
        .subquery()
    )
    return released, paid


def _check_allocations():
    """No grant paid beyond what its allocation commits, net of releases."""
    released, paid = _allocation_sums()
    rows = db.session.execute(
        sa.select(
            Allocation.id,
            Allocation.grant_id,
            Allocation.amount,
            sa.func.coalesce(released.c.released, 0),
            sa.func.coalesce(paid.c.paid, 0),
        )
        .outerjoin(released, released.c.allocation_id == Allocation.id)
        .outerjoin(paid, paid.c.allocation_id == Allocation.id)
    )
    problems = []
    for alloc_id, grant_id, amount, rel, pd in rows:
        rel, pd = quantize(rel), quantize(pd)
        if pd + rel > amount:
            problems.append(
                f"grant {grant_id} is paid beyond its commitment on allocation "
                f"{alloc_id}: paid {pd} + released {rel} > committed {amount}"
            )
        if pd < 0:
            problems.append(f"allocation {alloc_id} has more reversed than paid")
    return problems


def _check_reversals(model, name):
    """A reversal reverses an original row (not a reversal), by no more than it was."""
    original = sa.orm.aliased(model)
    query = sa.select(model.id, model.amount, original.amount, original.reversal_of_id).join(
        original, original.id == model.reversal_of_id
    )
    if model is Disbursement:
        query = query.add_columns(model.allocation_id != original.allocation_id)
    problems = []
    for row in db.session.execute(query):
        rev_id, rev_amount, orig_amount, orig_reversal = row[:4]
        if orig_reversal is not None:
            problems.append(f"{name} {rev_id} reverses a reversal")
        if rev_amount > orig_amount:
            problems.append(
                f"{name} {rev_id} reverses more ({rev_amount}) than the original ({orig_amount})"
            )
        if len(row) > 4 and row[4]:
            problems.append(f"{name} {rev_id} is not on the allocation it reverses")
    return problems


def _check_ties():
    """Every disbursement belongs to its grant's allocation and to that allocation's pool."""
    rows = (
        db.session.execute(
            sa.select(Disbursement.id)
            .join(Allocation, Allocation.id == Disbursement.allocation_id)
            .join(Grant, Grant.id == Disbursement.grant_id)
            .where(
                sa.or_(
                    Allocation.grant_id != Disbursement.grant_id,
                    Allocation.pool_id != Disbursement.pool_id,
                )
            )
        )
        .scalars()
        .all()
    )
    return [f"disbursement {d} is not tied to its grant's allocation and pool" for d in rows]
