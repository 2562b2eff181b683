"""Donor reports: fixed periods, the anonymisation rules, the pool's account to the cent in
PDF and CSV, the donor's own downloads only, and no case's words in any output."""

import csv
import io
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Consent, ConsentKind, Story
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.money import format_money
from hrdfund.core.support import Category
from hrdfund.disbursements import services as payments
from hrdfund.ledger.balances import pool_figures
from hrdfund.network.models import Referral, ReferralStatus
from hrdfund.reports import anonymise
from hrdfund.reports.csv_export import render_csv
from hrdfund.reports.data import build_report
from hrdfund.reports.grid import breakdown
from hrdfund.reports.pdf import render_pdf
from hrdfund.reports.pdf_kit import (
    escape_text,
    fallback_fonts,
    figures_table,
    place_label,
    report_fonts,
    row_label,
    shown_figure,
    visual,
)
from hrdfund.reports.periods import PeriodError, parse_period, period_name
from tests.conftest import MoneyWorld, agree_to_listing, missing_infrastructure, pay, signed_in

from .clock import Clock

#: The quarter the world's grants were paid in: ended, so its reports say who was paid.
QUARTER = "2026-Q1"


@pytest.mark.parametrize(
    ("code", "start", "end"),
    [
        ("2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("2026-q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-03", date(2026, 3, 1), date(2026, 4, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ],
)
def test_fixed_periods(code, start, end):
    period = parse_period(code)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(
    "code", ["", "2026-13", "2026-Q5", "2026-01-01:2026-02-01", "26", "1999", "9999", "9999-Q4"]
)
def test_free_ranges_are_not_periods(code):
    with pytest.raises(PeriodError):
        parse_period(code)


# -- the suppression rules ------------------------------------------------------------

LABELS = ["a", "b", "c", "d", "e", "f"]
GROUP = st.lists(st.integers(1, 5000), min_size=0, max_size=12).flatmap(
    lambda grants: st.fixed_dictionaries(
        {
            "grants": st.just(len(grants)),
            # A defender may have several grants: between one and one each.
            "defenders": st.integers(min(len(grants), 1), len(grants)),
            "dependants": st.integers(0, 3 * len(grants)),
            "amount": st.just(Decimal(sum(grants))),
            "largest": st.just({"amount": Decimal(max(grants, default=0))}),
        }
    )
)


@settings(max_examples=300, deadline=None)
@given(groups=st.dictionaries(st.sampled_from(LABELS), GROUP, min_size=1, max_size=6))
def test_small_populations_never_show_a_small_count_nor_a_recoverable_one(groups):
    table = breakdown("x", groups)
    for measure in ("grants", "defenders", "dependants", "amount"):
        cells = [row.cells[measure] for row in table.rows]
        total = table.total.cells[measure]
        if measure != "amount":
            for cell in cells + [total]:
                assert not cell.shown or not 0 < cell.value < anonymise.THRESHOLD
        hidden = [cell for cell in cells if not cell.shown]
        # One hidden cell beside a shown total is the total less the others.
        assert not (total.shown and len(hidden) == 1)
    for row in table.rows + [table.total]:
        if not row.cells["grants"].shown:
            # What a group too small to show has or has not: its money, its dependants.
            assert not row.cells["amount"].shown
            assert not row.cells["dependants"].shown
    for row in table.rows:
        amount = row.cells["amount"]
        if amount.shown and amount.value:
            assert groups[row.label]["largest"]["amount"] * 2 <= groups[row.label]["amount"]


def test_a_single_small_cell_hides_the_next_smallest_too():
    table = breakdown(
        "category",
        {
            "legal": {"grants": 3, "defenders": 3, "dependants": 0, "amount": Decimal(900)},
            "medical": {"grants": 6, "defenders": 6, "dependants": 9, "amount": Decimal(1800)},
            "relocation": {"grants": 9, "defenders": 8, "dependants": 12, "amount": Decimal(5000)},
        },
    )
    grants = {row.label: row.cells["grants"] for row in table.rows}
    assert grants["legal"].hidden == anonymise.SMALL
    assert grants["medical"].hidden == anonymise.SECONDARY
    assert grants["relocation"].shown and table.total.cells["grants"].value == 18


def test_the_dependants_of_a_group_too_small_to_show_are_not_shown_either():
    """Beside "fewer than 5" defenders, 5 dependants (or none) would say what those few
    have: hidden with the count, in words that do not claim the figure is under 5."""
    table = breakdown(
        "region",
        {
            "East Africa": {"grants": 2, "defenders": 2, "dependants": 5, "amount": Decimal(900)},
            "Andean region": {"grants": 3, "defenders": 3, "dependants": 0, "amount": Decimal(800)},
            # 1 to 4 dependants read as none do, not "fewer than 5": that would say this
            # small group has some where the others have none.
            "Caribbean": {"grants": 1, "defenders": 1, "dependants": 2, "amount": Decimal(300)},
            "Southern Africa": {
                "grants": 7,
                "defenders": 7,
                "dependants": 6,
                "amount": Decimal(2100),
            },
            "West Africa": {"grants": 8, "defenders": 8, "dependants": 9, "amount": Decimal(2400)},
        },
    )
    rows = {row.label: row.cells for row in table.rows}
    for small in ("East Africa", "Andean region", "Caribbean"):
        assert rows[small]["defenders"].hidden == anonymise.SMALL
        assert rows[small]["dependants"].hidden == anonymise.GROUP
    # The total less the rows shown would give the hidden ones' sum only.
    assert table.total.cells["dependants"].shown and table.total.cells["dependants"].value == 22
    shown = [cells["dependants"] for cells in rows.values() if cells["dependants"].shown]
    assert len(shown) <= 2


def test_high_risk_countries_show_only_their_region(app):
    app.config["HIGH_RISK_COUNTRIES"] = "BY, ru"
    assert anonymise.place("BY") == "Eastern Europe and Central Asia"
    assert anonymise.place("RU") == "Eastern Europe and Central Asia"
    assert anonymise.place("KE") == "Kenya"
    assert anonymise.place(None) == anonymise.NOT_SHOWN


def test_line_items_shared_by_fewer_than_five_are_generalised():
    items = [{"category": "legal", "place": "Kenya", "region": "East Africa"} for _ in range(5)] + [
        {"category": "legal", "place": "Uganda", "region": "East Africa"},
        {"category": "medical", "place": "Peru", "region": "Andean region"},
    ]
    anonymise.generalise(items)
    pairs = [(i["category"], i["place"]) for i in items]
    assert pairs.count(("legal", "Kenya")) == 5
    assert ("legal", "Uganda") not in pairs and ("medical", "Peru") not in pairs
    for pair in set(pairs):
        assert pairs.count(pair) >= anonymise.THRESHOLD or pair[1] == anonymise.NOT_SHOWN


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1", "'+1"),
        ("@SUM", "'@SUM"),
        ("-cmd", "'-cmd"),
        ("-12.50", "-12.50"),
        ("Kenya", "Kenya"),
    ],
)
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(value, written):
    assert anonymise.csv_safe(value) == written


