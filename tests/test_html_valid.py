"""Every page each role reaches is valid HTML, as the Nu Html Checker (vnu.jar) reads it.

The demo world (every status of a case, grants with plans, payments and reversals, pools
with rows) and a few steps on top of it (documents, notes, other funders, a statement with
mismatches, a purged case) give every section of every page something to show. Visitors,
applicants, partners, reviewers, managers, finance, donors and admins then go through the
pages as a browser would, with CSRF on as deployed: each form is read off its page and
sent back refused and accepted, so that its errors and the flashes after it are on the
pages too; error pages included. The checker reads every page in one run (its JVM takes
seconds to start) and the test lists every error with its page.

Markup does not depend on the database, so this runs on SQLite only. vnu.jar comes from
npm (package.json, installed by `make setup`), Java from Debian: without either the test
is skipped locally, and fails under CI=true.
"""

import functools
import io
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import abort, has_request_context, request
from werkzeug.datastructures import MultiDict

from config import Config
from hrdfund import create_app, demo
from hrdfund.alerts import outbox
from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.auth import attempts, guard
from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund, PartnerOrganisation, Role, User
from hrdfund.cases import documents, steps
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core import geo
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db, sqlite_begin_statement
from hrdfund.core.money import CURRENCIES, currency_name
from hrdfund.core.moved import MOVED
from hrdfund.directory.csv_file import COLUMNS as csv_columns
from hrdfund.grants.models import Grant, GrantStatus
from hrdfund.ledger.models import Contribution, Disbursement
from hrdfund.ops import retention
from hrdfund.pools import services as pools
from hrdfund.pools.models import Donor, ExchangeRate, Pool
from hrdfund.reports import explanations
from hrdfund.reports.grid import Grid
from hrdfund.reports.models import IssuedFigures
from tests.catalogs import applicant_side, catalog, untranslated
from tests.conftest import (
    PASSWORD,
    MoneyWorld,
    RequestIsolatedClient,
    make_config,
    missing_infrastructure,
    pay,
    totp_code,
)
from tests.live import page_forms
from tests.pdfs import PDF
from tests.promises.common import RELOCATION as COMPLETE_RELOCATION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VNU_JAR = os.path.join(ROOT, "node_modules", "vnu-jar", "build", "dist", "vnu.jar")
#: Cases of the demo world: its showcase (every status, for every demo applicant and the
#: demo partner) and some more.
SCALE = 40
#: The heading of the page a request refused for its CSRF token gets.
REFUSED = "Something in the request was not right"
#: What a page shows when a form was refused: errors beside fields, above the form, or in
#: a flash.
ERROR_SHOWN = re.compile(r'class="(errors|error-summary|flash flash-error)"')
#: Endpoints that answer with a file, not a page.
DOWNLOADS = frozenset(
    {
        "static",
        "auth.qr",
        "cases.download",
        "network.shared_document",
        "network.referral_packet",
        "network.answer_packet",
        "network.ask_partner",
        "disbursements.proof",
        "reports.donor_report",
        "reports.staff_report",
        "directory.export",
        "reports.export_queue",
        "reports.export_follow_up",
        "reports.export_coverage",
    }
)
#: Old addresses that only redirect to their new page (tests/test_moved_urls.py).
MOVED_ENDPOINTS = frozenset(moved.endpoint for moved in MOVED)
#: A complete relocation application, as a defender types it, urgent and with consents.
RELOCATION = {
    **COMPLETE_RELOCATION,
    "defender_name": "Html Check Defender",
    "urgency": "urgent",
    "urgency_reason": "Threats this week",
    "consent_story": "y",
    "consent_referral": "y",
}
S = ApplicationStatus


def _vnu_command():
    java = shutil.which("java")
    if java is None:
        missing_infrastructure("java is not installed (Debian: default-jre-headless)")
    if not os.path.exists(VNU_JAR):
        missing_infrastructure("vnu.jar is missing: run `make setup` (npm ci)")
    # One short run: the first tier of the JIT and the serial collector start it three
    # times faster; that tier's larger frames need a deeper stack than the default.
    return [java, "-Xss8m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", VNU_JAR]


class Pages:
    """The HTML pages collected, and the endpoints the requests reached."""

    def __init__(self):
        self.pages = []
        self.endpoints = set()
        #: The statements that wrote to the database while a GET was answered, by endpoint.
        self.get_writes = {}

    def watch(self, _conn, _cursor, statement, _parameters, _context, _many):
        """Engine hook: keep each write a GET request makes, with its endpoint."""
        if not has_request_context() or request.method not in ("GET", "HEAD"):
            return
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = re.search(r"(?:INTO|UPDATE|FROM)\s+\"?(\w+)", statement, re.I)
            what = f"{verb} {table.group(1) if table else '?'}"
            # How the transaction writing it began: with the write lock, or deferred (an
            # upgrade that can fail when another writer got there first).
            self.get_writes.setdefault(request.endpoint, set()).add(
                (what, sqlite_begin_statement())
            )

    def add(self, label, response):
        if response.mimetype == "text/html":
            self.pages.append((label, response.get_data(as_text=True)))


class Browser:
    """A test client used as a browser would be: it reads the forms off the page and
    sends them back as they are, CSRF token included, with what the user changed."""

    def __init__(self, app, pages, who):
        self.client = app.test_client()
        self.pages = pages
        self.who = who

    def get(self, path, status=200):
        response = self.client.get(path, follow_redirects=True)
        self._keep("GET", path, response, status)
        return response

    def html(self, path):
        return self.get(path).get_data(as_text=True)

    def form(self, page, action, names=(), html=None):
        """The form of the page at ``page`` (or of ``html``, a page a form answered) that
        posts to ``action`` (the first one with fields of all ``names``, when several do)."""
        found = [
            f
            for f in page_forms(html if html is not None else self.html(page))
            if urllib.parse.urlsplit(f.action).path == action
        ]
        assert found, f"{self.who}: no form on {page} posts to {action}"
        for form in found:
            if set(names) <= form.names | {name for name, _value in form.fields}:
                return form
        raise AssertionError(f"{self.who}: no form {action} on {page} has {sorted(names)}")

    def submit(self, page, action, values=None, refused=False, blank=False, files=None, html=None):
        """Send the form of ``page`` (or of ``html``, a page a form answered) that posts to
        ``action``, with ``values`` changed; ``blank`` empties every field a person types
        into first. A ``refused`` form must answer 303 See Other to its page, which shows
        its errors."""
        values = dict(values or {})
        form = self.form(page, action, set(values) - {"save", "submit"}, html=html)
        # A form sent by GET stores nothing: it carries no token into its address.
        by_get = form.method == "get"
        tokens = [value for name, value in form.fields if name == "csrf_token"]
        assert len(tokens) == (0 if by_get else 1), (
            f"{self.who}: the form {action} on {page} has {tokens}"
        )
        if blank:
            for name in form.typed:
                values.setdefault(name, "")
        data = MultiDict(
            [(name, values.pop(name, value)) for name, value in form.fields] + list(values.items())
        )
        for name in form.files:
            content = (files or {}).get(name)
            data.add(name, (io.BytesIO(content or b""), "upload.pdf" if content else ""))
        if by_get:
            response = self.client.get(form.action, query_string=data, follow_redirects=True)
        else:
            response = self.client.post(form.action, data=data, follow_redirects=True)
        assert REFUSED not in response.get_data(as_text=True), (
            f"{self.who}: the form {action} on {page} was refused for its token"
        )
        self._keep("GET" if by_get else "POST", action, response)
        if refused and by_get:
            # A page read: its errors are shown at its own address, nothing kept.
            assert response.status_code == 200 and not response.history, (
                f"{self.who}: the refused form {action} on {page} answered {response.status_code}"
            )
        elif refused:
            first = response.history[0] if response.history else response
            assert first.status_code == 303 and response.request.method == "GET", (
                f"{self.who}: the refused form {action} on {page} answered "
                f"{first.status_code}, not 303 to its page"
            )
        shown = ERROR_SHOWN.search(response.get_data(as_text=True))
        assert bool(shown) == refused, (
            f"{self.who}: the form {action} on {page} was {'not ' if refused else ''}refused"
            + "\n"
            + response.get_data(as_text=True)[-3000:]
        )
        return response

    def home(self):
        """The role's home page, and every page its menu links to."""
        html = self.html("/")
        menu = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
        for path in re.findall(r'<a href="([^"]+)"', menu.group(1) if menu else ""):
            self.get(path)

    def _keep(self, method, path, response, status=None):
        """Keep the page; a page reached by a form is any page short of a server error."""
        code = response.status_code
        landed = response.request.path
        label = f"{self.who}: {method} {path}" + (f" -> {landed}" if landed != path else "")
        label += f" ({code})"
        assert code == status if status else code < 500, (
            label + "\n" + response.get_data(as_text=True)[:800]
        )
        self.pages.add(label, response)

    def errors(self):
        """The error pages as this visitor or role gets them (with its menu): an address
        that leads nowhere, a method a route does not take, too many requests, a failure."""
        self.get("/nowhere", status=404)
        self.get("/logout", status=405)
        self.get("/html-check/429", status=429)
        self.get("/html-check/500", status=500)
        self.get("/html-check/damaged-document", status=500)


