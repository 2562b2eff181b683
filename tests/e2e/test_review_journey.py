"""The fund's side in a real browser with JavaScript off: a defender sends an urgent medical
case; a reviewer takes it, records two references, asks the other member funds and
recommends; a first manager approves above the four-eyes threshold, splitting it over two
pools; a second manager finds the split filled in and confirms it, which commits the money;
the defender sees the decision."""

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.grants import services as grants
from hrdfund.grants.models import Grant
from hrdfund.ledger.models import Allocation
from tests.e2e.conftest import fresh_code
from tests.e2e.test_applicant_journey import _case, _sign_in, _staff_app

pytestmark = pytest.mark.e2e


def _account(server, login):
    return next(a for a in server["accounts"] if a["login"] == login)


def _staff_sign_in(page, server, app, login, home="Dashboard"):
    account = _account(server, login)
    _sign_in(page, server["url"], login, account["password"])
    page.get_by_label("Six-digit code from your authenticator app").fill(
        fresh_code(app, login, account["totp_secret"])
    )
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", level=1).inner_text() == home


def _sign_out(page):
    page.get_by_role("button", name="Sign out").click()


def _send_urgent_medical_case(page, url):
    page.goto(url + "/login")
    page.get_by_role("link", name="Create an account").click()
    passphrase = page.locator("#passphrase-suggestion code").inner_text()
    page.get_by_label("Password or passphrase").fill(passphrase)
    page.get_by_label("The same password again").fill(passphrase)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("link", name="Ask for support").click()
    page.get_by_label("Medical costs").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name or pseudonym the fund may use").fill("Defender U.")
    page.select_option("#country", "KE")
    page.get_by_label("The defender's human rights work").fill("Land rights lawyer")
    page.get_by_label("The threat or attack linked to that work").fill("Attacked after a hearing")
    page.get_by_role("button", name="Save and continue").click()
    uid = re.search(r"/applications/([0-9a-f]+)/steps/urgency", page.url).group(1)
    page.get_by_label("Urgent: danger now or within days").check()
    page.get_by_label("Why is it urgent, and why could it not be foreseen?").fill(
        "Wounds from an attack last night"
    )
    page.get_by_role("button", name="Save and continue").click()
    page.fill("#details-provider", "A hospital in Nairobi")
    page.fill("#details-treatment", "Surgery and a week in hospital")
    page.fill("#details-link_to_threat", "Injured in the attack")
    page.get_by_role("button", name="Save and continue").click()
    page.select_option("#currency", "EUR")
    page.get_by_label("Budget line 1: what it pays for").fill("Surgery")
    page.get_by_label("Budget line 1: amount").fill("5200")
    page.get_by_label("Budget line 2: what it pays for").fill("Hospital stay")
    page.get_by_label("Budget line 2: amount").fill("1300")
    page.get_by_role("button", name="Save and continue").click()
    page.get_by_role("button", name="Save and continue").click()  # no dependants
    page.fill("#references-0-name", "Bar association")
    page.fill("#references-0-contact", "Office phone")
    page.fill("#references-1-name", "Colleague")
    page.fill("#references-1-contact", "Signal")
    page.get_by_role("button", name="Save and continue").click()
    page.get_by_label(
        "If this fund cannot help, it may refer the case to another protection fund"
    ).check()
    page.get_by_role("button", name="Save and continue").click()
    page.get_by_role("button", name="Send application").click()
    assert "Status: Received" in page.content()
    return uid


