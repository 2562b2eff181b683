"""Alerts for work waiting on someone other than the case's reviewer, through a real SMTP
server on 127.0.0.1: the second manager when a first approval waits, finance when a grant
is approved or an instalment falls due, managers when a renewal review date comes. Each
goes once to those who act, never to the first approver, to someone with a conflict or to
staff of another fund, carries nothing of the case, and opens the page where its reader
acts."""

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases import alerts
from hrdfund.cases.models import ApplicationStatus, ConflictDeclaration
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import alerts as payment_alerts
from hrdfund.grants import alerts as grant_alerts
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.models import PaymentPlan
from hrdfund.reviews import services as reviews
from tests.conftest import MoneyWorld, pay
from tests.test_staff_alerts import Mailbox, lands, serving_mail

SECOND = "waits for a second manager"
APPROVED = "is approved and can be paid"
DUE = "planned payment in hrdfund is due"
RENEWAL = "is due for its review"


@pytest.fixture
def mailbox(app):
    yield from serving_mail(app, Mailbox())


@pytest.fixture
def world(fund, make_user, make_donor, make_fund):
    """The money world with an address for everyone, a third manager and a second finance
    officer, and a manager and a finance officer of another fund."""
    world = MoneyWorld(fund, make_user, make_donor)
    world.m3 = make_user("manager")
    world.finance2 = make_user("finance")
    other = make_fund("Other Fund")
    world.outsiders = [make_user(role, fund_id=other.id) for role in ("manager", "finance")]
    for user in (
        world.m1,
        world.m2,
        world.m3,
        world.finance,
        world.finance2,
        world.reviewer,
        *world.outsiders,
    ):
        user.contact = f"{user.login}@fund.example"
    db.session.commit()
    return world


def _address(user):
    return f"{user.login}@fund.example"


def _received(mailbox, user, subject):
    return [body for body in mailbox.to(_address(user)) if subject in body]


def _nobody_else(mailbox, world, subject, *expected):
    """Each of ``expected`` received one alert with ``subject``; nobody else any."""
    everyone = [
        world.m1,
        world.m2,
        world.m3,
        world.finance,
        world.finance2,
        world.reviewer,
        *world.outsiders,
    ]
    got = {u.login: len(_received(mailbox, u, subject)) for u in everyone}
    assert got == {u.login: int(u in expected) for u in everyone}


def _canary_case(world, amount="6000"):
    """A recommended relocation case full of canaries: name, country, amount."""
    case = world.recommended("Canary Defender")
    case.threat = "Canary threat"
    case.amount_requested = Decimal(amount)
    db.session.commit()
    return case


def _assert_nothing_of(body, case):
    """The whole message, headers included, carries nothing of the case but the random
    address of its page."""
    rest = body.replace(case.uid, "")
    secrets = ["Canary", "KE", "Kenya", "East Africa", "Relocation", "relocation", "EUR"]
    secrets += ["6000", "6,000", "3000", "3,000", "1000", "1,000", "Emergency", "Protection"]
    if case.code:
        secrets.append(case.code)
    for secret in secrets:
        assert secret not in rest, secret


def _first_approval(world, case):
    first = approve_with_recorded_rates(case, world.m1, Decimal(6000), [(world.eur.id, 6000)])
    db.session.commit()
    assert first is None
    assert case.status == ApplicationStatus.AWAITING_SECOND_APPROVAL


def test_a_first_approval_alerts_the_other_managers_who_may_confirm_it(app, world, mailbox):
    """Not the first approver, not a manager with a conflict, not the manager who
    recommended it, not another fund's; once, with a link to the decision and nothing of
    the case."""
    case = _canary_case(world)
    reviews.declare_conflict(case, world.m3)
    db.session.commit()
    _first_approval(world, case)
    assert alerts.send_pending() == 1
    mailbox.wait_for(1)
    _nobody_else(mailbox, world, SECOND, world.m2)
    (body,) = _received(mailbox, world.m2, SECOND)
    _assert_nothing_of(body, case)
    lands(app, world.m2, body, "decision")
    assert alerts.send_pending() == 0, "sent once"


def test_a_manager_who_recommended_the_case_is_not_asked_to_confirm_it(world, mailbox):
    case = world.recommended("Canary Defender", reviewer=world.m3)
    _first_approval(world, case)
    alerts.send_pending()
    mailbox.wait_for(1)
    _nobody_else(mailbox, world, SECOND, world.m2)


def test_a_second_approval_alert_no_longer_waiting_or_for_a_conflicted_manager_is_dropped(
    world, mailbox
):
    """Checked again at sending: m2 confirmed the approval before the alert went out (it
    waits no more), and m3 declared a conflict meanwhile; neither is mailed. Finance then
    hears that the grant may be paid, once each."""
    case = _canary_case(world)
    _first_approval(world, case)
    queued = db.session.execute(
        sa.select(Alert.user_id).where(Alert.kind == AlertKind.SECOND_APPROVAL)
    ).scalars()
    assert sorted(queued) == sorted([world.m2.id, world.m3.id])
    reviews.declare_conflict(case, world.m3)
    grant = approve_with_recorded_rates(case, world.m2, Decimal(6000), [(world.eur.id, 6000)])
    db.session.commit()
    assert grant is not None
    assert alerts.send_pending() == 2
    mailbox.wait_for(2)
    _nobody_else(mailbox, world, SECOND)
    _nobody_else(mailbox, world, APPROVED, world.finance, world.finance2)
    assert (
        db.session.execute(sa.select(Alert).where(Alert.kind == AlertKind.SECOND_APPROVAL)).first()
        is None
    )


