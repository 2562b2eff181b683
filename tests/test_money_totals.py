"""Amounts that are each within what an amount holds but add up past it: the total a
service stores (an application's amount requested, a reviewer's recommended amount) is
refused in words, nothing is saved, and the form comes back with what was typed."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.core.money import MAX_AMOUNT, MoneyError, total
from hrdfund.reviews import services as review_services
from hrdfund.reviews.models import Review
from tests.conftest import (
    application_by_uid,
    login,
    make_costed_case,
    refused_page,
    start_application,
)

MAX = str(MAX_AMOUNT)
REFUSAL = "add up to more than 999,999,999,999.99"


def test_a_total_beyond_what_an_amount_holds_is_refused_in_words():
    assert total([MAX_AMOUNT, None, Decimal("0.00")]) == MAX_AMOUNT
    assert total([]) == Decimal("0.00")
    with pytest.raises(MoneyError, match=REFUSAL):
        total([MAX_AMOUNT, Decimal("0.01")])


@pytest.mark.parametrize("action", ["save", "submit"])
def test_budget_lines_adding_up_past_the_largest_amount_are_refused(
    client, make_user, fund, action
):
    login(client, make_user("applicant"))
    uid = start_application(client)
    client.post(
        f"/applications/{uid}/edit",
        data={"budget-0-description": "Rent", "budget-0-amount": "1200.00", "save": "1"},
    )
    response = client.post(
        f"/applications/{uid}/edit",
        data={
            "defender_work": "Land rights canary-KEPT",
            "budget-0-description": "Rent",
            "budget-0-amount": MAX,
            "budget-1-description": "Travel",
            "budget-1-amount": MAX,
            action: "1",
        },
    )
    page = refused_page(client, response, f"/applications/{uid}/edit").get_data(as_text=True)
    assert REFUSAL in page
    # What was typed comes back to be corrected; what was stored is as before.
    assert "canary-KEPT" in page and page.count(f'value="{MAX}"') == 2
    application = application_by_uid(uid)
    assert application.status == ApplicationStatus.DRAFT
    assert application.amount_requested == Decimal("1200.00")
    assert [line.amount for line in application.budget_lines] == [Decimal("1200.00")]
    assert application.defender_work is None


def test_recommended_lines_adding_up_past_the_largest_amount_are_refused(app, fund, make_user):
    applicant, reviewer = make_user("applicant"), make_user("reviewer")
    case = make_costed_case(
        fund,
        applicant_id=applicant.id,
        status=ApplicationStatus.IN_REVIEW,
        assigned_reviewer_id=reviewer.id,
    )
    client = app.test_client()
    login(client, reviewer)
    response = client.post(
        f"/applications/{case.uid}/recommend",
        data={
            "recommend-risk_level": "high",
            "recommend-recommendation": "approve",
            "recommend-lines-0": MAX,
            "recommend-lines-1": MAX,
            "recommend-assessment": "Verified",
        },
    )
    assert REFUSAL in refused_page(client, response).get_data(as_text=True)
    db.session.expire_all()
    case = db.session.get(Application, case.id)
    assert case.status == ApplicationStatus.IN_REVIEW
    assert [line.recommended_amount for line in case.budget_lines] == [None, None]
    assert db.session.execute(sa.select(Review)).first() is None
    # The service refuses whoever calls it, before it changes anything.
    with pytest.raises(MoneyError, match=REFUSAL):
        review_services.recommend(
            case,
            reviewer,
            "high",
            "approve",
            None,
            "Verified",
            line_amounts={line.id: MAX_AMOUNT for line in case.budget_lines},
        )
    assert [line.recommended_amount for line in case.budget_lines] == [None, None]
