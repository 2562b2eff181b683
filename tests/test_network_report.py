"""The network report: a fund's managers read what their fund's referrals to and from other
funds came to over the days they choose (by other fund and by kind of support, by state,
the median hours to an answer, the months of support accepted and planned, and their own
cases another fund took a part of), on the page and as CSV; only referrals that involve
their own fund; the network's administrator reads counts over the network, no fund or case
named."""

import csv
import html
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.grants import plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.network.models import Referral, ReferralStatus
from hrdfund.reviews.models import Recommendation, Review, RiskLevel
from hrdfund.reviews.services import declare_conflict
from tests.conftest import MoneyWorld, make_costed_case, signed_in

S = ReferralStatus
#: The days the report is asked for; the referrals of the world are made in them.
START, END = date(2026, 1, 1), date(2026, 1, 31)
PERIOD = f"start={START.isoformat()}&end={END.isoformat()}"


def _at(day, hour=9):
    return datetime(2026, 1, day, hour)


def _referral(case, to_fund, category, status, made, hours=None, months=None, linked=None):
    """A referral of ``case`` to ``to_fund`` made at ``made``, in ``status``, answered
    ``hours`` after it was made (accepted or declined)."""
    referral = Referral(
        application_id=case.id,
        from_fund_id=case.fund_id,
        to_fund_id=to_fund.id,
        category=category,
        months_from=months[0] if months else None,
        months_to=months[1] if months else None,
        amount=Decimal("1000.00"),
        currency="EUR",
        answer_by=date(2026, 3, 1),
        status=status,
        created_by_id=case.applicant_id or 1,
        created_at=made,
        answered_at=made + timedelta(hours=hours) if hours is not None else None,
        withdrawn_at=made + timedelta(hours=1) if status == S.WITHDRAWN else None,
        linked_application_id=linked.id if linked is not None else None,
    )
    db.session.add(referral)
    db.session.flush()
    return referral


def _recommend(case, reviewer):
    case.status = ApplicationStatus.RECOMMENDED
    db.session.add(
        Review(
            application_id=case.id,
            reviewer_id=reviewer.id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency=case.currency,
        )
    )
    db.session.flush()


@pytest.fixture
def network(app, fund, make_fund, make_user, make_donor):
    """Fund A (the test fund) refers four cases' parts and receives two; B and C refer
    between themselves too; one referral of A was made before the period.

    Made by A in January: a1 relocation months 7-12 to B, accepted after 10 hours (B's
    plan pays 6 months); a2 medical to C, declined after 30 hours; a3 medical to B,
    withdrawn; a1 dependants to C, waiting. Received: B's legal months 1-3, accepted after
    20 hours; C's medical, declined after 4 hours. B to C: waiting, not A's."""
    b, c = make_fund("International Fund"), make_fund("Regional Fund")
    applicant = make_user("applicant")
    cases = {
        name: make_costed_case(owner, applicant_id=applicant.id, commit=False)
        for name, owner in (("a1", fund), ("a2", fund), ("a3", fund), ("b1", b), ("c1", c))
    }
    cases["a1"].category = Category.RELOCATION
    db.session.flush()
    # B's own case for the part of a1 it accepted, with a plan of six monthly payments.
    world_b = MoneyWorld(
        b,
        lambda role, **kw: make_user(
            role, **({} if role == "applicant" else {"fund_id": b.id}), **kw
        ),
        lambda name, fund_id=None: make_donor(name, b.id),
    )
    linked_b = make_costed_case(b, applicant_id=applicant.id, commit=False)
    db.session.flush()
    _recommend(linked_b, world_b.reviewer)
    grant = approve_with_recorded_rates(
        linked_b, world_b.m1, Decimal(3000), [(world_b.eur.id, Decimal(3000))]
    )
    plans.create_plan(grant, world_b.m1, "stipend", date(2026, 7, 1), count=6)
    linked_a = make_costed_case(fund, applicant_id=applicant.id, commit=False)
    db.session.flush()
    made = [
        _referral(cases["a1"], b, Category.RELOCATION, S.ACCEPTED, _at(5), 10, (7, 12), linked_b),
        _referral(cases["a2"], c, Category.MEDICAL, S.DECLINED, _at(6), 30),
        _referral(cases["a3"], b, Category.MEDICAL, S.WITHDRAWN, _at(7)),
        _referral(cases["a1"], c, Category.DEPENDANTS, S.PENDING, _at(31, 23)),
    ]
    received = [
        _referral(cases["b1"], fund, Category.LEGAL, S.ACCEPTED, _at(8), 20, (1, 3), linked_a),
        _referral(cases["c1"], fund, Category.MEDICAL, S.DECLINED, _at(9), 4),
    ]
    _referral(cases["b1"], c, Category.MEDICAL, S.PENDING, _at(10))
    before = _referral(cases["a2"], b, Category.MEDICAL, S.DECLINED, _at(1) - timedelta(days=1), 2)
    db.session.commit()
    return {
        "a": fund,
        "b": b,
        "c": c,
        "cases": cases,
        "linked_a": linked_a,
        "linked_b": linked_b,
        "made": made,
        "received": received,
        "before": before,
        "manager": make_user("manager"),
        "b_manager": make_user("manager", fund_id=b.id),
    }


