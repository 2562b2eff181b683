"""A pool's page: its figures and chart first, then each kind of row in its own list, a page
at a time, newest first, kept to the dates chosen; the figures always count every row."""

import re
from datetime import date, timedelta
from decimal import Decimal

import lxml.html
import pytest
import sqlalchemy as sa

from hrdfund.core.extensions import db
from hrdfund.disbursements import services as payments
from hrdfund.pools import services as pools
from hrdfund.reviews.services import declare_conflict
from tests.conftest import MoneyWorld, pay, signed_in

#: Rows a list shows at a time in these tests.
SIZE = 3


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PAGE_SIZE": SIZE}


@pytest.fixture
def world(fund, make_user, make_donor):
    """The euro pool with seven contributions in all, one a day from 1 March (the world's
    own of 2 January first), and a grant with five payments, one a week from 2 March."""
    world = MoneyWorld(fund, make_user, make_donor)
    for n in range(6):
        pools.record_contribution(
            world.eur, world.m1, Decimal("100"), "EUR", date(2026, 3, 1 + n), f"GIFT-{n}"
        )
    world.grant_ = world.grant("3000")
    world.paid = [
        pay(
            world,
            world.grant_,
            "100",
            instalment=None,
            paid_on=date(2026, 3, 2) + timedelta(weeks=n),
            reference=f"PAY-{n}",
        )
        for n in range(5)
    ]
    db.session.commit()
    return world


def _html(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.status
    return response.get_data(as_text=True)


def _listed(html, section):
    """The texts of the rows of a section, in order."""
    page = lxml.html.fromstring(html)
    rows = page.xpath(f'//h2[@id="{section}"]/following::table[1]/tbody/tr')
    return [" ".join(" ".join(td.text_content().split()) for td in r.xpath("td")) for r in rows]


def _references(html, section, prefix):
    return [next(w for w in row.split() if w.startswith(prefix)) for row in _listed(html, section)]


def test_the_figures_and_chart_come_first_and_count_every_row(app, world):
    """The figures, then the pool's chart with its table, then the rows; the chart's
    point for today is the figures."""
    html = _html(signed_in(app, world.finance), f"/pools/{world.eur.uid}")
    figures, chart, rows = (html.index(t) for t in ('id="fig-', 'id="chart-pool"', 'id="rows"'))
    assert figures < chart < rows
    page = lxml.html.fromstring(html)
    today = [
        " ".join(td.text_content().split())
        for td in page.xpath('//figure[@id="chart-pool"]//tbody/tr[last()]/td')
    ]
    assert today == ["€20,600.00", "€3,000.00", "€500.00", "€17,600.00"]


def test_each_list_is_paged_on_its_own_newest_first(app, world):
    """Each list shows SIZE rows, newest first, and says which; its older page keeps the
    page of every other list."""
    client = signed_in(app, world.m1)
    html = _html(client, f"/pools/{world.eur.uid}")
    assert _references(html, "contributions", "GIFT-") == ["GIFT-5", "GIFT-4", "GIFT-3"]
    assert _references(html, "payments", "PAY-") == ["PAY-4", "PAY-3", "PAY-2"]
    assert "Rows 1 to 3 of 7" in html and "Rows 1 to 3 of 5" in html
    older = f"/pools/{world.eur.uid}?payments_page=2&contributions_page=3"
    html = _html(client, older)
    assert _references(html, "payments", "PAY-") == ["PAY-1", "PAY-0"]
    assert "Rows 4 to 5 of 5" in html and "Rows 7 to 7 of 7" in html
    page = lxml.html.fromstring(html)
    (newer,) = page.xpath('//nav[@aria-label="Pages of payments"]//a[text()="Newer rows"]/@href')
    assert "payments_page=1" in newer and "contributions_page=3" in newer
    assert newer.endswith("#payments")


def test_the_dates_keep_every_list_to_them_and_not_the_figures(app, world):
    """From 3 to 9 March: the contributions and payments of those days only; the figures
    still count every row."""
    client = signed_in(app, world.m1)
    whole = _html(client, f"/pools/{world.eur.uid}")
    html = _html(client, f"/pools/{world.eur.uid}?from=2026-03-03&to=2026-03-09")
    assert _references(html, "contributions", "GIFT-") == ["GIFT-5", "GIFT-4", "GIFT-3"]
    assert "Rows 1 to 3 of 4" in html
    assert _references(html, "payments", "PAY-") == ["PAY-1"]
    # The grant was committed today, outside those dates.
    assert _listed(html, "commitments") == ["Nothing committed on these dates."]
    figures = [line for line in whole.splitlines() if 'id="fig-' in line]
    assert figures and all(line in html for line in figures)
    page = lxml.html.fromstring(html)
    assert page.xpath('//input[@name="from"]/@value') == ["2026-03-03"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=31/03/2026", "“31/03/2026” is not a date: write it as 2026-03-31."),
        ("from=2026-03-09&to=2026-03-03", "The last day comes before the first."),
    ],
)
def test_dates_that_cannot_be_read_say_so_and_list_nothing(app, world, query, words):
    html = _html(signed_in(app, world.m1), f"/pools/{world.eur.uid}?{query}")
    assert words in html
    assert _listed(html, "payments") == ["No payment on these dates."]
    assert 'id="fig-' in html