def _user(login):
    return db.session.execute(sa.select(User).where(User.login == login)).scalar_one()


def _cases(**where):
    query = sa.select(Application).order_by(Application.id)
    for name, value in where.items():
        query = query.where(getattr(Application, name) == value)
    return db.session.execute(query).scalars().all()


def _by_status(cases):
    seen = {}
    for case in cases:
        seen.setdefault(case.status, case)
    return seen


def _case_page(case):
    return f"/applications/{case.uid}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo world served with CSRF on, a route for the 429 and 500 pages, and the
    endpoints every request reached."""
    folder = tmp_path_factory.mktemp("html")
    config = make_config(
        f"sqlite:///{folder / 'hrdfund.sqlite3'}",
        folder / "instance",
        WTF_CSRF_ENABLED=True,
        # Short pages, so that the pagers show both their links.
        PAGE_SIZE=8,
    )
    app = create_app(config)
    app.test_client_class = RequestIsolatedClient
    pages = Pages()

    def status(code):
        if code == 500:
            raise RuntimeError("a page that fails")
        abort(code)

    def damaged():
        raise documents.DocumentDamaged("html-check", "a page that fails")

    app.add_url_rule("/html-check/<int:code>", "html_check_status", status)
    app.add_url_rule("/html-check/damaged-document", "html_check_damaged", damaged)
    public = pytest.MonkeyPatch()
    public.setattr(
        guard,
        "PUBLIC_ENDPOINTS",
        guard.PUBLIC_ENDPOINTS | {"html_check_status", "html_check_damaged"},
    )

    @app.after_request
    def reached(response):
        if request.endpoint:
            pages.endpoints.add(request.endpoint)
        return response

    with app.app_context():
        db.create_all()
        sa.event.listen(db.engine, "before_cursor_execute", pages.watch)
        demo.load_demo_data(scale=SCALE)
        db.session.commit()
        with open(os.path.join(app.instance_path, "demo-accounts.json")) as fh:
            passwords = {a["login"]: a["password"] for a in json.load(fh)}
        site = Site(app, pages, passwords)
        site.paying = _paying_case()
        yield site
        db.session.remove()
        db.engine.dispose()
    public.undo()


class Site:
    def __init__(self, app, pages, passwords):
        self.app = app
        self.pages = pages
        self.passwords = passwords
        #: The code an administrator was handed when resetting a login's second factor.
        self.handed = {}

    def browser(self, who):
        return Browser(self.app, self.pages, who)

    def sign_in(self, login, password=None):
        """A browser signed in as ``login`` through the forms, second factor included."""
        user = _user(login)
        browser = self.browser(login)
        password = password or self.passwords[login]
        browser.submit("/login", "/login", {"login": login, "password": password})
        if user.needs_totp:
            if login in self.handed:  # reset since: the administrator's code first
                code = self.handed.pop(login)
                browser.submit("/login/code/reset", "/login/code/reset", {"code": code})
                db.session.refresh(user)
            browser.submit("/login/code", "/login/code", {"code": totp_code(user)})
        return browser


def _paying_case():
    """A grant of demo-applicant1 in three payments, from a pool of its own: whatever the
    demo holds, the applicant has payments to confirm and a report to send, and finance
    payments for a statement to report short and failed, to reverse and to make again."""
    manager, finance = _user("demo-manager1"), _user("demo-finance1")
    donor = db.session.execute(sa.select(Donor).order_by(Donor.id).limit(1)).scalar_one()
    pool = pools.create_pool(donor, manager, "Html Check Pool", "EUR")
    pools.record_contribution(pool, manager, Decimal("5000"), "EUR", utcnow().date())
    db.session.commit()
    world = MoneyWorld.around(pool.fund, _user("demo-applicant1"), _user("demo-reviewer1"), manager)
    world.finance = finance
    grant = world.grant("900", pool=pool, name="Html Check Defender")
    world.plan(grant, kind="tranches", count=3, starts_on=utcnow().date())
    for n in (1, 2, 3):
        pay(world, grant, "300", instalment=n, paid_on=utcnow().date(), reference=f"HTML-CHECK-{n}")
    return _case_page(grant.application)


def _visitor(site):
    v = site.browser("visitor")
    v.get("/login")
    v.get("/register")
    v.get("/funds")
    v.get("/before-you-apply")
    for fund in db.session.scalars(sa.select(Fund).order_by(Fund.id)):
        v.get(f"/before-you-apply?fund={fund.uid}")
    # The language chosen on the sign-in page: that page again, right to left, then back.
    v.submit("/login", "/language", {"language": "ar"})
    v.submit("/login", "/language", {"language": "en"})
    v.submit("/login", "/login", {"login": "nobody", "password": "wrong"}, refused=True)
    v.submit("/register", "/register", {"password": "short"}, refused=True)
    v.submit(
        "/register", "/register", {"password": "short", "password_again": "short"}, refused=True
    )
    v.submit("/register", "/register", {"login": "ab", "password": PASSWORD}, refused=True)
    v.get("/login/code")  # no pending sign-in: back to the sign-in page
    v.get("/html-check/403", status=403)
    v.errors()
    site.pages.add("visitor: POST /login without its token", v.client.post("/login", data={}))
    size = site.app.config["MAX_CONTENT_LENGTH"] + 1
    big = v.client.post("/register", data={"contact": "x" * size})
    assert big.status_code == 413
    site.pages.add("visitor: POST /register too large", big)
    # No password can be checked just now: the busy page.
    data = dict(v.form("/login", "/login").fields) | {"login": "nobody", "password": "wrong"}
    site.app.config["PASSWORD_CHECK_WAIT_SECONDS"] = 0.01
    with attempts._HASHING:
        busy = v.client.post("/login", data=data)
    site.app.config["PASSWORD_CHECK_WAIT_SECONDS"] = 2
    assert busy.status_code == 503
    site.pages.add("visitor: POST /login while busy (503)", busy)
    # The login name the page made was taken meanwhile: the account gets another one.
    newcomer = site.browser("newcomer")
    form = newcomer.form("/register", "/register")
    auth_services.create_user("applicant", dict(form.fields)["login"], PASSWORD)
    db.session.commit()
    data = dict(form.fields) | {"password": PASSWORD, "password_again": PASSWORD}
    changed = newcomer.client.post("/register", data=data)
    assert "with another login name" in changed.get_data(as_text=True)
    site.pages.add("newcomer: POST /register, its login taken meanwhile", changed)
    # The first session's list says the login name, until it is noted down.
    newcomer.get("/my")
    newcomer.submit("/my", "/my/login-noted")


def _second_step(site):
    """Enrolling (with its QR code and key), a wrong code, the recovery codes shown once
    and renewed, then the code and recovery pages of an enrolled account."""
    fund_id = db.session.execute(sa.select(Pool.fund_id).limit(1)).scalar_one()
    staff = auth_services.create_user("reviewer", "new-reviewer", PASSWORD, fund_id=fund_id)
    db.session.commit()
    b = site.browser("enrolling reviewer")
    b.submit("/login", "/login", {"login": staff.login, "password": PASSWORD})
    b.submit("/login/code", "/login/code", {"code": "000000"}, refused=True)
    b.submit("/login/code", "/login/code", {"code": totp_code(staff)})
    b.submit("/account", "/account/recovery-codes", {"codes-password": PASSWORD})
    b.submit("/account", "/account/recovery-codes", {"codes-password": "wrong"}, refused=True)
    again = site.browser("enrolled reviewer")
    again.submit("/login", "/login", {"login": staff.login, "password": PASSWORD})
    again.get("/login/recovery")
    again.submit("/login/recovery", "/login/recovery", {"code": "not-a-code"}, refused=True)
    # Reset by an administrator: their code before the new key.
    handed = auth_services.reset_second_factor(staff, staff)
    db.session.commit()
    reset = site.browser("reset reviewer")
    reset.submit("/login", "/login", {"login": staff.login, "password": PASSWORD})
    reset.get("/login/code/reset")
    reset.submit("/login/code/reset", "/login/code/reset", {"code": "AAAAA"}, refused=True)
    reset.submit("/login/code/reset", "/login/code/reset", {"code": handed})


def _applicant(site):
    a = site.sign_in("demo-applicant1")
    a.home()
    mine = _cases(applicant_id=_user("demo-applicant1").id)
    for case in mine:
        a.get(_case_page(case))
    a.submit("/apply", "/apply/new", refused=True)
    # Choosing the kind of support opens the first step; saving it opens the draft.
    first = a.submit("/apply", "/apply/new", {"category": "relocation"}).get_data(as_text=True)
    a.submit("/apply", "/apply/new", {"defender_name": "x" * 121}, refused=True, html=first)
    shown = a.submit("/apply", "/apply/new", {"country": "KE"}, html=first).request.path
    draft = shown.rsplit("/steps/", 1)[0]
    review = f"{draft}/steps/review"
    a.submit(review, review, refused=True)  # what sending still needs, each with its link
    budget = f"{draft}/steps/budget"
    a.submit(budget, budget, {"budget-0-amount": "-5", "budget-1-amount": "1.234"}, refused=True)
    edit = f"{draft}/edit"
    a.submit(edit, edit, {"budget-0-amount": "-5", "save": "y"}, refused=True)
    a.submit(edit, edit, {"defender_work": "Land rights", "submit": "y"}, refused=True)
    for step in steps.STEPS:
        page = f"{draft}/steps/{step}"
        a.submit(page, page, {k: v for k, v in RELOCATION.items() if k in a.form(page, page).names})
    a.submit(edit, edit, {**RELOCATION, "save": "y"})
    case_page = a.submit(review, review).request.path
    a.submit(case_page, f"{case_page}/documents", refused=True)
    a.submit(case_page, f"{case_page}/documents", files={"file": PDF})
    a.submit(case_page, case_page, {"body": ""}, refused=True)
    a.submit(case_page, case_page, {"body": "A word for the fund"})
    consents = f"{case_page}/consents/story"
    a.submit(case_page, f"{consents}/withdraw")
    a.submit(case_page, f"{consents}/give")
    paying = site.paying
    a.submit(paying, f"{paying}/report", refused=True)
    receipt = next(f.action for f in page_forms(a.html(paying)) if f.action.endswith("/receipt"))
    a.submit(paying, receipt, {"answer": "less", "amount": "100000000"}, refused=True)
    a.submit(paying, receipt, {"answer": "received"})
    a.submit(paying, receipt, {"answer": "less", "amount": "0.50", "note": "Kept by the agent"})
    a.submit(paying, f"{paying}/report", {"felt_safer": "yes", "continued_work": "unsure"})
    a.get("/account")
    a.submit("/account", "/account/password", blank=True, refused=True)
    a.submit("/account", "/account/notices", {"contact": "x" * 201}, refused=True)
    a.submit("/account", "/account/notices", {"contact": "safe@mail.example"})
    a.get("/cases", status=403)
    # Ending what was started: a document taken out, a draft deleted, a case withdrawn.
    document = next(
        urllib.parse.urlsplit(link).path
        for link in re.findall(r'href="([^"]+/remove)"', a.html(case_page))
    )
    a.submit(document, document)
    chosen = a.submit("/apply", "/apply/new", {"category": "medical"}).get_data(as_text=True)
    made = a.submit("/apply", "/apply/new", {"country": "KE"}, html=chosen).request.path
    unsent = made.rsplit("/steps/", 1)[0]
    a.submit(f"{unsent}/delete", f"{unsent}/delete")
    from hrdfund.network.models import Referral

    # One no other fund is asked about: the referrals' pages are read further on.
    referred = set(db.session.execute(sa.select(Referral.application_id)).scalars())
    waiting = next(
        c for c in mine if c.status in (S.SUBMITTED, S.IN_REVIEW) and c.id not in referred
    )
    withdraw = f"{_case_page(waiting)}/withdraw"
    a.submit(withdraw, withdraw, {"reason": "x" * 5001}, refused=True)
    a.submit(withdraw, withdraw, {"reason": "I am safe now"})
    a.errors()
    return case_page


def _partner(site):
    p = site.sign_in("demo-partner1")
    p.home()
    org = _user("demo-partner1").partner_organisation_id
    for case in _cases(partner_organisation_id=org):
        p.get(_case_page(case))
        if case.status == S.DRAFT:
            p.get(f"{_case_page(case)}/edit")
    sent = _case_page(next(c for c in _cases(partner_organisation_id=org) if c.status != S.DRAFT))
    p.submit(sent, f"{sent}/label", {"label-label": "x" * 81}, refused=True)
    p.submit(sent, f"{sent}/label", {"label-label": "Amina, Kisumu office"})
    p.get("/referrals")
    change = next(f.action for f in page_forms(p.html(sent)) if "/consents/referral/" in f.action)
    change = urllib.parse.urlsplit(change).path
    p.submit(sent, change, {"referral-how": ""}, refused=True)
    p.submit(sent, change, {"referral-how": "in_writing"})
    p.submit("/apply", "/apply/new", {"category": "medical"}, refused=True)
    chosen = {"category": "medical", "consent": "y", "consent_method": "phone"}
    first = p.submit("/apply", "/apply/new", chosen)
    p.submit(
        "/apply", "/apply/new", {"defender_name": "Defender P."}, html=first.get_data(as_text=True)
    )
    p.get("/payments", status=403)
    p.errors()


def _reviewer(site, sent, purged):
    r = site.sign_in("demo-reviewer1")
    r.home()
    r.get("/cases?status=in_review&category=relocation&urgency=urgent&country=KE&mine=1")
    r.get("/cases?sort=amount&page=2")
    r.get("/cases?country=Atlantis")
    r.get("/cases?pool=1&sort=newest")
    for case in _by_status(_cases()).values():
        r.get(_case_page(case))
    r.get(purged)
    # The case the applicant sent: taking it puts it in review.
    r.submit(sent, f"{sent}/assign")
    r.submit(sent, f"{sent}/notes", blank=True, refused=True)
    r.submit(sent, f"{sent}/notes", {"note-body": "Checked with the partner"})
    r.submit(sent, f"{sent}/cofunding", blank=True, refused=True)
    other = {"cofunding-funder": "Another Fund", "cofunding-amount": "100"}
    r.submit(sent, f"{sent}/cofunding", other)
    r.submit(sent, f"{sent}/network")
    r.submit(sent, f"{sent}/question", blank=True, refused=True)
    r.submit(sent, f"{sent}/conflict", refused=True)
    reference = next(f for f in page_forms(r.html(sent)) if "/references/" in f.action)
    status_field = next(name for name, _v in reference.fields if name.endswith("-status"))
    r.submit(sent, reference.action, {status_field: "sure"}, refused=True)
    r.submit(sent, reference.action, {status_field: "confirmed"})
    r.submit(sent, f"{sent}/recommend", blank=True, refused=True)
    # The short form under an urgent row of the queue, sent blank: refused under its row.
    urgent = "/cases?urgency=urgent"
    quick = [f.action for f in page_forms(r.html(urgent)) if "/quick-recommend" in f.action]
    assert quick, "the queue offers an urgent case's short form"
    r.submit(urgent, urllib.parse.urlsplit(quick[0]).path, blank=True, refused=True)
    # The search: from the box of a page to the case it names; nothing found; by a name.
    code = db.session.execute(
        sa.select(Application.code).where(Application.uid == sent.rsplit("/", 1)[1])
    ).scalar_one()
    assert r.submit("/cases", "/search", {"q": code}).request.path == sent
    r.get("/search")
    r.submit("/search", "/search", {"q": "HRD999-26-0001"})
    r.submit("/search", "/search", {"q": "Someone Nobody Named", "country": "KE"})
    # A name two cases share (this one and the paying case): the answer lists both.
    name = {"q": RELOCATION["defender_name"], "country": RELOCATION["country"]}
    listed = r.submit("/search", "/search", name).get_data(as_text=True)
    assert listed.count('class="case-uid"') >= 2, "the search lists the cases it found"
    r.get("/coverage")
    r.get("/coverage?page=2")
    r.get("/account")
    r.get("/payments", status=403)
    r.errors()
    r.submit(sent, f"{sent}/conflict", {"conflict-confirm": "y"})


def _manager(site, purged):
    m = site.sign_in("demo-manager1")
    m.home()
    cases = _by_status(_cases())
    for case in cases.values():
        m.get(_case_page(case))
    m.get(purged)
    case = cases[S.RECOMMENDED]
    recommended = _case_page(case)
    approve = f"{recommended}/approve"
    m.submit(recommended, approve, blank=True, refused=True)
    m.submit(recommended, f"{recommended}/reject", blank=True, refused=True)
    m.submit(recommended, f"{recommended}/assign", {"assign-reviewer": "0"}, refused=True)
    today = utcnow().date()
    # Today's rate to euros, so that the euro pools fit and the amount has its worth, and
    # one to kronor; a second manager confirms both (the first's own rate weighs nothing
    # for the first), and the first withdraws a far one still waiting.
    second = site.sign_in("demo-manager2")
    for currency in {case.currency, "SEK"} - {"EUR"}:
        rate = Decimal(demo.PER_USD["EUR"]) / Decimal(demo.PER_USD[currency])
        entry = {"rate-on_date": today.isoformat(), "rate-base": currency, "rate-quote": "EUR"}
        entry |= {"rate-rate": f"{rate:.8f}", "rate-source": "Central bank"}
        m.submit("/pools/rates", "/pools/rates", entry)
        second.submit("/pools/rates", f"/pools/rates/{_rate_uid(today, currency)}/confirm")
    far = {"rate-on_date": (today - timedelta(days=1)).isoformat(), "rate-base": "SEK"}
    far |= {"rate-quote": "EUR", "rate-rate": "1000", "rate-source": "A typo"}
    m.submit("/pools/rates", "/pools/rates", far)
    m.submit("/pools/rates", f"/pools/rates/{_rate_uid(today - timedelta(days=1), 'SEK')}/refuse")
    today = today.isoformat()
    pools = m.form(recommended, approve).options["approve-draws-0-pool"]
    fitting = next(value for value, _label in pools if value)
    draw = {"approve-draws-0-pool": fitting, "approve-draws-0-amount": "1000"}
    m.submit(recommended, approve, {"approve-amount": "1000", **draw})
    m.submit(recommended, f"{recommended}/plan", blank=True, refused=True)
    m.submit(recommended, f"{recommended}/plan", {"plan-starts_on": today})
    m.submit(recommended, f"{recommended}/plan/move", blank=True, refused=True)
    later = (date.fromisoformat(today) + timedelta(days=10)).isoformat()
    m.submit(recommended, f"{recommended}/plan/move", {"move-first_due_on": later})
    m.submit(site.paying, f"{site.paying}/close", blank=True, refused=True)
    m.get("/pools")
    for pool in db.session.execute(
        sa.select(Pool).where(Pool.fund_id == _user("demo-manager1").fund_id).order_by(Pool.id)
    ).scalars():
        m.get(f"/pools/{pool.uid}")
    pool = db.session.execute(sa.select(Pool).order_by(Pool.id).limit(1)).scalar_one()
    # Its lists kept to dates, an older page of each, and dates that cannot be read.
    older = "&".join(
        f"{name}_page=2" for name in ("contributions", "allocations", "releases", "payments")
    )
    m.get(f"/pools/{pool.uid}?from=2025-01-01&to={today}&{older}")
    m.get(f"/pools/{pool.uid}?from=31/12/2025&to={today}")
    m.get("/pools/new")
    m.submit("/pools/new", "/pools/donors", blank=True, refused=True)
    m.submit("/pools/new", "/pools/donors", {"donor-name": "Html Check Donor"})
    m.submit("/pools/new", "/pools", blank=True, refused=True)
    page = f"/pools/{pool.uid}"
    m.submit(page, f"{page}/contributions", blank=True, refused=True)
    contribution = db.session.execute(
        sa.select(Contribution)
        .where(Contribution.pool_id == pool.id, Contribution.reversal_of_id.is_(None))
        .order_by(Contribution.id.desc())
        .limit(1)
    ).scalar_one()
    m.submit(page, f"/pools/contributions/{contribution.uid}/reverse", blank=True, refused=True)
    _variances(m)
    m.get("/pools/rates")
    m.submit("/pools/rates", "/pools/rates", blank=True, refused=True)
    m.get("/payments/follow-up")
    m.get("/reports/internal")
    m.get(f"/reports/internal?period={utcnow().year - 1}")
    m.get("/coverage")
    m.get("/account")
    m.get("/payments", status=403)
    m.errors()
    # The second manager confirms the demo's approval waiting for them from the dashboard.
    confirm = [f.action for f in page_forms(second.html("/dashboard")) if "/confirm-" in f.action]
    assert confirm, "the dashboard offers the second manager an approval to confirm"
    second.submit("/dashboard", confirm[0])
    second.errors()


def _variances(m):
    """A pool with a variance of 10% or more to explain in an issued period (six legal
    grants of January 2001, 6,000 committed and 3,000 paid: budget against actual as a
    report would have issued it): its page, the explanation refused empty, then kept."""
    pool = db.session.execute(
        sa.select(Pool)
        .where(Pool.fund_id == _user("demo-manager1").fund_id)
        .order_by(Pool.id)
        .limit(1)
    ).scalar_one()
    month = "2001-01"
    grid = Grid({month: ()}, {"category": ["legal"]}, ("grants",), ("budget", "actual"))
    for label in ("total", ("category", "legal")):
        grid.put(month, label, {"grants": 6, "budget": Decimal(6000), "actual": Decimal(3000)})
    grid.listed[(month, "category")] = ["legal"]
    grid.population[month] = 6
    budget = grid.protect().issued_figures(month)
    db.session.add(
        IssuedFigures(
            pool_id=pool.id, year=2001, period=month, figures=json.dumps({"budget": budget})
        )
    )
    db.session.commit()
    assert explanations.flagged(pool.id)
    page = f"/pools/{pool.uid}"
    action = f"/reports/pools/{pool.uid}/variances"
    m.submit(page, action, blank=True, refused=True)
    m.submit(page, action, {"variance-text": "Instalments of the year fall due next year."})


def _rate_uid(on, base, quote="EUR"):
    return db.session.execute(
        sa.select(ExchangeRate.uid).where(
            ExchangeRate.on_date == on, ExchangeRate.base == base, ExchangeRate.quote == quote
        )
    ).scalar_one()


def _finance(site):
    f = site.sign_in("demo-finance1")
    f.home()
    f.submit("/payments", "/payments/statements", refused=True)
    f.submit(
        "/payments", "/payments/statements", files={"statement": b"not,a,statement"}, refused=True
    )
    # A bank reports one payment of the case short and another failed, which reverses it.
    today = utcnow().date().isoformat()
    lines = [f"HTML-CHECK-2,1.00,EUR,{today},short", f"HTML-CHECK-3,0,EUR,{today},failed"]
    statement = ("reference,amount,currency,date,status\n" + "\n".join(lines) + "\n").encode()
    f.submit("/payments", "/payments/statements", files={"statement": statement})
    # The payments of some dates, an older page of them, and dates that cannot be read.
    f.get(f"/payments?from=2025-01-01&to={today}&page=2")
    f.get("/payments?from=2025-02-30")
    f.get("/payments?proof=missing")
    cases = _by_status(_cases())
    for case in cases.values():
        f.get(_case_page(case), status=None)
    paying = site.paying
    f.get(paying)
    f.submit(paying, f"{paying}/payments", blank=True, refused=True)
    reverse = next(form for form in page_forms(f.html(paying)) if form.action.endswith("/reverse"))
    f.submit(paying, reverse.action, blank=True, refused=True)
    f.submit(paying, reverse.action, {"reverse-reason": "Bounced"})
    # A proof that came later: refused without its file (on the row it was sent for), then
    # added.
    proof = next(form for form in page_forms(f.html(paying)) if form.action.endswith("/proof"))
    f.submit(paying, proof.action, blank=True, refused=True)
    f.submit(paying, proof.action, files={"proof-proof": PDF})
    paid = {"pay-payee_details": "Host organisation account", "pay-amount_paid": "10"}
    paid["pay-paid_on"] = today
    f.submit(paying, f"{paying}/payments", paid, files={"pay-proof": PDF})
    assert "/proof" in f.html(paying), "the payment's proof is listed"
    # Two payments at a rate far from the table: held for a second person.
    held = {**paid, "pay-currency_paid": "USD", "pay-rate": "5", "pay-rate_source": "Bank slip"}
    held["pay-rate_reason"] = "The rate the bank applied"
    for _ in range(2):
        f.submit(paying, f"{paying}/payments", held)
    assert "Payments waiting for a second person" in f.html(paying)
    f.get("/pools")
    for pool in db.session.execute(
        sa.select(Pool).where(Pool.fund_id == _user("demo-manager1").fund_id).order_by(Pool.id)
    ).scalars():
        f.get(f"/pools/{pool.uid}")
    f.get("/pools/rates")
    f.submit("/pools/rates", "/pools/rates", blank=True, refused=True)
    f.get("/payments/follow-up")
    f.submit("/payments/follow-up", "/search", {"q": "HTML-CHECK-2"})
    # The payee's report of a payment received short, resolved (refused once).
    resolve = next(
        form.action
        for form in page_forms(f.html("/payments/follow-up"))
        if form.action.endswith("/resolve")
    )
    f.submit("/payments/follow-up", resolve, {"resolve-outcome": "vanished"}, refused=True)
    f.submit("/payments/follow-up", resolve, {"resolve-outcome": "contacted"})
    # The grants to pay, and a grant's payment page reached from them, refused once.
    f.get("/payments/to-pay")
    f.get(f"{paying}/pay")
    f.submit(f"{paying}/pay", f"{paying}/payments", blank=True, refused=True)
    f.get("/payments/export")
    f.get("/payments/export.csv?start=2026-03-01&end=2026-02-01", status=400)
    f.get("/search")
    f.get("/coverage")
    f.get("/account")
    f.get("/cases", status=403)
    f.errors()


def _second_person(site):
    """A manager finds the held payments on Follow-up, refuses one (without a reason
    first) and confirms the other; finance then sees the refusal."""
    m = site.sign_in("demo-manager1")
    m.get("/payments/follow-up")
    paying = site.paying
    forms = page_forms(m.html(paying))
    refuse = next(form.action for form in forms if form.action.endswith("/refuse"))
    confirm = [form.action for form in forms if form.action.endswith("/confirm")][-1]
    m.submit(paying, refuse, blank=True, refused=True)
    m.submit(paying, refuse, {"refuse-reason": "Not the bank's rate"})
    m.submit(paying, confirm)
    site.sign_in("demo-finance1").get(paying)


def _donor(site):
    d = site.sign_in("demo-donor1")
    d.home()
    d.get("/account")
    d.get("/pools", status=403)
    d.errors()


def _admin(site):
    a = site.sign_in("demo-admin1")
    a.home()
    reviewer = _user("demo-reviewer1")
    email = f"u{reviewer.id}-email"
    a.submit("/admin/users", "/admin/users/alerts", {email: "not an address"}, refused=True)
    a.submit("/admin/users", "/admin/users/alerts", {email: "rita@example.org"})
    manager = _user("demo-manager2")
    a.submit("/admin/users", f"/admin/users/{manager.uid}/sessions")
    reset = a.submit("/admin/users", f"/admin/users/{manager.uid}/second-factor")
    shown = re.search(r'<p class="secret"><code>([A-Z0-9-]+)</code>', reset.get_data(as_text=True))
    site.handed[manager.login] = shown[1]
    a.submit("/admin/users", f"/admin/users/{manager.uid}/deactivate")
    a.submit("/admin/users", f"/admin/users/{manager.uid}/reactivate")
    _invitations(site, a)
    a.get("/pools")
    a.get("/pools/new")
    pool = db.session.execute(sa.select(Pool).order_by(Pool.id).limit(1)).scalar_one()
    a.get(f"/pools/{pool.uid}")
    a.get("/account")
    a.get("/cases", status=403)
    a.errors()
    a.submit("/account", "/logout")


def _invitations(site, a):
    """An admin invites a donor (refused first, without a role) and a reviewer, and
    withdraws the donor's invitation; the reviewer opens the link and is told it waits for
    a manager, who confirms it from the dashboard and is shown its code; the reviewer is
    refused a short password and a wrong code, sets a password with the code and reaches
    the second factor's enrolment; the used link and the withdrawn one get their page."""
    a.submit("/admin/users/invite", "/admin/users/invite", {"invite-login": "x"}, refused=True)
    donor = db.session.execute(sa.select(Donor).order_by(Donor.id).limit(1)).scalar_one()
    withdrawn = _link(
        a.submit(
            "/admin/users/invite",
            "/admin/users/invite",
            {"invite-role": "donor", "invite-login": "html.donor", "invite-donor": donor.uid},
        )
    )
    link = _link(
        a.submit(
            "/admin/users/invite",
            "/admin/users/invite",
            {"invite-role": "reviewer", "invite-login": "html.reviewer"},
        )
    )
    forms = page_forms(a.html("/admin/users"))
    revoke = next(f.action for f in forms if f.action.endswith("/revoke"))
    a.submit("/admin/users", revoke)
    invited = site.browser("invited")
    invited.get(link)  # the page says it waits for a manager
    m = site.sign_in("demo-manager1")
    m.get("/dashboard")
    confirm = next(
        f.action for f in page_forms(m.html("/fund/invitations")) if f.action.endswith("/confirm")
    )
    shown = m.submit("/fund/invitations", confirm).get_data(as_text=True)
    code = re.search(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", shown).group(1)
    invited.get("/invitation")
    invited.submit("/invitation", "/invitation", {"password": "short"}, refused=True)
    password = "an invited passphrase 42"
    invited.submit(
        "/invitation",
        "/invitation",
        {"password": password, "again": password, "code": "WRONG-CODES"},
        refused=True,
    )
    invited.submit(
        "/invitation", "/invitation", {"password": password, "again": password, "code": code}
    )
    site.browser("too late").get(link, status=404)
    site.browser("withdrawn").get(withdrawn, status=404)


def _link(response):
    """The path of the invitation link the page shows."""
    found = re.search(
        r"https?://[^/<\s]+(/invitation/[A-Za-z0-9_-]+)", response.get_data(as_text=True)
    )
    assert found, "the invitation's page shows no link"
    return found.group(1)


def _network_admin(site):
    """The network's administrator: the member funds, a new one refused then made, one
    suspended, resumed and named the intake fund, and the intake fund named back."""
    n = site.sign_in("demo-network_admin1")
    n.home()
    n.submit(
        "/network/funds", "/network/funds", {"fund-name": "", "fund-admin_login": "x"}, refused=True
    )
    n.submit(
        "/network/funds",
        "/network/funds",
        {
            "fund-name": "Checked Fund",
            "fund-admin_login": "checked.admin",
            "fund-admin_password": "a long first passphrase 42",
        },
    )
    other = db.session.execute(
        sa.select(Fund).where(Fund.name == "Coastal Local Fund")
    ).scalar_one()
    intake = db.session.execute(sa.select(Fund).where(Fund.intake)).scalar_one()
    n.submit("/network/funds", f"/network/funds/{other.uid}/suspend")
    n.submit("/network/funds", f"/network/funds/{other.uid}/resume")
    n.submit("/network/funds", f"/network/funds/{other.uid}/intake")
    n.submit("/network/funds", f"/network/funds/{intake.uid}/intake")
    n.submit("/network/partners", "/network/partners", {"partner-name": ""}, refused=True)
    n.submit(
        "/network/partners",
        "/network/partners",
        {"partner-name": "Checked Partners", "partner-country": "KE"},
    )
    org = db.session.execute(
        sa.select(PartnerOrganisation).where(PartnerOrganisation.name == "Checked Partners")
    ).scalar_one()
    partner = (
        db.session.execute(sa.select(User).where(User.role == Role.PARTNER).order_by(User.id))
        .scalars()
        .first()
    )
    assert org.id and partner is not None
    n.submit("/network/partners", f"/network/partners/accounts/{partner.uid}/deactivate")
    n.submit("/network/partners", f"/network/partners/accounts/{partner.uid}/reactivate")
    n.get("/network/report")
    n.get("/network/report?year=abc", status=400)
    n.get("/cases", status=403)
    n.submit("/account", "/logout")


def _fund_admin(site):
    """A fund's administrator sets what the fund covers, its threshold and its targets."""
    a = site.sign_in("demo-regional-admin")
    a.home()
    a.submit("/fund/settings", "/fund/settings/profile", {"profile-takes_applications": "y"})
    a.submit(
        "/fund/settings",
        "/fund/settings/limits",
        {"limits-target_response_hours_urgent": "5"},
        refused=True,
    )
    a.submit("/fund/settings", "/fund/settings/limits", {"limits-four_eyes_threshold": "2500"})
    _given_up_alert(_user("demo-regional-admin").fund_id)
    a.submit("/fund/outbox", "/fund/outbox/try-again")
    a.submit("/account", "/logout")


def _given_up_alert(fund_id):
    """An alert on a case of the fund that the mail server refused too often: the outbox
    page lists it, with the button to try it again."""
    case = db.session.scalars(
        sa.select(Application).where(Application.fund_id == fund_id).order_by(Application.id)
    ).first()
    staff = db.session.scalars(
        sa.select(User).where(User.fund_id == fund_id).order_by(User.id)
    ).first()
    db.session.add(
        Alert(
            user_id=staff.id,
            application_id=case.id,
            kind=AlertKind.URGENT_CASE,
            attempts=outbox.MAX_ATTEMPTS,
        )
    )
    db.session.commit()


def _referrals(site):
    """Referrals between the demo's funds: the lists, the co-funded stay refused a further
    part (its need is covered), a case referred (refused first, then sent, then
    withdrawn), the waiting one declined (refused) and accepted by the local fund, and the
    co-funded stay as its defender and both funds read it."""
    from hrdfund.cases.services import amount_asked
    from hrdfund.network import referrals as referral_services
    from hrdfund.network.models import Referral, ReferralStatus

    r = site.sign_in("demo-reviewer1")
    r.get("/network/referrals")
    stay = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.ACCEPTED)
    ).scalar_one()
    page = _case_page(stay.application)
    r.get(page)
    r.get(f"/network/referrals/{stay.uid}")
    waiting = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.PENDING)
    ).scalar_one()
    r.submit(page, f"{page}/refer", {"refer-reason": ""}, refused=True)
    local = db.session.execute(
        sa.select(Fund).where(Fund.name == "Coastal Local Fund")
    ).scalar_one()
    part = {
        "refer-to_fund": local.uid,
        "refer-category": "medical",
        "refer-amount": "400",
        "refer-reason": "A check-up after the move.",
        "refer-answer_by": (utcnow().date() + timedelta(days=30)).isoformat(),
    }
    # The stay's need is covered by the fund's own grant and the part taken on.
    r.submit(page, f"{page}/refer", part, refused=True)
    reviewer, referred = (
        _user("demo-reviewer1"),
        set(db.session.execute(sa.select(Referral.application_id)).scalars()),
    )
    asking = next(
        c
        for c in _cases(fund_id=stay.application.fund_id, status=ApplicationStatus.IN_REVIEW)
        if c.id not in referred
        and referral_services.why_not_referable(c, reviewer) is None
        and (amount_asked(c) or 0) >= 400
    )
    page = _case_page(asking)
    r.submit(page, f"{page}/refer", part)
    fresh = db.session.execute(
        sa.select(Referral).where(
            Referral.status == ReferralStatus.PENDING, Referral.id != waiting.id
        )
    ).scalar_one()
    r.submit(page, f"/network/referrals/{fresh.uid}/withdraw")
    r.submit("/account", "/logout")
    local_reviewer = site.sign_in("demo-local-reviewer")
    local_reviewer.get("/network/referrals")
    there = f"/network/referrals/{waiting.uid}"
    local_reviewer.submit(there, f"{there}/decline", {"decline-reason": ""}, refused=True)
    local_reviewer.submit(there, f"{there}/accept")
    local_reviewer.submit("/account", "/logout")
    regional = site.sign_in("demo-regional-manager")
    regional.get(_case_page(stay.linked_application))
    regional.get("/coverage")
    regional.get("/network/referrals")
    regional.get("/reports/network")
    regional.get("/reports/network?start=2026-02-01&end=2026-01-01", status=400)
    regional.submit("/account", "/logout")
    applicant = site.sign_in("demo-applicant1")
    applicant.get(_case_page(stay.application))
    applicant.get(_case_page(stay.linked_application))
    applicant.get("/my")
    applicant.submit("/account", "/logout")


