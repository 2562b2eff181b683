"""Applications and everything a case carries: dependants, budget, references,
documents, messages, consent and the timestamped history of its status."""

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    INTERNAL,
    PERSONAL,
    SENSITIVE,
    Encrypted,
    Text,
    col,
    created_at,
    currency,
    currency_check,
    encrypted_column,
    fk,
    money,
    pk,
    uid_column,
)
from ..core.columns import currency as currency_col
from ..core.columns import enum as enum_col
from ..core.extensions import db
from ..core.support import Category


class ApplicationStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    RECOMMENDED = "recommended"
    #: Approved by a first manager above the four-eyes threshold; a second must confirm.
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAYING = "paying"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


#: The statuses of a case waiting for staff (every open one but a draft), in one fixed
#: order: the queue's index covers these cases, and the queue names them in this order.
QUEUE_STATES = (
    ApplicationStatus.AWAITING_SECOND_APPROVAL,
    ApplicationStatus.IN_REVIEW,
    ApplicationStatus.INFO_REQUESTED,
    ApplicationStatus.RECOMMENDED,
    ApplicationStatus.SUBMITTED,
)
QUEUE_STATES_SQL = "(" + ", ".join(f"'{s.value}'" for s in QUEUE_STATES) + ")"


class Urgency(enum.StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class Gender(enum.StrEnum):
    WOMAN = "woman"
    MAN = "man"
    NON_BINARY = "non_binary"
    UNDISCLOSED = "undisclosed"


class Application(db.Model):
    """A request for support for one defender, submitted by them or by a partner."""

    __tablename__ = "applications"
    __table_args__ = (
        sa.CheckConstraint(
            "amount_requested IS NULL OR amount_requested > 0", name="amount_positive"
        ),
        currency_check("currency"),
        sa.CheckConstraint("dependants_count >= 0", name="dependants_positive"),
        # The queue by status and day sent; the dashboard counts the waiting cases by
        # stage, age and lateness from this index alone, so it holds the targets too.
        sa.Index(
            "ix_applications_queue",
            "fund_id",
            "status",
            "submitted_at",
            "next_due_at",
            "clock_paused_at",
        ),
        # The dashboard counts the cases received and decided each week and month, and
        # within target, from these alone (a purged case is not counted), never the rows.
        sa.Index(
            "ix_applications_decided", "fund_id", "decided_at", "decision_due_at", "purged_at"
        ),
        sa.Index("ix_applications_received", "fund_id", "submitted_at", "purged_at"),
        sa.Index("ix_applications_defender", "fund_id", "defender_key", "category"),
        sa.Index("ix_applications_network", "network_key", "category"),
        sa.Index("ix_applications_code", "code", unique=True),
        # The queue's first page, next target first: its cases in the order it lists them,
        # so a page reads its 50 rows in order instead of sorting every waiting case. Only
        # the waiting cases are in it, named as the queue names them (SQLite uses a partial
        # index only for the very same terms).
        sa.Index(
            "ix_applications_next_due",
            "fund_id",
            "next_due_at",
            "id",
            sqlite_where=sa.text(f"status IN {QUEUE_STATES_SQL}"),
            postgresql_where=sa.text(f"status IN {QUEUE_STATES_SQL}"),
        ),
    )
    id: Mapped[int] = pk()
    #: Opaque case code used in URLs and audit entries.
    uid = uid_column()
    #: The short code staff and applicants read out on a call (``HRD1-26-0412``: the
    #: fund's id, the year of sending, the fund's count for that year), given once when
    #: the case is sent (``cases.codes``) and never given again.
    code = col(sa.String(24), INTERNAL, text=Text.GENERATED, nullable=True)
    fund_id = fk("funds.id")
    #: The defender's own account, when the defender applies or was given one.
    applicant_id = fk("users.id", nullable=True)
    #: The partner organisation that referred the case, if any.
    partner_organisation_id = fk("partner_organisations.id", nullable=True)
    submitted_by_id = fk("users.id", nullable=True)
    category = enum_col(Category, "category", nullable=False, index=True)
    status = enum_col(
        ApplicationStatus, "application_status", nullable=False, default=ApplicationStatus.DRAFT
    )
    #: The defender's answer to how urgent it is. A draft the form opens has none until
    #: the defender chooses (the form chooses nothing for them: ``start_application``);
    #: a sent case always has one. Rows written otherwise start as not urgent.
    urgency = enum_col(Urgency, "urgency", nullable=True, default=Urgency.NORMAL)
    #: ISO 3166 alpha-2 country where the defender is (coarse location only).
    country = col(sa.String(2), PERSONAL, text=Text.CODE, nullable=True, index=True)
    #: Region derived from the country, used by reports.
    region = col(sa.String(40), INTERNAL, text=Text.CODE, nullable=True)
    gender = enum_col(Gender, "gender", PERSONAL, nullable=True)
    amount_requested = money(nullable=True)
    currency = currency(default="EUR")
    dependants_count = col(sa.Integer, INTERNAL, nullable=False, default=0)
    assigned_reviewer_id = fk("users.id", nullable=True)
    #: Keyed hash of the defender's normalised name and country, so a second case for the
    #: same defender is found without decrypting every case (a blind index).
    defender_key = col(sa.String(32), INTERNAL, text=Text.BLIND_INDEX, nullable=True)
    #: Keyed hash of the same name and country under the network's own key, set when the
    #: case is sent: the duplicate check across member funds matches on it, so no name or
    #: country crosses funds (``cases.services.network_key``).
    network_key = col(sa.String(64), INTERNAL, text=Text.BLIND_INDEX, nullable=True)
    #: The steps of the form the applicant side saved, comma-separated in the form's order
    #: (``cases.steps``), so the list of steps shows which are done.
    steps_saved = col(sa.String(80), INTERNAL, text=Text.CODE, nullable=True)

    _defender_name = encrypted_column("defender_name")
    defender_name = Encrypted()
    _defender_work = encrypted_column("defender_work")
    defender_work = Encrypted()
    _threat = encrypted_column("threat")
    threat = Encrypted()
    _urgency_reason = encrypted_column("urgency_reason")
    urgency_reason = Encrypted()
    _other_funders = encrypted_column("other_funders")
    other_funders = Encrypted()
    #: Fields of the category (destination, provider, months ...), as encrypted JSON.
    _details = encrypted_column("details")
    details = Encrypted(json=True)

    created_at = created_at()
    updated_at = col(sa.DateTime, INTERNAL, nullable=True)
    submitted_at = col(sa.DateTime, INTERNAL, nullable=True)
    first_response_at = col(sa.DateTime, INTERNAL, nullable=True)
    decided_at = col(sa.DateTime, INTERNAL, nullable=True)
    closed_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: The response and decision targets, set at submission from the category and urgency,
    #: and pushed back by the time the case waited for the applicant.
    response_due_at = col(sa.DateTime, INTERNAL, nullable=True)
    decision_due_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: The case's next target, as the queue sorts by it: the first response until there
    #: is one, then the decision. Worked out by the database from the two targets.
    next_due_at = sa.orm.mapped_column(
        sa.DateTime,
        sa.Computed(
            "CASE WHEN first_response_at IS NULL THEN response_due_at ELSE decision_due_at END",
            persisted=True,
        ),
        nullable=True,
        info={"data_class": INTERNAL},
    )
    #: Set while the case waits for the applicant's answer: the target clock is paused.
    clock_paused_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: Set when retention reduced the case to the figures reports need (`flask hrdfund purge`).
    purged_at = col(sa.DateTime, INTERNAL, nullable=True)

    fund = relationship("Fund")
    applicant = relationship("User", foreign_keys=[applicant_id])
    submitted_by = relationship("User", foreign_keys=[submitted_by_id])
    assigned_reviewer = relationship("User", foreign_keys=[assigned_reviewer_id])
    partner_organisation = relationship("PartnerOrganisation")
    dependants = relationship(
        "Dependant",
        back_populates="application",
        cascade="all, delete-orphan",
        order_by="Dependant.id",
    )
    budget_lines = relationship(
        "BudgetLine",
        back_populates="application",
        cascade="all, delete-orphan",
        order_by="BudgetLine.id",
    )
    references = relationship(
        "Reference",
        back_populates="application",
        cascade="all, delete-orphan",
        order_by="Reference.id",
    )
    status_changes = relationship(
        "StatusChange",
        back_populates="application",
        cascade="all, delete-orphan",
        order_by="StatusChange.id",
    )


class CaseCodeCounter(db.Model):
    """The last short code number a fund gave in a year; it only goes up, so a number is
    never given twice, whatever happens to the case that had it."""

    __tablename__ = "case_code_counters"
    __table_args__ = (sa.CheckConstraint("last_number >= 0", name="last_number_positive"),)
    fund_id = fk("funds.id", index=False, primary_key=True)
    year = col(sa.Integer, INTERNAL, primary_key=True)
    last_number = col(sa.Integer, INTERNAL, nullable=False, default=0)


class Dependant(db.Model):
    """A family member affected; counted apart from defenders in reports."""

    __tablename__ = "dependants"
    __table_args__ = (sa.CheckConstraint("age >= 0 AND age <= 120", name="age_range"),)
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    age = col(sa.Integer, PERSONAL, nullable=True)
    _relationship = encrypted_column("relationship")
    relation = Encrypted(name="relationship")
    _needs = encrypted_column("needs")
    needs = Encrypted()

    application = relationship("Application", back_populates="dependants")


class BudgetLine(db.Model):
    """One itemised cost, with what was asked, recommended and approved."""

    __tablename__ = "budget_lines"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "recommended_amount IS NULL OR recommended_amount >= 0", name="recommended_positive"
        ),
        sa.CheckConstraint(
            "approved_amount IS NULL OR approved_amount >= 0", name="approved_positive"
        ),
        currency_check("currency"),
    )
    DESCRIPTION_MAX = 200
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    _description = encrypted_column("description")
    description = Encrypted()
    amount = money()
    currency = currency()
    recommended_amount = money(nullable=True)
    approved_amount = money(nullable=True)

    application = relationship("Application", back_populates="budget_lines")


class VerificationStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    UNREACHABLE = "unreachable"


class Reference(db.Model):
    """A referee or endorser, and what they said when the fund contacted them."""

    __tablename__ = "references"
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    _name = encrypted_column("name")
    name = Encrypted()
    _organisation = encrypted_column("organisation")
    organisation = Encrypted()
    _contact = encrypted_column("contact")
    contact = Encrypted()
    status = enum_col(
        VerificationStatus,
        "verification_status",
        nullable=False,
        default=VerificationStatus.PENDING,
    )
    _notes = encrypted_column("notes")
    notes = Encrypted()
    contacted_at = col(sa.DateTime, INTERNAL, nullable=True)
    contacted_by_id = fk("users.id", nullable=True)

    application = relationship("Application", back_populates="references")


class DocumentKind(enum.StrEnum):
    QUOTE = "quote"
    MEDICAL_REPORT = "medical_report"
    EVIDENCE = "evidence"
    PROOF_OF_PAYMENT = "proof_of_payment"
    OTHER = "other"


class Document(db.Model):
    """An uploaded file, stored encrypted under a random name."""

    __tablename__ = "documents"
    __table_args__ = (sa.CheckConstraint("size_bytes >= 0", name="size_positive"),)
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", nullable=True)
    kind = enum_col(DocumentKind, "document_kind", nullable=False)
    #: Random file name under the instance's storage folder.
    storage_name = col(sa.String(64), INTERNAL, text=Text.UID, nullable=False, unique=True)
    _filename = encrypted_column("filename")
    filename = Encrypted()
    #: The type found in the file's content (PDF, PNG, JPEG), not the one the browser sent.
    content_type = col(sa.String(80), INTERNAL, text=Text.CODE, nullable=False)
    size_bytes = col(sa.Integer, INTERNAL, nullable=False)
    uploaded_by_id = fk("users.id", nullable=True)
    created_at = created_at()


