"""One test per promise of SECURITY.md, named after its number.

Each test shows its promise as a user or an attacker would notice it broken, on one or a
few representative cases; docs/security.md maps every promise to its test here and to the
thorough tests (sweeps over every route, field and output) elsewhere in the suite.
The tests of promises 21 (key rotation) and 25 (retention) come with their commands.
"""

import base64
import contextlib
import importlib
import io
import logging
import os
import pkgutil
import re
import stat
import subprocess
import sys
import time
import tomllib
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import flask_migrate
import pyotp
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import render_template_string, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from pypdf import PdfReader
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart
from wtforms.validators import Length, Regexp

import hrdfund
from config import CONFIGS
from hrdfund import SECRET_NAMES, create_app
from hrdfund.applications.forms import application_form_class
from hrdfund.applications.models import (
    Application,
    ApplicationStatus,
    Category,
    Consent,
    ConsentKind,
    Dependant,
    Document,
    Message,
    Reference,
    Story,
    UseOfFundsReport,
)
from hrdfund.applications.review_models import (
    ConflictDeclaration,
)
from hrdfund.audit.models import AuditEvent
from hrdfund.auth import services as auth_services
from hrdfund.auth.guard import PUBLIC_ENDPOINTS
from hrdfund.auth.models import User
from hrdfund.core.columns import PERSONAL, Encrypted, utcnow
from hrdfund.core.crypto import DecryptionError, key_id
from hrdfund.core.extensions import db
from hrdfund.disbursements.holds import confirm_held_payment
from hrdfund.disbursements.models import FINAL_TABLES, Disbursement, HeldPayment, HoldReason
from hrdfund.disbursements.services import PaymentError, reverse_disbursement
from hrdfund.grants.models import Grant
from hrdfund.grants.services import (
    SecondApproverError,
    SelfApprovalError,
    approve_with_recorded_rates,
    pool_available,
)
from hrdfund.pools import services as pools
from hrdfund.reports import anonymise
from hrdfund.reports.data import build_report
from hrdfund.reports.periods import parse_period
from tests.conftest import (
    CLIENT_COOKIE,
    COOKIE,
    CSP_PARTS,
    EUR_USD,
    GENERIC,
    LOCKED,
    PASSWORD,
    MoneyWorld,
    audit_actions,
    count_rows,
    csrf_token,
    form_errors,
    input_value,
    jpeg_with_gps,
    login,
    pay,
    refused_page,
    session_contents,
    set_cookie_header,
    sign_up,
    signed_in,
    start_application,
    totp_code,
)
from tests.pdfs import make_pdf, xmp_packet

from .clock import Clock
from .test_models import inventory_gaps

ROOT = Path(__file__).resolve().parent.parent
PDF = make_pdf("canary-pdf-text-4417")
#: What a framework's debug page or banner would show.
LEAKS = ("Traceback", 'File "', "Werkzeug", "werkzeug", "Python", "Flask", "Jinja", "SQL")
#: A complete relocation application, as a defender types it.
RELOCATION = {
    "country": "KE",
    "gender": "woman",
    "urgency": "normal",
    "defender_work": "Documents evictions for land defenders",
    "threat": "Death threats after a radio interview",
    "details-scope": "region",
    "details-destination_country": "UG",
    "details-people": "2",
    "details-months": "6",
    "details-stay_plan": "Visa on arrival, then a permit",
    "details-security_plan": "Travel with a partner escort",
    "details-exit_plan": "Return when the trial ends",
    "currency": "KES",
    "budget-0-description": "Rent for six months",
    "budget-0-amount": "120000",
    "dependants-0-relation": "daughter",
    "dependants-0-age": "7",
    "references-0-name": "Reference One",
    "references-0-contact": "via the network",
    "references-1-name": "Reference Two",
    "references-1-contact": "Signal",
}


# -- helpers ------------------------------------------------------------------------------


def _get(client, path, **kwargs):
    """GET ``path`` and close the response (static files hold a file open)."""
    with client.get(path, **kwargs) as response:
        response.get_data()
    return response


def _case(fund, applicant=None, status=ApplicationStatus.SUBMITTED, **fields):
    """A relocation case of ``applicant`` in ``fund``, written straight to the database."""
    case = Application(
        fund_id=fund.id,
        applicant_id=applicant.id if applicant else None,
        category=Category.RELOCATION,
        status=status,
        currency="EUR",
        country="KE",
        region="East Africa",
        submitted_at=None if status == ApplicationStatus.DRAFT else datetime(2026, 3, 1),
    )
    for name, value in fields.items():
        setattr(case, name, value)
    db.session.add(case)
    db.session.commit()
    return case


def _upload(client, uid, data, name="quote.pdf", kind="quote"):
    return client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
    )


def _all_values():
    """Every value of every table as text, binary values byte for byte."""
    db.session.expire_all()
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    parts.append(bytes(value).decode("latin-1"))
                else:
                    parts.append(str(value))
    return "\n".join(parts)


def _snapshot(skip=("audit_events",)):
    """Every row of every table but ``skip``, to compare before and after requests."""
    db.session.expire_all()
    return {
        table.name: sorted(repr(tuple(row)) for row in db.session.execute(sa.select(table)))
        for table in db.metadata.sorted_tables
        if table.name not in skip
    }


def _fill(rule, values, default="dummy"):
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m[1], default), rule.rule)


def _crash_route(app):
    """A view that fails with what was typed in its message, as a bug would."""

    @app.post("/promise-crash")
    def promise_crash():
        raise RuntimeError("failed on " + request.form.get("note", ""))


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


def _pdf(body):
    reader = PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text, reader.metadata


# -- Pages ----------------------------------------------------------------------------------


def test_promise_01_applicant_and_partner_flows_work_without_script(app, client, make_user, fund):
    """A defender signs up, applies, sends, writes, uploads and withdraws a consent, and a
    partner refers a case, with plain forms only (the test client runs no script); no
    page on the way carries a script, an inline handler or a javascript: link."""
    pages = []

    def seen(response):
        if response.mimetype == "text/html":
            pages.append((response.request.path, response.get_data(as_text=True)))
        return response

    seen(client.get("/register"))
    assert seen(sign_up(client)[0]).location
    uid = start_application(client)
    seen(client.get(f"/applications/{uid}/edit"))
    data = {**RELOCATION, "consent_story": "y", "submit": "1"}
    sent = seen(client.post(f"/applications/{uid}/edit", data=data))
    assert sent.location == f"/applications/{uid}", sent.get_data(as_text=True)[-600:]
    assert seen(client.post(f"/applications/{uid}", data={"body": "Any news?"})).status_code == 302
    assert seen(_upload(client, uid, PDF)).status_code == 302
    assert seen(client.post(f"/applications/{uid}/consents/story/withdraw")).status_code == 302
    case_page = seen(client.get(f"/applications/{uid}")).get_data(as_text=True)
    assert "Any news?" in case_page and "quote.pdf" in case_page
    assert "Your consent is withdrawn" in case_page
    seen(client.get("/my"))
    partner = signed_in(app, make_user("partner"))
    seen(partner.get("/apply"))
    referral = {"category": "medical", "consent": "y", "consent_method": "in_person"}
    referred = seen(partner.post("/apply", data=referral)).location.split("/")[2]
    seen(partner.get(f"/applications/{referred}/edit"))
    assert referred in seen(partner.get("/referrals")).get_data(as_text=True)
    assert len(pages) >= 12
    for path, html in pages:
        lowered = html.lower()
        assert "<script" not in lowered, path
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", lowered), path
        assert "javascript:" not in lowered, path


