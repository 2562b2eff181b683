"""Recording payments, reversals, plans, closures, contributions and rates: every rule a
finance officer or manager relies on, and `check` agreeing after each."""

import threading
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import User
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.cases.services import submit_report
from hrdfund.core.extensions import db
from hrdfund.core.money import quantize
from hrdfund.core.support import Category
from hrdfund.disbursements import followup
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.checks import check_ledger
from hrdfund.disbursements.models import HeldPayment, HoldReason
from hrdfund.grants import plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.models import GrantStatus
from hrdfund.grants.services import DecisionError
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import Disbursement, Release, reference_key
from hrdfund.pools import services as pools
from tests.conftest import EUR_USD, confirm, pay


def test_a_payment_in_another_currency_freezes_the_rate_and_keeps_the_fee_apart(money_world):
    """A EUR relocation grant from the USD pool paid in EUR with a fee: the pool pays the
    EUR at the table's rate, the fee is its own entry, and the pool page adds up."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    payment = pay(money_world, grant, "1000", fee=Decimal("12.50"))
    assert payment.amount == Decimal("1100.00")  # USD, at the table's 1.10
    assert payment.fx_rate == EUR_USD and payment.rate_source == "ECB"
    assert payment.rate_set_by_id == money_world.finance.id
    assert payment.fee_amount == Decimal("12.50") and payment.exchange_difference == 0
    assert payment.payee_details == "IBAN DE00 1234"
    fig = pool_figures([money_world.usd.id])[money_world.usd.id]
    assert fig["disbursed"] == Decimal("1100.00") and fig["fees"] == Decimal("12.50")
    assert fig["committed"] == Decimal("2200.00")
    assert fig["available"] == Decimal("30000") - Decimal("2200.00") - Decimal("12.50")
    assert grant.application.status == ApplicationStatus.PAYING
    assert check_ledger() == []


def test_a_rate_that_moved_since_approval_is_an_exchange_difference(money_world):
    """Paid in the grant's currency at a later, dearer rate: the commitment share is priced
    at the approval's rate and the extra cost is an exchange difference of its own."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    # A manager records the new rate: finance pays at a table rate it did not set itself.
    pools.record_rate(
        money_world.fund.id, money_world.m1, date(2026, 2, 1), "EUR", "USD", Decimal("1.12"), "ECB"
    )
    db.session.commit()
    payment = pay(money_world, grant, "1000")
    assert payment.amount == Decimal("1100.00")
    assert payment.exchange_difference == Decimal("20.00")
    fig = pool_figures([money_world.usd.id])[money_world.usd.id]
    assert fig["exchange_differences"] == Decimal("20.00")
    assert fig["outstanding"] == Decimal("1100.00")
    assert check_ledger() == []


def test_a_rate_far_from_the_table_needs_a_reason_and_a_second_person(money_world):
    grant = money_world.grant("2000", pool=money_world.usd)
    with pytest.raises(payments.PaymentError, match="more than 2% away"):
        pay(money_world, grant, "500", instalment=None, rate=Decimal("1.30"), rate_source="bank")
    db.session.rollback()
    held = pay(
        money_world,
        grant,
        "500",
        instalment=None,
        rate=Decimal("1.30"),
        rate_source="bank slip",
        rate_reason="the bank's weekend rate",
    )
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.RATE, HoldReason.DIFFERENCE]
    payment = confirm(money_world, held)
    assert payment.fx_rate == Decimal("1.30") and payment.rate_reason == "the bank's weekend rate"
    assert payment.exchange_difference == Decimal("100.00")  # 650 paid, 550 committed
    assert (
        payment.confirmed_by_id == money_world.m2.id
        and payment.recorded_by_id == money_world.finance.id
    )
    close = pay(
        money_world, grant, "500", instalment=None, rate=Decimal("1.11"), rate_source="bank"
    )
    assert isinstance(close, Disbursement) and close.confirmed_by_id is None
    assert close.rate_reason is None and close.rate_source == "bank"
    assert check_ledger() == []


