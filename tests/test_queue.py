"""The staff queue: targets and overdue cases stand out, filters narrow it, and it costs
the same number of queries for five cases as for sixty."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hrdfund.applications.models import Application, ApplicationStatus, Category, Urgency
from hrdfund.columns import utcnow
from hrdfund.extensions import db
from tests.conftest import login


def _cases(fund, n, **fields):
    now = utcnow()
    rows = []
    for i in range(n):
        values = {
            "fund_id": fund.id,
            "category": Category.MEDICAL,
            "currency": "EUR",
            "status": ApplicationStatus.SUBMITTED,
            "country": "KE",
            "urgency": Urgency.NORMAL,
            "submitted_at": now - timedelta(hours=i),
            **fields,
        }
        rows.append(Application(**values))
    db.session.add_all(rows)
    db.session.commit()
    return rows


def _count_queries(client, path):
    # Start each measurement from the same state: nothing cached in the shared session.
    db.session.commit()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_the_queue_costs_the_same_queries_for_five_or_sixty_cases(client, fund, make_user):
    login(client, make_user("reviewer"))
    _cases(fund, 5)
    few = _count_queries(client, "/cases")
    _cases(fund, 55)
    many = _count_queries(client, "/cases")
    filtered = _count_queries(client, "/cases?category=medical&urgency=normal")
    assert few == many == filtered


def test_an_urgent_case_past_its_first_response_target_is_marked_overdue(client, fund, make_user):
    login(client, make_user("manager"))
    (late,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=utcnow() - timedelta(hours=30))
    (fresh,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=utcnow() - timedelta(hours=2))
    html = client.get("/cases").get_data(as_text=True)
    assert "first response overdue by 6 h" in html
    assert "first response in 21 h" in html
    assert late.uid in html and fresh.uid in html


@pytest.mark.parametrize(
    "query, shown",
    [
        ("category=legal", "legal"),
        ("urgency=urgent", "urgent"),
        ("country=co", "co"),
        ("status=in_review", "review"),
        ("mine=1", "mine"),
    ],
)
def test_filters_narrow_the_queue(client, fund, make_user, query, shown):
    me = make_user("reviewer")
    login(client, me)
    cases = {
        "legal": _cases(fund, 1, category=Category.LEGAL)[0],
        "urgent": _cases(fund, 1, urgency=Urgency.URGENT)[0],
        "co": _cases(fund, 1, country="CO")[0],
        "review": _cases(fund, 1, status=ApplicationStatus.IN_REVIEW)[0],
        "mine": _cases(fund, 1, assigned_reviewer_id=me.id)[0],
    }
    html = client.get(f"/cases?{query}").get_data(as_text=True)
    assert cases[shown].uid in html
    assert all(c.uid not in html for name, c in cases.items() if name != shown)


def test_nonsense_filters_are_ignored_not_errors(client, fund, make_user):
    login(client, make_user("reviewer"))
    (case,) = _cases(fund, 1)
    response = client.get("/cases?status=approved&category=<script>&country=123&page=-4")
    assert response.status_code == 200 and case.uid in response.get_data(as_text=True)
