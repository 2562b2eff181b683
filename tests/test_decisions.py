"""Decisions and money: four eyes above the threshold, the recommender never approves,
only fitting pools pay, and no pool is overdrawn even by fifty approvals at once."""

import threading
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import Application, ApplicationStatus, ConflictDeclaration, Decision
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements.checks import check_ledger
from hrdfund.grants import decisions, services
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.models import Grant
from hrdfund.ledger.balances import pool_available
from hrdfund.pools import services as pools
from hrdfund.pools.models import PoolRestriction
from hrdfund.reviews.models import Recommendation, Review, RiskLevel


@pytest.fixture
def world(app, fund, make_donor, make_user, make_pool):
    """A pool holding 1,000 EUR, a reviewer, two managers."""
    pool = make_pool(make_donor(), "Main", 1000)
    return {
        "pool": pool,
        "fund": fund,
        "make_pool": make_pool,
        "reviewer": make_user("reviewer"),
        "m1": make_user("manager"),
        "m2": make_user("manager"),
    }


def recommended_case(world, recommender=None, category=Category.MEDICAL):
    case = Application(
        fund_id=world["fund"].id,
        category=category,
        country="KE",
        region="East Africa",
        currency="EUR",
        status=ApplicationStatus.RECOMMENDED,
    )
    db.session.add(case)
    db.session.flush()
    db.session.add(
        Review(
            application_id=case.id,
            reviewer_id=(recommender or world["reviewer"]).id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency="EUR",
        )
    )
    db.session.commit()
    return case


def _grants():
    return db.session.execute(sa.select(sa.func.count(Grant.id))).scalar()


def test_an_approval_below_the_threshold_commits_money_at_once(world):
    case = recommended_case(world)
    grant = decisions.approve_application(
        case, world["m1"], Decimal(400), [(world["pool"].id, Decimal(400), Decimal(1))]
    )
    db.session.commit()
    assert case.status == ApplicationStatus.APPROVED and grant.amount == Decimal(400)
    assert pool_available(world["pool"].id) == Decimal(600)
    assert check_ledger() == []


def test_above_the_threshold_two_different_managers_approve(app, world):
    app.config["FOUR_EYES_THRESHOLD"] = "500"
    case = recommended_case(world)
    allocation = [(world["pool"].id, Decimal(800), Decimal(1))]
    assert decisions.approve_application(case, world["m1"], Decimal(800), allocation) is None
    db.session.commit()
    assert case.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    assert _grants() == 0 and pool_available(world["pool"].id) == Decimal(1000)
    with pytest.raises(decisions.SecondApproverError):
        decisions.approve_application(case, world["m1"], Decimal(800), allocation)
    db.session.rollback()
    decisions.approve_application(case, world["m2"], Decimal(800), allocation)
    db.session.commit()
    assert case.status == ApplicationStatus.APPROVED
    assert pool_available(world["pool"].id) == Decimal(200)


def test_the_recommender_cannot_approve(world):
    case = recommended_case(world, recommender=world["m1"])
    with pytest.raises(decisions.SelfApprovalError):
        decisions.approve_application(
            case, world["m1"], Decimal(100), [(world["pool"].id, Decimal(100), Decimal(1))]
        )
    db.session.rollback()
    assert _grants() == 0


def test_a_declared_conflict_keeps_the_manager_out(world):
    case = recommended_case(world)
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=world["m1"].id))
    db.session.commit()
    with pytest.raises(decisions.ConflictOfInterestError):
        decisions.approve_application(
            case, world["m1"], Decimal(100), [(world["pool"].id, Decimal(100), Decimal(1))]
        )


@pytest.mark.parametrize(
    "restriction, reason",
    [
        (("category", "legal"), "does not fund this kind of support"),
        (("region", "Andean region"), "does not fund this region"),
        (("country", "UG"), "does not fund this country"),
    ],
)
def test_an_ineligible_pool_pays_nothing(world, restriction, reason):
    kind, value = restriction
    db.session.add(PoolRestriction(pool_id=world["pool"].id, kind=kind, value=value))
    db.session.commit()
    case = recommended_case(world)
    with pytest.raises(services.IneligiblePoolError) as refused:
        decisions.approve_application(
            case, world["m1"], Decimal(100), [(world["pool"].id, Decimal(100), Decimal(1))]
        )
    assert any(reason in r for r in refused.value.reasons)
    db.session.rollback()
    assert _grants() == 0 and pool_available(world["pool"].id) == Decimal(1000)


