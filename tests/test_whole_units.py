"""Currencies without cents (the CFA francs, the Ugandan shilling, the Iraqi dinar...):
nobody can be paid half a franc, so an amount typed in cents of such a currency is
refused in words, beside its field where a form has one, wherever money enters (a budget,
a payment, its fee, a receipt, a decision, a referral, a pool); a plan splits a grant in
them into whole units, and the demo pays them whole."""

from datetime import date
from decimal import Decimal

import lxml.html
import pytest
import sqlalchemy as sa

from hrdfund.core.extensions import db
from hrdfund.core.money import MoneyError, check_units, smallest_unit
from hrdfund.disbursements.services import PaymentError, grant_instalments, reverse_disbursement
from hrdfund.grants.decisions import approve_application
from hrdfund.grants.plans import split_amount
from hrdfund.grants.services import DecisionError
from hrdfund.ledger.models import Contribution, Disbursement, ReceiptAnswer
from hrdfund.pools import services as pools
from hrdfund.pools.services import PoolError
from hrdfund.reviews.services import ReviewError, record_cofunding
from tests.conftest import (
    PAYEE_CANARY,
    application_by_uid,
    login,
    pay,
    payment_data,
    refused_page,
    signed_in,
    start_application,
)

WORDS = "has no cents: enter a whole amount, like 1500."


def test_the_units_of_each_currency():
    assert smallest_unit("XOF") == smallest_unit("UGX") == smallest_unit("IQD") == 1
    # Dinars of three places are kept to the cent, as every amount is.
    assert smallest_unit("EUR") == smallest_unit("JOD") == Decimal("0.01")
    assert check_units(Decimal("1500.00"), "XOF") == Decimal("1500.00")
    assert check_units(Decimal("1500.50"), "EUR") == Decimal("1500.50")
    assert check_units(None, "XOF") is None
    with pytest.raises(MoneyError, match="West African CFA Franc " + WORDS):
        check_units(Decimal("1500.50"), "XOF")


def test_a_plan_splits_a_grant_without_cents_into_whole_units():
    assert split_amount(Decimal("100000"), 3, smallest_unit("XOF")) == [
        Decimal("33333"),
        Decimal("33333"),
        Decimal("33334"),
    ]
    # In cents as before for the others, and for a total that has cents.
    assert split_amount(Decimal("100.00"), 3) == [Decimal("33.33")] * 2 + [Decimal("33.34")]
    assert split_amount(Decimal("100.50"), 2, Decimal(1)) == [Decimal("50.25")] * 2


def _table_rate(world, base, quote, rate):
    entry = pools.record_rate(
        world.fund.id, world.finance, date(2026, 1, 1), base, quote, rate, "x"
    )
    pools.confirm_rate(entry, world.m2)
    db.session.commit()


def _shilling_pool(world):
    """A pool in Ugandan shillings with five million in it, and the rate approvals in
    shillings are weighed at against the four-eyes threshold."""
    _table_rate(world, "EUR", "UGX", Decimal("4000"))
    ugx = pools.create_pool(world.donor, world.m1, "Shillings", "UGX")
    pools.record_contribution(ugx, world.m1, Decimal("5000000"), "UGX", date(2026, 1, 2))
    db.session.commit()
    return ugx


def test_a_payment_in_cents_of_francs_is_refused_beside_its_amount(app, money_world):
    """Finance pays a defender in Senegal in CFA francs from the dollar pool: 100,000.50
    francs is refused beside the amount, what was typed kept and nothing recorded; a fee
    in cents of the pool's dollars is fine, and 100,000 francs is recorded."""
    world = money_world
    _table_rate(world, "USD", "XOF", Decimal("600"))
    grant = world.grant("2000", pool=world.usd)
    finance = signed_in(app, world.finance)
    case = f"/applications/{grant.application.uid}"
    typed = {"pay-currency_paid": "XOF", "pay-amount_paid": "100000.50", "pay-fee": "2.50"}
    response = finance.post(f"{case}/payments", data=payment_data(grant, **typed))
    page = refused_page(finance, response, f"{case}#pay").get_data(as_text=True)
    beside = lxml.html.fromstring(page).xpath('//ul[@id="pay-amount_paid-error"]')
    assert beside and "West African CFA Franc " + WORDS in beside[0].text_content()
    assert 'value="100000.50"' in page and PAYEE_CANARY in page
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0
    finance.post(
        f"{case}/payments", data=payment_data(grant, **{**typed, "pay-amount_paid": "100000"})
    )
    (payment,) = db.session.execute(sa.select(Disbursement)).scalars()
    assert (payment.amount_paid, payment.currency_paid) == (Decimal("100000.00"), "XOF")
    assert payment.amount == Decimal("166.67") and payment.fee_amount == Decimal("2.50")


