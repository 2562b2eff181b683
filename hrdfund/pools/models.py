"""Donors, pools with their restrictions, and exchange rates.

A pool's figures are sums over ledger rows (:mod:`hrdfund.ledger`), never stored totals:
received = contributions - contribution reversals; committed = allocations - releases;
available = received - committed - fees and exchange differences (:attr:`Pool.available`).
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    FINANCIAL,
    INTERNAL,
    PUBLIC,
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
from ..ledger.balances import pool_available


class Donor(db.Model):
    """An institution funding one or more pools."""

    __tablename__ = "donors"
    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    name = col(sa.String(160), INTERNAL, text=Text.LABEL, nullable=False)
    created_at = created_at()

    fund = relationship("Fund")
    pools = relationship("Pool", back_populates="donor", order_by="Pool.id")


class Pool(db.Model):
    """Money from one donor, in one currency, with restrictions on its use."""

    __tablename__ = "pools"
    __table_args__ = (
        currency_check("currency"),
        sa.CheckConstraint("cap_per_grant IS NULL OR cap_per_grant > 0", name="cap_positive"),
        sa.CheckConstraint(
            "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="window_ordered"
        ),
        sa.UniqueConstraint("fund_id", "name"),
    )
    NAME_MAX = 120

    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    donor_id = fk("donors.id")
    name = col(sa.String(NAME_MAX), INTERNAL, text=Text.LABEL, nullable=False)
    currency = currency()
    #: Largest amount one grant may draw from this pool; NULL for no cap.
    cap_per_grant = money(nullable=True)
    #: Date window in which grants may draw on the pool.
    starts_on = col(sa.Date, INTERNAL, nullable=True)
    ends_on = col(sa.Date, INTERNAL, nullable=True)
    active = col(sa.Boolean, INTERNAL, nullable=False, default=True)
    created_at = created_at()

    donor = relationship("Donor", back_populates="pools")
    fund = relationship("Fund")
    restrictions = relationship(
        "PoolRestriction", back_populates="pool", cascade="all, delete-orphan"
    )

    @property
    def available(self):
        """What the pool can still commit, summed afresh from the ledger's rows: received,
        less commitments, fees and exchange differences. One pool's figure; a page of many
        pools reads them in one go with :func:`hrdfund.ledger.balances.pool_figures`."""
        return pool_available(self.id)


class RestrictionKind(enum.StrEnum):
    CATEGORY = "category"
    COUNTRY = "country"
    REGION = "region"


class PoolRestriction(db.Model):
    """One allowed value of one kind; a pool with none of a kind allows every value."""

    __tablename__ = "pool_restrictions"
    __table_args__ = (sa.UniqueConstraint("pool_id", "kind", "value"),)
    id: Mapped[int] = pk()
    pool_id = fk("pools.id", ondelete="CASCADE")
    kind = enum_col(RestrictionKind, "restriction_kind", nullable=False)
    #: A category, country code or region name.
    value = col(sa.String(40), PUBLIC, text=Text.CODE, nullable=False)

    pool = relationship("Pool", back_populates="restrictions")


class ExchangeRate(db.Model):
    """A rate the fund maintains: units of ``quote`` per unit of ``base`` on a date.

    An entry that moves its pair further than the rate tolerance from the latest entry
    someone other than its author stands behind (or the first of its pair) is *held*: it
    counts nowhere (no payment, contribution, approval or page reads it) until a second
    rate keeper confirms it. Any entry one person recorded may be confirmed by another:
    until then it is that person's alone, and never a reference for what they do.
    """

    __tablename__ = "exchange_rates"
    __table_args__ = (
        sa.CheckConstraint("rate > 0", name="rate_positive"),
        currency_check("base"),
        currency_check("quote"),
        sa.UniqueConstraint("fund_id", "on_date", "base", "quote"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    on_date = col(sa.Date, INTERNAL, nullable=False)
    base = currency()
    quote = currency()
    rate = rate_col()
    #: Where the rate comes from, as finance typed it.
    _source = encrypted_column("source", FINANCIAL)
    source = Encrypted()
    set_by_id = fk("users.id", nullable=True)
    #: Held for a second rate keeper: it counts once ``confirmed_by_id`` is set.
    needs_second = col(
        sa.Boolean, INTERNAL, nullable=False, default=False, server_default=sa.false()
    )
    #: The second rate keeper (finance or a manager, never its author) who stands behind it.
    confirmed_by_id = fk("users.id", nullable=True, index=False)
    confirmed_at = col(sa.DateTime, INTERNAL, nullable=True)
    created_at = created_at()

    set_by = relationship("User", foreign_keys=[set_by_id])
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id])

    @classmethod
    def counts(cls):
        """SQL: the entry counts as the table's rate (it is not held for a second person)."""
        return sa.or_(cls.needs_second.is_(False), cls.confirmed_by_id.is_not(None))

    def alone(self, user_id, at=None):
        """True when the entry is ``user_id``'s alone (at ``at``, now by default): they
        recorded it and nobody else had confirmed it."""
        return self.set_by_id == user_id and not confirmed_before(self.confirmed_at, at)


def confirmed_before(confirmed_at, at=None):
    """Whether an entry confirmed at ``confirmed_at`` (None: never) was confirmed by the
    time ``at`` (None: now)."""
    return confirmed_at is not None and (at is None or confirmed_at <= at)
