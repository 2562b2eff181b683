"""Member funds in one instance: the network's administrator creates, suspends and resumes
funds and names the intake fund, and sees no case; each fund's administrator says what it
covers and sets its own threshold and targets; a defender chooses the fund, or leaves it to
the intake fund; a suspended fund's staff cannot sign in and no application reaches it."""

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.auth import invitations
from hrdfund.auth.models import Fund, Invitation, Role, User
from hrdfund.auth.services import UserExistsError, create_user
from hrdfund.cases import targets
from hrdfund.cases.models import Application, Urgency
from hrdfund.cases.services import FundClosedError, start_application
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.grants import decisions
from tests.conftest import PASSWORD, login, refused_page, session_contents, signed_in
from tests.conftest import start_application as apply_through_form


@pytest.fixture
def network(app, make_user, make_fund, fund):
    """Two member funds taking applications (the conftest's fund and a regional one),
    the network's administrator, and a case of the first fund with a name to look for."""
    regional = make_fund("Regional Fund")
    admin = make_user("network_admin")
    case = Application(
        fund_id=fund.id,
        uid="casecanary00000077",
        category=Category.MEDICAL,
        currency="EUR",
        defender_name="Zebulon Canary",
    )
    db.session.add(case)
    db.session.commit()
    return {"local": fund, "regional": regional, "admin": admin, "case": case}


def _funds_page(client):
    return client.get("/network/funds").get_data(as_text=True)


def test_the_network_admin_creates_a_fund_whose_admin_signs_in(app, network):
    client = signed_in(app, network["admin"])
    page = _funds_page(client)
    assert "Test Fund" in page and "Regional Fund" in page
    sent = client.post(
        "/network/funds",
        data={
            "fund-name": "International Fund",
            "fund-admin_login": "intl.admin",
            "fund-admin_password": "a long first passphrase 42",
        },
    )
    assert sent.status_code == 302
    # The message waiting for the next page travels in the cookie: it names no account.
    assert "intl.admin" not in str(session_contents(app, client))
    fund = db.session.execute(sa.select(Fund).where(Fund.name == "International Fund")).scalar_one()
    admin = db.session.execute(sa.select(User).where(User.login == "intl.admin")).scalar_one()
    assert admin.fund_id == fund.id and admin.role == "admin" and admin.totp_secret
    assert not fund.takes_applications  # until its administrator says what it covers
    assert "International Fund" in _funds_page(client)
    # The new administrator signs in, enrolling a second factor, and lands on accounts.
    own = app.test_client()
    login(own, admin, password="a long first passphrase 42")
    assert "Fund settings" in own.get("/admin/users").get_data(as_text=True)
    # Created at the instance, not in any fund's records.
    created = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "fund.created")
    ).scalar_one()
    assert created.actor == network["admin"].pseudonym


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"fund-name": "Regional Fund"}, "already named"),
        ({"fund-admin_login": "abcd-efgh-jkmn"}, "made by sign-up"),
        ({"fund-admin_password": "password123456"}, "too common"),
        ({"fund-admin_password": "the new.admin pass"}, "contains the login name"),
        # The login is weighed as it is stored: trimmed, in lower case.
        (
            {"fund-admin_login": " New.Admin\t", "fund-admin_password": "new.admin-very-long"},
            "contains the login name",
        ),
        # The password's rules are said with the other fields' problems, not after them.
        ({"fund-name": "", "fund-admin_password": "short"}, "at least 12 characters"),
        ({"fund-admin_login": "x"}, "3 to 64"),
        ({"fund-name": "\x01\x02"}, "Give the fund&#39;s name."),  # nothing of it shows
        ({"fund-name": "REGIONAL fund"}, "already named"),
    ],
)
def test_a_fund_refused_creates_nothing_and_says_why(app, network, fields, words):
    client = signed_in(app, network["admin"])
    before = db.session.execute(sa.select(sa.func.count(Fund.id))).scalar()
    data = {
        "fund-name": "New Fund",
        "fund-admin_login": "new.admin",
        "fund-admin_password": "a long first passphrase 42",
        **fields,
    }
    sent = client.post("/network/funds", data=data)
    page = refused_page(client, sent, "/network/funds#new-fund").get_data(as_text=True)
    assert words in page
    assert db.session.execute(sa.select(sa.func.count(Fund.id))).scalar() == before
    assert db.session.execute(sa.select(User).where(User.login == "new.admin")).first() is None


