"""The money screens: a manager plans and closes, finance pays with proof and reverses,
the pool page shows the figures and the rows behind them, and payee details show to
finance only."""

import html
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import lxml.html
import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from hrdfund.cases.codes import assign_code
from hrdfund.cases.models import Document
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.money import format_money
from hrdfund.disbursements.models import PaymentProof
from hrdfund.disbursements.services import grant_instalments, reverse_disbursement
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import Allocation, Disbursement
from hrdfund.pools import services as pools
from hrdfund.pools.models import ExchangeRate
from tests.conftest import (
    PAYEE_CANARY,
    count_rows,
    pay,
    payment_data,
    refused_page,
    signed_in,
)
from tests.pdfs import PDF

CANARY = PAYEE_CANARY


def test_finance_pays_with_proof_and_a_double_submission_records_one(app, money_world):
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    finance = signed_in(app, money_world.finance)
    case_url = f"/applications/{grant.application.uid}"
    page = finance.get(case_url).get_data(as_text=True)
    assert "Record a payment" in page
    data = payment_data(grant, **{"pay-proof": (io.BytesIO(PDF), "receipt.pdf")})
    response = finance.post(f"{case_url}/payments", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    again = finance.post(f"{case_url}/payments", data=payment_data(grant))
    assert again.status_code == 302
    assert "already recorded" in finance.get(case_url).get_data(as_text=True)
    payments = db.session.execute(sa.select(Disbursement)).scalars().all()
    assert len(payments) == 1 and payments[0].fee_amount == 12.5
    proof = finance.get(f"/payments/{payments[0].uid}/proof")
    assert proof.status_code == 200 and PdfReader(io.BytesIO(proof.data)).pages
    page = finance.get(case_url).get_data(as_text=True)
    assert CANARY in page and "PAY-0001" in page
    # Its status says where it stands, not an empty cell.
    row = page.split(f'id="payment-{payments[0].uid}"')[1].split("</tr>")[0]
    status = row.split('data-label="Status">')[1].split("</td>")[0]
    assert "Sent; neither the payee side nor a statement has said it arrived." in status
    manager = signed_in(app, money_world.m1)
    assert manager.get(f"/payments/{payments[0].uid}/proof").status_code == 403
    assert CANARY not in manager.get(case_url).get_data(as_text=True)


def test_a_refused_payment_keeps_what_was_typed_and_says_why(app, money_world):
    grant = money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        f"/applications/{grant.application.uid}/payments",
        data=payment_data(grant, **{"pay-amount_paid": "1500.00"}),
    )
    case = f"/applications/{grant.application.uid}#pay"
    page = refused_page(finance, response, case).get_data(as_text=True)
    assert "more than the grant still has committed" in page
    assert CANARY in page and 'value="1500.00"' in page
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_a_refused_rate_is_said_beside_its_field(app, money_world):
    """Finance types a bank's shillings per dollar where the form takes dollars per
    shilling: the refusal is said beside the rate, what was typed kept; a rate beyond the
    tolerance with no reason is said beside the reason's field."""
    grant = money_world.grant("2000", pool=money_world.usd)
    finance = signed_in(app, money_world.finance)
    case = f"/applications/{grant.application.uid}"
    typed = {"pay-currency_paid": "KES", "pay-amount_paid": "65000", "pay-rate_source": "bank"}
    for rate, field, words in [
        ("150.4", "pay-rate", "This rate looks upside down"),
        ("0.0070", "pay-rate_reason", "more than 2% away from the fund"),
    ]:
        response = finance.post(
            f"{case}/payments", data=payment_data(grant, **typed, **{"pay-rate": rate})
        )
        page = refused_page(finance, response, f"{case}#pay").get_data(as_text=True)
        beside = lxml.html.fromstring(page).xpath(f'//ul[@id="{field}-error"]')
        assert beside and words in beside[0].text_content(), field
        assert f'value="{rate}"' in page and CANARY in page
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_the_payment_form_starts_on_the_instalment_due_and_refuses_none_while_one_is(
    app, money_world
):
    """Finance meets the first instalment still due already chosen; choosing "—" instead
    is refused in words, with what was typed kept, and nothing is recorded."""
    grant = money_world.grant("2000")
    money_world.plan(grant, count=2)
    pay(money_world, grant, "1000", instalment=1)
    finance = signed_in(app, money_world.finance)
    case = f"/applications/{grant.application.uid}"
    second = grant_instalments(grant)[1]
    page = finance.get(case).get_data(as_text=True)
    assert f'<option selected value="{second.id}">' in page
    response = finance.post(f"{case}/payments", data=payment_data(grant, **{"pay-instalment": 0}))
    page = refused_page(finance, response, f"{case}#pay").get_data(as_text=True)
    assert "instalment 2 is still due: choose the instalment this payment pays" in page
    assert CANARY in page
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 1


