"""A rate is never its own reference.

Finance and managers keep the fund's rate table, and the table is what a payment's rate
and an approval's worth are measured against. So an entry that moves its pair further than
the tolerance from the latest one someone else stands behind (or the first of its pair)
counts nowhere until a second rate keeper confirms it; a payment whose table entry is its
payer's alone is held for a second person; an approval weighed at its manager's own rate
needs a second manager. Payments and approvals keep what they were weighed against, sealed,
and `check` weighs them again against that, not against today's table and settings.
"""

import html
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import ApplicationStatus as S
from hrdfund.cases.models import Decision, DecisionOutcome
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.money import MoneyError
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.checks import check_ledger
from hrdfund.disbursements.models import HeldPayment, HoldReason
from hrdfund.grants import decisions
from hrdfund.grants import services as grants
from hrdfund.grants.models import ApprovalDraw
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import Allocation, Disbursement
from hrdfund.pools import services as pools
from hrdfund.pools.models import ExchangeRate
from tests.conftest import EUR_USD, MoneyWorld, confirm, edit_behind_the_app, pay, signed_in

FEB_2 = date(2026, 2, 2)


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    world.finance2 = make_user("finance")
    return world


def _rate(world, by, rate, on=FEB_2, base="EUR", quote="USD", confirmed_by=None):
    entry = pools.record_rate(world.fund.id, by, on, base, quote, Decimal(rate), "bank")
    if confirmed_by is not None:
        pools.confirm_rate(entry, confirmed_by)
    db.session.commit()
    return entry


def _table(world, base="EUR", quote="USD", on=date(2026, 3, 1)):
    return pools.rate_entry(world.fund.id, base, quote, on)[0]


def _page(response):
    return html.unescape(response.get_data(as_text=True))


# -- the table ---------------------------------------------------------------------------


def test_a_made_up_table_rate_counts_nowhere_until_a_second_person_confirms_it(world):
    """Finance writes 1,000 dollars per euro in the table (it is about 1.10), then pays
    3.50 euros on a dollar grant 'at the table's rate': 3,500 dollars left the pool,
    unconfirmed, and `check` passed. The entry is now held: the payment books at the rate
    someone else stands behind, and the made-up one is refused and leaves the table."""
    grant = world.grant("4000", pool=world.usd, currency="USD")
    made_up = _rate(world, world.finance, "1000")
    payment = pay(world, grant, "3.50", "EUR", instalment=None)
    assert isinstance(payment, Disbursement) and payment.amount == Decimal("3.85")
    assert pool_figures([world.usd.id])[world.usd.id]["disbursed"] == Decimal("3.85")
    assert made_up.needs_second and _table(world) == EUR_USD
    pools.refuse_rate(made_up, world.m1)
    db.session.commit()
    assert db.session.get(ExchangeRate, made_up.id) is None
    assert check_ledger() == []