def test_promise_02_every_response_carries_the_security_headers(app, client, make_user):
    """A page, a redirect, a 404, a 405, a crash and static files: each has the CSP, nosniff
    and the referrer policy; only static files may be cached."""
    _crash_route(app)
    login(client, make_user("applicant"))
    responses = {
        "page": _get(client, "/my"),
        "redirect": _get(client, "/"),
        "not found": _get(client, "/no/such/page"),
        "not allowed": _get(client, "/logout"),
        "crash": client.post("/promise-crash"),
        "static": _get(client, "/static/style.css"),
        "missing static": _get(client, "/static/no-such.css"),
    }
    assert [r.status_code for r in responses.values()] == [200, 302, 404, 405, 500, 200, 404]
    for name, response in responses.items():
        csp = response.headers.get("Content-Security-Policy", "")
        assert [part for part in CSP_PARTS if part not in csp] == [], (name, csp)
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "same-origin", name
        if name == "static":
            assert response.headers.get("Cache-Control") != "no-store"
        else:
            assert response.headers["Cache-Control"] == "no-store", name


#: Something a browser would fetch from another host.
LOADS_ELSEWHERE = re.compile(
    r"""\b(?:src|srcset|poster|data|action|formaction)\s*=\s*["']?\s*(?:https?:|//)
    |<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:|//)
    |(?:url\(\s*["']?|@import\s+["']?)\s*(?:https?:|//)""",
    re.I | re.X,
)
THIRD_PARTIES = (
    "googleapis",
    "gstatic",
    "jsdelivr",
    "unpkg",
    "cdnjs",
    "cloudflare",
    "recaptcha",
    "hcaptcha",
    "google-analytics",
    "googletagmanager",
    "plausible",
    "matomo",
)


def test_promise_03_nothing_loads_from_another_host(app, client, make_user):
    """No template or stylesheet, and no page as rendered, fetches from a CDN, a font
    service, an analytics or captcha provider, or any other host."""
    files = [*Path(ROOT, "templates").rglob("*.html"), *Path(ROOT, "hrdfund/static").rglob("*")]
    assert len(files) >= 20
    for path in files:
        if path.is_dir():
            continue
        text = path.read_text(errors="replace")
        assert not LOADS_ELSEWHERE.search(text), (path, LOADS_ELSEWHERE.search(text))
        assert [name for name in THIRD_PARTIES if name in text.lower()] == [], path
    pages = [_get(client, "/login"), _get(client, "/register")]
    login(client, make_user("manager"))
    pages += [_get(client, "/cases"), _get(client, "/pools")]
    for response in pages:
        assert response.status_code == 200
        assert not LOADS_ELSEWHERE.search(response.get_data(as_text=True)), response.request.path


def test_promise_04_applicant_pages_stay_under_100_kb_with_their_assets(client, make_user, fund):
    """Over a slow link every applicant page, with the stylesheet and anything else it
    loads, stays under 100 KB."""
    paths = ["/login", "/register"]
    sizes = {}

    def weigh(path):
        response = _get(client, path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assets = set(re.findall(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)["']""", html))
        assert assets, path
        sizes[path] = len(response.get_data()) + sum(
            len(_get(client, a).get_data()) for a in assets
        )

    for path in paths:
        weigh(path)
    login(client, make_user("applicant"))
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "save": "1"})
    for path in ("/my", "/apply", f"/applications/{uid}/edit"):
        weigh(path)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    client.post(f"/applications/{uid}", data={"body": "A message " * 200})
    weigh(f"/applications/{uid}")
    assert len(sizes) == 6
    assert {path: size for path, size in sizes.items() if size >= 100_000} == {}


def test_promise_05_right_to_left_languages_set_lang_and_dir(client, make_user):
    """An Arabic-speaking visitor, or a user who chose Arabic, gets a right-to-left page."""
    for path in ("/login", "/register", "/no/such/page"):
        arabic = client.get(path, headers={"Accept-Language": "ar-EG,ar;q=0.9"})
        assert '<html lang="ar" dir="rtl">' in arabic.get_data(as_text=True), path
        french = client.get(path, headers={"Accept-Language": "fr"})
        assert '<html lang="fr" dir="ltr">' in french.get_data(as_text=True), path
    login(client, make_user("applicant", language="ar"))
    page = client.get("/my", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page


# -- Accounts and sessions ------------------------------------------------------------------


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
    ]
    with monkeypatch.context() as patch:
        patch.setattr(auth_services, "_hasher", no_hashing)
        for password, reason in refused:
            page = client.post("/register", data={**made, "password": password})
            page = refused_page(client, page, "/register")
            assert reason in page.get_data(as_text=True), password
        page = client.post("/login", data={"login": made["login"], "password": "x" * 10_000})
        refused_page(client, page, "/login")
    assert auth_services.find_user(made["login"]) is None
    accepted = client.post("/register", data={**made, "password": "twelve chars"})
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
    """The password alone opens nothing for reviewer, manager, finance, donor or admin;
    the secret is stored encrypted; a wrong code does not enrol; a code works once."""
    for role, home in [
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
    for role in ("applicant", "partner"):
        user = make_user(role)
        direct = app.test_client().post("/login", data={"login": user.login, "password": PASSWORD})
        assert direct.location == "/", role
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
    assert wrong.get_data(as_text=True).replace(user.login, "LOGIN") == unknown.get_data(
        as_text=True
    ).replace("nobody-here", "LOGIN")
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
        answer = visitor.post("/register", data={"login": name, "password": PASSWORD})
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
    assert "10.0.0." not in _all_values() and "10.0.1." not in _all_values()
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


def test_promise_11_sessions_time_out_and_cookies_hold_nothing_of_the_case(
    app, client, make_user, fund, tmp_path
):
    """Cookies are HttpOnly, SameSite (Secure in production); the session cookie ends with
    the browser and holds ids and times only. The only other cookie, the client token
    the sign-in limits know a browser by, is random and signs nobody in: there is no
    remember-me cookie. Staff are signed out after 30 idle minutes and everyone after
    the absolute lifetime."""
    applicant = make_user("applicant")
    case = _case(fund, applicant, threat="canary-threat-1111", defender_name="canary-name-1111")
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
    assert token not in _all_values(), "only keyed hashes of the token are stored"
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


# -- Requests -------------------------------------------------------------------------------


def _sign_in_with_tokens(client, user):
    """Sign in through the forms as deployed, CSRF tokens included."""
    data = {"login": user.login, "password": PASSWORD, "csrf_token": csrf_token(client, "/login")}
    response = client.post("/login", data=data)
    if user.needs_totp:
        token = csrf_token(client, "/login/code")
        response = client.post("/login/code", data={"code": totp_code(user), "csrf_token": token})
    return response


def test_promise_13_state_changes_need_a_post_with_its_token(
    app, client, fund, make_user, monkeypatch
):
    """With CSRF on, as deployed: a cross-site POST without the token is refused and changes
    nothing; a token hours old (a slow upload) still works; nothing takes PUT, PATCH or
    DELETE, and GET on every route leaves every table as it was."""
    app.config["WTF_CSRF_ENABLED"] = True
    applicant = make_user("applicant")
    case = _case(fund, applicant)
    db.session.add(
        Consent(application_id=case.id, kind=ConsentKind.STORY, method="form", given_at=utcnow())
    )
    db.session.commit()
    tokenless = client.post("/login", data={"login": applicant.login, "password": PASSWORD})
    assert tokenless.status_code == 400
    assert _sign_in_with_tokens(client, applicant).location == "/"
    page = f"/applications/{case.uid}"
    elsewhere = {"Origin": "https://attacker.example", "Referer": "https://attacker.example/x"}
    assert client.post(page, data={"body": "forged"}, headers=elsewhere).status_code == 400
    withdraw = f"{page}/consents/story/withdraw"
    assert client.post(withdraw, headers=elsewhere).status_code == 400
    assert client.post("/logout", headers=elsewhere).status_code == 400
    assert count_rows(Message) == 0
    consent = db.session.execute(sa.select(Consent)).scalar_one()
    assert consent.withdrawn_at is None
    assert client.get("/my").status_code == 200, "still signed in"

    csrf_token(client, page)
    with client.session_transaction() as session:
        raw = session["csrf_token"]

    def token_from(seconds_ago):
        with monkeypatch.context() as patch:
            patch.setattr(
                TimestampSigner, "get_timestamp", lambda self: int(time.time()) - seconds_ago
            )
            return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)

    slow = client.post(page, data={"body": "after a slow upload", "csrf_token": token_from(13800)})
    assert slow.status_code == 302
    stale = client.post(page, data={"body": "a day later", "csrf_token": token_from(86400)})
    assert stale.status_code == 400
    db.session.expire_all()
    assert [m.body for m in db.session.execute(sa.select(Message)).scalars()] == [
        "after a slow upload"
    ]

    for rule in app.url_map.iter_rules():
        assert rule.methods <= {"GET", "HEAD", "OPTIONS", "POST"}, rule.rule
    manager = app.test_client()
    _sign_in_with_tokens(manager, make_user("manager"))
    before = _snapshot()
    for someone in (client, manager):
        for rule in app.url_map.iter_rules():
            if "GET" in rule.methods and rule.endpoint != "static":
                assert _get(someone, _fill(rule, {"uid": case.uid})).status_code < 500, rule.rule
    assert _snapshot() == before


