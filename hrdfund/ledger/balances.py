"""Balances as sums over ledger rows, never stored totals: a pool's commitments, what it
has available and its figures; a grant's allocation balances; what each instalment's
payments settle.

A pool's figures: received = contributions - contribution reversals; committed =
allocations - releases; costs = payment fees and exchange differences net of their
reversals; available = received - committed - costs. Every query here is grouped, so the
number of queries does not grow with the rows.
"""

from decimal import Decimal

import sqlalchemy as sa

from ..core.extensions import db
from ..core.money import quantize
from ..core.sql import before, day_bucket, signed_amount, summed
from .daily import PoolDay
from .models import Allocation, Contribution, Disbursement, Release

ZERO = Decimal("0.00")

#: Net sums come back from SQLite as floats: half a cent or more counts as paid.
PAID = 0.005


def every_pool_id():
    """Every pool's id. The ledger knows pools as the table its rows point at, through
    their own foreign key, so it reads the ids there without importing the pools feature."""
    pools = next(iter(Contribution.__table__.c.pool_id.foreign_keys)).column.table
    return db.session.execute(sa.select(pools.c.id)).scalars().all()


def pool_commitments(pool_ids, until=None):
    """Map each pool id to (received, committed, costs): contributions net of their
    reversals; allocations net of releases; payment fees and exchange differences net of
    their reversals. With ``until`` (a date), only rows dated before it. Four grouped
    queries, whatever the number of rows."""
    received, committed = _received_committed(pool_ids, until)
    cost = Disbursement.fee_amount + Disbursement.exchange_difference
    costs = _grouped(
        sa.select(
            Disbursement.pool_id,
            summed(sa.case((Disbursement.reversal_of_id.is_(None), cost), else_=-cost)),
        ),
        pool_ids,
        until,
        Disbursement.pool_id,
        Disbursement.paid_on,
    )
    return {pid: (received[pid], committed[pid], costs.get(pid, ZERO)) for pid in pool_ids}


def _grouped(query, pool_ids, until, key, *dated):
    """{pool id: total} of ``query`` (pool id, one sum), kept to ``pool_ids`` and, with
    ``until``, to the rows whose ``dated`` columns fall before it."""
    query = query.where(key.in_(pool_ids))
    if until is not None:
        query = query.where(*(before(column, until) for column in dated))
    query = query.group_by(key)
    return {pid: quantize(total) for pid, total in db.session.execute(query)}


def _received_committed(pool_ids, until):
    """({pool id: received}, {pool id: committed}): contributions net of their reversals,
    allocations net of releases."""
    received = _grouped(
        sa.select(Contribution.pool_id, summed(signed_amount(Contribution))),
        pool_ids,
        until,
        Contribution.pool_id,
        Contribution.received_on,
    )
    allocated = _grouped(
        sa.select(Allocation.pool_id, summed(Allocation.amount)),
        pool_ids,
        until,
        Allocation.pool_id,
        Allocation.created_at,
    )
    released = _grouped(
        sa.select(Allocation.pool_id, summed(Release.amount)).join(
            Release, Release.allocation_id == Allocation.id
        ),
        pool_ids,
        until,
        Allocation.pool_id,
        Release.created_at,
    )
    return (
        {pid: received.get(pid, ZERO) for pid in pool_ids},
        {pid: allocated.get(pid, ZERO) - released.get(pid, ZERO) for pid in pool_ids},
    )


def pool_available(pool_id):
    """What the pool can still commit: received, less commitments, fees and exchange
    differences."""
    received, committed, costs = pool_commitments([pool_id])[pool_id]
    return received - committed - costs


def _net(column):
    """A payment column summed with reversal rows counted negative."""
    return summed(sa.case((Disbursement.reversal_of_id.is_(None), column), else_=-column))


def pool_figures(pool_ids=None, until=None):
    """Map pool id -> received, committed, disbursed, fees, exchange differences, available
    (what can still be committed) and outstanding (committed, not yet paid). With
    ``until`` (a date), as they stood at the start of that day."""
    return _figures(pool_ids if pool_ids is not None else every_pool_id(), until)[0]


def pool_figures_and_payments(pool_id):
    """(The pool's figures as :func:`pool_figures` gives them, how many payment rows it
    has, reversals included): the one statement that adds up every payment of the pool
    counts them too, so a page that shows both reads the rows once."""
    figures, payment_rows = _figures([pool_id], None)
    return figures[pool_id], payment_rows.get(pool_id, 0)


def _figures(ids, until):
    """({pool id: figures}, {pool id: payment rows}) of the pools ``ids``."""
    # The payments' sums are read once, for what was paid, for what paying cost, and for
    # how many rows there are.
    received_of, committed_of = _received_committed(ids, until)
    dated = [] if until is None else [before(Disbursement.paid_on, until)]
    paid, payment_rows = {}, {}
    for pid, rows, *sums in db.session.execute(
        sa.select(
            Disbursement.pool_id,
            sa.func.count(),
            _net(Disbursement.amount),
            _net(Disbursement.fee_amount),
            _net(Disbursement.exchange_difference),
        )
        .where(Disbursement.pool_id.in_(ids), *dated)
        .group_by(Disbursement.pool_id)
    ):
        paid[pid] = [quantize(v) for v in sums]
        payment_rows[pid] = rows
    figures = {}
    for pid in ids:
        received, committed = received_of[pid], committed_of[pid]
        disbursed, fees, differences = paid.get(pid, (ZERO, ZERO, ZERO))
        costs = fees + differences
        figures[pid] = {
            "received": received,
            "committed": committed,
            "disbursed": disbursed,
            "fees": fees,
            "exchange_differences": differences,
            "available": received - committed - costs,
            "outstanding": committed - disbursed,
        }
    return figures, payment_rows


