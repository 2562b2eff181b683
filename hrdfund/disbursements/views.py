"""Finance's pages: the latest payments, recording and reversing one, proofs, and
follow-up."""

from collections import Counter
from types import SimpleNamespace

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from .. import audit
from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases import cleaning, documents
from ..cases.access import Section, can_see, sections
from ..cases.models import Document, DocumentKind
from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.money import money_words
from ..core.paging import one_page, page_arg, within
from ..core.work import perform
from ..ledger.models import DeliveryStatus, Disbursement
from ..ledger.reversals import reversal_partners
from ..pools.page import period_args
from . import bp, followup, holds, problems, proofs, reconcile, services
from .forms import (
    BOUND_WORDS,
    CHANNEL_LABELS,
    HeldConfirmForm,
    ProofForm,
    RefuseForm,
    ReverseForm,
    StatementForm,
)
from .listing import visible_payments
from .models import HeldPayment
from .rules import standing


def _payments(period, page, size, unproved=False):
    """A page of the fund's payments and reversals within ``period`` on cases the reader
    may open, newest first (with ``unproved``, only the payments without a proof that did
    not come back in full): ``size`` rows, whether there are more, and with ``unproved``
    how many there are in all (None without)."""
    query = (
        visible_payments(
            current_user,
            Disbursement.id,
            Disbursement.uid,
            Disbursement.paid_on,
            Disbursement.amount_paid,
            Disbursement.currency_paid,
            Disbursement.amount,
            Disbursement.fee_amount,
            Disbursement.exchange_difference,
            Disbursement.channel,
            Disbursement.reversal_of_id,
            Disbursement._reference,
            Disbursement._reason,
            proofs.has_proof().label("proved"),
        )
        .where(within(Disbursement.paid_on, period))
        .order_by(Disbursement.paid_on.desc(), Disbursement.id.desc())
    )
    total = None
    if unproved:
        # A payment that came back in full needs no proof: it is not chased.
        query = query.where(standing(), ~proofs.has_proof())
        # Finance works through them: the list says how many wait, across its pages.
        counted = query.with_only_columns(Disbursement.id).order_by(None).subquery()
        total = db.session.execute(sa.select(sa.func.count()).select_from(counted)).scalar_one()
    rows, has_next = one_page(query, page, size)
    return (
        [
            SimpleNamespace(
                **row._mapping,
                reference=Disbursement.reference.read(row._reference, row.uid),
                # Why a reversal took money back, as the case page says it.
                reason=Disbursement.reason.read(row._reason, row.uid)
                if row.reversal_of_id
                else None,
            )
            for row in rows
        ],
        has_next,
        total,
    )


@bp.get("")
@role_required(Role.FINANCE)
def index():
    """The fund's disbursements and reversals, newest first, a page at a time over the
    dates chosen, and the statement import."""
    period, typed, problems = period_args()
    page = page_arg()
    unproved = request.args.get("proof") == "missing"
    rows, has_next, unproved_count = [], False, None
    if not problems:
        # Dates that cannot be read list nothing, rather than every payment.
        rows, has_next, unproved_count = _payments(
            period, page, current_app.config["PAGE_SIZE"], unproved
        )
    form = refused.restore(StatementForm(formdata=None))
    return render_template(
        "disbursements/index.html",
        rows=rows,
        page=page,
        has_next=has_next,
        typed=typed,
        dates={k: v for k, v in typed.items() if v},
        unproved=unproved,
        unproved_count=unproved_count,
        date_problems=problems,
        partners=reversal_partners(Disbursement, rows, Disbursement.paid_on),
        channels=CHANNEL_LABELS,
        form=form,
        problems=form.problems,
    )