def _limits(validator):
    """Whether a validator bounds what a field takes: a maximum length, or a pattern
    anchored at both ends that allows no run of any character."""
    if isinstance(validator, Length):
        return validator.max > 0
    if isinstance(validator, Regexp):
        pattern = validator.regex.pattern
        return (
            pattern.startswith("^") and pattern.endswith("$") and not re.search(r"\.[*+]", pattern)
        )
    return False


TEXT_FIELDS = ("StringField", "TextAreaField", "PasswordField", "EmailField", "SearchField")


def _text_fields(form):
    """The text inputs of ``form``, those of its subforms and lists included."""
    for field in form:
        if field.type == "FormField":
            yield from _text_fields(field.form)
        elif field.type == "FieldList":
            for entry in field.entries:
                if entry.type == "FormField":
                    yield from _text_fields(entry.form)
                elif entry.type in TEXT_FIELDS:
                    yield entry
        elif field.type in TEXT_FIELDS:
            yield field


def test_promise_14_every_field_is_limited_and_bad_input_is_a_form_error(
    app, client, make_user, fund
):
    """Every text input of every form has a server-side maximum length (hidden fields are
    not inputs people type in); hostile values in the application form and at sign-in come
    back as form errors, never as a crash."""
    for info in pkgutil.walk_packages(hrdfund.__path__, "hrdfund."):
        importlib.import_module(info.name)
    form_classes = {
        cls
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("hrdfund.")
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, FlaskForm)
        and cls.__module__.startswith("hrdfund")
    } | {application_form_class(category) for category in Category}
    assert len(form_classes) >= 20
    unlimited = []
    with app.test_request_context():
        for cls in form_classes:
            for field in _text_fields(cls(meta={"csrf": False})):
                if not any(_limits(v) for v in field.validators):
                    unlimited.append(f"{cls.__module__}.{cls.__name__}.{field.name}")
    assert sorted(unlimited) == []
    login(client, make_user("applicant"))
    uid = start_application(client)
    for field, value in {
        "threat": "x" * 4001,
        "budget-0-amount": "1e9999",
        "budget-1-amount": "sNaN",
        "dependants-0-age": "-1",
        "country": "XX",
        "details-months": "NaN",
        "urgency": "sometimes",
        "gender": "<script>",
    }.items():
        response = client.post(f"/applications/{uid}/edit", data={**RELOCATION, field: value})
        response = refused_page(client, response, f"/applications/{uid}/edit")
        assert "error-summary" in response.get_data(as_text=True), field
    for login_name, password in (("x" * 10_000, PASSWORD), ("a b", "x" * 129), ("", "")):
        visitor = app.test_client()
        response = visitor.post("/login", data={"login": login_name, "password": password})
        html = refused_page(visitor, response, "/login").get_data(as_text=True)
        assert "error-summary" in html or 'class="errors"' in html, login_name[:10]
    # A NUL character, which no page takes and PostgreSQL text cannot hold, is a bad
    # request wherever it comes: a form field, a login name, an id in the address.
    nul = app.test_client()
    for method, path, data in (
        ("post", f"/applications/{uid}/edit", {**RELOCATION, "urgency": "\x00"}),
        ("post", "/login", {"login": "a\x00b", "password": PASSWORD}),
        ("get", "/applications/a%00b", None),
    ):
        response = getattr(client if "edit" in path else nul, method)(path, data=data)
        assert response.status_code == 400, path
        assert "Traceback" not in response.get_data(as_text=True)


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_promise_15_what_people_type_is_escaped(app, client, make_user, fund):
    """Autoescape is on for every template and nothing is marked safe: markup a defender
    types shows as text to staff and to the defender."""
    assert app.select_jinja_autoescape("applications/case.html")
    for path in Path(ROOT, "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup\(", text), path
    for path in Path(ROOT, "hrdfund").rglob("*.py"):
        assert "Markup(" not in path.read_text(), path
    applicant = make_user("applicant")
    case = _case(fund, applicant, threat=HOSTILE, defender_name=HOSTILE)
    login(client, applicant)
    assert client.post(f"/applications/{case.uid}", data={"body": HOSTILE}).status_code == 302
    staff = signed_in(app, make_user("reviewer"))
    for page in (
        staff.get(f"/applications/{case.uid}").get_data(as_text=True),
        client.get(f"/applications/{case.uid}").get_data(as_text=True),
    ):
        assert "&lt;script&gt;alert(" in page
        assert "<script" not in page and "<img src=x" not in page
    # A translated message carrying what someone typed (a refusal naming a payment's
    # reference, a pool's name) is text too, not markup.
    message = _l("The payment %(ref)s was already recorded.", ref=HOSTILE)
    with app.test_request_context():
        shown = render_template_string("<p>{{ message }}</p>", message=message)
    assert "&lt;script&gt;" in shown and "<script" not in shown


# -- Who sees what --------------------------------------------------------------------------


