"""Two member funds share a stay in safety, in a real browser with JavaScript off: the
Coastal Local Fund pays months 1 to 6 of a defender's relocation and its reviewer refers
months 7 to 12, with the defender's consent, to the Demo Protection Fund (the network's
international fund); that fund accepts, reviews, approves and pays from its own pool; both
funds' coverage pages show the twelve months covered, and the defender's case page shows
which fund handles which part."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund, Role, User
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    Consent,
    ConsentKind,
    Urgency,
)
from hrdfund.cases.services import change_status
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.grants import plans
from hrdfund.grants import services as grants
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.plans import months_after
from hrdfund.network.models import Referral
from hrdfund.pools import services as pools
from hrdfund.reviews.models import Recommendation, Review, RiskLevel
from tests.e2e.test_applicant_journey import _sign_in, _staff_app
from tests.e2e.test_review_journey import _sign_out, _staff_sign_in

pytestmark = pytest.mark.e2e

PASSWORD = "harbour-lantern-copper-river"
DEFENDER = "Network Journey Defender"


def _user(login):
    return db.session.execute(sa.select(User).where(User.login == login)).scalar_one()


def _local_stay(today):
    """The local fund's relocation case: sent, approved for 6 months of 500 euros from the
    local fund's own pool, paid monthly from today; the defender agreed to referral."""
    local = db.session.execute(
        sa.select(Fund).where(Fund.name == "Coastal Local Fund")
    ).scalar_one()
    manager, reviewer = _user("demo-local-manager"), _user("demo-local-reviewer")
    defender = auth_services.create_user(Role.APPLICANT, "network-e2e-defender", PASSWORD)
    donor = pools.create_donor(local.id, "Coastal Solidarity Circle", manager)
    pool = pools.create_pool(donor, manager, "Coastal relocation", "EUR")
    pools.record_contribution(pool, manager, Decimal(10000), "EUR", today - timedelta(days=7))
    case = Application(
        fund_id=local.id,
        applicant_id=defender.id,
        submitted_by_id=defender.id,
        category=Category.RELOCATION,
        status=ApplicationStatus.DRAFT,
        urgency=Urgency.URGENT,
        country="KE",
        region="East Africa",
        currency="EUR",
        amount_requested=Decimal(6000),
    )
    db.session.add(case)
    db.session.flush()
    case.defender_name = DEFENDER
    case.threat = "Threatened after testifying about forced evictions."
    db.session.add(
        Consent(application_id=case.id, kind=ConsentKind.REFERRAL, method="form", given_at=utcnow())
    )
    change_status(case, ApplicationStatus.SUBMITTED, actor=defender)
    case.status = ApplicationStatus.RECOMMENDED
    db.session.add(
        Review(
            application_id=case.id,
            reviewer_id=reviewer.id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency="EUR",
        )
    )
    db.session.flush()
    grant = approve_with_recorded_rates(case, manager, Decimal(3000), [(pool.id, Decimal(3000))])
    plans.create_plan(grant, manager, "stipend", today, count=6)
    db.session.commit()
    return case.uid


def _row(page, uid):
    """The coverage calendar's row of case ``uid``, on whichever of its pages it is."""
    for _ in range(50):
        row = page.locator("table.calendar tr", has=page.locator(f"a[href='/applications/{uid}']"))
        if row.count():
            return row
        page.locator("nav.pager").get_by_role("link", name="Next").click()
    raise AssertionError(f"case {uid} is on no page of the coverage calendar")