def _csv(response):
    """The CSV's lines, each a dict by heading."""
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _line(lines, section, direction, name=""):
    found = [
        line
        for line in lines
        if line["Section"] == section
        and line["Made or received"] == direction
        and line["Other fund or kind of support"] == name
    ]
    assert len(found) == 1, (section, direction, name, lines)
    return found[0]


FIGURES = (
    "Referrals",
    "Referrals accepted",
    "Referrals declined",
    "Referrals withdrawn",
    "Referrals still waiting",
    "Median hours to an answer",
    "Months of support accepted",
    "Months in the accepting fund's plan",
)


def _figures(line):
    return tuple(line[name] for name in FIGURES)


def test_a_manager_reads_what_the_funds_referrals_came_to(app, network):
    """The CSV a manager downloads carries, for the days asked, each count a manager
    would read: made and received apart, by other fund and by kind of support, the median
    hours to an answer, the months accepted and those the other fund's plan pays."""
    client = signed_in(app, network["manager"])
    lines = _csv(client.get(f"/reports/network?{PERIOD}&format=csv"))
    made, received = "Made by your fund", "Received by your fund"
    # Four made: one each accepted, declined, withdrawn, waiting; answers after 10 and 30
    # hours (median 20); months 7 to 12 accepted, six months in B's plan.
    assert _figures(_line(lines, "Total", made)) == ("4", "1", "1", "1", "1", "20", "6", "6")
    assert _figures(_line(lines, "By fund", made, "International Fund")) == (
        *("2", "1", "0", "1", "0", "10", "6", "6"),
    )
    assert _figures(_line(lines, "By fund", made, "Regional Fund")) == (
        *("2", "0", "1", "0", "1", "30", "0", "0"),
    )
    assert _figures(_line(lines, "By kind of support", made, "Medical costs")) == (
        *("2", "0", "1", "1", "0", "30", "0", "0"),
    )
    assert _figures(_line(lines, "By kind of support", made, "Relocation"))[:2] == ("1", "1")
    assert _figures(_line(lines, "By kind of support", made, "Dependants' costs"))[4] == "1"
    # Two received: B's accepted after 20 hours (months 1 to 3), C's declined after 4.
    assert _figures(_line(lines, "Total", received)) == ("2", "1", "1", "0", "0", "12", "3", "0")
    assert _figures(_line(lines, "By fund", received, "International Fund"))[:2] == ("1", "1")
    assert _figures(_line(lines, "By fund", received, "Regional Fund"))[2] == "1"
    # One case of A another fund took a part of: named by its code, with the fund.
    gaps = [line for line in lines if line["Section"] == "Cases another fund took a part of"]
    assert [line["Referrals"] for line in gaps if not line["Case"]] == ["1"]
    helped = [line for line in gaps if line["Case"]]
    assert [(line["Case"], line["Other fund or kind of support"]) for line in helped] == [
        (network["cases"]["a1"].uid, "International Fund · Relocation")
    ]
    assert helped[0]["Months of support accepted"] == "6"