# -- the report -------------------------------------------------------------------------

CANARIES = {
    "defender_name": "CANARY-NAME-4Q",
    "defender_work": "CANARY-WORK-7Z",
    "threat": "CANARY-THREAT-2M",
    "urgency_reason": "CANARY-URGENT-9K",
    "other_funders": "CANARY-FUNDERS-5T",
}


@pytest.fixture
def world(fund, make_user, make_donor):
    """Seven grants from the EUR pool approved and paid on 3 February 2026, one bounced,
    with canary strings in every sensitive field of every case; the defenders of all but
    the last agreed that donors may see their case, anonymised."""
    world = MoneyWorld(fund, make_user, make_donor)
    world.grants = []
    with Clock().on(datetime(2026, 2, 3, 10)):
        _pay_seven(world)
    return world


@pytest.fixture
def listed_world(world):
    """The world, its seventh defender having agreed too before any report: every grant
    is listed in the CSV."""
    agree_to_listing(world.grants[6].application)
    db.session.commit()
    return world


def _pay_seven(world):
    for n in range(7):
        grant = world.grant(str(1000 + 100 * n), pool=world.eur, name=f"Defender {n}")
        case = grant.application
        for field, canary in CANARIES.items():
            setattr(case, field, f"{canary}-{n}")
        case.details = {"provider": f"CANARY-DETAIL-{n}"}
        world.grants.append(grant)
        payment = pay(world, grant, str(500 + 10 * n), instalment=None, reference=f"REF-{n}")
        if n == 0:
            payments.reverse_disbursement(payment, world.finance, "bounced")
        if n < 6:
            agree_to_listing(case)
    db.session.commit()


def pdf_text(body):
    reader = PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages), reader.metadata


def test_the_account_adds_up_to_the_cent_in_pdf_and_csv(world):
    period = parse_period(QUARTER)
    report = build_report(world.eur, period)
    s = report["summary"]
    assert s["opening_balance"] == 0
    assert (
        s["opening_balance"]
        + s["contributions"]
        - s["contributions_reversed"]
        - s["disbursements"]
        + s["reversals"]
        - s["fees"]
        - s["exchange_differences"]
        == s["closing_balance"]
    )
    assert s["disbursements"] == sum(Decimal(500 + 10 * n) for n in range(7))
    assert s["reversals"] == Decimal(500)
    # Nothing was recorded since the quarter: its closing position is the pool page's.
    figures = pool_figures([world.eur.id])[world.eur.id]
    assert {k: report["position"][k] for k in figures} == figures
    text, metadata = pdf_text(render_pdf(report))
    for key in ("received", "committed", "disbursed", "available"):
        assert format_money(figures[key], "EUR") in text
    assert format_money(s["closing_balance"], "EUR") in text
    assert "Page 1 of" in text and report["digest"] in text.replace("\n", "")
    assert "Variances of 10% or more" in " ".join(text.split())
    # The cover names the period in words, as the portal does, not by its code; the
    # pool's account follows it on the first page (a page of its own held nothing else).
    assert f"Period: {period_name(period)} (" in text and QUARTER not in text
    first_page = PdfReader(io.BytesIO(render_pdf(report))).pages[0].extract_text()
    assert "Report to" in first_page and "Financial summary" in first_page
    assert metadata.title == "Donor report" and not metadata.author
    lines = list(csv.DictReader(io.StringIO(render_csv(report))))
    # The seventh defender did not agree to be listed: with six lines listed, the total
    # less them would be what they were paid. So no line is listed: the seven grants in
    # one line, a total, then the defenders other funds supported too: none.
    assert len(lines) == 3
    assert lines[-1]["Grant code"] == "Defenders also supported by other funds"
    assert lines[-1]["Grants"] == "0"
    lines = lines[:-1]
    assert lines[0]["Grant code"] == "Not listed" and lines[0]["Grants"] == "7"
    assert Decimal(lines[0]["Paid in the period"]) == s["disbursements"] - s["reversals"]
    total = lines[-1]
    assert total["Grant code"] == "Total"
    assert Decimal(total["Paid in the period"]) == s["disbursements"] - s["reversals"]
    assert sum(Decimal(line["Paid in the period"]) for line in lines[:-1]) == Decimal(
        total["Paid in the period"]
    )
    # What the grants had committed by the quarter's end is hidden where no line is
    # listed: a grant's stays the same from period to period, so a period's sum less the
    # lines of others would give the unlisted ones'.
    committed = "Committed to the grant by the period's end"
    assert lines[0][committed] == total[committed] == "hidden"


