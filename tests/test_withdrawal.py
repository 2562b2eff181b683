"""The applicant side ends what it started: a defender (or the partner that referred them)
withdraws an application sent and not decided, deletes a draft never sent, and takes out a
document added by mistake while the case is open. Each asks once more on a page of its own;
none reaches another person's case or a decided one."""

import io

import pytest
import sqlalchemy as sa

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Document,
    Message,
    StatusChange,
)
from hrdfund.core.extensions import db
from tests.conftest import make_case, signed_in, start_application, stored_bytes
from tests.pdfs import make_pdf

S = ApplicationStatus
REASON = "WITHDRAW-CANARY I found a place to stay with my family"
PDF = make_pdf("canary-withdrawn-file-5521")


@pytest.fixture
def people(make_user, make_partner_org):
    org = make_partner_org("Kisumu Defenders Network")
    return {
        "applicant": make_user("applicant"),
        "other": make_user("applicant"),
        "reviewer": make_user("reviewer", contact="reviewer@fund.example"),
        "partner": make_user("partner", partner_organisation_id=org.id),
        "org": org,
    }


def _upload(client, uid):
    sent = client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "evidence", "file": (io.BytesIO(PDF), "wrong-file.pdf")},
    )
    assert sent.status_code == 302, sent.get_data(as_text=True)[:300]
    return db.session.scalars(sa.select(Document).order_by(Document.id.desc())).first()


def test_a_defender_withdraws_an_application_sent_and_the_fund_is_told_why(app, fund, people):
    case = make_case(
        fund,
        applicant_id=people["applicant"].id,
        status=S.IN_REVIEW,
        assigned_reviewer_id=people["reviewer"].id,
    )
    client = signed_in(app, people["applicant"])
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert f'href="/applications/{case.uid}/withdraw"' in page
    asked = client.get(f"/applications/{case.uid}/withdraw").get_data(as_text=True)
    assert "Withdraw this application?" in asked and "The fund will not decide it" in asked
    done = client.post(f"/applications/{case.uid}/withdraw", data={"reason": REASON})
    assert done.status_code == 302 and done.location == f"/applications/{case.uid}"
    shown = client.get(done.location).get_data(as_text=True)
    assert "The application is withdrawn. The fund is told" in shown
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == S.WITHDRAWN
    (move,) = db.session.scalars(sa.select(StatusChange)).all()
    assert (move.to_status, move.actor_id) == (S.WITHDRAWN, people["applicant"].id)
    (message,) = db.session.scalars(sa.select(Message)).all()
    assert message.body == REASON and not message.from_staff
    alerted = db.session.execute(sa.select(Alert.user_id, Alert.kind)).all()
    assert alerted == [(people["reviewer"].id, AlertKind.APPLICANT_ANSWER)]
    # The fund reads why; the case has left the queue; nothing more is withdrawn.
    staff = signed_in(app, people["reviewer"]).get(f"/applications/{case.uid}")
    assert REASON in staff.get_data(as_text=True)
    queue = signed_in(app, people["reviewer"]).get("/queue").get_data(as_text=True)
    assert case.uid not in queue
    assert client.get(f"/applications/{case.uid}/withdraw").status_code == 404
    assert f"/applications/{case.uid}/withdraw" not in client.get(done.location).get_data(
        as_text=True
    )