@pytest.mark.parametrize("typed", ["130", "150.4", "110"])
def test_a_rate_written_upside_down_is_refused_saying_so_even_with_a_reason(money_world, typed):
    """Shillings paid from a dollar pool: the rate is the dollars one shilling is worth
    (1/130 by the table). A bank's shillings per dollar (130, or 150.4 on another day) is
    refused as written upside down, a reason given or not (it was asked for a reason, and
    then refused as more than the grant commits, neither saying what was wrong); nothing
    is held or booked."""
    grant = money_world.grant("2000", pool=money_world.usd)
    with pytest.raises(payments.PaymentError, match="This rate looks upside down") as exc:
        pay(
            money_world,
            grant,
            "65000",
            currency="KES",
            instalment=None,
            rate=Decimal(typed),
            rate_source="bank",
            rate_reason="the bank's rate",
        )
    assert exc.value.field == "rate"
    assert "how many USD one KES is worth" in str(exc.value)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(HeldPayment.id))).scalar() == 0
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_near_parity_a_rate_the_other_way_round_only_needs_its_reason(money_world):
    """Dollars paid from a euro pool: 1.10 (the table's dollars per euro) against the
    table's 0.909 euros per dollar is too close to tell from a rate that moved: it needs a
    reason and a second person, as any rate beyond the tolerance does."""
    grant = money_world.grant("2000")
    with pytest.raises(payments.PaymentError, match="more than 2% away") as exc:
        pay(
            money_world,
            grant,
            "500",
            currency="USD",
            instalment=None,
            rate=EUR_USD,
            rate_source="bank",
        )
    assert exc.value.field == "rate_reason"
    db.session.rollback()
    held = pay(
        money_world,
        grant,
        "500",
        currency="USD",
        instalment=None,
        rate=EUR_USD,
        rate_source="bank",
        rate_reason="the bank's rate",
    )
    assert isinstance(held, HeldPayment) and HoldReason.RATE in held.why


def test_a_rate_with_no_table_rate_to_weigh_it_says_so(money_world):
    """A currency the fund's table has no rate for: the refusal says the table has none,
    not that the rate is some percent away from it."""
    grant = money_world.grant("2000", pool=money_world.usd)
    with pytest.raises(payments.PaymentError, match="table has no rate for this currency") as exc:
        pay(
            money_world,
            grant,
            "500",
            currency="TRY",
            instalment=None,
            rate=Decimal("0.029"),
            rate_source="bank",
        )
    assert "away" not in str(exc.value)
    db.session.rollback()
    held = pay(
        money_world,
        grant,
        "500",
        currency="TRY",
        instalment=None,
        rate=Decimal("0.029"),
        rate_source="bank",
        rate_reason="no table rate for lira",
    )
    assert isinstance(held, HeldPayment) and HoldReason.RATE in held.why


def test_the_same_form_sent_twice_records_one_payment(money_world):
    grant = money_world.grant("1000")
    first = pay(money_world, grant, "400", instalment=None, key="form-1")
    again = pay(money_world, grant, "400", instalment=None, key="form-1")
    assert again.id == first.id
    count = db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar()
    assert count == 1


def test_a_payment_never_exceeds_what_the_grant_still_commits(money_world):
    grant = money_world.grant("1000")
    pay(money_world, grant, "700", instalment=None)
    with pytest.raises(payments.PaymentError, match=r"still has committed .*€300\.00"):
        pay(money_world, grant, "300.01", instalment=None)
    db.session.rollback()
    pay(money_world, grant, "300", instalment=None)
    assert check_ledger() == []


def test_only_finance_records_and_reverses(money_world):
    grant = money_world.grant("1000")
    with pytest.raises(payments.PaymentError, match="Only finance"):
        pay(money_world, grant, "100", instalment=None, actor=money_world.m1)
    db.session.rollback()
    payment = pay(money_world, grant, "100", instalment=None)
    with pytest.raises(payments.PaymentError, match="Only finance"):
        payments.reverse_disbursement(payment, money_world.m2, "bounced")


def test_a_bounced_payment_is_reversed_once_and_the_money_is_committed_again(money_world):
    grant = money_world.grant("1000")
    money_world.plan(grant, kind="one_off")
    payment = pay(money_world, grant, "1000", fee=Decimal("5"))
    reversal = payments.reverse_disbursement(payment, money_world.finance, "account closed")
    db.session.commit()
    assert reversal.reversal_of_id == payment.id and reversal.reason == "account closed"
    assert reversal.fee_amount == 0  # the bank kept its fee
    fig = pool_figures([money_world.eur.id])[money_world.eur.id]
    assert fig["disbursed"] == 0 and fig["fees"] == Decimal("5.00")
    assert fig["outstanding"] == Decimal("1000.00")
    with pytest.raises(payments.PaymentError, match="already reversed"):
        payments.reverse_disbursement(payment, money_world.finance, "again")
    db.session.rollback()
    with pytest.raises(payments.PaymentError, match="cannot itself be reversed"):
        payments.reverse_disbursement(reversal, money_world.finance, "again")
    db.session.rollback()
    again = pay(money_world, grant, "1000")  # the instalment can be paid again
    assert payments.stands(again) and not payments.stands(payment)
    assert check_ledger() == []


