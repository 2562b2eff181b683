"""The account page: a new password ends every other session of the user (a replayed old
cookie fails) and keeps this one; new recovery codes void the earlier ones. Both ask for
the current password, and a wrong one counts towards the lock."""

import pytest

from hrdfund.auth import attempts, second_factor, services
from hrdfund.auth.models import User
from hrdfund.core.extensions import db
from tests.conftest import COOKIE, LOCKED, PASSWORD, login, refused_page

NEW = "lantern orchard pebble ninety"


def _change(client, current=PASSWORD, new=NEW, again=None):
    return client.post(
        "/account/password",
        data={
            "password-current": current,
            "password-new": new,
            "password-again": again if again is not None else new,
        },
    )


@pytest.mark.parametrize("role", ["applicant", "manager"])
def test_a_new_password_ends_every_other_session(app, client, make_user, role):
    user = make_user(role)
    login(client, user)
    elsewhere = app.test_client()
    login(elsewhere, user)
    copied = client.get_cookie(COOKIE).value
    home = "/my" if role == "applicant" else "/cases"
    assert elsewhere.get(home).status_code == 200

    response = _change(client)
    assert response.status_code == 302
    assert client.get(home).status_code == 200, "this browser stays signed in"
    assert client.get_cookie(COOKIE).value != copied, "with a new session cookie"
    assert elsewhere.get(home).location == "/login", "the other session has ended"
    replay = app.test_client()
    replay.set_cookie(COOKIE, copied)
    assert replay.get(home).location == "/login", "a replayed old cookie fails"

    with pytest.raises(services.AuthError):
        attempts.sign_in(user.login, PASSWORD, None)
    assert attempts.sign_in(user.login, NEW, None).user.id == user.id


def test_wrong_current_password_changes_nothing_and_counts(client, make_user):
    """Wrong current passwords count like failed sign-ins from this browser: after five,
    even the right one waits, and so does signing in again here."""
    user = make_user("applicant")
    login(client, user)
    response = refused_page(
        client, _change(client, current="not my password at all"), "/account#password"
    )
    assert "That is not your current password." in response.get_data(as_text=True)
    for _ in range(4):
        _change(client, current="still not my password")
    locked = refused_page(client, _change(client))  # the right one, too late
    assert LOCKED in locked.get_data(as_text=True)
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert services._verify(user.password_hash, PASSWORD), "the password did not change"
    client.post("/logout")
    again = client.post("/login", data={"login": user.login, "password": PASSWORD})
    assert LOCKED in refused_page(client, again, "/login").get_data(as_text=True)


@pytest.mark.parametrize(
    ("new", "again", "message"),
    [
        ("short one", None, "at least 12 characters"),
        ("password1234", None, "too common"),
        (NEW, "lantern orchard pebble", "The two new passwords differ."),
    ],
)
def test_a_new_password_must_follow_the_rules(client, make_user, new, again, message):
    user = make_user("applicant")
    login(client, user)
    response = refused_page(client, _change(client, new=new, again=again), "/account#password")
    assert message in response.get_data(as_text=True)
    assert client.get("/my").status_code == 200, "still signed in, nothing lost"
    assert attempts.sign_in(user.login, PASSWORD, None).user.id == user.id


def test_a_refused_new_password_says_every_problem_at_once(client, make_user):
    """Too short and typed differently the second time: both are said on the first try,
    and a password holding the login name is refused for it, not only once both match."""
    user = make_user("applicant")
    login(client, user)
    page = refused_page(client, _change(client, new="short one", again="short two"))
    page = page.get_data(as_text=True)
    assert "at least 12 characters" in page and "The two new passwords differ." in page
    named = refused_page(client, _change(client, new=f"{user.login} twelve+", again="other"))
    assert "it contains the login name" in named.get_data(as_text=True)
    assert attempts.sign_in(user.login, PASSWORD, None).user.id == user.id


def test_new_recovery_codes_replace_the_old_ones(client, make_user):
    manager = make_user("manager")
    first = login(client, manager)
    old_codes = _codes(first.get_data(as_text=True))
    assert len(old_codes) == 10
    page = client.get("/account").get_data(as_text=True)
    assert "10 of your recovery codes are left unused." in page

    wrong = client.post("/account/recovery-codes", data={"codes-password": "wrong password"})
    page = refused_page(client, wrong, "/account#codes").get_data(as_text=True)
    assert "That is not your current password." in page and "wrong password" not in page
    response = client.post("/account/recovery-codes", data={"codes-password": PASSWORD})
    assert response.status_code == 200
    new_codes = _codes(response.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    db.session.expire_all()
    manager = db.session.get(User, manager.id)
    assert second_factor.use_recovery_code(manager, old_codes[0]) is None
    assert second_factor.use_recovery_code(manager, new_codes[0]) == 9


def test_accounts_without_a_second_factor_have_no_codes_to_renew(client, make_user):
    login(client, make_user("applicant"))
    assert "Recovery codes" not in client.get("/account").get_data(as_text=True)
    response = client.post("/account/recovery-codes", data={"codes-password": PASSWORD})
    assert response.status_code == 404


def _codes(html):
    import re

    return re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", html)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", "/login", {"login": "a\x00b", "password": PASSWORD}),
        ("get", "/applications/a%00b", None),
        ("get", "/cases?country=K%00", None),
    ],
)
def test_a_nul_character_is_a_bad_request_on_every_database(client, make_user, method, path, data):
    login(client, make_user("manager"))
    response = getattr(client, method)(path, data=data)
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