def test_promise_16_every_route_is_closed_unless_listed_public(app, client):
    """Every route, and one added without any protection, sends a visitor to sign in;
    the only exceptions are the six public endpoints."""
    app.add_url_rule("/promise-unguarded", "promise_unguarded", lambda: "nobody protected this")
    assert set(PUBLIC_ENDPOINTS) == {
        "static",
        "auth.login",
        "auth.code",
        "auth.qr",
        "auth.recovery",
        "auth.register",
    }
    swept = 0
    for rule in app.url_map.iter_rules():
        path = _fill(rule, {"filename": "style.css"})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            with client.open(path, method=method) as response:
                assert response.status_code < 500, (method, path)
                if rule.endpoint not in PUBLIC_ENDPOINTS:
                    assert response.status_code == 302 and response.location == "/login", (
                        method,
                        path,
                    )
                    swept += 1
    assert swept >= 40


def _without_token(response):
    return re.sub(rb'name="csrf_token" value="[^"]*"', b"", response.get_data())


def test_promise_17_what_is_out_of_scope_is_a_404_downloads_included(
    app, make_user, make_fund, make_partner_org, make_donor, fund
):
    """Another applicant, another organisation's partner and another fund's staff get the
    very page an unknown id gets, for the case and its document; a donor gets a 404 for
    another donor's pool report."""
    owner = signed_in(app, make_user("applicant"))
    uid = start_application(owner)
    assert _upload(owner, uid, PDF).status_code == 302
    doc = db.session.execute(sa.select(Document.uid)).scalar_one()
    paths = [f"/applications/{uid}", f"/applications/{uid}/documents/{doc}"]
    assert [_get(owner, p).status_code for p in paths] == [200, 200]
    ours, theirs = make_partner_org("Ours"), make_partner_org("Theirs")
    partner = signed_in(app, make_user("partner", partner_organisation_id=ours.id))
    referred = start_application(partner, "medical", consent="y", consent_method="phone")
    assert partner.get(f"/applications/{referred}").status_code == 200
    intruders = [
        make_user("applicant"),
        make_user("partner", partner_organisation_id=theirs.id),
        make_user("reviewer", fund_id=make_fund("Other Fund").id),
    ]
    for intruder in intruders:
        stranger = signed_in(app, intruder)
        for path in [*paths, f"/applications/{referred}"]:
            unknown = path.replace(uid, "0" * 20).replace(referred, "0" * 20)
            unknown = unknown.replace(doc, "1" * 20)
            seen, fake = _get(stranger, path), _get(stranger, unknown)
            assert seen.status_code == fake.status_code == 404, (intruder.role, path)
            # The sign-out form's token is signed with the second it was made in.
            assert _without_token(seen) == _without_token(fake), (intruder.role, path)
    world = MoneyWorld(fund, make_user, make_donor)
    report = f"/donor/pools/{world.eur.uid}/report?period=2026&format=csv"
    assert (
        _get(signed_in(app, make_user("donor", donor_id=world.donor.id)), report).status_code == 200
    )
    other_donor = signed_in(app, make_user("donor", donor_id=make_donor("Someone Else").id))
    assert _get(other_donor, report).status_code == 404


def test_promise_18_payees_for_finance_case_details_for_staff_on_the_case(
    app, fund, make_user, make_donor, make_fund
):
    """Finance alone sees who was paid; relocation and family details show to the fund's
    reviewers and managers on the case and to no one else (finance sees an approved case's
    money, not its story); a donor never sees a case."""
    payee, details, family = "CANARY-PAYEE-1818", "canary-stay-plan-1818", "canary-family-1818"
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    case = grant.application
    case.details = {"stay_plan": details}
    case.dependants = [Dependant(relation=family, age=9)]
    db.session.commit()
    pay(world, grant, "400", instalment=None, payee_details=payee)
    conflicted = make_user("reviewer")
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=conflicted.id))
    db.session.commit()
    viewers = {
        "finance": world.finance,
        "manager": world.m1,
        "reviewer": world.reviewer,
        "admin": world.admin,
        "donor": make_user("donor", donor_id=world.donor.id),
        "conflicted reviewer": conflicted,
        "other fund's manager": make_user("manager", fund_id=make_fund("Other Fund").id),
    }
    pages = [
        f"/applications/{case.uid}",
        "/",
        "/payments",
        "/follow-up",
        "/cases",
        "/donor",
        f"/pools/{world.eur.uid}",
        "/reports/internal?period=2026",
        "/pools",
        "/admin/users",
    ]
    for name, user in viewers.items():
        viewer = signed_in(app, user)
        case_page = viewer.get(pages[0])
        text = "".join(_get(viewer, p, follow_redirects=True).get_data(as_text=True) for p in pages)
        assert (payee in text) is (name == "finance"), name
        on_the_case = name in ("finance", "manager", "reviewer")
        assert case_page.status_code == (200 if on_the_case else 404), name
        reviewing = name in ("manager", "reviewer")
        assert (details in text) is reviewing and (family in text) is reviewing, name
        if name == "donor":
            assert case.uid not in text


def test_promise_19_four_eyes_no_self_approval_and_no_double_payment(
    app, fund, make_user, make_donor
):
    """The manager who recommended a case cannot approve it; above the threshold (an
    amount in the reporting currency) one manager's approval waits for a second, different
    one; a payment form sent twice records one payment, and the database refuses a second
    row with its key; a payment at a rate far from the table waits for a second person,
    never the one who entered it."""
    world = MoneyWorld(fund, make_user, make_donor)
    app.config["FOUR_EYES_THRESHOLD"] = "500"
    own = world.recommended(reviewer=world.m1)
    db.session.commit()
    with pytest.raises(SelfApprovalError):
        approve_with_recorded_rates(own, world.m1, Decimal(100), [(world.eur.id, Decimal(100))])
    db.session.rollback()
    assert own.status == ApplicationStatus.RECOMMENDED and count_rows(Grant) == 0
    big = world.recommended()
    db.session.commit()
    draws = [(world.eur.id, Decimal(800))]
    available = pool_available(world.eur.id)
    assert approve_with_recorded_rates(big, world.m1, Decimal(800), draws) is None
    db.session.commit()
    assert big.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    assert count_rows(Grant) == 0 and pool_available(world.eur.id) == available
    with pytest.raises(SecondApproverError):
        approve_with_recorded_rates(big, world.m1, Decimal(800), draws)
    db.session.rollback()
    grant = approve_with_recorded_rates(big, world.m2, Decimal(800), draws)
    db.session.commit()
    assert big.status == ApplicationStatus.APPROVED
    assert pool_available(world.eur.id) == available - Decimal(800)
    first = pay(world, grant, "300", instalment=None, key="promise-19-form")
    again = pay(world, grant, "300", instalment=None, key="promise-19-form")
    assert again.id == first.id and count_rows(Disbursement) == 1
    row = dict(
        db.session.execute(sa.select(Disbursement.__table__).where(Disbursement.id == first.id))
        .mappings()
        .one()
    )
    row.pop("id")
    row["uid"] = "promise19duplicate00"
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.insert(Disbursement.__table__).values(**row))
    db.session.rollback()
    assert count_rows(Disbursement) == 1
    # 540 dollars are worth 490.91 euros: below the 500-euro threshold, one manager.
    dollars = world.recommended(currency="USD")
    db.session.commit()
    assert approve_with_recorded_rates(
        dollars, world.m1, Decimal(540), [(world.usd.id, Decimal(540))]
    )
    db.session.commit()
    # A made-up rate books nothing until a second person confirms it.
    held = pay(
        world,
        grant,
        "100",
        "USD",
        instalment=None,
        rate=Decimal(5),
        rate_source="x",
        rate_reason="x",
    )
    assert isinstance(held, HeldPayment) and count_rows(Disbursement) == 1
    with pytest.raises(PaymentError):
        confirm_held_payment(held, world.finance)
    db.session.rollback()
    assert confirm_held_payment(held, world.m2).confirmed_by_id == world.m2.id
    # A rate is never its own reference: a made-up rate finance writes in the table counts
    # nowhere until a second rate keeper confirms it, and one within the tolerance that
    # finance wrote alone holds finance's own payment at it.
    on, later = date(2026, 2, 2), date(2026, 3, 1)
    pools.record_rate(world.fund.id, world.finance, on, "EUR", "USD", Decimal(1000), "x")
    assert pools.rate_entry(world.fund.id, "EUR", "USD", later)[0] == EUR_USD
    pools.record_rate(world.fund.id, world.finance, later, "EUR", "USD", Decimal("1.11"), "x")
    db.session.commit()
    usd_grant = world.grant("400", pool=world.eur, currency="USD", name="Defender Two")
    own = pay(world, usd_grant, "100", "USD", instalment=None, paid_on=later)
    assert isinstance(own, HeldPayment) and own.why == [HoldReason.OWN_RATE]