def test_a_forged_overlong_form_key_is_refused_and_records_nothing(app, money_world):
    grant = money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        f"/applications/{grant.application.uid}/payments",
        data=payment_data(grant, **{"pay-idempotency_key": "k" * 65}),
    )
    assert "Field cannot be longer than 64 characters" in html.unescape(
        refused_page(finance, response).get_data(as_text=True)
    )
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def _paid_400_from_the_case_page(app, money_world):
    """A grant of 1,000 with a short code, and finance, signed in, paying 400 of it from
    its case page: (grant, finance's client, the case page's address, the payment)."""
    grant = money_world.grant("1000")
    assign_code(grant.application, grant.application.submitted_at or utcnow())
    db.session.commit()
    finance = signed_in(app, money_world.finance)
    url = f"/applications/{grant.application.uid}"
    finance.post(f"{url}/payments", data=payment_data(grant, **{"pay-amount_paid": "400"}))
    return grant, finance, url, db.session.execute(sa.select(Disbursement)).scalar_one()


def test_finance_reverses_a_bounced_payment_from_the_case_page(app, money_world):
    grant, finance, url, payment = _paid_400_from_the_case_page(app, money_world)
    empty = finance.post(f"/payments/{payment.uid}/reverse", data={"reverse-reason": ""})
    empty = refused_page(finance, empty, f"{url}#payment-{payment.uid}")
    assert "Say why" in empty.get_data(as_text=True)
    done = finance.post(f"/payments/{payment.uid}/reverse", data={"reverse-reason": "bounced"})
    assert done.status_code == 302
    twice = finance.post(f"/payments/{payment.uid}/reverse", data={"reverse-reason": "again"})
    twice = refused_page(finance, twice, f"{url}#payment-{payment.uid}")
    assert "already reversed" in twice.get_data(as_text=True)
    page = finance.get(url).get_data(as_text=True)
    assert "Reversal: bounced" in page
    # On a phone each cell reads beside its column's name: a reversal, which pays no one,
    # shows no payee's name beside nothing; the payment shows its payee.
    back = db.session.execute(
        sa.select(Disbursement).where(Disbursement.reversal_of_id == payment.id)
    ).scalar_one()
    reversal_row = page.split(f'id="payment-{back.uid}"')[1].split("</tr>")[0]
    payment_row = page.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]
    assert 'data-label="Payee"' not in reversal_row and 'data-label="Payee"' in payment_row


def test_a_payment_reversed_in_part_says_how_much_came_back(app, money_world):
    """Finance reads a payment reversed in part as such, with how much of it came back,
    not as if all of it had."""
    grant, finance, url, payment = _paid_400_from_the_case_page(app, money_world)
    # More than was paid: refused, the amount paid written as money.
    data = {"reverse-reason": "too much", "reverse-amount": "1500.00"}
    refused = finance.post(f"/payments/{payment.uid}/reverse", data=data)
    assert "at most the €400.00 paid" in refused_page(finance, refused).get_data(as_text=True)
    data = {"reverse-reason": "part returned", "reverse-amount": "150.00"}
    assert finance.post(f"/payments/{payment.uid}/reverse", data=data).status_code == 302
    page = finance.get(url).get_data(as_text=True)
    row = page.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]
    assert "Reversed in part on" in row and "€150.00 of €400.00 came back" in row
    assert "Reversed on" not in row
    # The pool's page says the same of it.
    manager = signed_in(app, money_world.m1)
    pool = manager.get(f"/pools/{money_world.eur.uid}").get_data(as_text=True)
    row = pool.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]
    assert "Reversed in part on" in row and "€150.00 of €400.00 came back" in row
    assert "Reversed on" not in row
    # And so do finance's payments, with the short code of the case in each list.
    listed = finance.get("/payments").get_data(as_text=True)
    row = listed.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]
    assert "Reversed in part on" in row and "€150.00 of €400.00 came back" in row
    assert "reversed on" not in row.lower().replace("reversed in part on", "")
    assert grant.application.code in row
    # The reversal's row says why, as the case page does.
    (back,) = payment.reversals
    assert (
        "Why: <bdi>part returned</bdi>"
        in (listed.split(f'id="payment-{back.uid}"')[1].split("</tr>")[0])
    )
    pool_row = pool.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]
    assert grant.application.code in pool_row
    internal = manager.get(f"/reports/internal?period={date.today().year}").get_data(as_text=True)
    paid = internal.split("Grants paid in the period")[1]
    assert grant.application.code in paid and grant.application.uid in paid