def test_each_listed_grant_says_what_the_pool_committed_to_it(listed_world):
    """Where the lines are listed, each says what the pool committed to its grant by the
    quarter's end, and the total line adds them up to the pool's commitments."""
    world = listed_world
    report = build_report(world.eur, parse_period(QUARTER))
    lines = list(csv.DictReader(io.StringIO(render_csv(report))))[:-1]
    assert len(lines) == 9 and lines[-2]["Grants"] == "0"
    committed = "Committed to the grant by the period's end"
    total = lines[-1]
    assert Decimal(total[committed]) == sum(Decimal(line[committed]) for line in lines[:-1])
    figures = pool_figures([world.eur.id])[world.eur.id]
    assert Decimal(total[committed]) == figures["committed"]


def test_no_case_words_reach_a_donor_output(listed_world):
    world = listed_world
    report = build_report(world.eur, parse_period(QUARTER))
    assert report["items"], "the lines of the quarter are in the CSV"
    text, metadata = pdf_text(render_pdf(report))
    data = render_csv(report)
    outputs = [text, data, str(dict(metadata))]
    for grant in world.grants:
        outputs_hold = [grant.application.uid, grant.uid, "REF-", "IBAN", "CANARY"]
        for needle in outputs_hold:
            for output in outputs:
                assert needle not in output


def test_codes_differ_between_donors(world, make_donor):
    grant = world.grants[1]
    mine = anonymise.donor_code(world.donor.id, grant.uid, 2026)
    other = anonymise.donor_code(make_donor("Other Donor").id, grant.uid, 2026)
    next_year = anonymise.donor_code(world.donor.id, grant.uid, 2027)
    assert len({mine, other, next_year}) == 3
    assert mine.startswith("G-") and grant.uid not in mine


def test_the_portal_names_periods_in_words_and_offers_the_last_ended_quarter_first(
    app, world, make_user
):
    """Periods read as words (1st quarter 2026, February 2026), the newest quarter that has
    ended is the one chosen (a running one says nothing about people yet), and a file is
    named after its pool, so that a donor with several pools tells them apart."""
    client = signed_in(app, make_user("donor", donor_id=world.donor.id))
    page = client.get("/donor").get_data(as_text=True)
    today = utcnow().date()
    done = (today.month - 1) // 3
    last = f"{today.year}-Q{done}" if done else f"{today.year - 1}-Q4"
    periods = page.split('name="period"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]+)" selected', periods) == [last]
    assert f'<option value="{last}" selected>' in page
    assert '<option value="2026-Q1">1st quarter 2026</option>' in page.replace(" selected", "")
    assert '<option value="2026-02">February 2026</option>' in page
    got = client.get(f"/donor/pools/{world.eur.uid}/report?period=2026-Q1&format=csv")
    assert "report-emergency-eur-2026-Q1.csv" in got.headers["Content-Disposition"]


def test_a_donor_downloads_its_own_reports_only(app, world, make_user, make_donor):
    donor = make_user("donor", donor_id=world.donor.id)
    client = signed_in(app, donor)
    portal = client.get("/donor").get_data(as_text=True)
    assert "Download PDF" in portal and world.eur.name in portal
    year = str(date.today().year)
    pdf = client.get(f"/donor/pools/{world.eur.uid}/report?period={year}&format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    got = client.get(f"/donor/pools/{world.eur.uid}/report?period={year}-Q1&format=csv")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert got.get_data(as_text=True).startswith("Grant code,")
    downloads = db.session.execute(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "report.downloaded")
    ).scalar()
    assert downloads == 2
    for bad in ("2026-13", "2026-01-01", f"{date.today().year + 1}"):
        response = client.get(f"/donor/pools/{world.eur.uid}/report?period={bad}&format=pdf")
        assert response.status_code == 404
    stranger = make_user("donor", donor_id=make_donor("Someone Else").id)
    other = signed_in(app, stranger)
    assert other.get(f"/donor/pools/{world.eur.uid}/report?period={year}").status_code == 404
    assert world.eur.name not in other.get("/donor").get_data(as_text=True)
    assert client.get(f"/reports/pools/{world.eur.uid}?period={year}").status_code == 403
    manager = signed_in(app, world.m1)
    staff = manager.get(f"/reports/pools/{world.eur.uid}?period={year}-Q1&format=csv")
    assert staff.status_code == 200 and staff.data == got.data  # what the donor gets


