"""Retention (SECURITY.md, promise 25): `flask hrdfund purge` reduces closed cases older than
the retention period to the figures reports need, deletes old drafts and empties applicant
accounts left with nothing; the ledger, the donor reports and the audit chain stand after."""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hrdfund.alerts.models import Alert
from hrdfund.auth.models import Role, User
from hrdfund.cases import services as app_services
from hrdfund.cases.documents import CleanUpload, store_document
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Decision,
    Dependant,
    Document,
    DocumentKind,
    Message,
    Reference,
    Story,
    UseOfFundsReport,
)
from hrdfund.core.columns import ENCRYPTED_CLASSES, PERSONAL, Encrypted, utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements.models import HeldPayment, PaymentProof
from hrdfund.grants.models import Grant, GrantStatus
from hrdfund.ledger.invariants import sums_of_rows
from hrdfund.ledger.models import (
    Allocation,
    Disbursement,
    ReceiptAnswer,
    ReceiptAnswerKind,
    ReceiptResolution,
    Release,
    ResolutionOutcome,
)
from hrdfund.ledger.seals import FINAL_TABLES, writable_columns
from hrdfund.ops.retention import (
    APPLICATION_CLEARED,
    CLEARED,
    DELETED,
    HELD_CLEARED,
    KEPT,
    LEDGER_CLEARED,
    plan_purge,
)
from hrdfund.pools.models import Pool
from hrdfund.reports.data import build_report, plain
from hrdfund.reports.issue import Pending
from hrdfund.reports.periods import parse_period
from hrdfund.reviews.models import CaseNote, Cofunding, Review
from tests.conftest import PASSWORD, edit_behind_the_app, login, stored_bytes
from tests.pdfs import make_pdf

PDF = make_pdf("A scanned letter")
#: What a donor report is made of, that purging must leave exactly as it was.
REPORT_PARTS = ("summary", "position", "budget", "breakdowns", "timeliness", "outcomes")


def _count_rows():
    return {
        table.name: db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        for table in db.metadata.sorted_tables
    }


def _reports():
    """Reports as downloaded: a running year, and ended periods (issued at the first
    download, served as issued after)."""
    found = {
        (pool.id, code): {
            part: plain(build_report(pool, parse_period(code)))[part] for part in REPORT_PARTS
        }
        for pool in db.session.scalars(sa.select(Pool))
        for code in ("2025", "2025-Q3", f"{utcnow().year}-01", str(utcnow().year))
    }
    db.session.commit()
    return found


def _first_issues():
    """What the first report of each ended period of the last two years would say about
    people, if none had been issued: a purge must not change that either."""
    today = utcnow().date()
    return {
        (pool.id, year): Pending(pool, year, today, issued={}).figures
        for pool in db.session.scalars(sa.select(Pool))
        for year in (today.year - 1, today.year)
    }


@pytest.fixture
def demo(app, runner):
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", "80"])
    assert result.exit_code == 0, result.output
    app.config["RETENTION_DAYS"] = 30
    return app


def _case(status, closed_before_days=None, with_grant_status=None):
    query = sa.select(Application).where(Application.status == status)
    if with_grant_status is not None:
        query = query.join(Grant, Grant.application_id == Application.id).where(
            Grant.status == with_grant_status
        )
    cases = db.session.scalars(query.order_by(Application.id)).all()
    if closed_before_days is not None:
        limit = utcnow() - timedelta(days=closed_before_days)
        cases = [c for c in cases if (c.closed_at or c.decided_at) < limit]
    return cases[0]


def _documents_of(case, finance):
    """A document of the case, and a proof of one of its payments, as stored files."""
    evidence = store_document(
        CleanUpload(PDF, "application/pdf", "letter.pdf"), case, DocumentKind.EVIDENCE, finance
    )
    proof = store_document(
        CleanUpload(PDF, "application/pdf", "slip.pdf"),
        None,
        DocumentKind.PROOF_OF_PAYMENT,
        finance,
    )
    db.session.commit()
    payment = db.session.scalars(
        sa.select(Disbursement)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .where(Grant.application_id == case.id)
    ).first()
    # The demo's payments carry no proof: attach one below the app, as finance's form would.
    edit_behind_the_app(
        "disbursements",
        "UPDATE disbursements SET proof_document_id = :d WHERE id = :p",
        {"d": proof.id, "p": payment.id},
    )
    return evidence, proof, payment


