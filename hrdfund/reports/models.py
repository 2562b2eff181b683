"""What donor reports issued about people: the one thing reports write."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

from ..core.columns import (
    INTERNAL,
    Encrypted,
    Text,
    col,
    created_at,
    encrypted_column,
    fk,
    pk,
    uid_column,
)
from ..core.extensions import db


class IssuedFigures(db.Model):
    """What the donor reports of one pool say about people over one ended period (the
    suppressed tables, the CSV's lines by grant, the counts behind timeliness and
    outcomes), as the first report of that period issued them. Every later report of the
    period says the same, whatever is recorded, withdrawn or purged afterwards; rows are
    only ever added. No names or words: ids, codes, counts and amounts."""

    __tablename__ = "issued_figures"
    __table_args__ = (sa.UniqueConstraint("pool_id", "year", "period"),)

    id: Mapped[int] = pk()
    pool_id = fk("pools.id", index=False)
    year = col(sa.Integer, INTERNAL, nullable=False)
    #: The period's code: 2026, 2026-Q1 or 2026-03.
    period = col(sa.String(7), INTERNAL, text=Text.CODE, nullable=False)
    #: Canonical JSON of the figures (see ``reports.data.Issue``).
    figures = col(sa.Text, INTERNAL, text=Text.GENERATED, nullable=False)
    created_at = created_at()


class VarianceNote(db.Model):
    """A manager's explanation of a variance of 10% or more between what a pool committed
    and what it paid, for one line (a category, or the total) of budget against actual in
    one ended period; the donor's report of that period prints it. Written again, the
    newest note of the line is the one shown; rows are only ever added. The words are a
    manager's, written for the donor, and may still name someone by mistake: encrypted."""

    __tablename__ = "variance_notes"

    id: Mapped[int] = pk()
    uid = uid_column()
    pool_id = fk("pools.id")
    #: The period's code: 2026, 2026-Q1 or 2026-03.
    period = col(sa.String(7), INTERNAL, text=Text.CODE, nullable=False)
    #: The line: a kind of support's code, or "total".
    line = col(sa.String(32), INTERNAL, text=Text.CODE, nullable=False)
    _text = encrypted_column("text", nullable=False)
    text = Encrypted()
    written_by_id = fk("users.id")
    created_at = created_at()
