"""The dashboard: the home page of reviewers, managers and finance. What it counts (cases
waiting by stage and age, decided within target, money this month by pool, what is late),
only over the cases its reader may open, and its charts: inline SVG with a title, a
description and a table of the same figures."""

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import lxml.html
import pytest

from hrdfund.cases.models import ApplicationStatus, ConflictDeclaration
from hrdfund.core.charts import Chart, Series
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.reports import dashboard
from tests.conftest import MoneyWorld, make_case, pay, signed_in

S = ApplicationStatus


@pytest.fixture
def world(fund, make_user, make_donor):
    return MoneyWorld(fund, make_user, make_donor)


def _page(client):
    response = client.get("/dashboard")
    assert response.status_code == 200, response.status
    return lxml.html.fromstring(response.get_data(as_text=True))


def _text(node):
    return " ".join(node.text_content().split())


def _waiting(page):
    """The table of waiting cases: {stage: [counts by age..., all, past target]}."""
    rows = page.xpath('//h2[@id="waiting"]/following::table[1]/tbody/tr')
    return {_text(r.xpath("th")[0]): [int(_text(td)) for td in r.xpath("td")] for r in rows}


def _card(page, heading):
    (card,) = [
        c for c in page.xpath('//section[@class="card"]') if _text(c.xpath("h2")[0]) == heading
    ]
    return _text(card)


def test_reviewers_managers_and_finance_land_on_it(app, world):
    """Signing in brings each of them to the dashboard; the menu names it first."""
    for user in (world.reviewer, world.m1, world.finance):
        client = signed_in(app, user)
        assert client.get("/").location == "/dashboard"
        html = client.get("/dashboard").get_data(as_text=True)
        menu = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
        assert re.findall(r'<a href="([^"]+)"', menu)[0] == "/dashboard"


def test_waiting_cases_are_counted_by_stage_and_age(app, world, fund):
    """Each waiting case is counted once, in its stage's row and its age's column; a case
    past its next target with the clock running counts as past target."""
    now = utcnow()
    make_case(fund, submitted_at=now - timedelta(hours=5))
    later = {"response_due_at": now + timedelta(days=1), "decision_due_at": now + timedelta(days=5)}
    make_case(fund, status=S.IN_REVIEW, submitted_at=now - timedelta(days=3), **later)
    make_case(fund, status=S.IN_REVIEW, submitted_at=now - timedelta(days=10), **later)
    # Past its decision target; another past it but paused, waiting for the applicant.
    make_case(
        fund,
        status=S.IN_REVIEW,
        submitted_at=now - timedelta(days=40),
        first_response_at=now - timedelta(days=39),
        decision_due_at=now - timedelta(days=1),
    )
    make_case(
        fund,
        status=S.INFO_REQUESTED,
        submitted_at=now - timedelta(days=40),
        first_response_at=now - timedelta(days=39),
        decision_due_at=now - timedelta(days=1),
        clock_paused_at=now - timedelta(days=2),
    )
    make_case(fund, status=S.APPROVED, submitted_at=now - timedelta(days=3))
    make_case(fund, status=S.DRAFT, submitted_at=None)
    page = _page(signed_in(app, world.m1))
    table = _waiting(page)
    assert table["Submitted"] == [1, 0, 0, 0, 1, 0]
    assert table["In review"] == [0, 1, 1, 1, 3, 1]
    assert table["Information requested"] == [0, 0, 0, 1, 1, 0]
    assert table["Recommended"] == [0, 0, 0, 0, 0, 0]
    assert "1 case waits for a first response or a decision past its target" in _card(
        page, "Past their target"
    )
    # Nothing was decided: the share says so rather than "0 of 0".
    this_month = _card(page, "Decided within target, this month")
    assert "–" in this_month and "No case decided in" in this_month


def _decided(fund, when, in_time):
    due = when + timedelta(hours=1) if in_time else when - timedelta(hours=1)
    sent = when - timedelta(days=3)
    return make_case(
        fund,
        status=S.APPROVED,
        submitted_at=sent,
        first_response_at=sent,
        decided_at=when,
        response_due_at=sent + timedelta(days=1),
        decision_due_at=due,
    )


def test_decided_within_target_this_month_and_last(app, world, fund):
    """The share of the month's decisions made by their decision target, by the fund's
    targets as the queue keeps them, for this month and the last."""
    today = utcnow().date()
    this_month = datetime.combine(today.replace(day=1), time(1))
    last_month = datetime.combine(
        (today.replace(day=1) - timedelta(days=1)).replace(day=1), time(1)
    )
    for in_time in (True, True, True, False):
        _decided(fund, this_month, in_time)
    _decided(fund, last_month, False)
    page = _page(signed_in(app, world.reviewer))
    now_card = _card(page, "Decided within target, this month")
    assert "75 %" in now_card and "3 of 4 cases decided in" in now_card
    last_card = _card(page, "Decided within target, last month")
    assert "0 %" in last_card and "0 of 1 case decided in" in last_card


