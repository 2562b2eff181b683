"""Every page of every role fits a phone: at 390x844, with JavaScript off, a visitor and
each role of the demo accounts go through every page the app's URL map lets them ask for
with GET, route parameters filled with the demo world's own cases, pools, referrals and
directory entries, and no page lays out wider than the screen."""

import time
import urllib.parse

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import HTTPException

from hrdfund.auth.models import Role, User
from hrdfund.cases import steps
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.cases.withdrawal import WITHDRAWABLE
from hrdfund.core.extensions import db
from hrdfund.directory.models import DirectoryEntry
from hrdfund.network.models import Referral
from hrdfund.pools.models import Pool
from tests.e2e.conftest import fresh_code
from tests.e2e.test_applicant_journey import _staff_app

pytestmark = pytest.mark.e2e

WIDTH = 390
HEIGHT = 844

#: Routes answered with GET that are not pages, or not pages of their own, and why.
NOT_PAGES = {
    "static": "the stylesheet",
    "auth.qr": "the second factor's QR code, an SVG image",
    "cases.download": "a document the applicant sent, as a file",
    "network.shared_document": "a document another fund shared, as a file",
    "network.referral_packet": "a referral packet, as a file",
    "network.answer_packet": "the answer packet of a referral, as a file",
    "disbursements.proof": "a payment's proof, as a file",
    "reports.donor_report": "a donor report, as a PDF or CSV file",
    "reports.staff_report": "a pool's report for staff, as a PDF or CSV file",
    "directory.export": "the directory, as a CSV file",
    "reports.export_queue": "the queue, as a CSV file",
    "reports.export_follow_up": "follow-up, as a CSV file",
    "reports.export_coverage": "coverage, as a CSV file",
    "reports.export_payments": "payments of a period, as a CSV file",
}


def _moved(endpoint):
    """An old address kept only to redirect to its new page (tests/test_moved_urls.py)."""
    return endpoint.startswith("moved:")


class World:
    """The demo world's ids a route parameter can take, read from the server's database."""

    def __init__(self, app, accounts):
        with app.app_context():
            users = {
                user.login: user
                for user in db.session.scalars(
                    sa.select(User).where(User.login.in_([a["login"] for a in accounts]))
                )
            }
            self.users = {
                login: (user.id, user.fund_id, user.partner_organisation_id)
                for login, user in users.items()
            }
            cases = db.session.execute(
                sa.select(
                    Application.uid,
                    Application.status,
                    Application.fund_id,
                    Application.applicant_id,
                    Application.partner_organisation_id,
                ).order_by(Application.id.desc())
            ).all()
            self.cases = cases
            self.pools = db.session.execute(sa.select(Pool.uid, Pool.fund_id)).all()
            self.entries = db.session.execute(
                sa.select(DirectoryEntry.uid, DirectoryEntry.fund_id).order_by(DirectoryEntry.id)
            ).all()
            self.referrals = db.session.execute(
                sa.select(Referral.uid, Referral.status, Referral.from_fund_id, Referral.to_fund_id)
            ).all()
            db.session.remove()

    def _one_per_status(self, rows):
        seen = {}
        for row in rows:
            seen.setdefault(row.status, row.uid)
        return list(seen.values())

    def cases_of(self, account):
        """One case of each status among those the account may open."""
        user_id, fund_id, org_id = self.users.get(account["login"], (None, None, None))
        role = account["role"]
        if role == Role.APPLICANT:
            mine = [c for c in self.cases if c.applicant_id == user_id]
        elif role == Role.PARTNER:
            mine = [c for c in self.cases if org_id and c.partner_organisation_id == org_id]
        elif role in (Role.REVIEWER, Role.MANAGER, Role.FINANCE):
            mine = [c for c in self.cases if c.fund_id == fund_id]
        else:
            mine = []
        return self._one_per_status(mine)

    def payable_of(self, account):
        """One grant of each status finance pays in (approved, paying), of its fund."""
        fund = self.fund_of(account)
        return self._one_per_status(
            c
            for c in self.cases
            if c.fund_id == fund
            and c.status in (ApplicationStatus.APPROVED, ApplicationStatus.PAYING)
        )

    def drafts_of(self, account):
        user_id, _fund, org_id = self.users.get(account["login"], (None, None, None))
        return [
            c.uid
            for c in self.cases
            if c.status == ApplicationStatus.DRAFT
            and (c.applicant_id == user_id or (org_id and c.partner_organisation_id == org_id))
        ][:1]

    def withdrawable_of(self, account):
        """One case of the account's side it may withdraw: sent and not decided."""
        own = self._own_cases(account)
        return [c.uid for c in own if c.status in WITHDRAWABLE][:1]

    def _own_cases(self, account):
        """The cases of the account's applicant side: its own, or its organisation's."""
        user_id, _fund, org_id = self.users.get(account["login"], (None, None, None))
        if account["role"] == Role.APPLICANT:
            return [c for c in self.cases if c.applicant_id == user_id]
        if account["role"] == Role.PARTNER:
            return [c for c in self.cases if org_id and c.partner_organisation_id == org_id]
        return []

    def fund_of(self, account):
        return self.users.get(account["login"], (None, None, None))[1]

    def pools_of(self, account):
        fund = self.fund_of(account)
        return [p.uid for p in self.pools if fund and p.fund_id == fund]

    def entries_of(self, account):
        fund = self.fund_of(account)
        return [e.uid for e in self.entries if fund and e.fund_id == fund][:2]

    def referrals_of(self, account):
        fund = self.fund_of(account)
        return self._one_per_status(
            r for r in self.referrals if fund in (r.from_fund_id, r.to_fund_id)
        )


