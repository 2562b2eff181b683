"""Retention: closed cases purged after a configurable period (SECURITY.md, promise 25).

``flask hrdfund purge --dry-run`` lists what would go; ``flask hrdfund purge`` does it.

A case closed (completed, not approved or withdrawn) more than ``RETENTION_DAYS`` ago, with
no grant still open, is reduced to the figures reports need: its category, country, region,
gender, number of dependants, urgency, dates, amounts and outcome answers stay; every
encrypted field, its people, messages, notes, references, documents, stories and the
referring partner's label go (its consents stay, dated), and the encrypted fields of its
payments and releases (payee details, references, reasons, rate sources) are emptied with
their blind indexes. Their amounts stay whole, so
every pool still balances and past donor reports add up as before. A draft never sent is deleted
outright. An applicant account with nothing left but purged cases, unused for the same
period, is emptied: no login name, contact or second factor, and it can no longer sign in.

Forms refused a while ago and never read back (``auth.refused``) are deleted too: each
waits a few minutes for its page, and is otherwise deleted when a form is next refused. So
are invitations to accounts whose link no longer opens (used, withdrawn or expired).

Audit entries name cases and accounts by opaque ids, so the chain verifies afterwards.
"""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..alerts.models import Alert
from ..auth import invitations, refused
from ..auth.models import Fund, RecoveryCode, Role, User
from ..cases.documents import delete_document_file
from ..cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Decision,
    Dependant,
    Document,
    Message,
    PartnerLabel,
    Reference,
    Story,
    UseOfFundsReport,
)
from ..cases.withdrawal import delete_drafts
from ..core.columns import utcnow
from ..core.extensions import db
from ..disbursements import open_items
from ..disbursements.models import HeldPayment, PaymentProof
from ..grants.models import Grant, GrantStatus
from ..ledger.models import (
    Allocation,
    Disbursement,
    ReceiptAnswer,
    ReceiptResolution,
    Release,
)
from ..ledger.seals import writable_columns
from ..network.models import Referral
from ..reviews.models import CaseNote, Cofunding, Review

CLOSED = (ApplicationStatus.COMPLETED, ApplicationStatus.REJECTED, ApplicationStatus.WITHDRAWN)
BATCH = 200

#: What purging does to each table that hangs off a case. Rows of DELETED tables go; the
#: encrypted columns of CLEARED tables are emptied and their figures stay; KEPT tables hold
#: no personal data. A test fails when a table refers to cases and is in none of the three.
DELETED = (Story, Dependant, Reference, Message, CaseNote, Alert, Document, PartnerLabel)
CLEARED = {
    BudgetLine: ("_description",),
    Review: ("_assessment",),
    Decision: ("_reason",),
    UseOfFundsReport: ("_narrative",),
    Cofunding: ("_funder",),
    #: Why a case was referred to another member fund, and why that fund declined: the
    #: referral stays (which fund handled which part), its words go.
    Referral: ("_reason", "_decline_reason"),
}
#: Consents stay: the record of what the defender agreed to, with no personal data, and
#: what decides which grants donor reports list, so a report downloaded again after a
#: purge is the report it was (no difference between the two downloads to subtract).
#: The open items staff chase and the first payments hold ids and dates only, and a
#: purged case has none: they are worked out again as the case is purged.
KEPT = (
    "status_changes",
    "conflict_declarations",
    "grants",
    "consents",
    "open_items",
    "first_payments",
)
#: Final ledger rows of a case, reached through its grant: their amounts stay, and every
#: column the database lets change on them (encrypted fields and their blind indexes) is
#: emptied: the payee side's notes on its payments and finance's on resolving them too.
LEDGER_CLEARED = (Disbursement, Release, ReceiptAnswer, ReceiptResolution)
#: The columns of a case's payments held for a second person that purging empties: every
#: encrypted one (what finance typed); their figures stay.
HELD_CLEARED = tuple(writable_columns("held_payments"))
APPLICATION_CLEARED = (
    "_defender_name",
    "_defender_work",
    "_threat",
    "_urgency_reason",
    "_other_funders",
    "_details",
)


@dataclass
class PurgePlan:
    """What a purge would remove, found before anything changes."""

    cutoff: object
    cases: list = field(default_factory=list)
    drafts: list = field(default_factory=list)
    accounts: list = field(default_factory=list)
    #: Refused forms past their time, never read back.
    refused_forms: int = 0
    #: Invitations to accounts whose link no longer opens.
    invitations: int = 0

    @property
    def empty(self):
        return not (
            self.cases or self.drafts or self.accounts or self.refused_forms or self.invitations
        )