def _directory(site):
    """The directory: searched, an entry added (refused first), edited, verified, given
    payment details by finance, paid to from a case, imported (refused, then accepted),
    exported and removed."""
    m = site.sign_in("demo-manager1")
    m.get("/directory")
    m.get("/directory?service=psychosocial&country=KE&language=sw")
    m.get("/directory?service=shelter&region=West+Africa")
    m.submit("/directory/new", "/directory/new", blank=True, refused=True)
    values = {
        "entry-name": "Html Check Clinic",
        "entry-services": "medical",
        "entry-countries": "KE",
        "entry-contact": "Signal only",
        "entry-verified_on": utcnow().date().isoformat(),
    }
    page = m.submit("/directory/new", "/directory/new", values).request.path
    m.submit(f"{page}/edit", f"{page}/edit", {"entry-contact": ""}, refused=True)
    m.submit(f"{page}/edit", f"{page}/edit", {"entry-regions": "East Africa"})
    m.submit(page, f"{page}/verify")
    header = ",".join(csv_columns)
    m.submit("/directory", "/directory/import", files={"entries": b"x"}, refused=True)
    line = f",Html Check Import,legal,KE,,en,Signal,,fund,{utcnow().date().isoformat()}"
    m.submit("/directory", "/directory/import", files={"entries": f"{header}\n{line}\n".encode()})
    m.get("/directory/export.csv")
    f = site.sign_in("demo-finance1")
    f.get(page)
    f.submit(page, f"{page}/payment", {"payment-details": "x" * 600}, refused=True)
    f.submit(page, f"{page}/payment", {"payment-details": "Bank account 42 (html check)"})
    paying = site.paying
    entry = page.rsplit("/", 1)[1]
    paid = {"pay-payee_entry": entry, "pay-payee_details": "", "pay-amount_paid": "5"}
    paid["pay-paid_on"] = utcnow().date().isoformat()
    f.submit(paying, f"{paying}/payments", paid)
    m.submit(page, f"{page}/remove")
    m.submit("/account", "/logout")


