"""Promises 6 to 12: passwords, the second factor, one generic failure, the sign-in limits,
sessions that end and time out, and production's refusal of weak secrets.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import base64
import contextlib
import os
import re
import time

import flask_migrate
import pyotp
import pytest
import sqlalchemy as sa

from config import CONFIGS
from hrdfund import SECRET_NAMES, create_app
from hrdfund.auth import services as auth_services
from hrdfund.auth.models import User
from hrdfund.core.extensions import db
from tests.conftest import (
    CLIENT_COOKIE,
    COOKIE,
    GENERIC,
    LOCKED,
    PASSWORD,
    count_rows,
    form_errors,
    input_value,
    login,
    refused_page,
    session_contents,
    set_cookie_header,
    signed_in,
    totp_code,
)

from .common import all_values, relocation_case


def _production(tmp_path):
    """Overrides for a production app with proper secrets on its own SQLite file."""
    return {
        "ENV_NAME": "production",
        "INSTANCE_PATH": str(tmp_path / "production-instance"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        **{name: base64.b64encode(os.urandom(32)).decode() for name in SECRET_NAMES},
    }


def _dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _argon2_parameters(password_hash):
    found = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$.+", password_hash)
    assert found, password_hash
    return tuple(int(n) for n in found.groups())


def test_promise_06_passwords_are_argon2id_12_to_128_and_not_common(
    app, client, monkeypatch, tmp_path
):
    """Sign-up refuses short, overlong and common passwords before any hashing; the
    password kept is an Argon2id hash, with strong settings everywhere but in tests."""

    def no_hashing():
        raise AssertionError("a refused password reached the hasher")

    form = client.get("/register").get_data(as_text=True)
    made = {name: input_value(form, name) for name in ("login", "login_seal")}
    refused = [
        ("short pass!", "at least 12 characters"),
        ("x1" * 64 + "y", "cannot be longer than 128 characters"),
        ("password1234", "too common"),
        (f"my login {made['login']}", "contains the login"),
        # Disguised: as a person reads them, these are the passwords refused above.
        ("password1234 ", "too common"),
        ("pass\u200bword1234", "too common"),
        ("pass\u200cword1234", "too common"),
        ("ｐａｓｓｗｏｒｄ１２３４", "too common"),
        ("abcd" + "\u0301" * 8 + "e", "at least 12 characters"),
        (f"my login {made['login'][:4]}\u200b{made['login'][4:]}", "contains the login"),
    ]
    with monkeypatch.context() as patch:
        patch.setattr(auth_services, "_hasher", no_hashing)
        for password, reason in refused:
            typed = {"password": password, "password_again": password}
            page = client.post("/register", data={**made, **typed})
            page = refused_page(client, page, "/register")
            assert reason in page.get_data(as_text=True), password
        page = client.post("/login", data={"login": made["login"], "password": "x" * 10_000})
        refused_page(client, page, "/login")
    assert auth_services.find_user(made["login"]) is None
    typed = {"password": "twelve chars", "password_again": "twelve chars"}
    accepted = client.post("/register", data={**made, **typed})
    assert accepted.location == "/"
    user = auth_services.find_user(made["login"])
    assert "twelve" not in user.password_hash
    assert _argon2_parameters(user.password_hash) == (8, 1, 1)  # the test config's cheap hash
    for name, config in CONFIGS.items():
        if name != "testing":
            assert config.ARGON2_MEMORY_COST >= 19456 and config.ARGON2_TIME_COST >= 2, name
    production = create_app(_production(tmp_path))
    try:
        with production.app_context():
            memory, passes, _lanes = _argon2_parameters(auth_services.hash_password(PASSWORD))
    finally:
        _dispose(production)
    assert memory >= 19456 and passes >= 2


def test_promise_07_staff_and_donors_need_a_second_factor_used_once(app, client, make_user):
    """The password alone opens nothing for a partner organisation, reviewer, manager,
    finance, donor or admin; the secret is stored encrypted; a wrong code does not enrol; a
    code works once. A defender signs in with the password alone."""
    for role, home in [
        ("partner", "/referrals"),
        ("reviewer", "/cases"),
        ("manager", "/cases"),
        ("finance", "/payments"),
        ("donor", "/donor"),
        ("admin", "/admin/users"),
    ]:
        user = make_user(role)
        visitor = app.test_client()
        step = visitor.post("/login", data={"login": user.login, "password": PASSWORD})
        assert step.location == "/login/code", role
        assert visitor.get(home).location == "/login", role
        assert visitor.get("/").location == "/login", role
        stored = db.session.execute(
            sa.text("SELECT totp_secret FROM users WHERE id = :i"), {"i": user.id}
        ).scalar()
        assert user.totp_secret.encode() not in bytes(stored), role
    user = make_user("applicant")
    direct = app.test_client().post("/login", data={"login": user.login, "password": PASSWORD})
    assert direct.location == "/"
    manager = make_user("manager")
    client.post("/login", data={"login": manager.login, "password": PASSWORD})
    totp = pyotp.TOTP(manager.totp_secret)
    now = time.time()
    valid = {totp.at(now + 30 * k) for k in (-1, 0, 1)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in valid)
    refused = refused_page(client, client.post("/login/code", data={"code": wrong}))
    assert "not right or was already used" in refused.get_data(as_text=True)
    db.session.refresh(manager)
    assert manager.totp_confirmed_at is None
    assert client.get("/login/code/qr.svg").status_code == 200, "still enrolling"
    assert client.get("/cases").location == "/login"
    code = totp_code(manager)
    assert "Your recovery codes" in client.post("/login/code", data={"code": code}).get_data(
        as_text=True
    )
    db.session.refresh(manager)
    assert manager.totp_confirmed_at is not None
    assert client.get("/cases").status_code == 200
    replay = app.test_client()
    replay.post("/login", data={"login": manager.login, "password": PASSWORD})
    again = refused_page(replay, replay.post("/login/code", data={"code": code}))
    assert "already used" in again.get_data(as_text=True)
    assert replay.get("/cases").location == "/login"


#: A CSRF token: the same session's tokens differ in their time stamp from second to second.
CSRF_TOKEN = re.compile(
    r'(name="csrf_token"[^>]*value=")[^"]+"|(value=")[^"]+("[^>]*name="csrf_token")'
)


def _unsigned(page):
    """A page's text with its CSRF tokens blanked: two pages served a second apart carry
    tokens signed at different times, whatever else they say."""
    return CSRF_TOKEN.sub(
        lambda m: f'{m.group(1)}TOKEN"' if m.group(1) else f"{m.group(2)}TOKEN{m.group(3)}",
        page.get_data(as_text=True),
    )


def test_promise_08_one_generic_failure_with_the_same_hashing_work(
    app, client, make_user, monkeypatch
):
    """A wrong password and an unknown account get the same page, each costs one Argon2id
    verification with the same settings and the same database statements, and five of
    either lock that login with the same words; sign-up answers alike whatever login a
    forged form names."""
    user = make_user("applicant")
    verified = []
    real, real_hasher = auth_services._verify, auth_services._hasher
    monkeypatch.setattr(
        auth_services, "_verify", lambda h, p: verified.append(_argon2_parameters(h)) or real(h, p)
    )
    statements = []

    def sent(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(statement)

    def attempt(login, password=None):
        password = password or "not the password"
        statements.clear()
        with _statements_seen(sent):
            page = client.post("/login", data={"login": login, "password": password})
        return refused_page(client, page, "/login"), list(statements)

    wrong, wrote_wrong = attempt(user.login)
    unknown, wrote_unknown = attempt("nobody-here")
    assert form_errors(wrong) == form_errors(unknown) == [GENERIC]
    assert 'value="TOKEN"' in _unsigned(wrong)
    assert _unsigned(wrong).replace(user.login, "LOGIN") == _unsigned(unknown).replace(
        "nobody-here", "LOGIN"
    )
    assert len(verified) == 2 and verified[0] == verified[1]
    assert wrote_wrong == wrote_unknown and any("INSERT" in s for s in wrote_wrong)
    for _ in range(4):
        attempt(user.login)
        attempt("nobody-here")
    locked, _sql = attempt(user.login, PASSWORD)
    locked_unknown, _sql = attempt("nobody-here", PASSWORD)
    assert form_errors(locked) == form_errors(locked_unknown) == [LOCKED]
    assert client.get("/my").location == "/login"
    # Sign-up takes only a login the server made for its form: naming any other, an
    # account's or not, from a browser that never tried either, gets the same refusal,
    # with nothing hashed and no account made.
    hashed = []
    monkeypatch.setattr(auth_services, "_hasher", lambda: hashed.append(1) or real_hasher())
    forged = []
    for name in (user.login, "free-login-08"):
        visitor = app.test_client()
        typed = {"password": PASSWORD, "password_again": PASSWORD}
        answer = visitor.post("/register", data={"login": name, **typed})
        forged.append(form_errors(refused_page(visitor, answer, "/register")))
    assert forged[0] == forged[1] and len(forged[0]) == 1 and forged[0] != [LOCKED]
    assert not hashed and auth_services.find_user("free-login-08") is None


@contextlib.contextmanager
def _statements_seen(listener):
    """Call ``listener`` with every statement sent to the database meanwhile."""
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)


def test_promise_09_failures_lock_a_login_per_browser_never_per_address(app, client, make_user):
    """Five wrong passwords from one browser, each from another address, lock that login for
    that browser: the right password is then refused with a message to wait, and another
    account signs in at once from the very same address. Guesses from ever new browsers
    lock a login for every browser it does not know; the owner's browser, which signed in
    before with both factors, still signs in. No address is stored. Guesses at ever new
    logins meet the server's budget of password checks."""
    victim, other = make_user("applicant"), make_user("applicant")
    for n in range(5):
        client.post(
            "/login",
            data={"login": victim.login, "password": "wrong password!"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},
        )
    locked = client.post(
        "/login",
        data={"login": victim.login, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.99"},
    )
    locked = refused_page(client, locked, "/login")
    assert form_errors(locked) == [LOCKED]
    assert client.get("/my").location == "/login"
    shared_address = {"REMOTE_ADDR": "10.0.0.1"}
    response = client.post(
        "/login",
        data={"login": other.login, "password": PASSWORD},
        environ_base=shared_address,
    )
    assert response.location == "/"
    assert client.get("/my", environ_base=shared_address).status_code == 200

    manager = make_user("manager")
    owner = signed_in(app, manager)
    assert owner.post("/logout").location == "/login"
    for n in range(app.config["LOGIN_MAX_NEW_CLIENT_FAILURES"]):
        app.test_client().post(
            "/login",
            data={"login": manager.login, "password": f"guess number {n}"},
            environ_base={"REMOTE_ADDR": f"10.0.1.{n + 1}"},
        )
    stranger = app.test_client()
    answer = stranger.post("/login", data={"login": manager.login, "password": PASSWORD})
    assert form_errors(refused_page(stranger, answer, "/login")) == [LOCKED]
    login(owner, manager)
    assert owner.get("/cases").status_code == 200
    assert "10.0.0." not in all_values() and "10.0.1." not in all_values()
    # Guessing at ever new logins meets the server's budget of password checks (a minute's
    # worth, a sixth of it at once for new browsers): then a plain 503, nothing hashed.
    app.config["PASSWORD_CHECKS_PER_MINUTE"] = 6
    guesses = [
        app.test_client().post("/login", data={"login": f"anyone-{n}", "password": "a guess"})
        for n in range(3)
    ]
    assert [g.status_code for g in guesses][-1] == 503
    assert "Busy: please try again in a minute" in guesses[-1].get_data(as_text=True)


def test_promise_10_logout_and_end_sessions_stop_every_cookie(app, client, make_user):
    """The session starts afresh at sign-in; after logout a replayed copy of the cookie,
    and the user's other devices, are signed out; an admin's "end sessions" does the
    same to a staff account, and a password change to every other session."""
    applicant = make_user("applicant")
    with client.session_transaction() as session:
        session["planted"] = "set by whoever handed this cookie over"
    before = client.get_cookie(COOKIE).value
    login(client, applicant)
    cookie = client.get_cookie(COOKIE).value
    assert cookie != before and "planted" not in session_contents(app, client)
    fixated = app.test_client()
    fixated.set_cookie(COOKIE, before)
    assert fixated.get("/my").location == "/login"
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    assert thief.get("/my").status_code == 200
    other_device = signed_in(app, applicant)
    assert client.post("/logout").location == "/login"
    for someone in (client, thief, other_device):
        assert someone.get("/my").location == "/login"
    finance = make_user("finance")
    finance_client = signed_in(app, finance)
    copy = app.test_client()
    copy.set_cookie(COOKIE, finance_client.get_cookie(COOKIE).value)
    assert copy.get("/payments").status_code == 200
    admin = signed_in(app, make_user("admin"))
    assert admin.post(f"/admin/users/{finance.uid}/sessions").location == "/admin/users"
    assert finance_client.get("/payments").location == "/login"
    assert copy.get("/payments").location == "/login"
    changer = make_user("applicant")
    mine, other = signed_in(app, changer), signed_in(app, changer)
    kept = app.test_client()
    kept.set_cookie(COOKIE, mine.get_cookie(COOKIE).value)
    changed = mine.post(
        "/account/password",
        data={
            "password-current": PASSWORD,
            "password-new": "lantern orchard pebble ninety",
            "password-again": "lantern orchard pebble ninety",
        },
    )
    assert changed.status_code == 302 and mine.get("/my").status_code == 200
    assert other.get("/my").location == "/login" and kept.get("/my").location == "/login"
    # A reset second factor: whoever has the password alone is shown no new key.
    admin.post(f"/admin/users/{finance.uid}/second-factor")
    thief = app.test_client()
    thief.post("/login", data={"login": finance.login, "password": PASSWORD})
    assert thief.get("/login/code").location == "/login/code/reset"
    assert thief.get("/login/code/qr.svg").status_code == 404
    db.session.refresh(finance)
    assert finance.totp_secret not in thief.get("/login/code/reset").get_data(as_text=True)


def test_promise_11_sessions_time_out_and_cookies_hold_nothing_of_the_case(
    app, client, make_user, fund, tmp_path
):
    """Cookies are HttpOnly, SameSite (Secure in production); the session cookie ends with
    the browser and holds ids and times only. The only other cookie, the client token
    the sign-in limits know a browser by, is random and signs nobody in: there is no
    remember-me cookie. Staff are signed out after 30 idle minutes and everyone after
    the absolute lifetime."""
    applicant = make_user("applicant")
    case = relocation_case(
        fund, applicant, threat="canary-threat-1111", defender_name="canary-name-1111"
    )
    response = client.post("/login", data={"login": applicant.login, "password": PASSWORD})
    header = set_cookie_header(response)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Expires" not in header and "Max-Age" not in header
    token_header = set_cookie_header(response, CLIENT_COOKIE)
    assert "HttpOnly" in token_header and "SameSite=Lax" in token_header
    client.get(f"/applications/{case.uid}")
    assert sorted(cookie.key for cookie in client._cookies.values()) == [CLIENT_COOKIE, COOKIE]
    contents = session_contents(app, client)
    assert set(contents) <= {"_user_id", "_fresh", "auth_at", "seen_at", "csrf_token", "_flashes"}
    token = client.get_cookie(CLIENT_COOKIE).value
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    for secret in (case.uid, "canary", applicant.login):
        assert secret not in repr(contents) and secret not in client.get_cookie(COOKIE).value
    assert token not in all_values(), "only keyed hashes of the token are stored"
    token_only = app.test_client()
    token_only.set_cookie(CLIENT_COOKIE, token)
    assert token_only.get("/my").location == "/login", "the token signs nobody in"
    reviewer = signed_in(app, make_user("reviewer"))
    for minutes, still_in in ((29, True), (31, False)):
        with reviewer.session_transaction() as session:
            session["seen_at"] -= minutes * 60
        answer = reviewer.get("/cases")
        assert (answer.status_code == 200) if still_in else (answer.location == "/login")
    assert "Your session ended" in reviewer.get("/login").get_data(as_text=True)
    manager = signed_in(app, make_user("manager"))
    with manager.session_transaction() as session:
        session["auth_at"] -= 12 * 3600 + 60
    assert manager.get("/cases").location == "/login"
    production = create_app(_production(tmp_path))
    try:
        cookies = production.test_client().get("/login").headers.getlist("Set-Cookie")
    finally:
        _dispose(production)
    assert sorted(c.split("=", 1)[0] for c in cookies) == [CLIENT_COOKIE, COOKIE]
    assert all("Secure" in c and "HttpOnly" in c for c in cookies)


def test_promise_12_production_refuses_weak_secrets_and_has_no_default_account(tmp_path):
    """A production start with a missing, placeholder or weak key stops; a production
    database, migrated as deployed, holds no account, and demo data is refused there."""
    good = _production(tmp_path)
    weak = base64.b64encode(b"\x01" * 32).decode()
    for name in ("SECRET_KEY", "HRDFUND_ENCRYPTION_KEY", "HRDFUND_AUDIT_KEY"):
        for value, reason in (
            (None, "is not set"),
            ("change-me", "not valid base64"),
            (weak, "weak"),
        ):
            with pytest.raises(RuntimeError, match=f"{name} .*{reason}"):
                create_app({**good, name: value})
    app = create_app(good)
    try:
        with app.app_context():
            flask_migrate.upgrade()
            assert count_rows(User) == 0
            result = app.test_cli_runner().invoke(args=["hrdfund", "demo-data"])
            assert result.exit_code != 0 and "never loaded in production" in result.output
            assert count_rows(User) == 0
    finally:
        _dispose(app)
