"""Grants, their allocations from pools, releases and payment plans.

An allocation commits pool money to a grant; a release gives uncommitted money back
(when a grant closes under budget). Both are appended, never edited.
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    INTERNAL,
    SENSITIVE,
    Encrypted,
    Text,
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
from ..core.columns import (
    rate as rate_col,
)
from ..core.extensions import db


class GrantStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Grant(db.Model):
    """The approved amount for one application, in the grant's currency."""

    __tablename__ = "grants"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        currency_check("currency"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    application_id = fk("applications.id", unique=True, index=False)
    amount = money()
    currency = currency()
    status = enum_col(GrantStatus, "grant_status", nullable=False, default=GrantStatus.ACTIVE)
    approved_at = col(sa.DateTime, INTERNAL, nullable=False)
    closed_at = col(sa.DateTime, INTERNAL, nullable=True)
    created_at = created_at()

    application = relationship("Application")
    allocations = relationship("Allocation", back_populates="grant", order_by="Allocation.id")
    plan = relationship("PaymentPlan", back_populates="grant", uselist=False)


class Allocation(db.Model):
    """Money of one pool committed to one grant."""

    __tablename__ = "allocations"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("grant_amount > 0", name="grant_amount_positive"),
        sa.CheckConstraint("fx_rate > 0", name="rate_positive"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    grant_id = fk("grants.id")
    pool_id = fk("pools.id")
    #: Amount committed, in the pool's currency.
    amount = money()
    #: The same amount in the grant's currency.
    grant_amount = money()
    #: Pool-currency units per grant-currency unit, frozen when allocating.
    fx_rate = rate_col(default=1)
    created_by_id = fk("users.id", nullable=True)
    seal = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    created_at = created_at()

    grant = relationship("Grant", back_populates="allocations")
    pool = relationship("Pool")


class ApprovalDraw(db.Model):
    """One pool of the split a manager's approval proposed, in the grant's currency: the
    first of two approvals records it, and the second manager starts from it."""

    __tablename__ = "approval_draws"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        currency_check("currency"),
        sa.UniqueConstraint("decision_id", "pool_id"),
    )
    id: Mapped[int] = pk()
    decision_id = fk("decisions.id", ondelete="CASCADE", index=False)
    pool_id = fk("pools.id")
    #: Drawn from the pool, in the grant's currency (the decision's).
    amount = money()
    currency = currency()

    pool = relationship("Pool")


class Release(db.Model):
    """Committed money given back to the pool, in the pool's currency."""

    __tablename__ = "releases"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)
    id: Mapped[int] = pk()
    uid = uid_column()
    allocation_id = fk("allocations.id")
    amount = money()
    #: Why the money went back: the grant's closing, or a payment returned after it.
    _reason = encrypted_column("reason", SENSITIVE)
    reason = Encrypted()
    created_by_id = fk("users.id", nullable=True)
    seal = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    created_at = created_at()

    allocation = relationship("Allocation")


class PlanKind(enum.StrEnum):
    ONE_OFF = "one_off"
    TRANCHES = "tranches"
    STIPEND = "stipend"


class PaymentPlan(db.Model):
    """How a grant is paid: once, in tranches, or as a monthly stipend."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        sa.CheckConstraint(
            "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="period_ordered"
        ),
    )
    id: Mapped[int] = pk()
    grant_id = fk("grants.id", unique=True, index=False)
    kind = enum_col(PlanKind, "plan_kind", nullable=False)
    starts_on = col(sa.Date, INTERNAL, nullable=True)
    ends_on = col(sa.Date, INTERNAL, nullable=True)
    #: For stipends: when the fund reviews whether to renew.
    renewal_review_on = col(sa.Date, INTERNAL, nullable=True)
    #: Hold each next tranche until the applicant's report is in.
    hold_for_report = col(sa.Boolean, INTERNAL, nullable=False, default=False)
    created_at = created_at()

    grant = relationship("Grant", back_populates="plan")
    instalments = relationship("Instalment", back_populates="plan", order_by="Instalment.seq")


class Instalment(db.Model):
    """One planned payment: the single payment, a tranche, or a stipend month."""

    __tablename__ = "instalments"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("seq >= 1", name="seq_positive"),
        currency_check("currency"),
        sa.UniqueConstraint("plan_id", "seq"),
    )
    id: Mapped[int] = pk()
    plan_id = fk("payment_plans.id")
    seq = col(sa.Integer, INTERNAL, nullable=False)
    due_on = col(sa.Date, INTERNAL, nullable=False)
    amount = money()
    currency = currency()
    #: For stipends: the month this payment covers (its first day).
    period_month = col(sa.Date, INTERNAL, nullable=True)

    plan = relationship("PaymentPlan", back_populates="instalments")
