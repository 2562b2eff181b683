"""The case page's section on the decision's money: plan, payments and receipts.

Applicants see what was granted, the plan and each payment, and say whether it arrived.
Staff see the pools, what each still commits, every payment with its fee, exchange
difference, delivery and the payee side's answer; finance also sees the payee and records
and reverses payments; managers plan and close the grant.
"""

from datetime import timedelta

import sqlalchemy as sa
from wtforms import SelectChoice

from ..auth.models import Role
from ..auth.refused import restore
from ..cases import panels, waiting
from ..cases.access import Section
from ..core.columns import utcnow
from ..core.extensions import db
from ..directory import services as directory
from ..grants import coverage
from ..grants.forms import CloseForm, PlanForm
from ..grants.models import Grant, GrantStatus, PaymentPlan, PlanKind
from ..grants.plans import closing_reason
from ..ledger.balances import allocation_balances
from ..ledger.models import Delivery, Disbursement, ReceiptAnswer
from ..ledger.reversals import reversal_partners, taken_back
from ..reviews.forms import ConflictForm
from . import holds
from .bounds import SECOND_PERSONS
from .forms import (
    BOUND_WORDS,
    HeldConfirmForm,
    MoveForm,
    PaymentForm,
    ProofForm,
    RefuseForm,
    ReverseForm,
    instalment_words,
)
from .proofs import added_proofs
from .receipt_forms import ReceiptAnswerForm
from .receipts import answers_of
from .reschedule import movable
from .services import grant_instalments
from .to_pay import due_in_pools, still_due


def _reached_payee():
    """SQL condition: a payment (not a reversal) of which something reached the payee side:
    not reversed, or reversed in part only (``Disbursement.stands_in_part``)."""
    return sa.and_(
        Disbursement.reversal_of_id.is_(None),
        taken_back(Disbursement, "reached: reversals") < Disbursement.amount,
    )


def grant_payments(grant):
    """The grant's payments of which something reached the payee side (a payment reversed
    in part is shown with what is left of it), newest first, each with the payee side's
    answers on it, oldest first: rows of (payment, answers)."""
    payments = (
        db.session.execute(
            sa.select(Disbursement)
            .where(Disbursement.grant_id == grant.id, _reached_payee())
            .options(
                sa.orm.selectinload(Disbursement.reversals),
                # In another currency than the grant's, a payment says what it counts for.
                sa.orm.joinedload(Disbursement.allocation),
            )
            .order_by(Disbursement.paid_on.desc(), Disbursement.id.desc())
        )
        .scalars()
        .all()
    )
    answers = answers_of([p.id for p in payments])
    return [(p, answers[p.id]) for p in payments]


#: How long after it was made a payment of a grant no longer running waits for the payee
#: side to say whether it arrived, on their list of cases: by then finance has followed
#: it up (``RECEIPT_OVERDUE_DAYS``), and a case closed years ago waits for nothing.
ANSWER_AWAITED_DAYS = 90


@waiting.register
def payments_to_confirm(applications):
    """(application id, ``Waiting.PAYMENT``) for each of ``applications`` with a payment of
    which something reached the payee side (reversed in part at most) that it has not
    answered yet (received, received less, not received): while its grant runs, or for
    ``ANSWER_AWAITED_DAYS`` after it was made. The case page still takes an answer later."""
    since = utcnow().date() - timedelta(days=ANSWER_AWAITED_DAYS)
    rows = db.session.execute(
        sa.select(Grant.application_id)
        .join(Disbursement, Disbursement.grant_id == Grant.id)
        .where(
            Grant.application_id.in_([a.id for a in applications]),
            sa.or_(Grant.status == GrantStatus.ACTIVE, Disbursement.paid_on >= since),
            _reached_payee(),
            ~sa.exists().where(ReceiptAnswer.disbursement_id == Disbursement.id),
        )
        .distinct()
    ).scalars()
    return [(application_id, waiting.Waiting.PAYMENT) for application_id in rows]