def test_the_report_command_writes_a_file(app, world, runner, tmp_path):
    out = tmp_path / "report.pdf"
    result = runner.invoke(
        args=["hrdfund", "report", "--pool", world.eur.name, "--period", "2026", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "digest" in result.output
    bad = runner.invoke(
        args=["hrdfund", "report", "--pool", "nope", "--period", "2026", "--out", str(out)]
    )
    assert bad.exit_code != 0 and "no such pool" in bad.output


def test_managers_have_an_internal_report_naming_cases(app, world, make_user, monkeypatch):
    from hrdfund.disbursements import followup

    # Lists on pages stop at a cap; the report's counts do not.
    monkeypatch.setattr(followup, "LIMIT", 2)
    year = str(date.today().year)
    page = signed_in(app, world.m1).get(f"/reports/internal?period={year}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "6 receipts not confirmed" in body  # six payments stand, none confirmed
    for grant in world.grants:
        assert grant.application.uid in body  # case codes: managers only
    row = body.split(world.eur.name + "</a></td>", 1)[1].split("</tr>", 1)[0]
    assert format_money(Decimal("3710.00"), "EUR") in row  # disbursed
    assert format_money(Decimal("500.00"), "EUR") in row  # reversed
    assert "instalments due and not paid" in body or "instalment due and not paid" in body
    assert signed_in(app, world.m1).get("/reports/internal?period=2026-13").status_code == 404
    for user in (world.finance, world.reviewer, world.admin, world.applicant):
        assert signed_in(app, user).get(f"/reports/internal?period={year}").status_code in (
            403,
            404,
        )
    donor = make_user("donor", donor_id=world.donor.id)
    assert signed_in(app, donor).get(f"/reports/internal?period={year}").status_code == 403


def _story(world, grant, text, donor=None, withdrawn=False):
    donor = donor or world.donor
    consent = Consent(
        application_id=grant.application_id,
        kind=ConsentKind.STORY,
        donor_id=donor.id,
        method="in the form",
        given_at=utcnow(),
        withdrawn_at=utcnow() if withdrawn else None,
    )
    db.session.add(consent)
    db.session.flush()
    story = Story(
        application_id=grant.application_id,
        donor_id=donor.id,
        consent_id=consent.id,
        written_by_id=world.m1.id,
        approved_by_id=world.m2.id,
        approved_at=utcnow(),
    )
    story.text = text
    db.session.add(story)
    db.session.commit()


def test_stories_only_for_this_donor_and_only_while_consent_stands(world, make_donor):
    _story(world, world.grants[1], "A journalist could keep reporting from a safe town.")
    _story(world, world.grants[2], "Withdrawn story text.", withdrawn=True)
    _story(world, world.grants[3], "Another donor's story.", donor=make_donor("Other"))
    report = build_report(world.eur, parse_period(str(date.today().year)))
    assert report["stories"] == ["A journalist could keep reporting from a safe town."]
    text, _metadata = pdf_text(render_pdf(report))
    assert "keep reporting from a safe town" in text
    assert "Withdrawn story" not in text and "Another donor" not in text


def test_budget_against_actual_flags_variances_of_ten_percent(world):
    """Seven grants committed in the quarter: 9,100 committed, 3,210 paid net (the bounced
    payment taken back): a variance of -64.7%, flagged."""
    report = build_report(world.eur, parse_period(QUARTER))
    total = report["budget"][-1]
    assert total["label"] == "total"
    assert total["budget"].value == Decimal(9100) and total["actual"].value == Decimal(3210)
    assert total["variance"] == Decimal(-5890)
    assert total["percent"] == Decimal("-64.7") and total["flagged"]
    relocation = report["budget"][0]
    assert relocation["label"] == "relocation" and relocation["grants"].value == 7


def test_a_grant_is_listed_only_while_its_defender_agrees(listed_world):
    """A consent withdrawn after the quarter's report was issued takes the grant off the
    CSV; what the report says about people stays as issued. The one grant not listed
    then, no other line is listed either: the total less them would be that grant's."""
    world = listed_world
    period = parse_period(QUARTER)
    code = anonymise.donor_code(world.donor.id, world.grants[1].uid, period.start.year)
    first = build_report(world.eur, period)
    assert code in render_csv(first)
    consent = db.session.execute(
        sa.select(Consent).where(Consent.application_id == world.grants[1].application_id)
    ).scalar_one()
    consent.withdrawn_at = utcnow()
    db.session.commit()
    again = build_report(world.eur, period)
    assert again["breakdowns"] == first["breakdowns"] and again["budget"] == first["budget"]
    data = render_csv(again)
    assert code not in data
    assert len(data.splitlines()) == 4  # the headings, the one line, the total, other funds
    unlisted = data.splitlines()[-3].split(",")
    assert unlisted[:2] == ["Not listed", "7"]
    assert Decimal(unlisted[5]) == sum(Decimal(500 + 10 * n) for n in range(1, 7))
    assert unlisted[4:] == data.splitlines()[-2].split(",")[4:]  # all of the total


def _quarter_of_grants(world, month, listed, apart, amount=700):
    """Grants paid on the 10th to 20th of ``month`` 2026: ``listed`` whose defenders agreed
    to be listed, then ``apart`` whose defenders did not; their payments, in that order."""
    paid = []
    for n in range(listed + apart):
        with Clock().on(datetime(2026, month, 10 + n, 10)):
            grant = world.grant(str(amount + n), pool=world.eur, name=f"Defender {month}-{n}")
            if n < listed:
                agree_to_listing(grant.application)
            db.session.commit()
            paid_on = date(2026, month, 10 + n)
            paid.append(pay(world, grant, str(amount + n), instalment=None, paid_on=paid_on))
    return paid


def _csv_of(world, code):
    """The CSV of ``code`` downloaded once 2026 has ended: its listed lines, and the line
    of the grants not listed."""
    report = build_report(world.eur, parse_period(code), today=date(2027, 1, 5))
    db.session.commit()
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    listed = [r for r in rows if r["Grant code"].startswith("G-")]
    return listed, next(r for r in rows if r["Grant code"] == "Not listed")


def test_lines_are_listed_beside_five_or_more_not_listed_and_a_withdrawal_joins_them(
    fund, make_user, make_donor
):
    """Three defenders agreed to be listed, five did not: three lines, and the five in
    one line, counted. One of the three withdraws: two lines, six in the line apart."""
    world = MoneyWorld(fund, make_user, make_donor)
    paid = _quarter_of_grants(world, 4, listed=3, apart=5)
    listed, apart = _csv_of(world, "2026-04")
    assert len(listed) == 3 and apart["Grants"] == "5"
    assert Decimal(apart["Paid in the period"]) == sum(Decimal(700 + n) for n in range(3, 8))
    consent = db.session.execute(
        sa.select(Consent).where(Consent.application_id == paid[0].grant.application_id)
    ).scalar_one()
    consent.withdrawn_at = utcnow()
    db.session.commit()
    listed, apart = _csv_of(world, "2026-04")
    assert len(listed) == 2 and apart["Grants"] == "6"
    assert Decimal(apart["Paid in the period"]) == sum(Decimal(700 + n) for n in (0, 3, 4, 5, 6, 7))


def test_one_to_four_not_listed_in_a_month_leave_no_line_in_its_quarter_nor_the_year(
    fund, make_user, make_donor
):
    """January: 3 listed, 5 apart. April: 3 listed, 5 apart; May: 5 listed, 1 apart; June:
    2 listed. July: 3 listed, 5 apart of which 4 paid back in full. May lists no line
    (its total less its lines would be the one defender's payment), nor does any period
    of its quarter issued since, June with none apart included (the quarter's lines less
    April's and June's would give each listed grant's part in May, and its number of
    grants less their codes how many May paid); April, issued before with its lines,
    keeps them. July lists none either (the one apart with money kept), nor its quarter;
    nor the year. The first quarter, 5 apart in each of its periods, lists its lines."""
    world = MoneyWorld(fund, make_user, make_donor)
    _quarter_of_grants(world, 1, listed=3, apart=5, amount=400)
    _quarter_of_grants(world, 4, listed=3, apart=5, amount=400)
    _quarter_of_grants(world, 5, listed=5, apart=1, amount=500)
    _quarter_of_grants(world, 6, listed=2, apart=0, amount=300)
    july = _quarter_of_grants(world, 7, listed=3, apart=5, amount=600)
    with Clock().on(datetime(2026, 7, 25, 10)):
        for payment in july[4:]:
            payments.reverse_disbursement(payment, world.finance, "bounced")
        db.session.commit()
    committed = "Committed to the grant by the period's end"
    for code in ("2026-01", "2026-Q1", "2026-04"):
        listed, apart = _csv_of(world, code)
        assert len(listed) == 3 and apart["Grants"] == "5", code
        assert Decimal(apart[committed]) > 0
    for code in ("2026-05", "2026-06", "2026-Q2", "2026-07", "2026-08", "2026-Q3", "2026"):
        listed, apart = _csv_of(world, code)
        assert listed == [] and apart["Grants"] not in ("1", "2", "3", "4"), code
        # What a grant had committed stays the same from period to period: the sum of a
        # period listing none, less listed lines' elsewhere, would give the unlisted ones'.
        assert apart[committed] == "hidden", code
    listed, apart = _csv_of(world, "2026-05")
    assert Decimal(apart["Paid in the period"]) == sum(Decimal(500 + n) for n in range(6))


@pytest.mark.parametrize(
    "language, heading, kind, total, kenya",
    [
        ("fr", "Code de la subvention", "Relocalisation", "Total", "Kenya"),
        ("es", "Código de la subvención", "Reubicación", "Total", "Kenia"),
    ],
)
def test_a_donor_reads_the_csv_in_the_language_chosen_at_download(
    app, listed_world, make_user, language, heading, kind, total, kenya
):
    """The CSV's headings, kinds of support, places and closing words are the donor's, as
    the PDF's are; the figures stay plain digits a spreadsheet reads."""
    world = listed_world
    client = signed_in(app, make_user("donor", donor_id=world.donor.id))
    url = f"/donor/pools/{world.eur.uid}/report?period={QUARTER}&format=csv&language={language}"
    got = client.get(url)
    rows = list(csv.reader(io.StringIO(got.get_data(as_text=True))))
    assert rows[0][0] == heading and "grant_code" not in rows[0]
    assert kind in {row[2] for row in rows[1:-3]}
    assert {row[3] for row in rows[1:-3]} == {kenya}
    assert rows[-2][0] == total and Decimal(rows[-2][5]) > 0
    english = client.get(url.replace(f"language={language}", "language=en"))
    assert english.get_data(as_text=True).startswith("Grant code,Grants,Kind of support,")


@pytest.mark.parametrize(
    "language, words",
    [
        ("es", ("No se muestra", "Kenia", "Oriente Medio y Norte de África")),
        ("fr", ("Non affiché", "Kenya", "Moyen-Orient et Afrique du Nord")),
    ],
)
def test_a_listed_grants_place_is_in_the_reports_language(app, language, words):
    """A place is kept in English in the report (its digest is the same in every
    language) and written in the donor's: "not shown", a country, a region."""
    with force_locale(language):
        shown = [
            place_label(v) for v in (anonymise.NOT_SHOWN, "Kenya", "Middle East and North Africa")
        ]
        by_region = row_label("region", "Middle East and North Africa")
    assert tuple(shown) == words
    assert by_region == words[2]  # a table's row by region, as the PDF and portal show it


def test_the_pdf_writes_its_period_and_amounts_as_the_reports_language_does(app, world):
    """A period's first and last days in words of the language chosen, not as ISO dates;
    amounts as that language writes them (1.500,00 €), not the English way."""
    report = build_report(world.eur, parse_period(QUARTER))
    with app.test_request_context(), force_locale("es"):
        text, _metadata = pdf_text(render_pdf(report))
        closing = format_money(report["summary"]["closing_balance"], "EUR", "es")
    text = " ".join(text.split())
    assert "1 de enero de 2026" in text and "31 de marzo de 2026" in text
    assert "2026-01-01" not in text
    assert " ".join(closing.split()) in text
    assert format_money(report["summary"]["closing_balance"], "EUR") not in text


@pytest.mark.parametrize("language", ["en", "fr", "es"])
def test_every_heading_and_figure_of_the_pdf_fits_its_column(app, world, monkeypatch, language):
    """French and Spanish headings are longer than English ones ("Personnes défenseures",
    "Subvenciones"): each goes on as many lines as it needs inside its column, never over
    the next one; no word and no amount is wider than its column."""
    if report_fonts()["regular"] == "Helvetica":
        missing_infrastructure("DejaVu Sans is not installed (Debian: fonts-dejavu-core)")
    tables = []

    def kept(*args, **kwargs):
        tables.append(figures_table(*args, **kwargs))
        return tables[-1]

    monkeypatch.setattr("hrdfund.reports.pdf.figures_table", kept)
    with app.test_request_context(), force_locale(language):
        render_pdf(build_report(world.eur, parse_period(QUARTER)))
    assert len(tables) >= 6, "the account, budget, breakdowns and timeliness are tables"
    too_wide = []
    for table in tables:
        for row, styles in zip(table._cellvalues, table._cellStyles, strict=True):
            for cell, width, style in zip(row, table._colWidths, styles, strict=True):
                room = width - style.leftPadding - style.rightPadding
                if isinstance(cell, str):
                    needed = pdfmetrics.stringWidth(cell, report_fonts()["bold"], 8.5)
                else:  # the paragraphs the table holds in the cell
                    needed = max(p.minWidth() for p in cell)
                    cell = " ".join(p.text for p in cell)
                if needed > room:
                    too_wide.append((cell, round(needed), round(room)))
    assert too_wide == [], "\n".join(map(repr, too_wide))


def test_a_hidden_amount_says_hidden_not_fewer_than_5(app):
    """ "fewer than 5" beside a currency reads as a sum under 5 of it."""
    cell = anonymise.Cell(Decimal("1234"), anonymise.SMALL)
    with app.test_request_context():
        assert shown_figure(cell, "EUR") == "hidden"
        assert shown_figure(anonymise.Cell(3, anonymise.SMALL)) == "fewer than 5"


def test_the_pool_page_offers_the_donors_report(app, world):
    page = signed_in(app, world.finance).get(f"/pools/{world.eur.uid}").get_data(as_text=True)
    assert f'action="/reports/pools/{world.eur.uid}"' in page
    assert f'<option value="{date.today().year}">' in page and "Download CSV" in page


ARABIC = "حماية المدافعين"
RUSSIAN = "Безопасность прежде всего"
CHINESE = "保护人权捍卫者"


def _fonts(reader):
    """Each font the PDF uses: its name and whether the file is embedded in it."""
    found = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object().get("/FontDescriptor")
                embedded = descriptor is not None and any(
                    key in descriptor.get_object()
                    for key in ("/FontFile", "/FontFile2", "/FontFile3")
                )
                found[str(font["/BaseFont"])] = embedded
    return found


@pytest.mark.parametrize("language, heading", [("fr", "Récits"), ("es", "Relatos")])
def test_a_report_in_french_or_spanish_prints_every_glyph_of_an_arabic_and_a_russian_quote(
    app, world, language, heading
):
    """The donor's language for the report's words; the defender's own words, in any script,
    drawn with an embedded font that has every glyph, Arabic letters joined and read right
    to left, Chinese in the fallback font that has its letters."""
    if report_fonts()["regular"] == "Helvetica":
        missing_infrastructure("DejaVu Sans is not installed (Debian: fonts-dejavu-core)")
    if not fallback_fonts():
        missing_infrastructure("WenQuanYi Zen Hei is not installed (Debian: fonts-wqy-zenhei)")
    text = f"« {ARABIC} », disait-elle ; « {RUSSIAN} » ; « {CHINESE} »."
    _story(world, world.grants[1], text)
    with app.test_request_context(), force_locale(language):
        body = render_pdf(build_report(world.eur, parse_period(str(date.today().year))))
    reader = PdfReader(io.BytesIO(body))
    fonts = _fonts(reader)
    assert fonts and all(fonts.values()), fonts  # every font embedded, as pdffonts says
    assert all("Helvetica" not in name for name in fonts), fonts
    extracted, _metadata = pdf_text(body)
    assert heading in extracted
    assert RUSSIAN in extracted and CHINESE in extracted
    assert any("WenQuanYi" in name for name in fonts), fonts  # the fallback, embedded
    # Drawn in the order the eye reads it, in joined forms: read back, the same letters.
    shown = unicodedata.normalize("NFKC", extracted)
    assert ARABIC[::-1] in shown or ARABIC in shown
    face = pdfmetrics.getFont(report_fonts()["regular"]).face
    drawn = visual(text)
    assert drawn != text  # the Arabic run was shaped and ordered
    fallback = pdfmetrics.getFont("ReportCJK").face
    assert [hex(ord(c)) for c in drawn if ord(c) not in face.charToGlyph] == [
        hex(ord(c)) for c in CHINESE
    ]
    assert all(ord(c) in fallback.charToGlyph for c in CHINESE)
    assert f'<font face="ReportCJK">{CHINESE}</font>' in escape_text(text)


# -- defenders other funds supported too -------------------------------------------------


def _linked(world, make_fund, cases, outgoing=(), incoming=(), at=datetime(2026, 2, 10, 9)):
    """Accepted referrals linking cases to another fund, ``at``: the fund's own case
    referred out (``outgoing``), or the fund's case made by accepting another fund's
    (``incoming``)."""
    other = make_fund("Sanctuary Fund Of Elsewhere")
    source = world.recommended("Other Fund's Defender", Category.RELOCATION, "EUR", None)
    source.fund_id = other.id
    db.session.flush()

    def refer(case, to_fund, linked, status=ReferralStatus.ACCEPTED, when=at):
        db.session.add(
            Referral(
                application_id=case.id,
                from_fund_id=case.fund_id,
                to_fund_id=to_fund.id,
                category=Category.MEDICAL,
                amount=Decimal("100.00"),
                currency="EUR",
                answer_by=date(2026, 3, 1),
                status=status,
                created_by_id=world.m1.id,
                created_at=when,
                answered_at=when,
                linked_application_id=linked.id if linked is not None else None,
            )
        )

    for n in outgoing:
        refer(cases[n], other, None)
    for n in incoming:
        refer(source, world.fund, cases[n])
    db.session.commit()
    return other, refer


def _other_funds_line(report):
    text, _metadata = pdf_text(render_pdf(report))
    text = " ".join(text.split())
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    return text, rows[-1]


def test_the_line_is_hidden_while_the_number_of_defenders_is(world, make_fund):
    """The quarter's number of defenders is hidden (January's two would be the quarter's
    less February's): the line, six here, is hidden with it, so that it gives no bound on
    the hidden number."""
    with Clock().on(datetime(2026, 1, 20, 10)):
        for n in range(2):
            grant = world.grant("300", pool=world.eur, name=f"January {n}")
            agree_to_listing(grant.application)
            db.session.commit()
            pay(world, grant, "300", instalment=None, paid_on=date(2026, 1, 20))
    cases = [grant.application for grant in world.grants]
    _linked(world, make_fund, cases, outgoing=[1, 2, 3], incoming=[4, 5, 6])
    report = build_report(world.eur, parse_period(QUARTER))
    assert not report["breakdowns"]["category"].total.cells["defenders"].shown
    assert report["other_funds"] == anonymise.Cell(6, anonymise.SECONDARY)
    assert _other_funds_line(report)[1][1] == "hidden"


def test_few_defenders_supported_elsewhere_show_as_fewer_than_5(world, make_fund):
    """One defender of the quarter's six whom another fund supported too: the PDF and the
    CSV say "fewer than 5", and never name that fund."""
    cases = [grant.application for grant in world.grants]
    other, _refer = _linked(world, make_fund, cases, outgoing=[1])
    report = build_report(world.eur, parse_period(QUARTER))
    assert report["other_funds"].value == 1 and not report["other_funds"].shown
    text, line = _other_funds_line(report)
    assert "whom other funds of the network supported too: fewer than 5." in text
    assert line[:2] == ["Defenders also supported by other funds", "fewer than 5"]
    assert other.name not in text and other.name not in render_csv(report)


def test_defenders_supported_elsewhere_are_counted_in_either_direction(world, make_fund):
    """All six defenders paid in the quarter are linked to another fund by a referral
    accepted in February, three referred out and three taken on from the other fund: the
    line shows 6. The bounced grant's defender, paid nothing net, is not counted. (The
    seventh defender agreed to be listed too, so that the number of defenders shows.)"""
    cases = [grant.application for grant in world.grants]
    agree_to_listing(cases[6])
    other, _refer = _linked(world, make_fund, cases, outgoing=[0, 1, 2, 3], incoming=[4, 5, 6])
    report = build_report(world.eur, parse_period(QUARTER))
    assert report["other_funds"] == anonymise.Cell(6, None)
    text, line = _other_funds_line(report)
    assert "whom other funds of the network supported too: 6." in text
    assert line[:2] == ["Defenders also supported by other funds", "6"]
    assert other.name not in text


def test_only_accepted_referrals_by_the_periods_end_count_and_few_left_out_hide_it(
    world, make_fund
):
    """Five of the six linked by February, the sixth only declined then, and accepted in
    May: the quarter counts five, and hides it, since the one defender it leaves out would
    be singled out."""
    cases = [grant.application for grant in world.grants]
    other, refer = _linked(world, make_fund, cases, outgoing=[1, 2, 3, 4, 5])
    refer(cases[6], other, None, status=ReferralStatus.DECLINED)
    refer(cases[6], other, None, when=datetime(2026, 5, 4, 9))
    refer(cases[6], other, None, status=ReferralStatus.PENDING)
    db.session.commit()
    quarter = build_report(world.eur, parse_period(QUARTER))
    assert quarter["other_funds"] == anonymise.Cell(5, anonymise.SECONDARY)
    _text, line = _other_funds_line(quarter)
    assert line[1] == "hidden"


def test_the_line_is_issued_once_with_the_periods_figures(world, make_fund):
    """Issued with the quarter's figures: a referral accepted later, dated back into the
    quarter, changes no later copy of it."""
    cases = [grant.application for grant in world.grants]
    first = build_report(world.eur, parse_period(QUARTER))
    assert first["other_funds"] == anonymise.Cell(0, None)
    _linked(world, make_fund, cases, outgoing=[1, 2, 3, 4, 5, 6])
    again = build_report(world.eur, parse_period(QUARTER))
    assert again["other_funds"] == first["other_funds"]
    assert again["digest"] == first["digest"]


def test_timeliness_reads_in_days_and_hides_under_five_cases(fund, make_user, make_donor, clock):
    """Six grants approved in March and first paid three days later: the report of March
    gives the median and 90th percentile in days; the payment of February's one grant is
    not timed ("fewer than 5")."""
    world = MoneyWorld(fund, make_user, make_donor)
    for n in range(7):
        month = 2 if n == 0 else 3
        clock.at(datetime(2026, month, 2 + n, 9))
        grant = world.grant("800", name=f"Timely Defender {n}")
        clock.at(datetime(2026, month, 5 + n, 9 + (n % 2) * 12))
        pay(world, grant, "800", instalment=None, paid_on=date(2026, month, 5 + n))
    clock.stop()
    march = build_report(world.eur, parse_period("2026-03"), today=date(2026, 4, 2))
    payment = march["timeliness"]["payment"]
    assert payment["shown"] and payment["cases"] == 6
    text = " ".join(
        " ".join(
            page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(march))).pages
        ).split()
    )
    assert "Days Cases Median 90th percentile Target Within" in text
    assert "From decision to first payment 6 3.0 3.5" in text
    february = build_report(world.eur, parse_period("2026-02"), today=date(2026, 4, 2))
    text = " ".join(
        " ".join(
            page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(february))).pages
        ).split()
    )
    assert "From decision to first payment fewer than 5" in text


