"""The limits on guessing at a login: per login and browser, plus a limit for the browsers
a login does not know; failed codes count until a full sign-in; a login without an account
answers like one with an account, at sign-in and at sign-up; and no password is hashed
while a write lock is held."""

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.auth import services
from hrdfund.auth.models import SignInLimit, User
from hrdfund.columns import utcnow
from hrdfund.extensions import db
from tests.conftest import (
    CLIENT_COOKIE,
    GENERIC,
    LOCKED,
    PASSWORD,
    login,
    refused_page,
    set_cookie_header,
    totp_code,
)
from tests.test_models import _another_writer_gets_the_lock

WRONG_CODE = "That code is not right or was already used."
CANNOT = "This login name cannot be used."


def _errors(response):
    """The messages of the page's error summary."""
    html = response.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', html, re.S)
    return re.findall(r"<p>(.*?)</p>", summary.group(1)) if summary else []


def _shown(client, response):
    """What the browser shows: a refused form's page (after its 303 See Other), else the
    answer itself (a redirect onwards)."""
    return refused_page(client, response) if response.status_code == 303 else response


def _password(client, user, password=PASSWORD):
    return _shown(client, client.post("/login", data={"login": user.login, "password": password}))


def _wrong_code(user):
    """A six-digit code that is not valid now nor in the steps beside."""
    totp = pyotp.TOTP(user.totp_secret)
    now = utcnow().timestamp()
    valid = {totp.at(now + 30 * k) for k in (-2, -1, 0, 1, 2)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def _enrolled(app, make_user, role="manager"):
    """A staff account whose second factor is set up, and the browser that did it (known
    to the login from then on), signed out."""
    user = make_user(role)
    browser = app.test_client()
    login(browser, user)
    browser.post("/logout")
    db.session.refresh(user)
    return user, browser


def _count(model):
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


# -- second-factor failures ---------------------------------------------------------------


@pytest.mark.parametrize("step", ["code", "recovery"])
def test_failed_codes_count_until_a_full_sign_in_even_after_the_password_again(
    app, make_user, step
):
    """Someone holding a staff password cannot guess codes without end by entering the
    password again between guesses: five failed codes lock the login for that browser."""
    user, _owner = _enrolled(app, make_user)
    thief = app.test_client()
    wrong = {"code": _wrong_code(user)} if step == "code" else {"code": "abcde-fghjk"}
    for n in range(5):
        assert _password(thief, user).location == "/login/code", n
        page = _shown(thief, thief.post(f"/login/{step}", data=wrong))
        assert "not right or was already used" in page.get_data(as_text=True), n
    again = _password(thief, user)
    assert again.status_code == 200 and _errors(again) == [LOCKED]
    assert thief.get("/cases").location == "/login"


def test_codes_guessed_from_new_browsers_meet_the_limit_on_new_browsers(app, make_user):
    """Throwing the browser away after each wrong code does not help: the failures of every
    browser the login does not know count together, and lock them all; the owner's own
    browser still signs in with both factors."""
    user, owner = _enrolled(app, make_user)
    limit = app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"]
    for n in range(limit):
        thief = app.test_client()
        assert _password(thief, user).location == "/login/code", n
        thief.post("/login/code", data={"code": _wrong_code(user)})
    assert _errors(_password(app.test_client(), user)) == [LOCKED]
    login(owner, user)
    assert owner.get("/cases").status_code == 200


def test_a_full_sign_in_forgets_the_browsers_failed_codes(app, make_user):
    """Four slipped codes and then the right one: the next slips start from nothing."""
    user, owner = _enrolled(app, make_user, "finance")
    for _round in range(2):
        assert _password(owner, user).location == "/login/code"
        for _ in range(4):
            owner.post("/login/code", data={"code": _wrong_code(user)})
        done = owner.post("/login/code", data={"code": totp_code(user)})
        assert done.location == "/", done.get_data(as_text=True)[:300]
        owner.post("/logout")


# -- one answer whether the login exists or not --------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["account", "no-account"])
def test_a_login_locks_and_answers_alike_with_or_without_an_account(client, make_user, exists):
    user = make_user("applicant")
    name = user.login if exists else "nobody-here"

    def attempt(password):
        return _shown(client, client.post("/login", data={"login": name, "password": password}))

    for _ in range(4):
        assert _errors(attempt("wrong password!")) == [GENERIC]
    fifth = attempt("wrong password!")
    assert _errors(fifth) == [GENERIC]
    sixth = attempt(PASSWORD)
    assert _errors(sixth) == [LOCKED]
    assert _count(SignInLimit) == 2  # this browser's counter and the new browsers' one


def test_guessing_at_a_login_does_not_lock_its_owner_out(app, make_user):
    """Strangers' guesses lock a login for their own browsers and, past the limit on new
    browsers, for every browser the login does not know; its owner, in a browser that
    completed a sign-in before, signs in with password and code."""
    user, owner = _enrolled(app, make_user)
    guesser = app.test_client()
    for _ in range(5):
        _password(guesser, user, "a guess at it 1")
    assert _errors(_password(guesser, user)) == [LOCKED]
    for n in range(app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"] - 5):
        _password(app.test_client(), user, f"another guess {n}")
    newcomer = app.test_client()
    assert _errors(_password(newcomer, user)) == [LOCKED]
    login(owner, user)
    assert owner.get("/cases").status_code == 200


def test_a_known_browser_keeps_its_own_limit(app, make_user):
    """Being known spares a browser the limit on new browsers, never its own."""
    user, owner = _enrolled(app, make_user)
    for _ in range(5):
        _password(owner, user, "slipped again 1")
    assert _errors(_password(owner, user)) == [LOCKED]


def test_locks_end_after_their_time(app, make_user):
    user, _owner = _enrolled(app, make_user)
    for n in range(app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"]):
        _password(app.test_client(), user, f"guess {n} of many")
    newcomer = app.test_client()
    assert _errors(_password(newcomer, user)) == [LOCKED]
    past = utcnow() - timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1)
    db.session.execute(sa.update(SignInLimit).values(counting_since=past, locked_until=past))
    db.session.commit()
    assert _password(newcomer, user).location == "/login/code"


def test_the_client_cookie_is_random_kept_after_a_full_sign_in_and_opens_nothing(app, make_user):
    """The sign-in page gives a browser a random token that ends with the browser; only a
    complete sign-in (password and code) keeps it longer; it never signs anyone in."""
    user = make_user("reviewer")
    browser = app.test_client()
    first = set_cookie_header(browser.get("/login"), CLIENT_COOKIE)
    assert "HttpOnly" in first and "SameSite=Lax" in first and "Max-Age" not in first
    token = browser.get_cookie(CLIENT_COOKIE).value
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    step = _password(browser, user)
    assert set_cookie_header(step, CLIENT_COOKIE) is None, "the password alone changes nothing"
    done = browser.post("/login/code", data={"code": totp_code(user)})
    kept = set_cookie_header(done, CLIENT_COOKIE)
    days = app.config["KNOWN_CLIENT_DAYS"]
    assert f"{CLIENT_COOKIE}={token};" in kept and f"Max-Age={days * 86400}" in kept
    stored = " ".join(
        str(v) for row in db.session.execute(sa.select(SignInLimit.__table__)) for v in row
    )
    assert token not in stored and user.login not in stored
    other = app.test_client()
    other.set_cookie(CLIENT_COOKIE, token)
    assert other.get("/cases").location == "/login"
    assert other.get("/login/code").location == "/login"


def test_expired_counters_are_deleted(app, client, make_user):
    """Counters that say nothing any more go as later attempts are made."""
    for n in range(3):
        client.post("/login", data={"login": f"someone-{n}", "password": "wrong password!"})
    assert _count(SignInLimit) == 6  # three logins: this browser's and new browsers' each
    db.session.execute(sa.update(SignInLimit).values(expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    client.post("/login", data={"login": "someone-else", "password": "wrong password!"})
    assert _count(SignInLimit) == 2


def test_the_limit_on_new_browsers_is_not_below_the_limit_per_browser(app_config):
    with pytest.raises(RuntimeError, match="HRDFUND_LOGIN_NEW_CLIENT_FAILURES"):
        create_app({**app_config, "LOGIN_MAX_NEW_CLIENT_FAILURES": 4})


# -- sign-up --------------------------------------------------------------------------------


def _sign_up(client, login_name, password=PASSWORD):
    response = client.post("/register", data={"login": login_name, "password": password})
    return _shown(client, response)


def _page_without_suggestions(response, login_name):
    html = response.get_data(as_text=True).replace(login_name, "LOGIN")
    return re.sub(r'<p class="secret"[^>]*><code>[^<]*</code></p>', "", html)


@pytest.mark.parametrize("role", ["applicant", "manager", "donor"])
def test_sign_up_checks_the_password_before_anything_about_the_login(client, make_user, role):
    """A weak password gets the same page whether the login is taken or free."""
    taken = make_user(role)
    for password in ("short pass!", "password1234"):
        on_taken = _sign_up(client, taken.login, password)
        on_free = _sign_up(client, "free-login-42", password)
        assert CANNOT not in on_taken.get_data(as_text=True)
        assert _page_without_suggestions(on_taken, taken.login) == _page_without_suggestions(
            on_free, "free-login-42"
        )
    assert _count(SignInLimit) == 0, "nothing is counted before the rules pass"


def test_a_taken_login_costs_the_hash_and_gets_the_same_words_whoever_holds_it(
    app, client, make_user, monkeypatch
):
    hashed = []
    real = services.hash_password
    monkeypatch.setattr(services, "hash_password", lambda p: hashed.append(1) or real(p))
    answers = []
    for role in ("applicant", "partner", "reviewer", "donor", "admin"):
        holder = make_user(role)
        before = len(hashed)
        page = _sign_up(app.test_client(), holder.login)
        assert len(hashed) - before == 1, role
        answers.append(page.get_data(as_text=True).replace(holder.login, "LOGIN"))
        assert services.find_user(holder.login).id == holder.id
    errors = {re.search(r'<ul class="errors"[^>]*>(.*?)</ul>', a, re.S).group(1) for a in answers}
    assert len(errors) == 1 and CANNOT in errors.pop()
    for word in ("staff", "donor", "applicant", "reviewer", "admin", "partner", "exists"):
        assert word not in " ".join(_errors_of(a) for a in answers).lower()
    before = len(hashed)
    assert _sign_up(client, "a-new-defender").location == "/"
    assert len(hashed) - before == 1


def _errors_of(html):
    return " ".join(re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', html, re.S))


def test_taken_login_answers_count_like_failed_sign_ins(app, client, make_user):
    """Asking the sign-up page about a login over and over meets the same limit as
    guessing its password; its owner is not held up."""
    holder = make_user("applicant")
    owner = app.test_client()
    login(owner, holder)
    owner.post("/logout")
    for _ in range(5):
        assert CANNOT in _sign_up(client, holder.login).get_data(as_text=True)
    sixth = _sign_up(client, holder.login)
    assert _errors(sixth) == [LOCKED] and CANNOT not in sixth.get_data(as_text=True)
    assert _errors(_password(client, holder)) == [LOCKED]
    assert _password(owner, holder).location == "/"


def _suggested_login(client):
    page = client.get("/register").get_data(as_text=True)
    login_name, _passphrase = re.findall(r'<p class="secret"[^>]*><code>([^<]+)</code></p>', page)
    return login_name


def test_sign_up_offers_a_random_login_that_works(client):
    """Beside the passphrase, a login name made at random: one nobody can guess, so
    nobody can find out that it is taken."""
    offered = _suggested_login(client)
    assert services.LOGIN_PATTERN.match(offered) and len(offered) >= 14
    assert offered != _suggested_login(client)
    assert _sign_up(client, offered).location == "/"
    assert services.find_user(offered) is not None


# -- no hashing under a write lock ----------------------------------------------------------


class _WatchedHasher:
    """Argon2 as configured, noting for each hash or verification whether the database
    was free meanwhile: no transaction of this session open, and on SQLite another
    connection able to take the write lock at once."""

    def __init__(self, real, seen):
        self.real, self.seen = real, seen

    def _note(self):
        free = not db.session().in_transaction()
        if db.engine.dialect.name == "sqlite":
            free = free and _another_writer_gets_the_lock()
        self.seen.append(free)

    def hash(self, password):
        self._note()
        return self.real.hash(password)

    def verify(self, password_hash, password):
        self._note()
        return self.real.verify(password_hash, password)


# Each path makes its accounts first (the factory hashes outside any request), then
# returns what a browser does.


def _sign_in_known(client, make_user):
    user = make_user("applicant")
    return lambda: _password(client, user, "not the password")


def _sign_in_unknown(client, make_user):
    return lambda: client.post(
        "/login", data={"login": "nobody-here", "password": "not the password"}
    )


def _sign_in_right(client, make_user):
    user = make_user("applicant")
    return lambda: _password(client, user)


def _sign_up_free(client, make_user):
    return lambda: _sign_up(client, "a-new-defender")


def _sign_up_taken(client, make_user):
    user = make_user("manager")
    return lambda: _sign_up(client, user.login)


def _change_password(client, make_user):
    user = make_user("applicant")
    new = "lantern orchard pebble ninety"

    def act():
        login(client, user)
        return client.post(
            "/account/password",
            data={"password-current": PASSWORD, "password-new": new, "password-again": new},
        )

    return act


def _renew_codes(client, make_user):
    user = make_user("manager")

    def act():
        login(client, user)
        return client.post("/account/recovery-codes", data={"codes-password": PASSWORD})

    return act


@pytest.mark.parametrize(
    "path",
    [
        _sign_in_known,
        _sign_in_unknown,
        _sign_in_right,
        _sign_up_free,
        _sign_up_taken,
        _change_password,
        _renew_codes,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_no_password_is_hashed_while_a_write_lock_is_held(
    app, client, make_user, monkeypatch, path
):
    """While a visitor's password is hashed, every other request can write: the hash runs
    with no transaction open (on SQLite another connection takes the write lock at once)."""
    act = path(client, make_user)
    seen = []
    real = services._hasher
    with monkeypatch.context() as patch:
        patch.setattr(services, "_hasher", lambda: _WatchedHasher(real(), seen))
        response = act()
    assert response.status_code in (200, 302, 303), response.status_code
    assert seen, "no password was hashed"
    assert all(seen), f"{seen.count(False)} of {len(seen)} hashes ran under a write lock"


def test_a_sign_in_checked_against_a_password_changed_meanwhile_fails(app, make_user, monkeypatch):
    """The password is checked with no lock held; the outcome is settled against the
    account as it is then: a password changed in between does not sign in."""
    user = make_user("applicant")
    real = services.password_matches

    def change_meanwhile(credentials, password):
        matched = real(credentials, password)
        db.session.execute(
            sa.update(User)
            .where(User.id == user.id)
            .values(password_hash=services.hash_password("a brand new passphrase"))
        )
        db.session.commit()
        return matched

    monkeypatch.setattr(services, "password_matches", change_meanwhile)
    client = app.test_client()
    page = _password(client, user)
    assert _errors(page) == [GENERIC]
    assert client.get("/my").location == "/login"
