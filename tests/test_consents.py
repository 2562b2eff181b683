"""The defender takes back, from the case page, a consent given in the form: the row stays,
dated, and what depends on it stops."""

import html
import logging

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases import consents
from hrdfund.cases.models import Consent, ConsentKind, PartnerLabel
from hrdfund.core.extensions import db
from hrdfund.reports.data import shared_with
from tests.conftest import (
    MoneyWorld,
    agree_to_listing,
    login,
    make_costed_case,
    refused_page,
    signed_in,
)


def test_the_applicant_withdraws_consent_to_show_the_case_to_donors(
    app, fund, make_user, make_donor
):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    case = grant.application
    agree_to_listing(case)
    db.session.commit()
    assert shared_with(world.donor.id, {case.id}) == {case.id}
    client = app.test_client()
    login(client, world.applicant)
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "What you agreed to" in page and "Withdraw this consent</button>" in page
    url = f"/applications/{case.uid}/consents/story/withdraw"
    done = client.post(url, follow_redirects=True)
    assert "Your consent is withdrawn" in done.get_data(as_text=True)
    consent = db.session.execute(sa.select(Consent)).scalar_one()
    assert consent.withdrawn_at is not None  # kept, dated
    assert shared_with(world.donor.id, {case.id}) == set()
    assert client.post(url).status_code == 404  # nothing left to withdraw
    assert (
        client.post(f"/applications/{case.uid}/consents/partner_submission/withdraw").status_code
        == 404
    )
    assert client.post(f"/applications/{case.uid}/consents/anything/withdraw").status_code == 404
    withdrawn = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == "consent.withdrawn")
    ).scalar()
    assert withdrawn == 1
    stranger = app.test_client()
    login(stranger, make_user("applicant"))
    assert stranger.post(f"/applications/{case.uid}/consents/referral/withdraw").status_code == 404
    reviewer = app.test_client()
    login(reviewer, world.reviewer)
    assert reviewer.post(url).status_code == 403
    assert "What you agreed to" not in reviewer.get(f"/applications/{case.uid}").get_data(
        as_text=True
    )


# -- Given, withdrawn, given again ----------------------------------------------------------


def _grants(case, kind):
    db.session.expire_all()
    return (
        db.session.execute(
            sa.select(Consent)
            .where(Consent.application_id == case.id, Consent.kind == kind)
            .order_by(Consent.given_at, Consent.id)
        )
        .scalars()
        .all()
    )


def _actions(action):
    return db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == action)
    ).scalar()


@pytest.mark.parametrize("kind", [ConsentKind.REFERRAL, ConsentKind.STORY])
def test_each_consent_is_given_withdrawn_and_given_again_with_every_date_kept(
    app, fund, make_user, kind
):
    applicant = make_user("applicant")
    case = make_costed_case(fund, applicant_id=applicant.id)
    owner = signed_in(app, applicant)
    give = f"/applications/{case.uid}/consents/{kind.value}/give"
    withdraw = f"/applications/{case.uid}/consents/{kind.value}/withdraw"
    page = owner.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Give consent" in page, "answered no in the form, it can be given later"
    assert consents.active_consent(case, kind) is None

    done = owner.post(give, follow_redirects=True)
    assert "Your consent is given" in done.get_data(as_text=True)
    [first] = _grants(case, kind)
    assert first.withdrawn_at is None and first.method == "case_page"
    assert first.recorded_by_id == applicant.id
    assert consents.active_consent(case, kind).id == first.id
    assert owner.post(give).status_code == 303, "given already: said, nothing written"
    assert len(_grants(case, kind)) == 1

    done = owner.post(withdraw, follow_redirects=True)
    assert "Your consent is withdrawn" in done.get_data(as_text=True)
    [first] = _grants(case, kind)
    assert first.withdrawn_at is not None and first.withdrawn_at > first.given_at
    assert first.withdrawn_by_id == applicant.id and first.withdrawn_how == "case_page"
    assert consents.active_consent(case, kind) is None
    assert owner.post(withdraw).status_code == 404, "nothing left to withdraw"

    owner.post(give)
    first, second = _grants(case, kind)
    # The first grant keeps both its dates; the second is a new row, in force.
    assert first.withdrawn_at is not None and second.given_at > first.withdrawn_at
    assert second.withdrawn_at is None
    assert consents.active_consent(case, kind).id == second.id
    assert _actions("consent.given") == 2 and _actions("consent.withdrawn") == 1
    page = owner.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert page.count("Given on ") == 2 and page.count("withdrawn on ") == 1
    assert "Yes, since" in page and "Withdraw" in page


