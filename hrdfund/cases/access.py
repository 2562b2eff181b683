"""Who may see which case, and which parts of it: the one visibility rule.

Every view, list, download and command asks here. ``can_see`` says whether a user may open
a case at all; ``visible_cases`` is the same rule as an SQL condition for lists, so a list
never shows a case its reader could not open; ``sections`` says which parts of an open case
the reader needs to know, and ``CaseView`` is the case as the page's template gets it:
only the fields of those sections. The declared conflicts of interest are read here too,
for every rule that keeps a declarer away from a case.

`docs/security.md` has the same rule as a table, role by role.
"""

import enum

import sqlalchemy as sa
from flask import abort, g, has_request_context, request
from flask_babel import lazy_gettext as _l

from ..auth.models import Role, User
from ..core.extensions import db
from .models import Application, ConflictDeclaration
from .models import ApplicationStatus as S


class Section(enum.StrEnum):
    """The parts of a case, each shown to the roles that need it."""

    #: Case code and short code, category, status, country and region, urgency (not its
    #: reason), amount asked, the decision's amount, dates.
    CASE = "case"
    #: The defender's name, gender, work, the threat, why it is urgent, every answer of
    #: the category (medical, family, relocation details) and other funders.
    STORY = "story"
    #: The category answers that name whom a payment may go to: the hospital, clinic or
    #: therapist, the host organisation, the lawyer.
    PAYEE = "payee"
    #: The budget lines: what each amount asked pays for.
    BUDGET = "budget"
    DEPENDANTS = "dependants"
    REFERENCES = "references"
    #: Documents of the case (quotes, reports, evidence); not proofs of payment.
    DOCUMENTS = "documents"
    #: Every message between the fund and the applicant side.
    THREAD = "thread"
    #: Only the messages from the approval on: what paying needs to ask and answer.
    PAYMENT_MESSAGES = "payment_messages"
    #: Assignment, reference checks, confidential notes, the assessment, questions,
    #: rejection, other funders, possible duplicates, declaring a conflict.
    REVIEW = "review"
    #: The fund's pools that fit the case, and the approval.
    DECISION = "decision"
    #: What was granted, the plan and each payment that stands, as the applicant sees them.
    GRANT = "grant"
    #: The pools a grant draws on, every payment and reversal with fee and exchange
    #: difference, bank deliveries and receipts.
    LEDGER = "ledger"
    #: Payee details of each payment and its proof.
    PAYEES = "payees"
    #: The applicant side's consents and use-of-funds report.
    CONSENTS = "consents"


#: The category answers that name a payee (``Section.PAYEE``).
PAYEE_FIELDS = frozenset({"provider", "host_organisation", "lawyer"})
#: Staff who review and decide.
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.MANAGER})
#: Finance sees a case from its approval on, and only its money.
MONEY_STATES = frozenset({S.APPROVED, S.PAYING, S.COMPLETED})

#: What each audience sees of a case it may open.
APPLICANT_SIDE = frozenset(
    {Section.CASE, Section.GRANT, Section.DOCUMENTS, Section.THREAD, Section.CONSENTS}
)
REVIEWING = frozenset(
    {
        Section.CASE,
        Section.STORY,
        Section.PAYEE,
        Section.BUDGET,
        Section.DEPENDANTS,
        Section.REFERENCES,
        Section.DOCUMENTS,
        Section.THREAD,
        Section.REVIEW,
        Section.DECISION,
        Section.LEDGER,
    }
)
PAYING = frozenset(
    {
        Section.CASE,
        Section.PAYEE,
        Section.BUDGET,
        Section.PAYMENT_MESSAGES,
        Section.LEDGER,
        Section.PAYEES,
    }
)
#: A purged case keeps only its figures, for the staff who may still open it.
PURGED = frozenset({Section.CASE, Section.LEDGER})

#: The case's fields each section lets a template read (``CaseView``).
FIELDS = {
    Section.CASE: (
        "uid",
        "code",
        "category",
        "status",
        "purged_at",
        "country",
        "region",
        "urgency",
        "currency",
        "amount_requested",
        "submitted_at",
        "decided_at",
        "closed_at",
    ),
    Section.STORY: (
        "defender_name",
        "gender",
        "urgency_reason",
        "defender_work",
        "threat",
        "other_funders",
    ),
    Section.BUDGET: ("budget_lines",),
    Section.DEPENDANTS: ("dependants", "dependants_count"),
    Section.REFERENCES: ("references",),
    Section.REVIEW: ("assigned_reviewer", "assigned_reviewer_id"),
}


def conflicted_cases(user):
    """SQL: the ids of the cases ``user`` declared a conflict of interest on."""
    return sa.select(ConflictDeclaration.application_id).where(
        ConflictDeclaration.user_id == user.id
    )


def conflicted_staff(application):
    """SQL: the ids of the staff who declared a conflict of interest on ``application``."""
    return sa.select(ConflictDeclaration.user_id).where(
        ConflictDeclaration.application_id == application.id
    )


#: Where a request keeps the ids of the cases each user declared a conflict on: a case
#: page asks from its access check, its sections and its referral panel, a dashboard for
#: each of its counts.
_CONFLICTED = "hrdfund_conflicted_cases"


def _conflicted(user):
    known = g.setdefault(_CONFLICTED, {}) if has_request_context() else {}
    if user.id not in known:
        known[user.id] = set(db.session.execute(conflicted_cases(user)).scalars())
    return known[user.id]


def conflicted_ids(user):
    """The ids of the cases ``user`` declared a conflict on, read once per request
    (``note_conflict`` adds a declaration made since)."""
    return sorted(_conflicted(user))


