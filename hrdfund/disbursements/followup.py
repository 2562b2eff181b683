"""What the fund's staff must chase: payments waiting for a second person, payments nobody
confirmed, reports that did not come, instalments falling due, and payments a bank or the
payee side reported short or failed.

Each list is one query over the cases the user may see, capped for the page; with
``count=True``, the number of rows in all. All but the payments held read the open items
kept as they open and close (:mod:`.open_items`, where each kind's rule is), so the
dashboard's counts, these lists and the alerts agree.
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import sqlalchemy as sa

from ..cases.access import visible_cases
from ..cases.models import Application
from ..core.extensions import db
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan
from ..ledger.balances import instalments_paid
from ..ledger.models import Delivery, Disbursement, ReceiptAnswer, ReceiptAnswerKind
from .models import HeldPayment, HoldStatus
from .open_items import ItemKind, OpenItem, among_visible, count_open

LIMIT = 200


def held_payments(user, count=False, limit=LIMIT):
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
        limit,
    )


def _listed(kind, user, last=None):
    """SQL condition on OpenItem: the open items of ``kind`` the user may see, up to the
    day ``last`` when given."""
    condition = sa.and_(OpenItem.kind == kind, among_visible(user))
    return condition if last is None else sa.and_(condition, OpenItem.day <= last)


def _counted(kind, user, last=None):
    return count_open(user, {"n": (kind, last)})["n"]


def _item(kind, column):
    """SQL: the open item of ``kind`` that ``column`` (an id) is."""
    return sa.and_(OpenItem.kind == kind, OpenItem.item_id == column)


def receipts_overdue(user, today, days, count=False, limit=LIMIT):
    """Payments made ``days`` or more ago that stand and the payee side has not answered
    on: rows of (payment, case uid, case code), oldest first."""
    last = today - timedelta(days=days)
    if count:
        return _counted(ItemKind.RECEIPT, user, last)
    return db_rows(
        sa.select(Disbursement, Application.uid, Application.code)
        .join(OpenItem, _item(ItemKind.RECEIPT, Disbursement.id))
        .join(Application, Application.id == OpenItem.application_id)
        .where(_listed(ItemKind.RECEIPT, user, last), visible_cases(user))
        .order_by(OpenItem.day, OpenItem.item_id),
        limit=limit,
    )


def reports_overdue(user, today, days, count=False, limit=LIMIT):
    """Cases first paid ``days`` or more ago whose use-of-funds report has not come: rows
    of (case uid, first payment date, case code), oldest first."""
    last = today - timedelta(days=days)
    if count:
        return _counted(ItemKind.REPORT, user, last)
    return db_rows(
        sa.select(Application.uid, OpenItem.day.label("first_paid"), Application.code)
        .join(OpenItem, _item(ItemKind.REPORT, Application.id))
        .where(_listed(ItemKind.REPORT, user, last), visible_cases(user))
        .order_by(OpenItem.day, OpenItem.item_id),
        limit=limit,
    )


def instalments_due(user, today, days, count=False, limit=LIMIT):
    """Instalments of open grants due within ``days`` (or already due) that payments, net
    of their reversals, have not settled: rows of (instalment, plan, case uid, paid so
    far, case code), earliest first."""
    last = today + timedelta(days=days)
    if count:
        return _counted(ItemKind.INSTALMENT, user, last)
    listed = _listed(ItemKind.INSTALMENT, user, last)
    grants = (
        sa.select(PaymentPlan.grant_id)
        .join(Instalment, Instalment.plan_id == PaymentPlan.id)
        .join(OpenItem, _item(ItemKind.INSTALMENT, Instalment.id))
        .where(listed)
    )
    net = instalments_paid(grants)
    paid = sa.func.coalesce(net.c.paid, 0)
    return db_rows(
        sa.select(Instalment, PaymentPlan, Application.uid, paid, Application.code)
        .join(OpenItem, _item(ItemKind.INSTALMENT, Instalment.id))
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .join(Application, Application.id == OpenItem.application_id)
        .outerjoin(net, net.c.instalment_id == Instalment.id)
        .where(listed, visible_cases(user))
        .order_by(OpenItem.day, OpenItem.item_id),
        limit=limit,
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
    def missing(self):
        """What did not arrive, in the payment's currency, as its report says."""
        return (self.answer or self.delivery).missing

    @property
    def key(self):
        """The row's name on the page: the answer's or the delivery's."""
        return f"answer-{self.answer.uid}" if self.answer is not None else f"d{self.delivery.id}"


