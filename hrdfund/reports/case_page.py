"""The staff's case page, read at a glance: a summary at the top (who, as far as the reader
may see; what support; how much was asked, approved and paid; the status in staff words;
the next step and whose it is; the time left to the target) and, at the bottom, the case's
history from the audit log: who did what and when, without content.

Both are read-only panels (``cases.panels``) for the staff who may open the case, each
showing only what the reader's sections (``cases.access.sections``) let them see."""

import functools
import json

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..audit.models import AuditEvent
from ..auth.models import Role, User
from ..auth.views import ROLE_LABELS
from ..cases import panels, targets
from ..cases.access import Section
from ..cases.models import ApplicationStatus as S
from ..cases.models import Urgency
from ..cases.states import OPEN_STATES, STAFF_LABELS
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import quantize
from ..core.sql import summed
from ..core.times import moment, time_left
from ..disbursements.models import HeldPayment, HoldStatus
from ..disbursements.rules import COVER_TOLERANCE, instalment_unsettled
from ..grants.decisions import first_approval
from ..grants.models import Grant, Instalment, PaymentPlan
from ..grants.plans import closing_reason
from ..ledger.balances import grants_paid, instalments_paid
from ..ledger.models import Allocation, Disbursement
from ..reviews.models import Review

#: The most entries the history lists, newest first.
HISTORY_LIMIT = 300

#: The statuses whose clock runs to a response or decision target.
TIMED = OPEN_STATES - {S.DRAFT}


def _name(user):
    return user.display_name or user.login


# ---------------------------------------------------------------- the summary


@panels.register
def summary_panel(application, user, sections):
    """At the top of a staff case page: the case at a glance."""
    if not user.is_staff or Section.CASE not in sections:
        return None
    grant = db.session.execute(
        sa.select(Grant).where(Grant.application_id == application.id)
    ).scalar_one_or_none()
    what, who = next_step(application, grant)
    return {
        "template": "reports/_case_summary.html",
        "slot": "top",
        "defender": application.defender_name if Section.STORY in sections else None,
        "status": STAFF_LABELS[application.status],
        "urgent": application.urgency == Urgency.URGENT,
        "grant": grant,
        "paid": _paid(grant) if grant is not None and Section.LEDGER in sections else None,
        "step": what,
        "whose": who,
        **_target(application),
    }


def _paid(grant):
    """What the grant's payments settle, net of their reversals, in the grant's currency
    (each payment at its pool's commitment rate, as instalments are settled)."""
    share = Disbursement.amount / Allocation.fx_rate
    total = db.session.execute(
        sa.select(summed(sa.case((Disbursement.reversal_of_id.is_(None), share), else_=-share)))
        .join(Allocation, Allocation.id == Disbursement.allocation_id)
        .where(Disbursement.grant_id == grant.id)
    ).scalar_one()
    return quantize(total)


def _target(application):
    found = target_words(application)
    return {"target": found[0] if found else None, "late": bool(found and found[1])}


def target_words(application, now=None):
    """(the time left to the case's next target in words, with the moment it falls due and
    its time zone; whether it is overdue), or None when no target runs."""
    if application.status not in TIMED:
        return None
    now = now or utcnow()
    found = targets.next_target(application, now)
    if found is None:
        return None
    kind, hours, paused = found
    label = _("First response") if kind == "response" else _("Decision")
    if paused:
        return _(
            "%(target)s: clock paused while the applicant side answers (%(left)s)",
            target=label,
            left=time_left(hours),
        ), False
    due = application.response_due_at if kind == "response" else application.decision_due_at
    return _(
        "%(target)s: %(left)s (due %(moment)s)",
        target=label,
        left=time_left(hours),
        moment=moment(due),
    ), hours < 0