@pytest.mark.parametrize("status", [S.APPROVED, S.PAYING, S.REJECTED, S.COMPLETED, S.DRAFT])
def test_a_decided_or_unsent_application_is_not_withdrawn(app, fund, people, status):
    case = make_case(fund, applicant_id=people["applicant"].id, status=status)
    client = signed_in(app, people["applicant"])
    assert client.get(f"/applications/{case.uid}/withdraw").status_code == 404
    assert client.post(f"/applications/{case.uid}/withdraw", data={}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == status


def test_nobody_else_withdraws_or_deletes_a_case(app, fund, people, make_user):
    sent = make_case(fund, applicant_id=people["applicant"].id, status=S.SUBMITTED)
    draft = make_case(fund, applicant_id=people["applicant"].id, status=S.DRAFT)
    for user in (people["other"], people["partner"]):
        client = signed_in(app, user)
        for url in (f"/applications/{sent.uid}/withdraw", f"/applications/{draft.uid}/delete"):
            assert client.get(url).status_code == 404, (user.role, url)
            assert client.post(url, data={}).status_code == 404, (user.role, url)
    for role in ("reviewer", "manager", "admin"):
        client = signed_in(app, make_user(role))
        assert client.post(f"/applications/{sent.uid}/withdraw", data={}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Application, sent.id).status == S.SUBMITTED
    assert db.session.get(Application, draft.id) is not None


def test_the_partner_withdraws_a_case_it_referred(app, fund, people):
    case = make_case(
        fund,
        partner_organisation_id=people["org"].id,
        submitted_by_id=people["partner"].id,
        status=S.SUBMITTED,
    )
    client = signed_in(app, people["partner"])
    assert client.post(f"/applications/{case.uid}/withdraw", data={}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == S.WITHDRAWN
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0  # no reason given


def test_a_draft_is_deleted_with_everything_in_it(app, fund, people):
    case = make_case(
        fund,
        applicant_id=people["applicant"].id,
        status=S.DRAFT,
        submitted_at=None,
        defender_name="Draft Canary",
        budget_lines=[BudgetLine(description="Rent", amount=300, currency="EUR")],
    )
    client = signed_in(app, people["applicant"])
    document_id = _upload(client, case.uid).id
    case_id, uid = case.id, case.uid
    assert stored_bytes(app, document_id)
    page = client.get(f"/applications/{uid}").get_data(as_text=True)
    assert f'href="/applications/{uid}/delete"' in page
    asked = client.get(f"/applications/{uid}/delete").get_data(as_text=True)
    assert "Delete this draft?" in asked and "the fund never saw it" in asked
    done = client.post(f"/applications/{uid}/delete", data={})
    assert done.status_code == 302 and done.location == "/my"
    assert "The draft is deleted" in client.get("/my").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Application, case_id) is None
    assert db.session.scalar(sa.select(sa.func.count(BudgetLine.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Document.id))) == 0
    assert stored_bytes(app, document_id) is None
    actions = db.session.execute(
        sa.select(AuditEvent.action, AuditEvent.object_id, AuditEvent.actor).where(
            AuditEvent.action == "case.purged"
        )
    ).all()
    assert actions == [("case.purged", uid, people["applicant"].pseudonym)]
    assert client.get(f"/applications/{uid}").status_code == 404


def test_a_sent_application_is_not_deleted(app, fund, people):
    case = make_case(fund, applicant_id=people["applicant"].id, status=S.SUBMITTED)
    client = signed_in(app, people["applicant"])
    assert client.post(f"/applications/{case.uid}/delete", data={}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Application, case.id) is not None


def test_a_document_added_by_mistake_is_removed_while_the_case_is_open(app, fund, people):
    case = make_case(fund, applicant_id=people["applicant"].id, status=S.SUBMITTED)
    client = signed_in(app, people["applicant"])
    document = _upload(client, case.uid)
    remove = f"/applications/{case.uid}/documents/{document.uid}/remove"
    assert f'href="{remove}"' in client.get(f"/applications/{case.uid}").get_data(as_text=True)
    asked = client.get(remove).get_data(as_text=True)
    assert "Remove this document?" in asked and "wrong-file.pdf" in asked
    # Nobody else takes it out.
    assert signed_in(app, people["other"]).post(remove, data={}).status_code == 404
    assert signed_in(app, people["reviewer"]).post(remove, data={}).status_code == 403
    done = client.post(remove, data={})
    assert done.location == f"/applications/{case.uid}#documents"
    assert "The document is removed" in client.get(done.location).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Document, document.id) is None
    assert stored_bytes(app, document.id) is None
    download = f"/applications/{case.uid}/documents/{document.uid}"
    assert signed_in(app, people["reviewer"]).get(download).status_code == 404


def test_a_document_of_a_decided_case_or_of_the_fund_stays(app, fund, people):
    case = make_case(fund, applicant_id=people["applicant"].id, status=S.SUBMITTED)
    mine = _upload(signed_in(app, people["applicant"]), case.uid)
    staff = signed_in(app, people["reviewer"])
    theirs = _upload(staff, case.uid)
    client = signed_in(app, people["applicant"])
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert f"/documents/{theirs.uid}/remove" not in page
    assert client.post(f"/applications/{case.uid}/documents/{theirs.uid}/remove").status_code == 404
    case.status = S.APPROVED
    db.session.commit()
    assert client.post(f"/applications/{case.uid}/documents/{mine.uid}/remove").status_code == 404
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Document.id))) == 2


def test_withdrawing_asks_for_the_form_token(app, fund, people):
    case = make_case(fund, applicant_id=people["applicant"].id, status=S.SUBMITTED)
    client = signed_in(app, people["applicant"])
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        refused = client.post(f"/applications/{case.uid}/withdraw", data={})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert refused.status_code in (303, 400)
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == S.SUBMITTED


def test_a_step_saved_as_its_draft_is_deleted_elsewhere_is_answered_not_found(
    app, fund, people, monkeypatch
):
    """The draft is deleted from another tab while a step of it is being saved: the step
    is answered as a page not found (it was a server error), and nothing is written."""
    from hrdfund.cases import services

    client = signed_in(app, people["applicant"])
    uid = start_application(client, "relocation")
    case_id = db.session.scalar(sa.select(Application.id).where(Application.uid == uid))
    save = services.save_draft

    def deleted_first(application, *args, **kwargs):
        with db.engine.begin() as other:  # the other tab's request, done first
            for table in reversed(db.metadata.sorted_tables):
                if "application_id" in table.c:
                    other.execute(sa.delete(table).where(table.c.application_id == case_id))
            other.execute(sa.delete(Application.__table__).where(Application.id == case_id))
        return save(application, *args, **kwargs)

    monkeypatch.setattr(services, "save_draft", deleted_first)
    answer = client.post(f"/applications/{uid}/steps/urgency", data={"urgency": "normal"})
    assert answer.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(Application.id))) == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_draft_sent_at_the_same_moment_is_not_deleted(app, fund, people):
    """The draft is sent from one tab while deleted from another: the deletion reads it
    again under its row's lock, and is refused."""
    from hrdfund.cases import withdrawal

    case = make_case(fund, applicant_id=people["applicant"].id, status=S.DRAFT)
    draft = db.session.get(Application, case.id)  # as the request read it
    with db.engine.begin() as other:  # sent meanwhile
        other.execute(
            sa.update(Application.__table__)
            .where(Application.id == case.id)
            .values(status=S.SUBMITTED.value)
        )
    with pytest.raises(withdrawal.WithdrawalError, match="was sent"):
        withdrawal.delete_draft(draft, people["applicant"])
    db.session.rollback()
    assert db.session.get(Application, case.id).status == S.SUBMITTED
