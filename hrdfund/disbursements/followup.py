"""What the fund's staff must chase: payments waiting for a second person, payments nobody
confirmed, reports that did not come, instalments falling due, and payments a bank or the
payee side reported short or failed.

Each list is one query over the cases the user may see, capped for the page; with
``count=True``, the number of rows in all.
"""

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from ..cases.access import visible_cases
from ..cases.models import Application, UseOfFundsReport
from ..core.extensions import db
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan
from ..ledger.balances import instalments_paid
from ..ledger.models import (
    Delivery,
    DeliveryStatus,
    Disbursement,
    Receipt,
    ReceiptAnswer,
    ReceiptAnswerKind,
    ReceiptResolution,
)
from .models import HeldPayment, HoldStatus
from .rules import instalment_unsettled, standing

LIMIT = 200


def held_payments(user, count=False):
    """Payments of open grants held for a second person: rows of (held payment, case uid,
    case code), oldest first. Those ``user`` entered are listed too, for them to see they wait."""
    return db_rows(
        sa.select(HeldPayment, Application.uid, Application.code)
        .join(Grant, Grant.id == HeldPayment.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            visible_cases(user),
            HeldPayment.status == HoldStatus.HELD,
            Grant.status == GrantStatus.ACTIVE,
        )
        .options(sa.orm.joinedload(HeldPayment.recorded_by))
        .order_by(HeldPayment.id),
        count,
    )


def receipts_overdue(user, today, days, count=False):
    """Payments made ``days`` or more ago that stand and the payee side has not answered
    on (a confirmation kept before answers counts as one): rows of (payment, case uid,
    case code), oldest first."""
    confirmed = sa.union(
        sa.select(Receipt.disbursement_id), sa.select(ReceiptAnswer.disbursement_id)
    )
    return db_rows(
        sa.select(Disbursement, Application.uid, Application.code)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            visible_cases(user),
            standing(),
            Disbursement.paid_on <= today - timedelta(days=days),
            Disbursement.id.not_in(confirmed),
        )
        .order_by(Disbursement.paid_on, Disbursement.id),
        count,
    )


def reports_overdue(user, today, days, count=False):
    """Cases first paid ``days`` or more ago whose use-of-funds report has not come: rows
    of (case uid, first payment date, case code), oldest first."""
    first_paid = sa.func.min(Disbursement.paid_on)
    reported = sa.select(UseOfFundsReport.application_id)
    return db_rows(
        sa.select(Application.uid, first_paid.label("first_paid"), Application.code)
        .join(Grant, Grant.application_id == Application.id)
        .join(Disbursement, Disbursement.grant_id == Grant.id)
        .where(visible_cases(user), standing(), Application.id.not_in(reported))
        .group_by(Application.id, Application.uid, Application.code)
        .having(first_paid <= today - timedelta(days=days))
        .order_by(first_paid, Application.id),
        count,
    )


def instalments_due(user, today, days, count=False):
    """Instalments of open grants due within ``days`` (or already due) that payments, net
    of their reversals, have not settled: rows of (instalment, plan, case uid, paid so
    far, case code), earliest first."""
    return db_rows(instalments_due_query(user, today, days), count)


def instalments_due_query(user, today, days):
    """The query of :func:`instalments_due`, for a caller that counts its rows its own way."""
    net = instalments_paid()
    paid = sa.func.coalesce(net.c.paid, 0)
    return (
        sa.select(Instalment, PaymentPlan, Application.uid, paid, Application.code)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .join(Grant, Grant.id == PaymentPlan.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(net, net.c.instalment_id == Instalment.id)
        .where(
            visible_cases(user),
            Grant.status == GrantStatus.ACTIVE,
            Instalment.due_on <= today + timedelta(days=days),
            instalment_unsettled(paid),
        )
        .order_by(Instalment.due_on, Instalment.id)
    )


@dataclass(frozen=True)
class Mismatch:
    """A payment reported short or failed, by a bank's or provider's statement
    (``delivery``) or by its payee side (``answer``)."""

    payment: object
    case: str
    code: str | None
    #: "short" or "failed".
    status: str
    #: What was reported to have arrived (nothing for a payee's "not received").
    amount: object
    currency: str
    #: When it was reported: the statement's date, or when the payee side answered.
    reported_on: object
    delivery: object = None
    answer: object = None

    @property
    def by_payee(self):
        return self.answer is not None

    @property
    def key(self):
        """The row's name on the page: the answer's or the delivery's."""
        return f"answer-{self.answer.uid}" if self.answer is not None else f"d{self.delivery.id}"


def mismatches(user, count=False):
    """Payments reported short or failed and not yet put right, newest first: reported by a
    statement (short and not yet corrected, or failed and not yet reversed in full; a
    reversal is the correction), or by the payee side (its answer that stands says less
    arrived, or nothing, and finance has not recorded how it was resolved). A list of
    :class:`Mismatch`, or with ``count`` how many there are."""
    statements, payees = _statement_mismatches(user), _payee_problems(user)
    if count:
        return db_rows(statements, True) + db_rows(payees, True)
    rows = [
        Mismatch(
            payment,
            case,
            code,
            delivery.status.value,
            delivery.reported_amount,
            delivery.reported_currency,
            delivery.reported_on,
            delivery=delivery,
        )
        for delivery, payment, case, code in db_rows(statements)
    ]
    rows += [
        Mismatch(
            payment,
            case,
            code,
            "short" if answer.answer == ReceiptAnswerKind.LESS else "failed",
            answer.amount_received,
            payment.currency_paid,
            answer.answered_at.date(),
            answer=answer,
        )
        for answer, payment, case, code in db_rows(payees)
    ]
    rows.sort(key=lambda m: (m.reported_on, m.by_payee, m.payment.id), reverse=True)
    return rows[:LIMIT]


def _statement_mismatches(user):
    reversal = sa.orm.aliased(Disbursement)
    taken_back = sa.func.coalesce(reversal.amount, 0)
    return (
        sa.select(Delivery, Disbursement, Application.uid, Application.code)
        .join(Disbursement, Disbursement.id == Delivery.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(reversal, reversal.reversal_of_id == Disbursement.id)
        .where(
            visible_cases(user),
            sa.or_(
                sa.and_(Delivery.status == DeliveryStatus.SHORT, reversal.id.is_(None)),
                sa.and_(Delivery.status == DeliveryStatus.FAILED, taken_back < Disbursement.amount),
            ),
        )
        .order_by(Delivery.reported_on.desc(), Delivery.id.desc())
    )


def _payee_problems(user):
    later = sa.orm.aliased(ReceiptAnswer)
    return (
        sa.select(ReceiptAnswer, Disbursement, Application.uid, Application.code)
        .join(Disbursement, Disbursement.id == ReceiptAnswer.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(ReceiptResolution, ReceiptResolution.answer_id == ReceiptAnswer.id)
        .where(
            visible_cases(user),
            ReceiptAnswer.answer != ReceiptAnswerKind.RECEIVED,
            ReceiptResolution.id.is_(None),
            ~sa.exists().where(
                later.disbursement_id == ReceiptAnswer.disbursement_id, later.id > ReceiptAnswer.id
            ),
        )
        .options(
            sa.orm.joinedload(ReceiptAnswer.answered_by),
            sa.orm.contains_eager(ReceiptAnswer.disbursement),
        )
        .order_by(ReceiptAnswer.id.desc())
    )


def db_rows(query, count=False):
    """The first LIMIT rows of ``query``, or with ``count`` how many rows it has in all."""
    if count:
        total = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        return db.session.execute(total).scalar()
    return db.session.execute(query.limit(LIMIT)).all()
