"""The limits on guessing at a login: per login and browser, plus a limit for the browsers
a login does not know; failed codes count until a full sign-in; a login without an account
answers like one with an account; sign-up takes only a login the server made, so it tells
nothing about any other; no password is hashed while a write lock is held; and the
server's password checks are bounded."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from hrdfund import create_app
from hrdfund.auth import attempts, services, throttle
from hrdfund.auth.models import SignInLimit, User
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from tests.conftest import (
    CLIENT_COOKIE,
    GENERIC,
    LOCKED,
    PASSWORD,
    count_rows,
    form_errors,
    input_value,
    login,
    refused_page,
    set_cookie_header,
    sign_up,
    totp_code,
)
from tests.test_models import _another_writer_gets_the_lock

WRONG_CODE = "That code is not right or was already used."


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
    assert again.status_code == 200 and form_errors(again) == [LOCKED]
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
    assert form_errors(_password(app.test_client(), user)) == [LOCKED]
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
        assert form_errors(attempt("wrong password!")) == [GENERIC]
    fifth = attempt("wrong password!")
    assert form_errors(fifth) == [GENERIC]
    sixth = attempt(PASSWORD)
    assert form_errors(sixth) == [LOCKED]
    assert count_rows(SignInLimit) == 2  # this browser's counter and the new browsers' one


def test_guessing_at_a_login_does_not_lock_its_owner_out(app, make_user):
    """Strangers' guesses lock a login for their own browsers and, past the limit on new
    browsers, for every browser the login does not know; its owner, in a browser that
    completed a sign-in before, signs in with password and code."""
    user, owner = _enrolled(app, make_user)
    guesser = app.test_client()
    for _ in range(5):
        _password(guesser, user, "a guess at it 1")
    assert form_errors(_password(guesser, user)) == [LOCKED]
    for n in range(app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"] - 5):
        _password(app.test_client(), user, f"another guess {n}")
    newcomer = app.test_client()
    assert form_errors(_password(newcomer, user)) == [LOCKED]
    login(owner, user)
    assert owner.get("/cases").status_code == 200


def test_a_known_browser_keeps_its_own_limit(app, make_user):
    """Being known spares a browser the limit on new browsers, never its own."""
    user, owner = _enrolled(app, make_user)
    for _ in range(5):
        _password(owner, user, "slipped again 1")
    assert form_errors(_password(owner, user)) == [LOCKED]


def test_locks_end_after_their_time(app, make_user):
    user, _owner = _enrolled(app, make_user)
    for n in range(app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"]):
        _password(app.test_client(), user, f"guess {n} of many")
    newcomer = app.test_client()
    assert form_errors(_password(newcomer, user)) == [LOCKED]
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
    assert count_rows(SignInLimit) == 6  # three logins: this browser's and new browsers' each
    db.session.execute(sa.update(SignInLimit).values(expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    client.post("/login", data={"login": "someone-else", "password": "wrong password!"})
    assert count_rows(SignInLimit) == 2


def test_a_sign_in_reads_its_counters_once_in_each_transaction(app, make_user):
    """A staff sign-in writes in three short transactions: the password's charge, its
    settling after the hash, and the code's check. Each reads (on PostgreSQL, locks) the
    counters once; refunding and completing in the same transaction work on those rows,
    so the sign-in holds its locks no longer than it must. The counters still end right:
    the browser is known to the login and nothing stays counted."""
    user, browser = _enrolled(app, make_user)
    reads = []

    def note(_conn, _cursor, statement, *_args):
        if statement.lstrip().startswith("SELECT sign_in_limits.id,"):  # the whole rows
            reads.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        login(browser, user)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert browser.get("/account").status_code == 200
    assert len(reads) == 3, reads
    db.session.expire_all()
    assert all(row.failures == 0 for row in db.session.scalars(sa.select(SignInLimit)))
    assert throttle.knows(user.login, browser.get_cookie(CLIENT_COOKIE).value)


def test_an_attempt_cleans_expired_counters_only_once_its_own_are_locked(app, client, make_user):
    """Cleaning (which skips rows others hold) comes after the attempt has taken its own
    counters, so it never waits for another attempt while holding them: two attempts at
    once cannot wait for each other in a circle."""
    user = make_user("manager")
    seen = []

    def note(_conn, _cursor, statement, *_args):
        if "sign_in_limits" in statement:
            seen.append(statement.lstrip().split()[0])

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        _password(client, user, "wrong password!")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert "DELETE" in seen
    assert seen.index("INSERT") < seen.index("SELECT", seen.index("INSERT"))
    assert seen.index("SELECT", seen.index("INSERT")) < seen.index("DELETE")


def test_a_counter_deleted_by_another_attempts_cleaning_is_made_again(
    client, make_user, monkeypatch
):
    """Another attempt's cleaning may delete a counter that had expired between this
    attempt's insert (which found it there) and its lock: it is made again, and the
    attempt is counted rather than failing."""
    user = make_user("manager")
    _password(client, user, "wrong password!")
    real = dict(throttle._CREATE)

    class VanishingOnce(dict):
        """The first insert finds the counters there, then another attempt deletes them."""

        vanished = False

        def __getitem__(self, name):
            if self.vanished:
                return real[name]
            self.vanished = True
            table = SignInLimit.__table__
            return sa.delete(table).where(table.c.key == sa.bindparam("key"))

    monkeypatch.setattr(throttle, "_CREATE", VanishingOnce())
    page = _password(client, user, "wrong password!")
    assert GENERIC in form_errors(page)
    db.session.expire_all()
    counters = db.session.scalars(sa.select(SignInLimit)).all()
    assert len(counters) == 2 and {row.failures for row in counters} == {1}


def test_the_limit_on_new_browsers_is_not_below_the_limit_per_browser(app_config):
    with pytest.raises(RuntimeError, match="HRDFUND_LOGIN_NEW_CLIENT_FAILURES"):
        create_app({**app_config, "LOGIN_MAX_NEW_CLIENT_FAILURES": 4})


# -- sign-up: the login is made by the server ------------------------------------------------


MADE = re.compile(r"[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}")


def _made(page):
    """The login name and the passphrase the sign-up page shows."""
    html = page.get_data(as_text=True)
    login_name = re.search(r'id="login-suggestion"><code>([^<]+)</code>', html).group(1)
    passphrase = re.search(r'id="passphrase-suggestion"><code>([^<]+)</code>', html).group(1)
    return login_name, passphrase


def _without_suggestions(page):
    """The page as the person reads it, leaving out what is new on every page: the login
    and passphrase made for it, the login's seal and the forms' random tokens."""
    html = page.get_data(as_text=True)
    for made in _made(page):
        html = html.replace(made, "MADE")
    html = re.sub(r'(name="csrf_token" value=")[^"]+', r"\1TOKEN", html)
    return re.sub(r'(name="login_seal" type="hidden" value=")[0-9a-f]+', r"\1SEAL", html)


def _forged(client, login_name, seal=None):
    """A sign-up form naming ``login_name``: refused, it comes back on its page."""
    data = {"login": login_name, "password": PASSWORD, "password_again": PASSWORD}
    if seal is not None:
        data["login_seal"] = seal
    return refused_page(client, client.post("/register", data=data), "/register")


def _users():
    return db.session.execute(sa.select(User.login, User.password_hash)).all()


def test_a_forged_sign_up_is_refused_alike_whatever_login_it_names(app, make_user, monkeypatch):
    """A form that names a login the page did not make (a staff, donor, partner or
    applicant login, a free one, one of the made shape, or one made for another page with
    that page's seal) gets one page, word for word, with a new login made for it: no
    account is made or changed, nothing is hashed or counted."""
    holders = [make_user(role) for role in ("applicant", "partner", "manager", "donor", "admin")]
    names = [h.login for h in holders] + ["demo-manager1", "free-login-42", "abcd-efgh-jkmn"]
    seals = [None, "", "0" * 32]
    hashed = []
    real = services._hasher
    monkeypatch.setattr(services, "_hasher", lambda: hashed.append(1) or real())

    def forged_pages(names, seals):
        pages = []
        for name in names:
            for seal in seals:
                page = _forged(app.test_client(), name, seal)
                assert name not in page.get_data(as_text=True), (name, seal)
                pages.append(_without_suggestions(page))
        return pages

    before, counters = _users(), count_rows(SignInLimit)
    pages = forged_pages(names, seals)
    assert not hashed, "a forged sign-up reached the hasher"
    assert len(set(pages)) == 1
    assert _users() == before and count_rows(SignInLimit) == counters
    # A login made for another page, the seal of a third, or an account made at sign-up.
    _done, made = sign_up(app.test_client())
    other, third = (app.test_client().get("/register").get_data(as_text=True) for _ in "ab")
    before, counters, hashed[:] = _users(), count_rows(SignInLimit), []
    pages += forged_pages([made], [*seals, input_value(other, "login_seal")])
    pages += forged_pages([input_value(other, "login")], [input_value(third, "login_seal")])
    assert not hashed and len(set(pages)) == 1
    assert _users() == before and count_rows(SignInLimit) == counters
    assert form_errors(_forged(app.test_client(), made)) == [
        "Your login name is made for you by this page. Note the one shown below, then send"
        " the form again."
    ]


def test_sign_up_makes_the_login_and_signs_in_with_it(app, client):
    """The page shows a login made for the person and a passphrase, each new on every
    page (the link asks for others); the account is made at that login and signed in, and
    signs in again with it."""
    page = client.get("/register")
    login_name, passphrase = _made(page)
    html = page.get_data(as_text=True)
    assert MADE.fullmatch(login_name) and input_value(html, "login") == login_name
    tag = re.search(r'<input[^>]*name="login"[^>]*>', html).group(0)
    assert " hidden " in tag and " readonly " in tag, "shown once, as text; typed over by none"
    assert '<a href="/register">Show another login name and passphrase</a>' in html
    again = _made(client.get("/register"))
    assert again[0] != login_name and again[1] != passphrase
    done = client.post(
        "/register",
        data={
            "login": login_name,
            "login_seal": input_value(html, "login_seal"),
            "password": passphrase,
            "password_again": passphrase,
        },
    )
    assert done.location == "/"
    assert client.get("/my").status_code == 200
    user = services.find_user(login_name)
    assert user.role.value == "applicant"
    client.post("/logout")
    assert client.post("/login", data={"login": login_name, "password": passphrase}).location == "/"


def test_a_refused_password_keeps_the_login_made_and_counts_nothing(client, monkeypatch):
    """A weak password is named as such, before anything is hashed or counted; the page
    shows the same login again, so the one noted down stays right."""
    page = client.get("/register")
    login_name, _passphrase = _made(page)
    seal = input_value(page.get_data(as_text=True), "login_seal")
    monkeypatch.setattr(services, "_hasher", lambda: pytest.fail("a refused password was hashed"))
    for password, why in (
        ("short pass!", "at least 12 characters"),
        ("password1234", "too common"),
    ):
        data = {"login": login_name, "login_seal": seal, "password": password}
        refused = client.post("/register", data=data | {"password_again": password})
        refused = refused_page(client, refused, "/register")
        assert why in refused.get_data(as_text=True)
        assert _made(refused)[0] == login_name
    assert count_rows(SignInLimit) == 0 and services.find_user(login_name) is None


def test_a_login_taken_meanwhile_gets_another_and_the_page_says_so(app, client, make_user):
    """Two random logins alike, or one form sent twice: the account is made at another
    login, shown plainly; the account holding the first is untouched."""
    page = client.get("/register").get_data(as_text=True)
    login_name, seal = input_value(page, "login"), input_value(page, "login_seal")
    holder = make_user("applicant", login=login_name)
    kept_hash = holder.password_hash
    answer = client.post(
        "/register",
        data={
            "login": login_name,
            "login_seal": seal,
            "password": "a new passphrase 9",
            "password_again": "a new passphrase 9",
        },
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "with another login name" in html
    other = re.search(r'id="login-made"><code>([^<]+)</code>', html).group(1)
    assert MADE.fullmatch(other) and other != login_name
    assert client.get("/my").status_code == 200
    db.session.refresh(holder)
    assert holder.password_hash == kept_hash
    client.post("/logout")
    assert _password(client, services.find_user(other), "a new passphrase 9").location == "/"


@pytest.mark.parametrize("role", ["partner", "reviewer", "manager", "finance", "donor", "admin"])
def test_only_applicant_accounts_may_have_a_login_of_the_made_shape(
    app, runner, make_user, make_donor, make_partner_org, fund, role
):
    """Sign-up takes only logins of its shape: no other account may have one, from the
    command line or from any other caller, so sign-up never reaches one."""
    args = ["hrdfund", "create-user", "--role", role, "--login", "abcd-efgh-jkmn"]
    args += ["--password", PASSWORD]
    if role == "donor":
        args += ["--donor", str(make_donor().id)]
    if role == "partner":
        args += ["--organisation", str(make_partner_org().id)]
    result = runner.invoke(args=args)
    assert result.exit_code != 0 and "for applicant accounts only" in result.output
    with pytest.raises(services.LoginPolicyError):
        make_user(role, login="Wxyz-2345-Abcd")
    db.session.rollback()
    assert _users() == []
    assert make_user("applicant", login="wxyz-2345-abcd").login == "wxyz-2345-abcd"
    assert make_user(role, login="abcd-efgh-jkmn-1").role.value == role  # another shape


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
    return lambda: sign_up(client)[0]


def _sign_up_taken_meanwhile(client, make_user):
    page = client.get("/register").get_data(as_text=True)
    data = {"login": input_value(page, "login"), "login_seal": input_value(page, "login_seal")}
    make_user("applicant", login=data["login"])
    data |= {"password": PASSWORD, "password_again": PASSWORD}
    return lambda: client.post("/register", data=data)


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
        _sign_up_taken_meanwhile,
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
    assert form_errors(page) == [GENERIC]
    assert client.get("/my").location == "/login"


# -- the server's password checks are bounded ------------------------------------------------


def test_the_budget_grants_a_burst_then_its_rate_and_serves_known_browsers_first(app):
    """At 60 checks a minute: browsers a login does not know get ten at once, then one a
    second; browsers it knows may draw a minute ahead, and new ones wait while they do. A
    clock set back does not leave the budget spent until it catches up."""
    from hrdfund.auth import budget

    app.config["PASSWORD_CHECKS_PER_MINUTE"] = 60
    start = utcnow()

    def at(seconds):
        return start + timedelta(seconds=seconds)

    assert [budget.take(False, at(0)) for _ in range(12)] == [True] * 10 + [False] * 2
    assert [budget.take(False, at(1)) for _ in range(2)] == [True, False]
    assert sum(budget.take(True, at(1)) for _ in range(70)) == 50
    assert not budget.take(False, at(30)) and not budget.take(True, at(1.5))
    assert budget.take(False, at(52)) and not budget.take(False, at(52))
    # The clock goes back an hour: the budget starts afresh, with its burst.
    assert [budget.take(False, at(-3600)) for _ in range(11)] == [True] * 10 + [False]
    db.session.commit()


class _CountedHasher:
    """Argon2 as configured, counting the hashes and verifications."""

    def __init__(self, real, seen):
        self.real, self.seen = real, seen

    def hash(self, password):
        self.seen.append("hash")
        return self.real.hash(password)

    def verify(self, password_hash, password):
        self.seen.append("verify")
        return self.real.verify(password_hash, password)


def _audit_entries():
    from hrdfund.audit.models import AuditEvent

    return count_rows(AuditEvent)


def test_attempts_past_the_budget_are_answered_busy_with_nothing_hashed_or_counted(
    app, make_user, monkeypatch
):
    """Sign-ins at ever new logins from ever new browsers: past the budget's share for new
    browsers each is answered 503 with a plain page, hashed, counted and written nowhere,
    with no write lock taken; a sign-up likewise makes nothing. The owner of an account, at
    a browser that signed in to it before, is served first, and signed-in pages carry on."""
    holder = make_user("applicant")
    owner = app.test_client()
    login(owner, holder)
    owner.post("/logout")
    # Six a minute: one at once for new browsers, then one every ten seconds.
    app.config["PASSWORD_CHECKS_PER_MINUTE"] = 6
    seen = []
    real = services._hasher
    monkeypatch.setattr(services, "_hasher", lambda: _CountedHasher(real(), seen))

    def guess(n, client=None):
        client = client or app.test_client()
        return client.post("/login", data={"login": f"someone-{n}", "password": "a guess at it"})

    first = app.test_client()
    assert form_errors(_shown(first, guess(0, first))) == [GENERIC]
    hashed, counted, audited = len(seen), count_rows(SignInLimit), _audit_entries()
    statements = []

    def sent(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(statement.split(None, 2)[:2])

    sa.event.listen(db.engine, "before_cursor_execute", sent)
    try:
        busy_pages = [guess(1), guess(2)]
        assert [page.status_code for page in busy_pages] == [503, 503]
        busy_pages.append(sign_up(app.test_client())[0])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", sent)
    for busy in busy_pages:
        html = busy.get_data(as_text=True)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "60"
        assert "Busy: please try again in a minute" in html and "Nothing you sent was kept" in html
        assert "<script" not in html
    assert (len(seen), count_rows(SignInLimit), _audit_entries()) == (hashed, counted, audited)
    writes = [s for s in statements if s[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    locks = [s for s in statements if [w.upper() for w in s] == ["BEGIN", "IMMEDIATE"]]
    assert statements and not writes and not locks, "a busy answer wrote or took the lock"
    assert db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar() == 1
    assert _password(owner, holder).location == "/"
    assert owner.get("/my").status_code == 200


class _SlowHasher(_CountedHasher):
    """Argon2 as configured, a tenth of a second slower, noting how many run at once."""

    lock = threading.Lock()

    def __init__(self, real, running):
        super().__init__(real, [])
        self.running = running

    def verify(self, password_hash, password):
        with self.lock:
            self.running["now"] += 1
            self.running["most"] = max(self.running["most"], self.running["now"])
        time.sleep(0.1)
        try:
            return super().verify(password_hash, password)
        finally:
            with self.lock:
                self.running["now"] -= 1


def test_each_process_hashes_one_password_at_a_time(app, monkeypatch):
    """Attempts sent at once to one process take turns at the hash (64 MiB each), each
    answered as it would be alone."""
    running = {"now": 0, "most": 0}
    real = services._hasher
    monkeypatch.setattr(services, "_hasher", lambda: _SlowHasher(real(), running))

    def guess(n):
        # A plain test client: each request in its thread has its own contexts.
        client = FlaskClient(app)
        answer = client.post("/login", data={"login": f"someone-{n}", "password": "a guess at it"})
        return answer.status_code, form_errors(_shown(client, answer))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(guess, range(4)))
    assert answers == [(303, [GENERIC])] * 4
    assert running["most"] == 1, f"{running['most']} passwords were hashed at once"


def test_an_attempt_whose_turn_does_not_come_is_answered_busy(app):
    """An attempt that waits longer than ``PASSWORD_CHECK_WAIT_SECONDS`` for its process's
    turn to hash is answered busy, counted nowhere; the next one is checked as usual."""
    app.config["PASSWORD_CHECK_WAIT_SECONDS"] = 0.2
    counted = count_rows(SignInLimit)
    assert attempts._HASHING.acquire(timeout=5)
    try:
        started = time.monotonic()
        busy = app.test_client().post("/login", data={"login": "someone", "password": "a guess"})
        assert busy.status_code == 503 and time.monotonic() - started >= 0.2
    finally:
        attempts._HASHING.release()
    assert count_rows(SignInLimit) == counted
    client = app.test_client()
    answer = client.post("/login", data={"login": "x1", "password": "a guess"})
    assert form_errors(_shown(client, answer)) == [GENERIC]


def test_the_budget_is_at_least_one_check_a_minute(app_config):
    with pytest.raises(RuntimeError, match="HRDFUND_PASSWORD_CHECKS_PER_MINUTE"):
        create_app({**app_config, "PASSWORD_CHECKS_PER_MINUTE": 0})