#: How each route with parameters is filled in for an account: the pages it leads to.
FILLED = {
    "cases.case": lambda world, account: [f"/applications/{u}" for u in world.cases_of(account)],
    "cases.edit": lambda world, account: [
        f"/applications/{u}/edit" for u in world.drafts_of(account)
    ],
    "cases.step": lambda world, account: [
        f"/applications/{u}/steps/{step}"
        for u in world.drafts_of(account)
        for step in (*steps.STEPS, steps.REVIEW)
    ],
    "case_payments.pay": lambda world, account: [
        f"/applications/{u}/pay" for u in world.payable_of(account)
    ],
    "pools.pool": lambda world, account: [f"/pools/{u}" for u in world.pools_of(account)],
    "directory.entry": lambda world, account: [
        f"/directory/{u}" for u in world.entries_of(account)
    ],
    "directory.edit": lambda world, account: [
        f"/directory/{u}/edit" for u in world.entries_of(account)
    ],
    "network.referral": lambda world, account: [
        f"/network/referrals/{u}" for u in world.referrals_of(account)
    ],
    "cases.withdraw": lambda world, account: [
        f"/applications/{u}/withdraw" for u in world.withdrawable_of(account)
    ],
    "cases.delete_draft": lambda world, account: [
        f"/applications/{u}/delete" for u in world.drafts_of(account)
    ],
}

#: Roles a route with parameters lets in whose pages of it are not visited, and why.
NOT_FILLED_FOR = {
    "cases.case": {
        Role.DONOR: "a donor sees pools' figures and reports, never a case",
        Role.ADMIN: "an admin keeps accounts, pools and settings, and opens no case",
        Role.NETWORK_ADMIN: "the network admin belongs to no fund and opens no case",
    },
}

#: Pages shown only in the middle of a step, reached on the way rather than by address.
ON_THE_WAY = {
    "cases.remove_document": "asks before a document the applicant side added is taken out, "
    "reached from that document on the case page; the demo world stores no document, and "
    "the page is the one that asks before a withdrawal or a deletion, measured here",
    "cases.begin": "the first step of an application, before anything is stored, opens with "
    "the choice of a fund and a kind of support in its address, sent by the start page's "
    "form: measured at 390 px in tests/e2e/test_languages_journey.py",
    "auth.code": "the second step of signing in: measured while each account signs in",
    "auth.invitation_link": "an invitation's one-time link only moves its token into the "
    "session and sends on to the invitation's page, measured in the invitation's journey",
}

#: Lists a phone shows as one block per row, each cell beside its column's name: no cell
#: of their tables is out of sight sideways, in a box to scroll.
ROWS_ON_A_PHONE = {
    "cases.mine": "an applicant's applications",
    "cases.referrals": "a partner's referred cases",
    "reviews.queue": "the queue",
    "disbursements.index": "finance's payments",
    "directory.index": "the directory",
    "disbursements.follow_up": "follow-up's lists",
    "pools.index": "the pools and their figures",
    "pools.rates": "the rate table",
    "network.referrals": "referrals between funds",
    "network.funds": "the network's member funds",
    "reports.portal": "a donor's pools, this quarter against the last and who they supported",
    "pools.pool": "a pool's money received, committed, released and paid",
    "reports.dashboard": "the money of each pool this month (cases by stage and age, a "
    "matrix read across, scrolls)",
}


#: Who goes through their pages a second time in Arabic, written right to left: a visitor
#: and the defenders' side, whose pages speak the applicants' languages.
RIGHT_TO_LEFT = (None, Role.APPLICANT, Role.PARTNER)