def test_a_fund_is_not_made_on_the_login_an_open_invitation_holds(app, network, make_user):
    """The login an administrator invited someone to stays theirs: a fund's administrator
    account is not made on it (the invitation would stop working), nor any other account;
    withdrawn, the invitation frees it."""
    admin = make_user("admin")
    invitation, _token = invitations.invite_account(admin, Role.FINANCE, "held.login")
    db.session.commit()
    client = signed_in(app, network["admin"])
    data = {
        "fund-name": "New Fund",
        "fund-admin_login": "held.login",
        "fund-admin_password": "a long first passphrase 42",
    }
    sent = client.post("/network/funds", data=data)
    page = refused_page(client, sent, "/network/funds#new-fund").get_data(as_text=True)
    assert "That login is taken." in page
    assert db.session.execute(sa.select(Fund).where(Fund.name == "New Fund")).first() is None
    with pytest.raises(UserExistsError):
        create_user(Role.REVIEWER, "held.login", password="a long first passphrase 42")
    db.session.rollback()
    invitations.revoke_invitation(admin, db.session.get(Invitation, invitation.id))
    db.session.commit()
    assert client.post("/network/funds", data=data).status_code == 302


def test_the_network_admin_sees_no_case_and_no_fund_page(app, network, make_user):
    client = signed_in(app, network["admin"])
    for path in (
        "/cases",
        f"/applications/{network['case'].uid}",
        "/pools",
        "/payments",
        "/coverage",
        "/admin/users",
        "/fund/settings",
    ):
        response = client.get(path)
        assert response.status_code in (403, 404), path
        assert "Zebulon" not in response.get_data(as_text=True)
    assert "Zebulon" not in _funds_page(client)
    assert "casecanary" not in _funds_page(client)
    # And nobody else manages funds: a fund's own administrator included.
    fund_admin = signed_in(app, make_user("admin"))
    assert fund_admin.get("/network/funds").status_code == 403
    uid = network["regional"].uid
    assert fund_admin.post(f"/network/funds/{uid}/suspend").status_code == 403
    assert db.session.get(Fund, network["regional"].id).suspended_at is None


def test_a_suspended_fund_signs_no_one_in_and_takes_no_application(
    app, network, make_user, make_fund
):
    make_fund("International Fund")  # so that the form still offers a choice
    staff = make_user("reviewer", fund_id=network["regional"].id)
    working = signed_in(app, staff)
    admin = signed_in(app, network["admin"])
    uid = network["regional"].uid
    assert admin.post(f"/network/funds/{uid}/intake").status_code == 302
    assert admin.post(f"/network/funds/{uid}/suspend").status_code == 302
    assert "Suspended since" in _funds_page(admin)
    assert "None while it is suspended; the intake fund again once resumed" in _funds_page(admin)
    # The session in use ends; a new sign-in fails as a wrong password does.
    assert working.get("/cases").status_code == 302
    again = app.test_client().post("/login", data={"login": staff.login, "password": PASSWORD})
    assert again.status_code != 302 or not again.location.endswith("/login/code")
    # Not on the public page, not offered, and refused if sent anyway.
    assert "Regional Fund" not in app.test_client().get("/funds").get_data(as_text=True)
    applicant = signed_in(app, make_user("applicant"))
    form = applicant.get("/apply").get_data(as_text=True)
    assert "Regional Fund" not in form and "I do not know" not in form
    sent = applicant.get("/apply/new", query_string={"fund": uid, "category": "medical"})
    assert sent.status_code == 200 and "Not a valid choice" in sent.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Application.id))).scalar() == 1
    with pytest.raises(FundClosedError):
        start_application(make_user("applicant"), "medical", network["regional"])
    # Resumed, it works again for whoever signs in anew; the session that was in use
    # when it was suspended (a device taken meanwhile) stays ended.
    assert admin.post(f"/network/funds/{uid}/resume").status_code == 302
    assert working.get("/cases").location == "/login"
    # Named the intake fund before, it is again: no one had to remember to name it anew.
    assert "I do not know" in applicant.get("/apply").get_data(as_text=True)
    login(app.test_client(), staff)