def _confirm(browser, preview):
    """Send the form of a packet's preview (a page only a POST shows) as a browser does."""
    form = next(
        f for f in page_forms(preview.get_data(as_text=True)) if f.action.endswith("/confirm")
    )
    response = browser.client.post(form.action, data=MultiDict(form.fields), follow_redirects=True)
    browser._keep("POST", form.action, response)
    return response


def _packets(site, folder):
    """Packets with a partner fund on another server: the fund's partners page (a key
    refused, then registered), a referral to it and its packet, the import page (a file
    refused; an answer previewed and imported), a referral from it previewed, imported,
    accepted and answered, and a duplicate check asked and answered."""
    from hrdfund.network import exchange, keys
    from hrdfund.network import referrals as services
    from hrdfund.network.models import Referral
    from hrdfund.reviews import network_check
    from tests.exchange_world import Side, canary_case, make_side, on, other_server, register

    main = _user("demo-admin1").fund
    own = keys.make_keys(main)
    db.session.commit()
    here = Side(
        site.app,
        main.uid,
        main.name,
        logins={"admin": "demo-admin1", "reviewer": "demo-reviewer1"},
        line=keys.key_line(main, own),
        fingerprint=own.fingerprint,
    )
    abroad = make_side(other_server(folder, "abroad"), "Fund Abroad", "abroad")
    register(abroad, here, name="Demo Fund")
    a = site.sign_in("demo-admin1")
    a.get("/fund/settings")
    values = {"partner-name": "Fund Abroad", "partner-key_line": abroad.line}
    wrong = "0000 0000 0000 0000 0000 0000 0000 0000"
    a.submit("/fund/partners", "/fund/partners", {**values, "partner-fingerprint": wrong}, True)
    spoken = keys.spoken(abroad.fingerprint)
    a.submit("/fund/partners", "/fund/partners", {**values, "partner-fingerprint": spoken})
    a.submit("/account", "/logout")
    partner = here.partner()

    r = site.sign_in("demo-reviewer1")
    case = next(
        c
        for c in _cases(fund_id=main.id)
        if c.status in network_check.ASKING and network_check.why_not_asking(c) is None
    )
    page = _case_page(case)
    r.submit(
        page,
        f"{page}/refer",
        {
            "refer-to_fund": partner.uid,
            "refer-category": case.category.value,
            "refer-amount": "400",
            "refer-shares": "answers",
            "refer-reason": "Our pool for this is spent.",
            "refer-answer_by": (utcnow().date() + timedelta(days=30)).isoformat(),
        },
    )
    sent = db.session.execute(
        sa.select(Referral).where(Referral.to_fund_id == partner.id)
    ).scalar_one()
    r.get(f"/network/referrals/{sent.uid}")
    packet = r.get(f"/network/referrals/{sent.uid}/packet").data
    with on(abroad.server):
        _kind, arrived = exchange.check_and_import(abroad.user("reviewer"), packet)
        services.accept_referral(abroad.user("manager"), arrived)
        db.session.commit()
        answer, _name = exchange.answer_packet(abroad.user("manager"), arrived)
        db.session.commit()
    r.get("/network/referrals")
    r.submit(
        "/network/packets", "/network/packets", files={"packet-file": b"%PDF-1.4"}, refused=True
    )
    _confirm(r, r.submit("/network/packets", "/network/packets", files={"packet-file": answer}))
    r.get(f"/network/referrals/{sent.uid}")

    with on(abroad.server):
        their_case = db.session.execute(
            sa.select(Application).where(Application.uid == canary_case(abroad))
        ).scalar_one()
        theirs = services.refer_case(
            abroad.user("reviewer"),
            their_case,
            abroad.partner(),
            services.Part(their_case.category, 1, 6, Decimal("900.00"), "EUR"),
            ("answers", "documents", "assessment"),
            "Medical care near the fund's office.",
            utcnow().date() + timedelta(days=7),
        )
        db.session.commit()
        packet, _name = exchange.referral_packet(abroad.user("reviewer"), theirs)
        db.session.commit()
    _confirm(r, r.submit("/network/packets", "/network/packets", files={"packet-file": packet}))
    arrived = db.session.execute(
        sa.select(Referral).where(Referral.from_fund_id == partner.id)
    ).scalar_one()
    there = f"/network/referrals/{arrived.uid}"
    r.submit(there, f"{there}/accept")
    r.get(f"{there}/answer-packet")

    form = r.form(page, f"{page}/ask-partner")
    asked = r.client.post(form.action, data=MultiDict(form.payload({"ask-partner": partner.uid})))
    assert asked.status_code == 200 and asked.mimetype == "application/octet-stream"
    ask = asked.data
    with on(abroad.server):
        _kind, (reply, _name) = exchange.check_and_import(abroad.user("reviewer"), ask)
        db.session.commit()
    _confirm(r, r.submit("/network/packets", "/network/packets", files={"packet-file": reply}))
    r.submit("/account", "/logout")
    with on(abroad.server):
        db.engine.dispose()


