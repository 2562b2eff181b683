"""What the payee side says of each payment: "I received it", "I received less" (with the
amount received) or "I did not receive it", with an optional short note.

Only the case's applicant, or the partner following it, answers, only while the case's
details are kept (not purged), and only for a payment of that case of which something
reached them (not a reversal, not reversed in full: of a payment reversed in part, what
is left of it). Each answer is a new row, dated and
audited: a later answer replaces an earlier one as the one that stands, and the earlier
stays. An answer saying the money did not all arrive goes on finance's follow-up list at
once (:func:`hrdfund.disbursements.followup.mismatches`) and alerts finance.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..alerts.models import AlertKind
from ..auth.models import Role
from ..cases import alerts
from ..cases.access import can_see
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import MoneyError, check_units
from ..ledger.models import ReceiptAnswer, ReceiptAnswerKind

#: The longest note the payee side may add to an answer.
NOTE_MAX = 500


class ReceiptError(Exception):
    """An answer the rules refuse; the message says why in plain words."""


def answer_once(answer):
    """The once-key of the alert an answer raises: one per answer."""
    return f"receipt:{answer.id}"


def answers_of(payment_ids):
    """Every answer to each of ``payment_ids``, oldest first, by payment id."""
    found = {pid: [] for pid in payment_ids}
    if not payment_ids:
        return found
    ids = sorted(set(payment_ids))
    for answer in db.session.execute(
        sa.select(ReceiptAnswer)
        .where(ReceiptAnswer.disbursement_id.in_(ids))
        .order_by(ReceiptAnswer.id)
    ).scalars():
        found[answer.disbursement_id].append(answer)
    return found


def latest_answer(payment):
    """The answer to ``payment`` that stands, or None."""
    answers = answers_of([payment.id])[payment.id]
    return answers[-1] if answers else None


def answer_receipt(payment, actor, answer, amount=None, currency=None, note=None):
    """Record ``actor``'s answer to ``payment`` (a :class:`ReceiptAnswerKind`): with
    ``amount`` and ``currency`` for a payment received short, what arrived in the
    payment's currency. An answer reporting a problem alerts the fund's finance officers.
    Raises :class:`ReceiptError` for a payment that does not stand or an amount the rules
    refuse; returns the answer."""
    application = payment.grant.application
    # The payee side of the case, and only while its details are kept: a purged case's
    # payments take no answer, whoever sends one (its pages are gone already).
    if actor.role not in (Role.APPLICANT, Role.PARTNER) or not can_see(application, actor):
        raise ReceiptError(_l("Only the applicant of this case, or its partner, can answer."))
    if not payment.stands_in_part:
        raise ReceiptError(_l("This payment was cancelled: there is nothing to answer."))
    answer = ReceiptAnswerKind(answer)
    if answer == ReceiptAnswerKind.LESS:
        _check_amount(payment, amount, currency)
    else:
        amount = currency = None
    latest = latest_answer(payment)
    if (
        latest is not None
        and latest.answer == answer
        and latest.amount_received == amount
        and not note
    ):
        raise ReceiptError(_l("This is already your answer for this payment."))
    row = ReceiptAnswer(
        disbursement_id=payment.id,
        answer=answer,
        amount_received=amount,
        currency_received=currency,
        note=note or None,
        answered_by_id=actor.id,
        answered_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "payment.receipt_answered",
        payment,
        actor=actor,
        fund=payment.grant.fund_id,
        answer=row.uid,
        said=answer.value,
        **({"amount_received": amount, "currency": currency} if amount is not None else {}),
    )
    if row.problem:
        alerts.notify_role(
            payment.grant.application, AlertKind.RECEIPT_PROBLEM, once=answer_once(row)
        )
    return row


def _check_amount(payment, amount, currency):
    """Refuse an amount received short that is missing, not in the payment's currency or
    not below what was sent."""
    if amount is None:
        raise ReceiptError(_l("Enter the amount you received."))
    if currency != payment.currency_paid:
        raise ReceiptError(
            _l(
                "Enter the amount in %(currency)s, the currency the payment was sent in.",
                currency=payment.currency_paid,
            )
        )
    # Its form (a MoneyField) read it as a Decimal in whole cents above zero; the column
    # refuses anything else. A currency without cents takes whole amounts only.
    try:
        check_units(amount, currency)
    except MoneyError as exc:
        raise ReceiptError(str(exc)) from exc
    # Of a payment reversed in part, what is left of it is what was sent.
    if amount >= payment.arrived:
        raise ReceiptError(
            _l(
                "The amount you received must be less than the amount sent. If it all "
                "arrived, answer \u201cI received it\u201d."
            )
        )
