"""Two people deciding the same case at the same moment take turns: one manager approves
while another rejects, and exactly one of them is done; the other is undone and told, never
written over the first (which left a rejected case with money committed to it on
PostgreSQL, where nothing made them wait for each other)."""

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import Application, ApplicationStatus, StatusChange
from hrdfund.cases.states import CaseMoved
from hrdfund.core.extensions import db
from hrdfund.grants import decisions
from hrdfund.grants.models import Grant
from hrdfund.ledger.balances import pool_available
from tests.conftest import signed_in
from tests.test_decisions import recommended_case

S = ApplicationStatus
PAIRS = 8


@pytest.fixture
def world(app, fund, make_donor, make_user, make_pool):
    return {
        "pool": make_pool(make_donor(), "Main", 10000),
        "fund": fund,
        "reviewer": make_user("reviewer"),
        "m1": make_user("manager"),
        "m2": make_user("manager"),
    }


def test_an_approval_and_a_rejection_sent_together_leave_one_decision(app, world):
    cases = [recommended_case(world).id for _ in range(PAIRS)]
    pool_id = world["pool"].id
    managers = {"approve": world["m1"].id, "reject": world["m2"].id}
    db.session.rollback()  # this thread's read would hold SQLite's write lock
    outcomes, start = {}, threading.Barrier(2 * PAIRS)

    def decide(case_id, how):
        with app.app_context():
            try:
                start.wait()
                case = db.session.get(Application, case_id)
                manager = db.session.get(type(world["m1"]), managers[how])
                if how == "approve":
                    decisions.approve_application(
                        case, manager, Decimal(100), [(pool_id, Decimal(100), Decimal(1))]
                    )
                else:
                    decisions.reject_application(case, manager, "Outside our mandate")
                db.session.commit()
                outcomes[case_id, how] = "done"
            except (decisions.DecisionError, CaseMoved):
                db.session.rollback()
                outcomes[case_id, how] = "refused"
            except Exception as exc:  # noqa: BLE001  (any other outcome fails the test below)
                db.session.rollback()
                outcomes[case_id, how] = repr(exc)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=decide, args=(case_id, how))
        for case_id in cases
        for how in ("approve", "reject")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    for case_id in cases:
        both = sorted(outcomes[case_id, how] for how in ("approve", "reject"))
        assert both == ["done", "refused"], (case_id, both)
        case = db.session.get(Application, case_id)
        grants = db.session.scalars(sa.select(Grant).where(Grant.application_id == case_id)).all()
        moves = db.session.scalars(
            sa.select(StatusChange.to_status).where(StatusChange.application_id == case_id)
        ).all()
        if outcomes[case_id, "approve"] == "done":
            assert case.status == S.APPROVED and len(grants) == 1 and moves == [S.APPROVED]
        else:
            assert case.status == S.REJECTED and grants == [] and moves == [S.REJECTED]
    approved = sum(outcomes[c, "approve"] == "done" for c in cases)
    assert pool_available(pool_id) == Decimal(10000 - 100 * approved)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_decision_overtaken_by_another_is_undone_and_says_so(app, world, monkeypatch):
    """The second manager's rejection reads the case as recommended; before it is written,
    the first manager's approval lands: the rejection is undone, and the page says what
    happened, with the case as it is now."""
    case = recommended_case(world)
    rejecting = signed_in(app, world["m2"])
    reject = decisions.reject_application

    def overtaken(application, manager, reason):
        with db.engine.connect() as other:  # the other manager's request, committed first
            other.execute(
                sa.text("UPDATE applications SET status = 'approved' WHERE id = :id"),
                {"id": application.id},
            )
            other.commit()
        return reject(application, manager, reason)

    monkeypatch.setattr(decisions, "reject_application", overtaken)
    sent = rejecting.post(
        f"/applications/{case.uid}/reject", data={"reject-reason": "Outside our mandate"}
    )
    assert sent.status_code == 303 and sent.location == f"/applications/{case.uid}"
    page = rejecting.get(sent.location).get_data(as_text=True)
    assert "Someone else changed this case at the same moment" in page
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == S.APPROVED
    assert db.session.scalars(sa.select(StatusChange.to_status)).all() == []


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_answer_sent_as_another_put_the_case_back_in_review_is_kept(app, fund, make_user):
    """Two answers of the applicant side sent at once: the first puts the case back in
    review; the second, which read it waiting for the answer, is kept all the same (it was
    undone as a case moved on), and moves nothing."""
    from hrdfund.cases import messages
    from tests.conftest import make_case

    applicant = make_user("applicant")
    case = make_case(fund, applicant_id=applicant.id, status=S.INFO_REQUESTED)
    read = db.session.get(Application, case.id)  # as the request read it
    with db.engine.begin() as other:  # the first answer, committed meanwhile
        other.execute(
            sa.text("UPDATE applications SET status = 'in_review' WHERE id = :id"), {"id": case.id}
        )
    messages.post_message(read, applicant, "The second answer")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Application, case.id).status == S.IN_REVIEW
    assert db.session.scalars(sa.select(StatusChange.to_status)).all() == []