def retention_days():
    return current_app.config["RETENTION_DAYS"]


def plan_purge(now=None):
    """The closed cases, old drafts and applicant accounts due for purging (ids)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days())
    open_grant = sa.exists().where(
        Grant.application_id == Application.id, Grant.status != GrantStatus.CLOSED
    )
    closed_on = sa.func.coalesce(Application.closed_at, Application.decided_at)
    # What a partner fund on another server shared by a referral packet is held in a case of
    # that fund's record here: it goes once its referral was answered (or made, if never
    # answered) longer ago than the retention period.
    partner_copy = sa.and_(
        sa.exists().where(Fund.id == Application.fund_id, Fund.partner_of_id.is_not(None)),
        ~sa.exists().where(
            Referral.application_id == Application.id,
            sa.func.coalesce(Referral.answered_at, Referral.created_at) >= cutoff,
        ),
    )
    due = db.session.execute(
        sa.select(Application.id, Application.submitted_at)
        .where(
            Application.purged_at.is_(None),
            sa.or_(
                sa.and_(Application.status.in_(CLOSED), closed_on < cutoff, ~open_grant),
                partner_copy,
                sa.and_(
                    Application.status == ApplicationStatus.DRAFT,
                    sa.func.coalesce(Application.updated_at, Application.created_at) < cutoff,
                ),
            ),
        )
        .order_by(Application.id)
    ).all()
    plan = PurgePlan(cutoff=cutoff)
    for case_id, submitted_at in due:
        # A case never sent reached nobody: nothing of it is worth keeping.
        (plan.cases if submitted_at is not None else plan.drafts).append(case_id)
    plan.accounts = _accounts_due(cutoff, set(plan.cases) | set(plan.drafts))
    plan.refused_forms = refused.count_expired(now)
    plan.invitations = invitations.count_closed(now)
    return plan


def _accounts_due(cutoff, going):
    """Applicant accounts unused since ``cutoff`` whose every case is purged or ``going``."""
    idle = db.session.scalars(
        sa.select(User.id).where(
            User.role == Role.APPLICANT,
            User.purged_at.is_(None),
            sa.func.coalesce(User.last_login_at, User.created_at) < cutoff,
        )
    ).all()
    if not idle:
        return []
    kept = set()
    for chunk in _chunks(idle):
        kept.update(
            db.session.scalars(
                sa.select(Application.applicant_id).where(
                    Application.applicant_id.in_(chunk),
                    Application.purged_at.is_(None),
                    Application.id.not_in(going) if going else sa.true(),
                )
            )
        )
    return [user_id for user_id in idle if user_id not in kept]


def _chunks(ids):
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _delete_documents(case_ids):
    """Wipe and remove a case's own documents, and empty the proofs of its payments (the
    payment rows keep pointing at them, so the proof rows stay, without file or name)."""
    own = db.session.scalars(sa.select(Document).where(Document.application_id.in_(case_ids)))
    proofs = db.session.scalars(sa.select(Document).where(Document.id.in_(_proof_ids(case_ids))))
    for document in [*own, *proofs]:
        delete_document_file(document)
    db.session.execute(
        sa.update(Document)
        .where(Document.id.in_(_proof_ids(case_ids)))
        .values(_filename=None)
        .execution_options(synchronize_session=False)
    )


def _proof_ids(case_ids):
    """The proofs of the cases' payments, booked or held for a second person, and those
    added after their payment."""
    return sa.union(
        *(
            sa.select(model.proof_document_id)
            .join(Grant, Grant.id == model.grant_id)
            .where(Grant.application_id.in_(case_ids), model.proof_document_id.is_not(None))
            for model in (Disbursement, HeldPayment)
        ),
        sa.select(PaymentProof.document_id)
        .join(Disbursement, Disbursement.id == PaymentProof.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .where(Grant.application_id.in_(case_ids)),
    )


def _delete_rows(case_ids):
    for model in DELETED:
        db.session.execute(
            sa.delete(model)
            .where(model.application_id.in_(case_ids))
            .execution_options(synchronize_session=False)
        )


def _reduce_cases(case_ids, tokens, now):
    _delete_documents(case_ids)
    _delete_rows(case_ids)
    for model, columns in CLEARED.items():
        db.session.execute(
            sa.update(model)
            .where(model.application_id.in_(case_ids))
            .values(dict.fromkeys(columns))
            .execution_options(synchronize_session=False)
        )
    # The other fund's case of a referral is about the same defender: its referral's words
    # go too when that case is purged.
    db.session.execute(
        sa.update(Referral)
        .where(Referral.linked_application_id.in_(case_ids))
        .values(dict.fromkeys(CLEARED[Referral]))
        .execution_options(synchronize_session=False)
    )
    _clear_ledger_rows(case_ids)
    _clear_held_payments(case_ids)
    # A partner fund's copy is recorded in the chain of the member fund that imported it.
    cases = db.session.execute(
        sa.select(
            Application.id,
            Application.uid,
            Application.defender_key,
            sa.func.coalesce(Fund.partner_of_id, Fund.id),
        )
        .join(Fund, Fund.id == Application.fund_id)
        .where(Application.id.in_(case_ids))
    ).all()
    for case_id, uid, key, fund_id in cases:
        # Defender keys could confirm a guessed name; a new random token per defender keeps
        # the count of distinct defenders among the cases purged together. The network key
        # goes altogether: a purged case leaves the duplicate check across funds.
        token = tokens.setdefault(key, secrets.token_hex(16)) if key else None
        cleared = {**dict.fromkeys(APPLICATION_CLEARED), "network_key": None}
        db.session.execute(
            sa.update(Application)
            .where(Application.id == case_id)
            .values({**cleared, "defender_key": token, "purged_at": now})
            .execution_options(synchronize_session=False)
        )
        audit.record("case.purged", object_type="applications", object_id=uid, fund=fund_id)
    # Written around the ORM: a purged case leaves the open items staff chase.
    open_items.refresh(case_ids)


def _ledger_rows_of(model, case_ids):
    """The condition selecting the case's rows of a final ledger table."""
    grants = sa.select(Grant.id).where(Grant.application_id.in_(case_ids))
    if model is Release:
        allocations = sa.select(Allocation.id).where(Allocation.grant_id.in_(grants))
        return Release.allocation_id.in_(allocations)
    payments = sa.select(Disbursement.id).where(Disbursement.grant_id.in_(grants))
    if model is ReceiptAnswer:
        return ReceiptAnswer.disbursement_id.in_(payments)
    if model is ReceiptResolution:
        answers = sa.select(ReceiptAnswer.id).where(ReceiptAnswer.disbursement_id.in_(payments))
        return ReceiptResolution.answer_id.in_(answers)
    return Disbursement.grant_id.in_(grants)