# -- The partner holds the consent of a case it referred ------------------------------------


def _referred_case(fund, partner, **fields):
    """A sent case ``partner``'s organisation referred, with the defender's consent to the
    referral recorded in person."""
    case = make_costed_case(
        fund,
        partner_organisation_id=partner.partner_organisation_id,
        submitted_by_id=partner.id,
        **fields,
    )
    db.session.add(
        Consent(
            application_id=case.id,
            kind=ConsentKind.PARTNER_SUBMISSION,
            method="in_person",
            recorded_by_id=partner.id,
            given_at=case.created_at,
        )
    )
    db.session.commit()
    return case


def test_the_partner_records_consent_for_its_referred_case_and_how_it_was_given(
    app, fund, make_user
):
    partner = make_user("partner")
    case = _referred_case(fund, partner)
    client = signed_in(app, partner)
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "The defender agreed that you apply on their behalf" in page and "in person" in page
    assert "How the defender told you" in page
    give = f"/applications/{case.uid}/consents/referral/give"

    # How it was given is asked, among the ways offered only.
    for how in ("", "carrier_pigeon"):
        sent = client.post(give, data={"referral-how": how})
        shown = refused_page(client, sent, f"/applications/{case.uid}#consent-referral")
        assert "Choose how the defender told you" in shown.get_data(as_text=True)
    assert _grants(case, ConsentKind.REFERRAL) == []

    done = client.post(give, data={"referral-how": "phone"}, follow_redirects=True)
    assert "The defender's consent is recorded" in html.unescape(done.get_data(as_text=True))
    [grant] = _grants(case, ConsentKind.REFERRAL)
    assert grant.method == "phone" and grant.recorded_by_id == partner.id
    withdraw = f"/applications/{case.uid}/consents/referral/withdraw"
    client.post(withdraw, data={"referral-how": "in_writing"})
    client.post(give, data={"referral-how": "in_person"})
    first, second = _grants(case, ConsentKind.REFERRAL)
    assert (first.method, first.withdrawn_how, second.method) == (
        "phone",
        "in_writing",
        "in_person",
    )
    assert second.withdrawn_at is None
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Given on" in page and "by phone" in page and "in writing" in page

    # A colleague of the same organisation records it too; no one else.
    colleague = signed_in(
        app, make_user("partner", partner_organisation_id=partner.partner_organisation_id)
    )
    assert colleague.post(withdraw, data={"referral-how": "phone"}).status_code == 302
    assert consents.active_consent(case, ConsentKind.REFERRAL) is None
    other_org = signed_in(app, make_user("partner"))
    applicant = signed_in(app, make_user("applicant"))
    for stranger in (other_org, applicant):
        assert stranger.post(give, data={"referral-how": "phone"}).status_code == 404
        assert stranger.get(f"/applications/{case.uid}").status_code == 404
    for role in ("reviewer", "manager", "finance"):
        staff = signed_in(app, make_user(role))
        assert staff.post(give, data={"referral-how": "phone"}).status_code == 403
    assert (
        client.post(
            f"/applications/{case.uid}/consents/partner_submission/withdraw",
            data={"partner_submission-how": "phone"},
        ).status_code
        == 404
    )
    assert len(_grants(case, ConsentKind.REFERRAL)) == 2
    assert consents.active_consent(case, ConsentKind.PARTNER_SUBMISSION) is not None


def test_the_staff_case_page_names_the_referring_organisation_and_its_consents(
    app, fund, make_user
):
    partner = make_user("partner")
    case = _referred_case(fund, partner)
    signed_in(app, partner).post(
        f"/applications/{case.uid}/consents/story/give", data={"story-how": "in_writing"}
    )
    reviewer = signed_in(app, make_user("reviewer"))
    page = reviewer.get(f"/applications/{case.uid}").get_data(as_text=True)
    section = page[page.index('id="consent-record"') :]
    assert "Referred by" in section and partner.partner_organisation.name in section
    assert "The partner organisation may apply on the defender" in section
    assert "in person" in section and "in writing" in section
    assert section.count(f"an account of {partner.partner_organisation.name}") == 2
    assert "How the defender told you" not in page, "staff record nothing here"
    own = make_user("applicant")
    self_sent = make_costed_case(fund, applicant_id=own.id)
    signed_in(app, own).post(f"/applications/{self_sent.uid}/consents/referral/give")
    page = reviewer.get(f"/applications/{self_sent.uid}").get_data(as_text=True)
    assert "not through a partner organisation" in page
    assert "the defender, in their account" in page