def test_only_the_readers_own_cases_are_counted(app, world, fund, make_fund, make_user):
    """Another fund's cases, and a case the reader declared a conflict on, count nowhere:
    not in the stages, not in the decisions, not in the charts."""
    other = make_fund("Other Fund")
    now = utcnow()
    make_case(other, status=S.IN_REVIEW, submitted_at=now - timedelta(days=3))
    _decided(other, now - timedelta(hours=2), True)
    later = {"response_due_at": now + timedelta(days=1), "decision_due_at": now + timedelta(days=5)}
    mine = make_case(fund, status=S.IN_REVIEW, submitted_at=now - timedelta(days=3), **later)
    conflicted = make_case(fund, status=S.IN_REVIEW, submitted_at=now - timedelta(days=3), **later)
    db.session.add(ConflictDeclaration(application_id=conflicted.id, user_id=world.m1.id))
    db.session.commit()
    assert mine.id
    page = _page(signed_in(app, world.m1))
    assert _waiting(page)["In review"] == [0, 1, 0, 0, 1, 0]
    flow = page.xpath('//figure[@id="chart-flow"]//tbody/tr')
    received = sum(int(_text(row.xpath("td")[0])) for row in flow)
    decided = sum(int(_text(row.xpath("td")[1])) for row in flow)
    assert (received, decided) == (1, 0)
    # A colleague without the conflict counts both.
    assert _waiting(_page(signed_in(app, world.m2)))["In review"][4] == 2


def test_money_this_month_by_pool(app, world):
    """Committed this month is what grants drew this month; paid this month, the payments
    dated this month net of their reversals; available, what the pool page says."""
    today = utcnow().date()
    grant = world.grant("3000")
    pay(world, grant, "1000", instalment=None, paid_on=today, reference="DASH-1")
    # Paid last month: not this month's.
    before = today.replace(day=1) - timedelta(days=1)
    pay(world, grant, "500", instalment=None, paid_on=before, reference="D2")
    for user in (world.m1, world.finance):
        page = _page(signed_in(app, user))
        rows = page.xpath('//h2[@id="money"]/following::table[1]/tbody/tr')
        cells = {_text(r.xpath("th")[0]): [_text(td) for td in r.xpath("td")] for r in rows}
        assert cells["Emergency EUR"] == ["€3,000.00", "€1,000.00", "€17,000.00"]
        assert cells["Relocation USD"] == ["$0.00", "$0.00", "$30,000.00"]
    # The reviewer's home counts cases, not money.
    page = _page(signed_in(app, world.reviewer))
    assert not page.xpath('//h2[@id="money"]') and not page.xpath('//figure[@id="chart-pool-0"]')


def test_finance_sees_what_it_must_chase_not_the_stages(app, world):
    """Finance's dashboard counts held payments and late instalments, not case stages."""
    grant = world.grant("3000")
    today = utcnow().date()
    world.plan(grant, count=1, starts_on=today - timedelta(days=40))
    page = _page(signed_in(app, world.finance))
    assert not page.xpath('//h2[@id="waiting"]')
    chase = _card(page, "Money to chase")
    assert "1 instalment past its due date" in chase
    assert "0 payments wait for a second person" in chase
    # Said once, marked by its colour and weight, not "past its due date overdue".
    assert "past its due date overdue" not in chase
    (late,) = page.xpath('//li[contains(., "past its due date")]')
    assert late.get("class") == "overdue"


def test_days_from_decision_to_first_payment(app, world):
    """The median days from a case's decision to its first payment, by the month of that
    payment; a later payment of the same grant does not count."""
    today = utcnow().date()
    first = today.replace(day=1)
    for days, name in ((4, "A"), (10, "B"), (6, "C")):
        grant = world.grant("100", name=f"Defender {name}")
        case = grant.application
        case.decided_at = datetime.combine(first, time(9)) - timedelta(days=days)
        db.session.commit()
        pay(world, grant, "50", instalment=None, paid_on=first, reference=f"F-{name}")
        pay(world, grant, "50", instalment=None, paid_on=today, reference=f"G-{name}")
    page = _page(signed_in(app, world.finance))
    rows = page.xpath('//figure[@id="chart-first-payment"]//tbody/tr')
    last = [_text(td) for td in rows[-1].xpath("td")]
    assert last == ["6 days", "3"]
    assert [_text(td) for td in rows[-2].xpath("td")] == ["–", "0"]


