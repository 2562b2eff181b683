"""The applicant side hears back: a question, a decision or a payment sends a notice to
the safe contact when it is an email address, through the outbox and a real SMTP server
on 127.0.0.1 (aiosmtpd). The notice carries no case content, and no fund name while
discretion is asked; the account turns notices off and on; several events make one
notice; the list of cases marks what waits for the defender."""

import json
import logging
import re
from datetime import timedelta
from decimal import Decimal
from email import message_from_string
from email.policy import default as email_policy

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from hrdfund.alerts import notices, outbox
from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.audit.models import AuditEvent
from hrdfund.cases import alerts, messages
from hrdfund.cases import notices as case_notices
from hrdfund.cases.models import ApplicationStatus
from hrdfund.cases.states import NEXT_STEPS
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import receipts
from hrdfund.disbursements.models import HeldPayment
from hrdfund.grants import decisions, plans
from tests.conftest import confirm, csrf_token, login, make_case, pay, signed_in
from tests.test_staff_alerts import Mailbox, serving_mail

CONTACT = "defender@mail.example"
SIGN_IN = "https://door.example/login"
FUND = "Quillfeather Defenders Trust"


@pytest.fixture
def mailbox(app):
    """A real SMTP server on 127.0.0.1 the app sends to, with a sender and a sign-in
    address that do not name the fund."""
    yield from serving_mail(
        app,
        Mailbox(),
        NOTICE_MAIL_FROM="Notices <notices@mail.example>",
        SIGN_IN_URL=SIGN_IN,
    )


def notices_queued():
    return (
        db.session.execute(sa.select(Alert).where(Alert.kind == AlertKind.APPLICANT_NEWS))
        .scalars()
        .all()
    )


def _question(world):
    case = world.recommended()
    decisions.request_information(case, world.m1, "Which city?")
    return case


def _staff_message(world):
    case = world.recommended()
    messages.post_message(case, world.m1, "We are reading your case.")
    return case


def _rejection(world):
    case = world.recommended()
    decisions.reject_application(case, world.m1, "Outside what the fund covers.")
    return case


def _approval(world):
    return world.grant("3000").application


def _payment(world):
    grant = world.grant("3000")
    # The approval's notice is out of the way: what follows is the payment's alone.
    db.session.execute(sa.delete(Alert))
    db.session.commit()
    pay(world, grant, "1000", instalment=None)
    return grant.application


EVENTS = {
    "question": _question,
    "staff message": _staff_message,
    "rejection": _rejection,
    "approval": _approval,
    "payment": _payment,
}


@pytest.mark.parametrize("event", list(EVENTS))
@pytest.mark.parametrize(
    ("contact", "on", "expected"),
    [
        (CONTACT, True, 1),
        ("Signal +44 7700 900123", True, 0),
        ("@defender_handle", True, 0),
        ("through my partner organisation", True, 0),
        (CONTACT, False, 0),
    ],
    ids=["email", "signal", "handle", "partner", "turned-off"],
)
def test_each_event_queues_one_notice_to_an_email_contact_only(
    money_world, event, contact, on, expected
):
    applicant = money_world.applicant
    applicant.contact, applicant.notices = contact, on
    db.session.commit()
    case = EVENTS[event](money_world)
    db.session.commit()
    queued = notices_queued()
    assert [(a.user_id, a.application_id) for a in queued] == [(applicant.id, case.id)] * expected


def test_a_payment_held_for_a_second_person_tells_nobody_until_it_is_booked(money_world):
    money_world.applicant.contact = CONTACT
    grant = money_world.grant("3000")
    db.session.execute(sa.delete(Alert))
    db.session.commit()
    # A fee above the fund's bound holds the payment for a second person.
    held = pay(money_world, grant, "1000", instalment=None, fee=Decimal("400.00"))
    assert isinstance(held, HeldPayment)
    assert notices_queued() == []
    confirm(money_world, held)
    assert len(notices_queued()) == 1