def test_the_page_shows_the_same_figures(app, network):
    """The page shows the same counts, and the case code of the fund's own case helped."""
    client = signed_in(app, network["manager"])
    page = client.get(f"/reports/network?{PERIOD}").get_data(as_text=True)
    made = page[page.index('id="made"') : page.index('id="received"')]
    total = made.split("<tfoot>")[1].split("</tfoot>")[0]
    read = re.sub(r"<[^>]+>", " ", total).split()
    assert read == ["Total", "4", "1", "1", "1", "1", "20", "6", "6"]
    assert network["cases"]["a1"].uid in page
    assert "1 case of your fund had a part of its need taken on by another fund." in page
    # The case helped reads by its short code too, as everywhere else.
    case = network["cases"]["a1"]
    if case.code is None:
        case.code = "HRD1-26-0042"
        db.session.commit()
    page = client.get(f"/reports/network?{PERIOD}").get_data(as_text=True)
    assert (
        f'<strong class="case-code">{case.code}</strong> <code class="case-uid">{case.uid}' in page
    )


def test_the_period_chosen_decides_what_counts(app, network):
    """A referral counts by the day it was made: the day before the period is out, the
    last day of the period in; a range that ends before it starts is refused in words."""
    client = signed_in(app, network["manager"])
    lines = _csv(client.get("/reports/network?start=2025-12-31&end=2025-12-31&format=csv"))
    assert _figures(_line(lines, "Total", "Made by your fund"))[:3] == ("1", "0", "1")
    lines = _csv(client.get("/reports/network?start=2026-01-31&end=2026-01-31&format=csv"))
    assert _figures(_line(lines, "Total", "Made by your fund"))[:5] == ("1", "0", "0", "0", "1")
    for query in ("start=2026-02-01&end=2026-01-01", "start=2026-13-01", "end=yesterday"):
        response = client.get(f"/reports/network?{query}")
        assert response.status_code == 400
        assert 'class="error-summary"' in response.get_data(as_text=True)
        csv_asked = client.get(f"/reports/network?{query}&format=csv")
        assert csv_asked.status_code == 400 and csv_asked.mimetype == "text/html"


def test_each_fund_reads_only_its_own_referrals(app, network):
    """B's manager reads B's referrals (its one to C among them) and never a case code of
    A's; A's report holds nothing of B's referral to C."""
    lines = _csv(signed_in(app, network["b_manager"]).get(f"/reports/network?{PERIOD}&format=csv"))
    assert _figures(_line(lines, "Total", "Made by your fund"))[:2] == ("2", "1")
    assert _figures(_line(lines, "By fund", "Made by your fund", "Regional Fund"))[4] == "1"
    assert _figures(_line(lines, "Total", "Received by your fund"))[:4] == ("2", "1", "0", "1")
    text = signed_in(app, network["b_manager"]).get(f"/reports/network?{PERIOD}").text
    for case in (*network["cases"].values(), network["linked_a"]):
        if case.fund_id != network["b"].id:
            assert case.uid not in text
    # A's report: B to C is not A's, so C shows only A's two referrals.
    a_lines = _csv(signed_in(app, network["manager"]).get(f"/reports/network?{PERIOD}&format=csv"))
    assert _figures(_line(a_lines, "By fund", "Made by your fund", "Regional Fund"))[0] == "2"
    assert _figures(_line(a_lines, "By fund", "Received by your fund", "Regional Fund"))[0] == "1"