def test_a_payment_is_reversed_again_in_part_until_nothing_is_left(app, money_world):
    """The bank returned 150 of 400; later the defender gives back 100 unused: finance
    records a second reversal on the same row, each page says how much came back in
    several parts, and once all of it came back the form is gone."""
    grant, finance, url, payment = _paid_400_from_the_case_page(app, money_world)
    action = f'action="/payments/{payment.uid}/reverse"'

    def reverse(reason, amount=""):
        data = {"reverse-reason": reason, "reverse-amount": amount}
        return finance.post(f"/payments/{payment.uid}/reverse", data=data)

    def row_of(page):
        return page.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]

    assert reverse("bank returned", "150.00").status_code == 302
    assert action in finance.get(url).get_data(as_text=True)
    assert reverse("given back unused", "100.00").status_code == 302
    page = finance.get(url).get_data(as_text=True)
    assert "Reversal of €100.00 recorded; €150.00 of the payment has not come back." in page
    assert "Reversed in several parts, the last on" in row_of(page)
    assert "€250.00 of €400.00 came back" in row_of(page) and "the last reversal" in row_of(page)
    assert action in page and "Not come back yet: €150.00." in row_of(page)
    manager = signed_in(app, money_world.m1)
    pool = manager.get(f"/pools/{money_world.eur.uid}").get_data(as_text=True)
    assert "€250.00 of €400.00 came back" in row_of(pool)
    assert "€250.00 of €400.00 came back" in row_of(finance.get("/payments").get_data(as_text=True))
    # More than is left: refused, saying how much is left.
    refused = refused_page(finance, reverse("more", "200.00")).get_data(as_text=True)
    assert "at most the €150.00 of this payment that has not come back yet" in refused
    # The rest, the amount left empty: all of it has come back now.
    assert reverse("account closed").status_code == 302
    page = finance.get(url).get_data(as_text=True)
    assert "Reversal of €150.00 recorded; all of the payment has come back." in page
    assert "Reversed in full, in several parts, the last on" in row_of(page)
    assert "came back" not in row_of(page) and action not in page
    backs = db.session.execute(
        sa.select(Disbursement.amount).where(Disbursement.reversal_of_id == payment.id)
    ).scalars()
    assert sorted(backs) == [Decimal("100.00"), Decimal("150.00"), Decimal("150.00")]


def test_a_proof_that_came_after_its_payment_is_added_to_it(app, money_world):
    """A payment recorded without a proof is listed as such; finance adds the bank's
    confirmation when it comes, from the payment's row: a file that is not a proof is
    refused, the proof opens for finance only, and a second one is refused."""
    grant, finance, url, payment = _paid_400_from_the_case_page(app, money_world)
    action = f'action="/payments/{payment.uid}/proof"'

    def row_of(page):
        return page.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]

    def add(name, data):
        files = {"proof-proof": (io.BytesIO(data), name)}
        return finance.post(
            f"/payments/{payment.uid}/proof", data=files, content_type="multipart/form-data"
        )

    missing = finance.get("/payments?proof=missing").get_data(as_text=True)
    assert "no proof yet" in row_of(missing)
    assert "1 payment has no proof yet." in missing
    # How many wait is said across the list's pages, and of the dates chosen.
    other = money_world.grant("300")
    pay(money_world, other, "100", instalment=None, paid_on=payment.paid_on - timedelta(days=3))
    pay(money_world, other, "50", instalment=None, paid_on=payment.paid_on - timedelta(days=3))
    app.config["PAGE_SIZE"] = 2
    missing = finance.get("/payments?proof=missing").get_data(as_text=True)
    assert (
        "3 payments have no proof yet." in missing
        and missing.count("<small>no proof yet</small>") == 2
    )
    day = payment.paid_on.isoformat()
    that_day = finance.get(f"/payments?proof=missing&from={day}&to={day}")
    assert "1 payment on these dates has no proof yet." in that_day.get_data(as_text=True)
    # A page past the end says so and leads back to the first, keeping the choice; the
    # filter's answer opens at the list, below the statement's form.
    past = finance.get("/payments?proof=missing&page=9").get_data(as_text=True)
    assert 'href="/payments?proof=missing#payments">This page is past the end' in past
    assert 'action="/payments#payments"' in past
    assert action in row_of(finance.get(url).get_data(as_text=True))
    empty = finance.post(f"/payments/{payment.uid}/proof", data={})
    empty = refused_page(finance, empty, f"{url}#payment-{payment.uid}").get_data(as_text=True)
    assert "Choose the file of the proof." in row_of(empty)
    wrong = refused_page(finance, add("notes.txt", b"just words")).get_data(as_text=True)
    assert "PDF" in row_of(wrong) and action in row_of(wrong)
    assert finance.get(f"/payments/{payment.uid}/proof").status_code == 404
    assert add("transfer.pdf", PDF).status_code == 302
    page = finance.get(url).get_data(as_text=True)
    assert f'href="/payments/{payment.uid}/proof"' in row_of(page) and action not in page
    proof = finance.get(f"/payments/{payment.uid}/proof")
    assert proof.status_code == 200 and PdfReader(io.BytesIO(proof.data)).pages
    listed = finance.get("/payments?proof=missing").get_data(as_text=True)
    assert f'id="payment-{payment.uid}"' not in listed and "2 payments have no proof yet." in listed
    that_day = finance.get(f"/payments?proof=missing&from={day}&to={day}").get_data(as_text=True)
    assert "Every payment on these dates has its proof." in that_day
    assert "<small>no proof yet</small>" not in that_day
    assert "no proof yet" not in row_of(finance.get("/payments").get_data(as_text=True))
    # Sent again from a page opened before: said plainly, with nothing to send again.
    again = add("other.pdf", PDF)
    assert again.location == f"{url}#payment-{payment.uid}"
    again = finance.get(again.location).get_data(as_text=True)
    assert "This payment has its proof already." in again
    assert "Choose the file again" not in again
    assert "added the proof of a payment" in page  # the case's history says who did
    manager = signed_in(app, money_world.m1)
    assert manager.post(f"/payments/{payment.uid}/proof", data={}).status_code == 403
    assert manager.get(f"/payments/{payment.uid}/proof").status_code == 403