def test_a_payment_is_reversed_in_parts_until_all_of_it_came_back(money_world):
    """A bank returns 15 of 1,000, later the defender gives back 300 unused: each is a
    reversal of its own. The fee comes back once at most, no part takes back more than
    is left, and the last part takes all that is left."""
    grant = money_world.grant("1000")
    money_world.plan(grant, kind="one_off")
    payment = pay(money_world, grant, "1000", fee=Decimal("5"))
    reverse = payments.reverse_disbursement
    first = reverse(payment, money_world.finance, "bank returned", Decimal(15), fee_refunded=True)
    db.session.commit()
    assert (first.amount, first.fee_amount) == (Decimal("15.00"), Decimal("5.00"))
    fee_twice = "given back already, by its reversal of €15.00 on"
    with pytest.raises(payments.PaymentError, match=fee_twice):
        reverse(payment, money_world.finance, "unused", Decimal(300), fee_refunded=True)
    db.session.rollback()
    second = reverse(payment, money_world.finance, "unused, given back", Decimal(300))
    db.session.commit()
    db.session.refresh(payment)
    assert payment.taken_back == Decimal("315.00") and payment.arrived == Decimal("685.00")
    assert payment.stands_in_part and [r.id for r in payment.reversals] == [first.id, second.id]
    fig = pool_figures([money_world.eur.id])[money_world.eur.id]
    assert (fig["disbursed"], fig["fees"]) == (Decimal("685.00"), Decimal("0.00"))
    with pytest.raises(payments.PaymentError, match="at most the €685.00 of this payment that"):
        reverse(payment, money_world.finance, "more", Decimal(700))
    db.session.rollback()
    assert check_ledger() == []
    last = reverse(payment, money_world.finance, "account closed")  # all that is left
    db.session.commit()
    assert last.amount == Decimal("685.00") and last.amount_paid == Decimal("685.00")
    with pytest.raises(payments.PaymentError, match="already reversed on"):
        reverse(payment, money_world.finance, "again", Decimal(1))
    db.session.rollback()
    fig = pool_figures([money_world.eur.id])[money_world.eur.id]
    assert (fig["disbursed"], fig["outstanding"]) == (Decimal("0.00"), Decimal("1000.00"))
    assert check_ledger() == []


