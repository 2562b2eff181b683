"""Accounts made in the browser: an administrator invites staff and donors of their own
fund with a one-time link; the invited person sets the password and enrols the second
factor before the account works; an administrator deactivates and reactivates accounts;
every step is an audit entry without secrets."""

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.audit.models import AuditEvent
from hrdfund.auth import invitations
from hrdfund.auth.models import CONFIRMED_ROLES, Invitation, Role, User
from hrdfund.cases.access import REVIEW_ROLES, staff_on_case
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from tests.conftest import (
    GENERIC,
    LOCKED,
    PASSWORD,
    audit_actions,
    count_rows,
    form_errors,
    login,
    make_case,
    signed_in,
)

NEW_PASSWORD = "a brand new passphrase 77"
GONE = "This invitation does not work"


@pytest.fixture
def admin(make_user):
    return make_user("admin")


#: The code a manager was given for each link's invitation, by the link's path.
CODES = {}


def _invite(client, role="reviewer", login="rita.reviewer", donor="", confirm=True):
    """Send the invitation form; return the response and the link's path (or None). An
    invitation to an account that reads cases or moves money is then confirmed by a
    manager of the fund (``confirm``), whose code ``_accept`` types."""
    response = client.post(
        "/admin/users/invite",
        data={"invite-role": role, "invite-login": login, "invite-donor": donor},
    )
    html = response.get_data(as_text=True)
    found = re.search(r"https?://[^/<\s]+(/invitation/[A-Za-z0-9_-]+)", html)
    path = found.group(1) if found else None
    if path and confirm and Role(role) in CONFIRMED_ROLES:
        invitation = (
            db.session.execute(
                sa.select(Invitation)
                .where(Invitation.login == login)
                .order_by(Invitation.id.desc())
            )
            .scalars()
            .first()
        )
        # Confirmed as the server's operator does for a fund with no manager: the
        # manager's own way is tests/test_invitation_codes.py's.
        _invitation_row, CODES[path] = invitations.confirm_invitation(None, invitation)
        db.session.commit()
    return response, path


def _form(path, password=NEW_PASSWORD):
    """The invitation's form filled in: the password twice, and the manager's code."""
    return {"password": password, "again": password, "code": CODES.get(path, "")}


def _accept(client, path, password=NEW_PASSWORD, again=None, code=None):
    """Open the link and set the password, with the manager's code when the account needs
    one; return the answer to the password form."""
    opened = client.get(path)
    assert opened.status_code == 303 and opened.location == "/invitation"
    data = {**_form(path, password), "again": again or password}
    if code is not None:
        data["code"] = code
    return client.post("/invitation", data=data)


def _user(login_name):
    return db.session.execute(sa.select(User).where(User.login == login_name)).scalar_one()


def _invitation():
    return db.session.execute(sa.select(Invitation)).scalar_one()


def test_an_invited_reviewer_sets_a_password_enrols_and_then_signs_in(app, admin):
    """The whole way: the link, the password, the second factor with recovery codes shown
    once; then a sign-in like any other."""
    boss = signed_in(app, admin)
    assert "Invite a new account" in boss.get("/admin/users").get_data(as_text=True)
    assert boss.get("/admin/users/invite").status_code == 200
    response, path = _invite(boss)
    assert response.status_code == 200 and path, response.get_data(as_text=True)[-800:]
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43
    # The token is nowhere in the database: only its keyed hash.
    row = _invitation()
    assert row.token_hash != token and token not in row.token_hash
    assert "rita.reviewer" in boss.get("/admin/users").get_data(as_text=True)

    invitee = app.test_client()
    page = invitee.get(path, follow_redirects=True)
    assert page.request.path == "/invitation"  # the address no longer carries the token
    html = page.get_data(as_text=True)
    assert "rita.reviewer" in html and "Reviewer" in html and token not in html
    answer = invitee.post("/invitation", data=_form(path))
    assert answer.status_code == 302 and answer.location == "/login/code"
    user = _user("rita.reviewer")
    assert (user.role, user.fund_id, user.active) == (Role.REVIEWER, admin.fund_id, True)
    assert user.totp_confirmed_at is None
    # Until the second factor is enrolled, the account reaches no page.
    assert invitee.get("/dashboard").location == "/login"
    enrol = invitee.get("/login/code").get_data(as_text=True)
    assert "Add this account to your authenticator app" in enrol
    codes = invitee.post("/login/code", data={"code": pyotp.TOTP(user.totp_secret).now()})
    assert '<ul class="secret codes">' in codes.get_data(as_text=True)
    assert invitee.get("/dashboard").status_code == 200

    later = app.test_client()
    login(later, _user("rita.reviewer"), password=NEW_PASSWORD)
    assert later.get("/dashboard").status_code == 200
    assert {"auth.invited", "auth.invitation_accepted"} <= set(audit_actions())


