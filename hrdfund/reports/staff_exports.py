"""Staff downloads: the queue as filtered, payments over a period, the follow-up lists and
coverage, as CSV for a spreadsheet.

Each holds what its page shows its reader and nothing more: the cases the reader may open
(``cases.access.visible_cases``: their fund, no declared conflict, finance from approval
on), plain words for every code, amounts in plain digits beside their currency. No free
text of a case is in any of them, but the defenders' names in the queue's when a reviewer
or manager (who see them on the case) asks for them; no payee detail is in any. Every cell
a spreadsheet would run as a formula is neutralised (``anonymise.csv_safe``). Each
download is an entry in the fund's audit chain (``record_export``): who, which list, how
many rows and whether names were in it, never a value of the rows.
"""

import csv
import io
from datetime import date

import sqlalchemy as sa
from flask_babel import gettext as _

from .. import audit
from ..cases.models import Application
from ..cases.states import STAFF_LABELS
from ..core import geo
from ..core.extensions import db
from ..core.support import CATEGORY_LABELS
from ..disbursements.listing import visible_payments
from ..ledger.models import Disbursement
from .anonymise import csv_safe

#: At most this many rows in one download; past it, the file says it stopped.
ROW_LIMIT = 10_000
#: The longest period of payments one download covers.
MAX_DAYS = 3660


class ExportError(ValueError):
    """The download asked for cannot be made; the message says why."""


