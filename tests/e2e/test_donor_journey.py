"""A donor in a real browser with JavaScript off: signs in with a code from an authenticator
app, sees its two pools, their figures adding up as printed, downloads this quarter's PDF
and CSV (the account so far, the PDF's figures the portal's to the cent, and a word that
who was supported comes when the quarter ends), then the last quarter's, whose CSV lists
grants and adds up to what the PDF counts."""

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
    """Money in a text as Decimals, whatever the currency sign (a code of letters a space
    away from the figures), with the minus before it."""
    return [
        Decimal(sign + a.replace(",", ""))
        for sign, a in re.findall(r"(-?)[^\d\s-]{0,4}?[\u00a0 ]?(\d[\d,]*\.\d\d)", text)
    ]


def test_a_donor_downloads_this_quarters_reports(live_server, browser, tmp_path):
    app = _staff_app(live_server)
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    _staff_sign_in(page, live_server, app, "demo-donor1", home="Your pools")

    sections = page.locator("section.pool")
    assert sections.count() == 2
    portal = {}
    for i in range(2):
        section = sections.nth(i)
        name = section.locator("h2").inner_text().rsplit(" (", 1)[0]
        figures = {}
        # The pool's account (its two tables of figures), not the chart's data, the
        # quarter against the last, or who the pool supported.
        rows = section.locator("table.figures:not(.compared):not(.breakdown) tr")
        for j in range(rows.count()):
            label = rows.nth(j).locator("th").inner_text()
            figures.setdefault(label, _amounts(rows.nth(j).locator("td").inner_text())[0])
        portal[name] = figures
    assert set(portal) == set(NORDIC)
    for f in portal.values():  # the portal adds up as printed
        terms = ("Received", "Committed to grants", "Fees", "Exchange differences")
        assert sum(f[k] for k in terms) == f["Available"]
        assert f["Paid out"] + f["Still to pay"] == f["Committed"] == -f["Committed to grants"]

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
    # The period in words, as the portal names it (its code is the file's and address's).
    ordinal = ("1st", "2nd", "3rd", "4th")[(today.month - 1) // 3]
    assert "Report to Nordic Solidarity Foundation" in text
    assert f"Period: {ordinal} quarter {today.year}" in text
    # The position at the end of the running quarter is the portal's, to the cent.
    position = text.split("Since the pool opened, at the end of the period", 1)[1]
    received, committed, fees, differences, available, disbursed = _amounts(position)[:6]
    mine = portal[NORDIC[0]]
    assert [received, committed, fees, differences, available, disbursed] == [
        mine["Received"],
        mine["Committed to grants"],
        mine["Fees"],
        mine["Exchange differences"],
        mine["Available"],
        mine["Paid out"],
    ]
    assert re.search(r"Page \d+ of \d+", text)
    assert not (reader.metadata.author or reader.metadata.creator)

    # The quarter has not ended: the account, and a word that the rest comes after.
    assert "This period has not ended" in " ".join(text.split())
    assert "Who the pool supported" in text and "By gender" not in text
    account = text.split("The pool's account", 1)[1]
    lines = list(csv.DictReader(io.StringIO(csv_text)))
    assert [line["Grant code"] for line in lines] == ["Period not ended", "Total"]
    money = _amounts(account)
    disbursements, reversals = abs(money[3]), money[4]
    assert Decimal(lines[-1]["Paid in the period"]) == disbursements - reversals

    # The quarter before has ended: who was supported, and the CSV's lines.
    year, q = int(quarter[:4]), int(quarter[-1])
    previous = f"{year}-Q{q - 1}" if q > 1 else f"{year - 1}-Q4"
    form.get_by_label("Period").select_option(previous)
    with page.expect_download() as pdf_download:
        form.get_by_role("button", name="Download PDF").click()
    pdf_download.value.save_as(pdf_path)
    with page.expect_download() as csv_download:
        form.get_by_role("button", name="Download CSV").click()
    csv_text = csv_download.value.path().read_text()
    text = "\n".join(p.extract_text() for p in PdfReader(str(pdf_path)).pages)
    assert "By gender" in text and "This period has not ended" not in " ".join(text.split())
    # The CSV's total is what the PDF counts: the account's disbursements less reversals,
    # less those recorded after the quarter ended, plus those recorded in it but dated
    # before; the lines are grants, then those without consent to be listed.
    account, after, before, counted = _amounts(text.split("Payments counted below", 1)[1])[:4]
    assert account + after + before == counted
    lines = list(csv.DictReader(io.StringIO(csv_text)))
    # After the total, the one line on defenders other funds supported too (the demo's
    # pool has none in the quarter, or too few to say).
    elsewhere = lines.pop()
    assert elsewhere["Grant code"] == "Defenders also supported by other funds"
    assert elsewhere["Grants"] in ("0", "fewer than 5")
    assert lines[-1]["Grant code"] == "Total"
    assert Decimal(lines[-1]["Paid in the period"]) == counted
    assert lines[-2]["Grant code"] == "Not listed"  # grants without consent to be listed
    listed = lines[:-2]
    if listed:
        assert all(line["Grant code"].startswith("G-") for line in listed)
    else:
        # The demo world is drawn anew each hour: in some hours 1 to 4 of the quarter's
        # grants have no consent to be listed, and then the quarter lists no grant at all
        # (README, Anonymisation), what they committed hidden with them.
        committed = "Committed to the grant by the period's end"
        assert lines[-2][committed] == lines[-1][committed] == "hidden"
        assert Decimal(lines[-2]["Paid in the period"]) == counted
    context.close()
