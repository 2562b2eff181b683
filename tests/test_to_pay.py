"""Finance's own way in: the list of grants to pay (due instalments, approved grants without
a plan), a page to pay one in one step, and a payment form that says what is due and when a
sum leaves an instalment short."""

import html
import re
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from hrdfund.cases.models import Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from hrdfund.ledger.models import Disbursement
from hrdfund.reviews import services as reviews
from tests.conftest import pay, payment_data, refused_page, signed_in


def _text(response):
    return html.unescape(response.get_data(as_text=True))


def _rows(page):
    """The case codes of the list's rows, in order."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<code class="case-uid">([0-9a-f]+)</code>', body)


def test_the_list_shows_due_instalments_and_unplanned_grants_most_urgent_first(app, money_world):
    today = utcnow().date()
    # Due in three days, normal; overdue by ten days, normal; due today, urgent;
    # approved without a plan, urgent; due in a month: not listed yet.
    soon = money_world.grant("1000", name="Soon")
    money_world.plan(soon, kind="one_off", starts_on=today + timedelta(days=3))
    late = money_world.grant("1000", name="Late")
    money_world.plan(late, kind="one_off", starts_on=today - timedelta(days=10))
    urgent = money_world.grant("1000", name="Urgent")
    urgent.application.urgency = Urgency.URGENT
    money_world.plan(urgent, kind="one_off", starts_on=today)
    unplanned = money_world.grant("800", name="Unplanned", currency="EUR")
    unplanned.application.urgency = Urgency.URGENT
    later = money_world.grant("1000", name="Later")
    money_world.plan(later, kind="one_off", starts_on=today + timedelta(days=30))
    db.session.commit()
    finance = signed_in(app, money_world.finance)
    page = _text(finance.get("/payments/to-pay"))
    uid = {g: g.application.uid for g in (soon, late, urgent, unplanned, later)}
    # Due now first, urgent before normal, then the longest waiting; soon last.
    assert _rows(page) == [uid[urgent], uid[unplanned], uid[late], uid[soon]]
    assert "Relocation" in page and "Urgent" in page and "Not urgent" in page
    assert "Instalment 1, due" in page and "no plan yet" in page
    assert "€1,000.00" in page and "€800.00" in page
    assert "10 days" in page and "due in 3 days" in page
    assert f'href="/applications/{uid[unplanned]}/pay"' in page
    assert f"/applications/{uid[urgent]}/pay?instalment=" in page


def test_a_part_paid_instalment_shows_what_is_left_and_a_paid_one_leaves(app, money_world):
    today = utcnow().date()
    grant = money_world.grant("1000")
    money_world.plan(grant, count=2, starts_on=today - timedelta(days=1), interval_days=1)
    pay(money_world, grant, "300", instalment=1, paid_on=today)
    finance = signed_in(app, money_world.finance)
    page = _text(finance.get("/payments/to-pay"))
    assert "€200.00" in page and "of €500.00" in page  # instalment 1: 500 - 300
    assert "Instalment 2, due" in page
    pay(money_world, grant, "200", instalment=1, paid_on=today)
    page = _text(finance.get("/payments/to-pay"))
    assert "Instalment 1, due" not in page and "Instalment 2, due" in page


def test_a_grant_paid_in_full_or_closed_is_not_listed(app, money_world):
    paid = money_world.grant("500", name="Paid")
    pay(money_world, paid, "500", instalment=None)
    closed = money_world.grant("500", name="Closed")
    plans.close_grant(closed, money_world.m1, "Not needed")
    db.session.commit()
    page = _text(signed_in(app, money_world.finance).get("/payments/to-pay"))
    assert paid.application.uid not in page and closed.application.uid not in page
    assert "Nothing to pay" in page


def test_only_finance_of_the_fund_without_a_conflict_sees_a_grant(
    app, money_world, make_fund, make_user
):
    grant = money_world.grant("1000")
    uid = grant.application.uid
    other = make_user("finance", fund_id=make_fund("Other Fund").id)
    assert uid not in _text(signed_in(app, other).get("/payments/to-pay"))
    assert signed_in(app, other).get(f"/applications/{uid}/pay").status_code == 404
    for staff in (money_world.m1, money_world.reviewer, money_world.applicant):
        client = signed_in(app, staff)
        assert client.get("/payments/to-pay").status_code in (403, 404)
        assert client.get(f"/applications/{uid}/pay").status_code in (403, 404)
    conflicted = make_user("finance")
    reviews.declare_conflict(grant.application, conflicted)
    db.session.commit()
    client = signed_in(app, conflicted)
    assert uid not in _text(client.get("/payments/to-pay"))
    assert client.get(f"/applications/{uid}/pay").status_code == 404
    assert uid in _text(signed_in(app, money_world.finance).get("/payments/to-pay"))


def test_finance_reaches_the_list_from_its_navigation_and_dashboard(app, money_world):
    money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    dashboard = _text(finance.get("/dashboard"))
    assert 'href="/payments/to-pay"' in dashboard
    assert "1 instalment or grant to pay" in dashboard
    assert 'href="/payments/to-pay"' in _text(finance.get("/payments"))


def test_the_form_offers_each_instalment_with_what_is_still_due(app, money_world):
    today = utcnow().date()
    grant = money_world.grant("2600", pool=money_world.usd)
    money_world.plan(grant, count=2, starts_on=today)
    first = payments.grant_instalments(grant)[0]
    pay(money_world, grant, "1000", instalment=1, paid_on=today)
    finance = signed_in(app, money_world.finance)
    for url in (
        f"/applications/{grant.application.uid}/pay?instalment={first.id}",
        f"/applications/{grant.application.uid}",
    ):
        page = _text(finance.get(url))
        assert "€300.00 still to pay of €1,300.00" in page
        assert "€1,300.00 to pay" in page  # the second, untouched
        # The pool pays in dollars: what is due there, at the allocation's rate.
        assert "$330.00" in page and "$1,430.00" in page
    page = _text(finance.get(f"/applications/{grant.application.uid}/pay?instalment={first.id}"))
    chosen = rf'<option selected value="{first.id}"|<option value="{first.id}" selected'
    assert re.search(chosen, page)


def test_a_round_sum_in_another_currency_is_recorded_and_the_shortfall_said(app, money_world):
    """2,600 EUR from the dollar pool in two parts of 1,300 EUR (1,430 USD, 185,900 KES):
    180,000 KES pays 1,384.62 USD, which settles 1,258.75 EUR; 41.25 EUR is left, that is
    5,898.75 KES at the payment's rate."""
    today = utcnow().date()
    grant = money_world.grant("2600", pool=money_world.usd)
    money_world.plan(grant, count=2, starts_on=today)
    uid = grant.application.uid
    finance = signed_in(app, money_world.finance)
    data = payment_data(
        grant,
        **{
            "pay-amount_paid": "180000.00",
            "pay-currency_paid": "KES",
            "pay-fee": "0",
            "pay-paid_on": today.isoformat(),
        },
    )
    response = finance.post(f"/applications/{uid}/payments?back=pay", data=data)
    assert response.status_code == 302 and response.location == "/payments/to-pay"
    page = _text(finance.get(response.location))
    # Back on a list of many cases, the message names the payment's sum and case.
    case = grant.application.code or uid
    assert f"Payment recorded. KES\xa0180,000.00 for {case}." in page
    assert "Instalment 1 is still short by €41.25 (KES\xa05,898.75 at this payment's rate)" in page
    assert "€41.25" in page and "of €1,300.00" in page  # it stays on the list
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 1


