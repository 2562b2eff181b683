"""Time to money, in pages: from an urgent case's submission to its first payment, the
staff's working page views, counted in a real browser with JavaScript off on a 390x844
phone screen. A page view is a document the browser loads in its main frame (a link
followed, a form sent and the page it lands on); signing in (the sign-in page, the code
page and the dashboard it lands on) and signing out are not counted.

The reviewer takes and recommends the case from its row in the queue; the first manager
opens it from the dashboard's decisions and approves 6,500 EUR, above the four-eyes
threshold; the second manager confirms from the dashboard; finance pays from its list of
grants to pay. Eight views at most across the four."""

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.grants import services as grants
from hrdfund.grants.models import Grant
from hrdfund.ledger.models import Disbursement
from tests.e2e.test_applicant_journey import _case, _staff_app
from tests.e2e.test_review_journey import _send_urgent_medical_case, _sign_out, _staff_sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
MOST_VIEWS = 8


class Views:
    """The documents a tab loads in its main frame while counting is on."""

    def __init__(self, page):
        self.page = page
        self.counting = False
        self.loaded = []
        page.on("load", self._loaded)

    def _loaded(self, page):
        if self.counting:
            self.loaded.append(page.url)

    def start(self):
        self.page.wait_for_load_state("load")
        self.counting = True

    def stop(self):
        """Stop counting once the page last asked for has loaded; the pages counted."""
        self.page.wait_for_load_state("load")
        self.counting = False
        return list(self.loaded)


def _phone(browser):
    return browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()


def _status(app, uid):
    with app.app_context():
        status = _case(uid).status
        db.session.remove()
        db.engine.dispose()
    return status


def test_an_urgent_case_reaches_its_first_payment_in_eight_views(live_server, browser):
    url = live_server["url"]
    app = _staff_app(live_server)
    uid = _send_urgent_medical_case(_phone(browser), url)
    with app.app_context():
        code = _case(uid).code
        db.session.remove()
        db.engine.dispose()
    views = {}

    # The reviewer: the queue, then the short form in the case's row.
    page = _phone(browser)
    _staff_sign_in(page, live_server, app, "demo-reviewer1")
    counter = Views(page)
    counter.start()
    page.get_by_role("link", name="Cases", exact=True).click()
    row = page.locator(f"#quick-{uid}")
    row.locator("summary").click()
    row.get_by_label("Risk to the defender").select_option("high")
    row.get_by_label("Recommendation").select_option("approve")
    row.get_by_label("Assessment (staff only)").fill("Hospital letter and a partner's call")
    row.get_by_role("button", name="Send the recommendation").click()
    assert f"{code}: taken and recommended." in page.content()
    views["reviewer"] = counter.stop()
    _sign_out(page)
    assert _status(app, uid) == ApplicationStatus.RECOMMENDED
    with app.app_context():
        pool_id = next(
            o["pool"].id
            for o in grants.pool_options(_case(uid), Decimal(6500))
            if not o["reasons"] and o["available"] >= Decimal(6500) * o["rate"]
        )
        db.session.remove()
        db.engine.dispose()

    # The first manager: the case from the dashboard's decisions, approved above the
    # threshold (6,500 EUR) on one pool that can pay it all.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    counter = Views(page)
    counter.start()
    page.locator(f"#decide-{uid} a").first.click()
    assert page.get_by_label("Amount approved").input_value() == "6500.00"
    if page.locator("#approve-draws-0-pool").input_value() == "":
        # More than one pool fits: the manager picks one that can pay it all (the page
        # lists each pool's available money beside the form).
        page.select_option("#approve-draws-0-pool", str(pool_id))
        page.fill("#approve-draws-0-amount", "6500.00")
    page.get_by_role("button", name="Approve", exact=True).click()
    assert "a second manager confirms it before money is committed" in page.content()
    views["first manager"] = counter.stop()
    _sign_out(page)
    assert _status(app, uid) == ApplicationStatus.AWAITING_SECOND_APPROVAL

    # The second manager confirms from the dashboard.
    _staff_sign_in(page, live_server, app, "demo-manager2")
    counter = Views(page)
    counter.start()
    page.locator(f"#decide-{uid}").get_by_role(
        "button", name=f"Confirm the approval of {code}"
    ).click()
    assert f"{code} approved: €6,500.00 committed." in page.content()
    views["second manager"] = counter.stop()
    _sign_out(page)
    assert _status(app, uid) == ApplicationStatus.APPROVED

    # Finance: the grants to pay, the case's pay page, the payment.
    _staff_sign_in(page, live_server, app, "demo-finance1")
    counter = Views(page)
    counter.start()
    page.get_by_role("link", name="Grants to pay").first.click()
    page.get_by_role("link", name=f"Pay {code}", exact=True).click()
    assert "€6,500.00" in page.content()
    page.get_by_label("Paid to").select_option("vendor")
    page.get_by_label("Payee details").fill("A hospital in Nairobi, account KE00 1234")
    page.get_by_label("Channel").select_option("bank")
    page.get_by_label("Amount paid").fill("6500.00")
    page.get_by_label("Currency paid").select_option("EUR")
    page.fill("#pay-paid_on", date.today().isoformat())
    page.get_by_label("Payment reference").fill("E2E-TTM-1")
    page.get_by_role("button", name="Record the payment").click()
    html = page.content()
    assert "Payment recorded." in html or "waits for a second person" in html
    assert page.get_by_role("heading", level=1).inner_text() == "Grants to pay"
    views["finance"] = counter.stop()
    _sign_out(page)

    with app.app_context():
        grant = db.session.execute(
            sa.select(Grant).where(Grant.application_id == _case(uid).id)
        ).scalar_one()
        paid = db.session.execute(
            sa.select(Disbursement).where(Disbursement.grant_id == grant.id)
        ).scalar_one_or_none()
        db.session.remove()
        db.engine.dispose()

    counts = {who: len(pages) for who, pages in views.items()}
    print("page views to the first payment:", counts, sum(counts.values()))
    assert counts == {"reviewer": 2, "first manager": 2, "second manager": 1, "finance": 3}, views
    assert sum(counts.values()) <= MOST_VIEWS
    assert paid is not None and paid.amount_paid == 6500, "the first payment is recorded"