def grant_ledger(grant):
    """Every payment and reversal row of the grant, with the payee side's answer that
    stands (or None) and its delivery, newest first: by date, then the later written
    first."""
    rows = db.session.execute(
        sa.select(Disbursement, Delivery)
        .outerjoin(Delivery, Delivery.disbursement_id == Disbursement.id)
        .where(Disbursement.grant_id == grant.id)
        .options(sa.orm.joinedload(Disbursement.pool), sa.orm.joinedload(Disbursement.confirmed_by))
        .order_by(Disbursement.paid_on.desc(), Disbursement.id.desc())
    ).all()
    answers = answers_of([p.id for p, _d in rows])
    return [(p, answers[p.id][-1] if answers[p.id] else None, d) for p, d in rows]


def payment_form(grant, balances, instalments, formdata=True, payer=None, due=None):
    """The payment form with the grant's pools and instalments to choose from (each with
    what is still due of it, from ``due``, else read here), and the directory's entries
    ``payer`` may pay."""
    if due is None:
        due = still_due(instalments)
    form = PaymentForm() if formdata else PaymentForm(formdata=None)
    form.payee_entry.choices = [SelectChoice("", "—")] + [
        SelectChoice(e.uid, e.name) for e in directory.payable_entries(payer)
    ]
    form.allocation.choices = [
        SelectChoice(a.id, f"{a.pool.name} ({a.pool.currency})") for a, _r, _p in balances
    ]
    form.instalment.choices = [SelectChoice(0, "—")] + [
        SelectChoice(i.id, instalment_words(i, due.get(i.id, i.amount))) for i in instalments
    ]
    if not formdata:
        form.currency_paid.data = grant.currency
        # The plan is paid in order: the form starts on the first instalment still due.
        first_due = next((i.id for i in instalments if due.get(i.id, i.amount) > 0), None)
        form.instalment.data = first_due or 0
    return form


@panels.register
def payments_panel(application, user, sections):
    """What was granted, how it will be paid, and each payment: the applicant side's view
    (``GRANT``), or the staff's ledger (``LEDGER``) with payees for finance (``PAYEES``)."""
    if not sections & {Section.GRANT, Section.LEDGER}:
        return None
    grant = db.session.execute(
        sa.select(Grant).where(Grant.application_id == application.id)
    ).scalar_one_or_none()
    if grant is None:
        return None
    plan = db.session.execute(
        sa.select(PaymentPlan).where(PaymentPlan.grant_id == grant.id)
    ).scalar_one_or_none()
    instalments = grant_instalments(grant) if plan is not None else []
    if Section.LEDGER not in sections:
        payments = grant_payments(grant)
        answering = user.is_applicant_side
        due = still_due(instalments)
        return {
            "template": "disbursements/_case_payments.html",
            "grant": grant,
            "plan": plan,
            "instalments": instalments,
            "due": due,
            "closed": grant.status != GrantStatus.ACTIVE,
            # Closed with a part unpaid (or with no plan saying what was to come): the
            # defender is told that part will not come.
            "unpaid": plan is None or any(due.get(i.id, i.amount) for i in instalments),
            "payments": payments,
            # One form for every payment, and the one refused a moment ago for its payment.
            "form": ReceiptAnswerForm(formdata=None) if answering else None,
            "refused": _refused(ReceiptAnswerForm(formdata=None), {p.uid for p, _a in payments})
            if answering
            else None,
        }
    return _staff_money(grant, plan, instalments, user, sections)


