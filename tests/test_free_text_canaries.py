"""Whatever people type about a case, a payment or a person is encrypted at rest (SECURITY.md,
promise 20): a whole case goes through the real forms with a unique canary in every free-text
field, then the database is read as raw bytes (SQLite's file and its write-ahead log before
any checkpoint, or a pg_dump of the PostgreSQL database) and holds none of them. Staff still
read each value where they read it; donors never see one."""

import io
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from hrdfund.cases.models import Application, Reference
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements.services import grant_instalments
from hrdfund.grants.models import Grant
from hrdfund.ledger.models import Contribution, Delivery, Disbursement
from tests.conftest import (
    PG_URL,
    missing_infrastructure,
    payment_data,
    signed_in,
    start_application,
)
from tests.test_canaries import CANARIES as APPLICATION_CANARIES

#: One canary per free-text field, each a string found nowhere else.
CANARIES = {
    "display_name": "canary-display-name-7301",
    "reference_notes": "canary-reference-notes-7302",
    "note": "canary-case-note-7303",
    "question": "canary-question-7304",
    "answer": "canary-answer-7305",
    "assessment": "canary-assessment-7306",
    "funder": "canary-other-funder-7307",
    "payee": "canary-payee-7308",
    "rate_source": "canary-rate-source-7309",
    "rate_reason": "canary-rate-reason-7310",
    "reference_usd": "canary-pay-ref-7311",
    "reference_eur": "canary-pay-ref-7312",
    "reversal": "canary-reversal-reason-7313",
    "narrative": "canary-narrative-7314",
    "close": "canary-close-reason-7315",
    "contribution_reference": "canary-contribution-ref-7316",
    "contribution_reversal": "canary-contribution-reversal-7317",
    "table_source": "canary-table-source-7318",
    "rejection": "canary-rejection-reason-7319",
    **{f"application-{k}": v for k, v in APPLICATION_CANARIES.items()},
}


def _sent(response):
    """A form the app accepted: it redirects."""
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return response


def _apply(applicant):
    """The applicant fills every field of a relocation request and sends it."""
    uid = start_application(applicant, "relocation")
    data = {
        **APPLICATION_CANARIES,
        "budget-0-amount": "1500",
        "currency": "USD",
        "country": "KE",
        "urgency": "urgent",
        "details-scope": "region",
        "details-destination_country": "UG",
        "details-people": "2",
        "details-months": "3",
        "references-1-name": "R2",
        "references-1-contact": "Signal",
        "save": "1",
    }
    _sent(applicant.post(f"/applications/{uid}/edit", data=data))
    _sent(applicant.post(f"/applications/{uid}/edit", data={**data, "submit": "1"}))
    return uid


def _payment(grant, instalment, **fields):
    """The payment form of ``grant``'s instalment number ``instalment`` (from 0), paid to
    the defender two days ago, the canary payee typed in."""
    return payment_data(
        grant,
        **{
            "pay-instalment": grant_instalments(grant)[instalment].id,
            "pay-payee_type": "defender",
            "pay-payee_details": CANARIES["payee"],
            "pay-fee": "0",
            "pay-paid_on": (utcnow().date() - timedelta(days=2)).isoformat(),
            "pay-idempotency_key": f"canary-form-{instalment}",
            **{f"pay-{name}": value for name, value in fields.items()},
        },
    )