def test_the_first_rate_of_a_pair_waits_for_a_second_person(world):
    """No rate from shillings to euros yet: the one finance writes (1 euro a shilling,
    about 140 times too much) is no table rate, so a payment 'at the table's rate' is
    refused in words and one at that rate typed by hand is held."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    first = _rate(world, world.finance, "1", base="KES", quote="EUR")
    with pytest.raises(payments.PaymentError, match="No rate from KES to EUR is in the table"):
        pay(world, grant, "1000", "KES", instalment=None)
    db.session.rollback()
    assert first.needs_second
    held = pay(
        world,
        grant,
        "1000",
        "KES",
        instalment=None,
        rate=Decimal(1),
        rate_source="my bank",
        rate_reason="the table has none",
    )
    assert isinstance(held, HeldPayment) and HoldReason.RATE in held.why
    assert check_ledger() == []


def test_a_rate_is_measured_against_what_someone_else_stands_behind(world):
    """Within the tolerance of the last entry a second person stands behind, an entry
    counts at once; measured only against their own, one person could walk a rate
    anywhere in small steps. Its author never confirms it."""
    step = _rate(world, world.finance, "1.12")  # 1.8% from 1.10
    assert _table(world) == Decimal("1.12") and not step.needs_second
    walked = _rate(world, world.finance, "1.14", on=date(2026, 2, 9))  # 3.6% from 1.10
    assert _table(world) == Decimal("1.12") and walked.needs_second
    with pytest.raises(pools.PoolError, match="not the one who recorded it"):
        pools.confirm_rate(walked, world.finance)
    db.session.rollback()
    # Someone else's entry is an anchor: 1.14 is within 2% of the manager's 1.13.
    _rate(world, world.m1, "1.13", on=date(2026, 2, 10))
    assert not _rate(world, world.finance, "1.14", on=date(2026, 2, 11)).needs_second
    pools.confirm_rate(walked, world.m2)
    db.session.commit()
    assert walked.confirmed_by_id == world.m2.id


# -- payments ----------------------------------------------------------------------------


def test_a_payment_at_a_table_rate_its_payer_recorded_alone_is_held(world):
    """1.12 is within the tolerance, so it counts; but finance wrote it, so finance paying
    at it waits for a second person, who books it."""
    grant = world.grant("2000", pool=world.usd, currency="EUR")
    entry = _rate(world, world.finance, "1.12")
    before = pool_figures([world.usd.id])[world.usd.id]
    held = pay(world, grant, "1000", "EUR", instalment=None)
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.OWN_RATE]
    assert held.rate_entry_id == entry.id and held.table_rate == Decimal("1.12")
    assert pool_figures([world.usd.id])[world.usd.id] == before
    # Another finance officer pays at it at once: for them it is a reference.
    booked = pay(world, grant, "100", "EUR", instalment=None, actor=world.finance2)
    assert isinstance(booked, Disbursement) and booked.amount == Decimal("110.00")
    payment = confirm(world, held, by=world.finance2)
    assert payment.confirmed_by_id == world.finance2.id and payment.rate_entry_id == entry.id
    assert check_ledger() == []


def test_a_typed_rate_is_not_measured_against_its_payers_own_entry(world):
    """A rate typed by hand within the tolerance of a table rate the payer wrote alone has
    no reference either."""
    grant = world.grant("2000", pool=world.usd, currency="EUR")
    _rate(world, world.finance, "1.12")
    held = pay(
        world, grant, "1000", "EUR", instalment=None, rate=Decimal("1.125"), rate_source="bank"
    )
    assert isinstance(held, HeldPayment) and held.why == [HoldReason.OWN_RATE]


def test_a_rate_a_second_person_confirmed_is_everyones_reference(world):
    grant = world.grant("2000", pool=world.usd, currency="EUR")
    _rate(world, world.finance, "1.12", confirmed_by=world.m1)
    payment = pay(world, grant, "1000", "EUR", instalment=None)
    assert isinstance(payment, Disbursement) and payment.confirmed_by_id is None
    assert payment.amount + payment.exchange_difference == Decimal("1120.00")
    assert check_ledger() == []


def test_check_names_a_payment_booked_at_its_payers_own_rate(world, monkeypatch):
    """Booked without its hold (as before the rule, or by a fault), `check` names it."""
    grant = world.grant("2000", pool=world.usd, currency="EUR")
    _rate(world, world.finance, "1.12")
    monkeypatch.setattr(payments, "bounds_passed", lambda *args, **kwargs: [])
    payment = pay(world, grant, "1000", "EUR", instalment=None)
    assert isinstance(payment, Disbursement)
    assert (
        f"disbursement {payment.id} is beyond own_rate bounds and no second person confirmed it"
        in check_ledger()
    )


def test_check_judges_a_payment_by_what_held_when_it_was_booked(app, world):
    """A fee of 9% and a rate 1.8% from the table were within the limits when booked. A
    later, stricter setting or a rate back-dated before the payment changes no verdict;
    what the payment kept is sealed with it."""
    grant = world.grant("2000", pool=world.usd, currency="EUR")
    payment = pay(
        world,
        grant,
        "1000",
        "EUR",
        instalment=None,
        rate=Decimal("1.12"),
        rate_source="bank",
        fee=Decimal("90"),
    )
    assert isinstance(payment, Disbursement)
    app.config.update(RATE_TOLERANCE_PERCENT="1", MAX_FEE_PERCENT="5")
    assert check_ledger() == []
    assert payment.table_rate == EUR_USD and payment.rate_tolerance_percent == 2
    assert payment.max_fee_percent == 10 and payment.max_difference_percent == 10
    _rate(world, world.m1, "1.30", on=date(2026, 2, 1), confirmed_by=world.m2)
    assert _table(world, on=payment.paid_on) == Decimal("1.30")
    assert check_ledger() == []
    edit_behind_the_app(
        "disbursements",
        "UPDATE disbursements SET rate_tolerance_percent = 50 WHERE id = :i",
        {"i": payment.id},
    )
    assert f"disbursements row {payment.id} was altered in the database" in " ".join(check_ledger())


def test_a_held_payments_rates_refuse_what_their_column_cannot_store(world):
    """A held payment's rates are rate columns like every other: a rate of nine places (which
    one database rounds and the other keeps) or beyond the rate range is refused from any
    caller, not stored for the second person to book."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    held = pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="x",
        rate_reason="y",
    )
    held.fx_rate = Decimal("0.123456789")
    with pytest.raises(sa.exc.StatementError) as caught:
        db.session.flush()
    assert isinstance(caught.value.orig, MoneyError)
    db.session.rollback()
    held.table_rate = Decimal("1e40")
    with pytest.raises(sa.exc.StatementError) as caught:
        db.session.flush()
    assert isinstance(caught.value.orig, MoneyError)
    db.session.rollback()


