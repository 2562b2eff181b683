"""Reports downloaded again and again as time goes: a report of a period that has not
ended says nothing about people, and what a report of an ended period says about people
is issued once and never changes, whatever is recorded late, reversed, withdrawn or
purged afterwards. An attacker who keeps every download and subtracts every way the sums
allow, across downloads and across periods, recovers nothing hidden."""

import csv
import io
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from hrdfund.cases.models import Consent, Gender
from hrdfund.core import geo
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements import services as payments
from hrdfund.pools import services as pools
from hrdfund.reports import anonymise
from hrdfund.reports.csv_export import render_csv
from hrdfund.reports.data import build_report, plain
from hrdfund.reports.issue import Pending, record_issue
from hrdfund.reports.models import IssuedFigures
from hrdfund.reports.pdf import render_pdf
from hrdfund.reports.periods import parse_period
from tests.conftest import MoneyWorld, agree_to_listing, login, pay

from .test_report_differencing import GRANTS, TOTAL, YEAR, Attacker, _periods, _within

#: What a report says about people: issued once per ended period.
PEOPLE = ("budget", "breakdowns", "timeliness", "outcomes")


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    pools.record_contribution(world.eur, world.m1, Decimal("100000"), "EUR", date(YEAR, 1, 2))
    db.session.commit()
    world.paid = {}
    return world


_names = iter(range(10**6))


def _paid(world, clock, when, category, gender, amount, *, listed=True, country="KE", paid_on=None):
    """A grant approved and paid at ``when`` (the application's time), dated ``paid_on``
    (that day by default); its defender agreed to be listed, or not."""
    with clock.on(when):
        grant = world.grant(amount, category=category, name=f"Defender {next(_names)}")
        case = grant.application
        case.gender, case.country, case.region = gender, country, geo.region_of(country)
        if listed:
            agree_to_listing(case)
        db.session.commit()
        payment = pay(world, grant, amount, instalment=None, paid_on=paid_on or when.date())
    world.paid[grant.id] = payment
    return grant


def _download(world, clock, when, code, pdf=True):
    """The report of ``code`` as downloaded at ``when``, with its CSV and PDF text (None
    without ``pdf``: the PDF is drawn from the report the CSV is written from)."""
    with clock.on(when):
        report = build_report(world.eur, parse_period(code))
        db.session.commit()
        data = render_csv(report)
        drawn = render_pdf(report) if pdf else None
    if drawn is None:
        return report, data, None
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(drawn)).pages).split())
    return report, data, text


def _people(report):
    return {part: plain(report)[part] for part in PEOPLE}


def _gender(report):
    table = report["breakdowns"].get("gender")
    if table is None:
        return {}
    return {row.label: row.cells["grants"].plain() for row in table.rows + [table.total]}