def test_a_case_the_manager_stepped_away_from_is_not_counted_for_them(app, network, make_user):
    """A manager who declared a conflict on a case reads no referral of it, nor the one
    that made a case of their fund they declared one on: any single day can be asked, so
    a count would tell them its day, the other fund and the answer. The other manager of
    the fund still reads them."""
    before = _csv(signed_in(app, network["manager"]).get(f"/reports/network?{PERIOD}&format=csv"))
    stepped_away = make_user("manager")
    declare_conflict(network["cases"]["a1"], stepped_away)
    declare_conflict(network["linked_a"], stepped_away)
    db.session.commit()
    client = signed_in(app, stepped_away)
    lines = _csv(client.get(f"/reports/network?{PERIOD}&format=csv"))
    # a1's two referrals (to B, accepted; to C, waiting) and B's to A's linked case go.
    assert _figures(_line(lines, "Total", "Made by your fund"))[:5] == ("2", "0", "1", "1", "0")
    assert _figures(_line(lines, "Total", "Received by your fund"))[:3] == ("1", "0", "1")
    assert not any(line["Case"] for line in lines if "Case" in line)
    page = client.get(f"/reports/network?{PERIOD}").get_data(as_text=True)
    assert network["cases"]["a1"].uid not in page
    still = _csv(signed_in(app, network["manager"]).get(f"/reports/network?{PERIOD}&format=csv"))
    assert still == before


@pytest.mark.parametrize(
    "role", ["reviewer", "finance", "admin", "donor", "applicant", "partner", "network_admin"]
)
def test_other_roles_get_nothing(app, network, make_user, role):
    """Only managers read a fund's report; every other role is refused, CSV included."""
    client = signed_in(app, make_user(role))
    for query in (PERIOD, f"{PERIOD}&format=csv"):
        response = client.get(f"/reports/network?{query}")
        assert response.status_code == 403
        assert network["cases"]["a1"].uid not in response.get_data(as_text=True)


def test_each_download_is_an_audit_entry_in_the_funds_chain(app, network):
    client = signed_in(app, network["manager"])

    def downloads():
        return db.session.execute(
            sa.select(AuditEvent.chain, AuditEvent.payload).where(
                AuditEvent.action == "report.network_downloaded"
            )
        ).all()

    assert downloads() == []
    client.get(f"/reports/network?{PERIOD}")  # the page is not a download
    assert downloads() == []
    client.get(f"/reports/network?{PERIOD}&format=csv")
    client.get(f"/reports/network?{PERIOD}&format=csv")
    entries = downloads()
    assert len(entries) == 2
    assert {chain for chain, _payload in entries} == {network["a"].id}
    assert "2026-01-31" in entries[0][1]


def test_the_csv_neutralises_a_formula_and_speaks_the_readers_language(app, network, make_fund):
    """A fund whose name a spreadsheet would run is written as text; the headings are in
    the language the manager reads."""
    evil = make_fund('=HYPERLINK("http://x")')
    _referral(network["cases"]["a2"], evil, Category.MEDICAL, S.PENDING, _at(12))
    db.session.commit()
    client = signed_in(app, network["manager"])
    text = client.get(f"/reports/network?{PERIOD}&format=csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text
    assert not re.search(r'(^|,)"?=HYPERLINK', text, re.M)
    client.post("/language", data={"language": "fr"})
    french = client.get(f"/reports/network?{PERIOD}&format=csv").get_data(as_text=True)
    assert french.splitlines()[0] != text.splitlines()[0]
    assert "Transmissions acceptées" in french.splitlines()[0]


def _tables(page):
    """Each table of the page by its caption: its rows' cells as text."""
    found = {}
    for body in re.findall(r"<table.*?</table>", page, re.S):
        caption = re.search(r"<caption>(.*?)</caption>", body)
        rows = [
            [
                html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)
            ]
            for row in re.findall(r"<tr>.*?</tr>|<tr class=\"sum\">.*?</tr>", body, re.S)
        ]
        found[caption[1] if caption else ""] = rows
    return found


def _totals(app, make_user, clock, query="", status=200):
    clock.at(date(2026, 12, 6))
    response = signed_in(app, make_user("network_admin")).get(f"/network/report?{query}")
    assert response.status_code == status
    return response.get_data(as_text=True)