def test_the_parts_of_a_payment_in_another_currency_add_up_to_it(money_world):
    """A payment in euros from a dollar pool, at a rate dearer than the approval's, taken
    back in three parts and the rest: each part takes its share of the euros paid and of
    the exchange difference, and the parts add up to the payment to the cent."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, kind="one_off")
    pools.record_rate(
        money_world.fund.id, money_world.m1, date(2026, 2, 1), "EUR", "USD", Decimal("1.12"), "ECB"
    )
    db.session.commit()
    paid = pay(money_world, grant, "1001")
    assert paid.exchange_difference != 0
    third = quantize(paid.amount / 3)
    for reason in ("returned", "returned again", "returned once more"):
        payments.reverse_disbursement(paid, money_world.finance, reason, third)
        db.session.commit()
    rest = payments.reverse_disbursement(paid, money_world.finance, "the rest")
    db.session.commit()
    db.session.refresh(paid)
    assert len(paid.reversals) == 4 and rest.amount == paid.amount - 3 * third
    assert sum(r.amount_paid for r in paid.reversals) == paid.amount_paid
    assert sum(r.exchange_difference for r in paid.reversals) == paid.exchange_difference
    assert paid.arrived == 0 and not paid.stands_in_part
    fig = pool_figures([money_world.usd.id])[money_world.usd.id]
    assert (fig["disbursed"], fig["exchange_differences"]) == (0, 0)
    assert check_ledger() == []


def test_parts_worth_less_than_a_cent_of_what_was_paid_are_refused():
    """SEK 1,720.08 paid as MYR 849.91: a part of SEK 0.01 is half a cent of ringgit, and
    is refused in words rather than booked as a whole cent; the parts that are taken
    follow the payment's proportion (two parts of SEK 0.02 take a ringgit cent each) and
    the last takes what is left, so the parts add up to what was paid."""
    payment = SimpleNamespace(
        amount=Decimal("1720.08"),
        amount_paid=Decimal("849.91"),
        exchange_difference=Decimal("0.00"),
        currency_paid="MYR",
        pool=SimpleNamespace(currency="SEK"),
    )
    shares = payments._taken_back_shares
    with pytest.raises(payments.PaymentError, match="less than a cent of the MYR"):
        shares(payment, [], Decimal("0.01"), payment.amount)
    earlier = []
    for _ in range(2):
        left = payment.amount - sum((r.amount for r in earlier), start=Decimal(0))
        paid, difference = shares(payment, earlier, Decimal("0.02"), left)
        earlier.append(
            SimpleNamespace(
                amount=Decimal("0.02"), amount_paid=paid, exchange_difference=difference
            )
        )
    assert [r.amount_paid for r in earlier] == [Decimal("0.01"), Decimal("0.01")]
    left = payment.amount - Decimal("0.04")
    rest, _difference = shares(payment, earlier, left, left)
    assert rest + Decimal("0.02") == payment.amount_paid


def test_two_parts_sent_at_once_never_take_back_more_than_was_paid(app, money_world):
    """Two finance officers each take back 600 of the same 1,000 at the same moment: one
    is recorded, the other refused in words, and the ledger holds."""
    grant = money_world.grant("1000")
    money_world.plan(grant, kind="one_off")
    payment_id = pay(money_world, grant, "1000").id
    officers = [money_world.finance.id, money_world.make_user("finance").id]
    db.session.commit()
    db.session.rollback()
    outcomes, start = [], threading.Barrier(len(officers))

    def take_back(user_id):
        with app.app_context():
            try:
                start.wait()
                payments.reverse_disbursement(
                    db.session.get(Disbursement, payment_id),
                    db.session.get(User, user_id),
                    "returned",
                    Decimal(600),
                )
                db.session.commit()
                outcomes.append("recorded")
            except payments.PaymentError as exc:
                db.session.rollback()
                outcomes.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take_back, args=(u,)) for u in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [
        "A reversal takes back more than zero and at most the €400.00 of this payment that"
        " has not come back yet.",
        "recorded",
    ]
    assert check_ledger() == []


def test_an_instalment_is_never_paid_twice(money_world):
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2)
    pay(money_world, grant, "1000")
    with pytest.raises(payments.PaymentError, match=r"Instalment 1 is already paid: payment"):
        pay(money_world, grant, "1000")
    db.session.rollback()
    pay(money_world, grant, "1000", instalment=2)
    assert check_ledger() == []


def test_a_grant_paid_by_a_plan_is_paid_instalment_by_instalment(money_world):
    """A payment naming no instalment while one is due would leave it due and be paid
    again against it: it is refused in words. A grant with no plan yet names none."""
    grant = money_world.grant("2000")
    unplanned = money_world.grant("500", name="Defender Two")
    pay(money_world, unplanned, "200", instalment=None)
    money_world.plan(grant, count=2)
    with pytest.raises(payments.PaymentError, match="instalment 1 is still due: choose"):
        pay(money_world, grant, "300", instalment=None)
    db.session.rollback()
    pay(money_world, grant, "1000", instalment=1)
    with pytest.raises(payments.PaymentError, match="instalment 2 is still due: choose"):
        pay(money_world, grant, "300", instalment=None)
    db.session.rollback()
    pay(money_world, grant, "1000", instalment=2)
    assert check_ledger() == []


def test_a_payment_taken_back_in_part_still_pays_the_rest_of_its_instalment(money_world):
    """A bank delivered 985 of 1000: the 15 taken back leave instalment 1 mostly paid; it
    cannot be paid in full again, only topped up, and stays due until it is."""
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2, starts_on=date(2026, 2, 1))
    first = pay(money_world, grant, "1000")
    payments.reverse_disbursement(first, money_world.finance, "delivered short", amount=Decimal(15))
    db.session.commit()
    due = followup.instalments_due(money_world.finance, date(2026, 2, 10), 0)
    assert [(i.seq, quantize(paid)) for i, _plan, _case, paid, *_code in due] == [(1, Decimal(985))]
    with pytest.raises(payments.PaymentError, match="where 15.00 EUR is still due"):
        pay(money_world, grant, "1000")
    db.session.rollback()
    pay(money_world, grant, "15")
    with pytest.raises(payments.PaymentError, match="Instalment 1 is already paid"):
        pay(money_world, grant, "15")
    db.session.rollback()
    assert followup.instalments_due(money_world.finance, date(2026, 2, 10), 0) == []
    assert check_ledger() == []


def test_an_instalment_is_never_paid_past_what_is_due_on_it(money_world):
    """The first payment of an instalment is held to its amount too: 1,200 against an
    instalment of 1,000 is refused in words, whatever currency it is paid in, and the
    instalment's own amount, paid in another currency at a rate that does not land on
    the cent, is taken."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2, starts_on=date(2026, 2, 1))
    with pytest.raises(payments.PaymentError, match="where 1,000.00 EUR is still due"):
        pay(money_world, grant, "1200")
    db.session.rollback()
    # In dollars at the approval's rate, a hundred dollars over.
    over = quantize(Decimal(1000) * EUR_USD + 100)
    with pytest.raises(payments.PaymentError, match="approved at, where 1,000.00 EUR is still"):
        pay(money_world, grant, str(over), currency="USD")
    db.session.rollback()
    # In shillings at a rate finance typed: weighed at that rate, and the words say so.
    with pytest.raises(payments.PaymentError, match="At this payment's rate it covers"):
        pay(
            money_world, grant, "200000", currency="KES", rate=Decimal("0.0077"), rate_source="Bank"
        )
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0
    # The instalment's amount in dollars, rounded up to the cent: taken.
    exact = (Decimal(1000) * EUR_USD).quantize(Decimal("0.01"), rounding="ROUND_UP")
    payment = pay(money_world, grant, str(exact), currency="USD")
    assert isinstance(payment, Disbursement)
    assert followup.instalments_due(money_world.finance, date(2026, 2, 10), 0) == []
    assert check_ledger() == []


