"""Each pool's money by day, kept as the ledger's rows are written: what came in, was
committed, released, paid and what paying cost, on each day anything moved.

The pools' charts (the dashboard's and each pool's page) read a pool's figures at the start
of each month from these few rows (one per pool and day with money moving) instead of adding
up every contribution, commitment, release and payment the pool ever had. A ledger row is
final once written, so a day's sums only ever grow by the rows added: each insert of a
contribution, allocation, release or payment adds its amount to its pool's day in the same
flush, whichever service writes it, and the transaction keeps both or neither.

``rebuild`` adds the days up again from the rows (`flask hrdfund rebuild-figures`; after
rows written around the application, as the demo data's bulk loading does);
``differences`` compares the kept days with a recount and `flask hrdfund check` reports
any day that differs.
"""

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped

from ..core.columns import INTERNAL, col, fk, kept_sum
from ..core.extensions import db
from ..core.sql import summed
from .models import Allocation, Contribution, Disbursement, Release

ZERO = Decimal("0.00")
#: The sums kept for each pool and day, in the pool's currency.
SUMS = ("received", "allocated", "released", "paid", "costs")


class PoolDay(db.Model):
    """A pool's money moved on one day, in the pool's currency: received (net of reversed
    contributions), committed to grants, released from them, paid (net of reversals) and
    what paying cost (fees and exchange differences, net of reversals)."""

    __tablename__ = "pool_days"
    pool_id: Mapped[int] = fk("pools.id", index=False, primary_key=True)
    day = col(sa.Date, INTERNAL, primary_key=True)
    received = kept_sum(default=ZERO)
    allocated = kept_sum(default=ZERO)
    released = kept_sum(default=ZERO)
    paid = kept_sum(default=ZERO)
    costs = kept_sum(default=ZERO)


def _signed(row, amount):
    """``amount`` as the row adds it: taken away for a reversal row (never "-0.00")."""
    return ZERO - amount if row.reversal_of_id is not None else amount


def _add(connection, pool_id, day, **amounts):
    """Add ``amounts`` to the pool's day, making the row when it is the day's first."""
    dialect = connection.dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(PoolDay.__table__)
    values = {name: amounts.get(name, ZERO) for name in SUMS}
    statement = insert.values(pool_id=pool_id, day=day, **values).on_conflict_do_update(
        index_elements=["pool_id", "day"],
        set_={name: PoolDay.__table__.c[name] + insert.excluded[name] for name in amounts},
    )
    connection.execute(statement)


def _contribution(_mapper, connection, row):
    _add(connection, row.pool_id, row.received_on, received=_signed(row, row.amount))


def _allocation(_mapper, connection, row):
    _add(connection, row.pool_id, row.created_at.date(), allocated=row.amount)


def _release(_mapper, connection, row):
    pool_id = connection.execute(
        sa.select(Allocation.pool_id).where(Allocation.id == row.allocation_id)
    ).scalar_one()
    _add(connection, pool_id, row.created_at.date(), released=row.amount)


def _payment(_mapper, connection, row):
    _add(
        connection,
        row.pool_id,
        row.paid_on,
        paid=_signed(row, row.amount),
        costs=_signed(row, row.fee_amount + row.exchange_difference),
    )


_installed = False


def install():
    """Keep the days as ledger rows are inserted, through the ORM, by any service.
    Calling it again changes nothing."""
    global _installed
    if _installed:
        return
    for model, keep in (
        (Contribution, _contribution),
        (Allocation, _allocation),
        (Release, _release),
        (Disbursement, _payment),
    ):
        sa.event.listen(model, "after_insert", keep)
    _installed = True


def _day(column):
    """SQL: the UTC day of a time column, as the Date columns store it."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(column, sa.Date)
    return sa.func.date(column)


def counted():
    """SQL: each pool's sums by day, added up from the ledger's rows: (pool_id, day, and
    the SUMS in order)."""
    sign = sa.case((Disbursement.reversal_of_id.is_(None), 1), else_=-1)
    contribution_sign = sa.case((Contribution.reversal_of_id.is_(None), 1), else_=-1)
    zero = sa.literal(0)
    parts = sa.union_all(
        sa.select(
            Contribution.pool_id.label("pool_id"),
            Contribution.received_on.label("day"),
            (contribution_sign * Contribution.amount).label("received"),
            zero.label("allocated"),
            zero.label("released"),
            zero.label("paid"),
            zero.label("costs"),
        ),
        sa.select(
            Allocation.pool_id,
            _day(Allocation.created_at),
            zero,
            Allocation.amount,
            zero,
            zero,
            zero,
        ),
        sa.select(
            Allocation.pool_id, _day(Release.created_at), zero, zero, Release.amount, zero, zero
        ).join(Allocation, Allocation.id == Release.allocation_id),
        sa.select(
            Disbursement.pool_id,
            Disbursement.paid_on,
            zero,
            zero,
            zero,
            sign * Disbursement.amount,
            sign * (Disbursement.fee_amount + Disbursement.exchange_difference),
        ),
    ).subquery()
    return sa.select(
        parts.c.pool_id, parts.c.day, *(summed(parts.c[name]).label(name) for name in SUMS)
    ).group_by(parts.c.pool_id, parts.c.day)


def _rows(query):
    """{(pool id, day as an ISO date): (sums...)} of ``query``'s rows, in cents."""
    found = {}
    for pool_id, day, *sums in db.session.execute(query):
        amounts = tuple(Decimal(str(v)).quantize(Decimal("0.01")) for v in sums)
        if any(amounts):
            found[(pool_id, str(day)[:10])] = amounts
    return found


def differences():
    """Each pool's day whose kept sums are not those added up from the rows, as words; empty
    when every kept figure is right."""
    kept = _rows(sa.select(PoolDay.pool_id, PoolDay.day, *(PoolDay.__table__.c[n] for n in SUMS)))
    recount = _rows(counted())
    problems = []
    for key in sorted(set(kept) | set(recount)):
        if kept.get(key) != recount.get(key):
            problems.append(
                f"pool {key[0]} on {key[1]}: kept {kept.get(key)}, added up {recount.get(key)}"
                " (flask hrdfund rebuild-figures adds them up again)"
            )
    return problems


def rebuild():
    """Add every pool's days up again from the ledger's rows; returns how many days."""
    db.session.execute(sa.delete(PoolDay))
    rows = [
        {"pool_id": pool_id, "day": date.fromisoformat(day), **dict(zip(SUMS, sums, strict=True))}
        for (pool_id, day), sums in _rows(counted()).items()
    ]
    if rows:
        db.session.execute(sa.insert(PoolDay), rows)
    return len(rows)