def test_the_network_administrator_reads_counts_only(app, network, make_user, clock):
    """Over the network: seven referrals in January 2026, read in December, counted in each
    quarter that ended (three); in the first every kind of support and every state counts
    fewer than 5, and only four were answered, so only its total, and the three funds, show;
    no fund's name and no case code. A manager may not read it."""
    page = _totals(app, make_user, clock)
    tables = _tables(page)
    assert tables["By kind of support"][0] == ["2026", "Quarter 1", "Quarter 2", "Quarter 3"]
    rows = {row[0]: row[1:] for row in tables["By kind of support"][1:]}
    assert rows["Total"] == ["7", "0", "0"]
    assert rows["Medical costs"] == ["fewer than 5", "0", "0"]
    assert set(rows) == {"Relocation", "Medical costs", "Dependants' costs", "Legal fees", "Total"}
    states = {row[0]: row[1] for row in tables["By state"][1:]}
    assert states["Referrals accepted"] == "fewer than 5" and states["Total"] == "7"
    short = {row[0]: row[1:] for row in tables["The quarter in short"][1:]}
    assert short["Funds that made or received referrals"] == ["3", "0", "0"]
    assert short["Median hours to an answer"] == ["–"] * 3
    for name in ("International Fund", "Regional Fund"):
        assert name not in page
    for case in network["cases"].values():
        assert case.uid not in page
    manager = signed_in(app, network["manager"])
    assert manager.get("/network/report").status_code == 403


def _more(network, category, count, day, hours=5, status=S.ACCEPTED):
    """``count`` more referrals of ``category`` made on ``day`` of 2026, A to B, each
    answered ``hours`` after it was made."""
    case, b = network["cases"]["a2"], network["b"]
    made = datetime.combine(day, datetime.min.time()).replace(hour=9)
    for _ in range(count):
        _referral(case, b, category, status, made, hours)
    db.session.commit()


def test_a_count_that_would_give_a_small_one_away_is_hidden_too(app, network, make_user, clock):
    """Seven referrals in January (4 medical) and 3 more medical: the 7 medical show, and
    the three other kinds of 1 each (fewer than 5) stay hidden, their sum too; the
    quarter's answers (4 + 3) give a median."""
    _more(network, Category.MEDICAL, 3, date(2026, 2, 1))
    tables = _tables(_totals(app, make_user, clock))
    rows = {row[0]: row[1] for row in tables["By kind of support"][1:]}
    assert rows["Medical costs"] == "7"
    assert rows["Relocation"] == rows["Legal fees"] == "fewer than 5"
    assert rows["Total"] == "10"
    short = {row[0]: row[1] for row in tables["The quarter in short"][1:]}
    assert short["Median hours to an answer"] == "5"
    # Six medical and one legal in the second quarter: the legal one is fewer than 5, and
    # the medical count, which the total less it would give, is hidden too.
    _more(network, Category.MEDICAL, 6, date(2026, 5, 4))
    _more(network, Category.LEGAL, 1, date(2026, 5, 5))
    rows = {
        row[0]: row[2] for row in _tables(_totals(app, make_user, clock))["By kind of support"][1:]
    }
    assert (rows["Legal fees"], rows["Medical costs"], rows["Total"]) == (
        "fewer than 5",
        "hidden",
        "7",
    )


def test_a_quarter_of_fewer_than_5_names_no_kind_state_or_number_of_funds(
    app, network, make_user, clock
):
    """Two referrals in the third quarter, one of a kind no other quarter has: the quarter
    says only that there were fewer than 5; the kind gets no row."""
    _more(network, Category.TRIAL_MONITORING, 1, date(2026, 8, 3), status=S.DECLINED)
    _more(network, Category.MEDICAL, 1, date(2026, 8, 4))
    tables = _tables(_totals(app, make_user, clock))
    rows = {row[0]: row[1:] for row in tables["By kind of support"][1:]}
    assert "Trial monitoring" not in rows
    assert rows["Medical costs"][2] == "–" and rows["Total"][2] == "fewer than 5"
    states = {row[0]: row[1:] for row in tables["By state"][1:]}
    assert all(cells[2] == "–" for label, cells in states.items() if label != "Total")
    short = {row[0]: row[1:] for row in tables["The quarter in short"][1:]}
    assert short["Funds that made or received referrals"][2] == "–"


