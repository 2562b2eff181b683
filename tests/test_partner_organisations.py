"""Partner organisations and their accounts, managed by the network's administrator: a
new organisation (whose accounts the server's operator makes), and an account cut off at
once when it is lost or seized, then let back in. No one else may do any of it, the
administrator makes no partner account, and the page shows no case."""

import re

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.auth.models import PartnerOrganisation, Role, User
from hrdfund.core.extensions import db
from tests.conftest import make_case, refused_page, signed_in
from tests.test_invitations import _still_on_sign_in

FIRST = "a long first passphrase 42"


@pytest.fixture
def chief(make_user):
    return make_user("network_admin")


def _org(name):
    return db.session.execute(
        sa.select(PartnerOrganisation).where(PartnerOrganisation.name == name)
    ).scalar_one()


def test_the_network_admin_adds_an_organisation_whose_accounts_the_operator_makes(
    app, chief, runner
):
    """The organisation is made on the page; its account by the server's operator, with
    the command the page gives, and then listed under it. The administrator never chooses
    a partner's password: whoever did could sign in with it and read its cases."""
    client = signed_in(app, chief)
    assert "No partner organisations yet." in client.get("/network/partners").text
    sent = client.post(
        "/network/partners",
        data={"partner-name": "  Defenders   of Kisumu ", "partner-country": "KE"},
    )
    assert sent.status_code == 302
    org = _org("Defenders of Kisumu")
    assert org.country == "KE"
    page = client.get("/network/partners").text
    command = f"flask hrdfund create-user --role partner --organisation {org.id} --login LOGIN"
    assert "Defenders of Kisumu" in page and "Kenya" in page and command in page
    assert 'name="password"' not in page and "password" not in _form_fields(page)
    made = runner.invoke(
        args=["hrdfund", "create-user", "--role", "partner", "--organisation", str(org.id)]
        + ["--login", "amina.kisumu"],
        input=f"{FIRST}\n{FIRST}\n",
    )
    assert made.exit_code == 0, made.output
    assert "amina.kisumu" in client.get("/network/partners").text
    made = db.session.execute(sa.select(User).where(User.login == "amina.kisumu")).scalar_one()
    assert (made.role, made.partner_organisation_id, made.fund_id) == (Role.PARTNER, org.id, None)
    actions = set(db.session.execute(sa.select(AuditEvent.action)).scalars())
    assert "partner.organisation_created" in actions
    # No page of the network's administrator makes a partner account.
    sent = client.post(
        f"/network/partners/{org.uid}/accounts",
        data={"account-login": "sneaky.one", "account-password": FIRST},
    )
    assert sent.status_code in (404, 405)
    assert db.session.execute(sa.select(User).where(User.login == "sneaky.one")).first() is None


def _form_fields(page):
    return " ".join(re.findall(r'name="([^"]+)"', page))


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"partner-name": "Org 1"}, "already named"),
        # The same name to a reader: another case, or with a character nobody sees.
        ({"partner-name": "ORG 1"}, "already named"),
        ({"partner-name": "Org\u200b 1"}, "already named"),
        ({"partner-name": "\u202eOrg 1"}, "already named"),
        ({"partner-name": ""}, "Enter a name."),
        ({"partner-country": "XX"}, "Not a valid choice"),
    ],
)
def test_an_organisation_refused_is_not_made_and_says_why(
    app, chief, make_partner_org, fields, words
):
    make_partner_org("Org 1")
    client = signed_in(app, chief)
    sent = client.post(
        "/network/partners", data={"partner-name": "New Org", "partner-country": "", **fields}
    )
    page = refused_page(client, sent, "/network/partners#new-partner").text
    assert words in page
    assert db.session.execute(sa.select(sa.func.count(PartnerOrganisation.id))).scalar() == 1


def test_a_name_is_kept_as_it_shows_and_spelt_as_typed(app, chief):
    """What nobody sees (a right-to-left override that would turn the name round, a
    zero-width space) is taken out; the joiner a Persian name is spelt with stays."""
    client = signed_in(app, chief)
    for typed in ("Test\u202eOrg\u200b", "کانون\u200cمدافعان"):
        client.post("/network/partners", data={"partner-name": typed, "partner-country": ""})
    names = db.session.execute(sa.select(PartnerOrganisation.name)).scalars().all()
    assert sorted(names) == sorted(["TestOrg", "کانون\u200cمدافعان"])


def test_a_seized_account_is_cut_off_at_once_and_let_back_later(app, chief, make_user, fund):
    """Deactivated, the partner's open session stops working at once and it cannot sign in
    again; let back in, it signs in with its password as before."""
    partner = make_user("partner")
    make_case(fund, partner_organisation_id=partner.partner_organisation_id)
    seized = signed_in(app, partner)
    assert seized.get("/referrals").status_code == 200
    client = signed_in(app, chief)
    assert client.post(f"/network/partners/accounts/{partner.uid}/deactivate").status_code == 302
    assert seized.get("/referrals").status_code == 302
    assert seized.get("/referrals").location == "/login"
    assert _still_on_sign_in(app, partner)
    assert "deactivated" in client.get("/network/partners").text
    assert client.post(f"/network/partners/accounts/{partner.uid}/reactivate").status_code == 302
    assert signed_in(app, partner).get("/referrals").status_code == 200
    actions = list(db.session.execute(sa.select(AuditEvent.action)).scalars())
    assert "auth.deactivated" in actions and "auth.reactivated" in actions


@pytest.mark.parametrize(
    "role", ["admin", "manager", "reviewer", "finance", "donor", "applicant", "partner"]
)
def test_no_one_else_manages_partners(app, make_user, make_partner_org, role):
    org = make_partner_org("Org A")
    partner = make_user("partner", partner_organisation_id=org.id)
    client = signed_in(app, make_user(role))
    assert client.get("/network/partners").status_code == 403
    assert client.post("/network/partners", data={"partner-name": "Mine"}).status_code == 403
    assert client.post(f"/network/partners/accounts/{partner.uid}/deactivate").status_code == 403
    assert client.post(f"/network/partners/accounts/{partner.uid}/reactivate").status_code == 403
    assert db.session.get(User, partner.id).active


def test_only_partner_accounts_are_managed_here(app, chief, make_user):
    """A staff account's uid sent to the partner page's buttons is not found: the network's
    administrator does not cut off a fund's staff this way."""
    staff = make_user("manager")
    client = signed_in(app, chief)
    assert client.post(f"/network/partners/accounts/{staff.uid}/deactivate").status_code == 404
    assert db.session.get(User, staff.id).active


def test_the_page_names_no_case(app, chief, make_user, fund):
    partner = make_user("partner")
    case = make_case(
        fund,
        partner_organisation_id=partner.partner_organisation_id,
        defender_name="Zebulon Canary",
    )
    page = signed_in(app, chief).get("/network/partners").text
    assert partner.login in page
    assert case.uid not in page and "Zebulon" not in page
