"""Promises 1 to 5: pages work without script, carry the security headers, load nothing
from another host, stay small, and set the language and its direction.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import re
from pathlib import Path

from tests.conftest import (
    CSP_PARTS,
    apply_step_by_step,
    login,
    save_first_step,
    sign_up,
    signed_in,
    start_application,
)

from .common import PDF, RELOCATION, ROOT, add_crash_route, get_closed, upload_document


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
    seen(client.get("/apply"))
    uid = apply_step_by_step(client, "relocation", {**RELOCATION, "consent_story": "y"}, seen=seen)
    assert len(pages) >= 18  # every step of the form, and the last one that sends
    assert seen(client.post(f"/applications/{uid}", data={"body": "Any news?"})).status_code == 302
    assert seen(upload_document(client, uid, PDF)).status_code == 302
    assert seen(client.post(f"/applications/{uid}/consents/story/withdraw")).status_code == 302
    case_page = seen(client.get(f"/applications/{uid}")).get_data(as_text=True)
    assert "Any news?" in case_page and "quote.pdf" in case_page
    assert "Your consent is withdrawn" in case_page
    seen(client.get("/my"))
    partner = signed_in(app, make_user("partner"))
    seen(partner.get("/apply"))
    referral = {"category": "medical", "consent": "y", "consent_method": "in_person"}
    chosen = seen(partner.get("/apply/new", query_string=referral))
    referred = seen(save_first_step(partner, chosen)).location.split("/")[2]
    seen(partner.get(f"/applications/{referred}/steps/urgency"))
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
    add_crash_route(app)
    login(client, make_user("applicant"))
    responses = {
        "page": get_closed(client, "/my"),
        "redirect": get_closed(client, "/"),
        "not found": get_closed(client, "/no/such/page"),
        "not allowed": get_closed(client, "/logout"),
        "crash": client.post("/promise-crash"),
        "static": get_closed(client, "/static/style.css"),
        "missing static": get_closed(client, "/static/no-such.css"),
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
    pages = [get_closed(client, "/login"), get_closed(client, "/register")]
    login(client, make_user("manager"))
    pages += [get_closed(client, "/cases"), get_closed(client, "/pools")]
    for response in pages:
        assert response.status_code == 200
        assert not LOADS_ELSEWHERE.search(response.get_data(as_text=True)), response.request.path


def test_promise_04_applicant_pages_stay_under_100_kb_with_their_assets(client, make_user, fund):
    """Over a slow link every applicant page, with the stylesheet and anything else it
    loads, stays under 100 KB."""
    paths = ["/login", "/register"]
    sizes = {}

    def weigh(path):
        response = get_closed(client, path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assets = set(re.findall(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)["']""", html))
        assert assets, path
        sizes[path] = len(response.get_data()) + sum(
            len(get_closed(client, a).get_data()) for a in assets
        )

    for path in paths:
        weigh(path)
    login(client, make_user("applicant"))
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "save": "1"})
    for path in ("/my", "/apply", f"/applications/{uid}/edit", f"/applications/{uid}/steps/review"):
        weigh(path)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    client.post(f"/applications/{uid}", data={"body": "A message " * 200})
    weigh(f"/applications/{uid}")
    assert len(sizes) == 7
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
