"""A manager on a phone, in a real browser with JavaScript off: signs in and lands on the
dashboard, finds a recommended case by the short code read out on a call, approves it
from the case page, and back on the dashboard sees the pool's chart move: its figures
for today in the chart's table, and the line drawn for them."""

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.grants import services as grants
from tests.e2e.test_applicant_journey import _staff_app
from tests.e2e.test_review_journey import _staff_sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
COLUMNS = ("Received", "Committed", "Disbursed", "Available")


def _amount(text):
    """'$1,234.56', '-€12.00' or '1,234.56 SEK' as a Decimal."""
    return Decimal(re.sub(r"[^\d.\-]", "", text))


def _a_case_one_manager_approves(app):
    """A recommended case of the first fund, asking less than the four-eyes threshold, and
    an open pool of its currency that fits it and can pay all of it: (short code, amount,
    pool id, pool name)."""
    with app.app_context():
        cases = db.session.execute(
            sa.select(Application)
            .where(
                Application.fund_id == 1,
                Application.status == ApplicationStatus.RECOMMENDED,
                Application.amount_requested < 2000,
            )
            .order_by(Application.id)
        ).scalars()
        for case in cases:
            amount = case.amount_requested
            for option in grants.pool_options(case, amount):
                pool = option["pool"]
                if (
                    not option["reasons"]
                    and pool.currency == case.currency
                    and option["available"] >= amount
                ):
                    found = case.code, amount, pool.id, pool.name
                    db.session.remove()
                    db.engine.dispose()
                    return found
    raise AssertionError("the demo fund has a recommended case a pool of its currency can pay")


def _todays_figures(page, pool_name):
    """The pool's chart on the dashboard: its figures for today from the table under the
    chart, opened as a reader would, and the points of the lines it draws."""
    figure = page.locator("figure.chart", has=page.get_by_text(f"{pool_name} over time"))
    assert figure.count() == 1
    figure.get_by_text("The figures in a table").click()  # opens without a script
    header = [th.inner_text() for th in figure.locator("thead th").all()]
    assert header == ["Period", *COLUMNS]
    today = figure.locator("tbody tr", has=page.locator("th", has_text="Today"))
    cells = [_amount(td.inner_text()) for td in today.locator("td").all()]
    lines = [line.get_attribute("points") for line in figure.locator("svg polyline").all()]
    return dict(zip(COLUMNS, cells, strict=True)), lines


def test_a_manager_on_a_phone_finds_a_case_by_its_code_approves_it_and_sees_the_pool_move(
    live_server, browser
):
    app = _staff_app(live_server)
    code, amount, pool_id, pool_name = _a_case_one_manager_approves(app)
    page = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()

    # Signing in lands on the dashboard; nothing on it is wider than the phone.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    before, lines_before = _todays_figures(page, pool_name)

    # The code read out on a call, typed in the header's box, opens the case.
    box = page.get_by_label("Find a case")
    assert box.is_visible()
    box.fill(code)
    page.get_by_role("button", name="Search", exact=True).click()
    assert code in page.content()  # read once the case's page has loaded
    assert re.search(r"/applications/[0-9a-f]+$", page.url)
    assert page.get_by_text(code, exact=True).first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Below the threshold one manager's approval commits the money, from the one pool.
    assert _amount(page.get_by_label("Amount approved").input_value()) == amount
    page.locator("#approve-draws-0-pool").select_option(str(pool_id))
    page.fill("#approve-draws-0-amount", str(amount))
    page.get_by_role("button", name="Approve", exact=True).click()
    assert "committed." in page.get_by_role("status").first.inner_text()

    # Back on the dashboard the pool's chart has moved by the amount approved.
    page.get_by_role("link", name="Dashboard").click()
    after, lines_after = _todays_figures(page, pool_name)
    assert after["Committed"] == before["Committed"] + amount
    assert after["Available"] == before["Available"] - amount
    assert after["Received"] == before["Received"]
    assert after["Disbursed"] == before["Disbursed"]
    assert lines_after != lines_before
