"""The money side in a real browser with JavaScript off: a manager plans a relocation grant
in two tranches; finance pays the first to a host organisation in euros from a dollar pool,
with a fee; the payment bounces and is reversed; finance pays again; the defender confirms
that second payment; the pool page and `flask hrdfund check` agree to the cent."""

import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund, Role
from hrdfund.core.extensions import db
from hrdfund.disbursements.models import HeldPayment
from hrdfund.pools.models import Pool
from tests.conftest import MoneyWorld, pay
from tests.e2e.conftest import ROOT
from tests.e2e.test_applicant_journey import _sign_in, _staff, _staff_app
from tests.e2e.test_review_journey import _sign_out, _staff_sign_in
from tests.pdfs import PDF

pytestmark = pytest.mark.e2e

PASSWORD = "lantern-river-copper-harbour"
POOL = "General Protection Fund"  # USD, no restriction: pays a euro grant
#: A phone's screen.
PHONE = {"width": 390, "height": 844}
FIGURES = {
    "received": "fig-received",
    "committed": "fig-committed",
    "disbursed": "fig-disbursed",
    "fees": "fig-fees",
    "exchange differences": "fig-exchange",
    "available": "fig-available",
}


def _amount(text):
    """'$1,234.56' or '-$12.00' as a Decimal."""
    return Decimal(re.sub(r"[^\d.\-]", "", text))


def _pay(page, reference, fee, proof=None):
    """Finance fills the payment form of the case page: the first instalment not yet
    paid, 1,500 euros to the host organisation by bank, at the fund's rate of the day."""
    page.select_option("#pay-instalment", index=1)
    page.get_by_label("Paid to").select_option("host_organisation")
    page.get_by_label("Payee details").fill("Casa Refugio, account ES00 1234 5678")
    page.get_by_label("Channel").select_option("bank")
    page.get_by_label("Amount paid").fill("1500.00")
    page.get_by_label("Currency paid").select_option("EUR")
    page.fill("#pay-fee", fee)
    page.fill("#pay-paid_on", date.today().isoformat())
    page.get_by_label("Payment reference").fill(reference)
    if proof:
        page.get_by_label("Proof of payment (PDF, PNG or JPEG)").set_input_files(str(proof))
    page.get_by_role("button", name="Record the payment").click()


