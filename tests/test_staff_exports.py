"""Staff downloads: the queue as filtered, payments over a period, follow-up and coverage
as CSV; only what the reader may open, no names unless asked for and allowed, no payee,
no cell a spreadsheet would run, each download an entry in the fund's audit chain."""

import csv
import io
import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import ApplicationStatus, ConflictDeclaration
from hrdfund.cases.services import change_status, defender_key
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from tests.conftest import PAYEE_CANARY, make_case, pay, signed_in

FORMULA = '=HYPERLINK("http://evil.example","x")'


def _sent(fund, name, category=Category.MEDICAL):
    case = make_case(
        fund,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        category=category,
        defender_name=name,
        defender_key=defender_key(name, "KE"),
    )
    change_status(case, ApplicationStatus.SUBMITTED)
    db.session.commit()
    return case


def _csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def _downloads():
    return [
        (e.chain, e.object_id, json.loads(e.payload))
        for e in db.session.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "export.downloaded")
            .order_by(AuditEvent.id)
        ).scalars()
    ]


def test_the_queue_downloads_as_filtered_with_names_only_when_asked(
    app, fund, make_fund, make_user
):
    medical = _sent(fund, FORMULA)
    relocation = _sent(fund, "Rel Ocation", category=Category.RELOCATION)
    conflicted = _sent(fund, "Con Flicted")
    elsewhere = _sent(make_fund("Other fund"), "Else Where")
    reviewer = make_user("reviewer")
    db.session.add(ConflictDeclaration(application_id=conflicted.id, user_id=reviewer.id))
    db.session.commit()
    client = signed_in(app, reviewer)
    page = client.get("/cases?category=medical").get_data(as_text=True)
    assert "/cases/export.csv?category=medical" in page

    rows = _csv(client.get("/cases/export.csv?category=medical"))
    assert rows[0][:2] == ["Short code", "Case code"] and "Defender" not in rows[0]
    assert [row[:2] for row in rows[1:]] == [[medical.code, medical.uid]]
    text = "\n".join(",".join(row) for row in rows)
    for absent in (relocation.uid, conflicted.uid, elsewhere.uid, "HYPERLINK", "Ocation"):
        assert absent not in text

    named = _csv(client.get("/cases/export.csv?names=1"))
    assert named[0][-1] == "Defender"
    by_uid = {row[1]: row[-1] for row in named[1:]}
    assert set(by_uid) == {medical.uid, relocation.uid}
    # The name a spreadsheet would run as a formula comes out as text.
    assert by_uid[medical.uid] == "'" + FORMULA
    assert by_uid[relocation.uid] == "Rel Ocation"
    assert _downloads() == [
        (fund.id, "queue", {"rows": 1, "names": False}),
        (fund.id, "queue", {"rows": 2, "names": True}),
    ]
    assert "Ocation" not in " ".join(str(d) for d in _downloads())