def test_no_approval_takes_more_than_the_pool_holds(world):
    case = recommended_case(world)
    with pytest.raises(services.InsufficientFundsError):
        decisions.approve_application(
            case, world["m1"], Decimal(1500), [(world["pool"].id, Decimal(1500), Decimal(1))]
        )
    db.session.rollback()
    assert _grants() == 0


def test_fifty_simultaneous_approvals_commit_exactly_what_the_pool_holds(app, world):
    """A pool that can fund ten grants of 100 gets fifty approvals at once: ten succeed."""
    cases = [recommended_case(world).id for _ in range(50)]
    pool_id, manager_id = world["pool"].id, world["m1"].id
    # End this thread's read transaction: on SQLite it would hold the write lock.
    db.session.rollback()
    outcomes, start = [], threading.Barrier(50)

    def approve(case_id):
        with app.app_context():
            try:
                start.wait()
                case = db.session.get(Application, case_id)
                manager = db.session.get(type(world["m1"]), manager_id)
                decisions.approve_application(
                    case, manager, Decimal(100), [(pool_id, Decimal(100), Decimal(1))]
                )
                db.session.commit()
                outcomes.append("approved")
            except services.InsufficientFundsError:
                db.session.rollback()
                outcomes.append("refused")
            except Exception as exc:  # noqa: BLE001  (any other outcome fails the test below)
                db.session.rollback()
                outcomes.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=approve, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(outcomes)) == ["approved", "refused"], outcomes
    assert outcomes.count("approved") == 10
    assert pool_available(pool_id) == Decimal(0)
    assert _grants() == 10
    assert check_ledger() == []


def _capped(world, cap="500", amount="5000"):
    """A pool holding ``amount`` EUR of which one grant may take at most ``cap``."""
    donor = world["pool"].donor
    return world["make_pool"](donor, "Capped", amount, cap_per_grant=Decimal(cap))


def test_a_pool_is_drawn_on_once_per_grant_so_its_cap_holds_for_the_grant(world):
    """Three lines of 400 on a pool capped at 500 per grant would take 1,200: the same pool
    twice in one decision is refused, naming the pool, and nothing is committed."""
    pool = _capped(world)
    case = recommended_case(world)
    draws = [(pool.id, Decimal(400), Decimal(1))] * 3
    with pytest.raises(services.RepeatedPoolError, match="The pool Capped is chosen twice"):
        decisions.approve_application(case, world["m1"], Decimal(1200), draws)
    db.session.rollback()
    with pytest.raises(services.RepeatedPoolError, match="Capped"):
        decisions.approve_with_recorded_rates(
            case, world["m1"], Decimal(1200), [(pool.id, Decimal(400))] * 3
        )
    db.session.rollback()
    assert _grants() == 0 and pool_available(pool.id) == Decimal(5000)
    # On one line the cap is read for the whole grant, and named with its figures.
    with pytest.raises(services.IneligiblePoolError, match="Capped: the grant would draw €600.00"):
        decisions.approve_application(
            case, world["m1"], Decimal(600), [(pool.id, Decimal(600), Decimal(1))]
        )
    db.session.rollback()
    # The rest of a grant above the cap comes from another pool.
    grant = decisions.approve_application(
        case,
        world["m1"],
        Decimal(900),
        [(pool.id, Decimal(500), Decimal(1)), (world["pool"].id, Decimal(400), Decimal(1))],
    )
    db.session.commit()
    assert sorted(a.amount for a in grant.allocations) == [Decimal(400), Decimal(500)]
    assert check_ledger() == []


def test_an_allocation_called_twice_for_one_grant_and_pool_is_refused(world):
    """Below the decision, the allocation itself refuses a second draw on the same pool,
    so no caller can step around the cap per grant."""
    pool = _capped(world)
    case = recommended_case(world)
    grant = decisions.approve_application(
        case, world["m1"], Decimal(500), [(pool.id, Decimal(500), Decimal(1))]
    )
    with pytest.raises(services.RepeatedPoolError, match="Capped"):
        services.allocate(grant, case, pool.id, Decimal(500), world["m1"])
    db.session.rollback()


