"""Grants, the split of pools an approval proposed, and payment plans.

The money a grant commits from its pools, and gives back, is in ledger rows
(allocations and releases, :mod:`hrdfund.ledger.models`).
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    INTERNAL,
    col,
    created_at,
    currency,
    currency_check,
    fk,
    money,
    pk,
    uid_column,
)
from ..core.columns import (
    enum as enum_col,
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