def _ledger_rows(case_id):
    """The encrypted fields and blind indexes of the case's payments and releases, and of
    the payee side's answers on its payments and their resolutions, as stored:
    {model: [row of values]}."""
    grants = sa.select(Grant.id).where(Grant.application_id == case_id)
    payments = sa.select(Disbursement.id).where(Disbursement.grant_id.in_(grants))
    answers = sa.select(ReceiptAnswer.id).where(ReceiptAnswer.disbursement_id.in_(payments))
    found = {}
    for model, condition in (
        (Disbursement, Disbursement.grant_id.in_(grants)),
        (
            Release,
            Release.allocation_id.in_(
                sa.select(Allocation.id).where(Allocation.grant_id.in_(grants))
            ),
        ),
        (ReceiptAnswer, ReceiptAnswer.id.in_(answers)),
        (ReceiptResolution, ReceiptResolution.answer_id.in_(answers)),
    ):
        table = model.__table__
        columns = [table.c[name] for name in writable_columns(table.name)]
        found[model] = db.session.execute(sa.select(*columns).where(condition)).all()
    return found


def _held_payment(payment, finance):
    """A payment of the same grant held for a second person, with its payee, reason,
    reference and proof."""
    proof = store_document(
        CleanUpload(PDF, "application/pdf", "held.pdf"),
        None,
        DocumentKind.PROOF_OF_PAYMENT,
        finance,
    )
    held = HeldPayment(
        grant_id=payment.grant_id,
        allocation_id=payment.allocation_id,
        payee_type=payment.payee_type,
        channel=payment.channel,
        amount_paid=payment.amount_paid,
        currency_paid=payment.currency_paid,
        amount=payment.amount,
        fx_rate=payment.fx_rate,
        fee_amount=payment.amount,
        exchange_difference=0,
        paid_on=payment.paid_on,
        proof_document_id=proof.id,
        idempotency_key="held-before-closing",
        reasons="fee",
        recorded_by_id=finance.id,
    )
    held.payee_details, held.rate_reason = "canary-held-payee", "canary-held-reason"
    held.reference = "canary-held-reference"
    db.session.add(held)
    db.session.commit()
    return held


def _path(app, document):
    return os.path.join(app.instance_path, "documents", document.storage_name)


def _kept(app, document_id):
    """Whether anything of a document is stored: its file, or its pieces in the database."""
    return stored_bytes(app, document_id) is not None