# -- Data at rest ---------------------------------------------------------------------------


def test_promise_20_sensitive_columns_are_aes_gcm_bound_to_their_row_keys_outside(
    app, app_config, fund, make_user, make_donor
):
    """Every column is classed and sensitive or financial ones hold ciphertext: AES-GCM
    under the configured key, with table, column and row as associated data, so a value
    moved elsewhere does not read; text in clear says why it is not free text; no key is
    ever written to the database."""
    assert inventory_gaps() == ([], [], [])
    applicant = make_user("applicant")
    first = _case(fund, applicant, threat="canary-threat-2020")
    second = _case(fund, applicant, threat="another threat")
    blob = db.session.execute(
        sa.text("SELECT threat FROM applications WHERE id = :i"), {"i": first.id}
    ).scalar()
    blob = bytes(blob)
    assert b"canary-threat" not in blob
    key = base64.b64decode(app_config["HRDFUND_ENCRYPTION_KEY"])
    assert blob[1:5] == key_id(key)
    aad = f"applications\x1fthreat\x1f{first.uid}".encode()
    assert AESGCM(key).decrypt(blob[5:17], blob[17:], aad) == b"canary-threat-2020"
    db.session.execute(
        sa.update(Application)
        .where(Application.id == second.id)
        .values(_threat=blob, _defender_work=blob)
    )
    db.session.commit()
    db.session.expire_all()
    moved = db.session.get(Application, second.id)
    for attribute in ("threat", "defender_work"):
        with pytest.raises(DecryptionError):
            getattr(moved, attribute)
    # What finance types about a payment is ciphertext too: a reversal's reason can name
    # the defender or the place; the reference is matched through a keyed index.
    world = MoneyWorld(fund, make_user, make_donor)
    payment = pay(world, world.grant("500"), "200", instalment=None, reference="TRF-2020")
    reverse_disbursement(payment, world.finance, "canary-reason-2020, back in Mombasa")
    db.session.commit()
    uid, reason, reference = db.session.execute(
        sa.text("SELECT uid, reason, reference FROM disbursements WHERE reversal_of_id = :p"),
        {"p": payment.id},
    ).one()
    for column, stored, typed in (
        ("reason", reason, b"canary-reason-2020, back in Mombasa"),
        ("reference", reference, b"TRF-2020"),
    ):
        stored = bytes(stored)
        assert typed not in stored and stored[1:5] == key_id(key)
        aad = f"disbursements\x1f{column}\x1f{uid}".encode()
        assert AESGCM(key).decrypt(stored[5:17], stored[17:], aad) == typed
    everything = _all_values()
    for name in SECRET_NAMES:
        value = app_config[name]
        assert value not in everything, name
        assert base64.b64decode(value).decode("latin-1") not in everything, name


def test_promise_21_key_rotation(app, app_config, make_user):
    """Every ciphertext names its key; `flask hrdfund rotate-keys` writes every value again
    under the new key, after which the old key can go and everything still reads."""
    old = app_config["HRDFUND_ENCRYPTION_KEY"]
    new = base64.b64encode(os.urandom(32)).decode()
    user = make_user("applicant", contact="Signal canary-contact-2121")

    def stored():
        return bytes(db.session.scalar(sa.select(User._contact).where(User.id == user.id)))

    assert stored()[1:5] == key_id(base64.b64decode(old))
    db.session.remove()
    for keys, command in (({"HRDFUND_ENCRYPTION_OLD_KEYS": old}, "rotate-keys"), ({}, None)):
        other = create_app(dict(app_config, HRDFUND_ENCRYPTION_KEY=new, **keys))
        with other.app_context():
            try:
                if command:
                    result = other.test_cli_runner().invoke(args=["hrdfund", command])
                    assert result.exit_code == 0, result.output
                else:  # the old key is gone
                    assert stored()[1:5] == key_id(base64.b64decode(new))
                    assert db.session.get(User, user.id).contact == "Signal canary-contact-2121"
            finally:
                db.session.remove()
                db.engine.dispose()


