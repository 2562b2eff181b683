"""The invariants of the ledger's own rows that `flask hrdfund check` verifies: every
row's seal, each pool's figures against the sums of its rows added up a second way, no
pool below zero, no allocation paid beyond what it commits, reversals that reverse an
original by no more than it was, payments tied to their allocation and pool, a payment's
cost at its frozen rate, and bank reports matched to payments, never to reversals.

The rules that also read grants, decisions and the rate table live with those features
(:mod:`hrdfund.grants.checks`, :mod:`hrdfund.disbursements.checks`, which runs them all).
"""

from decimal import Decimal

import sqlalchemy as sa

from .. import audit
from ..core.extensions import db
from ..core.money import ConversionError, convert, quantize
from ..core.sql import alias, signed_amount, summed
from .balances import every_pool_id, pool_figures
from .models import Allocation, Contribution, Delivery, Disbursement, Release
from .seals import SEALED_MODELS

ZERO = Decimal("0.00")


#: The figures `check` recomputes row by row and the pool page shows.
FIGURES = ("received", "committed", "disbursed", "fees", "exchange_differences", "available")


def sums_of_rows():
    """Each pool's figures added up here, row by row in Python, from the ledger tables
    alone: a second computation, independent of the grouped SQL of `pool_figures`."""
    sums = {pid: dict.fromkeys(FIGURES, ZERO) for pid in every_pool_id()}

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


def check_rows(sums=None):
    """Broken invariants of the ledger's rows alone, each naming the rows; empty when
    healthy. ``sums``: the pools' sums of rows, when the caller has added them up already."""
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
    return problems


def _check_seals():
    problems = []
    for model in SEALED_MODELS:
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


def allocation_sums():
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
    released, paid = allocation_sums()
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
    """A reversal reverses an original row (not a reversal), on its allocation; all the
    reversals of a row (a payment may be reversed in several parts) take back no more
    than it was: its amount, and for a payment what was paid and its fee."""
    original = alias(model, "check: reversed original")
    columns = [model.id, original.id, original.reversal_of_id, model.amount, original.amount]
    if model is Disbursement:
        columns += [
            model.amount_paid,
            original.amount_paid,
            model.fee_amount,
            original.fee_amount,
            model.allocation_id != original.allocation_id,
        ]
    query = sa.select(*columns).join(original, original.id == model.reversal_of_id)
    problems = []
    # Per original row: what its reversals took back in all, and what it was, by figure.
    totals = {}
    for row in db.session.execute(query.order_by(model.id)):
        rev_id, orig_id, orig_reversal = row[:3]
        if orig_reversal is not None:
            problems.append(f"{name} {rev_id} reverses a reversal")
        pairs = {"amount": row[3:5]}
        if model is Disbursement:
            pairs.update(paid=row[5:7], fee=row[7:9])
            if row[9]:
                problems.append(f"{name} {rev_id} is not on the allocation it reverses")
        figures = totals.setdefault(orig_id, {})
        for label, (back, was) in pairs.items():
            figures[label] = (figures.get(label, (0, was))[0] + back, was)
    for orig_id, figures in totals.items():
        for label, (back, was) in figures.items():
            if back > was:
                problems.append(
                    f"{name} {orig_id} is reversed by more than it was: {label} {back} of {was}"
                )
    return problems


def _check_ties():
    """Every disbursement belongs to its grant's allocation and to that allocation's pool."""
    rows = (
        db.session.execute(
            sa.select(Disbursement.id)
            .join(Allocation, Allocation.id == Disbursement.allocation_id)
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
        if amount + diff != paid_at(paid, rate)
    ]


def paid_at(paid, rate):
    """``paid`` at ``rate``, or None when the rate converts to no amount at all (a rate
    put in behind the application): the check reports the row, it does not fail."""
    try:
        return convert(paid, rate)
    except ConversionError:
        return None


def check_deliveries():
    """A bank's report is matched to a payment, never to a reversal."""
    rows = db.session.execute(
        sa.select(Delivery.id)
        .join(Disbursement, Disbursement.id == Delivery.disbursement_id)
        .where(Disbursement.reversal_of_id.is_not(None))
    ).scalars()
    return [f"delivery {did} is matched to a reversal" for did in rows]