def _pesos(world):
    """The table's rates to Colombian pesos, confirmed: a cent of a dollar is 41 pesos."""
    for base, rate in (("USD", "4123.45"), ("EUR", "4535.80")):
        entry = pools.record_rate(
            world.fund.id, world.finance, date(2026, 1, 1), base, "COP", Decimal(rate), "BR"
        )
        pools.confirm_rate(entry, world.m2)
    db.session.commit()


def test_an_instalment_in_pesos_paid_in_dollars_keeps_the_books_whole(money_world):
    """An instalment of 1,000,020 pesos is 242.525 dollars: 242.53 pays it (the first
    payment may pass it by a cent of the currency paid). Reversed and paid again, a later
    payment is held to 1.00 peso, as `check` weighs an instalment paid more than once, so
    the books stay whole; short by 20 pesos, a cent more is refused as more than is
    still due, not as paid."""
    _pesos(money_world)
    grant = money_world.grant("2000040", pool=money_world.usd, currency="COP")
    money_world.plan(grant, count=2, starts_on=date(2026, 2, 1))
    first = pay(money_world, grant, "242.53", currency="USD")
    assert isinstance(first, Disbursement) and check_ledger() == []
    payments.reverse_disbursement(first, money_world.finance, "wrong account")
    db.session.commit()
    with pytest.raises(payments.PaymentError, match="approved at, where 1,000,020.00 COP is still"):
        pay(money_world, grant, "242.53", currency="USD")
    db.session.rollback()
    pay(money_world, grant, "242.52", currency="USD")
    assert check_ledger() == []
    due = followup.instalments_due(money_world.finance, date(2026, 2, 10), 0)
    assert [i.seq for i, *_rest in due] == [1]  # 20 pesos short
    with pytest.raises(payments.PaymentError) as refused:
        pay(money_world, grant, "0.01", currency="USD")
    assert "already paid" not in str(refused.value) and "still due" in str(refused.value)
    db.session.rollback()
    assert check_ledger() == []


def test_instalments_priced_a_cent_above_the_whole_are_each_paid_in_full(money_world):
    """1,000.10 euros from the dollar pool at 1.10 commit 1,100.11 dollars; each of its two
    instalments of 500.05 euros is 550.06 dollars (550.055 rounded up), a cent more in all.
    Both are paid as the page prices them: the last cent is an exchange difference, the
    grant is paid in full, and `check` finds the books whole."""
    grant = money_world.grant("1000.10", pool=money_world.usd)
    money_world.plan(grant, count=2, starts_on=date(2026, 2, 1))
    assert [i.amount for i in payments.grant_instalments(grant)] == [Decimal("500.05")] * 2
    [allocation] = payments.grant_allocations(grant)
    assert allocation.amount == Decimal("1100.11")
    first = pay(money_world, grant, "550.06", currency="USD", instalment=1)
    last = pay(money_world, grant, "550.06", currency="USD", instalment=2)
    assert (first.amount, first.exchange_difference) == (Decimal("550.06"), Decimal("0.00"))
    assert (last.amount, last.exchange_difference) == (Decimal("550.05"), Decimal("0.01"))
    assert followup.instalments_due(money_world.finance, date(2026, 6, 1), 0) == []
    assert check_ledger() == []
    # A payment a cent further than what is committed stays refused.
    with pytest.raises(payments.PaymentError, match="more than the grant still has"):
        pay(money_world, grant, "0.02", currency="USD", instalment=None)