def mismatches(user, count=False, limit=LIMIT):
    """Payments reported short or failed and not yet put right, newest first: reported by a
    statement (short and not yet corrected, or failed and not yet reversed in full; a
    reversal is the correction), or by the payee side (its answer that stands says less
    arrived, or nothing, and finance has not recorded how it was resolved). A list of
    :class:`Mismatch`, or with ``count`` how many there are: the open items of both kinds
    (:data:`.open_items.ItemKind.MISMATCH`, :data:`.open_items.ItemKind.ANSWER`)."""
    if count:
        found = count_open(
            user, {"statements": (ItemKind.MISMATCH, None), "payees": (ItemKind.ANSWER, None)}
        )
        return found["statements"] + found["payees"]
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
        for delivery, payment, case, code in db_rows(_statement_mismatches(user), limit=limit)
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
        for answer, payment, case, code in db_rows(_payee_problems(user), limit=limit)
    ]
    rows.sort(key=lambda m: (m.reported_on, m.by_payee, m.payment.id), reverse=True)
    return rows[:limit]


def _statement_mismatches(user):
    """The open items a statement reported (rows of delivery, payment, case uid, case
    code), newest first."""
    return (
        sa.select(Delivery, Disbursement, Application.uid, Application.code)
        .join(OpenItem, _item(ItemKind.MISMATCH, Delivery.id))
        .join(Disbursement, Disbursement.id == Delivery.disbursement_id)
        .join(Application, Application.id == OpenItem.application_id)
        .where(_listed(ItemKind.MISMATCH, user), visible_cases(user))
        # What is missing is counted from what arrived: the payment less its reversals.
        .options(sa.orm.selectinload(Disbursement.reversals))
        .order_by(OpenItem.day.desc(), OpenItem.item_id.desc())
    )


def _payee_problems(user):
    """The open items the payee side reported (rows of answer, payment, case uid, case
    code), newest first."""
    return (
        sa.select(ReceiptAnswer, Disbursement, Application.uid, Application.code)
        .join(OpenItem, _item(ItemKind.ANSWER, ReceiptAnswer.id))
        .join(Disbursement, Disbursement.id == ReceiptAnswer.disbursement_id)
        .join(Application, Application.id == OpenItem.application_id)
        .where(_listed(ItemKind.ANSWER, user), visible_cases(user))
        .options(
            sa.orm.joinedload(ReceiptAnswer.answered_by),
            sa.orm.contains_eager(ReceiptAnswer.disbursement),
            # What is missing is counted from what arrived: the payment less its reversals.
            sa.orm.selectinload(Disbursement.reversals),
        )
        .order_by(OpenItem.item_id.desc())
    )


def db_rows(query, count=False, limit=LIMIT):
    """The first ``limit`` rows of ``query``, or with ``count`` how many rows it has in all."""
    if count:
        total = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        return db.session.execute(total).scalar()
    return db.session.execute(query.limit(limit)).all()


def lists(user, today, config, limit=None):
    """The page's five lists for ``user`` on ``today``, each of at most ``limit`` rows
    (LIMIT by default), the days they look ahead and back taken from ``config``; and how
    many rows each has in all (counted only for a list that is full)."""
    limit = limit or LIMIT
    found = {
        "held": partial(held_payments, user),
        "mismatches": partial(mismatches, user),
        "due": partial(instalments_due, user, today, config["INSTALMENT_NOTICE_DAYS"]),
        "receipts": partial(receipts_overdue, user, today, config["RECEIPT_OVERDUE_DAYS"]),
        "reports": partial(reports_overdue, user, today, config["REPORT_OVERDUE_DAYS"]),
    }
    rows = {name: listed(limit=limit) for name, listed in found.items()}
    totals = {
        name: found[name](count=True) if len(rows[name]) >= limit else len(rows[name])
        for name in found
    }
    return rows, totals
