"""Reconciliation: what a bank or transfer provider reports as delivered, matched to the
fund's payments by reference.

A statement is a CSV with the columns reference, amount, currency, date and status
(delivered, short or failed), read by ``statement_file``. The whole file is checked first;
one problem and nothing is applied, and finance gets the list (the first
:data:`core.csv_file.MAX_PROBLEMS`, and how many more).
Applied, each row becomes a delivery on its payment; a payment reported failed is reversed
at once (a reversal row, never an edit); a short one is listed for follow-up until finance
records the correction.

Reading and checking a file is the slow part, and takes no write lock: the page runs
:func:`check_statement` inside ``reading()``. :func:`import_statement` then applies the
checked lines in a short write transaction, after checking again what may have changed in
between (the file imported meanwhile, a payment reconciled, reversed or sent again under
its reference, a conflict declared); what a payment row says never changes.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..cases.access import visible_cases
from ..cases.models import Application
from ..core.csv_file import Problems, shown
from ..core.extensions import db
from ..core.money import smallest_unit
from ..core.times import latest_day
from ..grants.models import Grant
from ..ledger.models import Delivery, DeliveryStatus, Disbursement, reference_key
from .models import StatementImport
from .services import PaymentError, reverse_disbursement, stands
from .statement_file import StatementError, digest, read_statement, statement_amount


@dataclass
class Line:
    """One checked row of a statement, matched to its payment."""

    number: int
    payment: Disbursement
    amount: Decimal
    currency: str
    on: date
    status: DeliveryStatus
    reference: str
    #: The payment's id, compared with what a second look finds without reading the row.
    payment_id: int


def _payments_by_reference(actor, references):
    """The payments (not reversals) carrying each reference, on the cases of the actor's
    fund, with the ids of those reversed in full (a payment may be reversed in parts) and
    of those on cases the actor has a conflict on.
    References are stored encrypted: they are found by their blind index. Three queries,
    whatever the number of lines."""
    found = {}
    keys = {reference_key(reference): reference for reference in references}
    query = (
        sa.select(Disbursement)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            Application.fund_id == actor.fund_id,
            Disbursement.reversal_of_id.is_(None),
            Disbursement.reference_key.in_(keys),
        )
    )
    for payment in db.session.execute(query).scalars():
        found.setdefault(keys[payment.reference_key], []).append(payment)
    ids = [p.id for ps in found.values() for p in ps]
    amounts = {p.id: p.amount for ps in found.values() for p in ps}
    reversed_ids = {
        original
        for original, back in db.session.execute(
            sa.select(Disbursement.reversal_of_id, sa.func.sum(Disbursement.amount))
            .where(Disbursement.reversal_of_id.in_(ids))
            .group_by(Disbursement.reversal_of_id)
        )
        if back >= amounts[original]
    }
    visible = set(
        db.session.execute(
            sa.select(Disbursement.id)
            .join(Grant, Grant.id == Disbursement.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(Disbursement.id.in_(ids), visible_cases(actor))
        ).scalars()
    )
    return found, reversed_ids, visible


def _match(payments, reversed_ids):
    """The payment a line means: the only one with its reference, or the only one still
    standing, not reversed in full (a payment that bounced was sent again under the same
    reference)."""
    if len(payments) == 1:
        return payments[0]
    standing = [p for p in payments if p.id not in reversed_ids]
    return standing[0] if len(standing) == 1 else None


def _earlier_import(fund_id, fingerprint):
    """Refuse a statement the fund imported before."""
    earlier = db.session.execute(
        sa.select(StatementImport).where(
            StatementImport.fund_id == fund_id, StatementImport.digest == fingerprint
        )
    ).scalar_one_or_none()
    if earlier is not None:
        raise StatementError(
            [
                _l(
                    "This statement was imported on %(day)s; nothing was applied again.",
                    day=earlier.created_at.date().isoformat(),
                )
            ]
        )


def _matched(actor, rows, problems):
    """Yield (number, row, payment) for each row whose reference names one payment the
    actor may reconcile and that was not reconciled before; a problem for every other row.
    Four queries, whatever the number of rows."""
    found, reversed_ids, visible = _payments_by_reference(
        actor, {r["reference"] for _, r in rows if r["reference"]}
    )
    delivered = {
        d.disbursement_id: d
        for d in db.session.execute(
            sa.select(Delivery).where(
                Delivery.disbursement_id.in_([p.id for ps in found.values() for p in ps])
            )
        ).scalars()
    }
    seen = {}
    for number, row in rows:
        reference = row["reference"]
        if not reference:
            problems.line(number, _l("the reference is empty."))
            continue
        if reference in seen:
            problems.line(
                number,
                _l(
                    "reference %(ref)s repeats line %(first)d.",
                    ref=shown(reference),
                    first=seen[reference],
                ),
            )
            continue
        seen[reference] = number
        payment, problem = _payment_named(
            reference, found.get(reference, []), reversed_ids, visible, delivered
        )
        if problem is not None:
            problems.line(number, problem)
            continue
        yield number, row, payment


def _payment_named(reference, payments, reversed_ids, visible, delivered):
    """(payment, None) for the one payment among ``payments`` that ``reference`` names and
    that may be reconciled now; (None, the problem in words) otherwise."""
    if not payments:
        return None, _l("no payment of this fund has the reference %(ref)s.", ref=shown(reference))
    if any(p.id not in visible for p in payments):
        # Nothing more of a case the actor stepped away from: not how many payments,
        # which one, nor whether it was reconciled.
        return None, _l(
            "payment %(ref)s is on a case you declared a conflict on; another finance"
            " officer reconciles it.",
            ref=shown(reference),
        )
    payment = _match(payments, reversed_ids)
    if payment is None:
        return None, _l(
            "%(count)d payments share the reference %(ref)s; the statement cannot tell"
            " which one it means.",
            count=len(payments),
            ref=shown(reference),
        )
    if payment.id in delivered:
        return None, _l(
            "payment %(ref)s was reconciled before, by a statement of %(day)s.",
            ref=shown(reference),
            day=delivered[payment.id].created_at.date().isoformat(),
        )
    return payment, None


def check_statement(actor, data, today=None):
    """Every row of the statement matched and checked: a list of Lines, or StatementError
    with the problems found, each naming its line. It only reads: run it inside
    ``reading()``, then apply the lines with :func:`import_statement`."""
    # The latest date anywhere, as a payment's own date may be.
    today = today or latest_day()
    _earlier_import(actor.fund_id, digest(data))
    rows, problems = read_statement(data)
    lines = []
    for number, row, payment in _matched(actor, rows, problems):
        line, problem = _checked_line(number, row, payment, today)
        if problem is not None:
            problems.line(number, problem)
        else:
            lines.append(line)
    if problems:
        raise problems.error()
    return lines


def _checked_line(number, row, payment, today):
    """(Line, None) for a row whose amount, currency, date and status fit ``payment``;
    (None, the first problem in words) otherwise."""
    amount, problem = _reported_amount(row, payment)
    if problem is None:
        on, problem = _reported_day(row, payment, today)
    if problem is None:
        status, problem = _reported_status(row, amount, payment)
    if problem is not None:
        return None, problem
    currency, reference = row["currency"].upper(), row["reference"]
    return Line(number, payment, amount, currency, on, status, reference, payment.id), None


def _reported_amount(row, payment):
    """The amount the row reports, in the payment's currency and no more than was sent."""
    amount = statement_amount(row["amount"])
    if amount is None:
        return None, _l(
            "the amount %(value)s is not written like 1234.50 (a point before the"
            " cents, no thousands separator).",
            value=shown(row["amount"]),
        )
    currency = row["currency"].upper()
    if currency != payment.currency_paid:
        return None, _l(
            "payment %(ref)s was sent in %(sent)s, not %(currency)s.",
            ref=shown(row["reference"]),
            sent=payment.currency_paid,
            currency=currency or "-",
        )
    if amount != amount.quantize(smallest_unit(currency)):
        return None, _l(
            "%(amount)s has cents, which %(currency)s does not have.",
            amount=shown(row["amount"]),
            currency=currency,
        )
    if amount > payment.amount_paid:
        return None, _l(
            "%(amount)s is more than the %(sent)s sent as payment %(ref)s.",
            amount=amount,
            sent=payment.amount_paid,
            ref=shown(row["reference"]),
        )
    return amount, None