def test_a_donor_account_reads_the_pools_of_the_donor_it_was_invited_for(app, admin, make_donor):
    donor = make_donor("Open Society Test")
    boss = signed_in(app, admin)
    assert "Open Society Test" in boss.get("/admin/users/invite").get_data(as_text=True)
    _response, path = _invite(boss, role="donor", login="donor.reader", donor=donor.uid)
    assert path
    _accept(app.test_client(), path)
    user = _user("donor.reader")
    assert (user.role, user.donor_id, user.fund_id) == (Role.DONOR, donor.id, admin.fund_id)
    assert user.needs_totp and user.totp_confirmed_at is None


def test_a_link_makes_one_account_only(app, admin):
    _response, path = _invite(signed_in(app, admin))
    first = app.test_client()
    assert _accept(first, path).location == "/login/code"
    again = app.test_client()
    opened = again.get(path)
    assert opened.status_code == 404 and GONE in opened.get_data(as_text=True)
    # A second browser that opened the link before the first one used it: its form no
    # longer makes anything either.
    assert count_rows(User) == 2


def test_two_browsers_with_one_link_make_one_account(app, admin):
    _response, path = _invite(signed_in(app, admin))
    first, second = app.test_client(), app.test_client()
    assert first.get(path).status_code == 303
    assert second.get(path).status_code == 303
    ok = first.post("/invitation", data=_form(path))
    late = second.post(
        "/invitation",
        data=_form(path, "another long phrase 88"),
    )
    assert ok.location == "/login/code"
    assert late.status_code == 404 and GONE in late.get_data(as_text=True)
    assert count_rows(User) == 2


def test_an_expired_link_gets_a_clear_page_and_makes_nothing(app, admin, clock):
    _response, path = _invite(signed_in(app, admin))
    expires_at = _invitation().expires_at
    assert timedelta(hours=71) < expires_at - utcnow() <= timedelta(hours=72)
    invitee = app.test_client()
    assert invitee.get(path).status_code == 303  # opened in time...
    clock.at(expires_at + timedelta(seconds=1))
    late = invitee.post("/invitation", data=_form(path))
    assert late.status_code == 404 and GONE in late.get_data(as_text=True)
    fresh = app.test_client().get(path)
    assert fresh.status_code == 404 and GONE in fresh.get_data(as_text=True)
    assert count_rows(User) == 1


@pytest.mark.parametrize("hours", [1])
def test_how_long_a_link_opens_is_a_setting(app_config, hours, backend, request):
    app_config["INVITATION_HOURS"] = hours
    application = request.getfixturevalue("app")
    admin = request.getfixturevalue("make_user")("admin")
    _invite(signed_in(application, admin))
    assert _invitation().expires_at - utcnow() <= timedelta(hours=hours)


def test_a_withdrawn_link_no_longer_opens(app, admin):
    boss = signed_in(app, admin)
    _response, path = _invite(boss)
    uid = _invitation().uid
    assert f"/admin/invitations/{uid}/revoke" in boss.get("/admin/users").get_data(as_text=True)
    assert boss.post(f"/admin/invitations/{uid}/revoke").status_code == 302
    opened = app.test_client().get(path)
    assert opened.status_code == 404 and GONE in opened.get_data(as_text=True)
    assert "auth.invitation_revoked" in audit_actions()
    assert "rita.reviewer" not in boss.get("/admin/users").get_data(as_text=True)
    # Withdrawn, its login is free for a new invitation.
    assert _invite(boss)[1]