def test_payments_of_a_period_download_for_finance_without_payees(app, money_world, make_fund):
    grant = money_world.grant("3000", name="Paid Defender")
    early = pay(
        money_world, grant, "100", instalment=None, reference="=1+1", paid_on=date(2026, 1, 5)
    )
    inside = pay(
        money_world, grant, "200", instalment=None, reference="TRF-9", paid_on=date(2026, 2, 5)
    )
    client = signed_in(app, money_world.finance)
    assert "/payments/export" in client.get("/payments").get_data(as_text=True)
    assert client.get("/payments/export").status_code == 200
    rows = _csv(client.get("/payments/export.csv?start=2026-02-01&end=2026-02-28"))
    assert [row[0] for row in rows[1:]] == [inside.uid]
    line = dict(zip(rows[0], rows[1], strict=True))
    assert line["Case code"] == grant.application.uid
    assert (line["Paid"], line["Currency paid"], line["Reference"]) == ("200.00", "EUR", "TRF-9")
    whole = _csv(client.get("/payments/export.csv?start=2026-01-01&end=2026-12-31"))
    text = "\n".join(",".join(row) for row in whole)
    assert early.uid in text and "'=1+1" in text
    assert PAYEE_CANARY not in text and "IBAN" not in text and "Paid Defender" not in text
    assert [d[1:] for d in _downloads()] == [
        ("payments", {"rows": 1, "names": False, "start": "2026-02-01", "end": "2026-02-28"}),
        ("payments", {"rows": 2, "names": False, "start": "2026-01-01", "end": "2026-12-31"}),
    ]
    # A period backwards or unreadable is a page saying so, and no download.
    for query in ("start=2026-03-01&end=2026-02-01", "start=someday"):
        response = client.get(f"/payments/export.csv?{query}")
        assert response.status_code == 400 and "error-summary" in response.get_data(as_text=True)
    assert len(_downloads()) == 2
    # A reversal counts against its payment, every figure with its own sign: no "-0.00",
    # no "--".
    back = payments.reverse_disbursement(inside, money_world.finance, "bounced")
    db.session.commit()
    rows = _csv(client.get("/payments/export.csv?start=2026-01-01&end=2026-12-31"))
    line = dict(zip(rows[0], next(r for r in rows[1:] if r[0] == back.uid), strict=True))
    assert (line["Paid"], line["In pool currency"]) == ("-200.00", "-200.00")
    assert (line["Fee"], line["Exchange difference"]) == ("0.00", "0.00")
    assert _downloads()[-1][2]["rows"] == 3
    # Another fund's finance gets none of these payments.
    stranger = money_world.make_user("finance", fund_id=make_fund("Other fund").id)
    other = _csv(
        signed_in(app, stranger).get("/payments/export.csv?start=2026-01-01&end=2026-12-31")
    )
    assert other == [rows[0]]


@pytest.mark.parametrize(
    "role, path, allowed",
    [
        ("finance", "/cases/export.csv", False),
        ("reviewer", "/payments/export.csv", False),
        ("manager", "/payments/export.csv", False),
        ("reviewer", "/payments/follow-up.csv", False),
        ("applicant", "/coverage.csv", False),
        ("donor", "/coverage.csv", False),
        ("admin", "/cases/export.csv", False),
        ("manager", "/cases/export.csv", True),
        ("finance", "/payments/follow-up.csv", True),
        ("finance", "/coverage.csv", True),
    ],
)
def test_each_download_is_for_the_roles_that_read_its_page(app, make_user, role, path, allowed):
    client = signed_in(app, make_user(role))
    response = client.get(path)
    assert (response.status_code == 200) == allowed, response.status_code
    assert (len(_downloads()) == 1) == allowed


def test_follow_up_and_coverage_download_as_their_pages_show_them(app, money_world):
    today = utcnow().date()
    stipend = money_world.grant("600", category=Category.LONGER_TERM, name="Ana Defender")
    money_world.plan(
        stipend,
        kind="stipend",
        count=3,
        starts_on=plans.months_after(today + timedelta(days=10), -2),
    )
    pay(money_world, stipend, "200", paid_on=today - timedelta(days=40), reference="OLD-1")
    manager = signed_in(app, money_world.m1)
    assert "/payments/follow-up.csv" in manager.get("/payments/follow-up").get_data(as_text=True)
    rows = _csv(manager.get("/payments/follow-up.csv"))
    receipts = [row for row in rows if row[0] == "Receipts not confirmed"]
    assert [(r[2], r[3]) for r in receipts] == [(stipend.application.uid, "OLD-1")]

    reviewer = signed_in(app, money_world.reviewer)
    assert "/coverage.csv" in reviewer.get("/coverage").get_data(as_text=True)
    rows = _csv(reviewer.get("/coverage.csv"))
    ending = [row for row in rows if row[0] == "Ending soon with nothing after"]
    assert [row[3] for row in ending] == [stipend.application.uid]
    monthly = [row for row in rows if row[0] == "Support by month"]
    assert monthly and all(row[1] == "Defender 1" for row in monthly)
    text = "\n".join(",".join(row) for row in rows)
    assert "Ana" not in text and stipend.application.defender_key not in text
    assert [d[1] for d in _downloads()] == ["follow-up", "coverage"]
