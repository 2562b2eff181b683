"""Reconciliation: what a bank or transfer provider reports as delivered, matched to the
fund's payments by reference.

A statement is a CSV with the columns reference, amount, currency, date and status
(delivered, short or failed). The whole file is checked first; one problem and nothing is
applied, and finance gets the list (the first :data:`MAX_PROBLEMS`, and how many more).
Applied, each row becomes a delivery on its payment; a payment reported failed is reversed
at once (a reversal row, never an edit); a short one is listed for follow-up until finance
records the correction.

Reading and checking a file is the slow part, and takes no write lock: the page runs
:func:`check_statement` inside ``reading()``. :func:`import_statement` then applies the
checked lines in a short write transaction, after checking again what may have changed in
between (the file imported meanwhile, a payment reconciled, reversed or sent again under
its reference, a conflict declared); what a payment row says never changes.
"""

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from .. import audit
from ..auth.models import Role
from ..cases.access import visible_cases
from ..cases.models import Application
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import MoneyError, parse_amount
from ..grants.models import Grant
from ..ledger.models import Delivery, DeliveryStatus, Disbursement, reference_key
from .models import StatementImport
from .services import PaymentError, reverse_disbursement, stands

COLUMNS = ("reference", "amount", "currency", "date", "status")
#: A statement larger than this is split by the bank's own export, not read here.
MAX_ROWS = 5000
MAX_BYTES = 1024 * 1024
#: A refused statement lists this many problems in words, then says how many more it has.
MAX_PROBLEMS = 50


def _statement_amount(text):
    """A statement's amount, read as every amount is (zero allowed, no thousands
    separator: a statement's commas are its columns'); None when it does not read."""
    if "," in text:
        return None
    try:
        return parse_amount(text, allow_zero=True)
    except MoneyError:
        return None


class StatementError(Exception):
    """The statement is refused; ``problems`` lists every reason, by line."""

    def __init__(self, problems):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class Problems:
    """What is wrong with a statement: the first :data:`MAX_PROBLEMS` in words, and a count
    of the rest (a file of thousands of bad lines makes a page of a few dozen)."""

    def __init__(self):
        self.listed, self.more = [], 0

    def add(self, message):
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(message)
        else:
            self.more += 1

    def line(self, number, message):
        self.add(_l("Line %(line)d: %(problem)s", line=number, problem=message))

    def __bool__(self):
        return bool(self.listed)

    def error(self):
        """The refusal, naming each listed problem and how many more there are."""
        problems = list(self.listed)
        if self.more:
            problems.append(
                lazy_ngettext(
                    "%(num)d more problem on a later line is not listed; correct these and "
                    "check the file again.",
                    "%(num)d more problems on later lines are not listed; correct these and "
                    "check the file again.",
                    self.more,
                )
            )
        return StatementError(problems)


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


def digest(data):
    return hashlib.sha256(data).hexdigest()