def test_the_first_approval_alone_tells_finance_nothing(world, mailbox):
    _first_approval(world, _canary_case(world))
    alerts.send_pending()
    mailbox.wait_for(1)
    _nobody_else(mailbox, world, APPROVED)


def test_an_approved_grant_alerts_the_funds_finance_at_the_payment_form(app, world, mailbox):
    """A grant under the threshold, approved by one manager: each finance officer of the
    fund without a conflict is told once, with a link to the payment form."""
    case = _canary_case(world, "3000")
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=world.finance2.id))
    grant = approve_with_recorded_rates(case, world.m1, Decimal(3000), [(world.eur.id, 3000)])
    db.session.commit()
    assert alerts.send_pending() == 1
    mailbox.wait_for(1)
    _nobody_else(mailbox, world, APPROVED, world.finance)
    (body,) = _received(mailbox, world.finance, APPROVED)
    _assert_nothing_of(body, grant.application)
    lands(app, world.finance, body, "pay")


def _planned(world, kind, **options):
    """An approved 3,000 EUR grant for a canary case, paid in three parts about 30 days
    apart from 50 days ago (two due, the third to come)."""
    case = _canary_case(world, "3000")
    grant = approve_with_recorded_rates(case, world.m1, Decimal(3000), [(world.eur.id, 3000)])
    db.session.commit()
    starts_on = utcnow().date() - timedelta(days=50)
    world.plan(grant, kind=kind, count=3, starts_on=starts_on, interval_days=30, **options)
    return grant


def test_each_instalment_fallen_due_alerts_finance_once(app, world, mailbox):
    """The periodic run tells finance of each unpaid instalment due today or before, once;
    an instalment paid, or not yet due, alerts nobody; running it again sends nothing."""
    grant = _planned(world, "tranches")
    today = utcnow().date()
    dues = [i.due_on for i in grant.plan.instalments]
    assert dues[0] < dues[1] <= today < dues[2]
    pay(world, grant, "1000", "EUR", instalment=1)
    alerts.send_pending()
    mailbox.wait_for(2)
    mailbox.messages.clear()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["hrdfund", "alerts"])
    assert first.exit_code == 0 and "queued 2, sent 2" in first.output, first.output
    mailbox.wait_for(2)
    _nobody_else(mailbox, world, DUE, world.finance, world.finance2)
    (body,) = _received(mailbox, world.finance, DUE)
    _assert_nothing_of(body, grant.application)
    lands(app, world.finance, body, "pay")
    again = runner.invoke(args=["hrdfund", "alerts"])
    assert "queued 0, sent 0" in again.output, again.output
    # The third instalment's day comes: it alerts, the second does not again.
    assert payment_alerts.queue_instalment_alerts(today=dues[2]) == 2
    assert payment_alerts.queue_instalment_alerts(today=dues[2]) == 0
    db.session.commit()


def test_an_instalment_alert_skips_finance_with_a_conflict_and_other_funds(world, mailbox):
    grant = _planned(world, "tranches")
    reviews.declare_conflict(grant.application, world.finance2)
    db.session.commit()
    alerts.send_pending()
    mailbox.wait_for(1)
    mailbox.messages.clear()
    assert payment_alerts.queue_instalment_alerts() == 2  # two due, one officer
    db.session.commit()
    assert alerts.send_pending() == 2
    mailbox.wait_for(2)
    assert len(_received(mailbox, world.finance, DUE)) == 2
    for user in (world.finance2, *world.outsiders, world.m1, world.m2):
        assert _received(mailbox, user, DUE) == []


def test_a_renewal_review_date_alerts_the_managers_once_per_plan_and_date(app, world, mailbox):
    grant = _planned(world, "stipend", renewal_review_on=utcnow().date() - timedelta(days=1))
    reviews.declare_conflict(grant.application, world.m3)
    db.session.commit()
    alerts.send_pending()
    mailbox.wait_for(2)
    mailbox.messages.clear()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["hrdfund", "alerts"])
    assert first.exit_code == 0, first.output
    _nobody_else(mailbox, world, RENEWAL, world.m1, world.m2)
    (body,) = _received(mailbox, world.m2, RENEWAL)
    _assert_nothing_of(body, grant.application)
    lands(app, world.m2, body, "plan")
    again = runner.invoke(args=["hrdfund", "alerts"])
    assert "queued 0, sent 0" in again.output, again.output
    # A new review date is a new alert; a review date still to come is none.
    plan = db.session.get(PaymentPlan, grant.plan.id)
    plan.renewal_review_on = utcnow().date() + timedelta(days=5)
    db.session.commit()
    assert grant_alerts.queue_renewal_alerts() == 0
    assert grant_alerts.queue_renewal_alerts(today=plan.renewal_review_on) == 2
    assert grant_alerts.queue_renewal_alerts(today=plan.renewal_review_on) == 0
    db.session.commit()


def test_a_closed_grant_alerts_nobody_of_its_plan(world, mailbox):
    from hrdfund.grants.plans import close_grant

    grant = _planned(world, "stipend", renewal_review_on=utcnow().date() - timedelta(days=1))
    close_grant(grant, world.m1, "The defender is safe")
    db.session.commit()
    assert payment_alerts.queue_instalment_alerts() == 0
    assert grant_alerts.queue_renewal_alerts() == 0
