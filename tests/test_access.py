"""Deny by default: a sweep of every route for visitors and each role, and scoping of cases
and pools to their owners."""

import re
from datetime import date, datetime

import pytest

from hrdfund.auth import invitations
from hrdfund.auth.guard import PUBLIC_ENDPOINTS
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.conftest import PASSWORD, login, make_case

ROLES = [
    "applicant",
    "partner",
    "reviewer",
    "manager",
    "finance",
    "donor",
    "admin",
    "network_admin",
]
HOMES = {
    "applicant": "/my",
    "partner": "/referrals",
    "reviewer": "/dashboard",
    "manager": "/dashboard",
    "finance": "/dashboard",
    "donor": "/donor",
    "admin": "/admin/users",
    "network_admin": "/network/funds",
}
#: Each role's own pages; every other role is refused there.
ROLE_PAGES = {
    "/my": {"applicant"},
    "/apply": {"applicant", "partner"},
    "/referrals": {"partner"},
    "/cases": {"reviewer", "manager"},
    "/dashboard": {"reviewer", "manager", "finance"},
    "/payments": {"finance"},
    "/donor": {"donor"},
    "/pools": {"manager", "finance", "admin"},
    "/admin/users": {"admin"},
    "/admin/users/invite": {"admin"},
    "/fund/settings": {"admin"},
    "/fund/partners": {"admin"},
    "/network/packets": {"reviewer", "manager"},
    "/network/funds": {"network_admin"},
    "/reports/network": {"manager"},
    "/network/report": {"network_admin"},
}


def _routes(app, static_file="dummy"):
    """Every (endpoint, method, path) the app answers, URL variables filled with dummies."""
    for rule in app.url_map.iter_rules():
        filler = static_file if rule.endpoint == "static" else "dummy"
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", filler, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def _sent_to_login(response):
    return response.status_code == 302 and response.location == "/login"


def test_every_role_has_a_listed_home(app):
    """The sweep below knows every page; a new route fails here until it is placed."""
    paths = {rule.rule for rule in app.url_map.iter_rules()}
    assert set(ROLE_PAGES) <= paths
    assert set(HOMES.values()) <= set(ROLE_PAGES)


def test_anonymous_visitors_are_sent_to_sign_in_everywhere(app, client):
    """Every route but signing in, signing up and static files redirects to /login."""
    for endpoint, method, path in _routes(app):
        response = client.open(path, method=method)
        assert response.status_code < 500, (method, path)
        if endpoint not in PUBLIC_ENDPOINTS:
            assert _sent_to_login(response), (method, path, response.status_code)