def test_two_downloads_of_the_running_year_do_not_tell_a_new_defenders_gender(world, clock):
    """Twelve grants paid in the year, the year's report downloaded; one more paid, to a
    non-binary defender, and downloaded again. Before the year ends neither download says
    anything about people (their difference is one payment's amount, in the account); once
    it has ended the figures are issued once, and a payment recorded afterwards, dated in
    the year, changes the account but not them."""
    for n in range(12):
        _paid(
            world,
            clock,
            datetime(YEAR, 3, 2 + n, 10),
            [Category.RELOCATION, Category.MEDICAL][n % 2],
            [Gender.WOMAN, Gender.MAN][n % 2],
            str(1000 + n),
        )
    before, before_csv, before_text = _download(world, clock, datetime(YEAR, 6, 15), str(YEAR))
    _paid(world, clock, datetime(YEAR, 6, 16), Category.MEDICAL, Gender.NON_BINARY, "1777")
    after, after_csv, after_text = _download(world, clock, datetime(YEAR, 6, 17), str(YEAR))
    # The review's reading: man 6 before; man hidden and non-binary "fewer than 5" after.
    b, a = _gender(before), _gender(after)
    assert not (b.get("man") == "6" and "non_binary" in a and "non_binary" not in b), (b, a)
    for report, data, text in ((before, before_csv, before_text), (after, after_csv, after_text)):
        assert not report["ended"] and not report["breakdowns"] and not report["budget"]
        assert report["timeliness"] is None and report["outcomes"] is None
        assert "G-" not in data and data.splitlines()[1].startswith("Period not ended")
        assert "This period has not ended" in text and "Non-binary" not in text
        assert "Women" not in text and "fewer than 5" not in text
    assert _people(before) == _people(after)
    # What changed is the account, by the payment, and nothing says whose it was.
    moved = after["summary"]["disbursements"] - before["summary"]["disbursements"]
    assert moved == Decimal("1777.00")
    assert Decimal(after_csv.splitlines()[-1].split(",")[5]) - Decimal(
        before_csv.splitlines()[-1].split(",")[5]
    ) == Decimal("1777.00")
    assert not db.session.scalars(sa.select(IssuedFigures).where(IssuedFigures.year == YEAR)).all()

    # The year ends: its figures are issued at the first download, and stay.
    issued, issued_csv, _text = _download(world, clock, datetime(YEAR + 1, 1, 5), str(YEAR))
    assert issued["ended"] and issued["breakdowns"]["gender"].total.cells["grants"].value == 13
    assert _gender(issued)["non_binary"] == anonymise.SMALL
    _paid(
        world,
        clock,
        datetime(YEAR + 1, 1, 6),
        Category.MEDICAL,
        Gender.NON_BINARY,
        "1500",
        paid_on=date(YEAR, 12, 30),
    )
    again, again_csv, _text = _download(world, clock, datetime(YEAR + 1, 1, 7), str(YEAR))
    assert _people(again) == _people(issued)
    assert again_csv.splitlines()[:-1] == issued_csv.splitlines()[:-1]
    late = again["summary"]["disbursements"] - issued["summary"]["disbursements"]
    assert late == Decimal("1500.00") == again["counted"]["recorded_after"]
    assert again["counted"]["counted"] == issued["counted"]["counted"]
    assert (
        again["counted"]["account"]
        - again["counted"]["recorded_after"]
        + again["counted"]["recorded_before"]
        == again["counted"]["counted"]
    )
    # The late payment counts in January of the next year, when that month has ended.
    january, _csv, _text = _download(world, clock, datetime(YEAR + 1, 2, 2), f"{YEAR + 1}-01")
    assert january["counted"]["recorded_before"] == Decimal("1500.00")
    assert january["counted"]["counted"] == Decimal("1500.00")
    assert january["breakdowns"]["gender"].total.cells["grants"].plain() == anonymise.SMALL


def _hidden_and_derived(attacker):
    """What the attacker works out that some download hid, and is not nothing."""
    derived = attacker.subtract()
    found = []
    for key in sorted(derived & attacker.hidden, key=str):
        value, error = attacker.known[key]
        if abs(value) > error:
            found.append((key, value))
    return found


