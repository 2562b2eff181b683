"""Signing in and out through the forms: second factor, one generic failure, lockout, logout
everywhere, cookies without data, timeouts and CSRF."""

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import SignInLimit, User
from hrdfund.core.extensions import db
from tests.conftest import (
    COOKIE,
    GENERIC,
    PASSWORD,
    csrf_token,
    form_errors,
    login,
    refused_page,
    session_contents,
    set_cookie_header,
    totp_code,
)

HOMES = {
    "applicant": ("/my", "Your applications"),
    "partner": ("/referrals", "Cases you referred"),
    "reviewer": ("/dashboard", "Dashboard"),
    "manager": ("/dashboard", "Dashboard"),
    "finance": ("/dashboard", "Dashboard"),
    "donor": ("/donor", "Your pools"),
    "admin": ("/admin/users", "Accounts of this fund"),
}


def test_the_login_page_is_a_plain_form(client):
    response = client.get("/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<form method="post" action="/login"' in html
    assert 'name="login"' in html and 'type="password"' in html
    assert 'autocomplete="current-password"' in html


@pytest.mark.parametrize("role", list(HOMES))
def test_every_role_signs_in_and_lands_on_its_home(client, make_user, role):
    """Staff, donors and partners (who hold the cases of the defenders they referred) pass
    a second step; a defender is never asked."""
    user = make_user(role)
    response = client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert response.status_code == 302
    if role == "applicant":
        assert response.location == "/"
    else:
        assert response.location == "/login/code"
        assert client.get("/").location == "/login", "no access before the code"
        assert client.get(HOMES[role][0]).location == "/login"
        response = client.post("/login/code", data={"code": totp_code(user)})
        # The first code activates the factor: the recovery codes are shown, once.
        assert "Your recovery codes" in response.get_data(as_text=True)
    page = client.get("/", follow_redirects=True)
    path, heading = HOMES[role]
    assert page.request.path == path
    assert f"<h1>{heading}</h1>" in page.get_data(as_text=True)


def test_unknown_account_and_wrong_password_look_the_same(client, make_user):
    """Nobody learns from the page whether an account exists."""
    user = make_user("applicant")
    wrong = client.post("/login", data={"login": user.login, "password": "x" * 14})
    wrong = refused_page(client, wrong, "/login")
    unknown = client.post("/login", data={"login": "nobody-here", "password": "x" * 14})
    unknown = refused_page(client, unknown, "/login")
    assert form_errors(wrong) == form_errors(unknown) == [GENERIC]
    assert client.get("/my").location == "/login"


def test_empty_fields_are_asked_for_without_touching_accounts(client, make_user):
    user = make_user("applicant")
    page = refused_page(client, client.post("/login", data={"login": user.login, "password": ""}))
    assert "Enter your password." in page.get_data(as_text=True)
    assert f'value="{user.login}"' in page.get_data(as_text=True), "the login name is kept"
    counted = db.session.execute(sa.select(sa.func.count()).select_from(SignInLimit)).scalar()
    assert counted == 0


def test_a_code_works_only_once(client, make_user, app):
    """A TOTP code seen by someone over the shoulder cannot be replayed."""
    user = make_user("manager")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    code = totp_code(user)
    assert client.post("/login/code", data={"code": code}).status_code == 200
    assert client.get("/cases").status_code == 200
    second = app.test_client()
    second.post("/login", data={"login": user.login, "password": PASSWORD})
    replay = refused_page(second, second.post("/login/code", data={"code": code}), "/login/code")
    assert "already used" in replay.get_data(as_text=True)
    assert code not in replay.get_data(as_text=True), "a code never comes back"
    assert second.get("/cases").location == "/login"


ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)


