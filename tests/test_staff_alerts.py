"""Staff alerts sent through a real SMTP server on 127.0.0.1 (aiosmtpd): who gets them,
that they carry no case details, that nothing is lost when the server is down, and that
the cron command alerts once per target."""

import re
import socket
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from hrdfund.alerts import outbox
from hrdfund.alerts.models import Alert
from hrdfund.cases import alerts, messages, services
from hrdfund.cases.models import ApplicationStatus, Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.reviews import services as reviews
from tests.conftest import login, make_case


class Mailbox:
    """Keeps every message the server accepted."""

    def __init__(self):
        self.messages = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        with self.arrived:
            self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count, seconds=5):
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=seconds)
        return self.messages

    def to(self, address):
        return [body for rcpts, body in self.messages if address in rcpts]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving_mail(app, box, **settings):
    """Serve ``box`` on 127.0.0.1 as ``app``'s mail server (with ``settings`` beside it)
    until the generator is closed: ``yield from`` it in a fixture."""
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    app.config.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=controller.port,
        SMTP_SECURITY="none",
        BASE_URL="https://fund.example",
        **settings,
    )
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mailbox(app):
    yield from serving_mail(app, Mailbox())


@pytest.fixture
def team(make_user):
    return {
        "duty": make_user("reviewer", contact="duty@fund.example", on_duty=True),
        "reviewer": make_user("reviewer", contact="rev@fund.example"),
        "manager": make_user("manager", contact="boss@fund.example"),
        "applicant": make_user("applicant"),
    }


def lands(app, user, body, anchor):
    """The alert's link is the case page at ``anchor``, and there ``user`` finds that part."""
    (link,) = re.findall(r"https://fund\.example(\S+)", body)
    path, _, fragment = link.partition("#")
    assert fragment == anchor
    client = app.test_client()
    login(client, user)
    page = client.get(path)
    assert page.status_code == 200
    assert f'id="{anchor}"' in page.get_data(as_text=True)


def _draft(fund, team, urgent=True):
    application = services.start_application(team["applicant"], Category.MEDICAL, fund)
    services.save_draft(
        application,
        {
            "defender_name": "Canary Defender",
            "country": "KE",
            "urgency": "urgent" if urgent else "normal",
            "urgency_reason": "Canary wounds",
            "defender_work": "Canary land rights",
            "threat": "Canary attack",
            "currency": "EUR",
            "details": {"provider": "Canary clinic", "treatment": "x", "link_to_threat": "y"},
            "budget": [{"description": "Canary surgery", "amount": Decimal("4321.00")}],
            "references": [{"name": "A", "contact": "a"}, {"name": "B", "contact": "b"}],
        },
        team["applicant"],
    )
    db.session.commit()
    return application


def test_an_urgent_case_reaches_the_staff_on_duty_without_details(fund, team, mailbox):
    case = _draft(fund, team)
    services.submit_application(case, team["applicant"])
    db.session.commit()
    assert alerts.send_pending() == 1
    (body,) = mailbox.wait_for(1) and mailbox.to("duty@fund.example")
    assert f"https://fund.example/applications/{case.uid}" in body
    assert "urgent case waits" in body
    # The case's random address may hold any run of digits; the rest of the message may not.
    rest = body.replace(case.uid, "")
    for secret in ("Canary", "KE", "Kenya", "4321", "4,321", "Medical", "medical", "EUR"):
        assert secret not in rest, secret
    assert mailbox.to("rev@fund.example") == [] and mailbox.to("boss@fund.example") == []


def test_a_normal_case_sends_nothing(fund, team, mailbox):
    case = _draft(fund, team, urgent=False)
    services.submit_application(case, team["applicant"])
    db.session.commit()
    assert alerts.send_pending() == 0
    assert mailbox.messages == []


def test_an_answer_alerts_the_reviewer_on_the_case_never_a_conflicted_one(
    app, fund, team, mailbox, make_user
):
    case = _draft(fund, team, urgent=False)
    services.submit_application(case, team["applicant"])
    reviews.assign_reviewer(case, team["reviewer"], team["reviewer"])
    messages.post_message(case, team["reviewer"], "Which clinic?")
    messages.post_message(case, team["applicant"], "The one near the market.")
    db.session.commit()
    alerts.send_pending()
    mailbox.wait_for(1)
    (body,) = mailbox.to("rev@fund.example")
    lands(app, team["reviewer"], body, "thread")
    assert mailbox.to("duty@fund.example") == []
    # The reviewer declares a conflict: the next answer goes to the staff on duty instead.
    reviews.declare_conflict(case, team["reviewer"])
    messages.post_message(case, team["applicant"], "One more thing.")
    db.session.commit()
    alerts.send_pending()
    mailbox.wait_for(2)
    assert len(mailbox.to("rev@fund.example")) == 1
    assert len(mailbox.to("duty@fund.example")) == 1


