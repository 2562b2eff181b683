"""The case page's section on the decision's money: plan, payments and receipts."""

import sqlalchemy as sa

from ..applications import panels
from ..extensions import db
from ..grants.models import Grant, Instalment, PaymentPlan
from .forms import ReceiptForm
from .models import Disbursement, Receipt


def grant_payments(grant):
    """The grant's payments that stand (not reversed), with their receipts, oldest first."""
    reversed_ids = sa.select(Disbursement.reversal_of_id).where(
        Disbursement.reversal_of_id.is_not(None), Disbursement.grant_id == grant.id
    )
    rows = db.session.execute(
        sa.select(Disbursement, Receipt)
        .outerjoin(Receipt, Receipt.disbursement_id == Disbursement.id)
        .where(
            Disbursement.grant_id == grant.id,
            Disbursement.reversal_of_id.is_(None),
            Disbursement.id.not_in(reversed_ids),
        )
        .order_by(Disbursement.paid_on, Disbursement.id)
    ).all()
    return rows


@panels.register
def payments_panel(application, user):
    """What was granted, how it will be paid, and each payment to confirm."""
    grant = db.session.execute(
        sa.select(Grant).where(Grant.application_id == application.id)
    ).scalar_one_or_none()
    if grant is None:
        return None
    plan = db.session.execute(
        sa.select(PaymentPlan).where(PaymentPlan.grant_id == grant.id)
    ).scalar_one_or_none()
    instalments = []
    if plan is not None:
        instalments = (
            db.session.execute(
                sa.select(Instalment).where(Instalment.plan_id == plan.id).order_by(Instalment.seq)
            )
            .scalars()
            .all()
        )
    return {
        "template": "disbursements/_case_payments.html",
        "grant": grant,
        "plan": plan,
        "instalments": instalments,
        "payments": grant_payments(grant),
        "form": ReceiptForm(),
        "can_confirm": user.is_applicant_side,
    }