def allocation_balances(grant_id):
    """Map each allocation of the grant, its pool loaded, to (allocation, released, paid):
    pool currency, payments net of their reversals. Two grouped queries."""
    released = dict(
        db.session.execute(
            sa.select(Release.allocation_id, summed(Release.amount))
            .join(Allocation, Allocation.id == Release.allocation_id)
            .where(Allocation.grant_id == grant_id)
            .group_by(Release.allocation_id)
        ).all()
    )
    paid = dict(
        db.session.execute(
            sa.select(Disbursement.allocation_id, summed(signed_amount(Disbursement)))
            .where(Disbursement.grant_id == grant_id)
            .group_by(Disbursement.allocation_id)
        ).all()
    )
    return [
        (a, quantize(released.get(a.id, 0)), quantize(paid.get(a.id, 0)))
        for a in allocations_of(grant_id)
    ]


def allocations_of(grant_id):
    """The grant's allocations, oldest first, with the pool each draws on."""
    return (
        db.session.execute(
            sa.select(Allocation)
            .where(Allocation.grant_id == grant_id)
            .options(sa.orm.joinedload(Allocation.pool))
            .order_by(Allocation.id)
        )
        .scalars()
        .all()
    )


def instalments_paid(grants=None):
    """SQL subquery: per instalment id, what its payments settle net of their reversals,
    in the grant's currency (``paid``), and how many payments it had (``payments``); with
    ``grants`` (a query of grant ids), only their instalments'."""
    share = Disbursement.amount / Allocation.fx_rate
    query = (
        sa.select(
            Disbursement.instalment_id.label("instalment_id"),
            summed(sa.case((Disbursement.reversal_of_id.is_(None), share), else_=-share)).label(
                "paid"
            ),
            sa.func.count(Disbursement.id)
            .filter(Disbursement.reversal_of_id.is_(None))
            .label("payments"),
        )
        .join(Allocation, Allocation.id == Disbursement.allocation_id)
        .where(Disbursement.instalment_id.is_not(None))
        .group_by(Disbursement.instalment_id)
    )
    if grants is not None:
        query = query.where(Disbursement.grant_id.in_(grants))
    return query.subquery()


def grants_paid(grants=None):
    """SQL subquery: per grant id, what its payments settle net of their reversals, in the
    grant's currency (``paid``); with ``grants`` (a query of grant ids), only theirs."""
    share = Disbursement.amount / Allocation.fx_rate
    query = (
        sa.select(
            Disbursement.grant_id.label("grant_id"),
            summed(sa.case((Disbursement.reversal_of_id.is_(None), share), else_=-share)).label(
                "paid"
            ),
        )
        .join(Allocation, Allocation.id == Disbursement.allocation_id)
        .group_by(Disbursement.grant_id)
    )
    if grants is not None:
        query = query.where(Disbursement.grant_id.in_(grants))
    return query.subquery()


def pool_history(pool_ids, days):
    """Map pool id -> one figures dict (received, committed, disbursed, available) for each
    day of ``days`` (in order), as they stood at the start of that day: the same sums as
    :func:`pool_figures`, added up span by span between the days from each pool's money by
    day, kept as the rows are written (``daily.PoolDay``). One grouped query, whatever the
    number of pools, days or rows."""
    if not pool_ids or not days:
        return {pid: [] for pid in pool_ids}

    span = day_bucket(PoolDay.day, days)
    kept = [PoolDay.received, PoolDay.allocated, PoolDay.released, PoolDay.paid, PoolDay.costs]
    rows = db.session.execute(
        sa.select(PoolDay.pool_id, span, *(summed(v) for v in kept))
        .where(PoolDay.pool_id.in_(pool_ids), before(PoolDay.day, days[-1]))
        .group_by(PoolDay.pool_id, span)
    ).all()
    received, allocated, released, paid = {}, {}, {}, {}
    for pid, at, got, alloc, rel, out, cost in rows:
        for found, values in (
            (received, [got]),
            (allocated, [alloc]),
            (released, [rel]),
            (paid, [out, cost]),
        ):
            found.setdefault(pid, [[ZERO] * len(values) for _day in days])[at] = [
                quantize(v) for v in values
            ]

    def standing(spans_of_pool, k):
        """The running sum of value ``k`` at the start of each day."""
        total, points = ZERO, []
        for span in spans_of_pool:
            total += span[k]
            points.append(total)
        return points

    nothing = [[ZERO, ZERO] for _day in days]
    history = {}
    for pid in pool_ids:
        got = standing(received.get(pid, nothing), 0)
        committed = [
            a - r
            for a, r in zip(
                standing(allocated.get(pid, nothing), 0),
                standing(released.get(pid, nothing), 0),
                strict=True,
            )
        ]
        out = standing(paid.get(pid, nothing), 0)
        costs = standing(paid.get(pid, nothing), 1)
        history[pid] = [
            {
                "received": got[i],
                "committed": committed[i],
                "disbursed": out[i],
                "available": got[i] - committed[i] - costs[i],
            }
            for i in range(len(days))
        ]
    return history
