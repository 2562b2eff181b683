"""Finance's list of grants to pay: instalments due now, overdue or due soon that payments
(net of their reversals) have not settled, and approved grants without a plan that are not
paid in full. One query for a page of rows, whatever their number, over the cases the
reader may open (their fund's, no conflict declared, approved or paying).

Most urgent first: what is due now (or overdue) before what falls due later; among those,
the cases marked urgent before the others; then the one waiting longest. Finance works
down the list from the top, so the top is what is most at risk.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from ..cases.access import visible_cases
from ..cases.models import Application, Urgency
from ..core.extensions import db
from ..core.money import quantize
from ..core.paging import one_page
from ..grants.models import Grant, Instalment, PaymentPlan
from ..ledger.balances import grants_paid, instalments_paid
from .open_items import ItemKind, OpenItem, among_visible, count_open
from .rules import COVER_TOLERANCE

INSTALMENT = "instalment"
UNPLANNED = "unplanned"


def _case_columns():
    return (
        Application.uid.label("case_uid"),
        Application.code.label("case_code"),
        Application.category.label("category"),
        Application.urgency.label("urgency"),
        Grant.currency.label("currency"),
        Grant.approved_at.label("approved_at"),
    )


def to_pay_query(user, today, days):
    """The rows of the list, as a subquery: due instalments and unplanned grants of the
    cases ``user`` may open, due by ``today`` + ``days``, read from the open items (whose
    rule is :func:`.open_items.open_rows`)."""
    last = today + timedelta(days=days)
    listed = sa.and_(
        OpenItem.kind == ItemKind.INSTALMENT, among_visible(user), OpenItem.day <= last
    )
    instalment = sa.and_(OpenItem.kind == ItemKind.INSTALMENT, OpenItem.item_id == Instalment.id)
    net = instalments_paid(
        sa.select(PaymentPlan.grant_id)
        .join(Instalment, Instalment.plan_id == PaymentPlan.id)
        .join(OpenItem, instalment)
        .where(listed)
    )
    paid = sa.func.coalesce(net.c.paid, 0)
    due = (
        sa.select(
            sa.literal(INSTALMENT).label("kind"),
            *_case_columns(),
            Instalment.amount.label("amount"),
            paid.label("paid"),
            OpenItem.day.label("due_on"),
            Instalment.seq.label("seq"),
            Instalment.id.label("row_id"),
        )
        .join(OpenItem, instalment)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .join(Grant, Grant.id == PaymentPlan.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(net, net.c.instalment_id == Instalment.id)
        .where(listed, visible_cases(user), Grant.fund_id == user.fund_id)
    )
    unplanned_item = sa.and_(OpenItem.kind == ItemKind.UNPLANNED, OpenItem.item_id == Grant.id)
    unplanned_listed = sa.and_(OpenItem.kind == ItemKind.UNPLANNED, among_visible(user))
    by_grant = grants_paid(sa.select(OpenItem.item_id).where(unplanned_listed))
    granted = sa.func.coalesce(by_grant.c.paid, 0)
    unplanned = (
        sa.select(
            sa.literal(UNPLANNED).label("kind"),
            *_case_columns(),
            Grant.amount.label("amount"),
            granted.label("paid"),
            OpenItem.day.label("due_on"),
            sa.literal(0).label("seq"),
            Grant.id.label("row_id"),
        )
        .join(OpenItem, unplanned_item)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(by_grant, by_grant.c.grant_id == Grant.id)
        .where(unplanned_listed, visible_cases(user), Grant.fund_id == user.fund_id)
    )
    return sa.union_all(due, unplanned).subquery("to_pay")


def _ordered(rows, today):
    """Most urgent first (see the module's docstring)."""
    return (
        sa.case((rows.c.due_on <= today, 0), else_=1),
        sa.case((rows.c.urgency == Urgency.URGENT, 0), else_=1),
        rows.c.due_on,
        rows.c.approved_at,
        rows.c.case_uid,
        rows.c.seq,
    )


@dataclass(frozen=True)
class ToPay:
    """One row of the list: an instalment due (``seq`` from 1) or a grant without a plan
    (``seq`` 0), with what is still due in the grant's currency."""

    kind: str
    case_uid: str
    case_code: str | None
    category: object
    urgency: object
    currency: str
    amount: Decimal
    due: Decimal
    due_on: date
    approved_at: datetime
    seq: int
    row_id: int

    @property
    def instalment_id(self):
        return self.row_id if self.kind == INSTALMENT else None

    def waited(self, now):
        """How long it has waited, as (days, hours): since it fell due (an instalment), or
        since the approval (a grant without a plan); None for an instalment not yet due."""
        if self.kind == INSTALMENT:
            if self.due_on > now.date():
                return None
            since = datetime.combine(self.due_on, datetime.min.time())
        else:
            since = self.approved_at
        hours = max(0, int((now - since).total_seconds() // 3600))
        return divmod(hours, 24)


def _settled(amount, paid):
    """What is still due of ``amount`` once ``paid`` (the database's sum) is taken off."""
    return max(quantize(Decimal(amount) - quantize(Decimal(str(paid)))), Decimal("0.00"))


def grants_to_pay(user, today, days, page, size):
    """A page of the list (``size`` rows and whether more follow), most urgent first."""
    rows = to_pay_query(user, today, days)
    found, has_next = one_page(sa.select(rows).order_by(*_ordered(rows, today)), page, size)
    listed = [
        ToPay(
            kind=r.kind,
            case_uid=r.case_uid,
            case_code=r.case_code,
            category=r.category,
            urgency=r.urgency,
            currency=r.currency,
            amount=r.amount,
            due=_settled(r.amount, r.paid),
            due_on=r.due_on,
            approved_at=r.approved_at,
            seq=r.seq,
            row_id=r.row_id,
        )
        for r in found
    ]
    return listed, has_next


def count_to_pay(user, today, days):
    """How many rows the list has in all: two ranges of the open items' index."""
    found = count_open(
        user,
        {
            INSTALMENT: (ItemKind.INSTALMENT, today + timedelta(days=days)),
            UNPLANNED: (ItemKind.UNPLANNED, None),
        },
    )
    return found[INSTALMENT] + found[UNPLANNED]


def still_due(instalments):
    """Map each of ``instalments`` (of one grant) to what is still to pay of it, in the
    grant's currency: nothing when what is left is within ``COVER_TOLERANCE``, as the
    rules count such an instalment paid (rounding of rates). One query."""
    return {
        key: due if due > COVER_TOLERANCE else Decimal("0.00")
        for key, due in _left(instalments).items()
    }


def _left(instalments):
    """Map each of ``instalments`` (of one grant) to what payments, net of their
    reversals, leave of it, to the cent. One query."""
    ids = [i.id for i in instalments]
    net = instalments_paid(
        grants=sa.select(PaymentPlan.grant_id).where(
            PaymentPlan.id.in_({i.plan_id for i in instalments})
        )
    )
    paid = (
        dict(
            db.session.execute(
                sa.select(net.c.instalment_id, net.c.paid).where(net.c.instalment_id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    return {i.id: _settled(i.amount, paid.get(i.id, 0)) for i in instalments}


@dataclass(frozen=True)
class Shortfall:
    """What an instalment still lacks after a payment: in the grant's currency, and in the
    currency paid at the payment's rate; ``stays_due`` when it is more than rounding."""

    seq: int
    short: Decimal
    currency: str
    short_paid: Decimal
    currency_paid: str

    @property
    def stays_due(self):
        return self.short > COVER_TOLERANCE


def shortfall(payment, pending=False):
    """What ``payment`` (a booked payment, or with ``pending`` one held for a second
    person, which is counted as if booked) leaves short of its instalment; None when it
    pays no instalment or settles it."""
    instalment = payment.instalment
    if instalment is None:
        return None
    short = _left([instalment])[instalment.id]
    allocation = payment.allocation
    if pending:
        short = max(short - quantize(payment.amount / allocation.fx_rate), Decimal("0.00"))
    if short <= 0:
        return None
    # Grant currency -> pool currency at the allocation's rate, then -> the currency paid
    # at the payment's rate (pool currency per unit paid).
    if payment.currency_paid == instalment.currency:
        short_paid = short
    else:
        short_paid = quantize(short * allocation.fx_rate / payment.fx_rate)
    return Shortfall(instalment.seq, short, instalment.currency, short_paid, payment.currency_paid)


def due_in_pools(grant, balances, due):
    """What is still due of each instalment (``due``, in the grant's currency) in the
    currency of each pool the grant draws on when it differs, at the allocation's rate:
    (pools, {instalment id: [amount per pool]})."""
    pools = [a for a, _released, _paid in balances if a.pool.currency != grant.currency]
    return [a.pool for a in pools], {
        i: [quantize(left * a.fx_rate) for a in pools] for i, left in due.items()
    }