def test_a_month_paid_in_parts_and_taken_back_in_full_is_free_again(money_world):
    """0.20 and 0.10 paid, both reversed: nothing is left, whatever the database's sums
    make of the cents, so another grant may pay that month."""
    first = money_world.grant("900", category=Category.LONGER_TERM)
    second = money_world.grant("900", category=Category.LONGER_TERM)
    money_world.plan(first, kind="stipend", count=3, starts_on=date(2026, 3, 1))
    money_world.plan(second, kind="stipend", count=3, starts_on=date(2026, 3, 1))
    for amount in ("0.20", "0.10"):
        part = pay(money_world, first, amount)
        payments.reverse_disbursement(part, money_world.finance, "wrong account")
        db.session.commit()
    pay(money_world, second, "300")
    assert check_ledger() == []


def test_a_stipend_month_is_paid_once_per_defender_across_grants(money_world):
    """Two grants for the same defender (two cases) both planning March: the second
    payment for March is refused and names the first."""
    first = money_world.grant("900", category=Category.LONGER_TERM)
    second = money_world.grant("900", category=Category.LONGER_TERM, name="  defender ONE ")
    money_world.plan(first, kind="stipend", count=3, starts_on=date(2026, 3, 1))
    money_world.plan(second, kind="stipend", count=3, starts_on=date(2026, 3, 1))
    pay(money_world, first, "300", reference="PAY-MARCH-1")
    with pytest.raises(
        payments.PaymentError,
        match=r"already paid for March 2026: payment PAY-MARCH-1 of 2026-02-03 on case",
    ):
        pay(money_world, second, "300")
    db.session.rollback()
    pay(money_world, second, "300", instalment=2)  # April is free
    # Taking back part of March's payment does not make March payable on another grant.
    march = db.session.execute(
        sa.select(Disbursement).where(Disbursement.reference_key == reference_key("PAY-MARCH-1"))
    ).scalar_one()
    payments.reverse_disbursement(march, money_world.finance, "short", amount=Decimal(10))
    db.session.commit()
    with pytest.raises(payments.PaymentError, match="already paid for March 2026"):
        pay(money_world, second, "300")
    db.session.rollback()
    other = money_world.grant("900", category=Category.LONGER_TERM, name="Someone Else")
    money_world.plan(other, kind="stipend", count=3, starts_on=date(2026, 3, 1))
    pay(money_world, other, "300")
    assert check_ledger() == []


def test_a_tranche_held_for_a_report_waits_for_it(money_world):
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2, hold_for_report=True)
    pay(money_world, grant, "1000")
    with pytest.raises(payments.PaymentError, match="Tranche 2 waits for the applicant's report"):
        pay(money_world, grant, "1000", instalment=2)
    db.session.rollback()
    submit_report(grant.application, money_world.applicant, "yes", "yes")
    db.session.commit()
    pay(money_world, grant, "1000", instalment=2)


def test_plans_split_the_grant_into_instalments(money_world):
    stipend = money_world.grant("1000", category=Category.LONGER_TERM)
    plan = money_world.plan(stipend, kind="stipend", count=3, starts_on=date(2026, 1, 31))
    rows = payments.grant_instalments(stipend)
    assert [r.amount for r in rows] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert [r.due_on for r in rows] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    assert [r.period_month for r in rows] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert plan.ends_on == date(2026, 3, 31)
    assert plan.renewal_review_on == date(2026, 3, 1)
    with pytest.raises(plans.PlanError, match="already has a payment plan"):
        money_world.plan(stipend, kind="one_off")
    db.session.rollback()
    tranches = money_world.grant("1000")
    money_world.plan(tranches, count=3, interval_days=45)
    assert [r.due_on for r in payments.grant_instalments(tranches)] == [
        date(2026, 2, 1) + timedelta(days=45 * n) for n in range(3)
    ]
    with pytest.raises(plans.PlanError, match="Only a manager"):
        plans.create_plan(money_world.grant("10"), money_world.finance, "one_off", date(2026, 2, 1))


