"""A manager moves the dates of a plan's instalments not paid yet: a stipend's months move
with them, tranches keep their spacing, amounts and the instalments paid on stay, and
Follow-up follows at once. Every limit holds against a request the page does not offer."""

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import followup, reschedule
from hrdfund.disbursements.models import HeldPayment
from hrdfund.grants import plans
from hrdfund.grants.models import PlanKind
from hrdfund.grants.plans import PlanError, months_after
from tests.conftest import pay, refused_page, signed_in

TODAY = utcnow().date()


def _planned(world, kind, count, starts_on, amount="1200", interval_days=30):
    grant = world.grant(amount)
    plans.create_plan(grant, world.m1, kind, starts_on, count=count, interval_days=interval_days)
    db.session.commit()
    return grant


def _dates(grant):
    db.session.refresh(grant.plan)
    return [(i.seq, i.due_on, i.period_month, i.amount) for i in grant.plan.instalments]


def test_a_stipend_moves_its_months_not_paid_yet_and_its_review(money_world):
    """Four months from last month; the first paid. Moved to start two months on: the three
    left fall a month apart from the new date, pay for those months, keep their amounts;
    the plan's end and its renewal review move with them; the paid one stays."""
    world = money_world
    start = months_after(TODAY.replace(day=1), -1)
    grant = _planned(world, PlanKind.STIPEND, 4, start)
    review = grant.plan.renewal_review_on
    pay(world, grant, "300", instalment=1, paid_on=TODAY)
    new = months_after(TODAY.replace(day=1), 2) + timedelta(days=4)
    moved = reschedule.move_instalments(grant, world.m2, new)
    db.session.commit()
    assert [i.seq for i in moved] == [2, 3, 4]
    rows = _dates(grant)
    assert rows[0] == (1, start, start, Decimal("300.00"))
    for n, (seq, due, month, amount) in enumerate(rows[1:]):
        assert (seq, due, amount) == (n + 2, months_after(new, n), Decimal("300.00"))
        assert month == due.replace(day=1)
    plan = grant.plan
    assert plan.starts_on == start and plan.ends_on == months_after(new, 2)
    assert plan.renewal_review_on == review + (plan.ends_on - months_after(start, 3))
    event = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.moved")
    ).scalar_one()
    assert event.object_id == grant.uid and '"instalments":3' in event.payload


def test_tranches_keep_their_spacing_and_follow_up_follows(money_world):
    """Three tranches 10 days apart, the first overdue: moved to a week ahead, they fall
    10 days apart from it, and Follow-up no longer lists them as due."""
    world = money_world
    grant = _planned(world, PlanKind.TRANCHES, 3, TODAY - timedelta(days=3), interval_days=10)
    due = followup.instalments_due(world.finance, TODAY, 7)
    assert {row[0].seq for row in due if row[2] == grant.application.uid} == {1, 2}
    ahead = TODAY + timedelta(days=14)
    reschedule.move_instalments(grant, world.m1, ahead)
    db.session.commit()
    assert [d for _s, d, _m, _a in _dates(grant)] == [
        ahead,
        ahead + timedelta(days=10),
        ahead + timedelta(days=20),
    ]
    assert all(month is None for _s, _d, month, _a in _dates(grant))
    assert grant.plan.starts_on == ahead and grant.plan.renewal_review_on is None
    due = followup.instalments_due(world.finance, TODAY, 7)
    assert not [row for row in due if row[2] == grant.application.uid]


@pytest.mark.parametrize(
    "case, words",
    [
        ("past", "cannot be in the past"),
        ("far", "within two years"),
        ("before the paid one", "Instalment 1, due on"),
        ("same month as the paid one", "Instalment 1, due on"),
        ("all paid", "none is left to move"),
        ("same dates", "planned already"),
        ("held", "A payment of instalment 2 waits for a second person"),
        ("closed", "This grant is closed."),
        ("finance", "Only a manager of the fund plans payments."),
        ("no plan", "no payment plan yet"),
    ],
)
def test_what_a_move_may_not_do_is_refused_in_words_and_changes_nothing(money_world, case, words):
    world = money_world
    start = TODAY.replace(day=1)
    grant = _planned(world, PlanKind.STIPEND, 3, start, amount="900")
    pay(world, grant, "300", instalment=1, paid_on=TODAY)
    actor, new = world.m1, months_after(start, 2)
    if case == "past":
        new = TODAY - timedelta(days=1)
    elif case == "far":
        new = TODAY + timedelta(days=731)
    elif case == "before the paid one":
        new = TODAY
        grant.plan.instalments[0].due_on = TODAY + timedelta(days=5)
    elif case == "same month as the paid one":
        new = start + timedelta(days=27) if TODAY < start + timedelta(days=27) else TODAY
    elif case == "all paid":
        pay(world, grant, "300", instalment=2, paid_on=TODAY)
        pay(world, grant, "300", instalment=3, paid_on=TODAY)
    elif case == "same dates":
        new = grant.plan.instalments[1].due_on
    elif case == "held":
        held = pay(world, grant, "1", instalment=2, paid_on=TODAY, fee=Decimal(200))
        assert isinstance(held, HeldPayment)
    elif case == "closed":
        plans.close_grant(grant, world.m1, "safe")
    elif case == "finance":
        actor = world.finance
    elif case == "no plan":
        grant = world.grant("500", name="Unplanned")
    db.session.commit()
    before = _dates(grant) if grant.plan else []
    with pytest.raises(PlanError, match=words):
        reschedule.move_instalments(grant, actor, new)
    db.session.rollback()
    assert (_dates(grant) if grant.plan else []) == before


def test_a_manager_moves_the_dates_from_the_case_page(app, money_world, make_user, make_fund):
    """The form sits under the plan for a manager, says which instalments move, and comes
    back with the refusal in words; finance is not offered it and is refused; a manager
    of another fund gets a 404."""
    world = money_world
    grant = _planned(world, PlanKind.TRANCHES, 2, TODAY + timedelta(days=3), amount="800")
    url = f"/applications/{grant.application.uid}"
    manager = signed_in(app, world.m1)
    page = html.unescape(manager.get(url).get_data(as_text=True))
    assert "Move the dates of the instalments not paid yet" in page
    assert "Instalments 1 to 2 move" in page
    finance = signed_in(app, world.finance)
    assert "Move the dates" not in finance.get(url).get_data(as_text=True)
    new = (TODAY + timedelta(days=20)).isoformat()
    assert finance.post(f"{url}/plan/move", data={"move-first_due_on": new}).status_code == 403
    outsider = make_user("manager", fund_id=make_fund("Other Fund").id)
    other = signed_in(app, outsider)
    assert other.post(f"{url}/plan/move", data={"move-first_due_on": new}).status_code == 404
    sent = manager.post(f"{url}/plan/move", data={"move-first_due_on": "2020-01-01"})
    text = refused_page(manager, sent).get_data(as_text=True)
    assert "The new date cannot be in the past." in text
    assert re.search(r'<details id="move" open', text)
    done = manager.post(f"{url}/plan/move", data={"move-first_due_on": new})
    page = html.unescape(manager.get(done.location).get_data(as_text=True))
    assert f"2 instalments moved: the first now falls due on {new}." in page
    assert [d for _s, d, _m, _a in _dates(grant)][0].isoformat() == new
    history = page.split('id="history"')[1]
    assert "moved the dates of the payments not made yet" in history
