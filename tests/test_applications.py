"""Status changes of a case: only allowed moves, each timestamped and audited."""

from datetime import datetime

import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Application, ApplicationStatus, StatusChange
from hrdfund.cases.services import change_status, missing_items
from hrdfund.cases.states import InvalidTransition
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.conftest import make_case


@pytest.fixture
def case(app, fund, make_user):
    applicant = make_user("applicant")
    application = Application(
        fund_id=fund.id, applicant_id=applicant.id, category=Category.MEDICAL, currency="EUR"
    )
    application.threat = "canary-threat"
    db.session.add(application)
    db.session.commit()
    return application


def test_a_case_walks_its_life_with_every_step_stamped(case, make_user):
    """Submit, review, approve, pay, complete: each step is recorded with its time."""
    reviewer = make_user("reviewer")
    manager = make_user("manager")
    steps = [
        (ApplicationStatus.SUBMITTED, None),
        (ApplicationStatus.IN_REVIEW, reviewer),
        (ApplicationStatus.RECOMMENDED, reviewer),
        (ApplicationStatus.APPROVED, manager),
        (ApplicationStatus.PAYING, manager),
        (ApplicationStatus.COMPLETED, manager),
    ]
    for hour, (target, actor) in enumerate(steps):
        change_status(case, target, actor=actor, at=datetime(2026, 3, 1, hour))
    db.session.commit()
    assert case.status == ApplicationStatus.COMPLETED
    assert case.submitted_at == datetime(2026, 3, 1, 0)
    assert case.first_response_at == datetime(2026, 3, 1, 1)
    assert case.decided_at == datetime(2026, 3, 1, 3)
    assert case.closed_at == datetime(2026, 3, 1, 5)
    changes = db.session.execute(sa.select(StatusChange).order_by(StatusChange.id)).scalars()
    assert [c.to_status for c in changes] == [t for t, _ in steps]
    actions = (
        db.session.execute(
            sa.select(AuditEvent.object_id).where(AuditEvent.action == "application.status")
        )
        .scalars()
        .all()
    )
    assert actions == [case.uid] * len(steps)
    assert audit.verify() == []


@pytest.mark.parametrize(
    "target",
    [
        ApplicationStatus.APPROVED,
        ApplicationStatus.PAYING,
        ApplicationStatus.IN_REVIEW,
        ApplicationStatus.COMPLETED,
    ],
)
def test_a_draft_cannot_skip_ahead(case, target):
    """A draft can only be submitted or withdrawn; anything else is refused unchanged."""
    with pytest.raises(InvalidTransition):
        change_status(case, target)
    db.session.rollback()
    db.session.refresh(case)
    assert case.status == ApplicationStatus.DRAFT
    assert db.session.execute(sa.select(sa.func.count(StatusChange.id))).scalar() == 0


def test_audit_entries_carry_no_case_content(case):
    """The audit payload names statuses and the opaque case code, never what the case says."""
    change_status(case, ApplicationStatus.SUBMITTED)
    db.session.commit()
    payloads = db.session.execute(sa.select(AuditEvent.payload)).scalars().all()
    assert payloads and not any("canary-threat" in p for p in payloads)


@pytest.mark.parametrize(
    ("scope", "asked"), [("in_country", False), ("region", True), ("abroad", True), ("", True)]
)
def test_a_move_within_the_country_needs_no_destination_country(fund, scope, asked):
    """A defender moving within their own country is not asked for a country to go to
    before sending; a move abroad, or one whose scope is not said yet, is."""
    case = make_case(
        fund,
        category=Category.RELOCATION,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        details={"scope": scope, "people": 1, "months": 3},
    )
    missing = {item.field for item in missing_items(case)}
    assert ("details-destination_country" in missing) is asked
    assert "details-people" not in missing and "details-stay_plan" in missing
