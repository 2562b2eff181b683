"""The review before the money: assignment starts the clock, a conflict removes the
declarer, references are checked, the reviewer recommends, a manager may refuse."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import ApplicationStatus, Decision, Reference, VerificationStatus
from hrdfund.core.extensions import db
from hrdfund.grants import decisions
from hrdfund.reviews import services as reviews
from hrdfund.reviews.models import Review
from tests.conftest import login, make_case


@pytest.fixture
def submitted(fund, make_user):
    applicant = make_user("applicant")
    return make_case(
        fund,
        applicant_id=applicant.id,
        references=[
            Reference(name="Ref A", contact="Signal"),
            Reference(name="Ref B", contact="Email"),
        ],
    )


def test_assigning_a_reviewer_starts_the_review(submitted, make_user):
    manager, reviewer = make_user("manager"), make_user("reviewer")
    reviews.assign_reviewer(submitted, reviewer, manager)
    db.session.commit()
    assert submitted.status == ApplicationStatus.IN_REVIEW
    assert submitted.assigned_reviewer_id == reviewer.id
    assert submitted.first_response_at is not None


def test_a_conflict_takes_the_declarer_off_the_case(app, client, submitted, make_user):
    reviewer = make_user("reviewer")
    reviews.assign_reviewer(submitted, reviewer, reviewer)
    reviews.declare_conflict(submitted, reviewer)
    db.session.commit()
    assert submitted.assigned_reviewer_id is None
    login(client, reviewer)
    assert client.get(f"/applications/{submitted.uid}").status_code == 404
    assert submitted.uid not in client.get("/cases").get_data(as_text=True)
    colleague = app.test_client()
    login(colleague, make_user("reviewer"))
    assert submitted.uid in colleague.get("/cases").get_data(as_text=True)
    with pytest.raises(reviews.ReviewError):
        reviews.record_reference_check(submitted.references[0], "confirmed", "ok", reviewer)


def test_a_manager_with_a_conflict_cannot_decide(submitted, make_user):
    manager, reviewer = make_user("manager"), make_user("reviewer")
    reviews.assign_reviewer(submitted, reviewer, reviewer)
    reviews.recommend(submitted, reviewer, "high", "approve", Decimal(100), "Verified")
    reviews.declare_conflict(submitted, manager)
    db.session.commit()
    with pytest.raises(decisions.ConflictOfInterestError):
        decisions.approve_application(submitted, manager, Decimal(100), [])
    with pytest.raises(decisions.DecisionError):
        decisions.reject_application(submitted, manager, "No")


def test_two_references_checked_then_recommended(submitted, make_user):
    reviewer = make_user("reviewer")
    reviews.assign_reviewer(submitted, reviewer, reviewer)
    for reference in submitted.references:
        reviews.record_reference_check(reference, "confirmed", "canary-ref-notes-4411", reviewer)
    reviews.recommend(
        submitted,
        reviewer,
        "critical",
        "approve",
        Decimal("2500"),
        "Threat verified by both references",
    )
    db.session.commit()
    assert submitted.status == ApplicationStatus.RECOMMENDED
    statuses = {r.status for r in submitted.references}
    assert statuses == {VerificationStatus.CONFIRMED}
    assert all(b"canary" not in r._notes for r in submitted.references)
    review = db.session.execute(sa.select(Review)).scalar_one()
    assert review.recommended_amount == Decimal("2500.00")


def test_a_recommendation_needs_a_case_in_review_and_an_amount(submitted, make_user):
    reviewer = make_user("reviewer")
    with pytest.raises(reviews.ReviewError):
        reviews.recommend(submitted, reviewer, "low", "approve", Decimal(10), "")
    reviews.assign_reviewer(submitted, reviewer, reviewer)
    with pytest.raises(reviews.ReviewError):
        reviews.recommend(submitted, reviewer, "low", "approve", None, "")


def test_a_rejection_needs_a_manager_and_a_reason(client, submitted, make_user):
    reviewer, manager = make_user("reviewer"), make_user("manager")
    reviews.assign_reviewer(submitted, reviewer, reviewer)
    with pytest.raises(decisions.DecisionError):
        decisions.reject_application(submitted, reviewer, "Not ours")
    with pytest.raises(decisions.DecisionError):
        decisions.reject_application(submitted, manager, "  ")
    decisions.reject_application(submitted, manager, "Another fund already covers this.")
    db.session.commit()
    assert submitted.status == ApplicationStatus.REJECTED
    login(client, submitted.applicant)
    page = client.get(f"/applications/{submitted.uid}").get_data(as_text=True)
    assert "Another fund already covers this." in page


def test_a_case_not_waiting_for_a_decision_is_not_rejected(submitted, make_user):
    """The service itself refuses, in words, to reject a case nobody has reviewed yet: no
    decision row is written, whoever calls it."""
    manager = make_user("manager")
    with pytest.raises(decisions.DecisionError, match="not waiting for a decision"):
        decisions.reject_application(submitted, manager, "Too early")
    db.session.rollback()
    assert submitted.status == ApplicationStatus.SUBMITTED
    assert db.session.execute(sa.select(sa.func.count(Decision.id))).scalar() == 0