def test_a_payment_that_came_back_in_full_is_not_chased_for_its_proof(app, money_world):
    """Reversed in part, a payment still waits for its proof; reversed in full (the money
    came back) it is off the list of payments with no proof yet, its row asks for none,
    and a proof sent for it anyway is refused."""
    grant, finance, url, payment = _paid_400_from_the_case_page(app, money_world)
    action = f'action="/payments/{payment.uid}/proof"'
    reverse_disbursement(payment, money_world.finance, "part returned", Decimal("100.00"))
    db.session.commit()
    assert "1 payment has no proof yet." in finance.get("/payments?proof=missing").get_data(
        as_text=True
    )
    assert action in finance.get(url).get_data(as_text=True)
    reverse_disbursement(payment, money_world.finance, "the rest returned")
    db.session.commit()
    missing = finance.get("/payments?proof=missing").get_data(as_text=True)
    assert "Every payment has its proof." in missing and "no proof yet." not in missing
    assert "<small>no proof yet</small>" not in finance.get("/payments").get_data(as_text=True)
    assert action not in finance.get(url).get_data(as_text=True)
    files = {"proof-proof": (io.BytesIO(PDF), "transfer.pdf")}
    sent = finance.post(
        f"/payments/{payment.uid}/proof", data=files, content_type="multipart/form-data"
    )
    assert "This payment came back in full: it needs no proof." in finance.get(
        sent.location
    ).get_data(as_text=True)
    assert count_rows(PaymentProof) == 0 and count_rows(Document) == 0


def test_a_payment_in_another_currency_says_what_it_counts_for(app, money_world):
    """A grant in euros paid in dollars: the defender reads the dollars sent and how much
    of the euros granted they count as, less what came back of them."""
    grant = money_world.grant("2000", pool=money_world.usd)
    money_world.plan(grant, count=2)
    paid = pay(money_world, grant, "1100", currency="USD")
    same = pay(money_world, money_world.grant("500", name="Defender Two"), "500", instalment=None)
    applicant = signed_in(app, money_world.applicant)
    page = html.unescape(
        applicant.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    )
    assert "$1,100.00" in page
    assert "Sent in USD; it counts as €1,000.00 of the amount granted." in page
    reverse_disbursement(paid, money_world.finance, "returned", Decimal("110.00"))
    db.session.commit()
    page = html.unescape(
        applicant.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    )
    assert "Sent in USD; it counts as €900.00 of the amount granted." in page
    # Paid in the grant's own currency, nothing more is said.
    other = applicant.get(f"/applications/{same.grant.application.uid}").get_data(as_text=True)
    assert "€500.00" in html.unescape(other) and "counts as" not in other