def test_the_widest_dates_list_every_row(app, world):
    """From the calendar's first day to its last (9999-12-31, a day with no day after
    it): every row is listed, on the pool's page and on finance's payments (both
    answered 500)."""
    client = signed_in(app, world.finance)
    widest = "from=0001-01-01&to=9999-12-31"
    every = _references(_html(client, f"/pools/{world.eur.uid}"), "payments", "PAY-")
    assert every
    for query in (widest, "to=9999-12-31"):
        html = _html(client, f"/pools/{world.eur.uid}?{query}")
        assert _references(html, "payments", "PAY-") == every
        assert _payment_references(_html(client, f"/payments?{query}")) == [
            "PAY-4",
            "PAY-3",
            "PAY-2",
        ]


@pytest.mark.parametrize("asked", ["abc", "-4", "0", "99999999999999999999"])
def test_any_page_number_answers_a_page(app, world, asked):
    """A word, a negative or a number too large is read within the pages there are or
    past them, never an error."""
    html = _html(signed_in(app, world.m1), f"/pools/{world.eur.uid}?payments_page={asked}")
    assert "Payments, fees and exchange differences" in html


def test_a_reversal_links_to_its_payment_on_the_page_of_its_day(app, world):
    """A reversal listed on the first page names the payment it reverses, listed on an
    older page: its link opens that payment's day."""
    first = world.paid[0]
    reversal = payments.reverse_disbursement(first, world.finance, "Bounced")
    db.session.commit()
    html = _html(signed_in(app, world.finance), f"/pools/{world.eur.uid}")
    page = lxml.html.fromstring(html)
    (row,) = page.xpath(f'//tr[@id="payment-{reversal.uid}"]')
    _case, href = row.xpath(".//a/@href")
    day = first.paid_on.isoformat()
    assert href == f"/pools/{world.eur.uid}?from={day}&to={day}#payment-{first.uid}"
    on_its_day = _html(signed_in(app, world.finance), href.split("#")[0])
    assert f'id="payment-{first.uid}"' in on_its_day


def _payment_references(html):
    page = lxml.html.fromstring(html)
    rows = page.xpath('//h2[@id="payments"]/following::table[1]/tbody/tr')
    return [" ".join(r.xpath("td")[1].text_content().split()) for r in rows if len(r) > 1]


