"""The payee side says whether each payment arrived: "I received it", "I received less"
(with the amount, in the payment's currency) or "I did not receive it", with a short note.
Every answer is kept and dated, the latest stands; the last two go on finance's follow-up
list at once, with the difference, and alert finance; finance records how each was
resolved. Only the case's applicant or its partner answers, only for payments of the case
that stand; the note never reaches another role's list nor a donor's output."""

import html
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases import alerts
from hrdfund.cases.models import ConflictDeclaration
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import followup, panels, problems, receipts
from hrdfund.disbursements import services as payments
from hrdfund.ledger.models import ReceiptAnswer, ReceiptAnswerKind, ReceiptResolution
from hrdfund.reports.csv_export import render_csv
from hrdfund.reports.data import build_report
from hrdfund.reports.pdf import render_pdf
from hrdfund.reports.periods import parse_period
from tests.conftest import MoneyWorld, audit_actions, count_rows, pay, refused_page, signed_in
from tests.test_staff_alerts import Mailbox, _free_port, lands

NOTE = "NOTE-CANARY-5K2 the agent kept part of it"


@pytest.fixture
def world(fund, make_user, make_donor, make_partner_org, make_fund):
    """The money world with a partner organisation's case and its partner, a second
    finance officer, another applicant, another partner, and finance of another fund."""
    world = MoneyWorld(fund, make_user, make_donor)
    # Finance's alert addresses: an alert is queued only for staff it can reach.
    world.finance.contact = "finance1@fund.example"
    world.finance2 = make_user("finance", contact="finance2@fund.example")
    world.other_applicant = make_user("applicant")
    org = make_partner_org("Kisumu Defenders Network")
    world.partner = make_user("partner", partner_organisation_id=org.id)
    world.other_partner = make_user("partner")
    other = make_fund("Other Fund")
    world.outsider = make_user("finance", fund_id=other.id, contact="outsider@fund.example")
    return world


@pytest.fixture
def paid(world):
    """A payment of 1000 EUR to the world's applicant."""
    grant = world.grant("2000", pool=world.eur)
    return pay(world, grant, "1000", instalment=None, reference="TRF-R1")


def _answer_page(payment):
    return f"/applications/{payment.grant.application.uid}#payment-{payment.uid}"


def _post(client, payment, answer, amount="", currency=None, note=""):
    return client.post(
        f"/payments/{payment.uid}/receipt",
        data={
            "answer": answer,
            "amount": amount,
            "currency": currency or payment.currency_paid,
            "note": note,
        },
    )


def _answers(payment):
    return (
        db.session.execute(
            sa.select(ReceiptAnswer)
            .where(ReceiptAnswer.disbursement_id == payment.id)
            .order_by(ReceiptAnswer.id)
        )
        .scalars()
        .all()
    )


def _alerted(kind=AlertKind.RECEIPT_PROBLEM):
    return sorted(
        db.session.execute(sa.select(Alert.user_id).where(Alert.kind == kind)).scalars().all()
    )


def test_each_answer_is_kept_dated_and_the_latest_stands(app, world, paid):
    """Received, then not received, then received less: three rows, each dated and
    audited, none lost; the applicant's page shows the one that stands and the earlier."""
    client = signed_in(app, world.applicant)
    page = client.get(f"/applications/{paid.grant.application.uid}").get_data(as_text=True)
    for button in ("I received it", "I received less", "I did not receive it"):
        assert f">{button}</button>" in page
    assert "<script" not in page

    response = _post(client, paid, "received")
    assert response.status_code == 302 and response.location.endswith(f"#payment-{paid.uid}")
    response = _post(client, paid, "not_received", note=NOTE)
    assert response.status_code == 302
    response = _post(client, paid, "less", amount="800.50")
    assert response.status_code == 302

    db.session.expire_all()
    answers = _answers(paid)
    assert [a.answer for a in answers] == [
        ReceiptAnswerKind.RECEIVED,
        ReceiptAnswerKind.NOT_RECEIVED,
        ReceiptAnswerKind.LESS,
    ]
    assert [a.amount_received for a in answers] == [None, None, Decimal("800.50")]
    assert answers[2].currency_received == "EUR"
    assert answers[1].note == NOTE
    assert all(
        a.answered_at is not None and a.answered_by_id == world.applicant.id for a in answers
    )
    assert answers[0].answered_at <= answers[1].answered_at <= answers[2].answered_at
    assert audit_actions().count("payment.receipt_answered") == 3
    assert receipts.latest_answer(paid).id == answers[2].id

    shown = client.get(f"/applications/{paid.grant.application.uid}").get_data(as_text=True)
    assert "received less, €800.50" in shown or "received less, 800.50" in shown
    assert "Earlier answers" in shown and "not received" in shown
    assert "Change your answer" in shown


