"""Finance resolves a payment the payee side reported received short or not received.

A report stays on follow-up until finance records how it was resolved, or the payee side
answers again that the payment arrived. Resolving moves no money: a correcting payment or
a reversal is recorded on the case page first, as a ledger row of its own, and the
resolution only says so (and is refused when that row is not there).
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .. import audit
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.forms import PrefixedForm, options
from ..core.money import money_words
from ..ledger.models import (
    Disbursement,
    ReceiptAnswer,
    ReceiptAnswerKind,
    ReceiptResolution,
    ResolutionOutcome,
)
from .receipts import latest_answer

NOTE_MAX = 500

OUTCOME_LABELS = {
    ResolutionOutcome.CONTACTED: _l("Contacted the payee: the matter is resolved"),
    ResolutionOutcome.TRACED: _l("Payment traced: it reached the payee"),
    ResolutionOutcome.CORRECTED: _l("A correcting payment was recorded"),
    ResolutionOutcome.REVERSED: _l("The payment was reversed"),
}


class ResolutionError(Exception):
    """A resolution the rules refuse; the message says why."""


class ResolveForm(PrefixedForm):
    """How finance resolved a payee's report, with a note."""

    PREFIX = "resolve"
    outcome = SelectField(
        _l("How it was resolved"),
        [DataRequired(_l("Choose how it was resolved."))],
        # No outcome chosen in advance: finance says which.
        choices=options([("", "—"), *((o.value, label) for o, label in OUTCOME_LABELS.items())]),
    )
    note = TextAreaField(_l("Note"), [Optional(), Length(max=NOTE_MAX)])


def resolve_receipt_problem(answer, actor, outcome, note=None):
    """Record how ``actor`` resolved ``answer`` (the latest answer on its payment, reporting
    a problem, not resolved before): a reversal or a correcting payment must have been
    recorded already for those outcomes. Returns the resolution."""
    payment = answer.disbursement
    outcome = ResolutionOutcome(outcome)
    latest = latest_answer(payment)
    if latest is None or latest.id != answer.id:
        raise ResolutionError(_l("The payee side answered again since: see its latest answer."))
    if not answer.problem:
        raise ResolutionError(_l("This answer reports no problem to resolve."))
    if db.session.execute(
        sa.select(ReceiptResolution.id).where(ReceiptResolution.answer_id == answer.id)
    ).first():
        raise ResolutionError(_l("This report was resolved already."))
    if outcome == ResolutionOutcome.REVERSED and not _reversed(payment):
        raise ResolutionError(
            _l("This payment is not reversed: record the reversal on the case page first.")
        )
    if (
        outcome == ResolutionOutcome.REVERSED
        and answer.answer == ReceiptAnswerKind.NOT_RECEIVED
        and payment.stands_in_part
    ):
        # Nothing arrived: a part taken back leaves the rest paid out and unaccounted for.
        raise ResolutionError(
            _l(
                "The payee side says nothing arrived, and %(left)s of this payment is not"
                " reversed: reverse the rest on the case page first, or choose another"
                " outcome.",
                left=money_words(payment.amount - payment.taken_back, payment.pool.currency),
            )
        )
    if outcome == ResolutionOutcome.CORRECTED and not _corrected(payment, answer):
        raise ResolutionError(
            _l(
                "No payment was recorded on this case since the report: record the "
                "correcting payment on the case page first."
            )
        )
    row = ReceiptResolution(
        answer_id=answer.id,
        outcome=outcome,
        note=note or None,
        resolved_by_id=actor.id,
        resolved_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "payment.receipt_problem_resolved",
        payment,
        actor=actor,
        fund=payment.grant.fund_id,
        answer=answer.uid,
        outcome=outcome.value,
    )
    return row


def _reversed(payment):
    return (
        db.session.execute(
            sa.select(Disbursement.id).where(Disbursement.reversal_of_id == payment.id)
        ).first()
        is not None
    )


def _corrected(payment, answer):
    """Whether a payment (not a reversal) of the same grant was recorded since ``answer``."""
    return (
        db.session.execute(
            sa.select(Disbursement.id).where(
                Disbursement.grant_id == payment.grant_id,
                Disbursement.reversal_of_id.is_(None),
                Disbursement.id != payment.id,
                Disbursement.created_at >= answer.answered_at,
            )
        ).first()
        is not None
    )


def answer_by_uid(uid):
    """The answer named ``uid``, or None."""
    return db.session.execute(
        sa.select(ReceiptAnswer).where(ReceiptAnswer.uid == uid)
    ).scalar_one_or_none()