def _clear_ledger_rows(case_ids):
    """Empty the encrypted fields and blind indexes of the case's payments and releases.
    A Core UPDATE of those columns only: the database lets a final row's encrypted columns
    change, and nothing else about it; rows with nothing left to empty are not touched."""
    for model in LEDGER_CLEARED:
        table = model.__table__
        columns = [table.c[name] for name in writable_columns(table.name)]
        db.session.execute(
            sa.update(table)
            .where(_ledger_rows_of(model, case_ids), sa.or_(*(c.is_not(None) for c in columns)))
            .values(dict.fromkeys((c.name for c in columns), None))
        )


def _clear_held_payments(case_ids):
    """Empty what finance typed on the case's payments held for a second person."""
    table = HeldPayment.__table__
    grants = sa.select(Grant.id).where(Grant.application_id.in_(case_ids))
    db.session.execute(
        sa.update(table).where(table.c.grant_id.in_(grants)).values(dict.fromkeys(HELD_CLEARED))
    )


def _empty_accounts(user_ids, now):
    for user in db.session.scalars(sa.select(User).where(User.id.in_(user_ids))):
        user.login = f"purged-{user.uid}"
        user.display_name = None
        user.contact = None
        user.password_hash = None
        user.totp_secret = None
        user.totp_confirmed_at = None
        user.totp_last_step = None
        user.active = False
        user.session_version += 1
        user.purged_at = now
        db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        audit.record("account.purged", user)


def purge(plan, now=None):
    """Carry out ``plan``, one committed batch at a time."""
    now = now or utcnow()
    tokens = {}
    for chunk in _chunks(plan.cases):
        _reduce_cases(chunk, tokens, now)
        db.session.commit()
    for chunk in _chunks(plan.drafts):
        delete_drafts(chunk)
        db.session.commit()
    for chunk in _chunks(plan.accounts):
        _empty_accounts(chunk, now)
        db.session.commit()
    refused.forget_expired(now)
    invitations.forget_closed(now)
    db.session.commit()
    audit.record(
        "retention.purged",
        object_type="retention",
        object_id=now.strftime("%Y%m%dT%H%M%S"),
        cases=len(plan.cases),
        drafts=len(plan.drafts),
        accounts=len(plan.accounts),
        days=retention_days(),
    )
    db.session.commit()