def test_the_same_answer_twice_is_said_once(app, world, paid):
    client = signed_in(app, world.applicant)
    _post(client, paid, "received")
    shown = refused_page(client, _post(client, paid, "received"), _answer_page(paid))
    assert "This is already your answer for this payment." in shown.get_data(as_text=True)
    assert len(_answers(paid)) == 1


@pytest.mark.parametrize(
    "answer, amount, missing",
    [("less", "920.00", "80.00"), ("not_received", "", "1,000.00")],
    ids=["less", "not-received"],
)
def test_a_short_or_missing_payment_is_on_follow_up_at_once_and_alerts_finance(
    app, world, paid, answer, amount, missing
):
    """At once, with no periodic run: the follow-up list shows who reported what and
    when, and the difference in the payment's currency; each finance officer of the fund
    without a conflict is alerted, once, and nobody else."""
    db.session.add(
        ConflictDeclaration(application_id=paid.grant.application.id, user_id=world.finance2.id)
    )
    db.session.commit()
    assert followup.mismatches(world.finance) == []
    _post(signed_in(app, world.applicant), paid, answer, amount=amount, note=NOTE)

    (listed,) = followup.mismatches(world.finance)
    assert listed.by_payee and listed.payment.id == paid.id
    assert listed.answer.missing == Decimal(missing.replace(",", ""))
    assert followup.mismatches(world.finance, count=True) == 1
    assert _alerted() == [world.finance.id]

    page = signed_in(app, world.finance).get("/payments/follow-up").get_data(as_text=True)
    row = page[page.index(f'id="answer-{listed.answer.uid}"') :]
    row = row[: row.index("</tr>")]
    assert "TRF-R1" in row and "the applicant" in row and NOTE in row
    assert missing in row
    assert listed.answer.answered_at.strftime("%Y-%m-%d %H:%M") in row
    assert ("received short" if answer == "less" else "not received") in row
    # A manager sees the list, not the form that resolves.
    manager_page = signed_in(app, world.m1).get("/payments/follow-up").get_data(as_text=True)
    assert "TRF-R1" in manager_page and "Record how it was resolved" not in manager_page
    # The staff case page says what the payee side reported.
    case = signed_in(app, world.finance).get(f"/applications/{paid.grant.application.uid}")
    assert "by the payee side on" in case.get_data(as_text=True)


def test_a_partner_answers_for_the_case_it_referred(app, world):
    grant = world.grant("2000", pool=world.eur)
    grant.application.partner_organisation_id = world.partner.partner_organisation_id
    db.session.commit()
    payment = pay(world, grant, "1000", instalment=None, reference="TRF-P")
    partner = signed_in(app, world.partner)
    # The partner is asked of the defender, not of itself.
    asked = partner.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "Did this payment reach the defender?" in asked
    assert "Did this payment reach you?" not in asked
    response = _post(partner, payment, "not_received")
    assert response.status_code == 302
    (answer,) = _answers(payment)
    assert answer.answered_by_id == world.partner.id
    page = signed_in(app, world.finance).get("/payments/follow-up").get_data(as_text=True)
    assert "the referring partner" in page


def test_an_answer_that_it_arrived_after_all_takes_the_report_off_the_list(app, world, paid):
    client = signed_in(app, world.applicant)
    _post(client, paid, "not_received")
    assert len(followup.mismatches(world.finance)) == 1
    _post(client, paid, "received")
    assert followup.mismatches(world.finance) == []
    assert len(_answers(paid)) == 2