def test_an_application_goes_to_the_fund_chosen_or_to_the_intake_fund(app, network, make_user):
    applicant = signed_in(app, make_user("applicant"))
    form = applicant.get("/apply").get_data(as_text=True)
    assert "Regional Fund" in form and "Test Fund" in form
    assert "I do not know" not in form  # no intake fund named yet
    apply_through_form(applicant, "legal", fund=network["regional"].uid)
    case = db.session.execute(
        sa.select(Application).where(Application.category == Category.LEGAL)
    ).scalar_one()
    assert case.fund_id == network["regional"].id
    # Without a choice, nothing is created and the form says so.
    page = applicant.get("/apply/new", query_string={"category": "medical"})
    assert "Choose a fund." in page.get_data(as_text=True)
    # The network names an intake fund: "I do not know" sends the application there.
    admin = signed_in(app, network["admin"])
    assert admin.post(f"/network/funds/{network['local'].uid}/intake").status_code == 302
    assert "I do not know" in applicant.get("/apply").get_data(as_text=True)
    apply_through_form(applicant, "other", fund="intake")
    case = db.session.execute(
        sa.select(Application).where(Application.category == Category.OTHER)
    ).scalar_one()
    assert case.fund_id == network["local"].id
    # Only one fund is the intake fund at a time.
    admin.post(f"/network/funds/{network['regional'].uid}/intake")
    db.session.expire_all()
    assert [f.name for f in db.session.execute(sa.select(Fund).where(Fund.intake)).scalars()] == [
        "Regional Fund"
    ]


def test_with_one_fund_nothing_is_asked(app, client, make_user, fund):
    applicant = signed_in(app, make_user("applicant"))
    assert "Which fund" not in applicant.get("/apply").get_data(as_text=True)
    apply_through_form(applicant, "medical")
    case = db.session.execute(sa.select(Application)).scalar_one()
    assert case.fund_id == fund.id


def test_the_public_page_says_what_each_fund_covers_and_how_fast_it_answers(
    app, network, make_user
):
    admin = signed_in(app, make_user("admin", fund_id=network["regional"].id))
    saved = admin.post(
        "/fund/settings/profile",
        data={
            "profile-takes_applications": "y",
            "profile-categories": ["medical", "dependants"],
            "profile-countries": ["KE", "UG"],
            "profile-languages": ["fr", "ar"],
        },
    )
    assert saved.status_code == 302
    admin.post(
        "/fund/settings/limits",
        data={
            "limits-target_response_hours_urgent": "12",
            "limits-target_decision_hours_urgent": "48",
            "limits-target_response_hours_normal": "96",
            "limits-target_decision_hours_normal": "400",
        },
    )
    page = app.test_client().get("/funds").get_data(as_text=True)
    card = page[page.index("Regional Fund") :]
    card = card[: card.index("</section>")]
    assert "Medical costs" in card and "Kenya" in card and "Uganda" in card
    assert "Arabic" in card or "العربية" in card
    assert "within 12 hours" in card and "within 4 days" in card
    # The other fund says it covers everything, at the instance's targets.
    other = page[page.index("Test Fund") :]
    assert "Every kind" in other and "within 24 hours" in other and "within 3 days" in other
    # In French, the same page speaks French.
    french = app.test_client().get("/funds", headers={"Accept-Language": "fr"})
    assert "Kenya" in french.get_data(as_text=True)
    assert "Funds you can apply to" not in french.get_data(as_text=True)
    # Each language joins a list as it writes one: never a Latin comma in Chinese or Farsi.
    for language, joined in (("en", "Kenya and Uganda"), ("fr", "Kenya et Ouganda")):
        read = app.test_client().get("/funds", headers={"Accept-Language": language})
        assert joined in read.get_data(as_text=True), language
    for language, joiner in (("zh", "和"), ("fa", " و ")):
        read = app.test_client().get("/funds", headers={"Accept-Language": language}).text
        card = read[read.index("Regional Fund") :]
        places = re.findall(r"<dd>(.*?)</dd>", card)[1]  # kinds of support, then where
        assert joiner in places and ", " not in places, (language, places)