def _purge_one_case():
    """A completed case purged down to its figures, as retention leaves it; its page."""
    case = db.session.execute(
        sa.select(Application)
        .join(Grant, Grant.application_id == Application.id)
        .where(Application.status == S.COMPLETED, Grant.status == GrantStatus.CLOSED)
        .order_by(Application.id.desc())
        .limit(1)
    ).scalar_one()
    retention.purge(retention.PurgePlan(cutoff=utcnow(), cases=[case.id]))
    return _case_page(case)


@pytest.fixture(scope="module")
def pages(site, tmp_path_factory):
    """Every page, after every visitor and role went through the site."""
    _visitor(site)
    _second_step(site)
    sent = _applicant(site)
    _partner(site)
    purged = _purge_one_case()
    _reviewer(site, sent, purged)
    _manager(site, purged)
    _finance(site)
    _second_person(site)
    _donor(site)
    _admin(site)
    _network_admin(site)
    _fund_admin(site)
    _referrals(site)
    _directory(site)
    _packets(site, tmp_path_factory.mktemp("abroad"))
    return site.pages


#: The only writes a GET may make, each with its reason: a download of a referral's packet
#: or of the directory is an entry in the audit chain (SECURITY.md 28), written once the
#: file is built, in a short transaction of its own that takes the write lock at its start.
GET_WRITES = {
    "directory.export": {("INSERT audit_events", "BEGIN IMMEDIATE")},
    "network.referral_packet": {("INSERT audit_events", "BEGIN IMMEDIATE")},
    "network.answer_packet": {("INSERT audit_events", "BEGIN IMMEDIATE")},
}


