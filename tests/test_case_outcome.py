"""After the decision: the applicant sees the amount, the plan and each payment, confirms
what arrived, and sends a short report."""

from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    Decision,
    DecisionOutcome,
    UseOfFundsReport,
)
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements.checks import check_ledger
from hrdfund.grants.models import Grant, Instalment, PaymentPlan, PlanKind
from hrdfund.ledger.models import (
    Allocation,
    Channel,
    Contribution,
    Disbursement,
    PayeeType,
    ReceiptAnswer,
)
from hrdfund.pools.models import ExchangeRate, Pool
from tests.conftest import login, refused_page


def _sealed(obj):
    """Add a ledger row; the ledger seals it as it is written."""
    db.session.add(obj)
    db.session.flush()
    return obj


@pytest.fixture
def granted(fund, make_donor, make_user):
    """A relocation case approved for 3,000 EUR in two tranches; the first paid in KES after
    a bounced attempt that was reversed."""
    applicant = make_user("applicant")
    case = Application(
        fund_id=fund.id,
        applicant_id=applicant.id,
        category=Category.RELOCATION,
        status=ApplicationStatus.PAYING,
        currency="EUR",
        amount_requested=Decimal("3500"),
    )
    db.session.add(case)
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="Safe haven", currency="EUR")
    db.session.add(pool)
    db.session.flush()
    _sealed(
        Contribution(
            pool_id=pool.id,
            amount=Decimal("10000"),
            received_amount=Decimal("10000"),
            received_currency="EUR",
            fx_rate=Decimal(1),
            received_on=date(2026, 1, 5),
        )
    )
    db.session.add(
        Decision(
            application_id=case.id,
            manager_id=make_user("manager").id,
            outcome=DecisionOutcome.APPROVE,
            amount=Decimal("3000"),
            currency="EUR",
        )
    )
    grant = Grant(
        fund_id=fund.id,
        application_id=case.id,
        amount=Decimal("3000"),
        currency="EUR",
        approved_at=datetime(2026, 2, 1),
    )
    db.session.add(grant)
    db.session.flush()
    alloc = _sealed(
        Allocation(
            grant_id=grant.id,
            pool_id=pool.id,
            amount=Decimal("3000"),
            grant_amount=Decimal("3000"),
            fx_rate=Decimal(1),
        )
    )
    plan = PaymentPlan(
        grant_id=grant.id,
        kind=PlanKind.TRANCHES,
        starts_on=date(2026, 2, 3),
        ends_on=date(2026, 3, 20),
    )
    db.session.add(plan)
    db.session.flush()
    first = Instalment(
        plan_id=plan.id, seq=1, due_on=date(2026, 2, 3), amount=Decimal(1500), currency="EUR"
    )
    db.session.add_all(
        [
            first,
            Instalment(
                plan_id=plan.id,
                seq=2,
                due_on=date(2026, 3, 20),
                amount=Decimal(1500),
                currency="EUR",
            ),
        ]
    )
    db.session.flush()

    def pay(key, reversal_of=None, paid_on=date(2026, 2, 4)):
        d = Disbursement(
            grant_id=grant.id,
            allocation_id=alloc.id,
            pool_id=pool.id,
            instalment_id=first.id,
            payee_type=PayeeType.HOST_ORGANISATION,
            channel=Channel.BANK,
            amount_paid=Decimal("207000"),
            currency_paid="KES",
            amount=Decimal("1500"),
            fx_rate=Decimal("0.00724638"),
            fee_amount=Decimal("0"),
            paid_on=paid_on,
            idempotency_key=key,
            reversal_of_id=reversal_of,
        )
        d.payee_details = "canary-bank-account-3310"
        return _sealed(d)

    # The rate the payments used is the fund's table rate of their day.
    db.session.add(
        ExchangeRate(
            fund_id=fund.id,
            on_date=date(2026, 2, 1),
            base="KES",
            quote="EUR",
            rate=Decimal("0.00724638"),
            source="CBK",
        )
    )
    bounced = pay("k1")
    pay(None, reversal_of=bounced.id)
    paid = pay("k2", paid_on=date(2026, 2, 9))
    db.session.commit()
    assert check_ledger() == []
    return {"applicant": applicant, "case": case, "paid": paid, "bounced": bounced}


