"""The defender's and the partner's journeys in a real browser with JavaScript off."""

import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.auth.models import Role, User
from hrdfund.cases.messages import post_message
from hrdfund.cases.models import Application
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.grants import decisions
from hrdfund.grants.models import Instalment, PaymentPlan, PlanKind
from hrdfund.pools.eligibility import pool_mismatches
from hrdfund.pools.models import Pool
from hrdfund.pools.services import PoolError, record_rate
from hrdfund.reviews import services as reviews
from tests.e2e.conftest import fresh_code
from tests.pdfs import PDF

pytestmark = pytest.mark.e2e


def _staff_app(server):
    """The live server's own database, for the fund's side of the story."""
    return create_app({"ENV_NAME": "development", "INSTANCE_PATH": str(server["instance"])})


def _staff(role):
    return db.session.execute(
        sa.select(User).where(User.role == role).order_by(User.id).limit(1)
    ).scalar_one()


def _case(uid):
    return db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()


def _sign_in(page, url, login, password):
    page.goto(url + "/login")
    page.get_by_label("Login name").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _uid(page):
    return re.search(r"/applications/([0-9a-f]+)/steps/", page.url).group(1)


def _save_and_continue(page, next_title):
    """Save the step shown and check the next one, ``next_title``, is shown."""
    page.get_by_role("button", name="Save and continue").click()
    assert page.locator("nav.steps [aria-current=step]").inner_text() == next_title