def test_a_manager_plans_and_closes_a_grant_and_the_pool_gets_the_rest_back(app, money_world):
    grant = money_world.grant("900")
    manager = signed_in(app, money_world.m2)
    url = f"/applications/{grant.application.uid}"
    bad = manager.post(f"{url}/plan", data={"plan-kind": "stipend", "plan-count": "3"})
    bad = refused_page(manager, bad, f"{url}#plan")
    assert "Enter the date of the first payment" in bad.get_data(as_text=True)
    ok = manager.post(
        f"{url}/plan",
        data={"plan-kind": "stipend", "plan-count": "3", "plan-starts_on": "2026-12-01"},
    )
    assert ok.status_code == 302
    page = manager.get(url).get_data(as_text=True)
    assert "Monthly stipend from 2026-12-01 to 2027-02-01" in page
    pay(money_world, grant, "300", instalment=1)
    before = pool_figures([money_world.eur.id])[money_world.eur.id]["available"]
    closed = manager.post(f"{url}/close", data={"close-reason": "safe at home"})
    assert closed.status_code == 302
    assert pool_figures([money_world.eur.id])[money_world.eur.id]["available"] == before + 600
    # Closed under budget: the plan says which months were paid and which never will be,
    # to the staff and to the defender, who no longer counts on them.
    page = manager.get(url).get_data(as_text=True)
    plan = page.split('id="plan"')[1].split("</table>")[0]
    assert plan.count("not paid: the grant closed") == 2 and ">paid<" in plan
    # Why it closed, and that it closed early, not as if the support were complete.
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert "what it had not paid given back to the pools: safe at home" in text
    assert "Nothing: the grant was closed early" in text
    assert "the support is complete" not in text
    finance_view = signed_in(app, money_world.finance).get(url).get_data(as_text=True)
    assert "safe at home" in html.unescape(finance_view)
    applicant = signed_in(app, money_world.applicant)
    seen = html.unescape(applicant.get(url).get_data(as_text=True))
    assert "This support ended on" in seen and "will not come" in seen
    parts = seen.split("Planned for")[1].split("</table>")[0]
    assert parts.count("Will not be paid: the support ended") == 2 and ">Paid<" in parts


def test_a_plan_starting_on_a_day_gone_by_says_its_first_payments_are_overdue(app, money_world):
    grant = money_world.grant("900")
    manager = signed_in(app, money_world.m2)
    url = f"/applications/{grant.application.uid}"
    started = date.today() - timedelta(days=40)
    data = {"plan-kind": "tranches", "plan-count": "3", "plan-interval_days": "30"}
    done = manager.post(f"{url}/plan", data={**data, "plan-starts_on": started.isoformat()})
    page = manager.get(done.location).get_data(as_text=True)
    assert "Payment plan saved." in page
    assert (
        f"Its first 2 payments were due on days gone by, the first on {started.isoformat()}:"
        " they are overdue already." in page
    )
    other = money_world.grant("900", name="Planned Ahead")
    url = f"/applications/{other.application.uid}"
    ahead = (date.today() + timedelta(days=3)).isoformat()
    done = manager.post(f"{url}/plan", data={**data, "plan-starts_on": ahead})
    assert "overdue already" not in manager.get(done.location).get_data(as_text=True)


@pytest.mark.parametrize("kind", ["tranches", "stipend"])
def test_a_plan_starting_years_ahead_is_refused_in_words(app, money_world, kind):
    """A first payment typed in 9999 (it failed with a server error) or 2999 (it was saved,
    the money committed to no real date) is refused as a move is: within two years."""
    grant = money_world.grant("900")
    manager = signed_in(app, money_world.m2)
    url = f"/applications/{grant.application.uid}"
    data = {"plan-kind": kind, "plan-count": "12", "plan-interval_days": "366"}
    for day in ("9999-12-01", "2999-01-01", (date.today() + timedelta(days=731)).isoformat()):
        sent = manager.post(f"{url}/plan", data={**data, "plan-starts_on": day})
        page = refused_page(manager, sent, f"{url}#plan").get_data(as_text=True)
        assert "Choose a date within two years." in page, day
    assert grant_instalments(grant) == []
    within = (date.today() + timedelta(days=730)).isoformat()
    done = manager.post(f"{url}/plan", data={**data, "plan-starts_on": within})
    assert "Payment plan saved." in manager.get(done.location).get_data(as_text=True)


def test_a_grant_paid_in_full_then_closed_does_not_warn_of_parts_that_will_not_come(
    app, money_world
):
    grant = money_world.grant("900")
    manager = signed_in(app, money_world.m2)
    url = f"/applications/{grant.application.uid}"
    manager.post(
        f"{url}/plan",
        data={"plan-kind": "one_off", "plan-starts_on": date.today().isoformat()},
    )
    pay(money_world, grant, "900", instalment=1)
    assert manager.post(f"{url}/close", data={"close-reason": "paid"}).status_code == 302
    seen = html.unescape(signed_in(app, money_world.applicant).get(url).get_data(as_text=True))
    assert "This support ended on" in seen and "will not come" not in seen


