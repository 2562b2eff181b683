"""Payments held for a second person, proofs of payment that came after the payment, and
the bank and provider statements applied.

The payments themselves, their reversals, deliveries and receipts are ledger rows
(:mod:`hrdfund.ledger.models`).
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    FINANCIAL,
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
    percent,
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
from ..ledger.models import Channel, PayeeType


class HoldStatus(enum.StrEnum):
    HELD = "held"
    BOOKED = "booked"
    REFUSED = "refused"


class HoldReason(enum.StrEnum):
    """A bound one person may not pass alone."""

    RATE = "rate"
    #: The rate, or the table rate it is measured against, is one the payer recorded in
    #: the table and nobody else confirmed: no reference at all.
    OWN_RATE = "own_rate"
    FEE = "fee"
    DIFFERENCE = "difference"


class HeldPayment(db.Model):
    """A payment entered by finance beyond a bound one person may not pass alone (a rate
    far from the fund's table, a fee or an exchange difference above its share of the
    payment). It moves no money and reserves nothing: a second finance officer or a
    manager of the fund, never the one who entered it, books it (every rule checked
    again) or refuses it with a reason."""

    __tablename__ = "held_payments"
    __table_args__ = (
        sa.CheckConstraint("amount_paid > 0", name="amount_paid_positive"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("fee_amount >= 0", name="fee_positive"),
        sa.CheckConstraint("fx_rate > 0", name="rate_positive"),
        currency_check("currency_paid"),
        sa.CheckConstraint(
            "(status = 'held') = (decided_by_id IS NULL)", name="decided_unless_held"
        ),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    grant_id = fk("grants.id")
    allocation_id = fk("allocations.id", index=False)
    instalment_id = fk("instalments.id", nullable=True, index=False)
    payee_type = enum_col(PayeeType, "payee_type", nullable=False)
    #: Account, phone or name of the payee: visible to finance only.
    _payee_details = encrypted_column("payee_details", FINANCIAL)
    payee_details = Encrypted()
    channel = enum_col(Channel, "channel", nullable=False)
    amount_paid = money()
    currency_paid = currency()
    #: The payment in the pool's currency, the commitment it settles.
    amount = money()
    #: Pool-currency units per unit paid, as entered (or the table's), frozen for the
    #: second person to see and book.
    fx_rate = rate_col()
    #: The fund's table rate of the day when the payment was entered and its table entry;
    #: empty without one.
    table_rate = rate_col(nullable=True)
    rate_entry_id = fk("exchange_rates.id", nullable=True, index=False)
    #: The limits in force when it was entered (empty on payments held before they were
    #: kept), passed on to the payment it becomes.
    rate_tolerance_percent = percent(nullable=True)
    max_fee_percent = percent(nullable=True)
    max_difference_percent = percent(nullable=True)
    _rate_source = encrypted_column("rate_source", FINANCIAL)
    rate_source = Encrypted()
    rate_set_by_id = fk("users.id", nullable=True, index=False)
    #: Why the rate is far from the table, as finance typed it.
    _rate_reason = encrypted_column("rate_reason", FINANCIAL)
    rate_reason = Encrypted()
    #: Fee and exchange difference in the pool's currency, as they would be booked.
    fee_amount = money(default=0)
    exchange_difference = money(default=0)
    paid_on = col(sa.Date, INTERNAL, nullable=False)
    _reference = encrypted_column("reference", FINANCIAL)
    reference = Encrypted()
    proof_document_id = fk("documents.id", nullable=True, index=False)
    #: The form's one-time key: the same form sent twice holds one payment.
    idempotency_key = col(sa.String(64), INTERNAL, text=Text.UID, nullable=False, unique=True)
    #: The bounds it passes, space-separated (HoldReason values).
    reasons = col(sa.String(40), INTERNAL, text=Text.CODE, nullable=False)
    status = enum_col(
        HoldStatus, "hold_status", nullable=False, default=HoldStatus.HELD, index=True
    )
    recorded_by_id = fk("users.id", index=False)
    decided_by_id = fk("users.id", nullable=True, index=False)
    decided_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: Why the second person refused it.
    _refusal = encrypted_column("refusal", SENSITIVE)
    refusal = Encrypted()
    #: The payment it became once confirmed.
    disbursement_id = fk("disbursements.id", nullable=True, unique=True, index=False)
    created_at = created_at()

    grant = relationship("Grant")
    allocation = relationship("Allocation")
    instalment = relationship("Instalment")
    recorded_by = relationship("User", foreign_keys=[recorded_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    @property
    def why(self):
        """The bounds it passes, as HoldReason members."""
        return [HoldReason(code) for code in self.reasons.split()]


class StatementImport(db.Model):
    """One bank or provider statement, applied as a whole or not at all."""

    __tablename__ = "statement_imports"
    __table_args__ = (sa.UniqueConstraint("fund_id", "digest"),)
    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    #: SHA-256 of the file, so the same statement is not applied twice.
    digest = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    rows = col(sa.Integer, INTERNAL, nullable=False)
    imported_by_id = fk("users.id", nullable=True)
    created_at = created_at()


class PaymentProof(db.Model):
    """The proof of a payment recorded without one, added when it came (a bank's transfer
    confirmation a day later, a receipt signed by the payee). The payment row is final, so
    the proof is a row of its own: one per payment, never replaced, for a payment that had
    none when it was recorded."""

    __tablename__ = "payment_proofs"
    id: Mapped[int] = pk()
    disbursement_id = fk("disbursements.id", unique=True, index=False)
    document_id = fk("documents.id", index=False)
    added_by_id = fk("users.id", index=False)
    created_at = created_at()