def test_finances_payments_are_paged_newest_first_over_the_dates_chosen(app, world):
    """Finance's list of payments: SIZE to a page, newest first, the next page kept to the
    same dates; dates that cannot be read are said and list nothing."""
    client = signed_in(app, world.finance)
    html = _html(client, "/payments")
    assert _payment_references(html) == ["PAY-4", "PAY-3", "PAY-2"]
    # The list comes first; the statement's import below it, linked from the top.
    assert html.index('id="payments"') < html.index('id="import"')
    assert html.index('href="#import"') < html.index('id="payments"')
    (older,) = lxml.html.fromstring(html).xpath('//nav[@class="pager"]//a[text()="Next"]/@href')
    assert _payment_references(_html(client, older)) == ["PAY-1", "PAY-0"]
    html = _html(client, "/payments?from=2026-03-02&to=2026-03-16")
    assert _payment_references(html) == ["PAY-2", "PAY-1", "PAY-0"]
    assert not lxml.html.fromstring(html).xpath('//nav[@class="pager"]//a[text()="Next"]')
    html = _html(client, "/payments?from=2026-03-09&to=2026-03-30")
    (older,) = lxml.html.fromstring(html).xpath('//nav[@class="pager"]//a[text()="Next"]/@href')
    assert "from=2026-03-09" in older and "to=2026-03-30" in older
    assert _payment_references(_html(client, older)) == ["PAY-1"]
    html = _html(client, "/payments?to=tomorrow")
    assert "“tomorrow” is not a date: write it as 2026-03-31." in html
    assert _payment_references(html) == []


def test_each_reader_counts_the_rows_of_the_cases_they_may_open_and_no_others(app, world):
    """A second grant from the pool, paid twice, on a case a manager and a finance officer
    declared a conflict on: they read the lists without its rows, counted without them,
    and how many rows were left out (its commitment and two payments); a colleague reads
    and counts every row; an administrator, who opens no case, reads none and is told
    that every row on a case was left out."""
    other = world.grant("400", name="Defender Two")
    for n in range(2):
        pay(
            world,
            other,
            "50",
            instalment=None,
            paid_on=date(2026, 2, 10 + n),
            reference=f"OTHER-{n}",
        )
    declarers = [world.make_user("manager"), world.make_user("finance")]
    for user in declarers:
        declare_conflict(other.application, user)
    db.session.commit()
    path = f"/pools/{world.eur.uid}?payments_page=3"
    colleague = _html(signed_in(app, world.m1), path)
    assert _references(colleague, "payments", "OTHER-") == ["OTHER-0"]
    assert "Rows 7 to 7 of 7" in colleague and "not listed below" not in colleague
    for user in declarers:
        html = _html(signed_in(app, user), f"/pools/{world.eur.uid}?payments_page=2")
        assert _references(html, "payments", "PAY-") == ["PAY-1", "PAY-0"]
        assert "Rows 4 to 5 of 5" in html
        assert "3 rows on cases you may not open are not listed below" in html
        assert other.application.uid not in html
    html = _html(signed_in(app, world.admin), f"/pools/{world.eur.uid}")
    assert _listed(html, "payments") == ["No payment yet."]
    assert _listed(html, "commitments") == ["Nothing committed yet."]
    assert "9 rows on cases you may not open are not listed below" in html


def test_the_pool_page_adds_up_and_counts_its_payments_in_one_reading(app, world):
    """Every payment of the pool is read once for the page: the statement that adds up
    what was paid and what paying cost also counts the rows the payments' list pages
    through (on a pool of 150,000 payments each such reading is tens of milliseconds);
    the list still says how many there are."""
    client = signed_in(app, world.m1)
    statements = []

    def seen(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        html = _html(client, f"/pools/{world.eur.uid}")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    whole = [
        s
        for s in statements
        if re.search(r"FROM disbursements\b", s)
        and re.search(r"\b(count|sum)\(", s)
        and "grant_id IN" not in s  # the few rows of cases the reader may not open
    ]
    assert len(whole) == 1, whole
    assert "Rows 1 to 3 of 5" in " ".join(lxml.html.fromstring(html).text_content().split())
