"""Every page that lists ledger rows lists them newest first: by their date, and rows of
the same date the later written first. Rows are written here out of date order, as
finance records a payment made days ago after one made today."""

import re
from datetime import date
from decimal import Decimal

from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import services as payments
from hrdfund.pools import services as pools
from tests.conftest import MoneyWorld, login, pay

#: Payments as they are recorded, one after the other: (reference, amount, paid on).
RECORDED = [
    ("PAY-B", "110", date(2026, 2, 10)),
    ("PAY-A", "120", date(2026, 2, 1)),
    ("PAY-D", "130", date(2026, 2, 20)),
    ("PAY-C", "140", date(2026, 2, 10)),
]
#: Newest first: the latest date first, and of two on 10 February the one written later.
NEWEST_FIRST = ["PAY-D", "PAY-C", "PAY-B", "PAY-A"]
EVERY_PAYMENT = ["PAY-E", *NEWEST_FIRST]


def _order(html, names):
    """``names`` in the order the page shows them."""
    found = {name: html.find(name) for name in names}
    assert all(at >= 0 for at in found.values()), found
    return sorted(names, key=found.get)


def _section(html, start_at):
    """The part of the page from ``start_at`` (in or before a heading) to the next
    heading of the same level."""
    start = html.index(start_at)
    end = html.find("<h2", html.index("</h2>", start))
    return html[start : end if end > 0 else len(html)]


def test_payments_and_contributions_are_listed_newest_first(
    app, client, fund, make_user, make_donor
):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("2000")
    world.plan(grant, kind="tranches", count=4)
    for n, (reference, amount, day) in enumerate(RECORDED, start=1):
        pay(world, grant, amount, instalment=n, paid_on=day, reference=reference)
    for reference, day in (("GIFT-2", date(2026, 3, 5)), ("GIFT-1", date(2026, 1, 20))):
        pools.record_contribution(world.eur, world.m1, Decimal("500"), "EUR", day, reference)
    later = world.grant("300", name="Defender Two")
    world.plan(later, kind="one_off", count=1)
    pay(world, later, "300", paid_on=date(2026, 3, 1), reference="PAY-E")
    db.session.commit()
    case = f"/applications/{grant.application.uid}"

    finance = app.test_client()
    login(finance, world.finance)
    html = finance.get(case).get_data(as_text=True)
    assert _order(_section(html, 'id="money"'), NEWEST_FIRST) == NEWEST_FIRST
    assert _order(finance.get("/payments").get_data(as_text=True), EVERY_PAYMENT) == EVERY_PAYMENT

    login(client, world.m1)
    html = client.get(f"/pools/{world.eur.uid}").get_data(as_text=True)
    assert _order(_section(html, 'id="payments"'), EVERY_PAYMENT) == EVERY_PAYMENT
    # Received on 5 March, then 20 January, then the world's first money of 2 January.
    received = _section(html, 'id="contributions"')
    dates = re.findall(r"<td[^>]*>(\d{4}-\d\d-\d\d)</td>", received)
    assert dates == sorted(dates, reverse=True) == ["2026-03-05", "2026-01-20", "2026-01-02"]

    # The grants paid in a period: the most recently paid first, with that date.
    html = _section(
        client.get("/reports/internal?period=2026").get_data(as_text=True), "Grants paid"
    )
    assert re.findall(r"<td[^>]*>(\d{4}-\d\d-\d\d)</td>", html) == ["2026-03-01", "2026-02-20"]

    applicant = app.test_client()
    login(applicant, world.applicant)
    html = applicant.get(case).get_data(as_text=True)
    shown = ["€130.00", "€140.00", "€110.00", "€120.00"]
    assert _order(_section(html, "Payments made"), shown) == shown


def test_a_reversal_is_listed_above_the_payment_it_reverses(app, fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    world.plan(grant, kind="one_off", count=1)
    payment = pay(world, grant, "1000", paid_on=date(2026, 2, 3), reference="PAY-1")
    payments.reverse_disbursement(payment, world.finance, "Bounced")
    db.session.commit()
    finance = app.test_client()
    login(finance, world.finance)
    html = _section(
        finance.get(f"/applications/{grant.application.uid}").get_data(as_text=True), 'id="money"'
    )
    # The reversal is dated the day it is recorded, after the payment of 3 February.
    today = utcnow().date().isoformat()
    assert _order(html, [today, "2026-02-03"]) == [today, "2026-02-03"]
    assert html.index("Reversal: Bounced") < html.index("2026-02-03")