def next_step(application, grant):
    """(what comes next, who takes it: a role or a named person) for ``application``, in
    words; (None, None) when nothing is left to do."""
    status = application.status
    if status == S.DRAFT:
        return _("Send the application"), _("the applicant side")
    if status == S.SUBMITTED:
        return _("Assign a reviewer"), _("a manager, or a reviewer who takes the case")
    if status == S.IN_REVIEW:
        reviewer = application.assigned_reviewer
        return (
            _("Check the references and recommend"),
            _name(reviewer) if reviewer is not None else _("a reviewer: nobody is assigned yet"),
        )
    if status == S.INFO_REQUESTED:
        return _("Answer the fund's question"), _("the applicant side")
    if status == S.RECOMMENDED:
        review = db.session.execute(
            sa.select(Review)
            .where(Review.application_id == application.id)
            .order_by(Review.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        # A reviewer's recommendation goes to any manager; a manager's, to another one.
        who = (
            _("a manager other than %(name)s, who recommended it", name=_name(review.reviewer))
            if review is not None and review.reviewer.role == Role.MANAGER
            else _("a manager")
        )
        return _("Decide: approve, ask a question or reject"), who
    if status == S.AWAITING_SECOND_APPROVAL:
        first = first_approval(application)
        who = (
            _("a second manager, not %(name)s, who approved first", name=_name(first.manager))
            if first is not None
            else _("a second manager")
        )
        return _("Confirm the first approval as it stands"), who
    if status in (S.APPROVED, S.PAYING) and grant is not None:
        return _money_step(grant)
    if status == S.COMPLETED and grant is not None and closing_reason(grant):
        return _("Nothing: the grant was closed early, what it had not paid given back"), None
    if status == S.COMPLETED:
        return _("Nothing: the support is complete"), None
    return _("Nothing: the case is closed"), None


def _money_step(grant):
    """The next step of an approved grant: a payment held for a second person, the next
    instalment not paid in full, the first payment, or closing the grant."""
    held = db.session.execute(
        sa.select(HeldPayment)
        .where(HeldPayment.grant_id == grant.id, HeldPayment.status == HoldStatus.HELD)
        .order_by(HeldPayment.id)
        .limit(1)
    ).scalar_one_or_none()
    if held is not None:
        return (
            _("Confirm or refuse the payment waiting for a second person"),
            _(
                "finance or a manager other than %(name)s, who entered it",
                name=_name(held.recorded_by),
            ),
        )
    # What this grant's instalments are paid, not every instalment of the fund's.
    paid = instalments_paid([grant.id])
    row = db.session.execute(
        sa.select(PaymentPlan.id, Instalment)
        .select_from(PaymentPlan)
        .outerjoin(Instalment, Instalment.plan_id == PaymentPlan.id)
        .outerjoin(paid, paid.c.instalment_id == Instalment.id)
        .where(
            PaymentPlan.grant_id == grant.id,
            sa.or_(
                Instalment.id.is_(None),
                instalment_unsettled(sa.func.coalesce(paid.c.paid, 0)),
            ),
        )
        .order_by(Instalment.seq)
        .limit(1)
    ).first()
    if row is None:
        planned = db.session.execute(
            sa.select(PaymentPlan.id).where(PaymentPlan.grant_id == grant.id)
        ).first()
        if planned is None:
            paid_so_far = grants_paid([grant.id])
            settled = db.session.execute(sa.select(paid_so_far.c.paid)).scalar() or 0
            # Paid to within the rounding the list of grants to pay allows (francs paid for
            # a grant in euros leave a cent or two): the manager closes it, freeing them.
            if settled >= grant.amount - COVER_TOLERANCE:
                return _("Close the grant: it is paid in full"), _("a manager")
            return _("Pay the grant (a manager may first plan its payments)"), _("finance")
        return _("Close the grant: every instalment is paid"), _("a manager")
    instalment = row[1]
    if instalment is None:
        return _("Close the grant: every instalment is paid"), _("a manager")
    return (
        _(
            "Pay instalment %(seq)d, due on %(day)s",
            seq=instalment.seq,
            day=instalment.due_on.isoformat(),
        ),
        _("finance"),
    )


# ---------------------------------------------------------------- the history

#: What each audit entry about a case says, and the section its reader must see for it to
#: be listed (None: every member of staff of the case).
ACTIONS = {
    "application.started": (None, _l("started the application")),
    "application.saved": (None, _l("saved the draft")),
    "application.status": (None, None),  # the move, in staff words
    "application.assigned": (Section.REVIEW, _l("assigned a reviewer")),
    "application.conflict_declared": (
        Section.REVIEW,
        _l("declared a conflict of interest and left the case"),
    ),
    "reference.checked": (Section.REFERENCES, _l("recorded a reference check")),
    "review.recorded": (Section.REVIEW, _l("recorded the assessment and recommendation")),
    "case_note.added": (Section.REVIEW, _l("added a note")),
    "cofunding.recorded": (Section.REVIEW, _l("recorded another funder")),
    "network.asked": (Section.REVIEW, _l("asked the other member funds about this defender")),
    "referral.sent": (Section.REVIEW, _l("referred the case to another member fund")),
    "referral.received": (Section.REVIEW, _l("received the case's referral")),
    "referral.accepted": (Section.REVIEW, _l("accepted the referral")),
    "referral.declined": (Section.REVIEW, _l("declined the referral")),
    "referral.withdrawn": (Section.REVIEW, _l("withdrew the referral")),
    "referral.supported": (Section.REVIEW, _l("recorded the support given under the referral")),
    "referral.packet_made": (Section.REVIEW, _l("made the referral's packet for another server")),
    "referral.answer_packet_made": (
        Section.REVIEW,
        _l("made the packet answering the referral for another server"),
    ),
    "network.matched": (
        Section.REVIEW,
        _l("asked whether this fund has a case for the same defender"),
    ),
    "message.posted": (Section.THREAD, _l("wrote a message")),
    "document.uploaded": (Section.DOCUMENTS, _l("added a document")),
    "document.downloaded": (Section.DOCUMENTS, _l("opened a document")),
    "consent.given": (None, _l("gave a consent")),
    "consent.withdrawn": (None, _l("withdrew a consent")),
    "case.partner_label_changed": (None, _l("changed the organisation's own label of the case")),
    "report.submitted": (None, _l("sent the use-of-funds report")),
    "grant.approved": (None, _l("approved the grant")),
    "allocation.created": (Section.LEDGER, _l("committed money from a pool")),
    "plan.created": (Section.LEDGER, _l("planned the payments")),
    "plan.moved": (Section.LEDGER, _l("moved the dates of the payments not made yet")),
    "grant.closed": (Section.LEDGER, _l("closed the grant")),
    "payment.held": (Section.LEDGER, _l("entered a payment to be confirmed by a second person")),
    "payment.confirmed": (Section.LEDGER, _l("confirmed a payment entered by someone else")),
    "payment.refused": (Section.LEDGER, _l("refused a payment entered by someone else")),
    "payment.recorded": (Section.LEDGER, _l("recorded a payment")),
    "payment.reversed": (Section.LEDGER, _l("reversed a payment")),
    "payment.proof_added": (Section.PAYEES, _l("added the proof of a payment")),
    "payment.receipt_confirmed": (Section.LEDGER, _l("confirmed receiving a payment")),
    "payment.receipt_answered": (Section.LEDGER, _l("said whether a payment arrived")),
    "payment.receipt_problem_resolved": (
        Section.LEDGER,
        _l("recorded how a payment reported short or not received was resolved"),
    ),
}
#: An entry of the case this table does not name yet: said without its content.
OTHER = (Section.REVIEW, _l("recorded another step"))


def _case_rows(case_id, case_uid):
    """SQL: (table, opaque id) of the case and of every row of it, or of its grant, that an
    audit entry may name: as :func:`hrdfund.audit.record` names them (a row's uid, else
    its number). Read from the tables themselves, so a new kind of row is not forgotten.
    ``case_id`` and ``case_uid`` are the case's, as SQL (bound parameters)."""
    grants = sa.select(Grant.id).where(Grant.application_id == case_id)
    parts = [
        sa.select(
            sa.literal("applications", sa.String).label("object_type"),
            case_uid.label("object_id"),
        )
    ]
    for table in db.metadata.sorted_tables:
        if table.name == "audit_events":
            continue
        if "application_id" in table.c:
            mine = table.c.application_id == case_id
        elif "grant_id" in table.c:
            mine = table.c.grant_id.in_(grants)
        else:
            continue
        if "uid" not in table.c and "id" not in table.c:
            continue  # kept figures (the open items), which no audit entry names
        opaque = table.c.uid if "uid" in table.c else sa.cast(table.c.id, sa.String)
        parts.append(
            sa.select(
                sa.literal(table.name, sa.String).label("object_type"), opaque.label("object_id")
            ).where(mine)
        )
    return sa.union_all(*parts).subquery()


@functools.cache
def _history_statement():
    """The statement of a case's history, built once: a select over every table that
    holds a case's rows took longer to build than to run. The case, its fund and the
    number of entries are bound when it runs."""
    case_id = sa.bindparam("case_id", type_=sa.Integer)
    rows = _case_rows(case_id, sa.bindparam("case_uid", type_=sa.String))
    # An entry names its actor "u<id>" (``User.pseudonym``) or "system": the account
    # is found by its key, never by reading every account.
    actor = sa.case(
        (AuditEvent.actor.like("u%"), sa.cast(sa.func.substr(AuditEvent.actor, 2), sa.Integer))
    )
    return (
        sa.select(AuditEvent.at, AuditEvent.action, AuditEvent.payload, User)
        .outerjoin(User, User.id == actor)
        .where(
            # The fund's own chain (a referral is recorded in the other fund's too),
            # checked on the entries found, not used to find them: ``+ 0`` keeps a
            # planner from reading the fund's whole chain through its index.
            AuditEvent.chain + 0 == sa.bindparam("fund_id", type_=sa.Integer),
            # The ids, which the index on object_id finds; then each with its table,
            # as two rows of different tables may have the same number.
            AuditEvent.object_id.in_(sa.select(rows.c.object_id)),
            sa.tuple_(AuditEvent.object_type, AuditEvent.object_id).in_(
                sa.select(rows.c.object_type, rows.c.object_id)
            ),
        )
        # By time, not by the primary key: walking the whole log backwards by its key
        # until enough entries of one case turn up is the plan to avoid.
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def case_history(application, limit=HISTORY_LIMIT):
    """The audit entries of the fund's chain about ``application`` and its rows, newest
    first, each with the account that acted (None for the system or an account gone): one
    query, however long the history."""
    return db.session.execute(
        _history_statement(),
        {
            "case_id": application.id,
            "case_uid": application.uid,
            "fund_id": application.fund_id,
            "limit": limit,
        },
    ).all()


def _who(account, application):
    """The actor as staff may read it: a colleague of the case's fund by name and role,
    the applicant side and the staff of another member fund without a name."""
    if account is None:
        return _("hrdfund or an account no longer on record")
    if account.role in (Role.APPLICANT, Role.PARTNER):
        return _("the applicant side")
    if account.fund_id != application.fund_id:
        return _("staff of another member fund")
    return _("%(name)s (%(role)s)", name=_name(account), role=ROLE_LABELS.get(account.role, ""))


def _what(action, payload, at, application, sections):
    """The words of one entry for a reader of ``sections``, or None when it is not theirs
    to read."""
    section, words = ACTIONS.get(action, OTHER)
    if action == "message.posted" and Section.THREAD not in sections:
        # Finance reads the messages from the decision on.
        decided = application.decided_at
        # Audit times are kept to the second.
        if (
            Section.PAYMENT_MESSAGES in sections
            and decided is not None
            and at >= decided.replace(microsecond=0)
        ):
            return str(words)
        return None
    if section is not None and section not in sections:
        return None
    if action != "application.status":
        return str(words)
    moved = json.loads(payload or "{}")
    try:
        before, after = S(moved.get("from_status")), S(moved.get("to_status"))
    except ValueError:
        return _("changed the status")
    if after == S.AWAITING_SECOND_APPROVAL:
        # A first approval above the threshold: said as the decision it is.
        return _("gave the first approval; a second manager confirms it")
    return _(
        "moved the case from %(before)s to %(after)s",
        before=STAFF_LABELS[before],
        after=STAFF_LABELS[after],
    )


@panels.register
def history_panel(application, user, sections):
    """At the bottom of a staff case page: who did what and when, without content."""
    if not user.is_staff or Section.CASE not in sections:
        return None
    entries = []
    rows = case_history(application)
    for at, action, payload, account in rows:
        what = _what(action, payload, at, application, sections)
        if what is not None:
            entries.append({"at": moment(at), "who": _who(account, application), "what": what})
    return {
        "template": "reports/_case_history.html",
        "slot": "bottom",
        "entries": entries,
        "cut": len(rows) >= HISTORY_LIMIT,
        "limit": HISTORY_LIMIT,
    }