def test_a_fee_in_cents_of_a_pool_without_cents_is_refused_beside_the_fee(app, money_world):
    world = money_world
    ugx = _shilling_pool(world)
    grant = world.grant("400000", pool=ugx, currency="UGX")
    finance = signed_in(app, world.finance)
    case = f"/applications/{grant.application.uid}"
    typed = {"pay-currency_paid": "UGX", "pay-amount_paid": "100000", "pay-fee": "1200.50"}
    response = finance.post(f"{case}/payments", data=payment_data(grant, **typed))
    page = refused_page(finance, response, f"{case}#pay").get_data(as_text=True)
    beside = lxml.html.fromstring(page).xpath('//ul[@id="pay-fee-error"]')
    assert beside and "Ugandan Shilling " + WORDS in beside[0].text_content()
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_a_grant_without_cents_is_planned_in_whole_units(app, money_world):
    world = money_world
    ugx = _shilling_pool(world)
    grant = world.grant("1000000", pool=ugx, currency="UGX")
    world.plan(grant, kind="stipend", count=3)
    amounts = [i.amount for i in grant_instalments(grant)]
    assert amounts == [Decimal("333333"), Decimal("333333"), Decimal("333334")]


def test_the_amount_received_in_cents_of_francs_is_refused(app, money_world):
    world = money_world
    _table_rate(world, "USD", "XOF", Decimal("600"))
    grant = world.grant("2000", pool=world.usd)
    payment = pay(world, grant, "100000", currency="XOF", instalment=None)
    client = signed_in(app, world.applicant)
    answer = {"answer": "less", "currency": "XOF", "note": ""}
    sent = client.post(f"/payments/{payment.uid}/receipt", data={**answer, "amount": "90000.50"})
    assert WORDS in refused_page(client, sent).get_data(as_text=True)
    client.post(f"/payments/{payment.uid}/receipt", data={**answer, "amount": "90000"})
    answers = db.session.scalars(
        sa.select(ReceiptAnswer.amount_received).where(ReceiptAnswer.disbursement_id == payment.id)
    ).all()
    assert answers == [Decimal("90000.00")]


def test_a_budget_line_in_cents_of_shillings_is_refused_beside_it(client, make_user, fund):
    """A defender in Uganda writes the budget in shillings with cents: the line is refused
    beside its amount, nothing saved; in whole shillings it is saved."""
    login(client, make_user("applicant"))
    uid = start_application(client, "relocation", first={"country": "UG"})
    step = f"/applications/{uid}/steps/budget"
    budget = {"currency": "UGX", "budget-0-description": "Rent", "budget-0-amount": "350000.50"}
    refused = client.post(step, data={**budget, "save": "1"})
    page = refused_page(client, refused, step).get_data(as_text=True)
    beside = lxml.html.fromstring(page).xpath('//input[@id="budget-0-amount"]/../ul')
    assert beside and "Ugandan Shilling " + WORDS in beside[0].text_content()
    assert application_by_uid(uid).budget_lines == []
    client.post(step, data={**budget, "budget-0-amount": "350000", "save": "1"})
    case = application_by_uid(uid)
    assert [(b.amount, b.currency) for b in case.budget_lines] == [(Decimal("350000.00"), "UGX")]


def test_the_services_refuse_cents_of_a_currency_without_them(app, money_world):
    """Whoever calls them (a form, an import, a script): a decision, a pool's cap, money
    received, and what another funder pays."""
    world = money_world
    case = world.recommended(currency="XOF")
    with pytest.raises(DecisionError, match=WORDS):
        approve_application(
            case,
            world.m1,
            Decimal("1000.50"),
            [(world.eur.id, Decimal("1000.50"), Decimal("0.0015"))],
        )
    db.session.rollback()
    with pytest.raises(PoolError, match=WORDS):
        pools.create_pool(world.donor, world.m1, "Francs", "XAF", cap_per_grant=Decimal("9.99"))
    with pytest.raises(PoolError, match=WORDS):
        pools.record_contribution(world.eur, world.m1, Decimal("0.50"), "IQD", date(2026, 1, 2))
    with pytest.raises(ReviewError, match=WORDS):
        record_cofunding(case, world.reviewer, "Other fund", Decimal("20.50"), "XOF", None, None)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Contribution.id))).scalar() == 2


def test_a_reversal_in_cents_of_a_pool_without_cents_is_refused(app, money_world):
    world = money_world
    grant = world.grant("400000", pool=_shilling_pool(world), currency="UGX")
    payment = pay(world, grant, "100000", currency="UGX", instalment=None)
    with pytest.raises(PaymentError, match=WORDS):
        reverse_disbursement(payment, world.finance, "Bounced", Decimal("50000.50"))
    db.session.rollback()
    reversal = reverse_disbursement(payment, world.finance, "Bounced", Decimal("50000"))
    assert reversal.amount == Decimal("50000.00")


def test_money_received_into_a_pool_without_cents_is_credited_in_whole_units(money_world):
    """Euros received into a pool in CFA francs are credited as the bank credits them, in
    whole francs (they read 65,602.26); less than half a franc is refused in words."""
    world = money_world
    _table_rate(world, "EUR", "XOF", Decimal("655.957"))
    francs = pools.create_pool(world.donor, world.m1, "Francs", "XOF")
    credited = pools.record_contribution(
        francs, world.m1, Decimal("100.01"), "EUR", date(2026, 1, 2)
    )
    assert credited.amount == Decimal("65602.00")
    with pytest.raises(PoolError, match="less than XOF\u00a01, the least a pool in XOF holds"):
        pools.record_contribution(
            francs, world.m1, Decimal("0.01"), "CHF", date(2026, 1, 2), rate=Decimal("0.4")
        )
    db.session.rollback()