def test_a_payment_held_for_a_second_person_says_what_it_will_leave_short(app, money_world):
    """Held (its fee a large share of it), nothing is booked: the words say the shortfall
    comes once it is confirmed, where they read as if the instalment were short now,
    beside a list that still showed it whole."""
    today = utcnow().date()
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2, starts_on=today)
    finance = signed_in(app, money_world.finance)
    data = payment_data(
        grant,
        **{"pay-amount_paid": "600.00", "pay-fee": "100", "pay-paid_on": today.isoformat()},
    )
    response = finance.post(f"/applications/{grant.application.uid}/payments", data=data)
    page = _text(finance.get(response.location))
    case = grant.application.code or grant.application.uid
    assert f"€600.00 for {case}. Nothing is booked yet" in page
    assert "Once this payment is confirmed, instalment 1 will still be short by €400.00" in page
    assert "Instalment 1 is still short" not in page


def test_a_sum_short_by_rounding_only_counts_as_paid(app, money_world):
    today = utcnow().date()
    grant = money_world.grant("1000")
    money_world.plan(grant, kind="one_off", starts_on=today)
    finance = signed_in(app, money_world.finance)
    data = payment_data(
        grant, **{"pay-amount_paid": "999.50", "pay-fee": "0", "pay-paid_on": today.isoformat()}
    )
    response = finance.post(f"/applications/{grant.application.uid}/payments", data=data)
    page = _text(finance.get(response.location))
    assert "short by €0.50" in page and "it counts as paid" in page
    assert grant.application.uid not in _text(finance.get("/payments/to-pay"))
    # The plan says so too: paid, not 0.50 still to pay, to staff and to the defender.
    plan = finance.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    plan = plan.split('id="plan"')[1].split("</table>")[0]
    assert ">paid<" in plan and "€0.50" not in plan
    defender = signed_in(app, money_world.applicant)
    seen = defender.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "<td>Paid</td>" in seen.split("Planned for")[1].split("</table>")[0]


def test_a_payment_refused_from_the_pay_page_comes_back_there(app, money_world):
    grant = money_world.grant("1000")
    uid = grant.application.uid
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        f"/applications/{uid}/payments?back=pay",
        data=payment_data(grant, **{"pay-amount_paid": "1500.00"}),
    )
    page = _text(refused_page(finance, response, f"/applications/{uid}/pay#pay"))
    assert "more than the grant still has committed" in page
    assert 'value="1500.00"' in page
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_the_pay_page_holds_every_rule_of_the_case_page(app, money_world):
    """The pay page's form sends to the case page's: an instalment paid already is refused
    there too."""
    today = utcnow().date()
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2, starts_on=today)
    pay(money_world, grant, "1000", instalment=1, paid_on=today)
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        f"/applications/{grant.application.uid}/payments?back=pay",
        data=payment_data(grant, **{"pay-amount_paid": "10.00", "pay-paid_on": today.isoformat()}),
    )
    assert "Instalment 1 is already paid" in _text(refused_page(finance, response))
    total = db.session.execute(sa.select(sa.func.sum(Disbursement.amount))).scalar()
    assert Decimal(total) == Decimal("1000.00")
