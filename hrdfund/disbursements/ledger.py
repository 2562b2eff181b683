"""Pool figures as sums over ledger rows, and the ledger invariants `check` verifies.

Every query here is grouped, so the number of queries does not grow with the rows.
"""

from decimal import Decimal

import sqlalchemy as sa

from .. import audit
from ..columns import new_uid
from ..extensions import db
from ..grants.models import Allocation, Grant, Release
from ..grants.services import pool_commitments, signed_amount, summed
from ..money import quantize
from ..pools.models import Contribution, Pool
from .models import Disbursement

ZERO = Decimal("0.00")


def pool_figures(pool_ids=None):
    """Map pool id -> received, committed, disbursed, fees, available, outstanding."""
    ids = (
        pool_ids if pool_ids is not None else db.session.execute(sa.select(Pool.id)).scalars().all()
    )

    def grouped(query, key):
        query = query.where(key.in_(ids)).group_by(key)
        return {row[0]: quantize(row[1]) for row in db.session.execute(query)}

    commitments = pool_commitments(ids)
    disbursed = grouped(
        sa.select(Disbursement.pool_id, summed(signed_amount(Disbursement))), Disbursement.pool_id
    )
    fees = grouped(
        sa.select(
            Disbursement.pool_id,
            summed(
                sa.case(
                    (Disbursement.reversal_of_id.is_(None), Disbursement.fee_amount),
                    else_=-Disbursement.fee_amount,
                )
            ),
        ),
        Disbursement.pool_id,
    )
    figures = {}
    for pid in ids:
        received, committed = commitments[pid]
        figures[pid] = {
            "received": received,
            "committed": committed,
            "disbursed": disbursed.get(pid, ZERO),
            "fees": fees.get(pid, ZERO),
            "available": received - committed,
            "outstanding": committed - disbursed.get(pid, ZERO),
        }
    return figures


def check_ledger():
    """Return a list of broken ledger invariants, each naming the rows; empty when healthy."""
    problems = []
    problems += _check_seals()
    for pid, fig in pool_figures().items():
        if fig["available"] < 0:
            problems.append(
                f"pool {pid} is below zero: committed {fig['committed']} "
                f"exceeds received {fig['received']}"
            )
    problems += _check_allocations()
    problems += _check_reversals(Disbursement, "disbursement")
    problems += _check_reversals(Contribution, "contribution")
    problems += _check_ties()
    return problems


def _check_seals():
    problems = []
    for model in (Contribution, Allocation, Release, Disbursement):
        table = model.__tablename__
        fields = audit.SEALED_FIELDS[table]
        query = sa.select(model.id, model.seal, *(getattr(model, f) for f in fields))
        for row in db.session.execute(query).yield_per(5000):
            values = dict(zip(fields, row[2:], strict=True))
            if audit.seal(table, values) != row.seal:
                problems.append(
                    f"{table} row {row.id} was altered in the database "
                    "(its seal does not match its amounts)"
                )
    return problems


def _check_allocations():
    """No grant paid beyond what its allocation commits, net of releases."""
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


class LedgerImmutableError(Exception):
    """A past money row was about to be edited; corrections are new reversal rows."""


def _seal_on_insert(_mapper, _connection, target):
    if target.uid is None:
        target.uid = new_uid()
    audit.seal_row(target)


def _refuse_update(_mapper, _connection, target):
    raise LedgerImmutableError(f"{target.__tablename__} rows are never edited")


for _model in (Contribution, Allocation, Release, Disbursement):
    # Every ledger row is sealed as it is written, and never updated afterwards.
    sa.event.listen(_model, "before_insert", _seal_on_insert)
    sa.event.listen(_model, "before_update", _refuse_update)
