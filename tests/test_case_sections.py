"""What each role sees of a case, section by section, before and after its approval: a
canary string in every part of a case, and every role's case page and downloads checked
for exactly the parts `docs/security.md` gives that role."""

import io
from decimal import Decimal

import pytest
import sqlalchemy as sa
from PIL import Image

from hrdfund.cases import cleaning, documents, messages, services
from hrdfund.cases.access import can_see, visible_cases
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    ConflictDeclaration,
    Dependant,
    DocumentKind,
    Reference,
    Urgency,
)
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.reviews import services as review_services
from tests.conftest import MoneyWorld, login, pay

#: One canary per part of a case, grouped by the section of docs/security.md's table.
CANARIES = {
    "story": {
        "defender": "canary-name-7101",
        "work": "canary-work-7102",
        "threat": "canary-threat-7103",
        "urgency": "canary-urgency-7104",
        "funders": "canary-funders-7105",
        "treatment": "canary-treatment-7106",
        "link": "canary-link-7107",
    },
    "payee": {"provider": "canary-provider-7108"},
    "budget": {"line": "canary-budget-7109"},
    "dependants": {"relation": "canary-dependant-7110"},
    "references": {
        "referee": "canary-ref-name-7111",
        "organisation": "canary-ref-org-7112",
        "contact": "canary-ref-contact-7113",
    },
    "documents": {"filename": "canary-document-7114"},
    "thread": {"before": "canary-message-before-7115"},
    "payment messages": {"after": "canary-message-after-7116"},
    "review": {
        "check": "canary-ref-check-7117",
        "note": "canary-note-7118",
        "assessment": "canary-assessment-7119",
        "cofunder": "canary-cofunder-7120",
    },
    "payees": {"payee": "canary-payee-7121", "proof": "canary-proof-7122"},
}

#: What each viewer sees, in review and once paid. Written out here, apart from the
#: rule in hrdfund/applications/access.py, as docs/security.md states it.
EVERYTHING_BUT_PAYEES = {s for s in CANARIES if s != "payees"}
SEES = {
    "applicant": {
        "review": {"documents", "thread"},
        "paying": {"documents", "thread", "payment messages"},
    },
    "partner": {
        "review": {"documents", "thread"},
        "paying": {"documents", "thread", "payment messages"},
    },
    "reviewer": {"review": EVERYTHING_BUT_PAYEES, "paying": EVERYTHING_BUT_PAYEES},
    "manager": {"review": EVERYTHING_BUT_PAYEES, "paying": EVERYTHING_BUT_PAYEES},
    "finance": {
        "review": set(),
        "paying": {"payee", "budget", "payment messages", "payees"},
    },
}
#: The canaries written by each stage: the messages since the approval and the payment
#: come with the payment.
WRITTEN = {"review": set(CANARIES) - {"payment messages", "payees"}, "paying": set(CANARIES)}
#: Viewers who never open the case: it is a 404 to them, as an unknown code is.
OUTSIDERS = (
    "admin",
    "donor",
    "other applicant",
    "other partner",
    "other fund's manager",
    "other fund's finance",
    "conflicted reviewer",
    "conflicted finance",
)


def _png():
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    out.seek(0)
    return out


@pytest.fixture
def case_world(app, fund, make_user, make_donor, make_partner_org, make_fund):
    """A medical case referred by a partner for a defender with an account, with a canary
    in every part; ``advance()`` approves and pays it."""
    world = MoneyWorld(fund, make_user, make_donor)
    org = make_partner_org("Referring organisation")
    other_fund = make_fund("Other Fund")
    viewers = {
        "applicant": world.applicant,
        "partner": make_user("partner", partner_organisation_id=org.id),
        "reviewer": world.reviewer,
        "manager": world.m2,
        "finance": world.finance,
        "admin": world.admin,
        "donor": make_user("donor", donor_id=world.donor.id),
        "other applicant": make_user("applicant"),
        "other partner": make_user("partner"),
        "other fund's manager": make_user("manager", fund_id=other_fund.id),
        "other fund's finance": make_user("finance", fund_id=other_fund.id),
        "conflicted reviewer": make_user("reviewer"),
        "conflicted finance": make_user("finance"),
    }
    c = {name: value for section in CANARIES.values() for name, value in section.items()}
    case = Application(
        fund_id=fund.id,
        applicant_id=world.applicant.id,
        partner_organisation_id=org.id,
        category=Category.MEDICAL,
        status=ApplicationStatus.DRAFT,
        urgency=Urgency.URGENT,
        country="KE",
        region="East Africa",
        currency="EUR",
    )
    case.defender_name, case.defender_work, case.threat = c["defender"], c["work"], c["threat"]
    case.urgency_reason, case.other_funders = c["urgency"], c["funders"]
    case.details = {
        "provider": c["provider"],
        "treatment": c["treatment"],
        "link_to_threat": c["link"],
    }
    line = BudgetLine(amount=Decimal(900), currency="EUR")
    line.description = c["line"]
    case.budget_lines = [line]
    dependant = Dependant(age=7)
    dependant.relation = c["relation"]
    case.dependants = [dependant]
    first = Reference()
    first.name, first.organisation, first.contact = c["referee"], c["organisation"], c["contact"]
    second = Reference()
    second.name, second.contact = "Second referee", "Signal"
    case.references = [first, second]
    db.session.add(case)
    db.session.flush()
    services.submit_application(case, world.applicant)
    for name in ("conflicted reviewer", "conflicted finance"):
        db.session.add(ConflictDeclaration(application_id=case.id, user_id=viewers[name].id))
    document = documents.store_document(
        cleaning.clean_upload(_png(), c["filename"] + ".png"),
        case,
        DocumentKind.QUOTE,
        world.applicant,
    )
    messages.post_message(case, world.applicant, c["before"])
    review_services.assign_reviewer(case, world.reviewer, world.m1)
    review_services.record_reference_check(first, "confirmed", c["check"], world.reviewer)
    review_services.add_note(case, world.reviewer, "note", c["note"])
    review_services.record_cofunding(case, world.reviewer, c["cofunder"], None, "EUR", None, None)
    review_services.recommend(
        case, world.reviewer, "high", "approve", Decimal(900), c["assessment"]
    )
    db.session.commit()
    state = {"world": world, "case": case, "viewers": viewers, "document": document}

    def advance():
        grant = approve_with_recorded_rates(
            case, world.m1, Decimal(900), [(world.eur.id, Decimal(900))]
        )
        db.session.commit()
        world.plan(grant, kind="one_off")
        proof = documents.store_document(
            cleaning.clean_upload(_png(), c["proof"] + ".png"),
            None,
            DocumentKind.PROOF_OF_PAYMENT,
            world.finance,
        )
        state["payment"] = pay(
            world, grant, "900", payee_details=c["payee"], proof_document_id=proof.id
        )
        messages.post_message(case, world.applicant, c["after"])
        db.session.commit()

    state["advance"] = advance
    return state