# -- A partner organisation's own labels ----------------------------------------------------

LABEL = "Amina K., Kisumu office"


def test_a_partner_labels_its_referred_cases_for_its_own_eyes_only(
    app, fund, make_user, make_donor, caplog
):
    caplog.set_level(logging.DEBUG)
    partner = make_user("partner")
    case = _referred_case(fund, partner)
    unlabelled = _referred_case(fund, partner)
    client = signed_in(app, partner)
    url = f"/applications/{case.uid}/label"
    done = client.post(url, data={"label-label": f"  {LABEL} "}, follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "Your label is saved" in page and LABEL in page

    # Encrypted at rest: the raw column holds no clear text.
    raw = db.session.execute(sa.text("SELECT label FROM partner_labels")).scalar_one()
    assert LABEL.encode() not in bytes(raw) and b"Kisumu" not in bytes(raw)
    assert db.session.execute(sa.select(PartnerLabel)).scalar_one().label == LABEL

    # Beside the case code on the organisation's list, for every account of it.
    colleague = signed_in(
        app, make_user("partner", partner_organisation_id=partner.partner_organisation_id)
    )
    for reader in (client, colleague):
        listed = reader.get("/referrals").get_data(as_text=True)
        row = next(r for r in listed.split("<tr>") if case.uid in r)
        assert LABEL in row
        assert LABEL not in next(r for r in listed.split("<tr>") if unlabelled.uid in r)
        assert LABEL in reader.get(f"/applications/{case.uid}").get_data(as_text=True)

    # No one else reads it: another organisation, staff, the donor.
    other_org = signed_in(app, make_user("partner"))
    assert LABEL not in other_org.get("/referrals").get_data(as_text=True)
    assert other_org.get(f"/applications/{case.uid}").status_code == 404
    assert other_org.post(url, data={"label-label": "mine now"}).status_code == 404
    for role in ("reviewer", "manager", "finance", "donor", "admin", "applicant"):
        reader = signed_in(app, make_user(role))
        for path in (f"/applications/{case.uid}", "/", "/applications", "/queue"):
            assert LABEL not in reader.get(path, follow_redirects=True).get_data(as_text=True)
        assert reader.post(url, data={"label-label": "theirs"}).status_code == 403
    assert db.session.execute(sa.select(PartnerLabel)).scalar_one().label == LABEL

    # Audited without its words; in no log.
    payloads = (
        db.session.execute(
            sa.select(AuditEvent.payload).where(AuditEvent.action == "case.partner_label_changed")
        )
        .scalars()
        .all()
    )
    assert len(payloads) == 1 and "Kisumu" not in payloads[0]
    assert not [r for r in caplog.records if "Kisumu" in r.getMessage()]

    # Too long: said, and the label kept as it was; empty: removed.
    sent = client.post(url, data={"label-label": "x" * 81})
    assert "at most 80" in refused_page(client, sent).get_data(as_text=True)
    assert db.session.execute(sa.select(PartnerLabel)).scalar_one().label == LABEL
    done = client.post(url, data={"label-label": ""}, follow_redirects=True)
    assert "Your label is removed" in done.get_data(as_text=True)
    assert LABEL not in client.get("/referrals").get_data(as_text=True)
    # A form sent without its field at all reads as an empty one, never an error page.
    client.post(url, data={"label-label": LABEL})
    bare = client.post(url, data={})
    assert bare.status_code == 302
    assert "Your label is removed" in client.get(bare.location).get_data(as_text=True)


def test_a_consent_the_partner_ticks_in_the_form_is_the_partners_word_not_the_defenders(
    app, fund, make_user
):
    """Ticked in the application form by the referring partner, the consent to refer the
    case on is recorded as the partner's word for the defender's, and the page says so;
    ticked by the defender, it is the defender's."""
    partner = make_user("partner")
    case = _referred_case(fund, partner)
    consents.set_consent(case, ConsentKind.REFERRAL, True, partner)
    db.session.commit()
    [given] = _grants(case, ConsentKind.REFERRAL)
    assert (given.method, given.recorded_by_id) == ("partner_form", partner.id)
    page = signed_in(app, partner).get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "through the referring partner, in the application form" in page
    assert "by the defender, in the application form" not in page