def test_pages_that_are_read_write_nothing(pages):
    """Every page each role opened (GET) wrote nothing: no idle clock, counter, alert
    marked read nor row made on first sight is kept in the database, so a page never
    needs the write lock. Only the downloads listed write, and only their audit entry,
    in a transaction that began with the write lock."""
    unlisted = {
        endpoint: writes - GET_WRITES.get(endpoint, set())
        for endpoint, writes in pages.get_writes.items()
        if writes - GET_WRITES.get(endpoint, set())
    }
    assert unlisted == {}
    # The watch sees writes: each listed download was made and wrote its entry.
    assert set(pages.get_writes) == set(GET_WRITES)


def test_every_route_is_reached(site, pages):
    """A route nobody reached here would go unchecked: a new page needs a visit above."""
    unreached = (
        {rule.endpoint for rule in site.app.url_map.iter_rules()}
        - pages.endpoints
        - DOWNLOADS
        - MOVED_ENDPOINTS
    )
    assert not unreached, f"no page of {sorted(unreached)} was checked"


def _visible_text(html):
    """What a person reads: no tags, attributes, styles, nor the case codes in <code>."""
    html = re.sub(r"<(script|style|code)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_pages_show_words_not_codes(pages):
    """A stored code (in_review, cash_through_partner, a country's KE) on a page is a word
    missing: every status, kind, channel, role and country reads in the reader's language."""
    countries = {code for code, _name in geo.countries()}
    # A currency's name is words, though it may hold a country's letters ("US Dollar").
    currency_names = [currency_name(code) for code in CURRENCIES]
    found = []
    for label, html in pages.pages:
        text = _visible_text(html)
        for name in currency_names:
            text = text.replace(name, "")
        codes = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text))
        codes |= set(re.findall(r"\b[A-Z]{2}\b", text)) & countries
        found += [f"{label}: {code}" for code in sorted(codes)]
    assert not found, "\n".join(found)


