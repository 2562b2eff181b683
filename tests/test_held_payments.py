"""A payment beyond a bound one finance officer may not pass alone (a rate far from the
fund's table, or any rate the table does not give; a fee or an exchange difference above
its share) is held: it moves no money until a second person, never the one who entered
it, confirms it under every rule again, or refuses it. `check` names a booked payment
beyond a bound that no second person confirmed."""

import threading
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases.models import ConflictDeclaration
from hrdfund.core.extensions import db
from hrdfund.disbursements import holds
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.checks import check_ledger
from hrdfund.disbursements.models import HeldPayment, HoldReason, HoldStatus
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import Disbursement
from tests.conftest import (
    MoneyWorld,
    audit_actions,
    confirm,
    count_rows,
    edit_behind_the_app,
    pay,
    refused_page,
    signed_in,
)


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    world.finance2 = make_user("finance")
    # Alert addresses: an alert is queued only for staff it can reach.
    for user in (world.m1, world.m2, world.finance, world.finance2):
        user.contact = f"{user.login}@fund.example"
    db.session.commit()
    return world


def test_a_made_up_rate_books_nothing_until_a_second_person_confirms(world):
    """A 1,200-dollar grant from the euro pool, paid in dollars 'at 10 euros per dollar'
    with any reason: held, not booked, nothing taken from the pool, and the people who
    may confirm it alerted."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    before = pool_figures([world.eur.id])[world.eur.id]
    held = pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="trust me",
        rate_reason="x",
    )
    assert isinstance(held, HeldPayment) and held.status == HoldStatus.HELD
    assert held.why == [HoldReason.RATE, HoldReason.DIFFERENCE]
    assert held.exchange_difference == Decimal("10909.09")  # what it would have taken
    assert pool_figures([world.eur.id])[world.eur.id] == before
    assert count_rows(Disbursement) == 0 and check_ledger() == []
    alerted = set(
        db.session.execute(
            sa.select(Alert.user_id).where(Alert.kind == AlertKind.PAYMENT_HELD)
        ).scalars()
    )
    assert alerted == {world.m1.id, world.m2.id, world.finance2.id}
    assert "payment.held" in list(audit_actions())


def test_a_fee_worth_most_of_the_payment_is_held(world):
    """A 1-dollar payment with a 20,000-dollar fee waits for a second person."""
    grant = world.grant("1000", pool=world.usd, currency="USD")
    held = pay(world, grant, "1", "USD", instalment=None, fee=Decimal(20000))
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.FEE]
    assert pool_figures([world.usd.id])[world.usd.id]["fees"] == 0
    # A fee within its share (10% of the payment by default) books at once.
    booked = pay(world, grant, "100", "USD", instalment=None, fee=Decimal(10))
    assert isinstance(booked, Disbursement) and booked.fee_amount == Decimal(10)


def test_any_rate_the_table_does_not_give_is_held(world):
    """No rate from shillings to euros in the table: the one entered needs a second person."""
    grant = world.grant("1000")
    held = pay(
        world,
        grant,
        "70000",
        "KES",
        instalment=None,
        rate=Decimal("0.0071"),
        rate_source="M-Pesa receipt",
        rate_reason="no table rate",
    )
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.RATE]
    assert held.table_rate is None


def test_the_exchange_difference_alone_can_hold_a_payment(world):
    """At the table's own rate, the dollar rose 20% since approval: paid in the grant's
    currency the difference is a fifth of the commitment, beyond its 10% share."""
    grant = world.grant("1000", pool=world.usd)
    from hrdfund.pools import services as pools

    # A move of 20% counts once a second rate keeper confirms it.
    entry = pools.record_rate(
        world.fund.id, world.m1, date(2026, 2, 1), "EUR", "USD", Decimal("1.32"), "ECB"
    )
    pools.confirm_rate(entry, world.m2)
    db.session.commit()
    held = pay(world, grant, "500", instalment=None)
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.DIFFERENCE]
    assert held.rate_source == "ECB" and held.exchange_difference == Decimal("110.00")


@pytest.mark.parametrize("who", ["the one who entered it", "a reviewer", "a conflicted manager"])
def test_only_a_second_person_may_confirm_or_refuse(world, who):
    grant = world.grant("1200", pool=world.eur, currency="USD")
    held = pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="x",
        rate_reason="x",
    )
    actor = {
        "the one who entered it": world.finance,
        "a reviewer": world.reviewer,
        "a conflicted manager": world.m2,
    }[who]
    db.session.add(ConflictDeclaration(application_id=grant.application_id, user_id=world.m2.id))
    db.session.commit()
    with pytest.raises(payments.PaymentError):
        holds.confirm_held_payment(held, actor)
    db.session.rollback()
    with pytest.raises(payments.PaymentError):
        holds.refuse_held_payment(held, actor, "no")
    db.session.rollback()
    assert held.status == HoldStatus.HELD and count_rows(Disbursement) == 0


def test_a_second_finance_officer_confirms_and_the_payment_names_them(world):
    grant = world.grant("2000", pool=world.usd)
    world.plan(grant, count=2)
    held = pay(
        world, grant, "1000", rate=Decimal("1.30"), rate_source="bank slip", rate_reason="weekend"
    )
    payment = confirm(world, held, by=world.finance2)
    assert payment.confirmed_by_id == world.finance2.id
    assert payment.recorded_by_id == world.finance.id
    assert payment.payee_details == "IBAN DE00 1234" and payment.rate_reason == "weekend"
    assert held.status == HoldStatus.BOOKED and held.disbursement_id == payment.id
    assert grant.application.status.value == "paying"
    actions = list(audit_actions())
    assert actions.index("payment.held") < actions.index("payment.confirmed")
    assert check_ledger() == []
    # Confirmed once: again is refused in words.
    with pytest.raises(payments.PaymentError, match="already confirmed"):
        holds.confirm_held_payment(held, world.m1)


def test_the_same_form_sent_twice_holds_then_books_one_payment(world):
    grant = world.grant("1000", pool=world.usd)
    options = dict(
        instalment=None, rate=Decimal("1.30"), rate_source="bank", rate_reason="r", key="form-9"
    )
    first = pay(world, grant, "500", **options)
    again = pay(world, grant, "500", **options)
    assert again.id == first.id and isinstance(again, HeldPayment)
    assert count_rows(HeldPayment) == 1
    payment = confirm(world, first)
    after = pay(world, grant, "500", **options)
    assert after.id == payment.id and isinstance(after, Disbursement)
    assert count_rows(Disbursement) == 1


def test_confirmation_checks_every_rule_again(world):
    """A held payment reserves nothing: once the instalment was paid by another payment,
    and the commitment with it, confirming the held one is refused and books nothing."""
    grant = world.grant("1000")
    world.plan(grant, kind="one_off")
    held = pay(world, grant, "1000", fee=Decimal(300))
    assert isinstance(held, HeldPayment)
    pay(world, grant, "1000", fee=Decimal(5))
    with pytest.raises(payments.PaymentError, match="more than the grant still has committed"):
        holds.confirm_held_payment(held, world.m2)
    db.session.rollback()
    assert held.status == HoldStatus.HELD and count_rows(Disbursement) == 1
    assert check_ledger() == []


def test_a_refusal_books_nothing_and_says_why(world):
    grant = world.grant("1200", pool=world.eur, currency="USD")
    held = pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="x",
        rate_reason="x",
    )
    with pytest.raises(payments.PaymentError, match="Say why"):
        holds.refuse_held_payment(held, world.m1, "  ")
    db.session.rollback()
    holds.refuse_held_payment(held, world.m1, "No bank gives 10 euros for a dollar")
    db.session.commit()
    assert held.status == HoldStatus.REFUSED and held.decided_by_id == world.m1.id
    assert held.refusal == "No bank gives 10 euros for a dollar"
    assert "payment.refused" in list(audit_actions())
    with pytest.raises(payments.PaymentError, match="already refused"):
        holds.confirm_held_payment(held, world.m2)
    db.session.rollback()
    assert count_rows(Disbursement) == 0 and check_ledger() == []


def test_two_second_persons_at_once_book_one_payment(app, world):
    grant = world.grant("1000", pool=world.usd)
    held = pay(
        world,
        grant,
        "500",
        instalment=None,
        rate=Decimal("1.30"),
        rate_source="bank",
        rate_reason="r",
    )
    held_id = held.id
    deciders = [world.m1.id, world.m2.id, world.finance2.id]
    db.session.rollback()
    outcomes, start = [], threading.Barrier(len(deciders))

    def decide(user_id):
        from hrdfund.auth.models import User

        with app.app_context():
            try:
                start.wait()
                holds.confirm_held_payment(
                    db.session.get(HeldPayment, held_id), db.session.get(User, user_id)
                )
                db.session.commit()
                outcomes.append("booked")
            except payments.PaymentError as exc:
                db.session.rollback()
                outcomes.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=decide, args=(u,)) for u in deciders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["This payment was already confirmed."] * 2 + ["booked"]
    assert count_rows(Disbursement) == 1 and check_ledger() == []


def _booked_behind_the_app(world, **changes):
    """A payment written around the services, as someone with the database's rights."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    payment = pay(world, grant, "100", "USD", instalment=None)
    values = {"fx_rate": payment.fx_rate, "fee": payment.fee_amount, **changes}
    edit_behind_the_app(
        "disbursements",
        "UPDATE disbursements SET fx_rate = :fx_rate, fee_amount = :fee, "
        "exchange_difference = :difference, confirmed_by_id = :by WHERE id = :i",
        {
            "i": payment.id,
            "difference": str(values.get("difference", payment.exchange_difference)),
            "by": values.get("by"),
            **{k: str(values[k]) for k in ("fx_rate", "fee")},
        },
    )
    return payment


