"""The ledger's rows: every row that moves money, appended and never edited.

Contributions bring money into a pool; an allocation commits pool money to a grant and a
release gives uncommitted money back (when a grant closes under budget); a disbursement is
one payment out of an allocation; a delivery is what a bank or provider reported for a
payment; a receipt answer is what the payee side says of a payment (received, received
less, not received: changed by a new answer), and a receipt resolution how finance
resolved an answer reporting a problem. A correction is a reversal row pointing at what it
reverses: a contribution is reversed once, a payment in one or several parts, never past
what it was; the rows are sealed as they are written and refused any edit (see
:mod:`.seals`). Table names are those of the features that first kept them.
"""

import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
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
from ..core.money import quantize


class Contribution(db.Model):
    """Money received into a pool; a correction is a reversal row, never an edit."""

    __tablename__ = "contributions"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("received_amount > 0", name="received_positive"),
        sa.CheckConstraint("fx_rate > 0", name="rate_positive"),
        currency_check("received_currency"),
        sa.CheckConstraint(
            "reversal_of_id IS NULL OR reversal_of_id != id", name="not_self_reversal"
        ),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    pool_id = fk("pools.id")
    #: Amount in the pool's currency.
    amount = money()
    received_amount = money()
    received_currency = currency()
    #: Pool-currency units per unit received (1 when the currencies match).
    fx_rate = rate_col(default=1)
    received_on = col(sa.Date, INTERNAL, nullable=False)
    #: The donor's or the bank's reference for the money (grant letter, bank entry).
    _reference = encrypted_column("reference", FINANCIAL)
    reference = Encrypted()
    #: Set on a reversal row: the contribution it reverses (at most once).
    reversal_of_id = fk("contributions.id", nullable=True, unique=True, index=False)
    #: Why a reversal was recorded.
    _reason = encrypted_column("reason", SENSITIVE)
    reason = Encrypted()
    recorded_by_id = fk("users.id", nullable=True)
    #: HMAC of the money fields under the audit key; `flask hrdfund check` recomputes it.
    seal = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    created_at = created_at()

    pool = relationship("Pool")


class Allocation(db.Model):
    """Money of one pool committed to one grant."""

    __tablename__ = "allocations"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("grant_amount > 0", name="grant_amount_positive"),
        sa.CheckConstraint("fx_rate > 0", name="rate_positive"),
        # A pool's commitments newest first, as its page lists them, with the amount its
        # figures add up (read from the index alone).
        sa.Index("ix_allocations_pool_newest", "pool_id", "created_at", "id", "amount"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    grant_id = fk("grants.id")
    pool_id = fk("pools.id", index=False)
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


class Release(db.Model):
    """Committed money given back to the pool, in the pool's currency."""

    __tablename__ = "releases"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        # The releases newest first, as a pool's page lists its own.
        sa.Index("ix_releases_newest", "created_at", "id"),
    )
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
        # add up, so the sums and counts never read the table, and gives a pool's payments
        # newest first, as its page lists them (by date, then as written).
        sa.Index(
            "ix_disbursements_pool_sums",
            "pool_id",
            "paid_on",
            "id",
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
    #: The payment this row reverses. A payment may be reversed in several parts (a bank
    #: returns some of it, later the payee gives back more), never past its amount.
    reversal_of_id = fk("disbursements.id", nullable=True)
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
    #: The reversals of this payment, oldest first (each takes back a part, or the whole).
    #: Read only: rows are written through ``reversal_of_id``.
    reversals = relationship(
        "Disbursement",
        primaryjoin="Disbursement.id == remote(Disbursement.reversal_of_id)",
        order_by="Disbursement.id",
        viewonly=True,
    )
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id])

    #: The money this row takes off its allocation: amount, fee and exchange difference.
    @property
    def consumed(self):
        return self.amount + self.fee_amount + self.exchange_difference

    @property
    def taken_back(self):
        """What this payment's reversals took back, in the pool's currency."""
        return sum((back.amount for back in self.reversals), start=Decimal("0.00"))

    @property
    def taken_back_paid(self):
        """What this payment's reversals took back, in the currency it was paid in."""
        return sum((back.amount_paid for back in self.reversals), start=Decimal("0.00"))

    @property
    def arrived(self):
        """What of this payment reached the payee side, in the currency it was paid in:
        all of it, less what its reversals took back (nothing left once reversed whole)."""
        return self.amount_paid - self.taken_back_paid

    @property
    def counts_for(self):
        """What is left of this payment (less its reversals) in its grant's currency: the
        part of the grant it settles, at the rate its allocation was approved at."""
        return quantize((self.amount - self.taken_back) / self.allocation.fx_rate)

    @property
    def stands_in_part(self):
        """A payment (not a reversal) of which something reached the payee side: never
        reversed, or reversed in part only."""
        return self.reversal_of_id is None and self.taken_back < self.amount