def test_a_stay_is_shared_by_a_local_and_an_international_fund(live_server, browser):
    url = live_server["url"]
    app = _staff_app(live_server)
    today = date.today()
    with app.app_context():
        uid = _local_stay(today)
        db.session.remove()
        db.engine.dispose()
    page = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}
    ).new_page()

    # The local fund's reviewer refers months 7 to 12, sharing the defender's answers.
    _staff_sign_in(page, live_server, app, "demo-local-reviewer")
    page.goto(f"{url}/applications/{uid}")
    page.locator("summary", has_text="Refer this case").click()
    page.get_by_label("To the fund").select_option(label="Demo Protection Fund")
    page.get_by_label("Kind of support asked").select_option("relocation")
    page.get_by_label("From month").fill("7")
    page.get_by_label("To month").fill("12")
    page.get_by_label("Amount asked").fill("3000.00")
    page.locator("#refer-currency").select_option("EUR")
    page.get_by_label("The defender's answers in the application").check()
    page.get_by_label("Why we refer it").fill("Our pool pays six months; the stay lasts a year.")
    page.get_by_label("Answer needed by").fill((today + timedelta(days=7)).isoformat())
    page.get_by_role("button", name="Refer", exact=True).click()
    assert "Referred to Demo Protection Fund." in page.content()
    assert "Waiting for an answer" in page.content()
    _sign_out(page)

    # The international fund's reviewer finds it under Other funds and accepts it.
    _staff_sign_in(page, live_server, app, "demo-reviewer1")
    page.get_by_role("link", name="Other funds").click()
    page.locator("tr", has_text="months 7 to 12").get_by_role(
        "link", name="Coastal Local Fund"
    ).click()
    assert DEFENDER in page.content()  # the answers were shared
    page.get_by_role("button", name="Accept: open our own case for this part").click()
    assert "Accepted: the case is in your fund's queue" in page.content()
    page.get_by_role("link", name="Your fund's case for this part").click()
    linked_url = page.url
    page.get_by_role("button", name="Take this case").click()
    page.get_by_label("Risk to the defender").select_option("high")
    page.get_by_label("Recommendation", exact=True).select_option("approve")
    page.get_by_label("Assessment (staff only)").fill("The local fund's review stands.")
    page.get_by_role("button", name="Recommend").click()
    assert "Recommendation recorded" in page.content()
    _sign_out(page)

    with app.app_context():
        linked = db.session.execute(
            sa.select(Application).where(Application.uid == linked_url.rsplit("/", 1)[-1])
        ).scalar_one()
        assert linked.fund.name == "Demo Protection Fund"
        pool = next(
            o["pool"]
            for o in grants.pool_options(linked, Decimal(3000))
            if not o["reasons"] and o["pool"].currency == "EUR" and o["available"] >= 3000
        )
        pool_id, pool_name = pool.id, pool.name
        db.session.remove()
        db.engine.dispose()

    # Its manager approves from its own pool and plans months 7 to 12.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.goto(linked_url)
    page.get_by_label("Amount approved").fill("3000.00")
    page.select_option("#approve-draws-0-pool", str(pool_id))
    page.fill("#approve-draws-0-amount", "3000.00")
    page.get_by_role("button", name="Approve", exact=True).click()
    assert "Approved: €3,000.00 committed." in page.content()
    page.get_by_label("How it is paid").select_option("stipend")
    page.get_by_label("First payment on").fill(months_after(today, 6).isoformat())
    page.get_by_label("Number of tranches or months").fill("6")
    page.get_by_role("button", name="Save the plan").click()
    _sign_out(page)

    # Its finance pays the first month from that pool.
    _staff_sign_in(page, live_server, app, "demo-finance1", home="Dashboard")
    page.goto(linked_url)
    page.select_option("#pay-instalment", index=1)
    page.get_by_label("Paid to").select_option("host_organisation")
    page.get_by_label("Payee details").fill("Safe house Nairobi, account KE00 1234")
    page.get_by_label("Channel").select_option("bank")
    page.get_by_label("Amount paid").fill("500.00")
    page.get_by_label("Currency paid").select_option("EUR")
    page.fill("#pay-paid_on", today.isoformat())
    page.get_by_label("Payment reference").fill("NET-E2E-1")
    page.get_by_role("button", name="Record the payment").click()
    assert "Payment recorded." in page.content()
    _sign_out(page)

    # Both coverage pages: twelve months covered, each fund's own in figures, the other's
    # by its name only.
    linked_uid = linked_url.rsplit("/", 1)[-1]
    _staff_sign_in(page, live_server, app, "demo-local-manager")
    page.get_by_role("link", name="Coverage").click()
    local_row = _row(page, uid).inner_text()
    assert local_row.count("€500.00") == 6 and local_row.count("Demo Protection Fund") == 6
    assert pool_name not in page.content()
    # The network report, from Reports: the case another fund took months 7 to 12 of, and
    # the six months that fund's plan pays, on a phone's width.
    page.get_by_role("link", name="Reports").click()
    page.get_by_role("link", name="Network report: referrals to and from other funds").click()
    helped = page.locator("#gaps ~ table tr", has_text=uid).inner_text()
    assert "Demo Protection Fund" in helped and "months 7 to 12" in helped
    assert helped.split()[-1] == "6"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _sign_out(page)
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.get_by_role("link", name="Coverage").click()
    intl_row = _row(page, linked_uid).inner_text()
    assert intl_row.count("€500.00") == 6 and intl_row.count("Coastal Local Fund") == 6
    page.goto(linked_url)
    plan = page.locator("section.referrals table", has_text="Committed").inner_text()
    assert "Coastal Local Fund" in plan and "€3,000.00" in plan and "€500.00" in plan
    _sign_out(page)

    # The defender: both funds on their list, and who handles which part.
    _sign_in(page, url, "network-e2e-defender", PASSWORD)
    mine = page.content()
    assert "Coastal Local Fund" in mine and "Demo Protection Fund" in mine
    page.goto(f"{url}/applications/{uid}")
    handled = page.locator("section.referrals").inner_text()
    assert "Demo Protection Fund handles Relocation, months 7 to 12." in handled
    assert "<script" not in page.content()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    with app.app_context():
        referral = (
            db.session.execute(
                sa.select(Referral)
                .where(Referral.linked_application_id.is_not(None))
                .order_by(Referral.id.desc())
            )
            .scalars()
            .first()
        )
        assert referral.months_from == 7 and referral.months_to == 12
        db.session.remove()
        db.engine.dispose()
