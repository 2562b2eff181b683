"""Promises 13 to 15: state changes need a POST with its token, every field is limited,
and what people type is escaped.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import importlib
import pkgutil
import re
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from flask import render_template_string
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from wtforms.validators import Length, Regexp

import hrdfund
from hrdfund.cases.forms import application_form_class
from hrdfund.cases.models import Consent, ConsentKind, Message
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.conftest import (
    PASSWORD,
    count_rows,
    csrf_token,
    login,
    refused_page,
    signed_in,
    start_application,
    totp_code,
)

from .common import RELOCATION, ROOT, fill_rule, get_closed, relocation_case


def snapshot(skip=("audit_events",)):
    """Every row of every table but ``skip``, to compare before and after requests."""
    db.session.expire_all()
    return {
        table.name: sorted(repr(tuple(row)) for row in db.session.execute(sa.select(table)))
        for table in db.metadata.sorted_tables
        if table.name not in skip
    }


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
    case = relocation_case(fund, applicant)
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
    before = snapshot()
    for someone in (client, manager):
        for rule in app.url_map.iter_rules():
            if "GET" in rule.methods and rule.endpoint != "static":
                assert get_closed(someone, fill_rule(rule, {"uid": case.uid})).status_code < 500, (
                    rule.rule
                )
    assert snapshot() == before


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
    assert app.select_jinja_autoescape("cases/case.html")
    for path in Path(ROOT, "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup\(", text), path
    for path in Path(ROOT, "hrdfund").rglob("*.py"):
        assert "Markup(" not in path.read_text(), path
    applicant = make_user("applicant")
    case = relocation_case(fund, applicant, threat=HOSTILE, defender_name=HOSTILE)
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