def _read(data):
    """The statement's rows as dicts keyed by the lower-cased header, and the problems of
    lines that are not rows of five values. Every line below the header counts towards
    :data:`MAX_ROWS`, whatever it holds."""
    if len(data) > MAX_BYTES:
        raise StatementError([_l("The file is larger than 1 MB; split it and import each part.")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StatementError([_l("The file is not UTF-8 text; export it again as CSV.")]) from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        names = [(name or "").strip().lower() for name in header or []]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise StatementError(
                [
                    _l(
                        "The first line must name the columns %(columns)s; missing: %(missing)s.",
                        columns=", ".join(COLUMNS),
                        missing=", ".join(missing),
                    )
                ]
            )
        rows, problems = [], Problems()
        for count, values in enumerate(reader, 1):
            if count > MAX_ROWS:
                raise StatementError(
                    [
                        _l(
                            "The file has more than %(limit)d lines below its header; split it.",
                            limit=MAX_ROWS,
                        )
                    ]
                )
            number = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(names):
                problems.line(
                    number,
                    _l(
                        "it has %(found)d values where the first line names %(named)d.",
                        found=len(values),
                        named=len(names),
                    ),
                )
                continue
            rows.append((number, {n: v.strip() for n, v in zip(names, values, strict=True)}))
    except csv.Error:
        raise StatementError(
            [
                _l(
                    "Line %(line)d cannot be read as CSV; export the file again.",
                    line=reader.line_num,
                )
            ]
        ) from None
    if not rows and not problems:
        raise StatementError([_l("The file has no rows below its header.")])
    return rows, problems


def _payments_by_reference(actor, references):
    """The payments (not reversals) carrying each reference, on the cases of the actor's
    fund, with the ids of those reversed and of those on cases the actor has a conflict on.
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
    reversed_ids = set(
        db.session.execute(
            sa.select(Disbursement.reversal_of_id).where(Disbursement.reversal_of_id.in_(ids))
        ).scalars()
    )
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
    standing (a payment that bounced was sent again under the same reference)."""
    if len(payments) == 1:
        return payments[0]
    standing = [p for p in payments if p.id not in reversed_ids]
    return standing[0] if len(standing) == 1 else None


def _shown(value):
    """A value from the file as a problem quotes it: no longer than a line."""
    return value if len(value) <= 40 else value[:40] + "…"


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
                    ref=_shown(reference),
                    first=seen[reference],
                ),
            )
            continue
        seen[reference] = number
        payments = found.get(reference, [])
        if not payments:
            problems.line(
                number,
                _l("no payment of this fund has the reference %(ref)s.", ref=_shown(reference)),
            )
            continue
        if any(p.id not in visible for p in payments):
            # Nothing more of a case the actor stepped away from: not how many payments,
            # which one, nor whether it was reconciled.
            problems.line(
                number,
                _l(
                    "payment %(ref)s is on a case you declared a conflict on; another finance"
                    " officer reconciles it.",
                    ref=_shown(reference),
                ),
            )
            continue
        payment = _match(payments, reversed_ids)
        if payment is None:
            problems.line(
                number,
                _l(
                    "%(count)d payments share the reference %(ref)s; the statement cannot tell"
                    " which one it means.",
                    count=len(payments),
                    ref=_shown(reference),
                ),
            )
            continue
        if payment.id in delivered:
            problems.line(
                number,
                _l(
                    "payment %(ref)s was reconciled before, by a statement of %(day)s.",
                    ref=_shown(reference),
                    day=delivered[payment.id].created_at.date().isoformat(),
                ),
            )
            continue
        yield number, row, payment


def check_statement(actor, data, today=None):
    """Every row of the statement matched and checked: a list of Lines, or StatementError
    with the problems found, each naming its line. It only reads: run it inside
    ``reading()``, then apply the lines with :func:`import_statement`."""
    today = today or utcnow().date()
    _earlier_import(actor.fund_id, digest(data))
    rows, problems = _read(data)
    lines = []
    for number, row, payment in _matched(actor, rows, problems):
        amount = _statement_amount(row["amount"])
        if amount is None:
            problems.line(
                number,
                _l(
                    "the amount %(value)s is not written like 1234.50 (a point before the"
                    " cents, no thousands separator).",
                    value=_shown(row["amount"]),
                ),
            )
            continue
        reference = row["reference"]
        currency = row["currency"].upper()
        if currency != payment.currency_paid:
            problems.line(
                number,
                _l(
                    "payment %(ref)s was sent in %(sent)s, not %(currency)s.",
                    ref=_shown(reference),
                    sent=payment.currency_paid,
                    currency=currency or "-",
                ),
            )
            continue
        if amount > payment.amount_paid:
            problems.line(
                number,
                _l(
                    "%(amount)s is more than the %(sent)s sent as payment %(ref)s.",
                    amount=amount,
                    sent=payment.amount_paid,
                    ref=_shown(reference),
                ),
            )
            continue
        try:
            on = date.fromisoformat(row["date"])
        except ValueError:
            problems.line(
                number,
                _l("the date %(value)s is not a date like 2026-03-31.", value=_shown(row["date"])),
            )
            continue
        if not payment.paid_on <= on <= today:
            problems.line(
                number,
                _l(
                    "the date %(value)s is before the payment (%(paid)s) or in the future.",
                    value=on.isoformat(),
                    paid=payment.paid_on.isoformat(),
                ),
            )
            continue
        try:
            status = DeliveryStatus(row["status"].lower())
        except ValueError:
            problems.line(
                number,
                _l(
                    "the status %(value)s is not one of delivered, short or failed.",
                    value=_shown(row["status"]),
                ),
            )
            continue
        if status == DeliveryStatus.DELIVERED and amount < payment.amount_paid:
            # The bank says delivered but less arrived than was sent: that is short.
            status = DeliveryStatus.SHORT
        lines.append(Line(number, payment, amount, currency, on, status, reference, payment.id))
    if problems:
        raise problems.error()
    return lines


def _still_matched(actor, lines):
    """``lines``, checked before, with their payments read again: each line must still
    mean the same payment, one the actor may reconcile and nobody reconciled meanwhile.
    What the check read of a payment (its amount, currency, date) never changes."""
    problems = Problems()
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
                    ref=_shown(line.reference),
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
    problems = Problems()
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