def test_the_pool_page_shows_each_figure_and_the_rows_behind_it(app, money_world):
    grant = money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    finance.post(
        f"/applications/{grant.application.uid}/payments",
        data=payment_data(grant, **{"pay-amount_paid": "400", "pay-fee": "3"}),
    )
    manager = signed_in(app, money_world.m1)
    bad = manager.post(
        f"/pools/{money_world.eur.uid}/contributions",
        data={"contribution-amount": "-5", "contribution-currency": "EUR"},
    )
    bad = refused_page(manager, bad, f"/pools/{money_world.eur.uid}#contributions")
    assert 'value="-5"' in bad.get_data(as_text=True)
    manager.post(
        f"/pools/{money_world.eur.uid}/contributions",
        data={
            "contribution-amount": "1000",
            "contribution-currency": "USD",
            "contribution-received_on": "2026-03-01",
            "contribution-reference": "Letter Q1",
        },
    )
    page = manager.get(f"/pools/{money_world.eur.uid}").get_data(as_text=True)
    fig = pool_figures([money_world.eur.id])[money_world.eur.id]
    for key in ("received", "committed", "disbursed", "fees", "available"):
        assert format_money(fig[key], "EUR") in page, key
    assert fig["received"] == Decimal("20909.09")  # 1,000 USD at 1 / 1.10
    assert "Letter Q1" in page and grant.application.uid in page
    assert CANARY not in page
    other_fund_page = signed_in(app, money_world.make_user("manager", fund_id=_other_fund().id))
    assert other_fund_page.get(f"/pools/{money_world.eur.uid}").status_code == 404


def _other_fund():
    from hrdfund.auth.models import Fund

    fund = Fund(name="Other fund")
    db.session.add(fund)
    db.session.commit()
    return fund


def test_finance_keeps_the_rate_table(app, money_world):
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        "/pools/rates",
        data={
            "rate-on_date": date(2026, 4, 1).isoformat(),
            "rate-base": "EUR",
            "rate-quote": "KES",
            "rate-rate": "140.5",
            "rate-source": "Central bank",
        },
    )
    assert response.status_code == 302
    assert "Central bank" in finance.get("/pools/rates").get_data(as_text=True)
    reviewer = signed_in(app, money_world.reviewer)
    assert reviewer.get("/pools/rates").status_code == 403
    # Read in French, the rate is written as a French rate field takes it back.
    finance.post("/language", data={"language": "fr", "next": "/pools/rates"})
    page = finance.get("/pools/rates").get_data(as_text=True)
    assert ">140,5<" in page and ">140.5<" not in page
    # The pair's second currency and the last day of a list's dates, each in its words.
    assert "En (unités de)" in page
    assert '<label for="paid-to">Au</label>' in finance.get("/payments").get_data(as_text=True)


def test_every_rate_of_the_table_can_be_read_a_page_at_a_time(app, money_world):
    """A table of 230 rates is read page by page, newest first, every one reachable (the
    page showed the newest 100 and nothing said there were more), and of one currency when
    asked."""
    manager = money_world.m2
    first = date(2025, 1, 1)
    for n in range(228):
        entry = pools.record_rate(
            money_world.fund.id,
            money_world.finance,
            first + timedelta(days=n),
            "EUR",
            "GBP",
            Decimal("0.85"),
            f"rate-{n:03d}",
        )
        pools.confirm_rate(entry, manager)
    db.session.commit()
    finance = signed_in(app, money_world.finance)
    seen, page, url = [], 1, "/pools/rates"
    while url:
        html_page = finance.get(url).get_data(as_text=True)
        seen += re.findall(r"rate-(\d{3})", html_page)
        nxt = re.search(r'<a href="(/pools/rates\?page=\d+[^"]*)">Next</a>', html_page)
        url = html.unescape(nxt[1]) if nxt else None
        page += 1
    assert seen == [f"{n:03d}" for n in reversed(range(228))]
    assert page == 4  # three pages of at most 100
    only_kes = finance.get("/pools/rates?currency=KES").get_data(as_text=True)
    assert not re.search(r"rate-\d{3}", only_kes) and "KES" in only_kes
    assert finance.get("/pools/rates?currency=nonsense&page=-4").status_code == 200


