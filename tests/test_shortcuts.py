"""The short ways from an urgent case to its money: a reviewer takes and recommends from
the queue's row, a second manager confirms an approval from the dashboard. Each holds every
rule of the case page's full forms, also against posts the pages never offer."""

import html
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import ApplicationStatus, Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.models import Grant
from hrdfund.reviews import services as reviews
from hrdfund.reviews.models import Review
from tests.conftest import application_by_uid, make_costed_case, refused_page, signed_in

QUICK = {
    "quick-risk_level": "high",
    "quick-recommendation": "approve",
    "quick-assessment": "Two calls confirm the attack",
}


def _text(response):
    return html.unescape(response.get_data(as_text=True))


def _urgent(fund, **fields):
    return make_costed_case(fund, urgency=Urgency.URGENT, **fields)


def _reviews(case):
    return db.session.execute(sa.select(Review).where(Review.application_id == case.id)).all()


def test_a_reviewer_takes_and_recommends_an_urgent_case_from_the_queue(app, fund, make_user):
    reviewer = make_user("reviewer")
    case = _urgent(fund)
    client = signed_in(app, reviewer)
    queue = _text(client.get("/cases?urgency=urgent"))
    assert f'id="quick-{case.uid}"' in queue and "Take and recommend" in queue
    assert "€6,000.00" in queue
    response = client.post(
        f"/applications/{case.uid}/quick-recommend?urgency=urgent&page=1", data=QUICK
    )
    assert response.status_code == 302
    assert response.location == "/cases?urgency=urgent&page=1"
    assert "taken and recommended" in _text(client.get(response.location))
    case = application_by_uid(case.uid)
    assert case.status == ApplicationStatus.RECOMMENDED
    assert case.assigned_reviewer_id == reviewer.id
    review = db.session.execute(sa.select(Review).where(Review.application_id == case.id)).scalar()
    assert review.recommended_amount == Decimal("6000.00") and review.reviewer_id == reviewer.id
    assert [line.recommended_amount for line in case.budget_lines] == [
        Decimal("5000.00"),
        Decimal("1000.00"),
    ]


def test_the_queue_offers_the_short_form_only_where_the_reviewer_may_take_the_case(
    app, fund, make_user
):
    reviewer, other = make_user("reviewer"), make_user("reviewer")
    normal = make_costed_case(fund)
    taken = _urgent(fund, assigned_reviewer_id=other.id, status=ApplicationStatus.IN_REVIEW)
    asking = _urgent(fund, status=ApplicationStatus.INFO_REQUESTED)
    mine = _urgent(fund, assigned_reviewer_id=reviewer.id, status=ApplicationStatus.IN_REVIEW)
    queue = _text(signed_in(app, reviewer).get("/cases"))
    for case in (normal, taken, asking):
        assert case.uid in queue and f'id="quick-{case.uid}"' not in queue
    assert f'id="quick-{mine.uid}"' in queue


@pytest.mark.parametrize(
    "forged, words",
    [
        ({"quick-recommendation": "approve_partly"}, "recommended on the case page"),
        ({"quick-recommendation": "approve_all_of_it"}, "Not a valid choice"),
        ({"quick-risk_level": "none"}, "Not a valid choice"),
        ({"quick-assessment": ""}, "Say briefly why."),
    ],
)
def test_a_forged_short_form_is_refused_and_changes_nothing(app, fund, make_user, forged, words):
    reviewer = make_user("reviewer")
    case = _urgent(fund)
    client = signed_in(app, reviewer)
    response = client.post(f"/applications/{case.uid}/quick-recommend", data={**QUICK, **forged})
    page = _text(refused_page(client, response, f"/cases#quick-{case.uid}"))
    assert words in page
    case = application_by_uid(case.uid)
    assert case.status == ApplicationStatus.SUBMITTED and case.assigned_reviewer_id is None
    assert _reviews(case) == []


def test_a_case_someone_else_reviews_or_already_recommended_is_refused(app, fund, make_user):
    reviewer, other = make_user("reviewer"), make_user("reviewer")
    taken = _urgent(fund, assigned_reviewer_id=other.id, status=ApplicationStatus.IN_REVIEW)
    done = _urgent(fund, assigned_reviewer_id=reviewer.id, status=ApplicationStatus.RECOMMENDED)
    client = signed_in(app, reviewer)
    for case, words in ((taken, "Someone else reviews this case"), (done, "Only a case in review")):
        response = client.post(f"/applications/{case.uid}/quick-recommend", data=QUICK)
        assert words in _text(refused_page(client, response))
        assert _reviews(case) == []
    assert application_by_uid(taken.uid).assigned_reviewer_id == other.id


def test_a_conflict_another_fund_or_another_role_cannot_use_the_short_form(
    app, fund, make_fund, make_user
):
    case = _urgent(fund)
    conflicted = make_user("reviewer")
    reviews.declare_conflict(case, conflicted)
    db.session.commit()
    outsiders = {
        "conflicted": (conflicted, 404),
        "other fund": (make_user("reviewer", fund_id=make_fund("Other").id), 404),
        "finance": (make_user("finance"), 403),
        "applicant": (make_user("applicant"), 403),
    }
    for user, status in outsiders.values():
        response = signed_in(app, user).post(
            f"/applications/{case.uid}/quick-recommend", data=QUICK
        )
        assert response.status_code == status
    case = application_by_uid(case.uid)
    assert case.status == ApplicationStatus.SUBMITTED and _reviews(case) == []


# -- A second manager confirms from the dashboard --------------------------------------------