def test_no_box_of_a_group_of_checkboxes_is_required(pages):
    """A box marked ``required`` must be ticked before a browser sends its form: a group
    of boxes (choose one or more) whose boxes each carried it could not be sent until
    every one was ticked. The server says when none is."""
    found = []
    for label, html in pages.pages:
        boxes = re.findall(r'<input\b[^>]*\btype="checkbox"[^>]*>', html)
        names = [re.search(r'\bname="([^"]*)"', box).group(1) for box in boxes]
        for box, name in zip(boxes, names, strict=True):
            if names.count(name) > 1 and re.search(r"\srequired\b", box):
                found.append(f"{label}: {name}")
    assert not found, "\n".join(sorted(set(found)))


#: A page with a known error, checked with the others: the run must report it, or the
#: checker read nothing.
CANARY = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>x</title></head>'
    '<body><p id="twice"></p><p id="twice"></p></body></html>'
)


def test_every_page_is_valid_html(pages, tmp_path):
    command = _vnu_command()
    folder = tmp_path / "pages"
    folder.mkdir()
    index = []
    for n, (label, html) in enumerate(pages.pages):
        (folder / f"{n:04d}.html").write_text(html, encoding="utf-8")
        index.append(f"{n:04d}.html\t{label}")
    (tmp_path / "pages.tsv").write_text("\n".join(index) + "\n", encoding="utf-8")
    (folder / "canary.html").write_text(CANARY, encoding="utf-8")
    result = subprocess.run(
        [*command, "--errors-only", "--format", "json", "--stdout", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    report, canary = [], []
    for message in json.loads(result.stdout)["messages"]:
        name = message.get("url", "").rsplit("/", 1)[-1]
        if name == "canary.html":
            canary.append(message["message"])
            continue
        label = pages.pages[int(name[:4])][0] if name[:4].isdigit() else name
        extract = " ".join(message.get("extract", "").split())
        report.append(
            f"{label}, line {message.get('lastLine')}: {message['message']}\n    {extract}"
        )
    assert canary == ["Duplicate ID “twice”."], (canary, result.stderr)
    assert not report, (
        f"{len(report)} HTML errors on {len(pages.pages)} pages (kept in {folder}):\n"
        + "\n".join(report)
    )


#: Who reads the applicant side in the visits above, by the label of their browser.
APPLICANT_SIDE_READERS = ("visitor", "demo-applicant1", "demo-partner1")
TRANSLATED = [code for code in Config.LANGUAGES if code != "en"]
_VISIT = re.compile(r"^(?P<who>[^:]+): GET (?P<path>\S+)")


#: Who reads staff and donor pages in the visits above.
STAFF_READERS = (
    "demo-reviewer1",
    "demo-manager1",
    "demo-manager2",
    "demo-finance1",
    "demo-donor1",
    "demo-admin1",
)


def _read_again(site, pages, code, readers=APPLICANT_SIDE_READERS):
    """Every page ``readers`` read above (GET), read again by the same people in ``code``,
    chosen with the language form as a person would."""
    paths = {}
    for label, _html in pages.pages:
        found = _VISIT.match(label)
        if found and found["who"] in readers:
            paths.setdefault(found["who"], []).append(found["path"])
    collected = Pages()
    for who, visited in paths.items():
        if who == "visitor":
            browser = Browser(site.app, collected, who)
            browser.submit("/login", "/language", {"language": code})
        else:
            browser = site.sign_in(who)
            browser.pages = collected
            browser.submit("/", "/language", {"language": code})
        for path in dict.fromkeys(visited):
            response = browser.client.get(path, follow_redirects=True)
            collected.add(f"{who} in {code}: GET {path}", response)
    for login in paths:
        if login != "visitor":
            _user(login).language = None  # as before, for what runs next
    db.session.commit()
    # The pages read before the language was chosen are the English ones, checked above.
    return [(label, html) for label, html in collected.pages if f" in {code}: " in label]


def _english_left(html, code, sources=None):
    """The English sentences ``html`` still shows though the catalog of ``code`` translates
    them (``sources``: by default its applicant-side messages): fragments of three words or
    more between placeholders, looked for in the words a person reads outside what people
    typed."""
    text = re.sub(r'<(\w+)[^>]*\b(?:dir="auto"|class="body")[^>]*>.*?</\1>', " ", html, flags=re.S)
    text = re.sub(r"<bdi>.*?</bdi>|<option[^>]*>.*?</option>", " ", text, flags=re.S)
    text = _visible_text(text)
    for reason in _written_reasons():
        text = text.replace(reason, " ")
    left = []
    for source in sources if sources is not None else _translated_sources(code):
        for fragment in re.split(r"%\([a-z_]+\)[sdf]|%[sd]", source):
            fragment = fragment.strip(" .,:;")
            if len(fragment.split()) >= 3 and fragment in text:
                left.append(fragment)
    return left


def _written_reasons():
    """Reasons kept as they were written, in their writer's language: a reversal's (typed,
    or written by a statement import in its importer's language) and a payment's rate."""
    rows = [
        *db.session.scalars(
            sa.select(Disbursement).where(Disbursement.reversal_of_id.is_not(None))
        ),
        *db.session.scalars(sa.select(Disbursement).where(Disbursement._rate_reason.is_not(None))),
    ]
    return {r for row in rows for r in (row.reason, row.rate_reason) if r}


@functools.cache
def _translated_sources(code):
    """The English of every applicant-side message the catalog of ``code`` translates."""
    return [
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog(code)
        if message.id and applicant_side(message) and not untranslated(message)
    ]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_applicant_page_speaks_each_language(site, pages, code):
    """Every page a defender, a partner or a visitor reads, in each language of the
    applicant side: no English sentence the catalog translates is left on it."""
    read = _read_again(site, pages, code)
    assert len(read) > 40
    lang = f'<html lang="{code}" dir="{"rtl" if code in ("ar", "fa") else "ltr"}">'
    assert [label for label, html in read if lang not in html] == []
    found = [f"{label}: {left}" for label, html in read if (left := _english_left(html, code))]
    assert found == [], "\n".join(found[:30])


@functools.cache
def _every_translated_source(code):
    """The English of every message the catalog of ``code`` translates."""
    return [
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog(code)
        if message.id and not untranslated(message)
    ]


@pytest.mark.parametrize("code", [c for c in Config.STAFF_LANGUAGES if c != "en"])
def test_every_staff_and_donor_page_speaks_french_and_spanish(site, pages, code):
    """Every page staff and donors read above, read again in French and in Spanish: no
    English sentence the catalog translates is left on it."""
    read = _read_again(site, pages, code, STAFF_READERS)
    assert len(read) > 40
    assert [label for label, html in read if f'<html lang="{code}" dir="ltr">' not in html] == []
    sources = _every_translated_source(code)
    found = [
        f"{label}: {left}" for label, html in read if (left := _english_left(html, code, sources))
    ]
    assert found == [], "\n".join(found[:30])