class DocumentChunk(db.Model):
    """One piece of a document kept in the database: up to ``documents.CHUNK_BYTES`` of
    its bytes, encrypted on their own with the document's uid, the piece's number and
    whether it is the last bound as associated data (pieces cannot be reordered, moved to
    another document, dropped or cut off without the read failing)."""

    __tablename__ = "document_chunks"
    document_id = fk("documents.id", index=False, ondelete="CASCADE", primary_key=True)
    seq = col(sa.Integer, INTERNAL, primary_key=True, autoincrement=False)
    data = col(sa.LargeBinary, SENSITIVE, nullable=False)


class Message(db.Model):
    """One message in a case's thread between the fund and the applicant side."""

    __tablename__ = "messages"
    BODY_MAX = 5000
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    author_id = fk("users.id", nullable=True)
    from_staff = col(sa.Boolean, INTERNAL, nullable=False)
    #: A question from the fund that the applicant is asked to answer.
    is_question = col(sa.Boolean, INTERNAL, nullable=False, default=False)
    _body = encrypted_column("body")
    body = Encrypted()
    created_at = created_at()
    read_at = col(sa.DateTime, INTERNAL, nullable=True)


class ConsentKind(enum.StrEnum):
    #: A partner submits on the defender's behalf.
    PARTNER_SUBMISSION = "partner_submission"
    #: The case may be referred to another fund.
    REFERRAL = "referral"
    #: An anonymised story may be shared with a named donor.
    STORY = "story"