def test_the_public_list_is_exactly_what_answers_visitors(app, client, make_user):
    """Deny by default: the short list of public endpoints matches what a visitor between
    the password and the code step can actually open, no more, no less."""
    public = set()
    # One visitor setting up the second factor (the QR code answers), one who set it up
    # before (the recovery code page answers).
    enrolled = make_user("reviewer")
    login(app.test_client(), enrolled)
    for staff in (make_user("reviewer"), enrolled):
        visitor = app.test_client()
        visitor.post("/login", data={"login": staff.login, "password": PASSWORD})
        for endpoint, method, path in _routes(app, static_file="style.css"):
            with visitor.open(path, method=method) as response:
                if not _sent_to_login(response) and response.status_code != 404:
                    public.add(endpoint)
    # An invitation's link answers a visitor when its token is a real invitation's.
    _invitation, token = invitations.invite_account(make_user("admin"), "finance", "invited.one")
    db.session.commit()
    for endpoint, method, path in _routes(app):
        if endpoint == "auth.invitation_link":
            with app.test_client().open(path.replace("dummy", token), method=method) as response:
                if not _sent_to_login(response) and response.status_code != 404:
                    public.add(endpoint)
    assert public == set(PUBLIC_ENDPOINTS)
    assert public == {
        "static",
        "auth.login",
        "auth.code",
        "auth.qr",
        "auth.reset_code",
        "auth.recovery",
        "auth.register",
        "auth.choose_language",
        "auth.invitation_link",
        "auth.invitation",
        "network.directory",
        "cases.before",
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_its_pages_and_no_others(app, client, make_user, role):
    """A role's own pages answer 200, other roles' pages refuse, and nothing answers 500
    whatever is sent to it."""
    user = make_user(role)
    login(client, user)
    for endpoint, method, path in _routes(app):
        response = client.open(path, method=method, data={"body": "x", "category": "medical"})
        assert response.status_code < 500, (role, method, path)
        if path in ROLE_PAGES and method == "GET":
            if role in ROLE_PAGES[path]:
                assert response.status_code == 200, (role, path)
            else:
                assert response.status_code in (403, 404), (role, path)
        if endpoint == "auth.logout":
            assert _sent_to_login(response)
            login(client, user)
    assert client.get(HOMES[role]).status_code == 200
    assert client.get("/").location == HOMES[role]


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("applicant", "partner")])
def test_staff_and_donors_cannot_start_applications(client, login_as, role):
    login_as(role)
    assert client.get("/apply").status_code == 403
    response = client.get("/apply/new", query_string={"category": "medical"})
    assert response.status_code == 403
    assert db.session.query(Application).count() == 0


def _case(fund, code, **fields):
    return make_case(
        fund, uid=code, category=Category.LEGAL, submitted_at=datetime(2026, 3, 1), **fields
    )


def _pages(client, *paths):
    return "".join(client.get(p).get_data(as_text=True) for p in paths)


def test_an_applicant_sees_only_their_own_cases(app, client, make_user, fund):
    owner, other = make_user("applicant"), make_user("applicant")
    _case(fund, "casemine0000000001", applicant_id=owner.id)
    _case(fund, "casetheirs00000002", applicant_id=other.id)
    login(client, owner)
    listing = client.get("/my").get_data(as_text=True)
    assert "casemine0000000001" in listing
    assert "casetheirs00000002" not in listing
    assert client.get("/applications/casemine0000000001").status_code == 200
    assert client.get("/applications/casetheirs00000002").status_code == 404
    assert client.get("/applications/casetheirs00000002/edit").status_code == 404
    assert client.get("/applications/no-such-case").status_code == 404


def test_a_partner_sees_only_cases_of_its_organisation(
    app, client, make_user, make_partner_org, fund
):
    ours, theirs = make_partner_org("Ours"), make_partner_org("Theirs")
    partner = make_user("partner", partner_organisation_id=ours.id)
    colleague = make_user("partner", partner_organisation_id=ours.id)
    _case(fund, "caseours0000000001", partner_organisation_id=ours.id)
    _case(fund, "casetheirs00000002", partner_organisation_id=theirs.id)
    _case(fund, "caseown00000000003", applicant_id=make_user("applicant").id)
    for user in (partner, colleague):
        viewer = app.test_client()
        login(viewer, user)
        listing = viewer.get("/referrals").get_data(as_text=True)
        assert "caseours0000000001" in listing
        assert "casetheirs00000002" not in listing
        assert "caseown00000000003" not in listing
        assert viewer.get("/applications/caseours0000000001").status_code == 200
        assert viewer.get("/applications/casetheirs00000002").status_code == 404
        assert viewer.get("/applications/caseown00000000003").status_code == 404


@pytest.mark.parametrize("intruder", ["applicant", "partner", "donor", "admin"])
def test_a_case_code_shows_only_to_those_on_the_case(app, client, make_user, fund, intruder):
    """Another applicant, another organisation, a donor or an admin never sees the code of
    a case, on their home nor on the case page."""
    owner = make_user("applicant")
    _case(fund, "casecanary00000042", applicant_id=owner.id)
    login(client, owner)
    assert "casecanary00000042" in client.get("/my").get_data(as_text=True)
    stranger = app.test_client()
    login(stranger, make_user(intruder))
    assert stranger.get("/applications/casecanary00000042").status_code == 404
    assert "casecanary00000042" not in _pages(stranger, "/", HOMES[intruder])


