"""Every page that shows a balance shows every term of its sum, each with the sign it has
in it, so the figures add up as printed; a reversal row counts against the row it
reverses, and a row that was reversed says so."""

import io
import re
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from pypdf import PdfReader

from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import services as payments
from hrdfund.ledger.balances import pool_figures
from hrdfund.pools import services as pools
from tests.conftest import MoneyWorld, login, pay

_AMOUNT = re.compile(r"(-?)[^\d\s-]{0,4}?([\d,]+\.\d{2})")


def amount(text):
    """The amount printed in ``text`` ("-$1,234.50" or "$20.00"), as a Decimal."""
    found = _AMOUNT.search(text.replace("\u2212", "-"))
    assert found, f"no amount in {text!r}"
    return Decimal(found[1] + found[2].replace(",", ""))


class Tables(HTMLParser):
    """Each table of a page: its caption and rows of cell texts; and each row's id."""

    def __init__(self, html):
        super().__init__()
        self.tables, self.ids, self._cell, self._row = [], {}, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "caption":
            self._cell = []
        elif tag == "tr":
            self._row = []
            if dict(attrs).get("id"):
                self.ids[dict(attrs)["id"]] = self._row
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self.tables[-1]["caption"] = " ".join("".join(self._cell).split())
            self._cell = None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def captioned(self, caption, after=0):
        found = [t for t in self.tables if t["caption"] == caption]
        assert len(found) > after, f"no table {caption!r}"
        return {row[0]: amount(row[1]) for row in found[after]["rows"]}

    def headed(self, first_header):
        return next(t["rows"] for t in self.tables if t["rows"] and t["rows"][0][0] == first_header)


@pytest.fixture
def ledger(fund, make_user, make_donor):
    """A EUR grant from the USD pool; a payment with a fee and an exchange difference
    (the rate moved between approval and payment) that bounced and was reversed with its
    fee refunded; a second payment that stands; a contribution taken back."""
    world = MoneyWorld(fund, make_user, make_donor)
    world.grant_ = grant = world.grant("1000", pool=world.usd, currency="EUR")
    # A move of 4.5%, recorded by a manager: it counts once a second manager confirms it.
    entry = pools.record_rate(
        fund.id, world.m1, date(2026, 2, 1), "EUR", "USD", Decimal("1.15"), "ECB"
    )
    pools.confirm_rate(entry, world.m2)
    db.session.commit()
    world.bounced = pay(world, grant, "400", instalment=None, fee=Decimal("5"))
    assert world.bounced.exchange_difference == Decimal("20.00")
    world.reversal = payments.reverse_disbursement(
        world.bounced, world.finance, "bounced", fee_refunded=True
    )
    db.session.commit()
    world.stands = pay(
        world, grant, "300", instalment=None, fee=Decimal("3"), paid_on=date(2026, 2, 10)
    )
    mistake = pools.record_contribution(
        world.usd, world.m1, Decimal("700"), "USD", date(2026, 3, 1)
    )
    db.session.commit()
    pools.reverse_contribution(mistake, world.m1, "booked twice")
    db.session.commit()
    world.figures = pool_figures([world.usd.id])[world.usd.id]
    assert world.figures["fees"] == Decimal("3.00")
    assert world.figures["exchange_differences"] == Decimal("15.00")
    return world