def _check_output(server):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        HRDFUND_ENV="development", HRDFUND_INSTANCE_PATH=str(server["instance"]), FLASK_APP="app"
    )
    done = subprocess.run(
        [sys.executable, "-m", "flask", "hrdfund", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _euro_grant(login, amount, name):
    """In the server's database: a new defender ``login`` with a euro grant of ``amount``
    for ``name`` from the dollar pool, through the demo's staff; the grant and its pool."""
    fund = db.session.execute(sa.select(Fund).limit(1)).scalar_one()
    defender = auth_services.create_user(Role.APPLICANT, login, PASSWORD)
    pool = db.session.execute(sa.select(Pool).where(Pool.name == POOL)).scalar_one()
    world = MoneyWorld.around(fund, defender, _staff(Role.REVIEWER), _staff(Role.MANAGER))
    world.finance = _staff(Role.FINANCE)
    return world, world.grant(amount, pool=pool, currency="EUR", name=name), pool


def test_a_tranche_bounces_is_reversed_paid_again_and_confirmed(live_server, browser, tmp_path):
    url = live_server["url"]
    app = _staff_app(live_server)
    with app.app_context():
        _world, grant, pool = _euro_grant("money-e2e-defender", "3000", "Money Journey Defender")
        uid, pool_uid = grant.application.uid, pool.uid
        db.session.remove()
        db.engine.dispose()
    case_url = f"{url}/applications/{uid}"
    page = browser.new_context(java_script_enabled=False).new_page()

    # A manager plans the grant: two tranches a month apart, the first today.
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.goto(case_url)
    page.get_by_label("How it is paid").select_option("tranches")
    page.get_by_label("First payment on").fill(date.today().isoformat())
    page.get_by_label("Number of tranches or months").fill("2")
    page.get_by_label("Days between tranches").fill("30")
    page.get_by_role("button", name="Save the plan").click()
    assert "2 tranches." in page.content()
    _sign_out(page)

    # Finance pays the first tranche in euros from the dollar pool, with a 12.40 USD fee.
    _staff_sign_in(page, live_server, app, "demo-finance1", home="Dashboard")
    page.goto(case_url)
    proof = tmp_path / "transfer.pdf"
    proof.write_bytes(PDF)
    _pay(page, "E2E-TRF-1", "12.40", proof)
    assert "Payment recorded." in page.content()
    first = page.locator("table.ledger tr", has_text="E2E-TRF-1")
    assert "€1,500.00" in first.inner_text() and "$12.40" in first.inner_text()
    assert "Casa Refugio" in first.inner_text()
    assert re.search(r"rate [\d.]+, ", first.inner_text()), "the frozen rate and its source"

    # The bank returns it: finance reverses it with the reason, fee not refunded.
    first.locator("summary", has_text="Reverse").click()
    first.get_by_label("Why (bounced, returned, wrong amount...)").fill(
        "Returned: the host's account was closed"
    )
    first.get_by_role("button", name="Record the reversal").click()
    assert "all of the payment has come back." in page.content()
    assert "Reversal: Returned: the host" in page.content()

    # Paid again to the new account; the instalment is payable again after the reversal.
    _pay(page, "E2E-TRF-2", "9.80")
    assert "Payment recorded." in page.content()
    _sign_out(page)

    # The defender sees the payment that stands, and says that less of it arrived.
    defender_page = browser.new_context(java_script_enabled=False).new_page()
    _sign_in(defender_page, url, "money-e2e-defender", PASSWORD)
    defender_page.goto(case_url)
    html = defender_page.content()
    assert "Casa Refugio" not in html and "E2E-TRF" not in html  # payee data: finance only
    confirm = defender_page.get_by_role("button", name="I received it")
    assert confirm.count() == 1, "a reversed payment cannot be answered"
    defender_page.get_by_label("Amount you received").fill("1450.00")
    defender_page.get_by_label("A short note for the fund").fill("The agent kept a fee")
    defender_page.get_by_role("button", name="I received less").click()
    assert "now knows that less arrived" in defender_page.content()
    assert "<script" not in defender_page.content()

    # Finance sees it at once on follow-up, with what is missing, and resolves it; the
    # grant's ledger says what the defender reported.
    _staff_sign_in(page, live_server, app, "demo-finance1", home="Dashboard")
    page.goto(f"{url}/payments/follow-up")
    reported = page.locator("#mismatches + p + table tr", has_text="E2E-TRF-2").first
    text = reported.inner_text()
    assert "received short" in text and "50.00" in text and "The agent kept a fee" in text
    reported.locator("summary", has_text="Resolve").click()
    reported.get_by_label("How it was resolved").select_option("contacted")
    reported.get_by_role("button", name="Record how it was resolved").click()
    assert "Resolved: the report leaves the follow-up list." in page.content()
    page.goto(case_url)
    second = page.locator("table.ledger tr", has_text="E2E-TRF-2").first
    assert "reported received short by the payee side on" in second.inner_text()
    page.goto(f"{url}/pools/{pool_uid}")
    shown = {name: _amount(page.locator(f"#{fid}").inner_text()) for name, fid in FIGURES.items()}
    # Printed with the sign each has in the sum that makes available: they add up.
    less = ("committed", "fees", "exchange differences")
    assert shown["received"] + sum(shown[k] for k in less) == shown["available"]
    shown.update((k, -shown[k]) for k in less)
    assert shown["fees"] >= Decimal("22.20")

    # `flask hrdfund check` passes and adds up the same figures from the rows.
    out = _check_output(live_server)
    assert out.startswith("OK: ledger balanced")
    line = next(x for x in out.splitlines() if x.startswith(f"Pool {pool_uid} "))
    checked = {
        name: Decimal(value)
        for name, value in re.findall(r"([a-z][a-z ]*?) (-?\d+\.\d\d)", line.split(": ", 1)[1])
    }
    assert checked == shown


def test_a_payment_waiting_for_a_second_person_is_confirmed_on_a_phone(live_server, browser):
    """A payment held for a second person (its fee a large share of it) is confirmed by a
    manager on a 390 px phone with JavaScript off: the button is on the screen, not in a
    column of a table scrolled out of sight."""
    url = live_server["url"]
    app = _staff_app(live_server)
    with app.app_context():
        world, grant, _pool = _euro_grant("held-e2e-defender", "1000", "Held Journey Defender")
        held = pay(world, grant, "400", instalment=None, fee=Decimal("150.00"))
        assert isinstance(held, HeldPayment), "a fee of more than a tenth waits"
        uid = grant.application.uid
        db.session.remove()
        db.engine.dispose()
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    _staff_sign_in(page, live_server, app, "demo-manager1")
    page.goto(f"{url}/applications/{uid}")
    button = page.get_by_role("button", name="Confirm and book")
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    button.click()
    assert "Payment confirmed and booked." in page.content()
    context.close()