def test_the_portal_draws_each_pool_and_sets_this_quarter_against_the_last(
    app, fund, make_user, make_donor, clock
):
    """The donor's portal draws each pool over time (inline SVG, with its table) and
    sets this quarter's money so far beside the last quarter's, to the cent."""
    from hrdfund.pools import services as pools

    world = MoneyWorld(fund, make_user, make_donor)  # 20,000 EUR received on 2 January
    with clock.on(datetime(2026, 4, 8, 10)):
        pools.record_contribution(world.eur, world.m1, Decimal("1250.50"), "EUR", date(2026, 4, 8))
        db.session.commit()
        page = signed_in(app, make_user("donor", donor_id=world.donor.id)).get("/donor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count("<svg") == 2 and "Emergency EUR over time" in html
    table = html[html.index("This quarter so far against the last one") :]
    table = table[: table.index("</table>")]
    assert "1st quarter 2026" in table and "2nd quarter 2026 (so far)" in table
    assert "2026-Q1" not in table  # words, not codes
    received = table[table.index("Contributions received") :]
    received = received[: received.index("</tr>")]
    assert "20,000.00" in received and "1,250.50" in received


def test_a_manager_explains_a_variance_and_the_donors_report_prints_it(app, world, make_user):
    """The quarter's 64.7% variance (in total, and of its one category) shows on the
    pool's page as not yet explained, and so in the donor's PDF; a manager explains the
    total's (the words kept encrypted, the audit entry
    without them), and the PDF prints the explanation. A line without such a variance,
    an empty explanation and finance are refused; nothing is kept for them."""
    from hrdfund.reports.models import VarianceNote

    staff = signed_in(app, world.m1)
    assert (
        staff.get(f"/reports/pools/{world.eur.uid}?period={QUARTER}&format=pdf").status_code == 200
    )
    page = staff.get(f"/pools/{world.eur.uid}").get_data(as_text=True)
    section = page[page.index('id="variances"') :]
    assert QUARTER in section and "-64.7%" in section and "not yet explained" in section
    assert "name no one" in section
    text, _meta = pdf_text(render_pdf(build_report(world.eur, parse_period(QUARTER))))
    assert "not yet explained" in " ".join(text.split())
    url = f"/reports/pools/{world.eur.uid}/variances"
    words = "Most grants of the quarter are paid in two parts; the second falls due next quarter."
    for refused_form in (
        {"variance-period": QUARTER, "variance-line": "medical", "variance-text": words},
        {"variance-period": "2026-03", "variance-line": "total", "variance-text": words},
        {"variance-period": QUARTER, "variance-line": "total", "variance-text": "   "},
    ):
        assert staff.post(url, data=refused_form).status_code == 303
    finance = signed_in(app, world.finance)
    assert finance.post(
        url, data={"variance-period": QUARTER, "variance-line": "total", "variance-text": words}
    ).status_code in (403, 404)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(VarianceNote)) == 0
    done = staff.post(
        url, data={"variance-period": QUARTER, "variance-line": "total", "variance-text": words}
    )
    assert done.status_code == 302
    stored = db.session.execute(sa.select(VarianceNote)).scalar_one()
    assert words.encode() not in stored._text and stored.text == words
    entry = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "variance.explained")
    ).scalar_one()
    assert "paid in two parts" not in str(entry.payload)
    page = staff.get(f"/pools/{world.eur.uid}").get_data(as_text=True)
    assert words in page[page.index('id="variances"') :]
    text, _meta = pdf_text(render_pdf(build_report(world.eur, parse_period(QUARTER))))
    text = " ".join(text.split())
    assert f"Total, -64.7%: {words}" in text
    assert "Relocation, -64.7%: not yet explained" in text  # its own line, not explained