def test_purge_reduces_old_closed_cases_to_their_figures(demo, runner, client):
    app = demo
    finance = db.session.scalars(sa.select(User).where(User.role == Role.FINANCE)).first()
    closed = _case(ApplicationStatus.COMPLETED, closed_before_days=60)
    applicant_id = closed.applicant_id
    evidence, proof, payment = _documents_of(closed, finance)
    evidence_id, proof_id = evidence.id, proof.id
    evidence_path, proof_path = _path(app, evidence), _path(app, proof)
    assert _kept(app, evidence_id) and _kept(app, proof_id)
    held = _held_payment(payment, finance)
    answer = ReceiptAnswer(
        disbursement_id=payment.id,
        answer=ReceiptAnswerKind.NOT_RECEIVED,
        note="The agent kept it",
        answered_by_id=closed.applicant_id,
        answered_at=utcnow(),
    )
    db.session.add(answer)
    db.session.flush()
    db.session.add(
        ReceiptResolution(
            answer_id=answer.id,
            outcome=ResolutionOutcome.CONTACTED,
            note="Called the agent",
            resolved_by_id=finance.id,
            resolved_at=utcnow(),
        )
    )
    held_proof_id = held.proof_document_id
    held_proof_path = _path(app, db.session.get(Document, held_proof_id))
    # A proof added after its payment (written below the app, beside the one it has).
    later = store_document(
        CleanUpload(PDF, "application/pdf", "later.pdf"),
        None,
        DocumentKind.PROOF_OF_PAYMENT,
        finance,
    )
    db.session.add(
        PaymentProof(disbursement_id=payment.id, document_id=later.id, added_by_id=finance.id)
    )
    later_id, later_path = later.id, _path(app, later)
    still_open = _case(ApplicationStatus.IN_REVIEW)
    open_name, open_uid = still_open.defender_name, still_open.uid
    assert open_name and closed.network_key and still_open.network_key
    db.session.add(Cofunding(application_id=closed.id, funder="Regional Fund", currency="EUR"))
    db.session.commit()
    applicant_login = db.session.get(User, applicant_id).login
    before_reports, before_issues = _reports(), _first_issues()
    before_rows, before_sums = _count_rows(), sums_of_rows()

    dry = runner.invoke(args=["hrdfund", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    plan = plan_purge()
    assert closed.id in plan.cases and still_open.id not in plan.cases + plan.drafts
    assert f"{len(plan.cases)} cases to reduce" in dry.output and "nothing changed" in dry.output
    assert _count_rows() == before_rows, "a dry run changes nothing"

    result = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()

    # Every purged case keeps its figures and nothing else: its payments and releases keep
    # their amounts, without payee, reference, reason or rate source.
    emptied, cleared = dict.fromkeys(LEDGER_CLEARED, 0), set()
    for case_id in plan.cases:
        case = db.session.get(Application, case_id)
        assert case.purged_at is not None
        assert all(getattr(case, column) is None for column in APPLICATION_CLEARED)
        assert case.network_key is None, "a purged case leaves the check across funds"
        assert case.category and case.region and case.dependants_count is not None
        for model in (Dependant, Reference, Message, CaseNote, Story, Alert):
            left = db.session.scalars(sa.select(model).where(model.application_id == case_id))
            assert left.all() == [], model.__tablename__
        for model, columns in CLEARED.items():
            for row in db.session.scalars(sa.select(model).where(model.application_id == case_id)):
                assert all(getattr(row, column) is None for column in columns)
                cleared.add(model)
        for model, rows in _ledger_rows(case_id).items():
            assert all(value is None for row in rows for value in row), model
            emptied[model] += len(rows)
    assert emptied[Disbursement] > 0 and emptied[Release] > 0
    assert emptied[ReceiptAnswer] > 0 and emptied[ReceiptResolution] > 0
    assert Cofunding in cleared
    budget = db.session.scalars(
        sa.select(BudgetLine.amount).where(BudgetLine.application_id == closed.id)
    ).all()
    assert budget and all(amount > 0 for amount in budget), "budget amounts stay for reports"

    # A payment held for a second person keeps its figures and loses what finance typed.
    db.session.refresh(held)
    assert held.amount == payment.amount
    stored = db.session.execute(
        sa.select(*(HeldPayment.__table__.c[name] for name in HELD_CLEARED)).where(
            HeldPayment.id == held.id
        )
    ).one()
    assert set(HELD_CLEARED) >= {"payee_details", "rate_source", "rate_reason", "reference"}
    assert all(value is None for value in stored)
    assert not os.path.exists(held_proof_path) and not _kept(app, held_proof_id)
    assert not os.path.exists(later_path) and not _kept(app, later_id)

    # Files are wiped, pieces deleted; a payment's proof row stays (the payment points at
    # it), empty.
    assert not os.path.exists(evidence_path) and not os.path.exists(proof_path)
    assert not _kept(app, evidence_id) and not _kept(app, proof_id)
    assert db.session.get(Document, evidence_id) is None
    assert db.session.get(Document, proof_id).filename is None

    # Drafts older than the period are gone; the open case is untouched.
    assert (
        db.session.scalars(sa.select(Application).where(Application.id.in_(plan.drafts))).all()
        == []
    )
    reopened = db.session.scalars(sa.select(Application).where(Application.uid == open_uid)).one()
    assert reopened.defender_name == open_name and reopened.purged_at is None

    # The money and the reports add up exactly as before; the audit chain verifies.
    assert sums_of_rows() == before_sums
    assert _reports() == before_reports
    assert _first_issues() == before_issues
    check = runner.invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output

    # The applicant's emptied account no longer signs in; staff see only the figures.
    if applicant_id in plan.accounts:
        emptied = db.session.get(User, applicant_id)
        assert emptied.login != applicant_login and emptied.contact is None
        response = client.post("/login", data={"login": applicant_login, "password": PASSWORD})
        assert response.status_code == 200 and "/login/code" not in (response.location or "")


def test_a_purged_case_shows_staff_its_figures_and_takes_no_change(
    app, fund, make_user, runner, client
):
    applicant = make_user("applicant")
    applicant.created_at = applicant.last_login_at = utcnow() - timedelta(days=100)
    manager = make_user("manager")
    case = Application(
        fund_id=fund.id,
        applicant_id=applicant.id,
        category="medical",
        country="KE",
        region="East Africa",
        status=ApplicationStatus.DRAFT,
    )
    case.defender_name = "Wanjiru PURGECANARY"
    db.session.add(case)
    db.session.flush()
    app_services.change_status(case, ApplicationStatus.SUBMITTED, at=utcnow() - timedelta(days=90))
    app_services.change_status(case, ApplicationStatus.WITHDRAWN, at=utcnow() - timedelta(days=80))
    db.session.commit()
    app.config["RETENTION_DAYS"] = 30
    assert runner.invoke(args=["hrdfund", "purge", "--yes"]).exit_code == 0

    login(client, manager)
    page = client.get(f"/applications/{case.uid}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Purged" in text and "PURGECANARY" not in text
    note = client.post(f"/applications/{case.uid}/notes", data={"kind": "note", "body": "x"})
    assert note.status_code == 404
    assert db.session.scalars(sa.select(CaseNote)).all() == []

    # The applicant side no longer finds the case; its account was emptied with it.
    db.session.expire_all()
    assert db.session.get(User, applicant.id).purged_at is not None
    assert db.session.get(User, applicant.id).password_hash is None


def test_cases_still_open_or_recent_are_kept(demo, runner):
    app = demo
    paying = _case(ApplicationStatus.PAYING, with_grant_status=GrantStatus.ACTIVE)
    # Closed long ago on paper, but its grant still commits money: not yet.
    app_services.change_status(
        paying, ApplicationStatus.COMPLETED, at=utcnow() - timedelta(days=400)
    )
    db.session.commit()
    recent = _case(ApplicationStatus.REJECTED)
    recent.decided_at = utcnow() - timedelta(days=app.config["RETENTION_DAYS"] - 1)
    db.session.commit()
    plan = plan_purge()
    assert paying.id not in plan.cases and recent.id not in plan.cases
    assert plan.cases, "older closed cases are due"
    assert runner.invoke(args=["hrdfund", "purge", "--yes"]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Application, paying.id).defender_name
    assert db.session.get(Application, recent.id).purged_at is None
    again = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert "Nothing to purge" in again.output


def test_every_table_about_a_case_is_decided(app):
    """A new table that refers to cases must be placed in DELETED, CLEARED or KEPT, and
    purging must empty every encrypted column it keeps."""
    deleted = {model.__tablename__ for model in DELETED}
    cleared = {model.__tablename__: columns for model, columns in CLEARED.items()}
    for table in db.metadata.sorted_tables:
        if "application_id" not in table.c:
            continue
        assert table.name in deleted | set(cleared) | set(KEPT), table.name
        secret = {
            f"_{c.name}" for c in table.columns if c.info.get("data_class") in ENCRYPTED_CLASSES
        }
        if table.name in cleared:
            assert secret <= set(cleared[table.name]), table.name
        if table.name in KEPT:
            assert not secret, table.name
            assert not [c for c in table.columns if c.info.get("data_class") == PERSONAL]
    application_secret = {
        "_" + attr.name for attr in vars(Application).values() if isinstance(attr, Encrypted)
    }
    assert application_secret == set(APPLICATION_CLEARED)
    # Final ledger rows reach a case through its grant; purging empties what they hold
    # beyond amounts. Contributions belong to a pool, not to a case.
    ledger = {model.__tablename__ for model in LEDGER_CLEARED}
    for name in FINAL_TABLES:
        table = db.metadata.tables[name]
        if any(c.info.get("data_class") in ENCRYPTED_CLASSES for c in table.columns):
            assert name in ledger | {"contributions"}, name
    assert Review in CLEARED and Decision in CLEARED and UseOfFundsReport in CLEARED