def test_the_rate_table_refuses_a_rate_out_of_range(app, money_world):
    """1e40, 1e30, Infinity or a rate below 0.000001 was stored, and then every page that
    converted with it failed: the table now takes rates from 0.000001 to 1,000,000."""
    finance = signed_in(app, money_world.finance)
    for value in ("1e40", "1e30", "Infinity", "-0", "0", "0.0000001", "1000000.01", "sNaN"):
        response = finance.post(
            "/pools/rates",
            data={
                "rate-on_date": "2026-04-01",
                "rate-base": "EUR",
                "rate-quote": "KES",
                "rate-rate": value,
                "rate-source": "Central bank",
            },
        )
        html = refused_page(finance, response, "/pools/rates#record-rate").get_data(as_text=True)
        assert "Enter the rate in figures" in html or "Enter a rate between" in html, value
    from hrdfund.pools.services import PoolError

    with pytest.raises(PoolError, match="between 0.000001 and 1,000,000"):
        pools.record_rate(
            money_world.fund.id,
            money_world.finance,
            date(2026, 4, 1),
            "EUR",
            "KES",
            Decimal("1E+40"),
            "x",
        )
    assert db.session.execute(sa.select(sa.func.count(ExchangeRate.id))).scalar() == 2


#: A rate out of range, as each database can be made to hold one behind the application:
#: SQLite keeps 1e40 as a REAL; PostgreSQL's numeric(18, 8) takes NaN and ten digits.
BEHIND = {"sqlite": ("1e40",), "postgresql": ("NaN", "9999999999.99999999")}


@pytest.mark.parametrize("stored_as", ["EUR/USD", "USD/EUR"])
def test_a_rate_put_in_behind_the_application_is_no_usable_rate_on_any_page(
    app, money_world, backend, runner, stored_as
):
    """A rate the table took before its range held, or one written into the database,
    made every case page converting with it fail for staff. Now each page that converts
    says there is no usable rate, whichever way round the rate is stored; nothing is
    committed or paid at it, and the rest of the fund works on."""
    eur_case = money_world.recommended("Defender Euro")
    eur_case.amount_requested = Decimal("1000.00")  # what the pools are measured against
    grant = money_world.grant("1000", name="Defender Paid")
    db.session.commit()
    base, quote = stored_as.split("/")
    manager, finance = signed_in(app, money_world.m1), signed_in(app, money_world.finance)
    for n, value in enumerate(BEHIND[backend], start=2):
        # A rate recorded as the table records one, then changed in the database.
        entry = pools.record_rate(
            money_world.fund.id,
            money_world.finance,
            date(2026, 1, n),
            base,
            quote,
            Decimal("2"),
            "Bank",
        )
        pools.confirm_rate(entry, money_world.m2)  # a move that large counts once confirmed
        db.session.commit()
        db.session.execute(
            sa.text("UPDATE exchange_rates SET rate = :rate WHERE id = :id"),
            {"rate": value, "id": entry.id},
        )
        db.session.commit()
        case_page = manager.get(f"/applications/{eur_case.uid}")
        assert case_page.status_code == 200, value
        html = case_page.get_data(as_text=True)
        assert "exchange rate from EUR to USD is out of range: no usable rate" in html, value
        approve = manager.post(
            f"/applications/{eur_case.uid}/approve",
            data={
                "approve-amount": "1000",
                "approve-draws-0-pool": str(money_world.usd.id),
                "approve-draws-0-amount": "1000",
            },
        )
        approve = refused_page(manager, approve, f"/applications/{eur_case.uid}#approve")
        assert "No usable exchange rate" in approve.get_data(as_text=True)
        contribution = manager.post(
            f"/pools/{money_world.usd.uid}/contributions",
            data={
                "contribution-amount": "1000",
                "contribution-currency": "EUR",
                "contribution-received_on": "2026-03-01",
            },
        )
        contribution = refused_page(manager, contribution)
        assert "No usable exchange rate" in contribution.get_data(as_text=True)
        payment = finance.post(
            f"/applications/{grant.application.uid}/payments",
            data=payment_data(grant, **{"pay-currency_paid": "USD", "pay-amount_paid": "100"}),
        )
        payment = refused_page(finance, payment)
        assert "enter the rate used" in payment.get_data(as_text=True)
        for client, url in (
            (manager, "/cases"),
            (manager, "/cases?sort=amount"),
            (manager, "/pools"),
            (manager, f"/pools/{money_world.eur.uid}"),
            (manager, f"/pools/{money_world.usd.uid}"),
            (manager, f"/applications/{grant.application.uid}"),
            (manager, "/coverage"),
            (manager, "/reports/internal"),
            (manager, f"/reports/pools/{money_world.usd.uid}?period=2026"),
            (finance, f"/applications/{grant.application.uid}"),
            (finance, "/pools/rates"),
            (finance, "/payments"),
            (finance, "/payments/follow-up"),
            (signed_in(app, money_world.reviewer), f"/applications/{eur_case.uid}"),
        ):
            assert client.get(url).status_code == 200, (url, value)
    assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 1
    assert runner.invoke(args=["hrdfund", "check"]).exit_code == 0


