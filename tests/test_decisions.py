"""Decisions and money: four eyes above the threshold, the recommender never approves,
only fitting pools pay, and no pool is overdrawn even by fifty approvals at once."""

import threading
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.applications.models import Application, ApplicationStatus, Category
from hrdfund.applications.review_models import (
    ConflictDeclaration,
    Recommendation,
    Review,
    RiskLevel,
)
from hrdfund.disbursements.ledger import check_ledger
from hrdfund.extensions import db
from hrdfund.grants import services
from hrdfund.grants.models import Grant
from hrdfund.pools.models import Contribution, Pool, PoolRestriction


@pytest.fixture
def world(app, fund, make_donor, make_user):
    """A pool holding 1,000 EUR, a reviewer, two managers."""
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="Main", currency="EUR")
    db.session.add(pool)
    db.session.flush()
    db.session.add(
        Contribution(
            pool_id=pool.id,
            amount=Decimal(1000),
            received_amount=Decimal(1000),
            received_currency="EUR",
            fx_rate=Decimal(1),
            received_on=date(2026, 1, 1),
        )
    )
    db.session.commit()
    return {
        "pool": pool,
        "fund": fund,
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
    grant = services.approve_application(
        case, world["m1"], Decimal(400), [(world["pool"].id, Decimal(400), Decimal(1))]
    )
    db.session.commit()
    assert case.status == ApplicationStatus.APPROVED and grant.amount == Decimal(400)
    assert services.pool_available(world["pool"].id) == Decimal(600)
    assert check_ledger() == []


def test_above_the_threshold_two_different_managers_approve(app, world):
    app.config["FOUR_EYES_THRESHOLD"] = "500"
    case = recommended_case(world)
    allocation = [(world["pool"].id, Decimal(800), Decimal(1))]
    assert services.approve_application(case, world["m1"], Decimal(800), allocation) is None
    db.session.commit()
    assert case.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    assert _grants() == 0 and services.pool_available(world["pool"].id) == Decimal(1000)
    with pytest.raises(services.SecondApproverError):
        services.approve_application(case, world["m1"], Decimal(800), allocation)
    db.session.rollback()
    services.approve_application(case, world["m2"], Decimal(800), allocation)
    db.session.commit()
    assert case.status == ApplicationStatus.APPROVED
    assert services.pool_available(world["pool"].id) == Decimal(200)


def test_the_recommender_cannot_approve(world):
    case = recommended_case(world, recommender=world["m1"])
    with pytest.raises(services.SelfApprovalError):
        services.approve_application(
            case, world["m1"], Decimal(100), [(world["pool"].id, Decimal(100), Decimal(1))]
        )
    db.session.rollback()
    assert _grants() == 0


def test_a_declared_conflict_keeps_the_manager_out(world):
    case = recommended_case(world)
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=world["m1"].id))
    db.session.commit()
    with pytest.raises(services.ConflictOfInterestError):
        services.approve_application(
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
        services.approve_application(
            case, world["m1"], Decimal(100), [(world["pool"].id, Decimal(100), Decimal(1))]
        )
    assert any(reason in r for r in refused.value.reasons)
    db.session.rollback()
    assert _grants() == 0 and services.pool_available(world["pool"].id) == Decimal(1000)


def test_no_approval_takes_more_than_the_pool_holds(world):
    case = recommended_case(world)
    with pytest.raises(services.InsufficientFundsError):
        services.approve_application(
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
                services.approve_application(
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
    assert services.pool_available(pool_id) == Decimal(0)
    assert _grants() == 10
    assert check_ledger() == []
