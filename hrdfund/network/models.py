"""A referral of a case, or of a part of its need, from one member fund to another."""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
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
from ..core.columns import enum as enum_col
from ..core.extensions import db
from ..core.support import Category


class ReferralStatus(enum.StrEnum):
    #: Waiting for the other fund's answer.
    PENDING = "pending"
    #: The other fund took the part on: its own linked case is in its queue.
    ACCEPTED = "accepted"
    DECLINED = "declined"
    #: Taken back by the fund that referred it, before an answer.
    WITHDRAWN = "withdrawn"


class Referral(db.Model):
    """Fund A asks fund B to take on a case, or a part of its need (the medical part,
    months 7 to 12 of a stay), sharing only the parts of the case chosen, while the
    defender's consent to referral stands."""

    __tablename__ = "referrals"
    __table_args__ = (
        sa.CheckConstraint("from_fund_id != to_fund_id", name="another_fund"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        currency_check("currency"),
        sa.CheckConstraint(
            "(months_from IS NULL) = (months_to IS NULL)"
            " AND (months_from IS NULL OR (months_from >= 1 AND months_to >= months_from"
            " AND months_to <= 36))",
            name="months_in_order",
        ),
        sa.Index("ix_referrals_to_fund", "to_fund_id", "status"),
    )
    MONTHS_MAX = 36

    id: Mapped[int] = pk()
    uid = uid_column()
    #: The referring fund's case.
    application_id = fk("applications.id")
    from_fund_id = fk("funds.id")
    to_fund_id = fk("funds.id")
    #: The kind of support asked of the other fund (the case's, or a part of it).
    category = enum_col(Category, "referral_category", nullable=False)
    #: The months of a stay or a stipend asked, counted from the first (1 to 36), if any.
    months_from = col(sa.Integer, INTERNAL, nullable=True)
    months_to = col(sa.Integer, INTERNAL, nullable=True)
    amount = money()
    currency = currency()
    #: For a referral between funds on two servers: the referring fund's own identifier
    #: of it, which the answer packet names (set at the fund asked).
    remote_uid = col(sa.String(20), INTERNAL, text=Text.UID, nullable=True)
    #: The months of support the fund asked said it covered, when it is on another server
    #: (its answer packet tells them; a member fund's own plan shows them otherwise).
    covered_from = col(sa.Integer, INTERNAL, nullable=True)
    covered_to = col(sa.Integer, INTERNAL, nullable=True)
    #: When its answer packet told this fund that the fund asked, on another server,
    #: approved its own case for the part (with the months above, when the part has
    #: months); a member fund's own case shows it otherwise.
    supported_at = col(sa.DateTime, INTERNAL, nullable=True)
    share_answers = col(sa.Boolean, INTERNAL, nullable=False, default=False)
    share_documents = col(sa.Boolean, INTERNAL, nullable=False, default=False)
    share_assessment = col(sa.Boolean, INTERNAL, nullable=False, default=False)
    #: Why the case is referred, for the other fund's staff.
    _reason = encrypted_column("reason")
    reason = Encrypted()
    answer_by = col(sa.Date, INTERNAL, nullable=False)
    status = enum_col(
        ReferralStatus, "referral_status", nullable=False, default=ReferralStatus.PENDING
    )
    created_by_id = fk("users.id")
    created_at = created_at()
    answered_by_id = fk("users.id", nullable=True)
    answered_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: For a fund asked on another server: when it made its answer packet (its signed
    #: header's time, within the referral's life), for the time to an answer; the answer
    #: counts here from ``answered_at``, when it was imported.
    answer_made_at = col(sa.DateTime, INTERNAL, nullable=True)
    _decline_reason = encrypted_column("decline_reason")
    decline_reason = Encrypted()
    withdrawn_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: The other fund's own case for the part, made when it accepted.
    linked_application_id = fk("applications.id", nullable=True)

    application = relationship("Application", foreign_keys=[application_id])
    linked_application = relationship("Application", foreign_keys=[linked_application_id])
    from_fund = relationship("Fund", foreign_keys=[from_fund_id])
    to_fund = relationship("Fund", foreign_keys=[to_fund_id])


class FundKey(db.Model):
    """A fund's key pair for packets between servers: X25519 to receive, Ed25519 to sign.

    A member fund's own keys keep their private halves here, encrypted like any sensitive
    field; a partner fund's keys have only their public halves. The newest key not
    retired is the fund's current one; a retired key of the fund still opens packets
    addressed to it, and a partner's retired key still verifies its packets, for
    ``RETIRED_DAYS``."""

    __tablename__ = "fund_keys"
    __table_args__ = (sa.UniqueConstraint("fund_id", "fingerprint", name="uq_fund_key_once"),)
    RETIRED_DAYS = 90

    id: Mapped[int] = pk()
    uid = uid_column()
    fund_id = fk("funds.id")
    #: The 32 bytes of the X25519 public key packets to the fund are encrypted to.
    encryption_public = col(sa.LargeBinary, PUBLIC, nullable=False)
    #: The 32 bytes of the Ed25519 public key the fund's packets are signed with.
    signing_public = col(sa.LargeBinary, PUBLIC, nullable=False)
    #: SHA-256 of both public keys, in hex: what packets name and people read out.
    fingerprint = col(sa.String(64), PUBLIC, text=Text.HASH, nullable=False)
    #: Both private keys (raw, hex), for the fund's own keys only.
    _private = encrypted_column("private")
    private = Encrypted(json=True)
    created_at = created_at()
    retired_at = col(sa.DateTime, INTERNAL, nullable=True)

    fund = relationship("Fund")


class ImportedPacket(db.Model):
    """A packet a member fund imported: its id, so that the same packet from the same
    sender is never imported twice."""

    __tablename__ = "imported_packets"
    __table_args__ = (sa.UniqueConstraint("from_fund_id", "packet_id", name="uq_packet_once"),)

    id: Mapped[int] = pk()
    #: The member fund that imported it.
    fund_id = fk("funds.id")
    #: The partner fund that sent it.
    from_fund_id = fk("funds.id")
    #: The packet's own random id, as its header says.
    packet_id = col(sa.String(32), INTERNAL, text=Text.UID, nullable=False)
    kind = col(sa.String(32), INTERNAL, text=Text.CODE, nullable=False)
    imported_by_id = fk("users.id")
    imported_at = created_at()