def test_an_urgent_medical_case_from_queue_to_decision(live_server, browser):
    url = live_server["url"]
    app = _staff_app(live_server)
    defender = browser.new_context(java_script_enabled=False).new_page()
    uid = _send_urgent_medical_case(defender, url)

    # The reviewer finds the new urgent case in the queue and takes it.
    page = browser.new_context(java_script_enabled=False).new_page()
    _staff_sign_in(page, live_server, app, "demo-reviewer1")
    page.get_by_role("link", name="Cases", exact=True).click()
    page.select_option("#f-urgency", "urgent")
    page.select_option("#f-category", "medical")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr", has=page.locator(f"a[href='/applications/{uid}']"))
    assert "first response in 23 h" in row.inner_text()
    page.get_by_role("link", name=uid).click()
    page.get_by_role("button", name="Take this case").click()
    assert "The case is assigned." in page.content()
    assert "Reviewer: Rita Reviewer (demo)" in page.content()

    # Two references confirm.
    for name in ("Bar association", "Colleague"):
        block = page.locator(".reference", has_text=name)
        block.get_by_label("What the reference said").select_option("confirmed")
        block.get_by_label("Notes (staff only)").fill(f"{name} knows the defender's work")
        block.get_by_role("button", name="Record the check").click()
        assert "The reference check is recorded." in page.content()
    assert page.content().count("Checked on") == 2

    # Before recommending, the reviewer asks the other member funds: the demo instance has
    # no other fund with a case of this defender.
    page.get_by_role("button", name="Ask the network").click()
    assert "The other member funds were asked." in page.content()
    assert "No other fund has a case of this kind for this defender" in page.content()

    # The assessment: the whole budget, high risk.
    page.get_by_label("Risk to the defender").select_option("high")
    page.get_by_label("Recommendation", exact=True).select_option("approve")
    page.get_by_label("Assessment (staff only)").fill("Two references confirm the attack")
    page.get_by_role("button", name="Recommend").click()
    assert "Recommendation recorded" in page.content()
    _sign_out(page)

    # Two pools that fit the case and can pay half of it each.
    with app.app_context():
        case = _case(uid)
        fitting = [
            o
            for o in grants.pool_options(case, Decimal(3250))
            if not o["reasons"] and o["available"] >= Decimal(3250) * o["rate"]
        ]
        assert len(fitting) >= 2, "the demo fund has two pools that can pay this case"
        first, second = fitting[0]["pool"], fitting[1]["pool"]
        db.session.remove()
        db.engine.dispose()

    # First manager: 6,500 EUR is above the threshold, so the approval only records the
    # amount and its split of pools.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.goto(f"{url}/applications/{uid}")
    assert page.get_by_label("Amount approved").input_value() == "6500.00"
    assert "Approvals worth €5,000.00 or more need two managers" in page.content()
    page.select_option("#approve-draws-0-pool", str(first.id))
    page.fill("#approve-draws-0-amount", "3250.00")
    page.select_option("#approve-draws-1-pool", str(second.id))
    page.fill("#approve-draws-1-amount", "3250.00")
    page.get_by_role("button", name="Approve", exact=True).click()
    assert "a second manager confirms it before money is committed" in page.content()
    _sign_out(page)

    with app.app_context():
        assert _case(uid).status == ApplicationStatus.AWAITING_SECOND_APPROVAL
        db.session.remove()
        db.engine.dispose()

    # Second manager: finds the first manager's split and confirms it as it is, with
    # nothing to change (the second approval never changes the amount or the split).
    _staff_sign_in(page, live_server, app, "demo-manager2")
    page.goto(f"{url}/applications/{uid}")
    assert "approved €6,500.00" in page.content()
    assert f"{first.name} €3,250.00; {second.name} €3,250.00" in page.content()
    assert page.locator("#approve-draws-0-pool").count() == 0
    page.get_by_role("button", name="Confirm the approval", exact=True).click()
    assert "approved: €6,500.00 committed." in page.content()
    assert page.url.endswith(f"/applications/{uid}#decision")
    _sign_out(page)

    with app.app_context():
        case = _case(uid)
        grant = db.session.execute(
            sa.select(Grant).where(Grant.application_id == case.id)
        ).scalar_one()
        pools = db.session.execute(
            sa.select(Allocation.pool_id).where(Allocation.grant_id == grant.id)
        ).scalars()
        assert sorted(pools) == sorted([first.id, second.id])
        db.session.remove()
        db.engine.dispose()

    # The defender sees the decision in plain words.
    defender.reload()
    html = defender.content()
    assert "Status: Approved" in html and "The fund approved €6,500.00" in html
    assert "Two references confirm" not in html and "knows the defender" not in html
    assert "<script" not in html