def _seen(app, state, user):
    """The case page and its downloads as ``user`` gets them: ({page: status}, text)."""
    client = app.test_client()
    login(client, user)
    case = state["case"]
    paths = {
        "case": f"/applications/{case.uid}",
        "documents": f"/applications/{case.uid}/documents/{state['document'].uid}",
    }
    if "payment" in state:
        paths["payees"] = f"/payments/{state['payment'].uid}/proof"
    statuses, text = {}, ""
    for what, path in paths.items():
        response = client.get(path)
        statuses[what] = response.status_code
        text += response.get_data(as_text=True) if what == "case" else ""
        if what != "case" and response.status_code == 200:
            text += response.headers["Content-Disposition"]
    return statuses, text


def _sections_in(text):
    """Every section of which at least one canary shows, and the canaries of sections
    only partly shown."""
    shown, partly = set(), []
    for section, canaries in CANARIES.items():
        found = [c for c in canaries.values() if c in text]
        if found:
            shown.add(section)
            if len(found) != len(canaries):
                partly.append((section, sorted(set(canaries.values()) - set(found))))
    return shown, partly


@pytest.mark.parametrize("stage", ["review", "paying"])
def test_each_role_sees_the_sections_it_needs_and_nothing_else(app, case_world, stage):
    if stage == "paying":
        case_world["advance"]()
    for name, user in case_world["viewers"].items():
        statuses, text = _seen(app, case_world, user)
        expected = SEES.get(name, {}).get(stage, set()) & WRITTEN[stage]
        assert statuses.pop("case") == (200 if expected else 404), (name, stage)
        for download, status in statuses.items():
            # A document or a proof opens to those its section is for and to no one else
            # (a proof is finance's page: 403 to the other roles).
            if download in expected:
                assert status == 200, (name, stage, download)
            else:
                assert status in (403, 404), (name, stage, download, status)
        shown, partly = _sections_in(text)
        assert shown == expected, (name, stage, shown ^ expected)
        assert not partly, (name, stage, partly)
    assert set(SEES) | set(OUTSIDERS) == set(case_world["viewers"])


def test_the_lists_show_exactly_the_cases_the_rule_opens(app, case_world, make_user):
    """visible_cases, the SQL every list filters with, and can_see agree for every viewer
    and every status a case goes through."""
    case = case_world["case"]
    for stage in ("review", "paying"):
        if stage == "paying":
            case_world["advance"]()
        for status in ApplicationStatus:
            case.status = status
            db.session.flush()
            for name, user in case_world["viewers"].items():
                listed = db.session.execute(
                    sa.select(Application.id).where(Application.id == case.id, visible_cases(user))
                ).first()
                assert (listed is not None) is can_see(case, user), (name, status)
        db.session.rollback()


def test_finance_writes_about_paying_only_and_never_pauses_a_case(app, fund, make_user, make_donor):
    """A case in review is not finance's business: no page, no message, no question that
    stops its clock. Once approved, finance may ask the applicant side what paying needs;
    the message is no question and the case stays where it is. A reviewer's message on a
    case in review still is a question."""
    world = MoneyWorld(fund, make_user, make_donor)
    in_review = world.recommended()
    in_review.status = ApplicationStatus.IN_REVIEW
    db.session.commit()
    with pytest.raises(messages.ThreadClosedError):
        messages.post_message(in_review, world.finance, "When is this decided?")
    db.session.rollback()
    finance = app.test_client()
    login(finance, world.finance)
    sent = finance.post(f"/applications/{in_review.uid}", data={"body": "Any news?"})
    assert sent.status_code == 404
    db.session.refresh(in_review)
    assert in_review.status == ApplicationStatus.IN_REVIEW
    assert in_review.clock_paused_at is None and messages.thread(in_review) == []

    approved = world.grant("500").application
    sent = finance.post(f"/applications/{approved.uid}", data={"body": "Which account?"})
    assert sent.status_code == 302
    db.session.refresh(approved)
    assert approved.status == ApplicationStatus.APPROVED and approved.clock_paused_at is None
    (message,) = messages.thread(approved)
    assert message.from_staff and not message.is_question
    document = finance.post(
        f"/applications/{approved.uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (_png(), "quote.png")},
    )
    assert document.status_code == 404, "finance adds proofs with payments, not case documents"

    messages.post_message(in_review, world.reviewer, "Who can confirm the attack?")
    db.session.commit()
    assert in_review.status == ApplicationStatus.INFO_REQUESTED
    assert in_review.clock_paused_at is not None
