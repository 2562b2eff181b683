"""A ledger row and its reversal, found for a page of rows at once."""

import sqlalchemy as sa

from ..core.extensions import db


def reversal_partners(model, rows, dated):
    """For ledger ``rows`` of ``model`` (payments or contributions): map each row's id to
    its partner, ``{"day": ..., "uid": ...}``: for a row that was reversed, its reversal
    (with the ``amount`` it took back, which may be a part); for a reversal row, the row it
    reverses. ``dated`` is the model's date column. Two queries, whatever the number of
    rows."""
    ids = [row.id for row in rows]
    originals = [row.reversal_of_id for row in rows if row.reversal_of_id]
    found = {}
    if ids:
        for original, day, uid, amount in db.session.execute(
            sa.select(model.reversal_of_id, dated, model.uid, model.amount).where(
                model.reversal_of_id.in_(ids)
            )
        ):
            found[original] = {"day": day, "uid": uid, "amount": amount}
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