def test_an_ended_month_says_the_same_after_a_late_payment_a_reversal_and_a_withdrawal(
    world, clock
):
    """March is downloaded once it has ended; then a payment dated in March is recorded
    in April for a non-binary defender not listed, a March payment is reversed and a
    defender withdraws their consent to be listed. March downloaded again says the same
    about people; its CSV no longer lists the withdrawn case (nor any other, that one being
    the only grant not listed); the account shows the late
    payment with what it adds. April counts the late payment and the reversal. Every
    download together gives no hidden figure away."""
    grants = []
    for n, (category, gender, country, listed) in enumerate(
        [
            (Category.MEDICAL, Gender.WOMAN, "KE", True),
            (Category.MEDICAL, Gender.WOMAN, "KE", True),
            (Category.MEDICAL, Gender.MAN, "KE", True),
            (Category.MEDICAL, Gender.MAN, "UG", True),
            (Category.RELOCATION, Gender.WOMAN, "KE", True),
            (Category.RELOCATION, Gender.WOMAN, "UG", True),
            (Category.RELOCATION, Gender.MAN, "KE", True),
            (Category.LEGAL, Gender.WOMAN, "KE", True),
            (Category.LEGAL, Gender.MAN, "KE", True),
        ]
    ):
        when = datetime(YEAR, 3, 3 + 2 * n, 11)
        grants.append(
            _paid(
                world,
                clock,
                when,
                category,
                gender,
                str(900 + 45 * n),
                listed=listed,
                country=country,
            )
        )
    downloads = defaultdict(list)
    for code in ("2026-01", "2026-02", "2026-03", "2026-Q1"):
        downloads[code].append(_download(world, clock, datetime(YEAR, 4, 5), code))
    first, first_csv, _text = downloads["2026-03"][0]

    # In April: a late payment dated March 20, a reversal, a withdrawal.
    _paid(
        world,
        clock,
        datetime(YEAR, 4, 8),
        Category.LEGAL,
        Gender.NON_BINARY,
        "1234",
        listed=False,
        paid_on=date(YEAR, 3, 20),
    )
    with clock.on(datetime(YEAR, 4, 9)):
        payments.reverse_disbursement(world.paid[grants[2].id], world.finance, "bounced")
        withdrawn = db.session.execute(
            sa.select(Consent).where(Consent.application_id == grants[0].application_id)
        ).scalar_one()
        withdrawn.withdrawn_at = datetime(YEAR, 4, 9, 12)
        db.session.commit()
    code_of = anonymise.donor_code(world.donor.id, grants[0].uid, YEAR)
    assert code_of in first_csv
    for code in ("2026-01", "2026-02", "2026-03", "2026-Q1"):
        downloads[code].append(_download(world, clock, datetime(YEAR, 4, 10), code))
    again, again_csv, _text = downloads["2026-03"][1]
    for code, versions in downloads.items():
        assert _people(versions[1][0]) == _people(versions[0][0]), code
    assert first["ended"] and first["breakdowns"]["gender"].total.cells["grants"].value == 9
    # The CSV: the withdrawn case is no longer listed. The one grant not listed now, the
    # total less the other lines would be its payment: no line is listed, all in one.
    lines = {r["Grant code"]: r for r in csv.DictReader(io.StringIO(again_csv))}
    before = {r["Grant code"]: r for r in csv.DictReader(io.StringIO(first_csv))}
    assert code_of in before and len(before) == 9 + 3
    assert not [code for code in lines if code.startswith("G-")]
    assert lines["Not listed"]["Grants"] == "9" and before["Not listed"]["Grants"] == "0"
    assert Decimal(lines["Not listed"]["Paid in the period"]) == Decimal(
        before["Total"]["Paid in the period"]
    )
    assert lines["Total"]["Paid in the period"] == before["Total"]["Paid in the period"]
    committed = "Committed to the grant by the period's end"
    assert lines["Total"][committed] == lines["Not listed"][committed] == "hidden"
    # The account: the late payment is in March's, shown as recorded after March ended.
    assert again["summary"]["disbursements"] - first["summary"]["disbursements"] == Decimal(1234)
    assert again["counted"]["recorded_after"] == Decimal(1234)
    assert again["counted"]["counted"] == first["counted"]["counted"]

    # April has ended: it counts the late payment and the reversal.
    for code in ("2026-04", "2026-03", "2026-Q1"):
        downloads[code].append(_download(world, clock, datetime(YEAR, 5, 2), code))
    april = downloads["2026-04"][0][0]
    assert april["counted"]["counted"] == Decimal(1234) - Decimal(990)
    assert april["counted"]["recorded_before"] == Decimal(1234)
    assert _people(downloads["2026-03"][2][0]) == _people(first)

    attacker = Attacker()
    for code, versions in downloads.items():
        for report, data, _text in versions:
            attacker.read(code, report, data)
    attacker.close()
    assert not _hidden_and_derived(attacker)
    assert any(not cell.shown for cell in april["breakdowns"]["gender"].total.cells.values())