def test_a_code_typed_on_an_arabic_keyboard_is_read_as_its_digits(client, make_user):
    """A phone set to Arabic or Persian types ٤٢٧١٩٠: the code is the same six digits, and
    figures that only look like digits (², ①) are refused in words, never a server error."""
    user = make_user("reviewer")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    for lookalike in ("\u00b2" * 6, "\u2460" * 6):
        page = refused_page(client, client.post("/login/code", data={"code": lookalike}))
        assert page.status_code == 200
        assert client.get("/cases").location == "/login"
    code = totp_code(user).translate(ARABIC_INDIC)
    assert client.post("/login/code", data={"code": code}).status_code == 200
    assert client.get("/cases").status_code == 200


def test_wrong_codes_count_towards_the_lock(client, make_user):
    """Guessing codes after a stolen password locks the account like guessing passwords."""
    user = make_user("finance")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    for _ in range(5):
        client.post("/login/code", data={"code": "000000"})
    page = refused_page(client, client.post("/login/code", data={"code": totp_code(user)}))
    assert "Too many failed attempts" in page.get_data(as_text=True)
    assert client.get("/payments").location == "/login"


def test_five_failures_lock_one_account_only(client, make_user):
    """After five wrong passwords even the right one waits; another account is unaffected."""
    victim, other = make_user("applicant"), make_user("applicant")
    for _ in range(5):
        client.post("/login", data={"login": victim.login, "password": "wrong password!"})
    locked = client.post("/login", data={"login": victim.login, "password": PASSWORD})
    locked = refused_page(client, locked, "/login")
    assert form_errors(locked) == ["Too many failed attempts. Wait 15 minutes, then try again."]
    assert client.get("/my").location == "/login"
    response = client.post("/login", data={"login": other.login, "password": PASSWORD})
    assert response.location == "/"
    assert client.get("/my").status_code == 200


def test_logout_needs_a_post(client, make_user):
    """A link or image pointing at /logout cannot sign anyone out."""
    login(client, make_user("applicant"))
    assert client.get("/logout").status_code == 405
    assert client.get("/my").status_code == 200


def test_a_cookie_copied_before_logout_stops_working(app, client, make_user):
    """Logout ends every session of the user: a stolen or replayed cookie is refused."""
    user = make_user("reviewer")
    login(client, user)
    cookie = client.get_cookie(COOKIE).value
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    assert thief.get("/cases").status_code == 200
    response = client.post("/logout")
    assert response.location == "/login"
    assert client.get("/cases").location == "/login"
    assert thief.get("/cases").location == "/login"
    assert thief.get("/").location == "/login"


def test_signing_in_again_does_not_revive_an_old_cookie(app, client, make_user):
    user = make_user("applicant")
    login(client, user)
    old = client.get_cookie(COOKIE).value
    client.post("/logout")
    login(client, user)
    replay = app.test_client()
    replay.set_cookie(COOKIE, old)
    assert replay.get("/my").location == "/login"
    assert client.get("/my").status_code == 200


def test_session_cookie_holds_ids_and_times_only(app, client, make_user):
    """The cookie names no login nor case, holds no address hash, is HttpOnly and SameSite."""
    user = make_user("applicant", login="canary-login-7731")
    response = client.post("/login", data={"login": user.login, "password": PASSWORD})
    header = set_cookie_header(response)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Expires" not in header, "no cookie outlives the browser"
    client.get("/my")
    contents = session_contents(app, client)
    assert set(contents) <= {"_user_id", "_fresh", "auth_at", "seen_at", "csrf_token"}
    assert contents["_user_id"] == f"{user.id}:{user.session_version}"
    assert "canary-login" not in repr(contents)


def test_the_pending_step_cookie_names_no_one(app, client, make_user):
    user = make_user("admin", login="canary-admin-5530")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    contents = session_contents(app, client)
    assert set(contents) == {"pending", "csrf_token"}  # a random token names no one
    assert "canary-admin" not in repr(contents)