def test_a_quarter_reads_the_same_whenever_it_is_read(app, network, make_user, clock):
    """Figures as they stood at the quarter's end: a referral of January answered in April
    still waits in the first quarter's figures, and the first quarter read in July and in
    December, as later quarters end and referrals are answered, shows the same."""
    _more(network, Category.MEDICAL, 5, date(2026, 3, 30), hours=24 * 10)
    clock.at(date(2026, 7, 2))
    first = _tables(
        signed_in(app, make_user("network_admin")).get("/network/report?year=2026").text
    )
    states = {row[0]: row[1] for row in first["By state"][1:]}
    # The two that never had an answer, and the five answered in April.
    assert states["Referrals still waiting"] == "7"
    _more(network, Category.LEGAL, 6, date(2026, 5, 2))
    _more(network, Category.RELOCATION, 1, date(2026, 8, 2))
    later = _tables(_totals(app, make_user, clock))
    for caption in ("By kind of support", "By state"):
        before = {row[0]: row[1] for row in first[caption][1:]}
        after = {row[0]: row[1] for row in later[caption][1:] if row[0] in before}
        assert after == before, caption


def test_a_year_is_read_only_for_the_quarters_that_ended(app, network, make_user, clock):
    """Read in the first quarter of 2027, the report opens on 2026; 2027 has no quarter
    ended yet and is not offered; a year not in the list is refused in words, nothing else
    (digits of other scripts among them)."""
    clock.at(date(2027, 2, 1))
    client = signed_in(app, make_user("network_admin"))
    page = client.get("/network/report").get_data(as_text=True)
    assert '<option value="2026" selected>' in page and 'value="2027"' not in page
    assert "Quarter 4" in page
    for query in ("year=2027", "year=1999", "year=abc", "year=20260", "year=²²²²", "year=٢٠٢٦"):
        response = client.get(f"/network/report?{query}")
        assert response.status_code == 400, query
        assert "Choose one of the years in the list." in response.get_data(as_text=True)
        assert "<caption>" not in response.get_data(as_text=True)
    clock.at(date(2027, 4, 1))
    client = signed_in(app, make_user("network_admin"))
    tables = _tables(client.get("/network/report?year=2027").get_data(as_text=True))
    assert tables["By kind of support"] == [["2027", "Quarter 1"], ["Total", "0"]]


def test_the_last_day_a_date_can_name_is_a_period_like_any_other(app, network, make_user):
    """The report counts up to the first moment after its last day: asked to end on
    9999-12-31, the last day there is, it answers with its page (nothing made then), as
    the network's totals do, instead of failing."""
    query = "start=9999-12-01&end=9999-12-31"
    client = signed_in(app, network["manager"])
    page = client.get(f"/reports/network?{query}")
    assert page.status_code == 200 and 'class="error-summary"' not in page.text
    lines = _csv(client.get(f"/reports/network?{query}&format=csv"))
    assert _figures(_line(lines, "Total", "Made by your fund"))[0] == "0"


def test_a_median_answer_within_the_hour_reads_under_one_hour(app):
    """Answers given within the hour round to a median of 0 hours, which read as if none
    came: the table says "under 1" (hours), and the hours otherwise."""
    cells = app.jinja_env.get_template("reports/_network.html").module.state_cells
    with app.test_request_context():
        for median, shown in ((0, ">under 1<"), (20, ">20<"), (None, ">–<")):
            row = SimpleNamespace(referrals=3, states={}, median_hours=median)
            assert shown in str(cells(row, [])), median