def test_promise_22_uploads_are_checked_cleaned_encrypted_and_served_as_attachments(
    app, client, make_user, fund
):
    """A web page named .pdf is refused; a photo named .pdf is taken for what it is, stored
    encrypted under a random name, and comes back as an attachment without its GPS and
    camera data; a PDF comes back without its author, title, producer and XMP; a picture
    past the pixel bound is refused; a body past the cap gets 413."""
    login(client, make_user("applicant"))
    uid = start_application(client, "medical")
    refused = _upload(client, uid, b"<html><script>alert(1)</script></html>", "quote.pdf")
    refused = refused_page(client, refused, f"/applications/{uid}#documents")
    assert "Only PDF, PNG and JPEG files are accepted." in refused.get_data(as_text=True)
    photo = jpeg_with_gps("canary-camera-note-2222")
    assert _upload(client, uid, photo, "IMG_0001 near home.pdf", "evidence").status_code == 302
    document = db.session.execute(sa.select(Document)).scalar_one()
    assert document.content_type == "image/jpeg" and document.filename == "IMG_0001 near home.jpg"
    assert re.fullmatch(r"[0-9a-f]{32}", document.storage_name)
    folder = Path(app.instance_path, "documents")
    assert os.listdir(folder) == [document.storage_name]
    stored = (folder / document.storage_name).read_bytes()
    assert not stored.startswith(b"\xff\xd8\xff") and b"canary-camera" not in stored
    assert stat.S_IMODE((folder / document.storage_name).stat().st_mode) == 0o600
    download = client.get(f"/applications/{uid}/documents/{document.uid}")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert b"canary-camera" not in download.data
    with Image.open(io.BytesIO(download.data)) as image:
        assert image.size == (32, 24)
        assert 0x8825 not in image.getexif() and 0x010E not in image.getexif()
    boundary, body = encode_multipart(
        {
            "kind": "quote",
            "file": FileStorage(
                io.BytesIO(PDF + b"0" * app.config["MAX_CONTENT_LENGTH"]), "big.pdf"
            ),
        }
    )
    too_big = client.post(
        f"/applications/{uid}/documents",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert too_big.status_code == 413 and "File too large" in too_big.get_data(as_text=True)
    assert count_rows(Document) == 1

    signed = make_pdf(
        "canary-pdf-text-4417",
        info={"Author": "Canary Author 5531", "Title": "Canary Title", "Producer": "Word"},
        xmp=xmp_packet("Canary Author 5531"),
    )
    assert _upload(client, uid, signed, "letter.pdf").status_code == 302
    pdf = db.session.execute(
        sa.select(Document).where(Document.content_type == "application/pdf")
    ).scalar_one()
    body = client.get(f"/applications/{uid}/documents/{pdf.uid}").data
    text, metadata = _pdf(body)
    assert "canary-pdf-text-4417" in text, "the page is kept"
    assert not metadata and PdfReader(io.BytesIO(body)).xmp_metadata is None
    assert b"Canary Author" not in body and b"Canary Title" not in body

    huge = io.BytesIO()
    Image.new("1", (6000, 5000)).save(huge, "PNG")  # 30 million pixels, a few kilobytes
    refused = _upload(client, uid, huge.getvalue(), "scan.png", "evidence")
    refused = refused_page(client, refused, f"/applications/{uid}#documents")
    assert "too large" in refused.get_data(as_text=True)
    assert count_rows(Document) == 2


def test_promise_23_no_address_or_browser_of_an_applicant_is_kept(
    app, client, make_user, fund, caplog
):
    """A defender signs up, applies, writes and uploads from a known address and browser:
    neither is in any table, the logs or the cookie, and no column could hold them or a
    precise place."""
    caplog.set_level(logging.DEBUG, logger="hrdfund")
    address, forwarded, agent = "198.51.100.77", "203.0.113.88", "CanaryBrowser/7.7 ua-2323"
    client.environ_base.update(
        {"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent, "HTTP_X_FORWARDED_FOR": forwarded}
    )
    client.post("/login", data={"login": "river-23", "password": "a wrong password"})
    signed_up, made = sign_up(client)
    assert signed_up.location
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    assert client.post(f"/applications/{uid}", data={"body": "Hello"}).status_code == 302
    assert _upload(client, uid, PDF).status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"login": made, "password": PASSWORD}).location
    stored = _all_values()
    assert made in stored, "the scan sees plain columns"
    for trace in (address, forwarded, "CanaryBrowser", "ua-2323"):
        assert trace not in stored, trace
        assert trace not in caplog.text, trace
    assert "_id" not in session_contents(app, client), "no hash of address and browser"
    precise = re.compile(
        r"(^|_)(ip|ip_address|remote_addr|user_agent|agent|browser|latitude|longitude|lat|lng"
        r"|gps|street|address|postcode|zip|city)($|_)"
    )
    columns = [f"{t.name}.{c.name}" for t in db.metadata.sorted_tables for c in t.columns]
    assert [name for name in columns if precise.search(name.split(".")[1])] == []
    assert Application.__table__.c.country.type.length == 2


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own file and pragmas
def test_promise_24_the_sqlite_file_is_private_and_deleted_data_is_overwritten(
    app, backend, make_user, make_fund
):
    """The database, its WAL and shared memory are 0600; every connection enforces foreign
    keys and secure delete: a deleted value is gone from the file, not just unlinked."""
    doomed = "canary-fund-to-delete-2424"
    fund_id = make_fund(doomed).id
    make_user("applicant")
    path = db.engine.url.database
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            assert stat.S_IMODE(os.stat(path + suffix).st_mode) == 0o600, suffix
    for _ in range(2):
        db.engine.dispose()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.insert(Application.__table__).values(
                uid="promise24orphan00000",
                fund_id=fund_id + 999,
                category="legal",
                status="draft",
                urgency="normal",
                currency="EUR",
                dependants_count=0,
                created_at=datetime(2026, 1, 1),
            )
        )
    db.session.rollback()

    def file_bytes():
        db.session.remove()
        connection = db.engine.raw_connection()
        try:
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))

    assert b"canary-fund-to-delete" in file_bytes(), "the scan sees the file"
    db.session.execute(sa.text("DELETE FROM funds WHERE name = :n"), {"n": doomed})
    db.session.commit()
    assert b"canary-fund-to-delete" not in file_bytes()


def test_promise_25_purge(app, runner, fund, make_user):
    """`flask hrdfund purge --dry-run` changes nothing; `purge` reduces a case closed longer
    ago than the retention period to its figures; the audit chain still verifies."""
    app.config["RETENTION_DAYS"] = 30
    applicant = make_user("applicant")
    case = _case(fund, applicant, defender_name="canary-name-2525", threat="canary-threat-2525")
    closed = utcnow() - timedelta(days=31)
    case.status, case.closed_at = ApplicationStatus.WITHDRAWN, closed
    recent = _case(fund, applicant, defender_name="canary-name-2526")
    db.session.commit()
    dry = runner.invoke(args=["hrdfund", "purge", "--dry-run"])
    assert "1 cases to reduce" in dry.output and "nothing changed" in dry.output
    db.session.expire_all()
    assert db.session.get(Application, case.id).defender_name == "canary-name-2525"
    result = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    kept = db.session.get(Application, case.id)
    assert kept.defender_name is None and kept.threat is None and kept.purged_at
    assert kept.category == Category.RELOCATION and kept.region == "East Africa"
    assert db.session.get(Application, recent.id).defender_name == "canary-name-2526"
    check = runner.invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output


def test_promise_26_sharing_a_case_needs_the_defenders_recorded_consent(
    app, client, make_user, make_donor, fund
):
    """A partner cannot refer a defender without recording consent; a donor's report lists
    a funded case, and shows its story, only while the defender's consent stands."""
    login(client, make_user("partner"))
    refused = client.post("/apply", data={"category": "medical", "consent_method": "phone"})
    refused = refused_page(client, refused, "/apply")
    assert "needs the defender&#39;s consent" in refused.get_data(as_text=True)
    assert count_rows(Application) == 0
    referred = start_application(client, "medical", consent="y", consent_method="phone")
    recorded = db.session.execute(sa.select(Consent)).scalar_one()
    assert recorded.kind == ConsentKind.PARTNER_SUBMISSION and recorded.method == "phone"
    assert (
        recorded.application_id
        == db.session.execute(
            sa.select(Application.id).where(Application.uid == referred)
        ).scalar_one()
    )

    world = MoneyWorld(fund, make_user, make_donor)
    with Clock().on(datetime(2026, 2, 3, 10)):
        grant = world.grant("1000")
        pay(world, grant, "400", instalment=None, paid_on=date(2026, 2, 3))
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    code = anonymise.donor_code(world.donor.id, grant.uid, 2026)
    story_text = "A journalist kept reporting from a safe town"

    def outputs(period, day):
        url = f"/donor/pools/{world.eur.uid}/report?period={period}&format="
        with Clock().on(day):
            csv_text = _get(donor, url + "csv").get_data(as_text=True)
            pdf_text, _metadata = _pdf(_get(donor, url + "pdf").get_data())
        return csv_text, " ".join(pdf_text.split())

    # February's report, issued in March: no consent, so not listed.
    csv_text, pdf_text = outputs("2026-02", datetime(2026, 3, 10, 9))
    assert code not in csv_text and "not listed" in csv_text
    with Clock().on(datetime(2026, 3, 11, 9)):
        consent = Consent(
            application_id=grant.application_id,
            kind=ConsentKind.STORY,
            donor_id=world.donor.id,
            method="form",
            given_at=utcnow(),
        )
        db.session.add(consent)
        db.session.flush()
        story = Story(
            application_id=grant.application_id,
            donor_id=world.donor.id,
            consent_id=consent.id,
            written_by_id=world.m1.id,
            approved_by_id=world.m2.id,
            approved_at=utcnow(),
        )
        story.text = story_text
        db.session.add(story)
        db.session.commit()
        pay(world, grant, "300", instalment=None, paid_on=date(2026, 3, 11))
    # March's report, issued once March ended: the consent stands, so listed, with the story.
    csv_text, pdf_text = outputs("2026-03", datetime(2026, 4, 2, 9))
    assert code in csv_text and story_text in pdf_text
    with Clock().on(datetime(2026, 4, 3, 9)):
        consent.withdrawn_at = utcnow()
        db.session.commit()
    # Withdrawn: neither the line nor the story in any report downloaded afterwards.
    csv_text, pdf_text = outputs("2026-03", datetime(2026, 4, 4, 9))
    assert code not in csv_text and story_text not in pdf_text
    assert "not listed" in csv_text


