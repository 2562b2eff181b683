"""Signing in and out as each role, through the forms."""

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import User
from hrdfund.extensions import db
from tests.conftest import PASSWORD, login, totp_code

HOMES = {
    "applicant": ("/my", "Your applications"),
    "partner": ("/referrals", "Cases you referred"),
    "reviewer": ("/cases", "Open cases"),
    "manager": ("/cases", "Open cases"),
    "finance": ("/payments", "Latest payments"),
    "donor": ("/donor", "Your pools"),
    "admin": ("/admin/users", "Accounts of this fund"),
}
GENERIC = "Login name or password is not right."


@pytest.mark.parametrize("role", list(HOMES))
def test_every_role_signs_in_and_lands_on_its_home(client, make_user, role):
    """Staff and donors pass a second step; applicants and partners are never asked."""
    user = make_user(role)
    response = client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert response.status_code == 302
    if role in ("applicant", "partner"):
        assert response.location == "/"
    else:
        assert response.location == "/login/code"
        assert client.get("/").location == "/login", "no access before the code"
        response = client.post("/login/code", data={"code": totp_code(user)})
    page = client.get("/", follow_redirects=True)
    path, heading = HOMES[role]
    assert page.request.path == path
    assert f"<h1>{heading}</h1>" in page.get_data(as_text=True)


def test_unknown_account_and_wrong_password_look_the_same(client, make_user):
    """Nobody learns from the message whether an account exists."""
    user = make_user("applicant")
    wrong = client.post("/login", data={"login": user.login, "password": "x" * 14})
    unknown = client.post("/login", data={"login": "nobody-here", "password": "x" * 14})
    assert GENERIC in wrong.get_data(as_text=True)
    assert GENERIC in unknown.get_data(as_text=True)
    assert wrong.status_code == unknown.status_code == 200


def test_five_failures_lock_one_account_only(client, make_user):
    """After five wrong passwords even the right one waits; another account is unaffected."""
    victim, other = make_user("applicant"), make_user("applicant")
    for _ in range(5):
        client.post("/login", data={"login": victim.login, "password": "wrong password!"})
    locked = client.post("/login", data={"login": victim.login, "password": PASSWORD})
    assert "Wait 15 minutes" in locked.get_data(as_text=True)
    assert locked.status_code == 200
    assert (
        client.post("/login", data={"login": other.login, "password": PASSWORD}).status_code == 302
    )


def test_a_code_works_only_once(client, make_user, app):
    """A TOTP code seen by someone over the shoulder cannot be replayed."""
    user = make_user("manager")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    code = totp_code(user)
    assert client.post("/login/code", data={"code": code}).status_code == 302
    second = app.test_client()
    second.post("/login", data={"login": user.login, "password": PASSWORD})
    replay = second.post("/login/code", data={"code": code})
    assert "already used" in replay.get_data(as_text=True)
    assert second.get("/cases").status_code == 302


def test_a_cookie_copied_before_logout_stops_working(app, client, make_user):
    """Logout ends every session of the user: a stolen or replayed cookie is refused."""
    user = make_user("applicant")
    login(client, user)
    cookie = client.get_cookie("hrdfund_session").value
    thief = app.test_client()
    thief.set_cookie("hrdfund_session", cookie)
    assert thief.get("/my").status_code == 200
    assert client.post("/logout").location == "/login"
    assert thief.get("/my").location == "/login"


def test_logout_needs_a_post(client, make_user):
    """A link or image pointing at /logout cannot sign anyone out, nor change state."""
    user = make_user("applicant")
    login(client, user)
    assert client.get("/logout").status_code == 405
    assert client.get("/my").status_code == 200


def test_session_cookie_holds_no_login_and_is_protected(client, make_user):
    """The cookie carries ids and times only, is HttpOnly and SameSite."""
    user = make_user("applicant", login="canary-login-7731")
    response = client.post("/login", data={"login": user.login, "password": PASSWORD})
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header
    with client.session_transaction() as session:
        values = repr(dict(session))
    assert "canary-login-7731" not in values
    assert "_id" not in dict(session), "no hash of address or browser"


def test_staff_session_ends_after_thirty_idle_minutes(client, make_user):
    """A staff laptop left open signs itself out."""
    user = make_user("reviewer")
    login(client, user)
    with client.session_transaction() as session:
        session["seen_at"] -= 31 * 60
    response = client.get("/cases")
    assert response.location == "/login"
    assert client.get("/cases").location == "/login"


def test_pending_code_step_expires(client, make_user):
    """A password entered and left without a code does not wait forever."""
    user = make_user("finance")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    with client.session_transaction() as session:
        session["pending"] = {**session["pending"], "at": session["pending"]["at"] - 600}
    assert client.post("/login/code", data={"code": totp_code(user)}).location == "/login"


def test_first_code_activates_enrolment(client, make_user):
    """A new staff account sees its key once, and is enrolled only after a valid code."""
    user = make_user("admin")
    assert user.totp_confirmed_at is None
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    page = client.get("/login/code").get_data(as_text=True)
    assert user.totp_secret in page
    client.post("/login/code", data={"code": totp_code(user)})
    confirmed = db.session.execute(
        sa.select(User.totp_confirmed_at).where(User.id == user.id)
    ).scalar()
    assert confirmed is not None


@pytest.fixture
def csrf_app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


def test_forged_cross_site_posts_fail(csrf_app_config, backend, request):
    """Without the form's token, neither signing in nor signing out works."""
    from hrdfund import create_app

    application = create_app(csrf_app_config)
    with application.app_context():
        if backend == "sqlite":
            db.create_all()
        else:
            request.getfixturevalue("pg_schema")
        client = application.test_client()
        response = client.post("/login", data={"login": "someone", "password": "x" * 14})
        assert response.status_code == 400
        assert "Traceback" not in response.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()