def test_a_receipt_problem_sends_the_defender_no_notice(money_world):
    """The defender's own answer is news to finance, not to the defender."""
    money_world.applicant.contact = CONTACT
    money_world.finance.contact = "finance@fund.example"
    grant = money_world.grant("3000")
    payment = pay(money_world, grant, "1000", instalment=None)
    db.session.execute(sa.delete(Alert))
    db.session.commit()
    receipts.answer_receipt(payment, money_world.applicant, "not_received")
    db.session.commit()
    assert notices_queued() == []
    assert [a.kind for a in db.session.execute(sa.select(Alert)).scalars()] == [
        AlertKind.RECEIPT_PROBLEM
    ]


#: Strings put in every field of the cases, their messages and money; none may reach a
#: notice.
CANARIES = {
    "name": "Ozymandiascanary",
    "work": "Workcanary land rights",
    "threat": "Threatcanary militia",
    "urgency": "Urgencycanary tonight",
    "funders": "Otherfundercanary",
    "destination": "Destinationcanary",
    "question": "Questioncanary which border",
    "message": "Messagecanary we read it",
    "reason": "Reasoncanary not covered",
    "reference": "Referencecanary-77",
    "payee": "Payeecanary IBAN",
    "pool": "Poolcanary Emergency",
    "donor": "Donorcanary Foundation",
    # Each case's code begins so.
    "code": "CNRY-26-04",
}
#: The amounts, in every way a message could write them.
AMOUNTS = ("3137", "3,137", "3 137", "137.71", "137,71", "1234", "1,234", "234.56", "234,56")


def _canary_case(world):
    case = world.recommended(name=CANARIES["name"])
    case.defender_work = CANARIES["work"]
    case.threat = CANARIES["threat"]
    case.urgency_reason = CANARIES["urgency"]
    case.other_funders = CANARIES["funders"]
    case.details = {"destination": CANARIES["destination"]}
    case.code = CANARIES["code"] + str(case.id)
    db.session.flush()
    return case


def _read(raw):
    """Every header (name and decoded value) and the decoded body of a received message,
    and the message as it travelled."""
    message = message_from_string(raw, policy=email_policy)
    headers = "\n".join(f"{key}: {value}" for key, value in message.items())
    return message, headers + "\n" + message.get_content() + "\n" + raw


@pytest.mark.parametrize("discreet", [True, False], ids=["discreet", "named"])
def test_no_notice_carries_case_content_nor_the_fund_s_name_when_discreet(
    app, fund, money_world, mailbox, discreet
):
    fund.name = FUND
    money_world.eur.name = CANARIES["pool"]
    money_world.donor.name = CANARIES["donor"]
    applicant = money_world.applicant
    applicant.contact, applicant.notices_discreet = CONTACT, discreet
    db.session.commit()
    sent = 0

    def deliver():
        """Send the outbox for real, then sign the defender in (they read the news)."""
        nonlocal sent
        assert alerts.send_pending() == 1
        sent += 1
        mailbox.wait_for(sent)
        signed_in(app, applicant)

    asked = _canary_case(money_world)
    decisions.request_information(asked, money_world.m1, CANARIES["question"])
    db.session.commit()
    deliver()
    refused = _canary_case(money_world)
    decisions.reject_application(refused, money_world.m1, CANARIES["reason"])
    db.session.commit()
    deliver()
    granted = _canary_case(money_world)
    grant = decisions.approve_with_recorded_rates(
        granted, money_world.m1, Decimal("3137.71"), [(money_world.eur.id, Decimal("3137.71"))]
    )
    db.session.commit()
    deliver()
    messages.post_message(granted, money_world.m1, CANARIES["message"])
    db.session.commit()
    deliver()
    pay(
        money_world,
        grant,
        "1234.56",
        instalment=None,
        reference=CANARIES["reference"],
        payee_details=CANARIES["payee"],
    )
    deliver()

    received = mailbox.to(CONTACT)
    assert len(received) == 5
    secrets = [*CANARIES.values(), *AMOUNTS, applicant.login, "Kenya", "elocation", "EUR"]
    secrets += [case.uid for case in (asked, refused, granted)]
    for raw in received:
        message, text = _read(raw)
        assert message["To"] == CONTACT
        assert re.findall(r"https?://\S+", message.get_content()) == [SIGN_IN]
        for secret in secrets:
            assert secret.casefold() not in text.casefold(), secret
        if discreet:
            assert FUND.casefold() not in text.casefold()
            assert "hrdfund" not in text.casefold()
            assert str(message["From"]) == "notices@mail.example"
        else:
            assert str(message["From"]) == f"{FUND} <notices@mail.example>"
            assert FUND in str(message["Subject"])