# -- Logs and audit -------------------------------------------------------------------------


def test_promise_27_logs_hold_ids_never_personal_data(app, client, make_user, fund, caplog):
    """Signing up, failing to sign in, applying, writing and a crash on typed words are
    logged, if at all, without a login, a contact or anything typed."""
    caplog.set_level(logging.DEBUG, logger="hrdfund")
    _crash_route(app)
    client.post("/login", data={"login": "canary-unknown-2727", "password": "canary-pass-2727"})
    _signed_up, made = sign_up(client, contact="canary-signal-2727")
    uid = start_application(client)
    data = {
        **RELOCATION,
        "threat": "canary-threat-2727",
        "urgency": "urgent",
        "urgency_reason": "canary-urgency-2727",
        "submit": "1",
    }
    assert client.post(f"/applications/{uid}/edit", data=data).location == f"/applications/{uid}"
    client.post(f"/applications/{uid}", data={"body": "canary-message-2727"})
    assert client.post("/promise-crash", data={"note": "canary-note-2727"}).status_code == 500
    assert "RuntimeError" in caplog.text and "promise_crash" in caplog.text
    assert "canary" not in caplog.text and made not in caplog.text


def test_promise_28_actions_are_audited_in_a_chain_that_check_verifies(
    app, client, make_user, make_donor, fund, runner
):
    """Every successful form post of a defender, each sign-in and sign-out, a document and a
    report download leave an audit entry; `flask hrdfund check` passes the chain and names
    an edited, a deleted and a reordered entry."""
    before = count_rows(AuditEvent)
    signed_up, made = sign_up(client)
    assert signed_up.status_code == 302 and count_rows(AuditEvent) > before
    before = count_rows(AuditEvent)
    assert client.post("/apply", data={"category": "relocation"}).status_code == 302
    assert count_rows(AuditEvent) > before
    uid = db.session.execute(sa.select(Application.uid)).scalar_one()
    for path, data in [
        (f"/applications/{uid}/edit", {**RELOCATION, "consent_story": "y", "save": "1"}),
        (f"/applications/{uid}/edit", {**RELOCATION, "consent_story": "y", "submit": "1"}),
        (f"/applications/{uid}", {"body": "A message"}),
        (f"/applications/{uid}/consents/story/withdraw", {}),
        ("/logout", {}),
    ]:
        before = count_rows(AuditEvent)
        assert client.post(path, data=data).status_code == 302, path
        assert count_rows(AuditEvent) > before, path
    owner = signed_in(app, auth_services.find_user(made))
    _upload(owner, uid, PDF)
    doc = db.session.execute(sa.select(Document.uid)).scalar_one()
    assert _get(owner, f"/applications/{uid}/documents/{doc}").status_code == 200
    app.test_client().post("/login", data={"login": made, "password": "not it at all"})
    world = MoneyWorld(fund, make_user, make_donor)
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    report = f"/donor/pools/{world.eur.uid}/report?period=2026&format=csv"
    assert _get(donor, report).status_code == 200
    actions = audit_actions()
    for action in (
        "auth.user_created",
        "auth.login",
        "auth.login_failed",
        "auth.logout",
        "application.started",
        "application.saved",
        "application.status",
        "message.posted",
        "consent.withdrawn",
        "document.uploaded",
        "document.downloaded",
        "report.downloaded",
    ):
        assert action in actions, action

    def check():
        result = runner.invoke(args=["hrdfund", "check"])
        return result.exit_code, result.output

    assert check()[0] == 0
    seq = 3
    original = (
        db.session.execute(sa.select(AuditEvent.__table__).where(AuditEvent.seq == seq))
        .mappings()
        .one()
    )
    db.session.execute(
        sa.text("UPDATE audit_events SET payload = :p WHERE seq = :s"), {"p": "{}", "s": seq}
    )
    db.session.commit()
    code, output = check()
    assert code == 1 and f"BROKEN: audit entry {seq} was altered" in output
    db.session.execute(
        sa.text("UPDATE audit_events SET payload = :p WHERE seq = :s"),
        {"p": original["payload"], "s": seq},
    )
    db.session.commit()
    assert check()[0] == 0
    db.session.execute(sa.text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})
    db.session.commit()
    code, output = check()
    assert code == 1 and f"BROKEN: audit entry {seq} is missing" in output
    db.session.execute(sa.insert(AuditEvent.__table__).values(**original))
    db.session.commit()
    assert check()[0] == 0
    for old, new in ((seq, 100_000), (seq + 1, seq), (100_000, seq + 1)):
        db.session.execute(
            sa.text("UPDATE audit_events SET seq = :n WHERE seq = :o"), {"n": new, "o": old}
        )
    db.session.commit()
    code, output = check()
    assert code == 1 and f"BROKEN: audit entry {seq} does not follow" in output


def test_promise_29_error_pages_say_nothing_of_the_server(app, client, make_user):
    """Not found, not allowed, a refused form and a crash show a plain page without trace,
    version, framework name or what was typed."""
    _crash_route(app)
    login(client, make_user("applicant"))
    answers = {
        404: _get(client, "/no/such/page"),
        405: _get(client, "/logout"),
        500: client.post("/promise-crash", data={"note": "canary-typed-2929"}),
    }
    app.config["WTF_CSRF_ENABLED"] = True
    answers[400] = client.post("/applications/nothing", data={"note": "canary-typed-2929"})
    for code, response in answers.items():
        html = response.get_data(as_text=True)
        assert response.status_code == code
        assert response.mimetype == "text/html" and "<h1>" in html, code
        assert [leak for leak in LEAKS if leak in html] == [], code
        assert not re.search(r"\b\d+\.\d+\.\d+\b", html), code
        assert "canary" not in html, code
    assert "Something went wrong" in answers[500].get_data(as_text=True)


