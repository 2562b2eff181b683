"""Disbursements (one payment each), their reversals, and receipts.

A failed, returned or corrected payment is a reversal row pointing at what it reverses;
a row is reversed at most once and never edited.
"""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    ENCRYPTED_CLASSES,
    FINANCIAL,
    INTERNAL,
    SENSITIVE,
    Encrypted,
    Text,
    cipher,
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


class PayeeType(enum.StrEnum):
    DEFENDER = "defender"
    VENDOR = "vendor"
    HOST_ORGANISATION = "host_organisation"
    INTERMEDIARY = "intermediary"


class Channel(enum.StrEnum):
    BANK = "bank"
    MONEY_TRANSFER = "money_transfer"
    MOBILE_MONEY = "mobile_money"
    CASH_THROUGH_PARTNER = "cash_through_partner"
    IN_KIND = "in_kind"


def reference_key(reference):
    """The blind index of a payment reference: references equal as typed, without the
    spaces around them (how statements are read), have equal keys."""
    return cipher().blind_index("payment-reference|" + reference.strip())


class Disbursement(db.Model):
    """One payment out of a grant's allocation, or the reversal of one."""

    __tablename__ = "disbursements"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("amount_paid > 0", name="amount_paid_positive"),
        sa.CheckConstraint("fee_amount >= 0", name="fee_positive"),
        sa.CheckConstraint("fx_rate > 0", name="rate_positive"),
        sa.CheckConstraint(
            "reversal_of_id IS NULL OR reversal_of_id != id", name="not_self_reversal"
        ),
        sa.CheckConstraint(
            "reversal_of_id IS NOT NULL OR idempotency_key IS NOT NULL", name="payment_has_key"
        ),
        currency_check("currency_paid"),
        # A pool's figures are sums over its payments: this index holds every column they
        # add up, so the sums never read the table, and gives a pool's payments by date.
        sa.Index(
            "ix_disbursements_pool_sums",
            "pool_id",
            "paid_on",
            "reversal_of_id",
            "amount",
            "fee_amount",
            "exchange_difference",
        ),
        # The fund's payments, newest first by date: finance's home page reads 50 of them.
        sa.Index("ix_disbursements_newest", "paid_on", "id"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    grant_id = fk("grants.id")
    allocation_id = fk("allocations.id")
    #: The pool paid from (that of the allocation), kept here for fast pool reports.
    pool_id = fk("pools.id", index=False)
    instalment_id = fk("instalments.id", nullable=True)
    payee_type = enum_col(PayeeType, "payee_type", nullable=False)
    #: Account, phone or name of the payee: visible to finance only.
    _payee_details = encrypted_column("payee_details", FINANCIAL)
    payee_details = Encrypted()
    channel = enum_col(Channel, "channel", nullable=False)
    amount_paid = money()
    currency_paid = currency()
    #: The same payment in the pool's currency.
    amount = money()
    #: Pool-currency units per unit paid, frozen with its source.
    fx_rate = rate_col(default=1)
    _rate_source = encrypted_column("rate_source", FINANCIAL)
    rate_source = Encrypted()
    #: Who set the rate: the finance officer who entered it, or who recorded it in the table.
    rate_set_by_id = fk("users.id", nullable=True, index=False)
    #: Why a rate further than the tolerance from the fund's table was used.
    _rate_reason = encrypted_column("rate_reason", FINANCIAL)
    rate_reason = Encrypted()
    #: What the payment was weighed against when it was entered, sealed when set (empty on
    #: reversals and on payments from before these were kept): the fund's table rate of
    #: its day and that table entry (empty without one), and the limits then in force.
    table_rate = rate_col(nullable=True)
    rate_entry_id = fk("exchange_rates.id", nullable=True, index=False)
    rate_tolerance_percent = percent(nullable=True)
    max_fee_percent = percent(nullable=True)
    max_difference_percent = percent(nullable=True)
    #: Transfer fees in the pool's currency, a ledger entry of their own.
    fee_amount = money(default=0)
    #: What the payment cost the pool beyond (positive) or below (negative) the commitment
    #: it settles, because the rate moved since the grant was approved; its own entry.
    exchange_difference = money(default=0, server_default="0")
    paid_on = col(sa.Date, INTERNAL, nullable=False)
    #: The fund's payment reference, matched against bank and provider reports through
    #: its blind index ``reference_key``.
    _reference = encrypted_column("reference", FINANCIAL)
    reference = Encrypted(index=("reference_key", reference_key))
    reference_key = col(sa.String(32), INTERNAL, text=Text.BLIND_INDEX, nullable=True, index=True)
    proof_document_id = fk("documents.id", nullable=True, index=False)
    #: One key per submitted form: a double submission records one payment.
    idempotency_key = col(sa.String(64), INTERNAL, text=Text.UID, nullable=True, unique=True)
    reversal_of_id = fk("disbursements.id", nullable=True, unique=True, index=False)
    #: Why a reversal was recorded.
    _reason = encrypted_column("reason", SENSITIVE)
    reason = Encrypted()
    recorded_by_id = fk("users.id", nullable=True)
    #: The second person (another finance officer or a manager) who confirmed a payment
    #: beyond a bound one person may not pass: a rate far from the table, a fee or an
    #: exchange difference above its share. Sealed when set.
    confirmed_by_id = fk("users.id", nullable=True, index=False)
    seal = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    created_at = created_at()

    grant = relationship("Grant")
    allocation = relationship("Allocation")
    pool = relationship("Pool")
    instalment = relationship("Instalment")
    reversal_of = relationship("Disbursement", remote_side=[id])
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id])

    #: The money this row takes off its allocation: amount, fee and exchange difference.
    @property
    def consumed(self):
        return self.amount + self.fee_amount + self.exchange_difference


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