@pytest.mark.parametrize("language", ["en", "ar", "ru", "fr", "es", "fa", "pt", "zh", "tr"])
def test_a_discreet_notice_names_no_fund_in_any_language(app, fund, money_world, language):
    """Every catalog's notice: translated, and without the fund's name when discreet."""
    fund.name = FUND
    app.config.update(NOTICE_MAIL_FROM="notices@mail.example", SIGN_IN_URL=SIGN_IN)
    applicant = money_world.applicant
    applicant.contact, applicant.language = CONTACT, language
    case = _question(money_world)
    db.session.commit()
    (alert,) = notices_queued()
    discreet = notices.notice_message(alert, applicant, CONTACT)
    _message, text = _read(discreet.as_string())
    assert FUND.casefold() not in text.casefold()
    assert SIGN_IN in discreet.get_content()
    if language != "en":
        assert "There is news for you" not in text
    applicant.notices_discreet = False
    named = notices.notice_message(alert, applicant, CONTACT)
    assert FUND in named.get_content() and FUND in str(named["Subject"])
    assert case.uid not in text


def test_a_discreet_notice_whose_sender_names_the_fund_waits_until_the_setting_changes(
    app, fund, money_world, mailbox, monkeypatch, caplog
):
    """Held back at every run while the sender names the fund, however many runs (more
    than the refusals that make an outbox give a message up), then sent at the first run
    after the setting is changed: the defender still hears of the news. While held back,
    a run does not even read it (no message is written for it, nothing holds the lock for
    it), and the log says so once a run, not once a notice."""
    fund.name = "Quillfeather"
    app.config["NOTICE_MAIL_FROM"] = "Quillfeather <help@quillfeather.example>"
    money_world.applicant.contact = CONTACT
    _question(money_world)
    db.session.commit()
    written = []
    real = notices.notice_message
    monkeypatch.setattr(notices, "notice_message", lambda *a: written.append(1) or real(*a))
    caplog.set_level(logging.WARNING)
    for _run in range(outbox.MAX_ATTEMPTS + 1):
        assert alerts.send_pending() == 0
    assert written == []
    held = [r for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == outbox.MAX_ATTEMPTS + 1
    (alert,) = notices_queued()
    assert alert.sent_at is None and alert.dropped_at is None and alert.attempts == 0
    assert mailbox.messages == []
    app.config["NOTICE_MAIL_FROM"] = "Help desk <help@desk.example>"
    assert alerts.send_pending() == 1
    (raw,) = mailbox.wait_for(1) and mailbox.to(CONTACT)
    assert "Quillfeather" not in raw
    db.session.expire_all()
    (alert,) = notices_queued()
    assert alert.sent_at is not None


def test_a_notice_whose_own_words_would_name_the_fund_is_given_up_not_read_forever(
    app, fund, money_world, mailbox
):
    """No setting names the fund, but the notice's words would (a fund named like a word
    of it): held back, it counts as refused at each run, and is given up after as many
    as the mail server's refusals, where the outbox page shows it."""
    fund.name = "News"
    money_world.applicant.contact = CONTACT
    _question(money_world)
    db.session.commit()
    assert alerts.held_back_notices() is None
    for run in range(1, outbox.MAX_ATTEMPTS + 2):
        assert alerts.send_pending() == 0
        db.session.expire_all()
        (alert,) = notices_queued()
        assert alert.attempts == min(run, outbox.MAX_ATTEMPTS)
    assert mailbox.messages == []
    assert alerts.fund_outbox(fund.id).given_up_notices == 1


def test_the_notice_is_sent_after_the_response_and_reads_as_news(
    app, client, fund, money_world, mailbox
):
    """Through the pages: a manager asks the question; the response goes out, then the
    notice is handed to the mail server, outside the request."""
    applicant = money_world.applicant
    applicant.contact = CONTACT
    case = money_world.recommended()
    db.session.commit()
    login(client, money_world.m1)
    token = csrf_token(client, f"/applications/{case.uid}")
    response = client.post(
        f"/applications/{case.uid}/question",
        data={"csrf_token": token, "question-question": "Which city?"},
    )
    assert response.status_code == 302
    # The notice goes out when the server closes the response: the test's shared session
    # ends its transaction first, as a real server's request has by then.
    db.session.remove()
    assert mailbox.messages == []
    response.close()
    (raw,) = mailbox.wait_for(1) and mailbox.to(CONTACT)
    message, _text = _read(raw)
    assert str(message["Subject"]) == "There is news for you"
    assert SIGN_IN in message.get_content()
    assert "Which city" not in raw
    (alert,) = notices_queued()
    assert alert.sent_at is not None


def test_events_close_together_make_one_notice_until_the_defender_signs_in(
    app, money_world, mailbox
):
    applicant = money_world.applicant
    applicant.contact = CONTACT
    db.session.commit()
    case = _question(money_world)
    messages.post_message(case, money_world.m1, "And the date?")
    other = _rejection(money_world)
    db.session.commit()
    assert len(notices_queued()) == 1
    assert alerts.send_pending() == 1
    # Sent, not read yet: more news adds no second message.
    messages.post_message(case, money_world.m1, "One more thing.")
    db.session.commit()
    assert len(notices_queued()) == 1
    # Once the defender has signed in, the next news is told again.
    signed_in(app, applicant)
    _staff_message(money_world)
    db.session.commit()
    assert len(notices_queued()) == 2
    assert alerts.send_pending() == 1
    assert len(mailbox.wait_for(2)) == 2
    assert other.status == ApplicationStatus.REJECTED


def test_news_after_a_sign_in_is_told_even_when_the_last_notice_went_out_later(
    app, money_world, mailbox
):
    """The defender signs in between a notice being queued and its leaving (the periodic
    run sends later): the sign-in read that news, so the next news is told."""
    applicant = money_world.applicant
    applicant.contact = CONTACT
    db.session.commit()
    case = _question(money_world)
    db.session.commit()
    assert len(notices_queued()) == 1
    signed_in(app, applicant)
    assert alerts.send_pending() == 1
    messages.post_message(case, money_world.m1, "One more thing.")
    db.session.commit()
    assert len(notices_queued()) == 2


def test_notices_turned_off_after_queueing_never_go(money_world, mailbox):
    applicant = money_world.applicant
    applicant.contact = CONTACT
    _question(money_world)
    db.session.commit()
    assert len(notices_queued()) == 1
    applicant.notices = False
    db.session.commit()
    assert alerts.send_pending() == 0
    assert notices_queued() == [] and mailbox.messages == []


def test_a_referred_case_tells_the_partner_account_that_referred_it(
    fund, make_user, make_partner_org, mailbox
):
    org = make_partner_org("Canary Org")
    referrer = make_user("partner", contact="desk@mail.example", partner_organisation_id=org.id)
    colleague = make_user("partner", contact="team@mail.example", partner_organisation_id=org.id)
    manager = make_user("manager")
    case = make_case(
        fund,
        partner_organisation_id=org.id,
        submitted_by_id=referrer.id,
        status=ApplicationStatus.IN_REVIEW,
    )
    decisions.request_information(case, manager, "Which city?")
    db.session.commit()
    assert [a.user_id for a in notices_queued()] == [referrer.id]
    assert alerts.send_pending() == 1
    assert mailbox.wait_for(1) and mailbox.to("desk@mail.example")
    # Once the referring account is closed, the organisation's other accounts hear.
    referrer.active = False
    db.session.commit()
    assert case_notices.notified_accounts(case) == [colleague]


def _notice_audits():
    return [
        json.loads(e.payload)
        for e in db.session.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "auth.notice_settings")
            .order_by(AuditEvent.id)
        ).scalars()
    ]