class ReceiptAnswerKind(enum.StrEnum):
    """What the payee side says of a payment."""

    RECEIVED = "received"
    LESS = "less"
    NOT_RECEIVED = "not_received"


class ReceiptAnswer(db.Model):
    """One answer of the payee side (the case's applicant, or the partner following it) to
        "did this payment reach you?": received, received less (with the amount received, in
        the payment's currency) or not received, with an optional short note. An answer is
        changed by a new row, dated: the latest (by id) stands and none is ever lost. A payment's
    confirmation kept before answers existed is the answer "received" given then, its id
    below zero so that it comes before every answer given since."""

    __tablename__ = "receipt_answers"
    __table_args__ = (
        sa.CheckConstraint("amount_received > 0", name="amount_received_positive"),
        sa.CheckConstraint(
            "(answer = 'less') = (amount_received IS NOT NULL)", name="amount_when_less"
        ),
        sa.CheckConstraint(
            "(amount_received IS NULL) = (currency_received IS NULL)", name="amount_has_currency"
        ),
        currency_check("currency_received"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    disbursement_id = fk("disbursements.id")
    answer = enum_col(ReceiptAnswerKind, "receipt_answer", nullable=False)
    #: What arrived of a payment received short, in the payment's currency.
    amount_received = money(nullable=True)
    currency_received = currency(nullable=True)
    #: The payee side's short note to the fund: never in a donor output.
    _note = encrypted_column("note", SENSITIVE)
    note = Encrypted()
    answered_by_id = fk("users.id", nullable=True)
    answered_at = col(sa.DateTime, INTERNAL, nullable=False)

    disbursement = relationship("Disbursement")
    answered_by = relationship("User", foreign_keys=[answered_by_id])

    @property
    def problem(self):
        """Whether the answer says the money did not all arrive."""
        return self.answer != ReceiptAnswerKind.RECEIVED

    @property
    def missing(self):
        """What did not arrive, in the payment's currency: nothing for a payment received."""
        if self.answer == ReceiptAnswerKind.LESS:
            return self.disbursement.arrived - self.amount_received
        if self.answer == ReceiptAnswerKind.NOT_RECEIVED:
            return self.disbursement.arrived
        return 0


class ResolutionOutcome(enum.StrEnum):
    """How finance resolved a payment the payee side reported short or not received."""

    CONTACTED = "contacted"
    TRACED = "traced"
    CORRECTED = "corrected"
    REVERSED = "reversed"


class ReceiptResolution(db.Model):
    """Finance's resolution of one answer reporting a payment short or not received. It moves
    no money: a correcting payment or a reversal is a ledger row of its own."""

    __tablename__ = "receipt_resolutions"
    id: Mapped[int] = pk()
    uid = uid_column()
    answer_id = fk("receipt_answers.id", unique=True, index=False)
    outcome = enum_col(ResolutionOutcome, "resolution_outcome", nullable=False)
    #: What finance did or found, in its words.
    _note = encrypted_column("note", SENSITIVE)
    note = Encrypted()
    resolved_by_id = fk("users.id")
    resolved_at = col(sa.DateTime, INTERNAL, nullable=False)

    answer = relationship("ReceiptAnswer")
    resolved_by = relationship("User", foreign_keys=[resolved_by_id])


class DeliveryStatus(enum.StrEnum):
    DELIVERED = "delivered"
    SHORT = "short"
    FAILED = "failed"


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

    @property
    def missing(self):
        """What did not arrive, in the payment's currency (a statement's line is in it):
        what stands of the payment less what the line reports arrived."""
        return self.disbursement.arrived - self.reported_amount