class Consent(db.Model):
    """The defender's recorded consent; withdrawable, never deleted."""

    __tablename__ = "consents"
    __table_args__ = (
        sa.CheckConstraint(
            "withdrawn_at IS NULL OR withdrawn_at >= given_at", name="withdrawn_after_given"
        ),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    kind = enum_col(ConsentKind, "consent_kind", nullable=False)
    #: For a story: the donor the story may be shown to.
    donor_id = fk("donors.id", nullable=True)
    #: How consent was given (in the form, on the case page, to a partner in person, by
    #: phone, in writing): a code of ``consents.HOW_LABELS``.
    method = col(sa.String(40), INTERNAL, text=Text.CODE, nullable=False)
    recorded_by_id = fk("users.id", nullable=True)
    given_at = col(sa.DateTime, INTERNAL, nullable=False)
    #: Set once, when this grant is withdrawn; giving consent again is a new row.
    withdrawn_at = col(sa.DateTime, INTERNAL, nullable=True)
    withdrawn_by_id = fk("users.id", nullable=True)
    #: How the withdrawal was said: a code of ``consents.HOW_LABELS``.
    withdrawn_how = col(sa.String(40), INTERNAL, text=Text.CODE, nullable=True)

    recorded_by = relationship("User", foreign_keys=[recorded_by_id])
    withdrawn_by = relationship("User", foreign_keys=[withdrawn_by_id])


class PartnerLabel(db.Model):
    """A partner organisation's own name for a case it referred, so its staff tell their
    defenders apart: encrypted, read only by accounts of that organisation."""

    __tablename__ = "partner_labels"
    __table_args__ = (sa.UniqueConstraint("application_id", "partner_organisation_id"),)
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    partner_organisation_id = fk("partner_organisations.id")
    _label = encrypted_column("label")
    label = Encrypted()
    updated_by_id = fk("users.id", nullable=True)
    updated_at = col(sa.DateTime, INTERNAL, nullable=False)


class StatusChange(db.Model):
    """One timestamped step of a case's life, for the fund's timeliness targets."""

    __tablename__ = "status_changes"
    id: Mapped[int] = pk()
    application_id = fk("applications.id", ondelete="CASCADE")
    from_status = enum_col(ApplicationStatus, "from_status", nullable=True)
    to_status = enum_col(ApplicationStatus, "to_status", nullable=False)
    actor_id = fk("users.id", nullable=True)
    at = col(sa.DateTime, INTERNAL, nullable=False)

    application = relationship("Application", back_populates="status_changes")


class UseOfFundsReport(db.Model):
    """The applicant's short report on what the support changed."""

    __tablename__ = "use_of_funds_reports"
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    felt_safer = col(sa.Boolean, INTERNAL, nullable=True)
    continued_work = col(sa.Boolean, INTERNAL, nullable=True)
    _narrative = encrypted_column("narrative")
    narrative = Encrypted()
    submitted_at = col(sa.DateTime, INTERNAL, nullable=False)


class Story(db.Model):
    """An anonymised case story a manager wrote and approved for one donor."""

    __tablename__ = "stories"
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    donor_id = fk("donors.id")
    consent_id = fk("consents.id")
    _text = encrypted_column("text")
    text = Encrypted()
    written_by_id = fk("users.id", nullable=True)
    approved_by_id = fk("users.id", nullable=True)
    approved_at = col(sa.DateTime, INTERNAL, nullable=True)
    created_at = created_at()


class DecisionOutcome(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"


class Decision(db.Model):
    """A manager's decision; above the threshold two approvals by different managers."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        currency_check("currency"),
        sa.CheckConstraint(
            "outcome != 'approve' OR amount IS NOT NULL", name="approval_has_amount"
        ),
        sa.UniqueConstraint("application_id", "manager_id", "outcome", "round"),
        currency_check("worth_currency"),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    application_id = fk("applications.id", ondelete="CASCADE")
    manager_id = fk("users.id")
    outcome = enum_col(DecisionOutcome, "decision_outcome", nullable=False)
    amount = money(nullable=True)
    currency = currency()
    #: Increments each time a case comes back for a new decision.
    round = col(sa.Integer, INTERNAL, nullable=False, default=1)
    #: Reason shown to the applicant in plain words (for a rejection or a question).
    _reason = encrypted_column("reason")
    reason = Encrypted()
    #: What an approval that was weighed against the four-eyes threshold was worth, in
    #: the reporting currency of the day, the table entry it was converted with (empty in
    #: that currency) and the threshold then in force: `check` weighs it again.
    worth = money(nullable=True)
    worth_currency = currency_col(nullable=True)
    weighed_rate_id = fk("exchange_rates.id", nullable=True, index=False)
    threshold = money(nullable=True)
    created_at = created_at()

    manager = relationship("User")


class ConflictDeclaration(db.Model):
    """A staff member's declared conflict of interest; keeps them out of the case."""

    __tablename__ = "conflict_declarations"
    __table_args__ = (sa.UniqueConstraint("application_id", "user_id"),)
    id: Mapped[int] = pk()
    application_id = fk("applications.id", ondelete="CASCADE")
    user_id = fk("users.id")
    declared_at = created_at()