@bp.post("/statements")
@role_required(Role.FINANCE)
def import_statement():
    """Apply a bank's or provider's statement as a whole, or refuse it with its problems.
    The file is read and checked with no write lock held; applying it takes one, in a
    transaction that checks again only what may have changed meanwhile."""
    actor = current_user._get_current_object()
    again = url_for("disbursements.index", _anchor="import")
    problems = []
    with reading():
        form = StatementForm()
        valid = form.validate_on_submit()
        if valid:
            data = form.statement.data.read()
            try:
                checked = reconcile.check_statement(actor, data)
            except reconcile.StatementError as exc:
                problems = [str(p) for p in exc.problems]
    if not valid or problems:
        return refused.refuse(form, to=again, problems=problems)
    done = perform(
        reconcile.import_statement,
        current_user.fund_id,
        actor,
        data,
        checked=checked,
        refused=(reconcile.StatementError, sa.exc.IntegrityError),
    )
    if isinstance(done.refusal, reconcile.StatementError):
        return refused.refuse(form, to=again, problems=done.refusal.problems)
    if not done.ok:
        # The same file sent twice at once: the first one applied it.
        problems = [_("This statement was imported already; nothing was applied again.")]
        return refused.refuse(form, to=again, problems=problems)
    _statement, lines = done.value
    counts = Counter(line.status for line in lines)
    flash(
        _(
            "Statement applied: %(delivered)d delivered, %(short)d short, %(failed)d failed.",
            delivered=counts[DeliveryStatus.DELIVERED],
            short=counts[DeliveryStatus.SHORT],
            failed=counts[DeliveryStatus.FAILED],
        ),
        "info",
    )
    return redirect(url_for("disbursements.follow_up"))


@bp.get("/follow-up")
@role_required(Role.FINANCE, Role.MANAGER)
def follow_up():
    """What the fund must chase: payments reported short or failed (finance records how a
    payee's report was resolved here), instalments due, receipts and use-of-funds reports
    that have not come."""
    today = utcnow().date()
    user = current_user._get_current_object()
    lists, totals = followup.lists(user, today, current_app.config)
    finance = user.role == Role.FINANCE
    return render_template(
        "disbursements/follow_up.html",
        today=today,
        bounds=BOUND_WORDS,
        totals=totals,
        resolve_form=problems.ResolveForm(formdata=None) if finance else None,
        resolve_refused=_refused_resolve(lists["mismatches"]) if finance else None,
        **lists,
    )


def _refused_resolve(mismatches):
    """The form recording how a payee's report was resolved, as it was refused a moment
    ago for one of the reports listed, or None."""
    form = refused.restore(
        problems.ResolveForm(formdata=None), {m.answer.uid for m in mismatches if m.by_payee}
    )
    return form if form.refused else None


def _fund_payment_or_404(uid):
    """A payment whose payee the user may see (finance of the fund, on a case they may
    open); 404 otherwise."""
    payment = db.session.execute(
        sa.select(Disbursement).where(Disbursement.uid == uid)
    ).scalar_one_or_none()
    if payment is None or Section.PAYEES not in sections(payment.grant.application, current_user):
        abort(404)
    return payment


def _held_or_404(uid):
    """A held payment on a case the user may see; 404 otherwise."""
    held = db.session.execute(
        sa.select(HeldPayment).where(HeldPayment.uid == uid)
    ).scalar_one_or_none()
    if held is None or not can_see(held.grant.application, current_user):
        abort(404)
    return held


