"""The directory in a real browser with JavaScript off, on a 390-pixel screen: a manager
finds a psychosocial provider in Kenya by service and language, and opens its entry; finance
pays a medical provider chosen from the directory, and the payment names it as payee."""

from datetime import date

import pytest
import sqlalchemy as sa

from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund, Role
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.pools.models import Pool
from tests.conftest import MoneyWorld
from tests.e2e.test_applicant_journey import _staff, _staff_app
from tests.e2e.test_review_journey import _sign_out, _staff_sign_in

pytestmark = pytest.mark.e2e

PASSWORD = "harbour-lantern-copper-river"
POOL = "General Protection Fund"  # USD, no restriction: pays a euro grant
PSYCHOSOCIAL = "Amani Counselling Collective"
MEDICAL = "St Luke Medical Centre (demo)"


def _fits(page):
    """The page never runs past the right or the left edge of a 390-pixel screen; a wide
    table scrolls within itself."""
    page.wait_for_load_state("load")
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(e => !e.closest("table"))
            .filter(e => {
                const r = e.getBoundingClientRect();
                return r.right > 391 || r.left < -1;
            })
            .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""
    )
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 and not wide, f"{page.url} is {width} px wide: {wide}"


def test_a_manager_finds_a_provider_and_finance_pays_one(live_server, browser):
    url = live_server["url"]
    app = _staff_app(live_server)
    with app.app_context():
        fund = db.session.execute(
            sa.select(Fund).where(Fund.name == "Demo Protection Fund")
        ).scalar_one()
        defender = auth_services.create_user(Role.APPLICANT, "directory-e2e-defender", PASSWORD)
        pool = db.session.execute(sa.select(Pool).where(Pool.name == POOL)).scalar_one()
        world = MoneyWorld.around(fund, defender, _staff(Role.REVIEWER), _staff(Role.MANAGER))
        grant = world.grant(
            "2000", pool=pool, category=Category.MEDICAL, name="Directory Journey Defender"
        )
        uid = grant.application.uid
        db.session.remove()
        db.engine.dispose()
    page = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}
    ).new_page()

    # A manager searches the directory: psychosocial care in Kenya, in Swahili.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Directory").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Directory of providers and partners"
    )
    page.get_by_label("Service").select_option(label="Psychosocial care")
    page.get_by_label("Country").select_option(label="Kenya")
    page.get_by_label("Language spoken").select_option(label="Swahili")
    page.get_by_role("button", name="Search the directory").click()
    # The address carries codes only.
    assert "service=psychosocial" in page.url and "country=KE" in page.url
    assert "language=sw" in page.url
    results = page.locator("table").inner_text()
    assert PSYCHOSOCIAL in results
    assert "Red Escucha" not in results and MEDICAL not in results
    _fits(page)
    # Its fund reminded of the entry it keeps that nobody checked for a year.
    assert "Open Line Legal Aid (demo)" in page.locator("#stale").inner_text()
    page.get_by_role("link", name=PSYCHOSOCIAL).click()
    entry = page.content()
    assert "Signal +254 700 000 101" in entry and "Coastal Local Fund" in entry
    assert "<script" not in page.content()
    _fits(page)
    _sign_out(page)

    # Finance pays the medical provider, chosen from the directory, on the case's page.
    _staff_sign_in(page, live_server, app, "demo-finance1", home="Dashboard")
    page.goto(f"{url}/applications/{uid}")
    assert MEDICAL in page.locator("#directory").inner_text(), "suggested for a medical case"
    page.get_by_label("Payee from the directory").select_option(label=MEDICAL)
    page.get_by_label("Channel").select_option("bank")
    page.get_by_label("Amount paid").fill("400.00")
    page.get_by_label("Currency paid").select_option("EUR")
    page.fill("#pay-paid_on", date.today().isoformat())
    page.get_by_label("Payment reference").fill("E2E-DIR-1")
    page.get_by_role("button", name="Record the payment").click()
    assert "Payment recorded." in page.content()
    row = page.locator("table.ledger tr", has_text="E2E-DIR-1").inner_text()
    assert MEDICAL in row and "Equity Bank (demo)" in row and "€400.00" in row
    _fits(page)
