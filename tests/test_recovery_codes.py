"""Setting up the second factor: a QR code drawn on the server, and recovery codes shown
once that each sign in once when the authenticator is lost."""

import re

import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.auth.models import RecoveryCode
from hrdfund.auth.services import reset_second_factor
from hrdfund.core.extensions import db
from tests.conftest import PASSWORD, login, refused_page, totp_code


def _codes(page):
    return re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", page.get_data(as_text=True))


def test_enrolment_shows_a_qr_code_and_then_ten_codes_once(client, make_user):
    user = make_user("finance")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    page = client.get("/login/code").get_data(as_text=True)
    assert '<img src="/login/code/qr.svg"' in page and "<script" not in page
    image = client.get("/login/code/qr.svg")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert image.data.lstrip().startswith(b"<svg") and b"<script" not in image.data
    shown = login(client, user)
    codes = _codes(shown)
    assert len(codes) == len(set(codes)) == 10
    stored = db.session.execute(sa.select(RecoveryCode.code_hash)).scalars().all()
    assert len(stored) == 10
    for code in codes:  # only keyed hashes are kept
        assert all(code.replace("-", "") not in h for h in stored)
    # Once enrolled, the picture of the key is gone, for this session and any other.
    assert client.get("/login/code/qr.svg").status_code == 404
    assert client.get("/", follow_redirects=True).request.path == "/dashboard"


def test_a_recovery_code_signs_in_once(app, client, make_user):
    user = make_user("manager")
    codes = _codes(login(client, user))
    client.post("/logout")
    other = app.test_client()
    other.post("/login", data={"login": user.login, "password": PASSWORD})
    assert "Use a recovery code" in other.get("/login/code").get_data(as_text=True)
    assert other.get("/login/code/qr.svg").status_code == 404
    done = other.post("/login/recovery", data={"code": codes[3].upper().replace("-", " ")})
    assert done.location == "/"
    cases = other.get("/cases")
    assert cases.status_code == 200 and "9 are left" in cases.get_data(as_text=True)
    third = app.test_client()
    third.post("/login", data={"login": user.login, "password": PASSWORD})
    again = refused_page(third, third.post("/login/recovery", data={"code": codes[3]}))
    assert "not right or was already used" in again.get_data(as_text=True)
    assert third.get("/cases").location == "/login"
    failed = db.session.execute(
        sa.select(AuditEvent.object_id).where(AuditEvent.action == "auth.login_failed")
    ).scalars()
    assert list(failed) == [user.uid], "the used code counted as a failure"
    used = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == "auth.recovery_code_used")
    ).scalar()
    assert used == 1


def test_recovery_needs_the_password_first(client, make_user):
    user = make_user("admin")
    codes = _codes(login(client, user))
    client.post("/logout")
    response = client.post("/login/recovery", data={"code": codes[0]})
    assert response.location == "/login"
    assert client.get("/admin/users").location == "/login"


def test_the_operator_resets_a_partners_lost_second_factor(app, client, runner, make_user):
    """A partner organisation belongs to no fund, so no fund's admin resets its second
    factor: the server's operator does, and hands the person a code, as an admin would."""
    partner = make_user("partner")
    login(client, partner)
    secret = partner.totp_secret
    done = runner.invoke(args=["hrdfund", "reset-second-factor", partner.login.upper()])
    assert done.exit_code == 0, done.output
    handed = re.search(r"apart from their password: ([A-Z0-9]{5}-[A-Z0-9]{5})$", done.output, re.M)
    assert handed, done.output
    assert client.get("/referrals").location == "/login"  # every session ended
    db.session.refresh(partner)
    assert partner.totp_secret != secret and partner.totp_confirmed_at is None
    again = app.test_client()
    again.post("/login", data={"login": partner.login, "password": PASSWORD})
    assert again.get("/login/code").location == "/login/code/reset"
    assert again.post("/login/code/reset", data={"code": handed[1]}).location == "/login/code"
    enrolled = again.post("/login/code", data={"code": totp_code(partner)})
    assert "Your recovery codes" in enrolled.get_data(as_text=True)
    actors = db.session.execute(
        sa.select(AuditEvent.actor).where(AuditEvent.action == "auth.second_factor_reset")
    ).scalars()
    assert list(actors) == ["system"]
    # A defender's account has no second factor to reset; a login no account has, neither.
    for other in (make_user("applicant").login, "nobody-at-all"):
        refused = runner.invoke(args=["hrdfund", "reset-second-factor", other])
        assert refused.exit_code == 1 and "No account at that login" in refused.output