def test_closing_a_grant_under_budget_releases_the_rest(money_world):
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    pay(money_world, grant, "1000")
    before = pool_figures([money_world.usd.id])[money_world.usd.id]
    releases = plans.close_grant(grant, money_world.m2, "the defender returned home early")
    db.session.commit()
    assert [r.amount for r in releases] == [Decimal("1100.00")]
    after = pool_figures([money_world.usd.id])[money_world.usd.id]
    assert after["available"] == before["available"] + Decimal("1100.00")
    assert after["outstanding"] == 0
    assert grant.status == GrantStatus.CLOSED
    assert grant.application.status == ApplicationStatus.COMPLETED
    with pytest.raises(payments.PaymentError, match="closed"):
        pay(money_world, grant, "10", instalment=None)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Release.id))).scalar() == 1
    assert check_ledger() == []


def test_a_payment_bouncing_after_the_grant_closed_goes_back_to_the_pool(money_world):
    """Closed grants pay nothing more, so the money of a late bounce is released at once."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    payment = pay(money_world, grant, "1000")
    plans.close_grant(grant, money_world.m2, "the defender returned home early")
    db.session.commit()
    before = pool_figures([money_world.usd.id])[money_world.usd.id]
    payments.reverse_disbursement(payment, money_world.finance, "returned by the bank")
    db.session.commit()
    after = pool_figures([money_world.usd.id])[money_world.usd.id]
    assert after["available"] == before["available"] + Decimal("1100.00")
    assert after["committed"] == before["committed"] - Decimal("1100.00")
    assert after["outstanding"] == 0
    assert check_ledger() == []


def commit_all_that_is_left(money_world, pool):
    """Another grant takes what the pool has available, above the four-eyes threshold: a
    first approval, then a second manager's."""
    rest = pool_figures([pool.id])[pool.id]["available"]
    assert money_world.grant(str(rest), pool=pool, currency=pool.currency, name="Another") is None
    case = db.session.execute(
        sa.select(Application).where(
            Application.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
        )
    ).scalar_one()
    approve_with_recorded_rates(case, money_world.m2, rest, [(pool.id, rest)])
    db.session.commit()
    assert pool_figures([pool.id])[pool.id]["available"] == 0


def paid_below_the_table(money_world):
    """A 1,000 EUR grant from the USD pool (1,100 USD committed) paid at the bank's 0.88,
    confirmed by a second person."""
    grant = money_world.grant("1000", pool=money_world.usd)
    held = pay(
        money_world,
        grant,
        "1000",
        instalment=None,
        rate=Decimal("0.88"),
        rate_source="bank slip",
        rate_reason="the bank's rate",
    )
    return grant, confirm(money_world, held)


def test_reversing_an_exchange_gain_the_pool_has_spent_is_refused(money_world):
    """A payment at a cheaper rate frees a saving; once the pool committed the saving
    elsewhere, reversing the payment would take the pool below zero."""
    _grant, payment = paid_below_the_table(money_world)
    assert payment.exchange_difference == Decimal("-220.00")
    commit_all_that_is_left(money_world, money_world.usd)
    with pytest.raises(payments.PaymentError, match="exchange gain of 220.00"):
        payments.reverse_disbursement(payment, money_world.finance, "bounced")
    db.session.rollback()
    assert payments.stands(payment)
    assert check_ledger() == []


def test_a_gain_on_a_closed_grant_is_covered_by_the_money_that_came_back(money_world):
    """The bounce of a closed grant's payment releases its amount first, so taking back
    the payment's exchange gain does not need room in the pool."""
    grant, payment = paid_below_the_table(money_world)
    plans.close_grant(grant, money_world.m2, "done")
    db.session.commit()
    commit_all_that_is_left(money_world, money_world.usd)
    payments.reverse_disbursement(payment, money_world.finance, "bounced")
    db.session.commit()
    assert pool_figures([money_world.usd.id])[money_world.usd.id]["available"] == Decimal(
        "880.00"
    )  # 1100 back, less the 220 gain
    assert check_ledger() == []


