"""An administrator invites a reviewer and a manager confirms the invitation; the reviewer
opens the link, types the manager's code, sets a password, enrols the second factor and
signs in, all on a 390 x 844 phone screen with JavaScript off."""

import re
from urllib.parse import urlsplit

import pyotp
import pytest

from tests.e2e.conftest import fresh_code
from tests.e2e.test_applicant_journey import _staff_app
from tests.e2e.test_login_browser import _sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
PASSWORD = "a phone typed passphrase 31"


def _fits(page):
    """The page is no wider than the phone's screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def _first_code(secret):
    """The authenticator app's code for a key just enrolled."""
    return pyotp.TOTP(secret).now()


def test_invite_accept_and_sign_in_on_a_phone(live_server, browser):
    admin = next(a for a in live_server["accounts"] if a["role"] == "admin")
    boss = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()
    _sign_in(boss, live_server, admin)
    assert boss.get_by_role("heading", level=1).inner_text() == "Accounts of this fund"
    boss.get_by_role("link", name="Invite a new account").click()
    assert boss.get_by_role("heading", level=1).inner_text() == "Invite a new account"
    _fits(boss)
    boss.get_by_label("Role", exact=True).select_option(label="Reviewer")
    boss.get_by_label("Login name of the new account").fill("phone.reviewer")
    boss.get_by_role("button", name="Make the invitation link").click()
    assert boss.get_by_role("heading", level=1).inner_text() == "Invitation link"
    _fits(boss)
    shown = boss.locator("p.secret code").inner_text()
    path = urlsplit(shown).path
    assert re.fullmatch(r"/invitation/[A-Za-z0-9_-]{43}", path), shown

    assert "a manager of the fund confirms the invitation" in boss.content()

    invitee = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()
    invitee.goto(live_server["url"] + path)
    assert invitee.url == live_server["url"] + "/invitation"  # the token left the address
    assert invitee.get_by_role("heading", level=1).inner_text() == "Your new account"
    assert "has still to confirm this invitation" in invitee.content()
    assert invitee.get_by_label("Password or passphrase").count() == 0
    _fits(invitee)

    # A manager confirms it from the dashboard and gives the code, apart from the link.
    manager = next(a for a in live_server["accounts"] if a["role"] == "manager")
    confirming = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()
    _sign_in(confirming, live_server, manager)
    confirming.get_by_role("link", name=re.compile("Invitations to confirm")).click()
    assert confirming.get_by_role("heading", level=1).inner_text() == "Invitations to confirm"
    assert "phone.reviewer" in confirming.locator("table").inner_text()
    _fits(confirming)
    confirming.get_by_role("button", name="Confirm and show the code").click()
    assert confirming.get_by_role("heading", level=1).inner_text() == "Code of the invitation"
    _fits(confirming)
    code_from_manager = confirming.locator("p.secret code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", code_from_manager), code_from_manager

    invitee.goto(live_server["url"] + path)
    assert invitee.get_by_label("Your login name").input_value() == "phone.reviewer"
    assert "<script" not in invitee.content()
    _fits(invitee)
    invitee.get_by_label("Code from a manager of the fund").fill(code_from_manager)
    invitee.get_by_label("Password or passphrase").fill(PASSWORD)
    invitee.get_by_label("The password again").fill(PASSWORD)
    invitee.get_by_role("button", name="Set the password").click()
    assert invitee.get_by_role("heading", level=1).inner_text() == "Second step: your code"
    _fits(invitee)
    secret = invitee.locator("p.secret code").inner_text().strip()
    invitee.get_by_label("Six-digit code from your authenticator app").fill(_first_code(secret))
    invitee.get_by_role("button", name="Continue").click()
    assert invitee.get_by_role("heading", level=1).inner_text() == "Your recovery codes"
    assert invitee.locator("ul.codes li").count() == 10
    _fits(invitee)
    invitee.get_by_role("link", name="I have kept them: continue").click()
    assert invitee.get_by_role("heading", level=1).inner_text() == "Dashboard"
    invitee.get_by_role("button", name="Sign out").click()

    # The link is spent; the account signs in like any other.
    invitee.goto(live_server["url"] + path)
    assert invitee.get_by_role("heading", level=1).inner_text() == "This invitation does not work"
    _fits(invitee)
    invitee.goto(live_server["url"] + "/login")
    invitee.get_by_label("Login name").fill("phone.reviewer")
    invitee.get_by_label("Password").fill(PASSWORD)
    invitee.get_by_role("button", name="Sign in").click()
    # A code of a step not used yet: the first one was used at enrolment.
    code = fresh_code(_staff_app(live_server), "phone.reviewer", secret)
    invitee.get_by_label("Six-digit code from your authenticator app").fill(code)
    invitee.get_by_role("button", name="Continue").click()
    assert invitee.get_by_role("heading", level=1).inner_text() == "Dashboard"

    boss.goto(live_server["url"] + "/admin/users")
    assert "phone.reviewer" in boss.locator("table").first.inner_text()
    _fits(boss)