def test_each_chart_is_svg_with_words_and_a_table(app, world, fund):
    """Every chart is an inline SVG with no script, named by its title and description,
    sized by its viewBox to the screen, and followed by a table with the same periods."""
    make_case(fund, submitted_at=utcnow() - timedelta(days=1))
    world.usd.ends_on = utcnow().date() + timedelta(days=60)
    db.session.commit()
    html = signed_in(app, world.m1).get("/dashboard").get_data(as_text=True)
    assert "<script" not in html
    page = lxml.html.fromstring(html)
    figures = page.xpath("//figure[@class='chart']")
    keys = [f.get("id") for f in figures]
    assert keys == [
        "chart-flow",
        "chart-in-time",
        "chart-first-payment",
        "chart-pool-0",
        "chart-pool-1",
    ]
    for figure in figures:
        (svg,) = figure.xpath(".//svg")
        assert svg.get("viewbox") == "0 0 390 230" and svg.get("width") == "100%"
        assert svg.get("role") == "img"
        title_id, desc_id = svg.get("aria-labelledby").split()
        assert _text(svg.xpath(f".//title[@id='{title_id}']")[0])
        assert _text(svg.xpath(f".//desc[@id='{desc_id}']")[0])
        rows = figure.xpath(".//details//tbody/tr")
        assert len(rows) == 12
    # A bar chart's legend shows each series as a square of its bars' colour (a dashed
    # stroke stood for bars drawn solid); a line chart's, each line's stroke and dash.
    flow_svg = page.xpath("//figure[@id='chart-flow']//svg")[0]
    bars = [g.get("fill") for g in flow_svg.xpath("./g[@fill]")]
    assert len(bars) == 2 and bars[0] != bars[1]
    assert [r.get("fill") for r in flow_svg.xpath("./rect[@width='10']")] == bars
    assert not flow_svg.xpath("./line[@stroke-dasharray]")
    pool_svg = page.xpath("//figure[@id='chart-pool-0']//svg")[0]
    assert not pool_svg.xpath("./rect[@width='10']")
    dashes = {p.get("stroke-dasharray") for p in pool_svg.xpath("./polyline")}
    keys = {k.get("stroke-dasharray") for k in pool_svg.xpath("./line[@stroke-width='3']")}
    assert len(keys) > 1 and keys == dashes
    # The flow's two series say what they count, each in the plural of cases.
    flow = _text(page.xpath("//figure[@id='chart-flow']")[0])
    assert "Cases received" in flow and "Cases decided" in flow
    usd = page.xpath("//figure[@id='chart-pool-1']")[0]
    assert "Relocation USD over time" in _text(usd.xpath(".//title")[0])
    assert "in 60 days" in _text(usd.xpath(".//desc")[0])
    # The end date is drawn on the chart, and the latest point is today.
    assert "Ends" in _text(usd.xpath(".//svg")[0])
    today_row = [_text(td) for td in usd.xpath(".//tbody/tr")[-1].xpath("td")]
    assert today_row == ["$30,000.00", "$0.00", "$0.00", "$30,000.00"]


def test_a_pool_history_matches_its_figures_on_each_day(app, world):
    """The pool's chart cuts the same sums as its page at each day: what stood at the start
    of the day."""
    from hrdfund.ledger.balances import pool_figures, pool_history

    grant = world.grant("3000")
    pay(world, grant, "1000", instalment=None, paid_on=date(2026, 2, 3), reference="H-1")
    pay(
        world,
        grant,
        "200",
        instalment=None,
        paid_on=date(2026, 3, 3),
        reference="H-2",
        fee=Decimal("5"),
    )
    days = [date(2026, 1, 1), date(2026, 1, 3), date(2026, 3, 1), date(2026, 4, 1)]
    days.append(utcnow().date() + timedelta(days=1))
    history = pool_history([world.eur.id], days)[world.eur.id]
    for day, point in zip(days, history, strict=True):
        figures = pool_figures([world.eur.id], until=day)[world.eur.id]
        assert point == {k: figures[k] for k in point}, day
    assert history[2]["disbursed"] == Decimal("1000.00")
    # The grant was approved today: committed only in the last point.
    assert history[3]["available"] == Decimal("19995.00")
    assert history[4]["available"] == Decimal("16995.00")


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's write lock
def test_the_dashboard_reads_with_no_write_lock(app, backend, world, monkeypatch):
    """Building the dashboard keeps no writer waiting."""
    from hrdfund.core.extensions import sqlite_begin_statement
    from tests.test_models import _another_writer_gets_the_lock

    during = []
    build = dashboard.dashboard_figures

    def watched():
        figures = build()
        during.append((sqlite_begin_statement(), _another_writer_gets_the_lock()))
        return figures

    monkeypatch.setattr(dashboard, "dashboard_figures", watched)
    assert signed_in(app, world.m1).get("/dashboard").status_code == 200
    assert during == [("BEGIN", True)]


def test_a_chart_escapes_its_words(app):
    """Pool names and other words are text in the drawing, never markup."""
    chart = Chart(
        key="c",
        title="<b>pool</b>",
        summary="a & b",
        labels=["<i>"],
        series=[Series("<script>", [1], ["1"])],
        marker=(0.5, "<u>"),
    )
    with app.test_request_context():
        svg = app.jinja_env.get_template("_chart.html").module.svg(chart)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert not any(tag in svg for tag in ("<script>", "<b>", "<i>", "<u>"))
    assert "&lt;script&gt;" in svg and "a &amp; b" in svg and "&lt;u&gt;" in svg
