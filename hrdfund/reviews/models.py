"""The staff side of a case: assessments, confidential notes, decisions, conflicts of
interest and other funders paying for the same need."""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    INTERNAL,
    Encrypted,
    col,
    created_at,
    currency,
    currency_check,
    encrypted_column,
    fk,
    money,
    pk,
    uid_column,
)
from ..core.columns import (
    enum as enum_col,
)
from ..core.extensions import db


class RiskLevel(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Recommendation(enum.StrEnum):
    APPROVE = "approve"
    APPROVE_PARTLY = "approve_partly"
    REJECT = "reject"


class Review(db.Model):
    """A reviewer's assessment and recommendation."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.CheckConstraint(
            "recommended_amount IS NULL OR recommended_amount >= 0", name="amount_positive"
        ),
        currency_check("currency"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    reviewer_id = fk("users.id")
    risk_level = enum_col(RiskLevel, "risk_level", nullable=False)
    recommendation = enum_col(Recommendation, "recommendation", nullable=False)
    recommended_amount = money(nullable=True)
    currency = currency()
    _assessment = encrypted_column("assessment")
    assessment = Encrypted()
    created_at = created_at()

    reviewer = relationship("User")


class NoteKind(enum.StrEnum):
    NOTE = "note"
    PARTNER_CHECK = "partner_check"


class CaseNote(db.Model):
    """A confidential note, visible to staff on the case only: a remark, or what a local
    partner said when the fund checked the case with them."""

    __tablename__ = "case_notes"
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    author_id = fk("users.id")
    kind = enum_col(
        NoteKind, "note_kind", nullable=False, default=NoteKind.NOTE, server_default="note"
    )
    _body = encrypted_column("body")
    body = Encrypted()
    created_at = created_at()

    author = relationship("User")


class Cofunding(db.Model):
    """Another funder paying part of the same need."""

    __tablename__ = "cofundings"
    __table_args__ = (
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="period_ordered"
        ),
        currency_check("currency"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    #: The other funder's name: it can say where the defender is or what they do.
    _funder = encrypted_column("funder")
    funder = Encrypted()
    amount = money(nullable=True)
    currency = currency()
    starts_on = col(sa.Date, INTERNAL, nullable=True)
    ends_on = col(sa.Date, INTERNAL, nullable=True)
    recorded_by_id = fk("users.id", nullable=True)
    created_at = created_at()