def has_conflict(application, user):
    """Whether ``user`` declared a conflict of interest on ``application``."""
    return application.id in _conflicted(user)


def note_conflict(application, user):
    """A conflict ``user`` just declared on ``application``, for the rest of the request."""
    if has_request_context():
        known = g.get(_CONFLICTED, {})
        if user.id in known:
            known[user.id].add(application.id)


def staff_on_case(application, roles):
    """SQL: the fund's active staff in ``roles`` who may work on ``application``: none who
    declared a conflict of interest on it. Every list of people offered a case (to assign,
    to alert, to confirm a payment) starts from this one."""
    return sa.select(User).where(
        User.fund_id == application.fund_id,
        User.active.is_(True),
        User.role.in_(roles),
        User.id.not_in(conflicted_staff(application)),
    )


def check_staff(application, user, error, roles=REVIEW_ROLES):
    """Raise ``error`` (the caller's domain error) with the reason in words, unless
    ``user`` is staff in ``roles`` who may see ``application``."""
    if user.role not in roles:
        raise error(_l("This step is for reviewers and managers."))
    if not can_see(application, user):
        raise error(_l("This case is outside your fund or you declared a conflict."))


def can_see(application, user):
    """The applicant, the referring organisation, the fund's reviewers and managers without
    a conflict, and the fund's finance without a conflict once the case is approved. A
    purged case is left to staff only, as the figures it was reduced to."""
    if user.role in (Role.APPLICANT, Role.PARTNER) and application.purged_at is not None:
        return False
    if user.role == Role.APPLICANT:
        return application.applicant_id == user.id
    if user.role == Role.PARTNER:
        return (
            application.partner_organisation_id is not None
            and application.partner_organisation_id == user.partner_organisation_id
        )
    if user.role == Role.FINANCE and application.status not in MONEY_STATES:
        return False
    if user.role in REVIEW_ROLES or user.role == Role.FINANCE:
        return application.fund_id == user.fund_id and not has_conflict(application, user)
    return False


def visible_cases(user):
    """SQL condition on Application: exactly the cases ``can_see`` lets ``user`` open, for
    every list of cases or of their money, so no list shows what its reader may not open."""
    kept = Application.purged_at.is_(None)
    if user.role == Role.APPLICANT:
        return sa.and_(Application.applicant_id == user.id, kept)
    if user.role == Role.PARTNER:
        if user.partner_organisation_id is None:
            return sa.false()
        return sa.and_(Application.partner_organisation_id == user.partner_organisation_id, kept)
    if user.role not in REVIEW_ROLES and user.role != Role.FINANCE:
        return sa.false()
    condition = sa.and_(
        Application.fund_id == user.fund_id, Application.id.not_in(conflicted_cases(user))
    )
    if user.role == Role.FINANCE:
        condition = sa.and_(condition, Application.status.in_(sorted(MONEY_STATES)))
    return condition


def hidden_funded_cases(user, fund_id):
    """SQL: among the approved cases of fund ``fund_id`` (those money of the fund's pools
    went to: a case is approved before any allocation, and stays in the states of
    ``MONEY_STATES``), the ids of the cases ``user`` may not open, by the rule of
    :func:`visible_cases`; None when ``user`` may open none of them.

    A list that counts a pool's rows by whether their reader may open the case subtracts
    the rows of these few cases, rather than joining every row to its case."""
    if user.role in REVIEW_ROLES or user.role == Role.FINANCE:
        if user.fund_id != fund_id:
            return None
        # Every approved case of the reader's fund is open to them but those they declared
        # a conflict on (finance sees exactly the MONEY_STATES).
        return conflicted_cases(user)
    visible = visible_cases(user)
    if isinstance(visible, sa.sql.elements.False_):
        return None
    return sa.select(Application.id).where(
        Application.fund_id == fund_id,
        Application.status.in_(sorted(MONEY_STATES)),
        # Not "NOT visible": a comparison with an empty column is neither true nor false.
        sa.case((visible, False), else_=True),
    )


def sections(application, user):
    """The parts of ``application`` that ``user`` needs to know (a frozenset of
    ``Section``); empty when they may not open it."""
    if not can_see(application, user):
        return frozenset()
    if application.purged_at is not None:
        return PURGED
    if user.role in (Role.APPLICANT, Role.PARTNER):
        return APPLICANT_SIDE
    if user.role in REVIEW_ROLES:
        return REVIEWING
    return PAYING


class CaseView:
    """``application`` as a template reads it: the fields of ``sections`` only; any other
    attribute is missing, so a page cannot show what its reader may not see."""

    def __init__(self, application, sections):
        self._application = application
        self.sections = frozenset(sections)
        self._fields = {name for section in self.sections for name in FIELDS.get(section, ())}

    def __getattr__(self, name):
        if name in self._fields:
            return getattr(self._application, name)
        raise AttributeError(name)

    @property
    def details(self):
        """The category's answers: all of them with the story, those naming a payee with
        ``PAYEE`` alone, none otherwise."""
        answers = self._application.details or {}
        if Section.STORY in self.sections:
            return answers
        if Section.PAYEE in self.sections:
            return {k: v for k, v in answers.items() if k in PAYEE_FIELDS}
        return {}


def get_application_or_404(uid, user, section=None):
    """The case with this code if ``user`` may see it (and, with ``section``, that part of
    it); 404 otherwise, whether it exists or not."""
    application = db.session.execute(
        sa.select(Application).where(Application.uid == uid)
    ).scalar_one_or_none()
    if application is None or not can_see(application, user):
        abort(404)
    if section is not None and section not in sections(application, user):
        abort(404)
    if application.purged_at is not None and request.method != "GET":
        abort(404)  # a purged case takes no more changes
    return application