def test_every_numeric_column_is_an_amount_a_rate_or_a_share(app):
    """Every numeric column is one of the checked types, so no caller stores a value one
    database rounds and the other keeps."""
    from hrdfund.core.columns import Money, Percent, Rate

    plain = [
        f"{table.name}.{column.name}"
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.Numeric)
        and not isinstance(column.type, Money | Rate | Percent)
    ]
    assert plain == []


# -- approvals ---------------------------------------------------------------------------


def test_a_made_up_rate_does_not_weigh_an_approval_below_the_threshold(world):
    """A manager writes 0.000001 euro per dollar, then approves 22,770 dollars alone
    ('worth 0.02 euros'). The entry counts nowhere; the approval is weighed at the rate
    someone else stands behind and needs a second manager."""
    case = world.recommended("Someone", currency="USD")
    _rate(world, world.m1, "0.000001", on=utcnow().date(), base="USD", quote="EUR")
    db.session.commit()
    draws = [(world.usd.id, Decimal(22770))]
    assert decisions.approve_with_recorded_rates(case, world.m1, Decimal(22770), draws) is None
    assert case.status == S.AWAITING_SECOND_APPROVAL
    decision = decisions.first_approval(case)
    assert decision.worth == Decimal("20700.00") and decision.worth_currency == "EUR"


def test_an_approval_weighed_at_its_managers_own_rate_needs_a_second_manager(world):
    """5,000 dollars are worth about 4,500 euros, under the threshold of 5,000 euros; but
    the rate of the day is one the approving manager wrote alone: two managers approve.
    The decision keeps what it was weighed with."""
    entry = _rate(world, world.m1, "1.11", on=utcnow().date())
    case = world.recommended("Someone", currency="USD")
    draws = [(world.usd.id, Decimal(5000))]
    assert decisions.approve_with_recorded_rates(case, world.m1, Decimal(5000), draws) is None
    db.session.commit()
    decision = decisions.first_approval(case)
    assert (decision.worth, decision.worth_currency) == (Decimal("4504.50"), "EUR")
    assert decision.weighed_rate_id == entry.id and decision.threshold == Decimal(5000)
    grant = decisions.approve_with_recorded_rates(case, world.m2, Decimal(5000), draws)
    db.session.commit()
    assert grant is not None and check_ledger() == []
    # For another manager the same rate weighs: one approval commits.
    other = world.recommended("Someone Else", currency="USD")
    assert decisions.approve_with_recorded_rates(other, world.m2, Decimal(5000), draws) is not None
    db.session.commit()
    assert check_ledger() == []