def _save(client, **fields):
    token = csrf_token(client, "/account")
    data = {"csrf_token": token, **{k: v for k, v in fields.items() if v is not False}}
    return client.post("/account/notices", data=data)


def test_the_defender_turns_notices_off_and_on_from_the_account_page(client, make_user):
    applicant = make_user("applicant", contact=CONTACT)
    login(client, applicant)
    page = client.get("/account").get_data(as_text=True)
    assert "Notices are on: they go to your email address." in page
    assert "not yet supported" in page
    _save(client, contact=CONTACT, notices=False, discreet="y")
    assert "Notices are off" in client.get("/account").get_data(as_text=True)
    _save(client, contact=CONTACT, notices="y", discreet="y")
    # A form that changes nothing records nothing.
    _save(client, contact=CONTACT, notices="y", discreet="y")
    _save(client, contact=CONTACT, notices="y", discreet=False)
    db.session.refresh(applicant)
    assert applicant.notices and not applicant.notices_discreet
    assert _notice_audits() == [
        {"contact_changed": False, "discreet": True, "notices": False},
        {"contact_changed": False, "discreet": True, "notices": True},
        {"contact_changed": False, "discreet": False, "notices": True},
    ]
    _save(client, contact="Signal +44 7700 900123", notices="y", discreet="y")
    page = client.get("/account").get_data(as_text=True)
    assert "Your safe contact is not an email address: no notice can reach it yet." in page
    assert _notice_audits()[-1]["contact_changed"] is True
    assert "7700" not in json.dumps(_notice_audits())