class Receipt(db.Model):
    """The applicant's confirmation that a payment arrived."""

    __tablename__ = "receipts"
    id: Mapped[int] = pk()
    disbursement_id = fk("disbursements.id", unique=True, index=False)
    confirmed_by_id = fk("users.id", nullable=True)
    confirmed_at = col(sa.DateTime, INTERNAL, nullable=False)


class DeliveryStatus(enum.StrEnum):
    DELIVERED = "delivered"
    SHORT = "short"
    FAILED = "failed"


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


class Delivery(db.Model):
    """What a bank or provider reported for one payment: delivered, short or failed."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.CheckConstraint("reported_amount >= 0", name="reported_not_negative"),
        currency_check("reported_currency"),
    )
    id: Mapped[int] = pk()
    disbursement_id = fk("disbursements.id", unique=True, index=False)
    import_id = fk("statement_imports.id")
    status = enum_col(DeliveryStatus, "delivery_status", nullable=False)
    reported_amount = money()
    reported_currency = currency()
    reported_on = col(sa.Date, INTERNAL, nullable=False)
    created_at = created_at()

    disbursement = relationship("Disbursement")


#: Tables whose rows are final once written: corrections are new rows.
FINAL_TABLES = (
    "contributions",
    "allocations",
    "releases",
    "disbursements",
    "deliveries",
    "receipts",
)

#: On PostgreSQL the database itself refuses to edit or delete a final row, whoever asks.
#: The trigger's arguments name the columns an UPDATE may change: the encrypted ones, which
#: key rotation rewrites and retention empties, and their blind indexes, which retention
#: empties too. An UPDATE changing anything else, or nothing at all, is refused.
FINAL_ROWS_FUNCTION = """
CREATE OR REPLACE FUNCTION hrdfund_rows_are_final() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_NARGS > 0
       AND (to_jsonb(NEW) - TG_ARGV) = (to_jsonb(OLD) - TG_ARGV)
       AND to_jsonb(NEW) <> to_jsonb(OLD) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING MESSAGE =
        TG_TABLE_NAME || ' rows are never edited or deleted; record a reversal instead';
END;
$$ LANGUAGE plpgsql
"""


def writable_columns(table):
    """The columns of a final ``table`` that an UPDATE may change: the encrypted ones and
    their blind indexes."""
    return [
        column.name
        for column in db.metadata.tables[table].columns
        if column.info.get("data_class") in ENCRYPTED_CLASSES
        or column.info.get("text") == Text.BLIND_INDEX
    ]


def final_rows_trigger(table):
    """The statement that makes ``table``'s rows final on PostgreSQL."""
    writable = ", ".join(f"'{name}'" for name in writable_columns(table))
    return (
        f"CREATE TRIGGER {table}_rows_are_final BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION hrdfund_rows_are_final({writable})"
    )


sa.event.listen(
    db.metadata,
    "after_create",
    sa.DDL(FINAL_ROWS_FUNCTION).execute_if(dialect="postgresql"),
)
for _table in FINAL_TABLES:
    sa.event.listen(
        db.metadata,
        "after_create",
        sa.DDL(final_rows_trigger(_table)).execute_if(dialect="postgresql"),
    )
