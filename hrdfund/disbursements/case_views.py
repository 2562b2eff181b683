"""Recording a payment from its case's page (a case owns /applications/<uid>/...): the
proof cleaned with no transaction open, then the payment checked and recorded, or held
for a second person, in one transaction that locks."""

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases import cleaning, documents
from ..cases.access import Section, get_application_or_404
from ..cases.models import DocumentKind
from ..core.extensions import db, reading
from ..core.money import format_money
from ..core.work import perform
from ..directory import services as directory
from ..grants.models import Grant, Instalment
from ..grants.plans import PlanError
from ..ledger.balances import allocation_balances
from ..ledger.models import Allocation
from . import case_bp, reschedule, services
from .forms import BOUND_WORDS, MoveForm
from .models import HeldPayment
from .panels import payment_form
from .to_pay import shortfall


class _AlreadyRecorded(Exception):
    """The form's idempotency key names a payment recorded (or held) before; the argument
    says whether it waits for a second person."""


def _record_once(grant, actor, **fields):
    """Record one payment (:func:`services.record_disbursement`); a form sent before, whose
    idempotency key names a payment recorded or held already, is refused."""
    row, created = services.record_disbursement(grant, actor, **fields)
    if not created:
        raise _AlreadyRecorded(isinstance(row, HeldPayment))
    return row


def _case_grant_or_404(uid, section=Section.PAYEES):
    """The case and its grant, for a reader who may see ``section`` of the case (finance:
    its payees); 404 otherwise."""
    application = get_application_or_404(uid, current_user, section)
    grant = db.session.execute(
        sa.select(Grant).where(Grant.application_id == application.id)
    ).scalar_one_or_none()
    if grant is None:
        abort(404)
    return application, grant


@case_bp.post("/applications/<uid>/payments")
@role_required(Role.FINANCE)
def record(uid):
    """Record one payment of the case's grant, with its proof. The proof is cleaned with no
    transaction open; the payment is then checked and recorded in one that locks."""
    # From the page of its own (``back=pay``, reached from the list of grants to pay) the
    # form goes back there when refused, and to the list once recorded.
    from_list = request.args.get("back") == "pay"
    with reading():
        application, grant = _case_grant_or_404(uid)
        balances = allocation_balances(grant.id)
        form = payment_form(grant, balances, services.grant_instalments(grant), payer=current_user)
        valid = form.validate_on_submit()
    cleaned = None
    if valid and form.proof.data and form.proof.data.filename:
        try:
            cleaned = cleaning.clean_upload(form.proof.data.stream, form.proof.data.filename)
        except cleaning.DocumentError as exc:
            form.form_errors.append(str(exc))
            valid = False
    if valid:
        done = _record(uid, form, cleaned)
        if not isinstance(done.refusal, services.PaymentError):
            _say_recorded(done)
            if from_list:
                return redirect(url_for("disbursements.to_pay"))
            return redirect(url_for("cases.case", uid=uid, _anchor="money"))
        # Beside the field the refusal is about (the rate, its source or reason), if any.
        beside = getattr(form, getattr(done.refusal, "field", None) or "", None)
        (beside.errors if beside is not None else form.form_errors).append(done.words)
    if from_list:
        return refused.refuse(form, to=url_for("case_payments.pay", uid=uid, _anchor="pay"))
    return refused.refuse(form, to=url_for("cases.case", uid=uid, _anchor="pay"))


def _record(uid, form, cleaned):
    """The payment the form describes, with its cleaned proof stored in the same
    transaction (its file removed again when the payment is refused)."""
    application, grant = _case_grant_or_404(uid)
    actor = current_user._get_current_object()
    proof = None
    if cleaned is not None:
        # In the payment's transaction: committed with it, or undone with it.
        proof = documents.store_document(cleaned, None, DocumentKind.PROOF_OF_PAYMENT, actor)
    done = perform(
        _record_once,
        grant,
        actor,
        allocation=db.session.get(Allocation, form.allocation.data),
        instalment=db.session.get(Instalment, form.instalment.data or 0),
        payee_type=form.payee_type.data,
        payee_details=form.payee_details.data,
        payee_entry=directory.entry_by_uid(form.payee_entry.data),
        channel=form.channel.data,
        amount_paid=form.amount_paid.data,
        currency_paid=form.currency_paid.data,
        paid_on=form.paid_on.data,
        idempotency_key=form.idempotency_key.data,
        rate=form.rate.data,
        rate_source=form.rate_source.data,
        rate_reason=form.rate_reason.data,
        fee=form.fee.data or 0,
        reference=form.reference.data,
        proof_document_id=proof.id if proof else None,
        refused=(services.PaymentError, _AlreadyRecorded, sa.exc.IntegrityError),
    )
    if not done.ok and proof is not None:
        documents.delete_document_file(proof)  # its row was rolled back with the payment
    return done