def test_the_first_approval_is_checked_like_the_second(app, world):
    """Above the threshold the first approval records its split of pools, so the split is
    held to every rule at once: a pool twice, a pool that does not fit, parts that do not
    add up are refused before anything is recorded."""
    app.config["FOUR_EYES_THRESHOLD"] = "100"
    pool = _capped(world)
    case = recommended_case(world)
    for draws, refusal in (
        ([(pool.id, Decimal(300), Decimal(1))] * 2, "chosen twice"),
        ([(pool.id, Decimal(600), Decimal(1))], "above its cap of €500.00 per grant"),
        ([(world["pool"].id, Decimal(500), Decimal(1))], "must add up"),
    ):
        with pytest.raises(services.DecisionError, match=refusal):
            decisions.approve_application(case, world["m1"], Decimal(600), draws)
        db.session.rollback()
    assert case.status == ApplicationStatus.RECOMMENDED
    split = [(pool.id, Decimal(500), Decimal(1)), (world["pool"].id, Decimal(100), Decimal(1))]
    assert decisions.approve_application(case, world["m1"], Decimal(600), split) is None
    db.session.commit()
    first = decisions.first_approval(case)
    assert decisions.approval_draws(first) == [
        (pool.id, Decimal(500)),
        (world["pool"].id, Decimal(100)),
    ]


def test_the_four_eyes_threshold_is_read_in_the_reporting_currency(money_world):
    """5,000 euros, compared after conversion at the recorded rate: 5,400 dollars (4,909
    euros) need one manager, 5,500 dollars (5,000 euros) need two."""
    below = money_world.recommended(currency="USD")
    grant = approve_with_recorded_rates(
        below, money_world.m1, Decimal(5400), [(money_world.usd.id, Decimal(5400))]
    )
    db.session.commit()
    assert grant is not None and below.status == ApplicationStatus.APPROVED
    at = money_world.recommended(currency="USD")
    first = approve_with_recorded_rates(
        at, money_world.m1, Decimal(5500), [(money_world.usd.id, Decimal(5500))]
    )
    db.session.commit()
    assert first is None and at.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    assert services.in_reporting_currency(money_world.fund.id, Decimal(5500), "USD") == Decimal(
        "5000.00"
    )


def test_a_grant_in_shillings_is_not_weighed_in_shillings(money_world):
    """150,000 shillings from a shilling pool are about 1,000 euros: one manager approves,
    once a rate says so; without a rate the approval is refused in words, nothing recorded."""
    kes = pools.create_pool(money_world.donor, money_world.m1, "Shillings", "KES")
    pools.record_contribution(kes, money_world.m1, Decimal(1_000_000), "KES", date(2026, 1, 2))
    case = money_world.recommended(currency="KES")
    db.session.commit()
    draws = [(kes.id, Decimal(150000))]
    with pytest.raises(
        services.MissingRateError,
        match="No usable exchange rate from KES to EUR is recorded, so this approval cannot "
        "be weighed against the four-eyes threshold of 5000 EUR",
    ):
        approve_with_recorded_rates(case, money_world.m1, Decimal(150000), draws)
    db.session.rollback()
    assert case.status == ApplicationStatus.RECOMMENDED
    assert db.session.execute(sa.select(sa.func.count(Decision.id))).scalar() == 0
    entry = pools.record_rate(
        money_world.fund.id,
        money_world.finance,
        date(2026, 1, 1),
        "EUR",
        "KES",
        Decimal(143),
        "CBK",
    )
    pools.confirm_rate(entry, money_world.m2)  # the first rate of a pair counts once confirmed
    db.session.commit()
    grant = approve_with_recorded_rates(case, money_world.m1, Decimal(150000), draws)
    db.session.commit()
    assert grant is not None and case.status == ApplicationStatus.APPROVED


def test_the_reporting_currency_is_a_setting(app, money_world):
    """Read in dollars, 5,000 is reached by 4,600 euros (5,060 dollars)."""
    app.config["REPORTING_CURRENCY"] = "USD"
    case = money_world.recommended()
    assert (
        approve_with_recorded_rates(
            case, money_world.m1, Decimal(4600), [(money_world.eur.id, Decimal(4600))]
        )
        is None
    )


@pytest.mark.parametrize(
    "setting, value",
    [
        ("REPORTING_CURRENCY", "XXX"),
        ("FOUR_EYES_THRESHOLD", "five thousand"),
        ("MAX_FEE_PERCENT", "-1"),
        ("RATE_TOLERANCE_PERCENT", "NaN"),
        ("MAX_EXCHANGE_DIFFERENCE_PERCENT", "101"),
        # Payments and approvals keep the limits they were weighed against, so no more
        # places than those columns hold.
        ("FOUR_EYES_THRESHOLD", "5000.001"),
        ("RATE_TOLERANCE_PERCENT", "2.0000001"),
    ],
)
def test_a_malformed_money_limit_stops_the_start(app_config, setting, value):
    from hrdfund import create_app
    from hrdfund.core.limits import LimitConfigError

    with pytest.raises(LimitConfigError, match=setting):
        create_app({**app_config, setting: value})