def test_promise_30_ci_runs_pip_audit_and_ruffs_bandit_rules():
    """ruff's bandit rules (S) are selected and catch an unsafe call; CI runs `make lint`
    (ruff) and `make audit` (pip-audit over the pinned requirements); every requirement,
    pip-audit's own included, is pinned."""
    settings = tomllib.loads(Path(ROOT, "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in settings["select"]
    assert [code for code in settings.get("ignore", []) if code.startswith("S")] == ["S101"]
    probe = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename"]
        + ["hrdfund/promise_probe.py", "-"],
        input="import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert probe.returncode == 1 and "S301" in probe.stdout, probe.stdout + probe.stderr
    makefile = Path(ROOT, "Makefile").read_text()

    def recipe(target):
        return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)

    assert "ruff check ." in recipe("lint")
    audit = recipe("audit")
    assert "pip-audit" in audit
    assert "-r requirements.txt" in audit and "-r requirements-dev.txt" in audit
    ci = Path(ROOT, ".ci/run").read_text()
    assert re.search(r"^make lint$", ci, re.M) and re.search(r"^make audit$", ci, re.M)
    assert re.search(r"^pip[-_]audit==", Path(ROOT, "requirements-audit.txt").read_text(), re.M)
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-audit.txt"):
        for line in Path(ROOT, name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[0-9][A-Za-z0-9.+!-]*", line), line


# -- Donor outputs --------------------------------------------------------------------------


def _plant_canaries():
    """A unique canary in every encrypted field and every personal text column of every
    row but the ledger's (written once, canaries given at creation) and stories (written
    for donors to read); returns the number planted."""
    planted = 0
    for mapper in db.Model.registry.mappers:
        model = mapper.class_
        if model is Story or mapper.local_table.name in FINAL_TABLES:
            continue
        encrypted = [name for name, attr in vars(model).items() if isinstance(attr, Encrypted)]
        personal = [
            mapper.get_property_by_column(column).key
            for column in mapper.columns
            if column.info.get("data_class") == PERSONAL
            and isinstance(column.type, sa.String)
            and not isinstance(column.type, sa.Enum)
            and (column.type.length or 0) >= 16
        ]
        for row in db.session.execute(sa.select(model)).scalars():
            for name in encrypted:
                planted += 1
                canary = f"CANARY{planted:05d}"
                setattr(row, name, {"field": canary} if vars(model)[name].json else canary)
            for name in personal:
                planted += 1
                setattr(row, name, f"canary{planted:05d}")
    db.session.commit()
    return planted


def test_promise_31_donor_outputs_are_aggregates_without_a_trace_of_anyone(
    app, fund, make_user, make_donor
):
    """Canaries in every sensitive field of every case: the donor's PDF (text, metadata)
    and CSV, for a year, a quarter and a month, show none of them, no case or grant code,
    no payee and no payment date; small counts read "fewer than 5" and a lone small cell
    takes its neighbour with it; a month's hidden figure is not its quarter's less the
    other months'; free date ranges are refused."""
    world = MoneyWorld(fund, make_user, make_donor)
    # Each grant is approved and paid on its day: reports count what was recorded by the
    # end of their period, and say it once the period has ended.
    for n in range(5):
        with Clock().on(datetime(2026, 1, 12 + n, 10)):
            january = world.grant("700", name=f"January {n}")
            pay(world, january, str(600 + n), instalment=None, paid_on=date(2026, 1, 12 + n))
    with Clock().on(datetime(2026, 2, 3, 10)):
        grants = _pay_three(world)
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    _rest_of_promise_31(world, grants, donor)


def _pay_three(world):
    """Three grants paid in February, with every kind of case content beside them."""
    grants = []
    for n in range(3):
        grant = world.grant(str(1000 + n), name=f"Defender {n}")
        case = grant.application
        case.dependants = [Dependant(relation="x", age=4)]
        case.references = [Reference(name="x", organisation="x", contact="x", notes="x")]
        db.session.add(Message(application_id=case.id, from_staff=False, body="x"))
        db.session.add(
            UseOfFundsReport(
                application_id=case.id, felt_safer=True, narrative="x", submitted_at=utcnow()
            )
        )
        if n:
            db.session.add(
                Consent(
                    application_id=case.id,
                    kind=ConsentKind.STORY,
                    method="form",
                    given_at=utcnow(),
                )
            )
        db.session.commit()
        pay(world, grant, "500", instalment=None, payee_details=f"CANARY-PAYEE-{n}")
        grants.append(grant)
    return grants


def _rest_of_promise_31(world, grants, donor):
    assert _plant_canaries() >= 30
    outputs = 0
    for period in ("2026", "2026-Q1", "2026-02"):
        url = f"/donor/pools/{world.eur.uid}/report?period={period}&format="
        pdf = _get(donor, url + "pdf")
        csv_text = _get(donor, url + "csv").get_data(as_text=True)
        assert pdf.status_code == 200 and csv_text.startswith("grant_code,")
        text, metadata = _pdf(pdf.get_data())
        assert metadata.title == "Donor report"
        assert not any(metadata.get(k) for k in ("/Author", "/Creator", "/Producer", "/Subject"))
        if period == "2026-Q1":
            assert "fewer than 5" in text and "not listed" in csv_text
        for output in (text, " ".join(str(v) for v in metadata.values()), csv_text):
            assert "CANARY" not in output.upper(), period
            assert "2026-02-03" not in output and "3 February 2026" not in output
            for grant in grants:
                assert grant.uid not in output and grant.application.uid not in output
        assert b"CANARY" not in pdf.get_data().upper()
        outputs += 1
    assert outputs == 3
    for free in ("2026-01-01:2026-02-01", "2026-02-03", "last-90-days"):
        url = f"/donor/pools/{world.eur.uid}/report?period={free}&format=csv"
        assert _get(donor, url).status_code == 404, free
    table = anonymise.breakdown(
        "category",
        {
            "legal": {"grants": 3, "defenders": 3, "dependants": 0, "amount": Decimal(900)},
            "medical": {"grants": 6, "defenders": 6, "dependants": 6, "amount": Decimal(1800)},
            "relocation": {"grants": 9, "defenders": 9, "dependants": 9, "amount": Decimal(5000)},
        },
    )
    grants_cells = {row.label: row.cells["grants"] for row in table.rows}
    assert not grants_cells["legal"].shown and not grants_cells["medical"].shown
    assert grants_cells["relocation"].shown and table.total.cells["grants"].shown
    # The first quarter is January (5 grants) and February (3): what February's report
    # hides, the quarter's and January's reports do not both show.
    quarter, jan, feb = (
        build_report(world.eur, parse_period(code))["breakdowns"]
        for code in ("2026-Q1", "2026-01", "2026-02")
    )
    hidden = 0
    for name in ("category", "region", "gender", "month"):
        for label in [r.label for r in quarter[name].rows] + ["total"]:
            for measure in ("grants", "defenders", "dependants", "amount"):
                cells = [_cell_of(t[name], label, measure) for t in (quarter, jan, feb)]
                if cells[2] is not None and not cells[2].shown and cells[2].value:
                    hidden += 1
                    assert not all(c is not None and c.shown for c in cells[:2]), (name, label)
    assert hidden >= 3


def _cell_of(table, label, measure):
    """A figure of a breakdown, or None when the table lists no such row."""
    for row in table.rows + [table.total]:
        if row.label == label:
            return row.cells[measure]
    return None