def _reported_day(row, payment, today):
    """The day the row reports, between the payment's and ``today``."""
    try:
        on = date.fromisoformat(row["date"])
    except ValueError:
        return None, _l(
            "the date %(value)s is not a date like 2026-03-31.", value=shown(row["date"])
        )
    if on < payment.paid_on:
        return None, _l(
            "the date %(value)s is before the payment was made (%(paid)s).",
            value=on.isoformat(),
            paid=payment.paid_on.isoformat(),
        )
    if on > today:
        return None, _l(
            "the date %(value)s has not come yet (today is %(today)s).",
            value=on.isoformat(),
            today=today.isoformat(),
        )
    return on, None


def _reported_status(row, amount, payment):
    """The delivery status the row reports; delivered with less than was sent is short."""
    try:
        status = DeliveryStatus(row["status"].lower())
    except ValueError:
        return None, _l(
            "the status %(value)s is not one of delivered, short or failed.",
            value=shown(row["status"]),
        )
    if status == DeliveryStatus.DELIVERED and amount < payment.amount_paid:
        # The bank says delivered but less arrived than was sent: that is short.
        status = DeliveryStatus.SHORT
    return status, None


def _still_matched(actor, lines):
    """``lines``, checked before, with their payments read again: each line must still
    mean the same payment, one the actor may reconcile and nobody reconciled meanwhile.
    What the check read of a payment (its amount, currency, date) never changes."""
    problems = Problems(StatementError)
    by_number = {line.number: line for line in lines}
    rows = [(line.number, {"reference": line.reference}) for line in lines]
    for number, _row, payment in _matched(actor, rows, problems):
        line = by_number[number]
        if payment.id != line.payment_id:
            problems.line(
                number,
                _l(
                    "another payment took the reference %(ref)s while the file was checked; "
                    "check it again.",
                    ref=shown(line.reference),
                ),
            )
        else:
            line.payment = payment
    if problems:
        raise problems.error()
    return lines