@pytest.mark.parametrize(
    "role, idle_minutes, still_in",
    [
        ("reviewer", 29, True),
        ("reviewer", 31, False),
        ("finance", 31, False),
        ("applicant", 31, True),
        ("applicant", 61, False),
    ],
)
def test_idle_sessions_end(client, make_user, role, idle_minutes, still_in):
    """A staff laptop left open signs itself out after 30 minutes; a defender on a slow
    link gets an hour."""
    user = make_user(role)
    login(client, user)
    with client.session_transaction() as session:
        session["seen_at"] -= idle_minutes * 60
    home = HOMES[role][0]
    response = client.get(home)
    if still_in:
        assert response.status_code == 200
    else:
        assert response.location == "/login"
        page = client.get("/login").get_data(as_text=True)
        assert "Your session ended" in page
        assert client.get(home).location == "/login"


def test_a_session_that_ended_idle_says_so_in_the_accounts_language(client, make_user):
    """A defender reading in Russian whose session ended while idle is sent to a sign-in
    page in Russian that says why, not to an English one."""
    user = make_user("applicant", language="ru")
    login(client, user)
    with client.session_transaction() as session:
        session["seen_at"] -= 61 * 60
    assert client.get("/my").location == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="ru"' in page
    assert "Сеанс завершён. Пожалуйста, войдите снова." in page
    assert "Your session ended" not in page


def test_pages_within_a_minute_send_no_new_session_cookie(client, make_user):
    """Reading page after page on a slow link does not carry a new cookie each time; the
    idle clock still moves once the minute has passed, and the session stays open."""
    login(client, make_user("applicant"))
    client.get("/my")
    assert "Set-Cookie" not in client.get("/my").headers
    with client.session_transaction() as session:
        session["seen_at"] -= 59 * 60
    moved = client.get("/my")
    assert moved.status_code == 200 and set_cookie_header(moved) is not None
    with client.session_transaction() as session:
        session["seen_at"] -= 59 * 60
    assert client.get("/my").status_code == 200


def test_sessions_end_after_their_absolute_lifetime(client, make_user):
    """Even a busy session must sign in again after twelve hours."""
    login(client, make_user("manager"))
    with client.session_transaction() as session:
        session["auth_at"] -= 12 * 3600 + 60
    assert client.get("/cases").location == "/login"


def test_pending_code_step_expires(client, make_user):
    """A password entered and left without a code does not wait forever."""
    user = make_user("finance")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert client.get("/login/code").status_code == 200
    with client.session_transaction() as session:
        session["pending"] = {**session["pending"], "at": session["pending"]["at"] - 301}
    assert client.get("/login/code").location == "/login"
    assert client.post("/login/code", data={"code": totp_code(user)}).location == "/login"
    assert client.get("/payments").location == "/login"


def test_first_code_activates_enrolment(client, make_user):
    """A new staff account sees its key until a valid code enrols it, and never again."""
    user = make_user("admin")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert user.totp_secret in client.get("/login/code").get_data(as_text=True)
    client.post("/login/code", data={"code": totp_code(user)})
    confirmed = db.session.execute(
        sa.select(User.totp_confirmed_at).where(User.id == user.id)
    ).scalar()
    assert confirmed is not None
    client.post("/logout")
    client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert user.totp_secret not in client.get("/login/code").get_data(as_text=True)


class TestWithCsrf:
    """The app as deployed, with CSRF tokens checked."""

    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_sign_in_without_the_form_token_is_refused(self, client, make_user):
        user = make_user("applicant")
        response = client.post("/login", data={"login": user.login, "password": PASSWORD})
        assert response.status_code == 400
        assert "Traceback" not in response.get_data(as_text=True)
        assert client.get("/my").location == "/login"
        token = csrf_token(client, "/login")
        data = {"login": user.login, "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=data).location == "/"

    def test_a_forged_logout_does_not_sign_out(self, client, make_user):
        """A page elsewhere posting to /logout cannot end someone's session."""
        user = make_user("applicant")
        token = csrf_token(client, "/login")
        data = {"login": user.login, "password": PASSWORD, "csrf_token": token}
        client.post("/login", data=data)
        assert client.get("/my").status_code == 200
        assert client.post("/logout").status_code == 400
        assert client.get("/my").status_code == 200
        assert client.post("/logout", data={"csrf_token": csrf_token(client, "/my")}).location == (
            "/login"
        )
        assert client.get("/my").location == "/login"