def test_a_new_account_asks_for_discretion_and_staff_have_no_notice_settings(client, make_user):
    applicant = make_user("applicant")
    assert applicant.notices and applicant.notices_discreet
    reviewer = make_user("reviewer", contact="rev@fund.example")
    login(client, reviewer)
    assert 'id="safe-contact"' not in client.get("/account").get_data(as_text=True)
    token = csrf_token(client, "/account")
    response = client.post("/account/notices", data={"csrf_token": token, "contact": "x"})
    assert response.status_code == 404


def _row(html, uid):
    """The list's row of the case ``uid``."""
    return re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{uid}.*?</tr>", html, re.S).group(0)


QUESTION_WAITS = "The fund asked you a question: please answer it."
PAYMENT_WAITS = "A payment was sent: please say whether it arrived."


def test_the_applicant_s_home_marks_in_words_the_cases_waiting_for_them(app, fund, money_world):
    applicant = money_world.applicant
    asked = make_case(fund, applicant_id=applicant.id, status=ApplicationStatus.INFO_REQUESTED)
    quiet = make_case(fund, applicant_id=applicant.id, status=ApplicationStatus.IN_REVIEW)
    grant = money_world.grant("3000")
    payment = pay(money_world, grant, "1000", instalment=None)
    client = signed_in(app, applicant)
    html = client.get("/my").get_data(as_text=True)
    assert "2 cases wait for you" in html
    assert QUESTION_WAITS in _row(html, asked.uid) and PAYMENT_WAITS not in _row(html, asked.uid)
    assert PAYMENT_WAITS in _row(html, grant.application.uid)
    assert QUESTION_WAITS not in _row(html, quiet.uid) and "Nothing" in _row(html, quiet.uid)
    # The cases waiting come first (the question asked of an older case above a newer one
    # where nothing waits), each group newest first.
    order = [grant.application.uid, asked.uid, quiet.uid]
    assert sorted(order, key=html.index) == order
    # Once the payment is confirmed, and the question answered, nothing waits.
    receipts.answer_receipt(payment, applicant, "received")
    messages.post_message(asked, applicant, "Here is the answer.")
    db.session.commit()
    html = client.get("/my").get_data(as_text=True)
    assert QUESTION_WAITS not in html and PAYMENT_WAITS not in html
    assert "Nothing waits for you at the moment." in html
    order = [grant.application.uid, quiet.uid, asked.uid]
    assert sorted(order, key=html.index) == order