def import_statement(fund_id, actor, data, today=None, checked=None):
    """Apply a statement as a whole: deliveries for every row, and a reversal for every
    payment reported failed. Returns (StatementImport, lines). The caller commits.

    ``checked`` is what :func:`check_statement` returned for ``data``, read with no write
    lock: only what may have changed since is checked again here. Without it the whole
    file is checked here."""
    if actor.role != Role.FINANCE or actor.fund_id != fund_id:
        raise StatementError([_l("Only finance imports statements.")])
    if checked is None:
        lines = check_statement(actor, data, today)
    else:
        _earlier_import(fund_id, digest(data))
        lines = _still_matched(actor, checked)
    statement = StatementImport(
        fund_id=fund_id, digest=digest(data), rows=len(lines), imported_by_id=actor.id
    )
    db.session.add(statement)
    db.session.flush()
    problems = Problems(StatementError)
    for line in lines:
        db.session.add(
            Delivery(
                disbursement_id=line.payment.id,
                import_id=statement.id,
                status=line.status,
                reported_amount=line.amount,
                reported_currency=line.currency,
                reported_on=line.on,
            )
        )
        if line.status == DeliveryStatus.FAILED and stands(line.payment):
            try:
                reverse_disbursement(
                    line.payment,
                    actor,
                    str(_l("Reported failed by the provider on %(day)s.", day=line.on.isoformat())),
                )
            except PaymentError as exc:
                problems.line(line.number, exc)
    if problems:
        raise problems.error()
    db.session.flush()
    audit.record(
        "statement.imported",
        statement,
        actor=actor,
        rows=len(lines),
        failed=sum(1 for line in lines if line.status == DeliveryStatus.FAILED),
        short=sum(1 for line in lines if line.status == DeliveryStatus.SHORT),
    )
    return statement, lines