def test_staff_see_only_their_own_funds_cases(app, client, make_user, make_fund, fund):
    other_fund = make_fund("Other Fund")
    _case(fund, "caseours0000000001")
    _case(other_fund, "casetheirs00000002")
    login(client, make_user("reviewer"))
    queue = client.get("/cases").get_data(as_text=True)
    assert "caseours0000000001" in queue
    assert "casetheirs00000002" not in queue
    assert client.get("/applications/casetheirs00000002").status_code == 404


def test_a_donor_sees_only_its_own_pools(app, client, make_user, make_donor, fund, make_pool):
    ours, theirs = make_donor("Ours"), make_donor("Theirs")
    make_pool(ours, "Pool of ours", "1234.00", received_on=date(2026, 1, 5))
    make_pool(theirs, "Pool of theirs", "9876.00", received_on=date(2026, 1, 5))
    login(client, make_user("donor", donor_id=ours.id))
    portal = client.get("/donor").get_data(as_text=True)
    assert "Pool of ours" in portal and "1,234.00" in portal
    assert "Pool of theirs" not in portal and "9,876.00" not in portal


def test_pools_of_another_fund_stay_hidden(
    app, client, make_user, make_donor, make_fund, fund, make_pool
):
    other_fund = make_fund("Other Fund")
    make_pool(make_donor("Ours"), "Pool of ours", "100.00", received_on=date(2026, 1, 5))
    make_pool(
        make_donor("Theirs"),
        "Pool of theirs",
        "200.00",
        received_on=date(2026, 1, 5),
        fund_id=other_fund.id,
    )
    login(client, make_user("manager"))
    page = client.get("/pools").get_data(as_text=True)
    assert "Pool of ours" in page
    assert "Pool of theirs" not in page


@pytest.mark.parametrize("role", ROLES)
def test_the_cases_hidden_among_a_funds_approved_ones_are_exactly_those_not_visible(
    app, make_user, make_fund, fund, role
):
    """A pool's page counts its rows less those of the cases ``hidden_funded_cases`` names:
    for every role, of this fund or another, with a conflict declared or not, these are
    exactly the approved cases of the fund that ``visible_cases`` keeps from the reader
    (none named means every one is kept from them)."""
    import sqlalchemy as sa

    from hrdfund.cases.access import MONEY_STATES, hidden_funded_cases, visible_cases
    from hrdfund.reviews.services import declare_conflict

    other = make_fund("Other Fund")
    reader = make_user(role)
    stranger = make_user(role, fund_id=other.id) if role in ("manager", "finance") else None
    cases = []
    for n, status in enumerate(sorted(MONEY_STATES) * 2):
        applicant = reader if role == "applicant" and n == 0 else None
        cases.append(
            make_case(
                fund,
                status=status,
                applicant_id=applicant.id if applicant else None,
                partner_organisation_id=reader.partner_organisation_id if n == 1 else None,
            )
        )
    if role in ("reviewer", "manager", "finance"):
        declare_conflict(cases[2], reader)
    db.session.commit()
    ids = [c.id for c in cases]
    for user in [u for u in (reader, stranger) if u is not None]:
        visible = set(
            db.session.execute(
                sa.select(Application.id).where(Application.id.in_(ids), visible_cases(user))
            ).scalars()
        )
        hidden = hidden_funded_cases(user, fund.id)
        named = set(ids) if hidden is None else set(db.session.execute(hidden).scalars())
        assert {i for i in ids if i in named} == set(ids) - visible, user.role
    if role in ("reviewer", "manager", "finance"):
        assert cases[2].id in set(
            db.session.execute(hidden_funded_cases(reader, fund.id)).scalars()
        )