def test_each_fund_weighs_approvals_against_its_own_threshold(app, network, make_user):
    regional = network["regional"]
    admin = signed_in(app, make_user("admin", fund_id=regional.id))
    assert (
        admin.post("/fund/settings/limits", data={"limits-four_eyes_threshold": "100"}).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Fund, regional.id).four_eyes_threshold == Decimal("100.00")
    theirs = Application(fund_id=regional.id, category=Category.MEDICAL, currency="EUR")
    ours = Application(fund_id=network["local"].id, category=Category.MEDICAL, currency="EUR")
    db.session.add_all([theirs, ours])
    db.session.flush()
    their_manager = make_user("manager", fund_id=regional.id)
    our_manager = make_user("manager")
    assert decisions.weigh_approval(theirs, Decimal(200), their_manager).needs_second
    assert not decisions.weigh_approval(ours, Decimal(200), our_manager).needs_second
    # A threshold in fractions of a cent, or a half-set target, is refused whole.
    for data, words in (
        ({"limits-four_eyes_threshold": "100.0051"}, "two decimal places"),
        ({"limits-target_response_hours_urgent": "5"}, "or neither"),
        (
            {
                "limits-target_response_hours_urgent": "50",
                "limits-target_decision_hours_urgent": "10",
            },
            "no longer than its decision target",
        ),
        ({"limits-target_response_hours_normal": "0"}, "Between 1 and"),
    ):
        page = refused_page(admin, admin.post("/fund/settings/limits", data=data))
        assert words in page.get_data(as_text=True), words
    db.session.expire_all()
    assert db.session.get(Fund, regional.id).four_eyes_threshold == Decimal("100.00")
    assert db.session.get(Fund, regional.id).target_response_hours_urgent is None


def test_a_case_takes_its_funds_targets(app, network):
    regional = network["regional"]
    regional.target_response_hours_urgent, regional.target_decision_hours_urgent = 6, 30
    db.session.commit()
    case = Application(
        fund_id=regional.id, category=Category.MEDICAL, currency="EUR", urgency=Urgency.URGENT
    )
    db.session.add(case)
    db.session.flush()
    at = datetime(2026, 3, 1, 9, 0)
    targets.set_targets(case, at)
    assert case.response_due_at == at + timedelta(hours=6)
    assert case.decision_due_at == at + timedelta(hours=30)
    local = Application(
        fund_id=network["local"].id,
        category=Category.MEDICAL,
        currency="EUR",
        urgency=Urgency.URGENT,
    )
    db.session.add(local)
    db.session.flush()
    targets.set_targets(local, at)
    assert local.response_due_at == at + timedelta(hours=app.config["TARGET_RESPONSE_HOURS_URGENT"])


def test_a_fund_admin_changes_only_their_own_fund(app, network, make_user):
    """The settings pages name no fund: an administrator changes their own, whatever a
    form sends; other roles may not."""
    admin = signed_in(app, make_user("admin", fund_id=network["regional"].id))
    admin.post(
        "/fund/settings/profile",
        data={"profile-categories": ["legal"], "fund": network["local"].uid},
    )
    db.session.expire_all()
    assert db.session.get(Fund, network["regional"].id).categories == ["legal"]
    assert db.session.get(Fund, network["local"].id).categories == []
    manager = signed_in(app, make_user("manager"))
    assert manager.get("/fund/settings").status_code == 403
    assert (
        manager.post("/fund/settings/limits", data={"limits-four_eyes_threshold": "1"}).status_code
        == 403
    )


def test_a_threshold_set_in_another_reporting_currency_is_not_read_as_this_one(
    app, network, make_user
):
    """A fund's threshold keeps the currency it was set in: once the instance reports in
    another currency, the environment's threshold applies until the fund sets its own."""
    regional = network["regional"]
    admin = signed_in(app, make_user("admin", fund_id=regional.id))
    admin.post("/fund/settings/limits", data={"limits-four_eyes_threshold": "100"})
    db.session.expire_all()
    fund = db.session.get(Fund, regional.id)
    assert (fund.four_eyes_threshold, fund.four_eyes_currency) == (Decimal("100.00"), "EUR")
    assert decisions.four_eyes_threshold(fund) == Decimal("100.00")
    app.config["REPORTING_CURRENCY"] = "USD"
    assert decisions.four_eyes_threshold(fund) == Decimal(app.config["FOUR_EYES_THRESHOLD"])


