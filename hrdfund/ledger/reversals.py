"""A ledger row and its reversals (a payment may be reversed in several parts), found for a
page of rows at once; what a payment's reversals took back, in SQL."""

import sqlalchemy as sa

from ..core.extensions import db
from ..core.sql import alias, summed
from .models import Disbursement


def taken_back(payment, role):
    """SQL: what the reversals of the payment row ``payment`` (the model or an alias of it)
    took back in all, in the pool's currency; 0 for a payment never reversed. A payment
    may be reversed in several parts. ``role`` names the alias of the reversals, as
    :func:`..core.sql.alias` wants it, for a statement built whole in one place."""
    reversal = alias(Disbursement, role)
    return (
        sa.select(summed(reversal.amount))
        .where(reversal.reversal_of_id == payment.id)
        .scalar_subquery()
    )


def reversal_partners(model, rows, dated):
    """For ledger ``rows`` of ``model`` (payments or contributions): map each row's id to
    its partner, ``{"day": ..., "uid": ...}``: for a row that was reversed, its latest
    reversal, with the ``amount`` all its reversals took back (which may be a part) and
    how many ``parts`` they are (a payment may be reversed in several); for a reversal
    row, the row it reverses. ``dated`` is the model's date column. Two queries, whatever
    the number of rows."""
    ids = [row.id for row in rows]
    originals = [row.reversal_of_id for row in rows if row.reversal_of_id]
    found = {}
    if ids:
        for original, day, uid, amount in db.session.execute(
            sa.select(model.reversal_of_id, dated, model.uid, model.amount)
            .where(model.reversal_of_id.in_(ids))
            .order_by(model.id)
        ):
            earlier = found.get(original, {"amount": 0, "parts": 0})
            found[original] = {
                "day": day,
                "uid": uid,
                "amount": earlier["amount"] + amount,
                "parts": earlier["parts"] + 1,
            }
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