def test_the_applicant_sees_amount_plan_and_the_payment_that_stands(client, granted):
    login(client, granted["applicant"])
    html = client.get(f"/applications/{granted['case'].uid}").get_data(as_text=True)
    assert "<h2>Support granted</h2>" in html, "the section is markup, not escaped text"
    assert "€3,000.00" in html and "Paid in 2 parts." in html
    assert "9 February 2026" in html and "KES" in html
    assert "4 February 2026" not in html, "a reversed payment is not shown as paid"
    assert "canary-bank-account" not in html, "payee details are for finance only"


def test_confirming_receipt_once(client, granted):
    login(client, granted["applicant"])
    path = f"/payments/{granted['paid'].uid}/receipt"
    page = f"/applications/{granted['case'].uid}#payment-{granted['paid'].uid}"
    assert client.post(path, data={"answer": "received"}).location == page
    # The same answer again is said once, and kept once.
    assert client.post(path, data={"answer": "received"}).status_code == 303
    answers = db.session.execute(sa.select(ReceiptAnswer)).scalars().all()
    assert [a.disbursement_id for a in answers] == [granted["paid"].id]
    page = client.get(f"/applications/{granted['case'].uid}").get_data(as_text=True)
    assert "This is already your answer for this payment." in page
    assert "Your answer of" in page and "received." in page


def test_nobody_else_confirms_and_reversed_payments_cannot_be_confirmed(
    app, client, granted, make_user
):
    stranger = app.test_client()
    login(stranger, make_user("applicant"))
    data = {"answer": "received"}
    assert stranger.post(f"/payments/{granted['paid'].uid}/receipt", data=data).status_code == 404
    login(client, granted["applicant"])
    response = client.post(f"/payments/{granted['bounced'].uid}/receipt", data=data)
    assert response.status_code == 303
    assert "This payment was cancelled" in client.get(response.location).get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(ReceiptAnswer.id))).scalar() == 0


def test_the_report_asks_the_outcome_questions_once(client, granted):
    login(client, granted["applicant"])
    uid = granted["case"].uid
    page = client.get(f"/applications/{uid}").get_data(as_text=True)
    assert "Do you feel safer since the support?" in page
    incomplete = client.post(f"/applications/{uid}/report", data={"felt_safer": "yes"})
    incomplete = refused_page(client, incomplete, f"/applications/{uid}#report")
    assert "Choose an answer." in incomplete.get_data(as_text=True)
    assert '<input checked id="felt_safer-0"' in incomplete.get_data(as_text=True), "kept"
    sent = client.post(
        f"/applications/{uid}/report",
        data={"felt_safer": "yes", "continued_work": "no", "narrative": "canary-report-text"},
    )
    assert sent.status_code == 302
    report = db.session.execute(sa.select(UseOfFundsReport)).scalar_one()
    assert (report.felt_safer, report.continued_work) == (True, False)
    assert b"canary-report" not in report._narrative
    assert (
        client.post(
            f"/applications/{uid}/report", data={"felt_safer": "no", "continued_work": "no"}
        ).status_code
        == 404
    )
    # Once the support is complete, the page thanks for the report it has, not asks for it.
    granted["case"].status = ApplicationStatus.COMPLETED
    db.session.commit()
    page = client.get(f"/applications/{uid}").get_data(as_text=True)
    assert "This support is complete. Thank you for your report." in page
    assert "A short report on how it helped is welcome" not in page


def test_a_rejection_shows_its_reason_in_plain_words(client, fund, make_user):
    applicant = make_user("applicant")
    case = Application(
        fund_id=fund.id,
        applicant_id=applicant.id,
        category=Category.LEGAL,
        status=ApplicationStatus.REJECTED,
        currency="USD",
    )
    db.session.add(case)
    db.session.flush()
    decision = Decision(
        application_id=case.id,
        manager_id=make_user("manager").id,
        outcome=DecisionOutcome.REJECT,
        currency="USD",
    )
    decision.reason = "Legal fees in this case are covered by another fund."
    db.session.add(decision)
    db.session.commit()
    login(client, applicant)
    html = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Not approved" in html
    assert "Legal fees in this case are covered by another fund." in html
    assert "Send message" not in html, "a closed case takes no more messages"


def test_a_past_payment_cannot_be_edited_through_the_application(granted):
    """Corrections are reversal rows: an edit of a written payment is refused."""
    from hrdfund.ledger.seals import LedgerImmutableError

    payment = db.session.get(Disbursement, granted["paid"].id)
    payment.amount = Decimal("1")
    with pytest.raises(LedgerImmutableError):
        db.session.flush()
    db.session.rollback()