def render(header, rows, cut=False):
    """CSV text of ``header`` and ``rows``, every cell made safe for a spreadsheet; with
    ``cut``, a last line saying the list went on."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_safe(cell) for cell in header])
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
    if cut:
        writer.writerow([csv_safe(_("Only the first %(num)d rows.", num=ROW_LIMIT))])
    return out.getvalue()


def _day(value):
    return value.date().isoformat() if hasattr(value, "date") else value.isoformat()


def _amount(value):
    return "" if value is None else f"{value:.2f}"


def _signed(value, reversal):
    """An amount with the sign it has in the pool's sums: a reversal's against the row it
    reverses (a negative exchange difference reversed is positive); zero never "-0.00"."""
    if value is None:
        return ""
    value = -value if reversal else value
    return _amount(value if value else abs(value))


def queue_csv(rows, reporting, worth, assignees, names=None):
    """The queue's ``rows`` (as ``reviews.queue.listed`` selects them) as CSV, with whom
    each is assigned to (``assignees``: account id to the name colleagues read); ``names``
    (case uid to the defender's name) adds that column."""
    header = [
        _("Short code"),
        _("Case code"),
        _("Category"),
        _("Country"),
        _("Region"),
        _("Urgency"),
        _("Asked"),
        _("Currency"),
        _("Worth in %(currency)s", currency=reporting),
        _("Status"),
        _("Assigned to"),
        _("Submitted"),
        _("First response due"),
        _("Decision due"),
    ]
    if names is not None:
        header.append(_("Defender"))
    urgency = {"urgent": _("Urgent"), "normal": _("Not urgent")}
    lines = []
    for row in rows[:ROW_LIMIT]:
        line = [
            row.code or "",
            row.uid,
            str(CATEGORY_LABELS[row.category]),
            geo.country_name(row.country) if row.country else "",
            row.region or "",
            urgency[row.urgency.value],
            _amount(row.amount_requested),
            row.currency,
            _amount(worth(row, reporting)),
            str(STAFF_LABELS[row.status]),
            assignees.get(row.assigned_reviewer_id, ""),
            row.submitted_at.strftime("%Y-%m-%d %H:%M") if row.submitted_at else "",
            row.response_due_at.strftime("%Y-%m-%d %H:%M") if row.response_due_at else "",
            row.decision_due_at.strftime("%Y-%m-%d %H:%M") if row.decision_due_at else "",
        ]
        if names is not None:
            line.append(names.get(row.uid) or "")
        lines.append(line)
    return render(header, lines, cut=len(rows) > ROW_LIMIT)


def defender_names(uids):
    """The defenders' names of the cases ``uids``, by case uid (decrypted here, for a
    reader the view let ask for them)."""
    found = {}
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        for case in db.session.execute(
            sa.select(Application).where(Application.uid.in_(chunk))
        ).scalars():
            found[case.uid] = case.defender_name
    return found


def check_period(start, end):
    """Refuse a period that ends before it starts or covers more than ten years."""
    if end < start:
        raise ExportError(_("The first day comes before the last."))
    if (end - start).days > MAX_DAYS:
        raise ExportError(_("A download covers at most ten years at once."))


def payments_csv(user, start, end, channels):
    """The payments and reversals of the reader's fund paid from ``start`` to ``end``
    (both included) on cases they may open, oldest first, as CSV; ``channels`` names
    each channel in words. The reference is there (finance keeps it); no payee detail."""
    check_period(start, end)
    rows = db.session.execute(
        visible_payments(user, Disbursement)
        .where(Disbursement.paid_on >= start, Disbursement.paid_on <= end)
        .order_by(Disbursement.paid_on, Disbursement.id)
        .limit(ROW_LIMIT + 1)
    ).all()
    originals = {row.Disbursement.id: row.Disbursement.uid for row in rows}
    missing = {
        row.Disbursement.reversal_of_id
        for row in rows
        if row.Disbursement.reversal_of_id and row.Disbursement.reversal_of_id not in originals
    }
    if missing:
        originals.update(
            db.session.execute(
                sa.select(Disbursement.id, Disbursement.uid).where(Disbursement.id.in_(missing))
            ).all()
        )
    header = [
        _("Payment"),
        _("Reversal of"),
        _("Date"),
        _("Short code"),
        _("Case code"),
        _("Pool"),
        _("Channel"),
        _("Paid"),
        _("Currency paid"),
        _("In pool currency"),
        _("Pool currency"),
        _("Fee"),
        _("Exchange difference"),
        _("Reference"),
    ]
    lines = []
    for row in rows[:ROW_LIMIT]:
        p = row.Disbursement
        back = p.reversal_of_id is not None
        lines.append(
            [
                p.uid,
                originals.get(p.reversal_of_id, "") if p.reversal_of_id else "",
                p.paid_on.isoformat(),
                row.case_code or "",
                row.case_uid,
                row.pool,
                str(channels[p.channel]),
                _signed(p.amount_paid, back),
                p.currency_paid,
                _signed(p.amount, back),
                row.pool_currency,
                _signed(p.fee_amount, back),
                _signed(p.exchange_difference, back),
                p.reference or "",
            ]
        )
    return render(header, lines, cut=len(rows) > ROW_LIMIT), len(lines)


def follow_up_csv(lists, bounds, totals):
    """The follow-up page's five lists in one CSV, a line per row: which list, the case,
    the day, the amount and what is to chase, in words. ``lists`` holds the lists' rows
    and ``totals`` how many each has in all (``disbursements.followup.lists``): past
    ROW_LIMIT of one, the file says it stopped; ``bounds`` names the reasons a payment is
    held."""
    header = [
        _("List"),
        _("Short code"),
        _("Case code"),
        _("Reference"),
        _("Date"),
        _("Amount"),
        _("Currency"),
        _("To chase"),
    ]
    lines = []
    for held, case, code in lists["held"]:
        why = "; ".join(str(bounds[b]) for b in held.why)
        lines.append(
            [
                _("Payments waiting for a second person"),
                code or "",
                case,
                "",
                held.paid_on.isoformat(),
                _amount(held.amount_paid),
                held.currency_paid,
                why,
            ]
        )
    for m in lists["mismatches"]:
        if m.by_payee:
            status = {
                "short": _("received short, by the payee"),
                "failed": _("not received, by the payee"),
            }[m.status]
        else:
            status = {"short": _("short"), "failed": _("failed")}[m.status]
        lines.append(
            [
                _("Payments reported short or failed"),
                m.code or "",
                m.case,
                m.payment.reference or m.payment.uid,
                m.reported_on.isoformat(),
                _amount(m.amount) if m.amount is not None else "",
                m.currency,
                status,
            ]
        )
    for instalment, _plan, case, paid, code in lists["due"]:
        lines.append(
            [
                _("Instalments due and not paid"),
                code or "",
                case,
                "",
                instalment.due_on.isoformat(),
                _amount(instalment.amount),
                instalment.currency,
                _("instalment %(n)d, %(paid)s paid so far", n=instalment.seq, paid=_amount(paid)),
            ]
        )
    for payment, case, code in lists["receipts"]:
        lines.append(
            [
                _("Receipts not confirmed"),
                code or "",
                case,
                payment.reference or payment.uid,
                payment.paid_on.isoformat(),
                _amount(payment.amount_paid),
                payment.currency_paid,
                "",
            ]
        )
    for case, first_paid, code in lists["reports"]:
        lines.append(
            [
                _("Use-of-funds reports not in"),
                code or "",
                case,
                "",
                first_paid.isoformat(),
                "",
                "",
                _("first paid"),
            ]
        )
    cut = any(totals[name] > len(rows) for name, rows in lists.items())
    return render(header, lines, cut=cut), len(lines)


def coverage_csv(ending, rows, months):
    """Coverage as CSV: what ends soon with nothing after it, then each defender's planned
    support by month (defenders numbered as on the page, never named)."""
    header = [
        _("List"),
        _("Defender"),
        _("Short code"),
        _("Case code"),
        _("Pools"),
        _("Ends on"),
        _("Renewal review"),
        _("Currency"),
        *[m.strftime("%Y-%m") for m in months],
    ]
    blank = [""] * len(months)
    lines = []
    for application, grant, plan in ending:
        lines.append(
            [
                _("Ending soon with nothing after"),
                "",
                application.code or "",
                application.uid,
                "",
                plan.ends_on.isoformat(),
                plan.renewal_review_on.isoformat() if plan.renewal_review_on else "",
                grant.currency,
                *blank,
            ]
        )
    number, previous = 0, None
    for row in rows:
        if row["defender"] != previous:
            number, previous = number + 1, row["defender"]
        lines.append(
            [
                _("Support by month"),
                _("Defender %(n)d", n=number),
                row["code"] or "",
                row["case"],
                row["pools"],
                "",
                "",
                row["currency"],
                *[
                    _amount(row["months"][m]) if m in row["months"] else row["elsewhere"].get(m, "")
                    for m in months
                ],
            ]
        )
    return render(header, lines), len(lines)


def record_export(actor, kind, rows, names=False, start=None, end=None):
    """Audit a staff download in the reader's fund: who, which list (``kind``), how many
    rows, whether names were in it, and the period for payments; no value of a row."""
    extra = {}
    if isinstance(start, date):
        extra = {"start": start.isoformat(), "end": end.isoformat()}
    return audit.record(
        "export.downloaded",
        actor=actor,
        fund=actor.fund_id,
        object_type="exports",
        object_id=kind,
        rows=rows,
        names=bool(names),
        **extra,
    )