def page_of(app, user, url):
    client = app.test_client()
    login(client, user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def _balance(figures, prefix=""):
    """A pool's two sums as the figures tables print them."""
    f = figures
    assert (
        f["Received"] + f["Committed to grants"] + f["Fees"] + f["Exchange differences"]
        == (f["Available"])
    )
    return f


def test_the_donor_portal_and_the_pools_list_add_up(app, ledger):
    donor = ledger.make_user("donor", donor_id=ledger.donor.id)
    portal = Tables(page_of(app, donor, "/donor"))
    f = ledger.figures
    # Two pools, each with its two tables; the USD pool is the second by name.
    usd = _balance(portal.captioned("What can still be committed", after=1))
    assert usd["Available"] == f["available"] and usd["Fees"] == -f["fees"]
    assert usd["Exchange differences"] == -f["exchange_differences"]
    committed = portal.captioned("What was committed to grants", after=1)
    assert committed["Paid out"] + committed["Still to pay"] == committed["Committed"]
    assert committed["Committed"] == f["committed"] == -usd["Committed to grants"]
    listing = Tables(page_of(app, ledger.m1, "/pools"))
    header, *rows = listing.headed("Pool")
    row = dict(zip(header, next(r for r in rows if r[0] == ledger.usd.name), strict=True))
    terms = [amount(row[k]) for k in ("Received", "Committed", "Fees", "Exchange differences")]
    assert sum(terms) == amount(row["Available"]) == f["available"]


def test_the_pool_page_adds_up_and_its_rows_make_its_figures(app, ledger):
    page = page_of(app, ledger.finance, f"/pools/{ledger.usd.uid}")
    tables = Tables(page)
    figures = _balance(tables.captioned("What can still be committed"))
    committed = tables.captioned("What was committed to grants")
    assert committed["Paid out"] + committed["Still to pay"] == committed["Committed"]
    header, *rows = tables.headed("Paid on")
    lines = [dict(zip(header, r, strict=True)) for r in rows]
    assert sum(amount(r["Disbursed"]) for r in lines) == committed["Paid out"]
    assert sum(amount(r["Fee"]) for r in lines) == -figures["Fees"]
    diffs = sum(amount(r["Exchange difference"]) for r in lines)
    assert diffs == -figures["Exchange differences"]
    back = tables.ids[f"payment-{ledger.reversal.uid}"]
    assert [amount(cell) for cell in back[3:6]] == [
        Decimal("-440.00"),
        Decimal("-5.00"),
        Decimal("-20.00"),
    ]
    bounced = " ".join(tables.ids[f"payment-{ledger.bounced.uid}"])
    assert f"Reversed on {utcnow().date().isoformat()}" in bounced
    assert f'href="#payment-{ledger.reversal.uid}"' in page
    header, *rows = tables.headed("Received on")
    received = sum(amount(dict(zip(header, r, strict=True))["In the pool"]) for r in rows)
    assert received == figures["Received"]
    taken_back = next(r for r in rows if "Taken back on" in " ".join(r))
    assert "2026-03-01" in taken_back[0]


def test_the_internal_report_adds_up(app, ledger):
    page = Tables(page_of(app, ledger.m1, f"/reports/internal?period={date.today().year}"))
    header, *rows = page.headed("Pool")
    row = dict(zip(header, next(r for r in rows if r[0] == ledger.usd.name), strict=True))
    money = {k: amount(v) for k, v in row.items() if k not in ("Pool", "Donor report")}
    moved = ("Opening", "Received", "Disbursed", "Reversed", "Fees", "Exchange differences")
    assert sum(money[k] for k in moved) == money["Closing"]
    assert money["Closing"] + money["Committed, not yet paid"] == money["Available at the end"]
    assert money["Available at the end"] == ledger.figures["available"]
    assert money["Reversed"] == Decimal("440.00") and money["Fees"] == Decimal("-3.00")


def test_the_case_page_adds_up_and_the_bounced_payment_says_so(app, ledger):
    page = page_of(app, ledger.finance, f"/applications/{ledger.grant_.application.uid}")
    tables = Tables(page)
    header, *rows = next(t["rows"] for t in tables.tables if t["caption"] == "Pools drawn on")
    row = {k: amount(v) for k, v in zip(header[1:], rows[0][1:], strict=True)}
    # As the hint under the table says: still committed = committed − released − paid.
    assert row["Paid"] > 0 and row["Released"] >= 0
    assert row["Committed"] - row["Released"] - row["Paid"] == row["Still committed"]
    header, *ledger_rows = tables.headed("Date")
    lines = [dict(zip(header, r, strict=False)) for r in ledger_rows]
    assert sum(amount(r["From the pool"]) for r in lines) == row["Paid"]
    back = dict(zip(header, tables.ids[f"payment-{ledger.reversal.uid}"], strict=False))
    for column in ("Paid", "From the pool", "Fee", "Exchange difference"):
        assert amount(back[column]) < 0, column  # the fee refunded counts against the fee
    bounced = dict(zip(header, tables.ids[f"payment-{ledger.bounced.uid}"], strict=False))
    assert f"Reversed on {utcnow().date().isoformat()}" in bounced["Status"]
    assert f'href="#payment-{ledger.reversal.uid}"' in page
    assert "of the payment of 2026-02-03" in back["Status"]


def test_the_payments_list_signs_reversals_and_marks_what_was_reversed(app, ledger):
    tables = Tables(page_of(app, ledger.finance, "/payments"))
    header, *_rows = tables.headed("Payment")
    back = dict(zip(header, tables.ids[f"payment-{ledger.reversal.uid}"], strict=True))
    for column in ("Paid", "In pool currency", "Fee", "Exchange difference"):
        assert amount(back[column]) < 0, column
    bounced = dict(zip(header, tables.ids[f"payment-{ledger.bounced.uid}"], strict=True))
    assert f"Reversed on {utcnow().date().isoformat()}" in bounced["Payment"]
    assert ledger.reversal.uid in bounced["Payment"]


def test_the_donor_pdf_adds_up_as_printed(app, ledger):
    from hrdfund.reports.data import build_report
    from hrdfund.reports.pdf import render_pdf
    from hrdfund.reports.periods import parse_period

    with app.test_request_context():
        body = render_pdf(build_report(ledger.usd, parse_period(str(date.today().year))))
    lines = [
        line.strip()
        for page in PdfReader(io.BytesIO(body)).pages
        for line in page.extract_text().splitlines()
    ]

    def table(title, size):
        """The amounts printed under ``title``, the last of them the sum of the others."""
        start = next(i for i, line in enumerate(lines) if line.startswith(title))
        printed = [amount(line) for line in lines[start + 1 :] if _AMOUNT.fullmatch(line)]
        found = printed[:size]
        assert sum(found[:-1]) == found[-1], (title, found)
        return found

    account = table("The pool's account", 8)
    assert account[-1] == table("At the end of the period", 3)[0]
    position = table("Since the pool opened", 5)
    assert position[-1] == ledger.figures["available"]
    table("What was committed to grants", 3)
    # The period's commitments end on their net: what the donor's portal shows as committed.
    committed, released, net = table("Commitments to grants in the period", 3)
    assert released <= 0 and net == committed + released