def test_check_names_a_payment_beyond_its_bounds_without_a_second_person(world):
    """Rows written around the services: `check` names each, besides their broken seals."""
    at_25 = _booked_behind_the_app(world, fx_rate=Decimal(10), difference=Decimal("2409.09"))
    problems = check_ledger()
    assert (
        f"disbursement {at_25.id} is beyond rate, difference bounds and no second person "
        "confirmed it"
    ) in problems
    assert f"disbursements row {at_25.id} was altered in the database" in " ".join(problems)


def test_check_names_a_fee_beyond_its_share_and_a_self_confirmation(world):
    own = _booked_behind_the_app(world, fee=Decimal(50), by=world.finance.id)
    fee = _booked_behind_the_app(world, fee=Decimal(20000))
    problems = check_ledger()
    assert f"disbursement {fee.id} is beyond fee bounds and no second person confirmed it" in (
        problems
    )
    assert f"disbursement {own.id} was confirmed by user {world.finance.id}, who may not" in (
        " ".join(problems)
    )


def test_a_second_persons_name_cannot_be_added_behind_the_app(world):
    """The confirmation is sealed with the payment: writing one in afterwards breaks it."""
    grant = world.grant("1000", pool=world.usd)
    payment = pay(world, grant, "500", instalment=None)
    edit_behind_the_app(
        "disbursements",
        "UPDATE disbursements SET confirmed_by_id = :by WHERE id = :i",
        {"by": world.m2.id, "i": payment.id},
    )
    assert f"disbursements row {payment.id} was altered in the database" in " ".join(check_ledger())


