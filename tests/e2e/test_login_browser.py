"""Every demo account signs in through a real browser with JavaScript off."""

import pytest

from tests.e2e.conftest import fresh_code
from tests.e2e.test_applicant_journey import _staff_app

ROLES = ["applicant", "partner", "reviewer", "manager", "finance", "donor", "admin"]
HOME_HEADINGS = {
    "applicant": "Your applications",
    "partner": "Cases you referred",
    "reviewer": "Dashboard",
    "manager": "Dashboard",
    "finance": "Dashboard",
    "donor": "Your pools",
    "admin": "Accounts of this fund",
}

pytestmark = pytest.mark.e2e


def _sign_in(page, server, account):
    page.goto(server["url"] + "/login")
    page.get_by_label("Login name").fill(account["login"])
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in").click()
    if account["totp_secret"]:
        assert "/login/code" in page.url
        # A code of a step this account has not used yet: other tests sign in as it too.
        code = fresh_code(_staff_app(server), account["login"], account["totp_secret"])
        page.get_by_label("Six-digit code from your authenticator app").fill(code)
        page.get_by_role("button", name="Continue").click()


@pytest.mark.parametrize("role", ROLES)
def test_each_demo_account_signs_in_without_javascript(live_server, page, role):
    """The demo accounts file holds every role, and each account reaches its home page."""
    accounts = [a for a in live_server["accounts"] if a["role"] == role]
    assert accounts, f"no demo account for {role}"
    _sign_in(page, live_server, accounts[0])
    assert page.get_by_role("heading", level=1).inner_text() == HOME_HEADINGS[role]
    assert "<script" not in page.content()
    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/login")
    page.goto(live_server["url"] + "/")
    assert page.url.endswith("/login"), "signing out must end the session"


def test_wrong_password_shows_a_clear_generic_error(live_server, page):
    """A typo gets a plain message and keeps the login name typed."""
    account = live_server["accounts"][0]
    page.goto(live_server["url"] + "/login")
    page.get_by_label("Login name").fill(account["login"])
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Login name or password is not right."
    assert page.get_by_label("Login name").input_value() == account["login"]


def test_a_refused_sign_in_reloads_as_a_page_not_as_the_form_sent_again(live_server, page):
    """A refused form answers with a redirect to its page: the address is the sign-in
    page's own, and a reload asks for that page (no form sent again, no password) and shows
    it without the error."""
    account = live_server["accounts"][0]
    page.goto(live_server["url"] + "/login")
    page.get_by_label("Login name").fill(account["login"])
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Login name or password is not right."
    assert page.url == live_server["url"] + "/login"
    sent = []
    page.on("request", lambda request: sent.append(request.method))
    page.reload()
    assert sent and "POST" not in sent, sent
    assert page.get_by_role("alert").count() == 0


def test_pages_load_nothing_from_other_hosts(live_server, browser):
    """Every request the login page makes stays on 127.0.0.1."""
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    hosts = []
    tab.on("request", lambda req: hosts.append(req.url.split("/")[2]))
    tab.goto(live_server["url"] + "/login")
    context.close()
    assert hosts and all(h.startswith("127.0.0.1:") for h in hosts)