def test_finance_resolves_a_report_with_an_audit_entry(app, world, paid):
    _post(signed_in(app, world.applicant), paid, "less", amount="900")
    (listed,) = followup.mismatches(world.finance)
    client = signed_in(app, world.finance)
    url = f"/payments/answers/{listed.answer.uid}/resolve"

    # A reversal or a correcting payment is recorded first: saying so before is refused.
    for outcome, words in (
        ("reversed", "record the reversal on the case page first"),
        ("corrected", "record the correcting payment on the case page first"),
    ):
        response = client.post(url, data={"resolve-outcome": outcome})
        shown = refused_page(client, response).get_data(as_text=True)
        assert words in shown
    assert count_rows(ReceiptResolution) == 0

    # The correcting payment is a new ledger row; the first payment is not touched.
    before = (paid.amount_paid, paid.seal)
    pay(world, paid.grant, "100", instalment=None, reference="TRF-R2")
    response = client.post(
        url, data={"resolve-outcome": "corrected", "resolve-note": "Sent the 100 missing"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    (resolution,) = db.session.execute(sa.select(ReceiptResolution)).scalars().all()
    assert resolution.outcome.value == "corrected" and resolution.resolved_by_id == world.finance.id
    assert resolution.note == "Sent the 100 missing"
    assert (paid.amount_paid, paid.seal) == before
    assert "payment.receipt_problem_resolved" in audit_actions()
    assert followup.mismatches(world.finance) == []
    # Once only.
    shown = refused_page(client, client.post(url, data={"resolve-outcome": "traced"}))
    assert "This report was resolved already." in shown.get_data(as_text=True)
    assert count_rows(ReceiptResolution) == 1


def test_a_reversal_resolves_a_payment_that_never_arrived(app, world, paid):
    """Nothing arrived: only a payment reversed in full is resolved as reversed; a part
    taken back (a cent, or most of it) leaves the report waiting, saying what is left."""
    _post(signed_in(app, world.applicant), paid, "not_received")
    (listed,) = followup.mismatches(world.finance)
    client = signed_in(app, world.finance)
    url = f"/payments/answers/{listed.answer.uid}/resolve"
    payments.reverse_disbursement(paid, world.finance, "A cent came back", amount=Decimal("0.01"))
    db.session.commit()
    shown = refused_page(client, client.post(url, data={"resolve-outcome": "reversed"}))
    assert "€999.99 of this payment is not reversed: reverse the rest" in shown.get_data(
        as_text=True
    )
    assert count_rows(ReceiptResolution) == 0
    payments.reverse_disbursement(paid, world.finance, "Never arrived")
    db.session.commit()
    # Reversed, the report waits until finance says so.
    assert len(followup.mismatches(world.finance)) == 1
    response = client.post(url, data={"resolve-outcome": "reversed"})
    assert response.status_code == 302
    assert followup.mismatches(world.finance) == []


def test_a_newer_answer_is_resolved_not_an_older_one(app, world, paid):
    client = signed_in(app, world.applicant)
    _post(client, paid, "not_received")
    first = _answers(paid)[0]
    _post(client, paid, "less", amount="500")
    with pytest.raises(problems.ResolutionError, match="answered again"):
        problems.resolve_receipt_problem(first, world.finance, "contacted")
    # Each report raised its own alert, for each finance officer of the fund.
    assert _alerted() == sorted([world.finance.id, world.finance2.id] * 2)


@pytest.mark.parametrize(
    "amount, error",
    [
        ("100.005", "may mean thousands"),
        ("0", "above zero"),
        ("-5", "above zero"),
        ("1000.00", "must be less than the amount sent"),
        ("1500", "must be less than the amount sent"),
        ("", "Enter the amount you received."),
        ("12abc", None),
    ],
    ids=["three-places", "zero", "negative", "all-of-it", "more-than-sent", "empty", "text"],
)
def test_the_amount_received_is_checked_once_and_nothing_is_kept(app, world, paid, amount, error):
    client = signed_in(app, world.applicant)
    response = _post(client, paid, "less", amount=amount)
    shown = refused_page(client, response, _answer_page(paid)).get_data(as_text=True)
    assert 'class="errors"' in shown or 'class="error-summary"' in shown
    if error:
        assert error in shown
    assert f'value="{amount}"' in shown or not amount  # what was typed comes back
    assert _answers(paid) == [] and _alerted() == []


def test_the_amount_is_in_the_payments_currency(app, world, paid):
    client = signed_in(app, world.applicant)
    shown = refused_page(client, _post(client, paid, "less", amount="500", currency="USD"))
    assert "Enter the amount in EUR" in shown.get_data(as_text=True)
    assert _answers(paid) == []
    _post(client, paid, "less", amount="999.99")
    (answer,) = _answers(paid)
    assert answer.amount_received == Decimal("999.99") and answer.currency_received == "EUR"


def test_an_answer_not_offered_is_refused_in_words(app, world, paid):
    client = signed_in(app, world.applicant)
    for bogus in ("lost", "", "RECEIVED"):
        shown = refused_page(client, _post(client, paid, bogus))
        assert "Choose one of the answers offered." in shown.get_data(as_text=True)
    assert _answers(paid) == []


@pytest.mark.parametrize("role", ["finance", "manager", "reviewer", "admin", "donor"])
def test_staff_and_donors_cannot_answer(app, world, paid, make_user, role):
    user = world.finance if role == "finance" else make_user(role)
    assert _post(signed_in(app, user), paid, "not_received").status_code == 403
    assert _answers(paid) == []


def test_another_applicant_or_partner_cannot_answer(app, world, paid):
    for user in (world.other_applicant, world.partner, world.other_partner):
        assert _post(signed_in(app, user), paid, "not_received").status_code == 404
    assert _answers(paid) == [] and _alerted() == []


def test_the_service_itself_takes_answers_only_from_the_payee_side_of_a_kept_case(app, world, paid):
    """Whatever view calls it: staff and another applicant are refused, and once the case
    is purged its own applicant is too, with nothing kept and no alert."""
    for outsider in (world.finance, world.other_applicant, world.other_partner):
        with pytest.raises(receipts.ReceiptError, match="Only the applicant"):
            receipts.answer_receipt(paid, outsider, "not_received")
    receipts.answer_receipt(paid, world.applicant, "received")
    db.session.commit()
    paid.grant.application.purged_at = utcnow()
    db.session.commit()
    with pytest.raises(receipts.ReceiptError, match="Only the applicant"):
        receipts.answer_receipt(paid, world.applicant, "not_received")
    db.session.rollback()
    assert [a.answer for a in _answers(paid)] == [ReceiptAnswerKind.RECEIVED]
    assert _alerted() == []


def test_only_payments_that_exist_and_stand_are_answered(app, world, paid):
    client = signed_in(app, world.applicant)
    assert client.post("/payments/nosuchpayment0000/receipt", data={}).status_code == 404
    reversal = payments.reverse_disbursement(paid, world.finance, "Bounced")
    db.session.commit()
    # The reversal row is not a payment to anyone.
    assert _post(client, reversal, "received").status_code == 404
    # The reversed payment is refused in words, and its page no longer offers it.
    shown = refused_page(client, _post(client, paid, "not_received")).get_data(as_text=True)
    assert "This payment was cancelled" in shown
    assert f"payment-{paid.uid}" not in shown
    assert _answers(paid) == []


def test_only_finance_of_the_case_resolves(app, world, paid):
    _post(signed_in(app, world.applicant), paid, "not_received")
    (listed,) = followup.mismatches(world.finance)
    url = f"/payments/answers/{listed.answer.uid}/resolve"
    data = {"resolve-outcome": "contacted"}
    for user in (world.m1, world.applicant, world.reviewer):
        assert signed_in(app, user).post(url, data=data).status_code == 403
    assert signed_in(app, world.outsider).post(url, data=data).status_code == 404
    assert (
        signed_in(app, world.finance)
        .post("/payments/answers/nosuchanswer00000/resolve", data=data)
        .status_code
        == 404
    )
    shown = refused_page(
        signed_in(app, world.finance),
        signed_in(app, world.finance).post(url, data={"resolve-outcome": "vanished"}),
    )
    assert shown.status_code == 200
    assert count_rows(ReceiptResolution) == 0
    assert followup.mismatches(world.outsider) == []


def test_the_note_is_encrypted_and_never_in_a_donor_output_or_an_export(app, world, paid):
    _post(signed_in(app, world.applicant), paid, "less", amount="700", note=NOTE)
    stored = db.session.execute(sa.text("SELECT note FROM receipt_answers")).scalar_one()
    assert NOTE.encode() not in bytes(stored)
    with app.test_request_context():
        report = build_report(world.eur, parse_period("2026"))
        body = render_pdf(report)
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
        for output in (text, render_csv(report), body.decode("latin-1")):
            assert "NOTE-CANARY" not in output
    donor = signed_in(app, world.make_user("donor", donor_id=world.donor.id))
    for path in ("/", f"/pools/{world.eur.uid}"):
        assert "NOTE-CANARY" not in donor.get(path).get_data(as_text=True)
    export = signed_in(app, world.finance).get("/payments/follow-up.csv")
    assert export.status_code == 200
    csv_text = export.get_data(as_text=True)
    assert "TRF-R1" in csv_text and "NOTE-CANARY" not in csv_text
    assert "received short, by the payee" in csv_text


def test_finances_alert_goes_out_with_nothing_of_the_case(app, world, paid):
    """Through a real SMTP server: the alert reaches finance with a link to the case's
    payments, and carries neither the amount, the note nor the case's code."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        app.config.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=controller.port,
            SMTP_SECURITY="none",
            BASE_URL="https://fund.example",
        )
        world.finance.contact = f"{world.finance.login}@fund.example"
        db.session.commit()
        _post(signed_in(app, world.applicant), paid, "less", amount="920", note=NOTE)
        # Handed over once the response has gone out, else by the periodic run.
        alerts.send_pending()
        box.wait_for(1)
        subject = "reported short or not received"
        bodies = [b for b in box.to(world.finance.contact) if subject in b]
    finally:
        controller.stop()
    assert len(bodies) == 1
    case = paid.grant.application
    for body in bodies:
        rest = body.replace(case.uid, "")
        for secret in ("NOTE-CANARY", "920", "1000", "1,000", "EUR", "TRF-R1", case.code or "?"):
            assert secret not in rest, secret
    body = bodies[0]
    lands(app, world.finance, body, "payments")


def test_a_note_longer_than_allowed_is_refused_and_kept_for_correction(app, world, paid):
    client = signed_in(app, world.applicant)
    note = "n" * (receipts.NOTE_MAX + 1)
    shown = refused_page(client, _post(client, paid, "not_received", note=note), _answer_page(paid))
    html = shown.get_data(as_text=True)
    assert "500" in html and note in html
    assert _answers(paid) == [] and _alerted() == []


def test_a_payment_reversed_in_part_is_answered_for_what_is_left_of_it(app, world, paid):
    """The bank delivered 985 of the 1,000 sent and finance took the 15 back: the
    applicant still sees the payment, as the 985 that reached them, and answers for it;
    "received less" is less than 985. Reversed in full, it is gone from their page."""
    payments.reverse_disbursement(paid, world.finance, "delivered short", amount=Decimal(15))
    db.session.commit()
    client = signed_in(app, world.applicant)
    page = html.unescape(
        client.get(f"/applications/{paid.grant.application.uid}").get_data(as_text=True)
    )
    assert "€985.00" in page and "€1,000.00 was sent; €15.00 of it came back to the fund." in page
    assert "Did this payment reach you?" in page
    # It waits for the applicant's answer, as their list of cases says.
    waiting = panels.payments_to_confirm([paid.grant.application])
    assert [application_id for application_id, _what in waiting] == [paid.grant.application_id]
    refused = _post(client, paid, "less", amount="990.00")
    assert refused.status_code == 303 and _answers(paid) == []
    assert _post(client, paid, "less", amount="980.00").status_code == 302
    (answer,) = _answers(paid)
    assert answer.missing == Decimal("5.00")
    assert _post(client, paid, "received").status_code == 302

    whole = pay(world, paid.grant, "300", instalment=None, reference="TRF-R2")
    payments.reverse_disbursement(whole, world.finance, "bounced")
    db.session.commit()
    page = client.get(f"/applications/{paid.grant.application.uid}").get_data(as_text=True)
    assert f'id="payment-{whole.uid}"' not in page
    assert _post(client, whole, "received").status_code == 303
    assert _answers(whole) == []


def test_a_reversal_and_the_report_of_its_payment_read_apart(app, world, paid):
    """Finance read "Reversed on … · the reversal reported not received by the payee side"
    as if the reversal had not arrived: the payee side's report stands on a line of its
    own."""
    _post(signed_in(app, world.applicant), paid, "not_received")
    payments.reverse_disbursement(paid, world.finance, "Never arrived")
    db.session.commit()
    page = signed_in(app, world.finance).get(f"/applications/{paid.grant.application.uid}")
    row = page.get_data(as_text=True).split(f'id="payment-{paid.uid}"')[1].split("</tr>")[0]
    assert re.search(r"</a>\s*<br>\s*<strong[^>]*>reported not received by the payee", row)