def _say_recorded(done):
    """What became of a payment the rules did not refuse: booked, held for a second
    person, or the same form sent twice (the unique key kept the first payment only)."""
    if not done.ok:
        if isinstance(done.refusal, _AlreadyRecorded) and done.refusal.args[0]:
            flash(_("This payment was already entered; it waits for a second person."), "info")
        else:
            flash(_("This payment was already recorded."), "info")
    elif isinstance(done.value, HeldPayment):
        held = _(
            "Nothing is booked yet: %(why)s, so a second person (another finance "
            "officer or a manager) confirms this payment first. They were told.",
            why="; ".join(str(BOUND_WORDS[b]) for b in done.value.why),
        )
        flash(f"{_which(done.value)} {held}", "info")
    else:
        flash(f"{_('Payment recorded.')} {_which(done.value)}", "info")
    if done.ok:
        _say_short(done.value)


def _which(row):
    """Which payment the message is about, for a list of many cases: what was paid, and
    for which case."""
    with reading():
        application = row.grant.application
    return _(
        "%(amount)s for %(case)s.",
        amount=format_money(row.amount_paid, row.currency_paid, str(get_locale() or "en")),
        case=application.code or application.uid,
    )


def _say_short(row):
    """Say when the payment (booked, or held and counted as if booked) leaves its
    instalment short, by how much in the grant's currency and in the currency paid: a
    short payment is kept (partial payments are normal), and the instalment stays due."""
    pending = isinstance(row, HeldPayment)
    with reading():
        short = shortfall(row, pending=pending)
    if short is None:
        return
    locale = str(get_locale() or "en")
    words = {
        "seq": short.seq,
        "short": format_money(short.short, short.currency, locale),
        "short_paid": format_money(short.short_paid, short.currency_paid, locale),
    }
    same = short.currency == short.currency_paid
    if pending and short.stays_due:
        # Nothing is booked yet: the page still shows the instalment as it was.
        flash(
            _(
                "Once this payment is confirmed, instalment %(seq)d will still be short by"
                " %(short)s: it stays on the list of grants to pay until it is paid in full.",
                **words,
            ),
            "warning",
        )
    elif short.stays_due:
        flash(
            _(
                "Instalment %(seq)d is still short by %(short)s: it stays on the list of "
                "grants to pay until it is paid in full.",
                **words,
            )
            if same
            else _(
                "Instalment %(seq)d is still short by %(short)s (%(short_paid)s at this "
                "payment's rate): it stays on the list of grants to pay until it is paid "
                "in full.",
                **words,
            ),
            "warning",
        )
    else:
        flash(
            _(
                "Instalment %(seq)d is short by %(short)s (%(short_paid)s at this payment's "
                "rate), within what rounding allows: it counts as paid.",
                **words,
            ),
            "info",
        )


@case_bp.post("/applications/<uid>/plan/move")
@role_required(Role.MANAGER)
def move_plan(uid):
    """Move the dates of the plan's instalments not paid on yet."""
    application, grant = _case_grant_or_404(uid, Section.LEDGER)
    form = MoveForm()
    if form.validate_on_submit():
        done = perform(
            reschedule.move_instalments,
            grant,
            current_user._get_current_object(),
            form.first_due_on.data,
            refused=PlanError,
        )
        if done.ok:
            flash(
                ngettext(
                    "Instalment %(seq)d now falls due on %(day)s.",
                    "%(num)d instalments moved: the first now falls due on %(day)s.",
                    len(done.value),
                    seq=done.value[0].seq,
                    day=done.value[0].due_on.isoformat(),
                ),
                "info",
            )
            return redirect(url_for("cases.case", uid=application.uid, _anchor="plan"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("cases.case", uid=application.uid, _anchor="move"))