@bp.post("/held/<uid>/confirm")
@role_required(Role.FINANCE, Role.MANAGER)
def confirm_held(uid):
    """A second person confirms a held payment: it is booked, every rule checked again."""
    held = _held_or_404(uid)
    case = held.grant.application.uid
    page, about = url_for("cases.case", uid=case, _anchor=f"held-{held.uid}"), held.uid
    form = HeldConfirmForm()
    if form.validate_on_submit():
        done = perform(
            holds.confirm_held_payment,
            held,
            current_user._get_current_object(),
            refused=(services.PaymentError, sa.exc.IntegrityError),
        )
        if done.ok:
            flash(_("Payment confirmed and booked."), "info")
            return redirect(url_for("cases.case", uid=case, _anchor="held"))
        if isinstance(done.refusal, sa.exc.IntegrityError):
            flash(_("This payment was already confirmed."), "info")
            return redirect(url_for("cases.case", uid=case, _anchor="held"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=page, about=about)


@bp.post("/held/<uid>/refuse")
@role_required(Role.FINANCE, Role.MANAGER)
def refuse_held(uid):
    """A second person refuses a held payment, saying why: nothing is booked."""
    held = _held_or_404(uid)
    case = held.grant.application.uid
    page, about = url_for("cases.case", uid=case, _anchor=f"held-{held.uid}"), held.uid
    form = RefuseForm()
    if form.validate_on_submit():
        done = perform(
            holds.refuse_held_payment,
            held,
            current_user._get_current_object(),
            form.reason.data,
            refused=services.PaymentError,
        )
        if done.ok:
            flash(_("Payment refused: nothing was booked."), "info")
            return redirect(url_for("cases.case", uid=case, _anchor="held"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=page, about=about)


@bp.post("/<uid>/reverse")
@role_required(Role.FINANCE)
def reverse(uid):
    """Record that a payment failed, came back, or was wrong."""
    payment = _fund_payment_or_404(uid)
    application = payment.grant.application
    form = ReverseForm()
    if form.validate_on_submit():
        done = perform(
            services.reverse_disbursement,
            payment,
            current_user._get_current_object(),
            form.reason.data,
            amount=form.amount.data,
            fee_refunded=form.fee_refunded.data,
            refused=services.PaymentError,
        )
        if done.ok:
            # How much came back, and what of the payment has not (it may be reversed again).
            back = money_words(done.value.amount, payment.pool.currency)
            left = payment.amount - payment.taken_back
            if left > 0:
                said = _(
                    "Reversal of %(amount)s recorded; %(left)s of the payment has not come back.",
                    amount=back,
                    left=money_words(left, payment.pool.currency),
                )
            else:
                said = _(
                    "Reversal of %(amount)s recorded; all of the payment has come back.",
                    amount=back,
                )
            flash(said, "info")
            return redirect(url_for("cases.case", uid=application.uid, _anchor="money"))
        form.form_errors.append(done.words)
    else:
        form.form_errors.extend(e for errors in form.errors.values() for e in errors)
    page = url_for("cases.case", uid=application.uid, _anchor=f"payment-{payment.uid}")
    return refused.refuse(form, to=page, about=payment.uid)


@bp.post("/<uid>/proof")
@role_required(Role.FINANCE)
def add_proof(uid):
    """Add the proof of a payment recorded without one. The file is cleaned with no
    transaction open; it is stored and tied to the payment in one transaction, its file
    removed again when that is refused."""
    with reading():
        payment = _fund_payment_or_404(uid)
        payment_uid, case_uid = payment.uid, payment.grant.application.uid
        form = ProofForm()
        valid = form.validate_on_submit()
    page = url_for("cases.case", uid=case_uid, _anchor=f"payment-{payment_uid}")
    cleaned = None
    if valid:
        try:
            cleaned = cleaning.clean_upload(form.proof.data.stream, form.proof.data.filename)
        except cleaning.DocumentError as exc:
            form.form_errors.append(str(exc))
    else:
        form.form_errors.extend(e for errors in form.errors.values() for e in errors)
    if cleaned is not None:
        payment = _fund_payment_or_404(uid)
        actor = current_user._get_current_object()
        document = documents.store_document(cleaned, None, DocumentKind.PROOF_OF_PAYMENT, actor)
        done = perform(
            proofs.add_proof,
            payment,
            actor,
            document,
            refused=(services.PaymentError, sa.exc.IntegrityError),
        )
        if done.ok:
            flash(_("Proof added."), "info")
            return redirect(page)
        documents.delete_document_file(document)  # its row was rolled back
        # Final: the payment has its proof (another tab, another officer) or is a
        # reversal; no form comes back to send again.
        if isinstance(done.refusal, sa.exc.IntegrityError):
            flash(_("This payment has its proof already."), "error")
        else:
            flash(done.words, "error")
        return redirect(page)
    return refused.refuse(form, to=page, about=payment_uid)


@bp.get("/<uid>/proof")
@role_required(Role.FINANCE)
def proof(uid):
    """The proof of a payment: finance only, as it may show the payee's account."""
    payment = _fund_payment_or_404(uid)
    document = db.session.get(Document, proofs.proof_document_id(payment) or 0)
    if document is None or document.kind != DocumentKind.PROOF_OF_PAYMENT:
        abort(404)
    if document.filename is None:  # purged with its case
        abort(404)
    return documents.send_document(
        document,
        record=lambda: perform(
            audit.record,
            "document.downloaded",
            document,
            actor=current_user._get_current_object(),
            fund=payment.grant.fund_id,
        ),
    )