#: The page measured in the browser: the width of the document; when it is too wide, the
#: element reaching furthest past the screen's edge (right, or left on a page written
#: right to left) outside any box that scrolls on its own (the deepest such element when
#: several reach as far); the tables that scroll sideways; and the buttons such a table
#: holds out of sight, which a person on a phone would never find (a table of class
#: ``matrix``, read across its columns, may scroll: it is not a list); and, in the lists
#: laid out as one block per row, a column's name that cannot wrap (it would run into its
#: figure) or a list's title squeezed narrower than the list.
MEASURE = """(limit) => {
  const width = document.documentElement.scrollWidth;
  const tables = [...document.querySelectorAll('table')]
    .filter(t => t.scrollWidth > t.clientWidth + 1);
  const scrolling = tables.filter(t => !t.classList.contains('matrix'))
    .map(t => (t.querySelector('th') || t).textContent.trim().slice(0, 40));
  const hidden = [];
  for (const t of tables) {
    const seen = t.getBoundingClientRect();
    for (const b of t.querySelectorAll('button, input[type=submit], summary')) {
      const shut = b.parentElement.closest('details:not([open])');
      if (shut && !(b.tagName === 'SUMMARY' && b.parentElement === shut)) continue;
      const box = b.getBoundingClientRect();
      if (box.width > 0 && (box.right > seen.right + 1 || box.left < seen.left - 1)) {
        hidden.push(b.textContent.trim() || b.value);
      }
    }
  }
  const crowded = [];
  for (const t of document.querySelectorAll('table.stack')) {
    if (getComputedStyle(t).display !== 'block') continue;
    for (const cell of t.querySelectorAll('td[data-label], tbody th[data-label]')) {
      if (getComputedStyle(cell, '::before').whiteSpace !== 'normal') {
        crowded.push(`the name "${cell.dataset.label}" cannot wrap`);
        break;
      }
    }
    const caption = t.querySelector('caption:not(.visually-hidden)');
    if (caption && caption.getBoundingClientRect().width < t.getBoundingClientRect().width - 2) {
      crowded.push(`the title "${caption.textContent.trim().slice(0, 40)}" is squeezed`);
    }
  }
  const lang = document.documentElement.lang;
  if (width <= limit) return {width, widest: null, scrolling, hidden, crowded, lang};
  let widest = null, past = -Infinity;
  const walk = (el) => {
    for (const child of el.children) {
      const box = child.getBoundingClientRect();
      const over = Math.max(box.right - limit, -box.left);
      if (box.width > 0 && over >= past - 0.5
          && (over > past + 0.5 || widest === null || widest.contains(child))) {
        widest = child; past = over;
      }
      if (getComputedStyle(child).overflowX === 'visible') walk(child);
    }
  };
  walk(document.body);
  let name = widest ? widest.tagName.toLowerCase() : '?';
  if (widest && widest.id) name += '#' + widest.id;
  if (widest && widest.classList.length) name += '.' + [...widest.classList].join('.');
  const text = widest ? (widest.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60) : '';
  return {width, widest: `<${name}> ${Math.round(past)} px past the screen's edge: "${text}"`,
          scrolling, hidden, crowded, lang};
}"""


def _get_routes(app):
    """Every route answered with GET: the endpoint and its rule."""
    return sorted(
        (rule.endpoint, rule)
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not _moved(rule.endpoint)
    )


def _roles(app, endpoint):
    """The roles a route lets in, as its ``role_required`` says; every role when the view
    decides itself who reads (a case's page: its applicant, partner or staff)."""
    return getattr(app.view_functions[endpoint], "roles", frozenset(Role))


def _paths(app, world, account, routes, missing):
    """The pages an account asks for: each route its role may use, without parameters as
    it is, with parameters filled with the demo world's ids; and one page its role may
    not use, to measure the page saying so. A visitor asks for the pages that let anyone
    in (the others send it to sign in)."""
    role = Role(account["role"]) if account else None
    refused = None
    for endpoint, rule in routes:
        if endpoint in NOT_PAGES or endpoint in ON_THE_WAY:
            continue
        roles = _roles(app, endpoint)
        if role is None:
            if not rule.arguments and not hasattr(app.view_functions[endpoint], "roles"):
                yield endpoint, rule.rule
        elif role not in roles:
            if refused is None and not rule.arguments:
                refused = (endpoint, rule.rule)
        elif not rule.arguments:
            yield endpoint, rule.rule
        elif role not in NOT_FILLED_FOR.get(endpoint, {}):
            paths = FILLED[endpoint](world, account)
            if not paths:
                missing.append(f"{endpoint} for {role.value}")
            for path in paths:
                yield endpoint, path
    if refused:
        yield refused


def _sign_in_as(page, server, app, account, measured):
    """Sign in through the forms by their fields' ids: the sign-in pages speak the language
    chosen on them before."""
    page.goto(server["url"] + "/login")
    page.fill("#login", account["login"])
    page.fill("#password", account["password"])
    page.locator("form[action='/login'] button[type=submit]").click()
    if account["role"] == Role.APPLICANT.value:
        page.wait_for_load_state("load")
        return
    code = page.locator("#code")
    code.wait_for()
    measured(f"{account['role']}: the sign-in code page", page.url)
    code.fill(fresh_code(app, account["login"], account["totp_secret"]))
    page.locator("form[action='/login/code'] button[type=submit]").click()
    page.wait_for_load_state("load")
    assert "/login" not in page.url, f"{account['login']} did not sign in"