def test_unknown_and_malformed_links_get_the_same_clear_page(app, client):
    for path in ("/invitation/nothing-here", "/invitation/" + "x" * 500, "/invitation"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert GONE in response.get_data(as_text=True)
    posted = client.post("/invitation", data=_form(path))
    assert posted.status_code == 404


@pytest.mark.parametrize(
    "password, why",
    [("short pass", "at least 12"), ("password1234", "too common"), ("x" * 129, None)],
)
def test_the_password_rules_of_sign_in_hold(app, admin, password, why):
    _response, path = _invite(signed_in(app, admin))
    invitee = app.test_client()
    answer = _accept(invitee, path, password=password)
    assert answer.status_code == 303 and answer.location == "/invitation"
    page = invitee.get("/invitation").get_data(as_text=True)
    assert why is None or why in page
    assert count_rows(User) == 1
    assert _invitation().accepted_at is None
    assert invitee.post("/invitation", data=_form(path)).location == ("/login/code")


def test_the_two_passwords_must_match(app, admin):
    _response, path = _invite(signed_in(app, admin))
    invitee = app.test_client()
    assert _accept(invitee, path, again="not the same at all 99").location == "/invitation"
    assert "The two passwords differ." in invitee.get("/invitation").get_data(as_text=True)
    assert count_rows(User) == 1


def test_a_refused_password_says_every_problem_at_once(app, admin):
    """A password too short, typed differently the second time, or holding the invited
    login: each is said on the first try, before the two copies match."""
    _response, path = _invite(signed_in(app, admin))
    invitee = app.test_client()
    assert _accept(invitee, path, password="short pass", again="short past").status_code == 303
    page = invitee.get("/invitation").get_data(as_text=True)
    assert "at least 12" in page and "The two passwords differ." in page
    named = _accept(invitee, path, password="rita.reviewer 2026", again="not it")
    assert named.location == "/invitation"
    assert "it contains the login name" in invitee.get("/invitation").get_data(as_text=True)
    assert count_rows(User) == 1


def test_a_login_locked_by_failed_attempts_is_locked_for_its_invitation_too(app, admin):
    """The link's form is held to the sign-in limits of its login."""
    _response, path = _invite(signed_in(app, admin))
    invitee = app.test_client()
    for _ in range(5):
        invitee.post("/login", data={"login": "rita.reviewer", "password": "guess " * 3})
    answer = _accept(invitee, path)
    assert answer.location == "/invitation"
    assert LOCKED in invitee.get("/invitation").get_data(as_text=True)
    assert count_rows(User) == 1


@pytest.mark.parametrize("role", ["admin", "network_admin", "applicant", "partner", "king"])
def test_an_admin_cannot_grant_a_role_it_may_not(app, admin, role):
    response, path = _invite(signed_in(app, admin), role=role)
    assert path is None and response.status_code == 303
    assert count_rows(Invitation) == 0


def test_the_service_refuses_those_roles_too(app, admin):
    for role in ("admin", "network_admin", "applicant", "partner"):
        with pytest.raises(invitations.InvitationError):
            invitations.invite_account(admin, role, "someone.new")
    db.session.rollback()
    assert count_rows(Invitation) == 0


def test_an_admin_invites_into_its_own_fund_and_its_own_donors_only(
    app, admin, make_fund, make_donor, make_user
):
    other_fund = make_fund("Other Fund")
    their_donor = make_donor("Their Donor", fund_id=other_fund.id)
    boss = signed_in(app, admin)
    # A donor of another fund, by its uid, as a forged form would send it.
    response, path = _invite(boss, role="donor", login="sneaky.donor", donor=their_donor.uid)
    assert path is None and count_rows(Invitation) == 0
    with pytest.raises(invitations.InvitationError):
        invitations.invite_account(admin, "donor", "sneaky.donor", their_donor.id)
    db.session.rollback()
    # A field naming another fund is ignored: the invitation is of the admin's fund.
    boss.post(
        "/admin/users/invite",
        data={"invite-role": "manager", "invite-login": "m.new", "fund_id": other_fund.id},
    )
    assert _invitation().fund_id == admin.fund_id
    # The other fund's admin neither sees nor withdraws it.
    stranger = signed_in(app, make_user("admin", fund_id=other_fund.id))
    assert "m.new" not in stranger.get("/admin/users").get_data(as_text=True)
    assert stranger.post(f"/admin/invitations/{_invitation().uid}/revoke").status_code == 404
    assert _invitation().revoked_at is None


def test_a_login_taken_or_invited_already_is_refused(app, admin, make_user):
    make_user("manager", login="taken.login")
    boss = signed_in(app, admin)
    response, path = _invite(boss, login="taken.login")
    assert path is None
    assert "That login name is taken" in boss.get("/admin/users/invite").get_data(as_text=True)
    assert _invite(boss, login="fresh.login")[1]
    assert _invite(boss, login="fresh.login")[1] is None
    assert count_rows(Invitation) == 1


@pytest.mark.parametrize(
    "role", ["applicant", "partner", "reviewer", "manager", "finance", "donor", "network_admin"]
)
def test_no_one_but_an_admin_reaches_any_of_it(app, admin, make_user, role):
    boss = signed_in(app, admin)
    _invite(boss)
    target = make_user("finance")
    someone = signed_in(app, make_user(role))
    uid = _invitation().uid
    assert someone.get("/admin/users/invite").status_code == 403
    assert _invite(someone, login="by.intruder")[0].status_code == 403
    assert someone.post(f"/admin/invitations/{uid}/revoke").status_code == 403
    assert someone.post(f"/admin/users/{target.uid}/deactivate").status_code == 403
    assert count_rows(Invitation) == 1 and _invitation().revoked_at is None
    db.session.refresh(target)
    assert target.active


def test_a_deactivated_account_is_signed_out_everywhere_and_refused_at_sign_in(
    app, admin, make_user
):
    staff = make_user("manager")
    one, two = signed_in(app, staff), signed_in(app, staff)
    assert one.get("/dashboard").status_code == 200
    boss = signed_in(app, admin)
    assert boss.post(f"/admin/users/{staff.uid}/deactivate").status_code == 302
    for client in (one, two):
        assert client.get("/dashboard").location == "/login"
    assert _still_on_sign_in(app, staff)
    assert "deactivated" in boss.get("/admin/users").get_data(as_text=True)
    # Its history stays: the account is there, only unable to sign in.
    db.session.refresh(staff)
    assert staff.active is False and count_rows(User) == 2

    assert boss.post(f"/admin/users/{staff.uid}/reactivate").status_code == 302
    again = app.test_client()
    login(again, staff)
    assert again.get("/dashboard").status_code == 200
    assert one.get("/dashboard").location == "/login"  # old sessions stay ended
    actions = audit_actions()
    assert actions.index("auth.deactivated") < actions.index("auth.reactivated")


def _still_on_sign_in(app, user):
    """A sign-in with the right password gets the one generic refusal."""
    browser = app.test_client()
    answer = browser.post("/login", data={"login": user.login, "password": PASSWORD})
    assert answer.status_code == 303 and answer.location == "/login"
    assert form_errors(browser.get("/login")) == [GENERIC]
    return True


def test_a_deactivated_account_half_way_through_signing_in_is_stopped(app, admin, make_user):
    staff = make_user("finance")
    halfway = app.test_client()
    assert halfway.post("/login", data={"login": staff.login, "password": PASSWORD}).location == (
        "/login/code"
    )
    invitations.deactivate_account(admin, staff)
    db.session.commit()
    answer = halfway.post("/login/code", data={"code": pyotp.TOTP(staff.totp_secret).now()})
    assert answer.location == "/login"
    assert halfway.get("/dashboard").location == "/login"


def test_an_admin_cannot_deactivate_itself_nor_the_last_admin(app, admin, make_user):
    boss = signed_in(app, admin)
    assert boss.post(f"/admin/users/{admin.uid}/deactivate").status_code == 404
    with pytest.raises(invitations.InvitationError):
        invitations.deactivate_account(admin, admin)
    db.session.rollback()
    # Whoever calls the service (a script, a command), the fund keeps an administrator.
    second = make_user("admin")
    second.active = False
    db.session.commit()
    with pytest.raises(invitations.InvitationError):
        invitations.deactivate_account(second, admin)
    db.session.rollback()
    db.session.refresh(admin)
    assert admin.active and boss.get("/admin/users").status_code == 200


def test_an_admin_cannot_deactivate_another_fund_s_account(app, admin, make_fund, make_user):
    other = make_fund("Other Fund")
    theirs = make_user("manager", fund_id=other.id)
    boss = signed_in(app, admin)
    assert boss.post(f"/admin/users/{theirs.uid}/deactivate").status_code == 404
    with pytest.raises(invitations.InvitationError):
        invitations.deactivate_account(admin, theirs)
    db.session.rollback()
    db.session.refresh(theirs)
    assert theirs.active


def test_every_step_is_audited_without_secrets(app, admin):
    boss = signed_in(app, admin)
    _response, path = _invite(boss)
    token = path.rsplit("/", 1)[1]
    _accept(app.test_client(), path)
    user = _user("rita.reviewer")
    boss.post(f"/admin/users/{user.uid}/deactivate")
    boss.post(f"/admin/users/{user.uid}/reactivate")
    _response, second = _invite(boss, login="second.person")
    boss.post(f"/admin/invitations/{_invitation_at('second.person').uid}/revoke")
    events = db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    actions = [e.action for e in events]
    for action in (
        "auth.invited",
        "auth.invitation_accepted",
        "auth.deactivated",
        "auth.reactivated",
        "auth.invitation_revoked",
    ):
        assert action in actions
    everything = " ".join(f"{e.object_id} {e.payload}" for e in events)
    for secret in (
        token,
        second.rsplit("/", 1)[1],
        NEW_PASSWORD,
        _invitation_at("rita.reviewer").token_hash,
    ):
        assert secret not in everything
    # The entries of the fund's accounts are in the fund's chain.
    assert {e.chain for e in events if e.action.startswith("auth.invit")} == {admin.fund_id}


def _invitation_at(login_name):
    return db.session.execute(
        sa.select(Invitation).where(Invitation.login == login_name)
    ).scalar_one()


def test_a_signed_in_person_opening_a_link_is_sent_home(app, admin):
    boss = signed_in(app, admin)
    _response, path = _invite(boss)
    assert boss.get(path).location == "/"
    assert _invitation().accepted_at is None


def test_a_deactivated_reviewer_is_offered_no_case(app, admin, make_user, fund):
    """Nobody is asked to assign, alert or confirm through an account that cannot sign in;
    once it may again, it is offered cases again."""
    reviewer = make_user("reviewer")
    case = make_case(fund)

    def offered():
        return set(db.session.execute(staff_on_case(case, REVIEW_ROLES)).scalars())

    assert reviewer in offered()
    invitations.deactivate_account(admin, reviewer)
    db.session.commit()
    assert reviewer not in offered()
    invitations.reactivate_account(admin, reviewer)
    db.session.commit()
    assert reviewer in offered()


def test_retention_deletes_invitations_that_no_longer_open(app, admin, runner):
    """A used, withdrawn or expired invitation serves nothing: `flask hrdfund purge`
    deletes it (its login with it); an open one stays, and the audit chain verifies."""
    boss = signed_in(app, admin)
    _response, used = _invite(boss, login="used.one")
    _accept(app.test_client(), used)
    _invite(boss, login="withdrawn.one")
    boss.post(f"/admin/invitations/{_invitation_at('withdrawn.one').uid}/revoke")
    _invite(boss, login="expired.one")
    _invitation_at("expired.one").expires_at = utcnow() - timedelta(minutes=1)
    _response, still_open = _invite(boss, login="open.one")
    db.session.commit()
    dry = runner.invoke(args=["hrdfund", "purge", "--dry-run"])
    assert "3 invitations used, withdrawn or expired to delete" in dry.output
    assert count_rows(Invitation) == 4
    done = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert done.exit_code == 0, done.output
    logins = db.session.execute(sa.select(Invitation.login)).scalars().all()
    assert logins == ["open.one"]
    assert _user("used.one").active
    assert audit.verify(fund=admin.fund_id) == []
    assert app.test_client().get(still_open).status_code == 303