CANARY = "CANARY-HELD-PAYEE-51QZ"


def _send_payment(client, grant, **fields):
    data = {
        "pay-allocation": payments.grant_allocations(grant)[0].id,
        "pay-instalment": 0,
        "pay-payee_type": "vendor",
        "pay-payee_details": CANARY,
        "pay-channel": "bank",
        "pay-amount_paid": "1200",
        "pay-currency_paid": "USD",
        "pay-rate": "10",
        "pay-rate_source": "trust me",
        "pay-rate_reason": "the bank said so",
        "pay-paid_on": "2026-02-03",
        "pay-idempotency_key": "held-form-1",
        **fields,
    }
    return client.post(
        f"/applications/{grant.application.uid}/payments",
        data=data,
        content_type="multipart/form-data",
    )


def test_the_second_person_confirms_from_the_case_page(app, world):
    """Finance enters the payment: it waits. The manager sees it on Follow-up and on the
    case page with the amounts, rate, fee, difference and reason, never the payee, and
    confirms it there; the one who entered it cannot."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    case = f"/applications/{grant.application.uid}"
    finance = signed_in(app, world.finance)
    response = _send_payment(finance, grant)
    assert response.status_code == 302
    page = finance.get(case).get_data(as_text=True)
    assert "Nothing is booked yet: the rate is far from the fund&#39;s table" in page
    assert "Payments waiting for a second person" in page and CANARY in page
    assert "Confirm and book" not in page  # not for the one who entered it
    assert "you: another person confirms it" in finance.get("/payments/follow-up").get_data(
        as_text=True
    )
    # Sent twice, the form holds one payment.
    again = _send_payment(finance, grant)
    assert again.status_code == 302 and count_rows(HeldPayment) == 1
    assert "already entered; it waits for a second person" in finance.get(case).get_data(
        as_text=True
    )
    held = db.session.execute(sa.select(HeldPayment)).scalar_one()
    refused = finance.post(f"/payments/held/{held.uid}/confirm")
    refused = refused_page(finance, refused, f"{case}#held-{held.uid}").get_data(as_text=True)
    assert "A second person confirms this payment: not the one who entered it." in refused
    assert count_rows(Disbursement) == 0

    manager = signed_in(app, world.m2)
    follow_up = manager.get("/payments/follow-up").get_data(as_text=True)
    assert grant.application.uid in follow_up and "Payments waiting for a second person" in (
        follow_up
    )
    page = manager.get(case).get_data(as_text=True)
    assert "Confirm and book" in page and "Reason given: the bank said so" in page
    assert "€1,090.91" in page and "€10,909.09" in page and "rate 10" in page
    assert CANARY not in page and CANARY not in follow_up
    response = manager.post(f"/payments/held/{held.uid}/confirm")
    assert response.status_code == 302
    payment = db.session.execute(sa.select(Disbursement)).scalar_one()
    assert payment.confirmed_by_id == world.m2.id and payment.payee_details == CANARY
    page = finance.get(case).get_data(as_text=True)
    assert "booked on the confirmation of" in page
    assert "Confirm and book" not in page


def test_a_refusal_from_the_case_page_needs_a_reason(app, world):
    grant = world.grant("1200", pool=world.eur, currency="USD")
    _send_payment(signed_in(app, world.finance), grant)
    held = db.session.execute(sa.select(HeldPayment)).scalar_one()
    second = signed_in(app, world.finance2)
    second.post(f"/payments/held/{held.uid}/refuse", data={"refuse-reason": " "})
    db.session.refresh(held)
    assert held.status == HoldStatus.HELD
    second.post(f"/payments/held/{held.uid}/refuse", data={"refuse-reason": "Not this rate"})
    db.session.refresh(held)
    assert held.status == HoldStatus.REFUSED
    page = signed_in(app, world.finance).get(f"/applications/{grant.application.uid}")
    assert "Not this rate" in page.get_data(as_text=True)
    assert count_rows(Disbursement) == 0


@pytest.mark.parametrize("role", ["reviewer", "applicant", "donor", "admin", "manager"])
def test_a_held_payments_payee_reaches_finance_only(app, world, role):
    grant = world.grant("1200", pool=world.eur, currency="USD")
    _send_payment(signed_in(app, world.finance), grant)
    user = {
        "reviewer": world.reviewer,
        "applicant": world.applicant,
        "donor": world.make_user("donor", donor_id=world.donor.id),
        "admin": world.admin,
        "manager": world.m1,
    }[role]
    client = signed_in(app, user)
    for path in (
        f"/applications/{grant.application.uid}",
        "/payments/follow-up",
        "/payments",
        "/cases",
    ):
        assert CANARY not in client.get(path).get_data(as_text=True), path
    held = db.session.execute(sa.select(HeldPayment)).scalar_one()
    if role != "manager":
        for action in ("confirm", "refuse"):
            client.post(f"/payments/held/{held.uid}/{action}", data={"refuse-reason": "x"})
        db.session.refresh(held)
        assert held.status == HoldStatus.HELD


def test_a_payment_held_before_the_grant_had_a_plan_says_how_to_go_on(world):
    """Held while the grant had no plan, a payment names no instalment; once a plan is
    made, confirming it is refused in words the second person can act on (refuse it, and
    finance enters it again), and the refusal then books nothing."""
    grant = world.grant("1000")
    held = pay(world, grant, "400", instalment=None, fee=Decimal(300))
    assert isinstance(held, HeldPayment)
    world.plan(grant, kind="one_off")
    with pytest.raises(payments.PaymentError, match="held before the grant had a plan") as exc:
        holds.confirm_held_payment(held, world.m2)
    assert "instalment 1 is still due: refuse it" in str(exc.value)
    db.session.rollback()
    holds.refuse_held_payment(held, world.m2, "entered again for instalment 1")
    db.session.commit()
    assert held.status == HoldStatus.REFUSED and count_rows(Disbursement) == 0
    assert check_ledger() == []
