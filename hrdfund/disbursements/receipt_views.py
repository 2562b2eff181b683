"""The applicant side's answer on a payment: received, received less, or not received."""

import sqlalchemy as sa
from flask import abort, flash, redirect, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import can_see
from ..core.extensions import db
from ..core.work import perform
from ..ledger.models import Disbursement, ReceiptAnswerKind
from . import bp, receipts
from .receipt_forms import ReceiptAnswerForm

#: What the payee side is told once its answer is kept.
THANKS = {
    ReceiptAnswerKind.RECEIVED: _l("Thank you: the fund knows this payment arrived."),
    ReceiptAnswerKind.LESS: _l(
        "Thank you: the fund's finance team now knows that less arrived, and will look into it."
    ),
    ReceiptAnswerKind.NOT_RECEIVED: _l(
        "Thank you: the fund's finance team now knows that this payment did not arrive, and "
        "will look into it."
    ),
}


def _case_payment_or_404(uid):
    """A payment of a case the user follows from the applicant side (its applicant, or the
    partner that referred it); 404 for any other, and for a reversal row."""
    payment = db.session.execute(
        sa.select(Disbursement).where(Disbursement.uid == uid)
    ).scalar_one_or_none()
    if (
        payment is None
        or payment.reversal_of_id is not None
        or not can_see(payment.grant.application, current_user)
    ):
        abort(404)
    return payment


@bp.post("/<uid>/receipt")
@role_required(Role.APPLICANT, Role.PARTNER)
def answer(uid):
    """Keep the applicant side's answer on a payment of its case; an answer reporting a
    problem goes on finance's follow-up list and alerts finance."""
    payment = _case_payment_or_404(uid)
    page = url_for(
        "cases.case", uid=payment.grant.application.uid, _anchor=f"payment-{payment.uid}"
    )
    form = ReceiptAnswerForm()
    if form.validate_on_submit():
        done = perform(
            receipts.answer_receipt,
            payment,
            current_user._get_current_object(),
            form.answer.data,
            amount=form.amount.data,
            currency=form.currency.data,
            note=form.note.data,
            refused=receipts.ReceiptError,
        )
        if done.ok:
            flash(THANKS[done.value.answer], "info")
            return redirect(page)
        form.form_errors.append(done.words)
    return refused.refuse(form, to=page, about=payment.uid)
