"""Security headers on every response, pages without script or other hosts, error pages that
say nothing, and the page direction for right-to-left languages."""

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from config import Config
from hrdfund.core import static
from tests.conftest import CSP_PARTS, login, make_case

#: A reference to another host in an attribute or a stylesheet.
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|srcset|formaction)\s*=\s*["']?\s*|url\(\s*["']?)
    (?:https?:|//)""",
    re.I | re.X,
)
#: The one link to another host a page may hold: the applicant side's way out, which the
#: person follows, and which loads nothing.
WAY_OUT = f'<p class="leave"><a href="{Config.QUICK_EXIT_URL}" rel="noreferrer">'
#: What a framework's debug page or banner would show.
LEAKS = ("Traceback", 'File "', "Werkzeug", "werkzeug", "Python", "Flask", "Jinja", "SQL")
VIEWERS = ["anonymous", "applicant", "partner", "reviewer", "finance", "donor", "admin"]


def assert_protected(response):
    """The headers every response carries, error pages and static files included."""
    csp = response.headers.get("Content-Security-Policy", "")
    missing = [part for part in CSP_PARTS if part not in csp]
    assert missing == [], (response.request.path, csp)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def assert_clean_html(response):
    """No script, nothing from another host, and the language and direction set."""
    html = response.get_data(as_text=True)
    path = response.request.path
    assert "<script" not in html.lower(), path
    assert html.count(WAY_OUT) <= 1, path
    html = html.replace(WAY_OUT, "")
    assert not EXTERNAL.search(html), (path, EXTERNAL.search(html))
    assert re.search(r'<html lang="[a-z]{2}" dir="(ltr|rtl)">', html), path


@pytest.fixture
def case(fund, make_user):
    """A submitted case, so the case pages render with content instead of a 404."""
    owner = make_user("applicant")
    return make_case(
        fund,
        applicant_id=owner.id,
        submitted_at=datetime(2026, 3, 1),
        threat="a threat",
        defender_name="a name",
    )


def _routes(app, uid):
    """Every (endpoint, method, path), with the real case and the real stylesheet."""
    values = {"filename": "style.css", "uid": uid}

    def fill(match):
        return values.get(match[1], "dummy")

    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", fill, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


@pytest.mark.parametrize("viewer", VIEWERS)
def test_every_response_is_protected_and_self_contained(app, client, make_user, case, viewer):
    """Every route, a 404 and a static file: the headers are there, dynamic pages are not
    cached, and no page runs script or loads anything from another host."""
    user = None
    if viewer != "anonymous":
        user = case.applicant if viewer == "applicant" else make_user(viewer)
        login(client, user)
    seen_html = 0
    requests = [*_routes(app, case.uid), ("missing", "GET", "/no/such/page")]
    requests.append(("missing-static", "GET", "/static/no-such.css"))
    for endpoint, method, path in requests:
        with client.open(path, method=method) as response:
            assert_protected(response)
            if endpoint == "static" and response.status_code == 200:
                assert response.headers.get("Cache-Control") != "no-store"
                assert not EXTERNAL.search(response.get_data(as_text=True))
                assert "@import" not in response.get_data(as_text=True)
            else:
                assert response.headers["Cache-Control"] == "no-store", (method, path)
            if response.mimetype == "text/html" and not response.location:
                assert_clean_html(response)
                seen_html += 1
        if endpoint == "auth.logout" and user is not None:
            login(client, user)
    assert seen_html >= 5, "the sweep saw pages"


def _raise_with(app):
    @app.post("/boom")
    def boom():
        from flask import request

        raise RuntimeError(request.form["note"])


@pytest.mark.parametrize(
    "method, path, code, heading",
    [
        ("GET", "/no/such/page", 404, "Page not found"),
        ("GET", "/logout", 405, "Not allowed"),
        ("GET", "/cases", 403, "Not available to you"),
        ("GET", "/applications/nonexistent00000000", 404, "Page not found"),
        ("POST", "/boom", 500, "Something went wrong"),
    ],
)
def test_error_pages_are_generic(app, client, make_user, method, path, code, heading):
    """An error shows a plain page with the headers, and no trace, version or input."""
    _raise_with(app)
    login(client, make_user("applicant"))
    response = client.open(path, method=method, data={"note": "canary-typed-by-a-defender"})
    html = response.get_data(as_text=True)
    assert response.status_code == code
    assert f"<h1>{heading}</h1>" in html
    assert_protected(response)
    assert_clean_html(response)
    assert response.headers["Cache-Control"] == "no-store"
    # A form's random token (the sign-out button's) may spell anything: it is no leak.
    shown = re.sub(r'<input[^>]*name="csrf_token"[^>]*>', "", html)
    assert [leak for leak in LEAKS if leak in shown] == []
    assert not re.search(r"\b\d+\.\d+\.\d+\b", shown), "no version numbers"
    assert "canary" not in html


def test_a_crash_logs_frames_but_no_personal_data(app, client, make_user, caplog):
    """The log tells the operator where it broke, never what the defender typed."""
    _raise_with(app)
    login(client, make_user("applicant"))
    client.post("/boom", data={"note": "canary-secret-typed-by-a-defender"})
    assert "RuntimeError" in caplog.text
    assert "boom" in caplog.text
    assert "canary-secret" not in caplog.text


@pytest.mark.parametrize(
    "accept, html_tag",
    [
        ("ar", '<html lang="ar" dir="rtl">'),
        ("ar-EG,ar;q=0.9", '<html lang="ar" dir="rtl">'),
        ("fr-FR,fr;q=0.9,en;q=0.5", '<html lang="fr" dir="ltr">'),
        ("es", '<html lang="es" dir="ltr">'),
        ("en", '<html lang="en" dir="ltr">'),
        ("de", '<html lang="en" dir="ltr">'),
    ],
)
def test_pages_declare_language_and_direction(client, accept, html_tag):
    """An Arabic-speaking visitor gets a right-to-left page, error pages included."""
    for path in ("/login", "/register", "/no/such/page"):
        html = client.get(path, headers={"Accept-Language": accept}).get_data(as_text=True)
        assert html_tag in html, path


def test_a_users_chosen_language_sets_the_direction(client, make_user):
    login(client, make_user("applicant", language="ar"))
    html = client.get("/my", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html


def test_the_sign_in_page_is_small(client):
    """Over a slow link the sign-in page and its stylesheet stay far below 100 KB."""
    page = client.get("/login").get_data()
    with client.get("/static/style.css") as response:
        css = response.get_data()
    assert len(page) + len(css) < 100_000


def _stylesheet(client, path="/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'<link rel="stylesheet" href="([^"]+)">', html).group(1)


def test_a_browser_keeps_the_stylesheet_until_it_changes(app, client):
    """Every page names its stylesheet with its version (the start of the SHA-256 of its
    content): a browser keeps that address a year without asking again (on Tor, a round
    trip fewer per page). The address without the version, or with another, is asked
    again each time, as before."""
    href = _stylesheet(client)
    path, _, version = href.partition("?v=")
    content = (Path(app.static_folder) / "style.css").read_bytes()
    assert path == "/static/style.css"
    assert version == hashlib.sha256(content).hexdigest()[:16]
    with client.get(href) as kept:
        assert kept.status_code == 200 and kept.get_data() == content
        assert kept.headers["Cache-Control"] == "max-age=31536000, immutable"
    for asked_again in ("/static/style.css", "/static/style.css?v=0123456789abcdef"):
        with client.get(asked_again) as response:
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-cache", asked_again


def test_a_changed_stylesheet_has_a_new_address(app, client, tmp_path):
    """A release that changes the stylesheet gives its pages a new address for it, so no
    browser keeps the old one; the old address is then asked again each time."""
    app.static_folder = str(tmp_path)
    sheet = tmp_path / "style.css"
    sheet.write_text("body { color: black; }")
    before = _stylesheet(client)
    sheet.write_text("body { color: navy; }")
    os.utime(sheet, ns=(sheet.stat().st_atime_ns, sheet.stat().st_mtime_ns + 1_000_000_000))
    after = _stylesheet(client)
    assert before != after
    assert after.endswith(hashlib.sha256(b"body { color: navy; }").hexdigest()[:16])
    with client.get(after) as response:
        assert response.get_data() == b"body { color: navy; }"
        assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    with client.get(before) as response:
        assert response.headers["Cache-Control"] == "no-cache"


def test_a_stylesheet_that_cannot_be_read_costs_its_version_not_the_page(client, monkeypatch):
    """A stylesheet that cannot be read for a moment (a release being put in place) leaves
    every page shown, linking it without a version, to be asked again."""

    def unreadable(*_args):
        raise PermissionError("the file is being replaced")

    monkeypatch.setattr(static, "_digest", unreadable)
    response = client.get("/login")
    assert response.status_code == 200
    assert '<link rel="stylesheet" href="/static/style.css">' in response.text