def _journey(app, money_world):
    """Apply, review with notes, question and answer, recommend, other funders, approve,
    plan, pay in two currencies, reverse, reconcile, report, close, a contribution and its
    reversal, a rate, and a rejection: every free text typed through its form."""
    today = utcnow().date()
    C = CANARIES
    reviewer = money_world.make_user("reviewer", display_name=C["display_name"])
    applicant, staff = signed_in(app, money_world.applicant), signed_in(app, reviewer)
    manager, finance = signed_in(app, money_world.m1), signed_in(app, money_world.finance)
    uid = _apply(applicant)
    case = f"/applications/{uid}"
    application = db.session.scalars(sa.select(Application).where(Application.uid == uid)).one()

    _sent(staff.post(f"{case}/assign", data={"assign-reviewer": reviewer.id}))
    for ref in db.session.scalars(
        sa.select(Reference.uid).where(Reference.application_id == application.id)
    ):
        _sent(
            staff.post(
                f"{case}/references/{ref}",
                data={f"ref-{ref}-status": "confirmed", f"ref-{ref}-notes": C["reference_notes"]},
            )
        )
    _sent(staff.post(f"{case}/notes", data={"note-kind": "note", "note-body": C["note"]}))
    _sent(staff.post(f"{case}/question", data={"question-question": C["question"]}))
    _sent(applicant.post(case, data={"body": C["answer"]}))
    _sent(
        staff.post(
            f"{case}/recommend",
            data={
                "recommend-risk_level": "high",
                "recommend-recommendation": "approve_partly",
                "recommend-lines-0": "1000.00",
                "recommend-assessment": C["assessment"],
            },
        )
    )
    _sent(
        staff.post(
            f"{case}/cofunding",
            data={
                "cofunding-funder": C["funder"],
                "cofunding-amount": "100",
                "cofunding-currency": "EUR",
            },
        )
    )
    _sent(
        manager.post(
            f"{case}/approve",
            data={
                "approve-amount": "1000.00",
                "approve-draws-0-pool": str(money_world.eur.id),
                "approve-draws-0-amount": "1000.00",
            },
        )
    )
    _sent(
        manager.post(
            f"{case}/plan",
            data={"plan-kind": "tranches", "plan-count": "2", "plan-starts_on": today.isoformat()},
        )
    )
    grant = db.session.scalars(sa.select(Grant).where(Grant.application_id == application.id)).one()
    # Paid in dollars at the table's own rate, with its source and a reason typed anyway.
    _sent(
        finance.post(
            f"{case}/payments",
            data=_payment(
                grant,
                0,
                amount_paid="300.00",
                currency_paid="USD",
                rate="0.90909091",
                rate_source=C["rate_source"],
                rate_reason=C["rate_reason"],
                reference=C["reference_usd"],
            ),
        )
    )
    _sent(
        finance.post(
            f"{case}/payments",
            data=_payment(
                grant, 1, amount_paid="200.00", currency_paid="EUR", reference=C["reference_eur"]
            ),
        )
    )
    first = db.session.scalars(
        sa.select(Disbursement).where(Disbursement.grant_id == grant.id).order_by(Disbursement.id)
    ).first()
    _sent(finance.post(f"/payments/{first.uid}/reverse", data={"reverse-reason": C["reversal"]}))
    statement = "reference,amount,currency,date,status\n"
    statement += f"{C['reference_eur']},200.00,EUR,{today},delivered\n"
    imported = finance.post(
        "/payments/statements",
        data={"statement": (io.BytesIO(statement.encode()), "statement.csv")},
        content_type="multipart/form-data",
    )
    _sent(imported)
    assert db.session.scalar(sa.select(sa.func.count(Delivery.id))) == 1, "matched by reference"
    _sent(
        applicant.post(
            f"{case}/report",
            data={"felt_safer": "yes", "continued_work": "yes", "narrative": C["narrative"]},
        )
    )
    _sent(manager.post(f"{case}/close", data={"close-reason": C["close"]}))

    pool = f"/pools/{money_world.eur.uid}"
    _sent(
        manager.post(
            f"{pool}/contributions",
            data={
                "contribution-amount": "500",
                "contribution-currency": "EUR",
                "contribution-received_on": today.isoformat(),
                "contribution-reference": C["contribution_reference"],
            },
        )
    )
    received = db.session.scalars(sa.select(Contribution).order_by(Contribution.id.desc())).first()
    _sent(
        manager.post(
            f"/pools/contributions/{received.uid}/reverse",
            data={"uncontribute-reason": C["contribution_reversal"]},
        )
    )
    _sent(
        finance.post(
            "/pools/rates",
            data={
                "rate-on_date": today.isoformat(),
                "rate-base": "EUR",
                "rate-quote": "KES",
                "rate-rate": "140.5",
                "rate-source": C["table_source"],
            },
        )
    )
    refused = money_world.recommended()
    db.session.commit()
    _sent(
        manager.post(f"/applications/{refused.uid}/reject", data={"reject-reason": C["rejection"]})
    )
    return {
        "case": case,
        "refused": f"/applications/{refused.uid}",
        "staff": staff,
        "manager": manager,
        "finance": finance,
        "applicant": applicant,
        "reviewer": reviewer,
    }


def _sqlite_bytes():
    """The SQLite file and its write-ahead log as they are on disk now, before any
    checkpoint moves the log into the file."""
    path = db.engine.url.database
    assert os.path.exists(path + "-wal"), "the write-ahead log is read as it stands"
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal"))


def _pg_dump():
    """A plain pg_dump of the test database, every row of every table."""
    tool = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    if not os.path.exists(tool):
        missing_infrastructure("pg_dump is not installed (apt-get install postgresql-client)")
    url = sa.engine.make_url(PG_URL)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    done = subprocess.run(  # noqa: S603 (a fixed tool and arguments, no shell)
        [
            tool,
            "--no-owner",
            "--host",
            url.host or "127.0.0.1",
            "--port",
            str(url.port or 5432),
            "--username",
            url.username,
            url.database,
        ],
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-500:]
    return done.stdout


def test_no_free_text_reaches_the_database_in_clear(app, backend, money_world):
    seen = _journey(app, money_world)
    db.session.commit()
    raw = _sqlite_bytes() if backend == "sqlite" else _pg_dump()
    assert money_world.finance.login.encode() in raw, "the scan does see what is stored in clear"
    found = [name for name, canary in CANARIES.items() if canary.encode() in raw]
    assert found == [], f"in clear in the database: {found}"

    # Staff read every value where they read it before.
    def page(client, path):
        response = client.get(path)
        assert response.status_code == 200, path
        return response.get_data(as_text=True)

    C = CANARIES
    paying = page(seen["finance"], seen["case"])
    for name in ("payee", "rate_source", "rate_reason", "reference_usd", "reference_eur"):
        assert C[name] in paying, name
    assert C["reversal"] in paying
    assert C["reference_eur"] in page(seen["finance"], "/payments")
    assert C["table_source"] in page(seen["finance"], "/pools/rates")
    pool = page(seen["manager"], f"/pools/{money_world.eur.uid}")
    for name in ("contribution_reference", "contribution_reversal", "close", "reference_usd"):
        assert C[name] in pool, name
    reviewing = page(seen["staff"], seen["case"])
    for name in ("reference_notes", "note", "question", "answer", "assessment", "funder"):
        assert C[name] in reviewing, name
    assert C["display_name"] in page(seen["manager"], seen["case"])
    assert C["rejection"] in page(seen["applicant"], seen["refused"])

    # Donors read none of it, on their page or in their reports.
    donor = signed_in(app, money_world.make_user("donor", donor_id=money_world.donor.id))
    outputs = page(donor, "/donor")
    year = utcnow().date().year
    for kind in ("csv", "pdf"):
        report = donor.get(f"/donor/pools/{money_world.eur.uid}/report?period={year}&format={kind}")
        assert report.status_code == 200
        outputs += report.get_data().decode("latin-1")
    assert [name for name, canary in CANARIES.items() if canary in outputs] == []