def _approved_alone(world, amount="4000"):
    """A dollar grant one manager approved, weighed at a rate a second person confirmed."""
    grant = world.grant(amount, pool=world.usd, currency="USD")
    (decision,) = db.session.execute(
        sa.select(Decision).where(
            Decision.application_id == grant.application_id,
            Decision.outcome == DecisionOutcome.APPROVE,
        )
    ).scalars()
    return grant, decision


def test_check_weighs_each_single_manager_approval_again(app, world):
    grant, decision = _approved_alone(world)
    assert decision.worth == Decimal("3636.36") and check_ledger() == []
    # A later threshold weighs no past approval.
    app.config["FOUR_EYES_THRESHOLD"] = "1000"
    assert check_ledger() == []
    alone = f"grant {grant.id} was approved by one manager (decision {decision.id})"
    own = _rate(world, world.m1, "1.11", on=date(2025, 12, 1))
    db.session.execute(
        sa.update(Decision).where(Decision.id == decision.id).values(weighed_rate_id=own.id)
    )
    db.session.commit()
    problems = check_ledger()
    assert f"{alone}, weighed at a rate that manager recorded alone" in problems
    assert f"{alone}, recorded as worth 3636.36 EUR where its rate makes it 3603.60" in problems
    db.session.execute(
        sa.update(Decision)
        .where(Decision.id == decision.id)
        .values(worth=Decimal("3603.60"), threshold=Decimal("3000"))
    )
    db.session.commit()
    assert (
        f"{alone} though worth 3603.60 EUR, at or above the four-eyes threshold of 3000.00 then"
        in check_ledger()
    )


def test_the_second_manager_commits_only_the_first_managers_split(world):
    """The second approval with the same amount and other pools committed money only one
    manager chose: it is refused in words, nothing committed; the first split commits."""
    other = pools.create_pool(world.donor, world.m1, "Other EUR", "EUR")
    pools.record_contribution(other, world.m1, Decimal("20000"), "EUR", date(2026, 1, 2))
    case = world.recommended("Big", currency="EUR")
    first = [(world.eur.id, Decimal(6000))]
    assert decisions.approve_with_recorded_rates(case, world.m1, Decimal(6000), first) is None
    db.session.commit()
    for split in (
        [(other.id, Decimal(6000))],
        [(world.eur.id, Decimal(3000)), (other.id, Decimal(3000))],
    ):
        with pytest.raises(
            grants.DecisionError, match=r"split of pools as it is \(Emergency EUR 6000.00 EUR\)"
        ):
            decisions.approve_with_recorded_rates(case, world.m2, Decimal(6000), split)
        db.session.rollback()
        assert case.status == S.AWAITING_SECOND_APPROVAL
        assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 0
    grant = decisions.approve_with_recorded_rates(case, world.m2, Decimal(6000), first)
    db.session.commit()
    assert [(a.pool_id, a.grant_amount) for a in grant.allocations] == first
    assert check_ledger() == []
    # `check` names a grant committed on a split one of its approvals did not choose.
    db.session.execute(
        sa.update(ApprovalDraw)
        .where(ApprovalDraw.decision_id == decisions.first_approval(case).id)
        .values(pool_id=other.id)
    )
    db.session.commit()
    second = decisions.first_approval(case)
    assert (
        f"grant {grant.id} commits a split of pools its approval {second.id} did not choose"
        in check_ledger()
    )


# -- pages -------------------------------------------------------------------------------


def _post_rate(client, rate, on="2026-02-02"):
    return client.post(
        "/pools/rates",
        data={
            "rate-on_date": on,
            "rate-base": "EUR",
            "rate-quote": "USD",
            "rate-rate": rate,
            "rate-source": "my bank",
        },
        follow_redirects=True,
    )