def test_a_defender_applies_for_relocation_and_follows_the_case(live_server, page, tmp_path):
    url = live_server["url"]
    page.goto(url + "/login")
    page.get_by_role("link", name="Create an account").click()
    # The page makes a login name for the defender and offers a passphrase; the defender
    # notes the login and takes the passphrase. "Show another" makes new ones.
    first = page.locator("#login-suggestion code").inner_text()
    page.get_by_role("link", name="Show another login name and passphrase").click()
    login_name = page.locator("#login-suggestion code").inner_text()
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", login_name) and login_name != first
    passphrase = page.locator("#passphrase-suggestion code").inner_text()
    # A slip in the second typing: the page says so and keeps the login name made.
    page.get_by_label("Password or passphrase").fill(passphrase)
    page.get_by_label("The same password again").fill(passphrase[:-1])
    page.get_by_role("button", name="Create account").click()
    assert "The two passwords differ" in page.content()
    assert page.locator("#login-suggestion code").inner_text() == login_name
    page.get_by_label("Password or passphrase").fill(passphrase)
    page.get_by_label("The same password again").fill(passphrase)
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Your applications"

    page.get_by_role("link", name="Ask for support").click()
    page.get_by_label("Relocation").check()
    page.get_by_role("button", name="Continue").click()
    # Step by step: nothing is stored until the first step is saved.
    assert "Nothing is stored until you save this step" in page.content()
    page.select_option("#country", "KE")
    page.get_by_label("The defender's human rights work").fill("Land rights monitor")
    page.get_by_label("The threat or attack linked to that work").fill("Threats after a report")
    _save_and_continue(page, "Urgency")
    uid = _uid(page)
    urgent = page.get_by_label("Urgent: danger now or within days")
    assert not urgent.is_checked() and not page.get_by_label("Not urgent").is_checked()
    urgent.check()
    page.get_by_label("Why is it urgent").fill("Men watch the house since Monday")
    _save_and_continue(page, "About this support")
    page.select_option("#details-scope", "region")
    page.select_option("#details-destination_country", "UG")
    page.fill("#details-people", "3")
    page.fill("#details-months", "6")
    page.fill("#details-stay_plan", "Visa on arrival")
    page.fill("#details-security_plan", "Escort by the partner")
    page.fill("#details-exit_plan", "Return after the trial")
    _save_and_continue(page, "Budget")
    assert page.locator("#currency").input_value() == "KES"  # from the country chosen
    page.get_by_label("Budget line 1: what it pays for").fill("Rent for six months")
    page.get_by_label("Budget line 1: amount").fill("120000")
    page.get_by_label("Budget line 2: what it pays for").fill("Bus tickets")
    page.get_by_label("Budget line 2: amount").fill("30000")
    _save_and_continue(page, "Dependants affected")
    page.get_by_label("Dependant 1: relationship").fill("daughter")
    page.get_by_label("Dependant 1: age").fill("7")
    page.get_by_label("Dependant 2: relationship").fill("son")
    page.get_by_label("Dependant 2: age").fill("11")
    _save_and_continue(page, "Two references")
    page.fill("#references-0-name", "Reference One")
    page.fill("#references-0-contact", "Through the network")
    _save_and_continue(page, "Other funders and consent")

    page.goto(f"{url}/applications/{uid}")
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(PDF)
    page.get_by_label("File (PDF, PNG or JPEG)").set_input_files(str(quote))
    page.get_by_role("button", name="Add document").click()
    assert page.get_by_role("link", name="quote.pdf").is_visible()

    page.get_by_role("button", name="Sign out").click()
    _sign_in(page, url, login_name, passphrase)
    page.goto(f"{url}/applications/{uid}")
    page.get_by_role("link", name="Continue the application").click()
    page.get_by_role("link", name="Budget").click()
    assert page.get_by_label("Budget line 1: amount").input_value() == "120000.00"
    page.get_by_role("link", name="Dependants affected").click()
    assert page.get_by_label("Dependant 2: relationship").input_value() == "son"
    page.get_by_role("link", name="Check and send").click()
    assert "Rent for six months" in page.content()
    page.get_by_role("button", name="Send application").click()
    alert = page.get_by_role("alert")
    assert "Two references" in alert.inner_text()
    # The error leads to the step and the question to mend.
    alert.get_by_role("link").first.click()
    step = f"/applications/{uid}/steps/references?then=review#references-1-name"
    assert page.url.endswith(step)
    page.fill("#references-1-name", "Reference Two")
    page.fill("#references-1-contact", "Signal")
    # Mended from the list, the step goes back to it, not on to the next one.
    _save_and_continue(page, "Check and send")
    page.get_by_role("button", name="Send application").click()
    assert "Status: Received" in page.content()

    app = _staff_app(live_server)
    with app.app_context():
        reviewer = _staff(Role.REVIEWER)
        reviews.assign_reviewer(_case(uid), reviewer, reviewer)
        post_message(_case(uid), reviewer, "Which town will you stay in?")
        db.session.commit()
    page.reload()
    assert "The fund has a question for you" in page.content()
    page.get_by_label("Your message").fill("A small town near the border.")
    page.get_by_role("button", name="Send message").click()
    assert "Status: Being reviewed" in page.content()

    with app.app_context():
        case = _case(uid)
        reviewer = _staff(Role.REVIEWER)
        first, second = db.session.execute(
            sa.select(User).where(User.role == Role.MANAGER).order_by(User.id).limit(2)
        ).scalars()
        reviews.recommend(case, reviewer, "high", "approve", Decimal(150000), "Verified")
        # 150,000 KES are worth about 1,065 EUR at the fund's rate: below the four-eyes
        # threshold (5,000 EUR), one manager approves (at a rate another manager recorded).
        rate = Decimal("0.0071")
        try:
            record_rate(case.fund_id, second, utcnow().date(), "KES", "EUR", rate, "CBK")
        except PoolError:
            pass  # the fund recorded today's rate already
        pool = next(
            p
            for p in db.session.execute(sa.select(Pool).where(Pool.currency == "EUR")).scalars()
            if not pool_mismatches(p, case, Decimal(150000) * rate)
        )
        allocation = [(pool.id, Decimal(150000), rate)]
        grant = decisions.approve_application(case, first, Decimal(150000), allocation)
        assert grant is not None
        plan = PaymentPlan(
            grant_id=grant.id,
            kind=PlanKind.TRANCHES,
            starts_on=date(2026, 12, 1),
            ends_on=date(2027, 1, 15),
        )
        db.session.add(plan)
        db.session.flush()
        db.session.add_all(
            [
                Instalment(
                    plan_id=plan.id,
                    seq=1,
                    due_on=date(2026, 12, 1),
                    amount=Decimal(80000),
                    currency="KES",
                ),
                Instalment(
                    plan_id=plan.id,
                    seq=2,
                    due_on=date(2027, 1, 15),
                    amount=Decimal(70000),
                    currency="KES",
                ),
            ]
        )
        db.session.commit()
        db.engine.dispose()
    page.reload()
    html = page.content()
    assert "Status: Approved" in html and "150,000.00" in html and "Paid in 2 parts." in html
    assert page.get_by_role("heading", name="Support granted").is_visible()
    assert "<script" not in html


