"""The alert outbox: one row per alert and recipient, sent after the transaction commits
and retried by ``flask hrdfund alerts`` until the mail server takes it."""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import INTERNAL, Text, col, created_at, fk, pk
from ..core.columns import enum as enum_col
from ..core.extensions import db


class AlertKind(enum.StrEnum):
    URGENT_CASE = "urgent_case"
    TARGET_NEAR = "target_near"
    APPLICANT_ANSWER = "applicant_answer"
    PAYMENT_HELD = "payment_held"
    #: A first approval waits for a second, different manager.
    SECOND_APPROVAL = "second_approval"
    #: A grant is approved and its money committed: finance may pay.
    GRANT_APPROVED = "grant_approved"
    #: An instalment of a payment plan has fallen due and is not paid.
    INSTALMENT_DUE = "instalment_due"
    #: A stipend's renewal review date has come.
    RENEWAL_REVIEW = "renewal_review"
    #: The payee side reported a payment received short or not received.
    RECEIPT_PROBLEM = "receipt_problem"
    #: Applicant side: the fund wrote, decided or paid on a case; the notice says only
    #: that there is news and where to sign in (``alerts.notices``).
    APPLICANT_NEWS = "applicant_news"


class Alert(db.Model):
    """An alert waiting for, or already handed to, the mail server, or settled unsent."""

    __tablename__ = "alerts"
    id: Mapped[int] = pk()
    user_id = fk("users.id")
    application_id = fk("applications.id", nullable=True, ondelete="CASCADE")
    kind = enum_col(AlertKind, "alert_kind", nullable=False)
    #: Set for alerts that must go out once only (a target about to be missed).
    once_key = col(sa.String(80), INTERNAL, text=Text.GENERATED, nullable=True, unique=True)
    created_at = created_at()
    sent_at = col(sa.DateTime, INTERNAL, nullable=True, index=True)
    attempts = col(sa.Integer, INTERNAL, nullable=False, default=0)
    #: Until when a sending process holds the alert (``outbox.CLAIM``): no other sends it
    #: meanwhile; a process that dies mid-send leaves it to be taken again after.
    claimed_until = col(sa.DateTime, INTERNAL, nullable=True)
    #: When the alert was settled unsent: its recipient had no email address left, or
    #: their account was closed. It is no longer read by any run.
    dropped_at = col(sa.DateTime, INTERNAL, nullable=True)

    application = relationship("Application")
