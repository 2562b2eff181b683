"""A referral to a partner fund on another server, in a real browser with JavaScript off on
a phone's width: the Demo Protection Fund's reviewer refers a case to a fund abroad,
downloads the referral packet, and later uploads that fund's answer packet, previews it and
imports it; the referral then shows the partner's answer. The fund abroad is another start
of the app, on a database of its own, with keys of its own."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import Fund, User
from hrdfund.cases.models import Application
from hrdfund.cases.services import amount_asked
from hrdfund.core.extensions import db
from hrdfund.grants.models import Grant
from hrdfund.network import exchange, keys
from hrdfund.network import referrals as services
from hrdfund.network.models import Referral, ReferralStatus
from tests.e2e.test_applicant_journey import _staff_app
from tests.e2e.test_review_journey import _sign_out, _staff_sign_in
from tests.exchange_world import CANARY_NAME, Side, make_side, on, other_server, register

pytestmark = pytest.mark.e2e


def _narrow(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    assert "<script" not in page.content()


def test_a_referral_to_a_fund_abroad_goes_by_packet_and_its_answer_comes_back(
    live_server, browser, tmp_path
):
    url = live_server["url"]
    app = _staff_app(live_server)
    with app.app_context():
        reviewer = db.session.execute(
            sa.select(User).where(User.login == "demo-reviewer1")
        ).scalar_one()
        fund = db.session.get(Fund, reviewer.fund_id)
        own = keys.current_key(fund) or keys.make_keys(fund)
        here = Side(
            app,
            fund.uid,
            fund.name,
            logins={"admin": "demo-admin1"},
            line=keys.key_line(fund, own),
            fingerprint=own.fingerprint,
        )
        db.session.commit()
        # A case in euros with nothing granted or referred yet: 800 of its need may be
        # asked of another fund.
        taken = set(db.session.execute(sa.select(Referral.application_id)).scalars())
        taken |= set(db.session.execute(sa.select(Grant.application_id)).scalars())
        case = next(
            c
            for c in db.session.execute(
                sa.select(Application).where(
                    Application.fund_id == fund.id, Application.currency == "EUR"
                )
            ).scalars()
            if services.why_not_referable(c, reviewer) is None
            and c.id not in taken
            and (amount_asked(c) or 0) >= 800
        )
        uid = case.uid
        db.session.remove()
    abroad = make_side(other_server(tmp_path, "abroad"), "Fund Abroad E2E", "e2e-abroad")
    register(abroad, here, name=here.fund_name)
    register(here, abroad)
    with app.app_context():
        db.engine.dispose()

    page = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}, accept_downloads=True
    ).new_page()
    _staff_sign_in(page, live_server, app, "demo-reviewer1")
    page.goto(f"{url}/applications/{uid}")
    page.locator("summary", has_text="Refer this case").click()
    page.get_by_label("To the fund").select_option(label="Fund Abroad E2E, on another server")
    page.get_by_label("Amount asked").fill("800.00")
    page.locator("#refer-currency").select_option("EUR")
    page.get_by_label("The defender's answers in the application").check()
    page.get_by_label("Why we refer it").fill("The fund abroad covers this kind of care.")
    page.get_by_label("Answer needed by").fill((date.today() + timedelta(days=7)).isoformat())
    page.get_by_role("button", name="Refer", exact=True).click()
    page.locator("section.referrals").get_by_role("link", name="Fund Abroad E2E").click()
    _narrow(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the referral packet").click()
    assert download.value.suggested_filename.endswith(".hrdp")
    packet = download.value.path().read_bytes()
    assert CANARY_NAME.encode() not in packet

    with on(abroad.server):
        _kind, arrived = exchange.check_and_import(abroad.user("reviewer"), packet)
        services.decline_referral(abroad.user("manager"), arrived, "Our medical pool is closed.")
        db.session.commit()
        answer, name = exchange.answer_packet(abroad.user("manager"), arrived)
        db.session.commit()
        db.engine.dispose()
    answer_file = tmp_path / name
    answer_file.write_bytes(answer)

    page.goto(f"{url}/network/referrals")
    page.get_by_role("link", name="Import a packet").click()
    _narrow(page)
    page.get_by_label("Packet file (.hrdp)").set_input_files(str(answer_file))
    page.get_by_role("button", name="Check the packet").click()
    assert page.get_by_role("heading", level=1).inner_text() == "What the packet brings"
    assert "Our medical pool is closed." in page.content()
    _narrow(page)
    page.get_by_role("button", name="Import", exact=True).click()
    shown = page.content()
    assert "Declined" in shown and "Our medical pool is closed." in shown
    _narrow(page)
    _sign_out(page)
    with app.app_context():
        referral = db.session.execute(
            sa.select(Referral).where(Referral.to_fund.has(Fund.name == "Fund Abroad E2E"))
        ).scalar_one()
        assert referral.status == ReferralStatus.DECLINED
        db.session.remove()
        db.engine.dispose()