@pytest.mark.parametrize(
    "typed",
    [
        {"pay-rate_source": "Bank statement"},
        {"pay-rate_reason": "The bank's own rate"},
        {"pay-rate_source": "Bank statement", "pay-rate_reason": "The bank's own rate"},
    ],
)
def test_a_rate_source_or_reason_without_a_rate_is_refused_not_dropped(app, money_world, typed):
    """With the rate box left empty, a source or reason typed beside it was dropped
    without a word (the table's rate was used): now the form says to enter the rate or
    leave them empty, and records nothing. The service refuses it too."""
    grant = money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    url = f"/applications/{grant.application.uid}/payments"
    for currency in ("USD", "EUR"):
        data = payment_data(grant, **{"pay-currency_paid": currency, "pay-rate": "", **typed})
        response = finance.post(url, data=data)
        html = refused_page(finance, response).get_data(as_text=True)
        assert "enter the rate, or leave its source and reason empty" in html, currency
        assert "Bank statement" in html or "own rate" in html, "what was typed stays"
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0
    from hrdfund.disbursements.services import PaymentError

    with pytest.raises(PaymentError, match="without a rate"):
        pay(
            money_world, grant, "100", currency="USD", instalment=None, rate_source="Bank statement"
        )


def test_a_rate_typed_for_a_payment_in_the_pool_currency_is_refused_not_dropped(app, money_world):
    """A payment in the pool's own currency converts at 1: a rate typed for it was
    dropped without a word; now the form says so."""
    grant = money_world.grant("1000")
    finance = signed_in(app, money_world.finance)
    response = finance.post(
        f"/applications/{grant.application.uid}/payments",
        data=payment_data(grant, **{"pay-rate": "1.2", "pay-rate_source": "Bank statement"}),
    )
    response = refused_page(finance, response)
    assert "in the pool&#39;s own currency (EUR)" in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0


def test_no_money_is_dated_on_a_day_still_to_come(app, money_world, clock):
    """A payment, a contribution or a rate dated after the latest date it is anywhere
    (UTC+14) is refused in words and records nothing: money booked in 2099 would sit
    outside every report's period. Today's date in the furthest time zone is taken."""
    clock.at(datetime(2026, 3, 1, 11, 0))  # 1 March everywhere: already in Kiritimati
    grant = money_world.grant("2000")
    finance = signed_in(app, money_world.finance)
    case_url = f"/applications/{grant.application.uid}"
    for day in ("2026-03-03", "2099-01-01"):
        response = finance.post(
            f"{case_url}/payments",
            data=payment_data(grant, **{"pay-paid_on": day, "pay-idempotency_key": day}),
        )
        page = refused_page(finance, response, f"{case_url}#pay").get_data(as_text=True)
        assert "The date of payment cannot be in the future." in page, day
    assert db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar() == 0
    # Eleven in the morning in London is already 2 March in Kiritimati.
    response = finance.post(
        f"{case_url}/payments", data=payment_data(grant, **{"pay-paid_on": "2026-03-02"})
    )
    assert response.status_code == 302
    assert db.session.execute(sa.select(Disbursement.paid_on)).scalar_one() == date(2026, 3, 2)
    with pytest.raises(pools.PoolError, match="date received cannot be in the future"):
        pools.record_contribution(
            money_world.eur, money_world.m1, Decimal("10.00"), "EUR", date(2026, 3, 3)
        )
    db.session.rollback()
    manager = signed_in(app, money_world.m1)
    response = manager.post(
        f"/pools/{money_world.eur.uid}/contributions",
        data={
            "contribution-amount": "10.00",
            "contribution-currency": "EUR",
            "contribution-received_on": "2099-01-01",
        },
    )
    assert "cannot be in the future" in refused_page(manager, response).get_data(as_text=True)
    rates = db.session.execute(sa.select(sa.func.count(ExchangeRate.id))).scalar()
    with pytest.raises(pools.PoolError, match="day still to come"):
        pools.record_rate(
            money_world.fund.id,
            money_world.finance,
            date(2099, 12, 5),
            "EUR",
            "USD",
            Decimal("1.1"),
            "ECB",
        )
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(ExchangeRate.id))).scalar() == rates
