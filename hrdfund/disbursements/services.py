"""Services on payments. Each checks its rules, mutates, flushes and audits."""

import sqlalchemy as sa

from .. import audit
from ..columns import utcnow
from ..extensions import db
from .models import Disbursement, Receipt


class AlreadyConfirmedError(Exception):
    """This payment's receipt was confirmed before."""


class NotConfirmableError(Exception):
    """A reversal row, or a payment that was reversed, did not reach anyone."""


def stands(disbursement):
    """True for a payment that is not a reversal and was not reversed."""
    if disbursement.reversal_of_id is not None:
        return False
    reversal = db.session.execute(
        sa.select(Disbursement.id).where(Disbursement.reversal_of_id == disbursement.id)
    ).first()
    return reversal is None


def confirm_receipt(disbursement, actor):
    """Record that the payee side received ``disbursement``; once per payment."""
    if not stands(disbursement):
        raise NotConfirmableError()
    existing = db.session.execute(
        sa.select(Receipt.id).where(Receipt.disbursement_id == disbursement.id)
    ).first()
    if existing is not None:
        raise AlreadyConfirmedError()
    receipt = Receipt(
        disbursement_id=disbursement.id, confirmed_by_id=actor.id, confirmed_at=utcnow()
    )
    db.session.add(receipt)
    db.session.flush()
    audit.record("payment.receipt_confirmed", disbursement, actor=actor)
    return receipt
