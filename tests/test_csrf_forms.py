"""Every form carries its CSRF token as one hidden field named `csrf_token`, without an id,
whatever its prefix; with CSRF on, as deployed, each form sent back as its page has it is
accepted past the token check, on pages that hold a dozen forms too, and a form sent
without its token is refused."""

import io
import re
import urllib.parse

import pytest
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from hrdfund.cases.models import Reference
from hrdfund.core.extensions import db
from hrdfund.core.forms import PageForm
from tests.conftest import COOKIE, PASSWORD, MoneyWorld, login, pay
from tests.live import find_form, page_forms

#: The heading of the page a request refused for its CSRF token gets.
REFUSED = "Something in the request was not right"
TOKEN_INPUT = re.compile(r"<input\b[^>]*\bname=\"[^\"]*csrf_token\"[^>]*>")


def _every_subclass(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _every_subclass(sub)


def test_every_form_of_the_app_is_a_page_form():
    """A form made straight from FlaskForm would carry its token under its prefix, with
    an id that repeats when a page holds two of them."""
    from hrdfund.cases.forms import application_form_class
    from hrdfund.core.support import Category

    for category in Category:
        application_form_class(category)
    forms = [f for f in _every_subclass(FlaskForm) if f.__module__.startswith("hrdfund.")]
    assert len(forms) > 20
    assert [f.__qualname__ for f in forms if not issubclass(f, PageForm)] == []


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    deciding = world.recommended("Defender Two")
    db.session.add(Reference(application_id=deciding.id, name="Ref", contact="Signal"))
    grant = world.grant("3000")
    world.plan(grant)
    pay(world, grant, "1000")
    world.deciding = deciding.uid
    world.paying = grant.application.uid
    db.session.commit()
    return world


def _pages(world):
    """Each role's pages with forms, the case pages with the most forms among them."""
    deciding, paying = f"/applications/{world.deciding}", f"/applications/{world.paying}"
    return {
        world.m1: [
            deciding,
            paying,
            f"/pools/{world.eur.uid}",
            "/pools/new",
            "/pools/rates",
            "/account",
        ],
        world.finance: [paying, "/payments", "/pools/rates"],
        world.applicant: [paying, "/apply", "/account"],
        world.admin: ["/admin/users"],
    }


def _send(client, form, with_token=True):
    fields = [(n, v) for n, v in form.fields if with_token or n != "csrf_token"]
    data = MultiDict(fields)
    for name in form.files:
        data.add(name, (io.BytesIO(b""), ""))
    return client.post(form.action, data=data)


def test_each_form_as_its_page_has_it_passes_the_token_check(app, world):
    """Each form of each page is sent back as rendered: the CSRF check lets it through,
    whether the form then accepts or refuses what it holds; without its token it is
    refused."""
    sent = set()
    for user, paths in _pages(world).items():
        client = app.test_client()
        login(client, user)
        app.config["WTF_CSRF_ENABLED"] = True
        for path in paths:
            html = client.get(path).get_data(as_text=True)
            assert " id=" not in " ".join(TOKEN_INPUT.findall(html)), path
            forms = [f for f in page_forms(html) if f.method == "post" and f.action != "/logout"]
            if path == f"/applications/{world.deciding}":
                assert len(forms) >= 8, "a manager's case page holds many forms"
            for form in forms:
                tokens = [name for name, _value in form.fields if name.endswith("csrf_token")]
                assert tokens == ["csrf_token"], (path, form.action, tokens)
                refused = _send(client, form, with_token=False)
                assert refused.status_code == 400, (path, form.action)
                assert REFUSED in refused.get_data(as_text=True), (path, form.action)
                answer = _send(client, form)
                assert REFUSED not in answer.get_data(as_text=True), (path, form.action)
                assert answer.status_code < 500, (path, form.action)
                sent.add(urllib.parse.urlsplit(form.action).path.split("/")[-1])
        app.config["WTF_CSRF_ENABLED"] = False
    # Prefixed forms (approve, notes, payments, pools...) and plain ones alike.
    for kind in ("approve", "notes", "payments", "reverse", "contributions", "alerts", "password"):
        assert kind in sent, kind


def test_two_pages_opened_at_once_after_signing_in_each_send_their_form(app, world):
    """Signing in starts the session with its CSRF token: two tabs opened at the same
    moment after it are given the same one, so the form of the tab whose cookie was
    overwritten by the other's answer is still taken, not refused as a forged request."""
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        sign_in = find_form(client.get("/login").get_data(as_text=True), "/login")
        fields = dict(sign_in.fields) | {"login": world.applicant.login, "password": PASSWORD}
        assert client.post("/login", data=fields).status_code == 302
        signed_in = client.get_cookie(COOKIE).value

        case = f"/applications/{world.paying}"
        first = client.get(case).get_data(as_text=True)
        client.set_cookie(COOKIE, signed_in)  # the second tab asks with the same cookie
        client.get("/account")  # and its answer's cookie is the one the browser keeps
        message = next(f for f in page_forms(first) if "body" in dict(f.fields))
        answer = client.post(message.action, data=dict(message.fields) | {"body": "Both tabs"})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
        assert "Both tabs" in client.get(case).get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
