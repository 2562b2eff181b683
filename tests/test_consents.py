"""The defender takes back, from the case page, a consent given in the form: the row stays,
dated, and what depends on it stops."""

import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Consent
from hrdfund.core.extensions import db
from hrdfund.reports.data import shared_with
from tests.conftest import MoneyWorld, agree_to_listing, login


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
    assert "What you agreed to" in page and "Withdraw" in page
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