def test_a_partner_refers_a_medical_case(live_server, page):
    url = live_server["url"]
    account = next(a for a in live_server["accounts"] if a["role"] == "partner")
    _sign_in(page, url, account["login"], account["password"])
    # A partner holds the cases of every defender it referred: a second factor, as staff.
    code = fresh_code(_staff_app(live_server), account["login"], account["totp_secret"])
    page.get_by_label("Six-digit code from your authenticator app").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Refer a defender").click()
    consent = page.get_by_label("The defender agreed that we apply on their behalf")
    assert consent.get_attribute("required") is not None, "the browser asks for consent too"
    page.get_by_label("Medical costs").check()
    page.get_by_label("The defender agreed that we apply on their behalf").check()
    page.select_option("#consent_method", "in_person")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name or pseudonym the fund may use").fill("Defender M.")
    page.select_option("#country", "CO")
    page.get_by_label("The defender's human rights work").fill("Indigenous land defence")
    page.get_by_label("The threat or attack linked to that work").fill("Beaten at a protest")
    _save_and_continue(page, "Urgency")
    uid = _uid(page)
    page.get_by_label("Not urgent").check()
    _save_and_continue(page, "About this support")
    page.fill("#details-provider", "A clinic in the capital")
    page.fill("#details-treatment", "Surgery on the arm")
    page.fill("#details-link_to_threat", "Injured by armed men at the protest")
    _save_and_continue(page, "Budget")
    assert page.locator("#currency").input_value() == "COP"
    page.get_by_label("Budget line 1: what it pays for").fill("Surgery")
    page.get_by_label("Budget line 1: amount").fill("4000000")
    _save_and_continue(page, "Dependants affected")
    _save_and_continue(page, "Two references")
    page.fill("#references-0-name", "Community leader")
    page.fill("#references-0-contact", "Through our office")
    page.fill("#references-1-name", "Lawyer")
    page.fill("#references-1-contact", "Signal")
    _save_and_continue(page, "Other funders and consent")
    _save_and_continue(page, "Check and send")
    page.get_by_role("button", name="Send application").click()
    assert "Status: Received" in page.content()
    page.goto(url + "/referrals")
    assert uid in page.content()


def test_a_defender_saves_a_longer_term_draft_comes_back_and_sends_it(live_server, page):
    """The monthly amount of longer-term support is kept in the draft as text; the draft
    answered 500 when opened again. Now it opens with the amount, a slip in it is named,
    and the defender finishes and sends it."""
    url = live_server["url"]
    page.goto(url + "/register")
    login_name = page.locator("#login-suggestion code").inner_text()
    passphrase = page.locator("#passphrase-suggestion code").inner_text()
    page.get_by_label("Password or passphrase").fill(passphrase)
    page.get_by_label("The same password again").fill(passphrase)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("link", name="Ask for support").click()
    page.get_by_label("Longer-term support").check()
    page.get_by_role("button", name="Continue").click()
    page.select_option("#country", "KE")
    _save_and_continue(page, "Urgency")
    uid = _uid(page)
    page.get_by_role("link", name="About this support").click()
    page.get_by_label("Amount needed each month").fill("350,50")
    page.get_by_role("button", name="Save and continue").click()
    assert "Use a point for decimals" in page.content()
    assert page.get_by_label("Amount needed each month").input_value() == "350,50"
    # The error summary's link leads to the field.
    page.get_by_role("alert").get_by_role("link").first.click()
    assert page.url.endswith("#details-monthly_amount")
    page.get_by_label("Amount needed each month").fill("350.50")
    page.fill("#details-months", "12")
    page.select_option("#details-where", "exile")
    _save_and_continue(page, "Budget")
    page.get_by_label("Budget line 1: what it pays for").fill("Rent and food, twelve months")
    page.get_by_label("Budget line 1: amount").fill("4206")
    _save_and_continue(page, "Dependants affected")

    page.get_by_role("button", name="Sign out").click()
    _sign_in(page, url, login_name, passphrase)
    page.goto(f"{url}/applications/{uid}/steps/support")
    assert page.get_by_label("Amount needed each month").input_value() == "350.50"
    page.get_by_role("link", name="Budget").click()
    assert page.get_by_label("Budget line 1: amount").input_value() == "4206.00"
    page.get_by_role("link", name="The defender").click()
    page.get_by_label("The defender's human rights work").fill("Reports on forced evictions")
    page.get_by_label("The threat or attack linked to that work").fill("Threats after a report")
    _save_and_continue(page, "Urgency")
    page.get_by_label("Not urgent").check()
    _save_and_continue(page, "About this support")
    page.get_by_role("link", name="Two references").click()
    page.fill("#references-0-name", "Reference One")
    page.fill("#references-0-contact", "Through the network")
    page.fill("#references-1-name", "Reference Two")
    page.fill("#references-1-contact", "Signal")
    _save_and_continue(page, "Other funders and consent")
    _save_and_continue(page, "Check and send")
    page.get_by_role("button", name="Send application").click()
    assert "Status: Received" in page.content()