def _staff_money(grant, plan, instalments, user, sections):
    """The staff's ledger of ``grant``: its pools, payments and reversals, the payments
    held for a second person, and the forms the user's role may send."""
    balances = allocation_balances(grant.id)
    rows = grant_ledger(grant)
    active = grant.status == GrantStatus.ACTIVE
    due = still_due(instalments)
    finance = user.role == Role.FINANCE
    manager = user.role == Role.MANAGER
    # Held payments are for the second persons to see: finance and managers (the payee
    # details and proof to finance only).
    held = holds.held_payments(grant) if finance or manager else []
    # Each form as the user sent it when it was refused a moment ago, else a fresh one;
    # a form shown on rows of a table comes back on the row it was sent for (about).
    fresh = {"formdata": None}
    partners = reversal_partners(Disbursement, [p for p, _r, _d in rows], Disbursement.paid_on)
    # What has not come back yet of each payment: it may be reversed in several parts, until
    # all of it came back (its partner holds what its reversals took back in all).
    left = {
        p.uid: p.amount - (partners[p.id]["amount"] if p.id in partners else 0)
        for p, _r, _d in rows
        if not p.reversal_of_id
    }
    reversible = {uid for uid, rest in left.items() if rest > 0}
    later = added_proofs([p.id for p, _r, _d in rows if not p.proof_document_id])
    proved = {p.uid for p, _r, _d in rows if p.proof_document_id or p.id in later}
    # A payment that came back in full needs no proof: none is asked for it.
    unproved = {uid for uid, rest in left.items() if rest > 0 and uid not in proved}
    return {
        **_held_forms(held, user),
        "template": "disbursements/_staff_money.html",
        "grant": grant,
        "closing_reason": closing_reason(grant),
        "plan": plan,
        "instalments": instalments,
        "balances": balances,
        "rows": rows,
        "reversible": reversible,
        "left": left,
        "partners": partners,
        "show_payee": Section.PAYEES in sections,
        "pay_form": restore(payment_form(grant, balances, instalments, False, user, due))
        if finance and active
        else None,
        "due": due,
        "due_pools": due_in_pools(grant, balances, due),
        "reverse_form": ReverseForm(**fresh) if finance else None,
        "reverse_refused": _refused(ReverseForm(**fresh), reversible) if finance else None,
        # A proof that came after its payment: added on the payment's row.
        "proved": proved,
        "unproved": unproved,
        "proof_form": ProofForm(**fresh) if finance else None,
        "proof_refused": _refused(ProofForm(**fresh), unproved) if finance else None,
        # Reviewers and managers declare a conflict in the review section.
        "conflict_form": restore(ConflictForm(**fresh)) if finance else None,
        **(_plan_form(grant) if manager and active and plan is None else {"plan_form": None}),
        # The plan's last instalments nothing was paid on: a manager may move their dates.
        "movable": movable(plan, {i.id: i.amount - due.get(i.id, i.amount) for i in instalments})
        if manager and active and plan is not None
        else [],
        "move_form": restore(MoveForm(**fresh)) if manager and active and plan else None,
        "close_form": restore(CloseForm(**fresh)) if manager and active else None,
    }


def _plan_form(grant):
    """The form planning ``grant``, as it was refused a moment ago, else a fresh one; on a
    case that is a fund's part of a stay shared by referral, filled in for the months the
    referral asked (as a stipend from when the first of them falls, when the referring
    fund's stipend places it), and those months."""
    asked = coverage.months_asked(grant.application_id)
    filled = {}
    if asked is not None:
        filled = {"kind": PlanKind.STIPEND.value, "count": asked["count"]}
        if asked["starts_on"] is not None:
            filled["starts_on"] = asked["starts_on"]
    return {"plan_form": restore(PlanForm(formdata=None, **filled)), "months_asked": asked}


def _held_forms(held, user):
    """The payments held for a second person, and the forms to confirm or refuse one (each
    as it was refused a moment ago for the payment it was sent for, else a fresh one)."""
    fresh = {"formdata": None}
    waiting = {h.uid for h in held}
    return {
        "held": held,
        "may_decide": user.role in SECOND_PERSONS,
        "bounds": BOUND_WORDS,
        "confirm_form": HeldConfirmForm(**fresh) if held else None,
        "confirm_refused": _refused(HeldConfirmForm(**fresh), waiting) if held else None,
        "refuse_form": RefuseForm(**fresh) if held else None,
        "refuse_refused": _refused(RefuseForm(**fresh), waiting) if held else None,
    }


def _refused(form, rows):
    """``form`` as it was refused a moment ago for one of ``rows``, or None."""
    form = restore(form, rows)
    return form if form.refused else None