def test_a_fund_admin_alone_cannot_raise_the_threshold_above_the_instances(app, network, make_user):
    """One person may make four eyes stricter, never looser: a fund's threshold above the
    instance's is refused (an administrator alone would otherwise switch the second
    manager off), and one stored above it, from before the instance's was lowered, counts
    as the instance's."""
    regional = network["regional"]
    admin = signed_in(app, make_user("admin", fund_id=regional.id))
    instance = Decimal(app.config["FOUR_EYES_THRESHOLD"])
    for too_high in (str(instance + Decimal("0.01")), "999999999999.99"):
        page = refused_page(
            admin,
            admin.post("/fund/settings/limits", data={"limits-four_eyes_threshold": too_high}),
        )
        said = html.unescape(page.get_data(as_text=True))
        assert "can be at most the instance's, €5,000.00:" in said, too_high
        db.session.expire_all()
        assert db.session.get(Fund, regional.id).four_eyes_threshold is None
    assert (
        admin.post(
            "/fund/settings/limits", data={"limits-four_eyes_threshold": str(instance)}
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Fund, regional.id).four_eyes_threshold == instance
    # The instance's threshold lowered since: the fund's own no longer counts above it.
    app.config["FOUR_EYES_THRESHOLD"] = "1000"
    case = Application(fund_id=regional.id, category=Category.MEDICAL, currency="EUR")
    db.session.add(case)
    db.session.flush()
    manager = make_user("manager", fund_id=regional.id)
    assert decisions.four_eyes_threshold(db.session.get(Fund, regional.id)) == Decimal("1000")
    assert decisions.weigh_approval(case, Decimal(1500), manager).needs_second
    # The settings page shows what counts, so the targets can be saved as it fills them.
    page = admin.get("/fund/settings").get_data(as_text=True)
    assert 'value="1000.00"' in page and f'value="{instance}"' not in page
    sent = admin.post(
        "/fund/settings/limits",
        data={
            "limits-four_eyes_threshold": "1000.00",
            "limits-target_response_hours_urgent": "5",
            "limits-target_decision_hours_urgent": "20",
        },
    )
    assert sent.status_code == 302


def test_a_funds_staff_read_times_in_its_time_zone(app, network, make_user):
    """A fund in Nairobi sets its time zone: its staff's pages give times in it, named
    (the last sign-in of an account, 09:30 UTC, reads 12:30 EAT); another fund's staff and
    the applicant side keep UTC; a name the time zone database does not hold is refused
    in words and changes nothing."""
    regional = network["regional"]
    admin = signed_in(app, make_user("admin", fund_id=regional.id))
    sent = admin.post("/fund/settings/limits", data={"limits-time_zone": "Mars/Olympus"})
    said = html.unescape(refused_page(admin, sent).get_data(as_text=True))
    assert "Mars/Olympus is not a time zone this server knows" in said
    db.session.expire_all()
    assert db.session.get(Fund, regional.id).time_zone is None
    sent = admin.post("/fund/settings/limits", data={"limits-time_zone": " africa/NAIROBI "})
    assert sent.status_code == 302
    db.session.expire_all()
    assert db.session.get(Fund, regional.id).time_zone == "Africa/Nairobi"
    seen = make_user("reviewer", fund_id=regional.id)
    seen.last_login_at = datetime(2026, 3, 4, 9, 30)
    db.session.commit()
    users = admin.get("/admin/users").get_data(as_text=True)
    assert "2026-03-04 12:30 EAT" in users and "09:30 UTC" not in users
    manager = signed_in(app, make_user("manager", fund_id=regional.id))
    assert "times are in EAT" in manager.get("/dashboard").get_data(as_text=True)
    other = signed_in(app, make_user("admin"))
    make_user("reviewer").last_login_at = datetime(2026, 3, 4, 9, 30)
    db.session.commit()
    assert "2026-03-04 09:30 UTC" in other.get("/admin/users").get_data(as_text=True)