def _approved_once(world, amount="6000"):
    """A recommended case that the first manager approved above the four-eyes threshold."""
    case = world.recommended()
    first = approve_with_recorded_rates(
        case, world.m1, Decimal(amount), [(world.eur.id, Decimal(amount))]
    )
    db.session.commit()
    assert first is None and case.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    return case


def _grant(case):
    return db.session.execute(
        sa.select(Grant).where(Grant.application_id == case.id)
    ).scalar_one_or_none()


def test_the_second_manager_confirms_from_the_dashboard(app, money_world):
    case = _approved_once(money_world)
    second = signed_in(app, money_world.m2)
    dashboard = _text(second.get("/dashboard"))
    assert f'id="decide-{case.uid}"' in dashboard
    assert "Approved once: €6,000.00 (Emergency EUR €6,000.00)" in dashboard
    # Who gave the first approval, and what the review it followed said, beside the button.
    first = money_world.m1.display_name or money_world.m1.login
    item = dashboard.split(f'id="decide-{case.uid}"')[1].split("</li>")[0]
    assert f"First approval by {first}." in item
    assert "The review recommended: Approve in full; risk: High." in item
    assert f'action="/applications/{case.uid}/confirm-approval"' in dashboard
    response = second.post(f"/applications/{case.uid}/confirm-approval")
    assert response.status_code == 302 and response.location == "/dashboard#decisions"
    assert "€6,000.00 committed" in _text(second.get("/dashboard"))
    grant = _grant(case)
    assert grant.amount == Decimal("6000.00")
    assert [(a.pool_id, a.amount) for a in grant.allocations] == [
        (money_world.eur.id, Decimal("6000.00"))
    ]
    assert application_by_uid(case.uid).status == ApplicationStatus.APPROVED


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        (139.5, "decision due in 5 days"),
        (47.5, "decision due in 47 hours"),
        (-1, "decision overdue"),
    ],
)
def test_a_decision_due_in_more_than_two_days_is_said_in_days(app, money_world, hours, words):
    """As the queue says it: 139 hours left read "5 days" (it read "139 hours")."""
    case = money_world.recommended()
    case.decision_due_at = utcnow() + timedelta(hours=hours)
    db.session.commit()
    dashboard = signed_in(app, money_world.m1).get("/dashboard").get_data(as_text=True)
    line = dashboard.split(f'id="decide-{case.uid}"')[1].split("</li>")[0]
    assert words in line


def test_the_first_manager_sees_no_button_and_a_forged_confirmation_is_refused(app, money_world):
    case = _approved_once(money_world)
    first = signed_in(app, money_world.m1)
    dashboard = _text(first.get("/dashboard"))
    assert f'id="decide-{case.uid}"' in dashboard and "waits for another manager" in dashboard
    assert f'action="/applications/{case.uid}/confirm-approval"' not in dashboard
    response = first.post(f"/applications/{case.uid}/confirm-approval")
    assert "A second, different manager must confirm" in _text(refused_page(first, response))
    assert _grant(case) is None
    assert application_by_uid(case.uid).status == ApplicationStatus.AWAITING_SECOND_APPROVAL


def test_a_manager_who_recommended_may_not_confirm(app, money_world):
    recommender = money_world.make_user("manager")
    case = money_world.recommended(reviewer=recommender)
    approve_with_recorded_rates(case, money_world.m1, Decimal(6000), [(money_world.eur.id, 6000)])
    db.session.commit()
    client = signed_in(app, recommender)
    assert "waits for another manager" in _text(client.get("/dashboard"))
    response = client.post(f"/applications/{case.uid}/confirm-approval")
    assert "may not approve it" in _text(refused_page(client, response))
    assert _grant(case) is None


def test_a_forged_confirmation_of_a_case_approved_by_nobody_is_refused(app, money_world):
    """A recommended case has no first approval: the button's post approves nothing."""
    case = money_world.recommended()
    db.session.commit()
    client = signed_in(app, money_world.m2)
    response = client.post(f"/applications/{case.uid}/confirm-approval")
    assert "waits for no second approval" in _text(refused_page(client, response))
    assert _grant(case) is None
    assert application_by_uid(case.uid).status == ApplicationStatus.RECOMMENDED


def test_a_conflict_another_fund_or_another_role_cannot_confirm(
    app, money_world, make_fund, make_user
):
    case = _approved_once(money_world)
    conflicted = make_user("manager")
    reviews.declare_conflict(case, conflicted)
    db.session.commit()
    outsiders = [
        (conflicted, 404),
        (make_user("manager", fund_id=make_fund("Other").id), 404),
        (money_world.reviewer, 403),
        (money_world.finance, 403),
    ]
    for user, status in outsiders:
        assert (
            signed_in(app, user).post(f"/applications/{case.uid}/confirm-approval").status_code
            == status
        )
    assert case.uid not in _text(signed_in(app, conflicted).get("/dashboard"))
    assert _grant(case) is None


def test_a_confirmation_the_pool_can_no_longer_pay_is_refused(app, money_world):
    """Between the two approvals the pool's money went to another grant."""
    case = _approved_once(money_world, "6000")
    for n in range(4):  # below the threshold: each commits 4,000 of the 20,000 at once
        assert money_world.grant("4000", name=f"Another {n}") is not None
    client = signed_in(app, money_world.m2)
    response = client.post(f"/applications/{case.uid}/confirm-approval")
    assert "The pool Emergency EUR has less than" in _text(refused_page(client, response))
    assert _grant(case) is None
