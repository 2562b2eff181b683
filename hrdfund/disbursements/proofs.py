"""Proofs of payment: the one recorded with a payment, or one added when it came (a bank's
transfer confirmation a day later, a receipt signed by the payee). A payment has one proof
at most; a reversal has none of its own."""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.extensions import db
from ..ledger.models import Disbursement
from .bounds import PaymentError
from .models import PaymentProof


def has_proof(payment=Disbursement):
    """SQL: the payment row ``payment`` has a proof, recorded with it or added since."""
    return sa.or_(
        payment.proof_document_id.is_not(None),
        sa.exists().where(PaymentProof.disbursement_id == payment.id),
    )


def proof_document_id(payment):
    """The id of the document proving ``payment``, or None when it has none."""
    if payment.proof_document_id is not None:
        return payment.proof_document_id
    return db.session.execute(
        sa.select(PaymentProof.document_id).where(PaymentProof.disbursement_id == payment.id)
    ).scalar()


def added_proofs(payment_ids):
    """Of the payments ``payment_ids``, those whose proof was added after them: one query."""
    if not payment_ids:
        return set()
    return set(
        db.session.execute(
            sa.select(PaymentProof.disbursement_id).where(
                PaymentProof.disbursement_id.in_(payment_ids)
            )
        ).scalars()
    )


def add_proof(payment, actor, document):
    """Tie the stored ``document`` to ``payment``, recorded without a proof, as its proof.
    Finance of the payment's fund only; never to a reversal, never a second proof (two
    sent at once: the unique payment of the row keeps one, the other is refused)."""
    if actor.role != Role.FINANCE or actor.fund_id != payment.grant.fund_id:
        raise PaymentError(_l("Only finance adds the proof of a payment."))
    if payment.reversal_of_id is not None:
        raise PaymentError(_l("A reversal has no proof of its own: add it to the payment."))
    if not payment.stands_in_part:
        raise PaymentError(_l("This payment came back in full: it needs no proof."))
    if proof_document_id(payment) is not None:
        raise PaymentError(_l("This payment has its proof already."))
    row = PaymentProof(disbursement_id=payment.id, document_id=document.id, added_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    audit.record(
        "payment.proof_added",
        payment,
        actor=actor,
        fund=payment.grant.fund_id,
        document=document.uid,
    )
    return row
