"""A donor in a real browser with JavaScript off: signs in with a code from an authenticator
app, sees its two pools, downloads this quarter's PDF and CSV; the PDF's figures are the
portal's, to the cent, and the CSV adds up to the PDF."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from tests.e2e.test_applicant_journey import _staff_app
from tests.e2e.test_review_journey import _staff_sign_in

pytestmark = pytest.mark.e2e

NORDIC = ("Emergency Protection Pool", "Relocation and Safe Haven")


def _amounts(text):
    """Money in a text as Decimals, whatever the currency sign."""
    return [Decimal(a.replace(",", "")) for a in re.findall(r"-?\d[\d,]*\.\d\d", text)]


def test_a_donor_downloads_this_quarters_reports(live_server, browser, tmp_path):
    app = _staff_app(live_server)
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    _staff_sign_in(page, live_server, app, "demo-donor1", home="Your pools")

    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 2
    portal = {}
    for i in range(2):
        cells = rows.nth(i).locator("td").all_inner_texts()
        portal[cells[0]] = [Decimal(re.sub(r"[^\d.\-]", "", c)) for c in cells[1:]]
    assert set(portal) == set(NORDIC)

    today = date.today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    form = page.locator("form.report-form", has_text=NORDIC[0])
    form.get_by_label("Period").select_option(quarter)
    with page.expect_download() as pdf_download:
        form.get_by_role("button", name="Download PDF").click()
    pdf_path = tmp_path / "report.pdf"
    pdf_download.value.save_as(pdf_path)
    with page.expect_download() as csv_download:
        form.get_by_role("button", name="Download CSV").click()
    csv_text = csv_download.value.path().read_text()

    reader = PdfReader(str(pdf_path))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Report to Nordic Solidarity Foundation" in text and quarter in text
    # The position at the end of the running quarter is the portal's, to the cent.
    position = text.split("Since the pool opened, at the end of the period", 1)[1]
    received, committed, disbursed, _fees, _differences, available = _amounts(position)[:6]
    assert [received, committed, disbursed, available] == portal[NORDIC[0]]
    assert re.search(r"Page \d+ of \d+", text)
    assert not (reader.metadata.author or reader.metadata.creator)

    # The CSV's total is the PDF's disbursements less reversals of the quarter.
    account = text.split("The pool's account", 1)[1]
    lines = list(csv.DictReader(io.StringIO(csv_text)))
    assert lines[-1]["grant_code"] == "total"
    money = _amounts(account)
    disbursements, reversals = abs(money[3]), money[4]
    assert Decimal(lines[-1]["paid_in_period"]) == disbursements - reversals
    assert lines[-2]["grant_code"] == "not listed"  # grants without consent to be listed
    assert lines[:-2] and all(line["grant_code"].startswith("G-") for line in lines[:-2])
    context.close()