def test_amounts_worth_less_than_a_cent_are_refused_in_words(money_world):
    with pytest.raises(pools.PoolError, match=r"less than \$0\.01, the least a pool in USD holds"):
        pools.record_contribution(
            money_world.usd, money_world.m1, Decimal("0.01"), "KES", date(2026, 1, 5)
        )
    db.session.rollback()
    with pytest.raises(DecisionError, match="too small"):
        money_world.grant("0.01", pool=money_world.usd, currency="KES")
    db.session.rollback()
    grant = money_world.grant("0.01", pool=money_world.eur)
    with pytest.raises(DecisionError, match="cannot be split into 2"):
        plans.create_plan(grant, money_world.m1, "tranches", date(2026, 2, 1), count=2)
    db.session.rollback()
    assert check_ledger() == []


def test_a_few_cents_split_in_more_parts_than_rounding_allows_gives_each_a_cent(money_world):
    """0.06 in four: rounded to the nearest cent, three parts of 0.02 would leave the
    fourth nothing, and the plan would fail on the database's rule; each gets a share."""
    grant = money_world.grant("0.06", pool=money_world.eur)
    plan = plans.create_plan(grant, money_world.m1, "stipend", date(2026, 2, 1), count=4)
    db.session.commit()
    amounts = [i.amount for i in sorted(plan.instalments, key=lambda i: i.seq)]
    assert amounts == [Decimal("0.01")] * 3 + [Decimal("0.03")]
    assert check_ledger() == []


def test_contributions_in_another_currency_convert_and_reverse_once(money_world):
    money = pools.record_contribution(
        money_world.usd,
        money_world.m1,
        Decimal("1000"),
        "EUR",
        date(2026, 3, 1),
        reference="Grant letter",
    )
    db.session.commit()
    assert money.amount == Decimal("1100.00") and money.fx_rate == EUR_USD
    reversal = pools.reverse_contribution(money, money_world.m1, "booked twice")
    db.session.commit()
    assert reversal.reversal_of_id == money.id
    with pytest.raises(pools.PoolError, match="already reversed"):
        pools.reverse_contribution(money, money_world.m1, "again")
    db.session.rollback()
    assert pool_figures([money_world.usd.id])[money_world.usd.id]["received"] == Decimal("30000.00")


def test_a_contribution_already_committed_cannot_be_taken_back(money_world):
    grant_pool = pools.create_pool(money_world.donor, money_world.m1, "Small", "EUR")
    money = pools.record_contribution(
        grant_pool, money_world.m1, Decimal("500"), "EUR", date(2026, 1, 5)
    )
    db.session.commit()
    money_world.grant("400", pool=grant_pool)
    with pytest.raises(pools.PoolError, match="committed this money"):
        pools.reverse_contribution(money, money_world.m1, "wrong pool")


def test_the_rate_table_refuses_duplicates_and_roles_other_than_finance_or_managers(money_world):
    with pytest.raises(pools.PoolError, match="already recorded"):
        pools.record_rate(
            money_world.fund.id, money_world.m1, date(2026, 1, 1), "EUR", "USD", Decimal("1.2"), "x"
        )
    with pytest.raises(pools.PoolError, match="Your role"):
        pools.record_rate(
            money_world.fund.id,
            money_world.reviewer,
            date(2026, 1, 9),
            "EUR",
            "USD",
            Decimal("1.2"),
            "x",
        )
    assert pools.rate_entry(money_world.fund.id, "USD", "EUR", date(2026, 5, 1))[0] == Decimal(
        "0.90909091"
    )


def test_a_payment_past_one_pools_share_says_to_pay_each_pool_its_share(money_world):
    """A grant of 2,000 drawn 1,000 from each of two pools, paid in one transfer of 2,000
    from the first: refused, saying in words (amounts as money) to record one payment per
    pool; each pool's share is then paid."""
    world = money_world
    second = pools.create_pool(world.donor, world.m1, "Second EUR", "EUR")
    pools.record_contribution(second, world.m1, Decimal("5000"), "EUR", date(2026, 1, 2))
    case = world.recommended("Two Pools")
    grant = approve_with_recorded_rates(
        case, world.m1, Decimal(2000), [(world.eur.id, Decimal(1000)), (second.id, Decimal(1000))]
    )
    db.session.commit()
    first, other = payments.grant_allocations(grant)
    with pytest.raises(payments.PaymentError) as refused:
        pay(world, grant, "2000", instalment=None, allocation=first)
    db.session.rollback()
    assert str(refused.value) == (
        "This payment (€2,000.00) is more than the grant still has committed in the pool "
        "Emergency EUR (€1,000.00). A grant drawn from several pools is paid from each for "
        "its share: record one payment per pool."
    )
    pay(world, grant, "1000", instalment=None, allocation=first)
    pay(world, grant, "1000", instalment=None, allocation=other)
    assert check_ledger() == []
