"""The append-only, hash-chained audit log: one chain per fund, and one of the instance."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

from ..core.columns import INTERNAL, Text, col, pk
from ..core.extensions import db


class AuditEvent(db.Model):
    """One entry. Refers to people by pseudonym and to objects by opaque id only."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),)
    #: Order of appends across every chain; the chains' order is ``seq``, not this.
    id: Mapped[int] = pk()
    #: The chain the entry belongs to: its fund's id, 0 for the instance's own chain.
    chain = col(sa.Integer, INTERNAL, nullable=False)
    #: Sequence number in its chain, without gaps, starting at 1.
    seq = col(sa.Integer, INTERNAL, nullable=False)
    at = col(sa.DateTime, INTERNAL, nullable=False)
    #: Pseudonymous actor ("u12", "system"), never a login or name.
    actor = col(sa.String(20), INTERNAL, text=Text.GENERATED, nullable=False)
    action = col(sa.String(60), INTERNAL, text=Text.CODE, nullable=False, index=True)
    object_type = col(sa.String(40), INTERNAL, text=Text.CODE, nullable=True)
    #: An opaque id (a row's uid or number), never a name. Indexed: a case page lists the
    #: entries about the case and its rows.
    object_id = col(sa.String(40), INTERNAL, text=Text.UID, nullable=True, index=True)
    #: Canonical JSON with no personal data; amounts as strings.
    payload = col(sa.Text, INTERNAL, text=Text.GENERATED, nullable=False)
    key_id = col(sa.String(8), INTERNAL, text=Text.HASH, nullable=False)
    prev_hash = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    hash = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