def test_an_alert_waiting_for_someone_who_left_the_case_never_goes(
    fund, team, mailbox, runner, make_fund
):
    """The outbox is checked at sending: an alert queued before its recipient declared a
    conflict on the case, or moved to another fund, is dropped, not sent."""
    case = _draft(fund, team)
    services.submit_application(case, team["applicant"])
    db.session.commit()
    queued = db.session.execute(sa.select(Alert)).scalars().all()
    assert [a.user_id for a in queued] == [team["duty"].id]
    reviews.declare_conflict(case, team["duty"])
    db.session.commit()
    moved = _draft(fund, team)
    services.submit_application(moved, team["applicant"])
    db.session.commit()
    assert [a.user_id for a in db.session.execute(sa.select(Alert)).scalars()][-1] == (
        team["duty"].id
    )
    team["duty"].fund_id = make_fund("Another Fund").id
    db.session.commit()
    result = runner.invoke(args=["hrdfund", "alerts"])
    assert result.exit_code == 0, result.output
    assert "sent 0" in result.output
    assert mailbox.messages == []
    assert db.session.execute(sa.select(Alert)).first() is None


def test_with_nobody_on_duty_the_managers_are_alerted(fund, team, mailbox):
    team["duty"].on_duty = False
    db.session.commit()
    case = _draft(fund, team)
    services.submit_application(case, team["applicant"])
    db.session.commit()
    alerts.send_pending()
    mailbox.wait_for(1)
    assert len(mailbox.to("boss@fund.example")) == 1
    assert mailbox.to("duty@fund.example") == [] and mailbox.to("rev@fund.example") == []


def _due_case(fund, hours_left, **fields):
    now = utcnow()
    values = {
        "category": Category.LEGAL,
        "urgency": Urgency.URGENT,
        "submitted_at": now - timedelta(hours=20),
        "response_due_at": now + timedelta(hours=hours_left),
        "decision_due_at": now + timedelta(hours=48),
    }
    return make_case(fund, **{**values, **fields})


def test_the_cron_command_alerts_once_per_target(app, fund, team, mailbox):
    soon = _due_case(fund, 2)
    _due_case(fund, 30)
    _due_case(fund, 1, clock_paused_at=utcnow(), status=ApplicationStatus.INFO_REQUESTED)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["hrdfund", "alerts"])
    assert first.exit_code == 0 and "queued 1, sent 1" in first.output
    (body,) = mailbox.wait_for(1) and mailbox.to("duty@fund.example")
    assert f"/applications/{soon.uid}" in body and "close to its target" in body
    again = runner.invoke(args=["hrdfund", "alerts"])
    assert "queued 0, sent 0" in again.output
    assert len(mailbox.messages) == 1


def test_nothing_is_lost_while_the_mail_server_is_down(app, fund, team, mailbox):
    up = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = _free_port()  # nobody listens there
    case = _draft(fund, team)
    services.submit_application(case, team["applicant"])
    db.session.commit()
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        down = app.test_cli_runner().invoke(args=["hrdfund", "alerts"])
        # The operator sees the failure, and the alert waits however long it lasts.
        assert down.exit_code == 1 and "could not be reached" in down.output
    alert = db.session.execute(sa.select(Alert)).scalar_one()
    assert alert.sent_at is None and alert.attempts == 0
    app.config["SMTP_PORT"] = up
    later = app.test_cli_runner().invoke(args=["hrdfund", "alerts"])
    assert "sent 1" in later.output
    assert len(mailbox.wait_for(1)) == 1


def test_an_answer_posted_through_the_page_is_mailed_after_the_response(
    client, fund, team, mailbox
):
    case = _draft(fund, team, urgent=False)
    services.submit_application(case, team["applicant"])
    reviews.assign_reviewer(case, team["reviewer"], team["reviewer"])
    db.session.commit()
    login(client, team["applicant"])
    response = client.post(f"/applications/{case.uid}", data={"body": "Here is my answer"})
    assert response.status_code == 302
    # The mail goes out when the server closes the response, after the page was sent. A
    # real server has ended the request's transaction by then; the test's shared session
    # must end its own too, or SQLite's write lock would wait for it.
    db.session.remove()
    response.close()
    mailbox.wait_for(1)
    assert len(mailbox.to("rev@fund.example")) == 1
    assert db.session.execute(sa.select(Alert.sent_at)).scalar_one() is not None


def test_a_held_payment_mails_those_who_may_confirm_it_and_nothing_of_it(
    app, fund, make_user, make_donor, mailbox
):
    """Finance enters a payment at a made-up rate: the other finance officer and the
    managers are mailed a link, never the one who entered it, never the figures."""
    from .conftest import MoneyWorld, pay

    world = MoneyWorld(fund, make_user, make_donor)
    make_user("finance", contact="second@fund.example")
    for user, address in ((world.finance, "first@fund.example"), (world.m1, "m1@fund.example")):
        user.contact = address
    db.session.commit()
    grant = world.grant("1200", pool=world.eur, currency="USD")
    # The approval told both finance officers the grant may be paid; the hold comes next.
    assert alerts.send_pending() == 2
    mailbox.wait_for(2)
    mailbox.messages.clear()
    pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="x",
        rate_reason="Canary reason",
        payee_details="Canary payee",
    )
    assert alerts.send_pending() == 2  # world.m2 has no address: it waits in the outbox
    mailbox.wait_for(2)
    assert mailbox.to("first@fund.example") == []
    for address in ("second@fund.example", "m1@fund.example"):
        (body,) = mailbox.to(address)
        assert "waits for a second person" in body
        assert f"https://fund.example/applications/{grant.application.uid}" in body
        rest = body.replace(grant.application.uid, "")
        for secret in ("Canary", "1,200", "1200.00", "USD", "10,909", "10909"):
            assert secret not in rest, secret
    lands(app, world.m1, mailbox.to("m1@fund.example")[0], "held")