def test_a_year_downloaded_as_it_goes_gives_nothing_away(world, clock):
    """GRANTS of the differencing test paid as the year goes, one of them recorded a few
    days after its month ended; on the first and the fifteenth of every month, and once
    the year has ended, every period begun is downloaded. Each ended period's figures
    about people are the same in every download; no running one has any; and an attacker
    who keeps them all recovers nothing hidden."""
    truth = defaultdict(int)
    plan = []
    n = 0
    for month, category, country, count, unlisted in GRANTS:
        for i in range(count):
            n += 1
            when = datetime(YEAR, month, 10 + i, 9)
            plan.append((when, category, country, i >= unlisted, n, None))
    # One payment of May 28 recorded on June 3: it counts in June.
    plan.append((datetime(YEAR, 6, 3, 9), Category.MEDICAL, "PE", True, 99, date(YEAR, 5, 28)))
    plan.sort(key=lambda p: p[0])
    days = [datetime(YEAR, m, d, 7) for m in range(1, 13) for d in (1, 15)]
    days.append(datetime(YEAR + 1, 1, 5, 7))
    downloads = defaultdict(list)
    for day in days:
        while plan and plan[0][0] < day:
            when, category, country, listed, n, paid_on = plan.pop(0)
            gender = Gender.WOMAN if n % 2 else Gender.MAN
            amount = Decimal(400 + 37 * n)
            _paid(
                world,
                clock,
                when,
                category,
                gender,
                str(amount),
                listed=listed,
                country=country,
                paid_on=paid_on,
            )
            labels = [
                TOTAL,
                ("category", category.value),
                ("region", geo.region_of(country)),
                ("gender", gender.value),
            ]
            for period in _within(when.month):
                for label in labels:
                    truth[("grants", period, label)] += 1
                    truth[("defenders", period, label)] += 1
                    truth[("amount", period, label)] += amount
        for code in _periods():
            if parse_period(code).start <= day.date():
                ended = parse_period(code).end <= day.date()
                report, data, _text = _download(world, clock, day, code, pdf=False)
                downloads[code].append((ended, report, data))
    for code, versions in downloads.items():
        ended = [(r, d) for is_ended, r, d in versions if is_ended]
        assert ended, code
        for report, data in ended:
            assert _people(report) == _people(ended[0][0]), code
            assert data == ended[0][1], code
    attacker = Attacker()
    for code, versions in downloads.items():
        ended = [(r, d) for is_ended, r, d in versions if is_ended]
        for is_ended, report, _data in versions:
            assert report["ended"] == is_ended, code
            if not is_ended:
                assert not report["breakdowns"] and not report["items"], code
        for report, data in ended:
            attacker.read(code, report, data)
    attacker.close()
    recovered = _hidden_and_derived(attacker)
    assert not recovered, f"hidden figures recovered by subtraction: {recovered}"
    hidden = {key for key in attacker.hidden if truth.get(key, 0)}
    assert len(hidden) >= 10, "the reports hide figures"
    for key in attacker.known:
        if key[0] != "dependants" and key in truth:
            value, error = attacker.known[key]
            assert abs(value - Fraction(truth[key])) <= error, key


def test_the_donor_the_staff_and_the_command_get_the_same_issue(
    app, world, clock, make_user, runner, tmp_path
):
    """Through the portal, the pool page and `flask hrdfund report`: a running period
    reads "not ended" in the CSV, an ended one is issued at its first download, by
    whoever asks, and served as issued to the others."""
    for n in range(6):
        _paid(
            world, clock, datetime(YEAR, 2, 3 + n, 10), Category.MEDICAL, Gender.WOMAN, str(500 + n)
        )
    donor = app.test_client()
    with clock.on(datetime(YEAR, 3, 15, 10)):
        login(donor, make_user("donor", donor_id=world.donor.id))
        running = donor.get(f"/donor/pools/{world.eur.uid}/report?period={YEAR}-Q1&format=csv")
        assert running.status_code == 200
        assert running.get_data(as_text=True).splitlines()[1].startswith("Period not ended")
        staff = app.test_client()
        login(staff, world.m1)
        ended = staff.get(f"/reports/pools/{world.eur.uid}?period={YEAR}-02&format=csv")
        assert ended.status_code == 200 and "G-" in ended.get_data(as_text=True)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IssuedFigures)) == 2
        mine = donor.get(f"/donor/pools/{world.eur.uid}/report?period={YEAR}-02&format=csv")
        assert mine.data == ended.data
        out = tmp_path / "feb.csv"
        result = runner.invoke(
            args=["hrdfund", "report", "--pool", world.eur.name, "--period", f"{YEAR}-02"]
            + ["--format", "csv", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == ended.data


def test_two_first_downloads_at_once_keep_one_issue(world, clock):
    """Two reports of an ended period decided at the same time, the second kept after the
    first: it is decided again beside what the first kept, and the period has one issue."""
    for n in range(6):
        _paid(world, clock, datetime(YEAR, 2, 3 + n, 10), Category.LEGAL, Gender.MAN, str(700 + n))
    today = date(YEAR, 4, 2)
    mine = Pending(world.eur, YEAR, today)
    theirs = Pending(world.eur, YEAR, date(YEAR, 3, 2))  # February alone, kept first
    record_issue(world.eur, theirs, date(YEAR, 3, 2))
    db.session.commit()
    record_issue(world.eur, mine, today)
    db.session.commit()
    kept = db.session.scalars(
        sa.select(IssuedFigures.period).where(IssuedFigures.pool_id == world.eur.id)
    ).all()
    assert sorted(kept) == ["2026-01", "2026-02", "2026-03", "2026-Q1"]
    report = build_report(world.eur, parse_period(f"{YEAR}-Q1"), today=today)
    assert report["breakdowns"]["gender"].total.cells["grants"].value == 6
