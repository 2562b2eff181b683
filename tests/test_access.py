"""Deny by default, security headers on every response, and error pages that say nothing."""

import re

import pytest

from hrdfund.auth.guard import PUBLIC_ENDPOINTS
from tests.conftest import login

ROLES = ["applicant", "partner", "reviewer", "manager", "finance", "donor", "admin"]
#: Each role's own pages; every other role gets 403 there.
ROLE_PAGES = {
    "/my": {"applicant"},
    "/apply": {"applicant", "partner"},
    "/referrals": {"partner"},
    "/cases": {"reviewer", "manager"},
    "/payments": {"finance"},
    "/donor": {"donor"},
    "/pools": {"manager", "finance", "admin"},
    "/admin/users": {"admin"},
}
CSP_PARTS = (
    "default-src 'self'",
    "script-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def _routes(app):
    """Every (method, path) the app answers, URL variables filled with dummy values."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "dummy", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def _assert_headers(response):
    csp = response.headers["Content-Security-Policy"]
    assert all(part in csp for part in CSP_PARTS), csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_public_endpoints_are_few(app):
    """Only signing in (two steps), signing up and static files are open to visitors."""
    assert {"static", "auth.login", "auth.code", "auth.register"} == set(PUBLIC_ENDPOINTS)
    assert set(PUBLIC_ENDPOINTS) <= {r.endpoint for r in app.url_map.iter_rules()}


def test_anonymous_visitors_are_sent_to_sign_in_everywhere(app, client):
    """Every non-public route answers an anonymous request with a redirect to /login."""
    for endpoint, method, path in _routes(app):
        response = client.open(path, method=method)
        _assert_headers(response)
        if endpoint in PUBLIC_ENDPOINTS:
            assert response.status_code in (200, 302, 400), (method, path)
        else:
            assert (response.status_code, response.location) == (302, "/login"), (method, path)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_its_pages_and_no_others(client, make_user, role, app):
    """A role's own pages answer 200, other roles' pages 403, nothing answers 500, and no
    page carries script or loads anything from another host."""
    login(client, make_user(role))
    for endpoint, method, path in _routes(app):
        response = client.open(path, method=method)
        assert response.status_code < 500, (method, path)
        _assert_headers(response)
        if path in ROLE_PAGES and method == "GET":
            expected = 200 if role in ROLE_PAGES[path] else 403
            assert response.status_code == expected, (role, path)
        if method == "GET" and response.status_code == 200:
            html = response.get_data(as_text=True)
            assert "<script" not in html.lower()
            assert not re.search(r'(src|href|action)="(https?:)?//', html), path
            assert response.headers["Cache-Control"] == "no-store"
        if endpoint == "auth.logout":
            login(client, make_user(role))


def test_static_files_carry_the_headers_but_may_be_cached(client):
    """The stylesheet comes from this host with the same protections."""
    with client.get("/static/style.css") as response:
        assert response.status_code == 200
        _assert_headers(response)
        assert response.headers.get("Cache-Control") != "no-store"


def test_unknown_pages_and_wrong_methods_reveal_nothing(client, make_user):
    """404 and 405 pages are plain, with headers, without versions or traces."""
    login(client, make_user("applicant"))
    for response in (client.get("/no/such/page"), client.put("/my")):
        html = response.get_data(as_text=True)
        _assert_headers(response)
        assert response.status_code in (404, 405)
        assert "Traceback" not in html and "Werkzeug" not in html and "Python" not in html


def test_a_crash_shows_a_generic_page_and_logs_no_personal_data(app, client, make_user, caplog):
    """A bug in a view shows a page that says nothing, and the log holds frames, not data."""

    @app.post("/boom")
    def boom():
        from flask import request

        raise RuntimeError(request.form["note"])

    login(client, make_user("applicant"))
    response = client.post("/boom", data={"note": "canary-secret-typed-by-a-defender"})
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "canary-secret" not in html and "Traceback" not in html
    _assert_headers(response)
    assert "RuntimeError" in caplog.text
    assert "canary-secret" not in caplog.text


def test_right_to_left_languages_set_direction(client):
    """An Arabic-speaking visitor gets <html lang="ar" dir="rtl">."""
    html = client.get("/login", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    html = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html


def test_login_page_is_small(client):
    """The sign-in page and its stylesheet together stay far below 100 KB."""
    page = client.get("/login").get_data()
    with client.get("/static/style.css") as response:
        css = response.get_data()
    assert len(page) + len(css) < 100_000