def test_the_rates_page_holds_a_far_rate_for_a_second_person(app, world):
    finance, manager = signed_in(app, world.finance), signed_in(app, world.m1)
    page = _page(_post_rate(finance, "1000"))
    assert "Rate recorded, not yet counted" in page and "Waiting for a second person" in page
    (entry,) = db.session.execute(
        sa.select(ExchangeRate).where(sa.not_(ExchangeRate.counts()))
    ).scalars()
    # Its author cannot confirm it; a manager can, and then it counts.
    page = _page(finance.post(f"/pools/rates/{entry.uid}/confirm", follow_redirects=True))
    assert "not the one who recorded it" in page and _table(world) == EUR_USD
    page = _page(manager.post(f"/pools/rates/{entry.uid}/confirm", follow_redirects=True))
    assert "Rate confirmed." in page and _table(world) == Decimal(1000)
    # A far rate refused leaves the table; one that counts cannot be refused.
    _post_rate(finance, "1.10", on="2026-02-03")
    page = _page(manager.post(f"/pools/rates/{entry.uid}/refuse", follow_redirects=True))
    assert "Only a rate waiting for a second person can be refused" in page
    _post_rate(finance, "0.5", on="2026-02-04")
    held = db.session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.on_date == date(2026, 2, 4))
    ).scalar_one()
    page = _page(manager.post(f"/pools/rates/{held.uid}/refuse", follow_redirects=True))
    assert "Rate refused" in page
    assert (
        db.session.execute(sa.select(ExchangeRate.id).where(ExchangeRate.id == held.id)).first()
        is None
    )
    assert (
        signed_in(app, world.reviewer).post(f"/pools/rates/{entry.uid}/confirm").status_code == 403
    )


def test_the_decision_form_says_when_the_rate_is_the_managers_own(app, world):
    _rate(world, world.m1, "1.11", on=utcnow().date() - timedelta(days=1))
    case = world.recommended("Someone", currency="USD")
    case.amount_requested = Decimal(5000)
    db.session.commit()
    m1 = signed_in(app, world.m1)
    page = _page(m1.get(f"/applications/{case.uid}"))
    assert "is one you recorded and nobody else confirmed" in page
    response = m1.post(
        f"/applications/{case.uid}/approve",
        data={
            "approve-amount": "5000",
            "approve-draws-0-pool": str(world.usd.id),
            "approve-draws-0-amount": "5000",
        },
        follow_redirects=True,
    )
    assert "The rate it was weighed at is one you recorded" in _page(response)
    assert case.status == S.AWAITING_SECOND_APPROVAL
    page = _page(signed_in(app, world.m2).get(f"/applications/{case.uid}"))
    assert "is one you recorded" not in page


def test_the_second_manager_sees_that_the_split_is_confirmed_as_it_is(app, world):
    """On the page, a second manager who sends the same amount from other pools is told in
    words that the first manager's split is confirmed as it is; nothing is committed."""
    other = pools.create_pool(world.donor, world.m1, "Other EUR", "EUR")
    pools.record_contribution(other, world.m1, Decimal("20000"), "EUR", date(2026, 1, 2))
    case = world.recommended("Big", currency="EUR")
    first = [(world.eur.id, Decimal(6000))]
    assert decisions.approve_with_recorded_rates(case, world.m1, Decimal(6000), first) is None
    db.session.commit()
    m2 = signed_in(app, world.m2)
    page = _page(m2.get(f"/applications/{case.uid}"))
    assert "The second approval confirms this split as it is" in page
    response = m2.post(
        f"/applications/{case.uid}/approve",
        data={
            "approve-amount": "6000",
            "approve-draws-0-pool": str(other.id),
            "approve-draws-0-amount": "6000",
        },
        follow_redirects=True,
    )
    assert "confirms the first manager's split of pools as it is" in _page(response)
    db.session.expire_all()
    assert case.status == S.AWAITING_SECOND_APPROVAL
    assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 0