def _set_language(app, account, language):
    """The language kept for an account, set as the chooser would."""
    with app.app_context():
        db.session.execute(
            sa.select(User).where(User.login == account["login"])
        ).scalar_one().language = language
        db.session.commit()
        db.session.remove()


def _choose_language(page, url, account, language):
    """The language chosen with the form on every page (kept for a signed-in account)."""
    page.goto(url + ("/account" if account else "/login"))
    page.select_option("#page-language", language)
    page.locator("form.language button").click()
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == language


def test_every_page_of_every_role_fits_a_phone(live_server, browser):
    app = _staff_app(live_server)
    routes = _get_routes(app)
    unaccounted = sorted(
        endpoint
        for endpoint, rule in routes
        if rule.arguments and endpoint not in FILLED | NOT_PAGES | ON_THE_WAY
    )
    assert not unaccounted, (
        f"routes with parameters no phone-width visit fills in: {unaccounted}; add them to "
        "FILLED (with demo ids), or to NOT_PAGES or ON_THE_WAY with the reason"
    )
    accounts = {}
    for account in live_server["accounts"]:
        accounts.setdefault(account["role"], account)
    assert set(accounts) == {role.value for role in Role}, "a role without a demo account"
    world = World(app, list(accounts.values()))

    adapter = app.url_map.bind("127.0.0.1")

    def request_endpoint(url):
        try:
            return adapter.match(urllib.parse.urlsplit(url).path)[0]
        except HTTPException:
            return None

    too_wide, sideways, out_of_sight, crowded, missing = [], [], [], [], []
    reached, shown = set(), set()
    visits = 0
    started = time.monotonic()
    for account, language in [
        *((account, "en") for account in (None, *accounts.values())),
        *((accounts[role] if role else None, "ar") for role in RIGHT_TO_LEFT),
    ]:
        who = (account["role"] if account else "visitor") + f" ({language})"
        context = browser.new_context(
            java_script_enabled=False, viewport={"width": WIDTH, "height": HEIGHT}
        )
        page = context.new_page()

        def measured(label, url, endpoint=None, status=200, page=page, language=language):
            result = page.evaluate(MEASURE, WIDTH)
            if result["width"] > WIDTH:
                too_wide.append(f"{label} ({url}) is {result['width']} px wide: {result['widest']}")
            if result["lang"] != language:
                too_wide.append(f"{label} ({url}) is in {result['lang']!r}, not {language!r}")
            if status == 200:
                shown.add(endpoint)
            if endpoint in ROWS_ON_A_PHONE and result["scrolling"]:
                sideways.append(f"{label}: tables starting {result['scrolling']}")
            if result["hidden"]:
                out_of_sight.append(f"{label}: {sorted(set(result['hidden']))}")
            if result["crowded"]:
                crowded.append(f"{label}: {sorted(set(result['crowded']))}")

        if account and language != "en":
            # Chosen on the sign-in page, as a person reading in it would: the second
            # factor's page speaks it too.
            _choose_language(page, live_server["url"], None, language)
        if account:
            _sign_in_as(page, live_server, app, account, measured)
        if language != "en":
            _choose_language(page, live_server["url"], account, language)
        seen = set()
        for endpoint, path in _paths(app, world, account, routes, missing):
            response = page.goto(live_server["url"] + path)
            visits += 1
            if response.status == 200:
                reached.add(endpoint)
            if page.url in seen:
                continue
            seen.add(page.url)
            measured(f"{who}: {path}", page.url, request_endpoint(page.url), response.status)
        context.close()
        if language != "en" and account:
            _set_language(app, account, None)  # as it was, for the other browser tests
    elapsed = time.monotonic() - started

    assert not missing, (
        f"the demo world gives nothing to fill in {missing}: give it some, or say in "
        "NOT_FILLED_FOR why the role has no such page"
    )
    filled_unreached = sorted(set(FILLED) - reached)
    assert not filled_unreached, f"no role reached a page of {filled_unreached}"
    assert not too_wide, "pages wider than a phone at 390 px:\n" + "\n".join(too_wide)
    assert not sideways, "lists to scroll sideways on a phone:\n" + "\n".join(sideways)
    assert not crowded, "lists crowded on a phone:\n" + "\n".join(crowded)
    assert not out_of_sight, "buttons out of sight sideways on a phone:\n" + "\n".join(out_of_sight)
    assert set(ROWS_ON_A_PHONE) <= shown, "a list shown as rows on a phone was not visited"
    print(f"{visits} pages in {elapsed:.1f} s")