def test_a_payment_waits_while_its_grant_runs_or_for_90_days_after_it_was_made(app, money_world):
    """A payment never answered no longer marks a case closed long ago as waiting (a
    partner's list counted cases completed two years before); while the grant runs, or in
    the 90 days after the payment, it still does, and the case page still takes the answer."""
    world, today = money_world, utcnow().date()
    running = world.grant("900", name="Still Running")
    pay(world, running, "300", instalment=None, paid_on=today - timedelta(days=400))
    recent = world.grant("900", name="Closed Lately")
    pay(world, recent, "300", instalment=None, paid_on=today - timedelta(days=89))
    old = world.grant("900", name="Closed Long Ago")
    old_payment = pay(world, old, "300", instalment=None, paid_on=today - timedelta(days=91))
    for grant in (recent, old):
        plans.close_grant(grant, world.m1, "Safe again")
    db.session.commit()
    html = signed_in(app, world.applicant).get("/my").get_data(as_text=True)
    assert "2 cases wait for you" in html
    for grant in (running, recent):
        assert PAYMENT_WAITS in _row(html, grant.application.uid)
    assert PAYMENT_WAITS not in _row(html, old.application.uid)
    page = signed_in(app, world.applicant).get(f"/applications/{old.application.uid}")
    assert f'action="/payments/{old_payment.uid}/receipt"' in page.get_data(as_text=True)


def test_a_partner_s_list_marks_the_referred_cases_waiting_for_it(
    app, fund, make_user, make_partner_org
):
    org = make_partner_org("Canary Org")
    partner = make_user("partner", partner_organisation_id=org.id)
    asked = make_case(
        fund,
        partner_organisation_id=org.id,
        submitted_by_id=partner.id,
        status=ApplicationStatus.INFO_REQUESTED,
    )
    html = signed_in(app, partner).get("/referrals").get_data(as_text=True)
    assert "1 case waits for you" in html
    assert QUESTION_WAITS in _row(html, asked.uid)


def test_the_outbox_reads_only_an_email_address_as_one(app):
    for contact in ("a@b.example", " a@b.example "):
        assert notices.email_address(contact) == "a@b.example"
    for contact in (
        "@handle",
        "Signal +44 7700",
        "a@b",
        "a,b@c.example",
        "A <a@b.example>",
        "a@b.example\nBcc: x@y.example",
        "x" * 250 + "@b.example",
        None,
    ):
        assert notices.email_address(contact) is None


DRAFT_WAITS = "Fill in the missing answers, then send the application."


def test_a_draft_waits_for_the_applicant_side_to_finish_and_send_it(app, fund, make_user):
    """A draft is marked in words as waiting for its applicant, in their language, and no
    longer once it is sent."""
    applicant = make_user("applicant")
    draft = make_case(fund, applicant_id=applicant.id, status=ApplicationStatus.DRAFT)
    client = signed_in(app, applicant)
    html = client.get("/my").get_data(as_text=True)
    assert "1 case waits for you" in html
    assert DRAFT_WAITS in _row(html, draft.uid) and "Nothing" not in _row(html, draft.uid)
    applicant.language = "fr"
    db.session.commit()
    html = client.get("/my").get_data(as_text=True)
    with force_locale("fr"):
        assert str(NEXT_STEPS[ApplicationStatus.DRAFT]) in _row(html, draft.uid)
    assert DRAFT_WAITS not in html
    draft.status = ApplicationStatus.SUBMITTED
    applicant.language = "en"
    db.session.commit()
    html = client.get("/my").get_data(as_text=True)
    assert "Nothing waits for you at the moment." in html