def test_an_admin_resets_a_lost_second_factor(app, client, make_user, make_fund):
    manager = make_user("manager")
    codes = _codes(login(client, manager))
    admin_client = app.test_client()
    admin = make_user("admin")
    login(admin_client, admin)
    assert "Reset second factor" in admin_client.get("/admin/users").get_data(as_text=True)
    secret = manager.totp_secret
    done = admin_client.post(f"/admin/users/{manager.uid}/second-factor")
    # The code to hand over is on the page, this once, and never in the cookie.
    shown = done.get_data(as_text=True)
    assert done.status_code == 200 and "sets up a new authenticator" in shown
    handed = re.search(r'<p class="secret"><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>', shown)[1]
    cookie = admin_client.get_cookie("hrdfund_session").value
    carried = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert handed.replace("-", "") not in str(carried) and manager.login not in str(carried)
    assert handed not in admin_client.get("/admin/users").get_data(as_text=True)
    assert client.get("/cases").location == "/login"  # the manager's session ended
    db.session.refresh(manager)
    assert manager.totp_secret != secret and manager.totp_confirmed_at is None
    assert db.session.execute(sa.select(sa.func.count()).select_from(RecoveryCode)).scalar() == (
        10  # the admin's own codes only
    )
    # The password alone does not show the new key: the administrator's code comes first.
    again = app.test_client()
    again.post("/login", data={"login": manager.login, "password": PASSWORD})
    assert again.get("/login/code").location == "/login/code/reset"
    assert again.get("/login/code/qr.svg").status_code == 404
    assert manager.totp_secret not in again.get("/login/code/reset").get_data(as_text=True)
    wrong = refused_page(again, again.post("/login/code/reset", data={"code": "AAAAA-AAAAA"}))
    assert "not the code your administrator was given" in wrong.get_data(as_text=True)
    assert again.get("/login/code").location == "/login/code/reset"
    assert again.post("/login/recovery", data={"code": codes[0]}).location == "/login"
    again.post("/login", data={"login": manager.login, "password": PASSWORD})
    typed = handed.lower().replace("-", " ")  # as read out: any case, any spacing
    assert again.post("/login/code/reset", data={"code": typed}).location == "/login/code"
    page = again.get("/login/code").get_data(as_text=True)
    assert '<img src="/login/code/qr.svg"' in page and manager.totp_secret in page
    assert "Your recovery codes" in again.post(
        "/login/code", data={"code": totp_code(manager)}
    ).get_data(as_text=True)
    db.session.refresh(manager)
    assert manager.reset_code_hash is None, "spent once the authenticator is set up"
    resets = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == "auth.second_factor_reset")
    ).scalar()
    assert resets == 1
    # Only another account of the admin's own fund; only an admin.
    stranger = make_user("manager", fund_id=make_fund("Another Fund").id)
    assert admin_client.post(f"/admin/users/{stranger.uid}/second-factor").status_code == 404
    assert admin_client.post(f"/admin/users/{admin.uid}/sessions").status_code == 404
    applicant = make_user("applicant")
    assert admin_client.post(f"/admin/users/{applicant.uid}/second-factor").status_code == 404
    peer = app.test_client()
    login(peer, make_user("manager"))
    assert peer.post(f"/admin/users/{manager.uid}/sessions").status_code == 403


def test_an_admin_ends_every_session_of_an_account(app, client, make_user):
    finance = make_user("finance")
    login(client, finance)
    assert client.get("/payments").status_code == 200
    admin_client = app.test_client()
    login(admin_client, make_user("admin"))
    admin_client.post(f"/admin/users/{finance.uid}/sessions")
    assert client.get("/payments").location == "/login"
    ended = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == "auth.sessions_ended")
    ).scalar()
    assert ended == 1


def test_the_right_reset_code_is_no_failure(app, make_user):
    """Four wrong reset codes, then the right one: the right one is not counted against
    the account, which sets up its new authenticator at once, not locked out by it."""
    manager = make_user("manager")
    login(app.test_client(), manager)
    handed = reset_second_factor(manager, make_user("admin"))
    db.session.commit()
    client = app.test_client()
    client.post("/login", data={"login": manager.login, "password": PASSWORD})
    for _n in range(4):
        client.post("/login/code/reset", data={"code": "AAAAA-AAAAA"})
    assert client.post("/login/code/reset", data={"code": handed}).location == "/login/code"
    done = client.post("/login/code", data={"code": totp_code(manager)})
    assert "Your recovery codes" in done.get_data(as_text=True)
