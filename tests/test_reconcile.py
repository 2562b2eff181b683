"""Reconciling bank statements and the follow-up lists: a statement is applied whole or
refused with every problem; failed payments are reversed, short ones wait for a correction;
receipts, reports and instalments that are late are listed until they come."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund.cases.services import submit_report
from hrdfund.core import csv_file
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import followup, receipts, reconcile, statement_file
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.checks import check_ledger
from hrdfund.disbursements.models import StatementImport
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import Delivery, DeliveryStatus, Disbursement
from hrdfund.pools import services as pools
from hrdfund.reviews.services import declare_conflict
from tests.conftest import MoneyWorld, pay, refused_page, signed_in

HEADER = "reference,amount,currency,date,status\n"


@pytest.fixture
def world(fund, make_user, make_donor):
    return MoneyWorld(fund, make_user, make_donor)


@pytest.fixture
def three(world):
    """Three payments of 1000 EUR on three grants, made on 2026-02-03."""
    found = []
    for n in (1, 2, 3):
        grant = world.grant("2000", pool=world.eur, name=f"Defender {n}")
        found.append(pay(world, grant, "1000", instalment=None, reference=f"TRF-{n}"))
    return found


def statement(*lines):
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def ledger_counts():
    return tuple(
        db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
        for model in (Delivery, StatementImport, Disbursement)
    )


def test_a_statement_marks_payments_delivered_short_or_failed(world, three):
    before = pool_figures([world.eur.id])[world.eur.id]
    data = statement(
        "TRF-1,1000.00,EUR,2026-02-05,delivered",
        "TRF-2,985.00,EUR,2026-02-05,delivered",
        "TRF-3,0,eur,2026-02-06,FAILED",
    )
    _statement, lines = reconcile.import_statement(world.fund.id, world.finance, data)
    db.session.commit()
    assert [line.status for line in lines] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SHORT,  # the bank said delivered, but less arrived than was sent
        DeliveryStatus.FAILED,
    ]
    # The failed payment is reversed by a row of its own, with the reason.
    assert payments.stands(three[0]) and payments.stands(three[1])
    assert not payments.stands(three[2])
    reversal = db.session.execute(
        sa.select(Disbursement).where(Disbursement.reversal_of_id == three[2].id)
    ).scalar_one()
    assert reversal.amount == Decimal("1000.00") and "failed" in reversal.reason
    after = pool_figures([world.eur.id])[world.eur.id]
    assert after["disbursed"] == before["disbursed"] - Decimal("1000.00")
    # Only the short payment waits for follow-up; a failed one was corrected already.
    listed = followup.mismatches(world.finance)
    assert [(m.payment.reference, m.delivery.reported_amount) for m in listed] == [
        ("TRF-2", Decimal("985.00"))
    ]
    # Its correction, a partial reversal, takes it off the list.
    payments.reverse_disbursement(three[1], world.finance, "15.00 lost", amount=Decimal("15"))
    db.session.commit()
    assert followup.mismatches(world.finance) == []
    assert check_ledger() == []


def test_a_statement_with_any_problem_is_refused_whole_with_every_problem(world, three):
    before = ledger_counts()
    data = statement(
        "TRF-1,1000.00,EUR,2026-02-05,failed",  # fine on its own
        "TRF-9,10.00,EUR,2026-02-05,delivered",
        "TRF-1,1000.00,EUR,2026-02-05,delivered",
        "TRF-2,1000.01,EUR,2026-02-05,delivered",
        "TRF-3,1000.00,EUR,05/02/2026,delivered",
        "TRF-3,1000.00,USD,2026-02-05,delivered",
        ",1.00,EUR,2026-02-05,delivered",
    )
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.import_statement(world.fund.id, world.finance, data)
    db.session.rollback()
    problems = [str(p) for p in refused.value.problems]
    assert problems == [
        "Line 3: no payment of this fund has the reference TRF-9.",
        "Line 4: reference TRF-1 repeats line 2.",
        "Line 5: 1000.01 is more than the 1000.00 sent as payment TRF-2.",
        "Line 6: the date 05/02/2026 is not a date like 2026-03-31.",
        "Line 7: reference TRF-3 repeats line 6.",
        "Line 8: the reference is empty.",
    ]
    # Nothing applied: not even the good first line's reversal.
    assert ledger_counts() == before
    assert payments.stands(three[0])


def test_a_statement_line_in_cents_of_francs_is_refused(world):
    """A bank reporting 448,962.50 CFA francs arrived of a payment of 448,963 reports a
    shortfall of half a franc that cannot exist: the statement is refused, naming the
    line."""
    entry = pools.record_rate(
        world.fund.id, world.finance, date(2026, 1, 1), "EUR", "XOF", Decimal("655.957"), "BCEAO"
    )
    pools.confirm_rate(entry, world.m2)
    db.session.commit()
    grant = world.grant("2000", pool=world.eur)
    pay(world, grant, "448963", currency="XOF", instalment=None, reference="TRF-XOF")
    before = ledger_counts()
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.import_statement(
            world.fund.id, world.finance, statement("TRF-XOF,448962.50,XOF,2026-02-05,short")
        )
    db.session.rollback()
    assert [str(p) for p in refused.value.problems] == [
        "Line 2: 448962.50 has cents, which XOF does not have."
    ]
    assert ledger_counts() == before


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("TRF-1,1000.00,USD,2026-02-05,delivered", "was sent in EUR, not USD"),
        ("TRF-1,ten,EUR,2026-02-05,delivered", "not written like 1234.50"),
        ("TRF-1,10.005,EUR,2026-02-05,delivered", "not written like 1234.50"),
        ("TRF-1,-1,EUR,2026-02-05,delivered", "not written like 1234.50"),
        ("TRF-1,1000,EUR,2026-02-01,delivered", r"is before the payment was made \(2026-02-03\)"),
        ("TRF-1,1000,EUR,2999-02-01,delivered", "the date 2999-02-01 has not come yet"),
        ("TRF-1,1000,EUR,2026-02-05,lost", "not one of delivered, short or failed"),
        ("TRF-1,1.000,00,EUR,2026-02-05,delivered", "has 6 values where the first line names 5"),
        ('TRF-1,"1.000,00",EUR,2026-02-05,delivered', "not written like 1234.50"),
        ("TRF-1,1000", "has 2 values where the first line names 5"),
        ('TRF-1,"' + "9" * 200_000 + '",EUR,2026-02-05,delivered', "cannot be read as CSV"),
    ],
)
def test_each_bad_line_is_named(world, three, line, problem):
    with pytest.raises(reconcile.StatementError, match=problem):
        reconcile.import_statement(world.fund.id, world.finance, statement(line))
    db.session.rollback()
    assert ledger_counts()[0] == 0


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "must name the columns"),
        (b"ref,amount\nTRF-1,3\n", "missing: reference, currency, date, status"),
        (
            "\ufeffreference;amount;currency;date;status\nTRF-1;1000,00;EUR;2026-02-05;delivered\n".encode(),
            "separated by semicolons or tabs, not commas",
        ),
        (
            HEADER.replace(",", "\t").encode() + b"TRF-1\t1000\tEUR\t2026-02-05\tdelivered\n",
            "separated by semicolons or tabs",
        ),
        (HEADER.encode(), "no rows below its header"),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused(world, three, data, problem):
    with pytest.raises(reconcile.StatementError, match=problem):
        reconcile.import_statement(world.fund.id, world.finance, data)


def test_a_statement_applies_once_and_a_payment_reconciles_once(world, three):
    data = statement("TRF-1,1000.00,EUR,2026-02-05,delivered")
    reconcile.import_statement(world.fund.id, world.finance, data)
    db.session.commit()
    with pytest.raises(reconcile.StatementError, match="was imported on"):
        reconcile.import_statement(world.fund.id, world.finance, data)
    db.session.rollback()
    again = statement("TRF-1,1000.00,EUR,2026-02-06,delivered")
    with pytest.raises(reconcile.StatementError, match="TRF-1 was reconciled before"):
        reconcile.import_statement(world.fund.id, world.finance, again)
    db.session.rollback()
    assert ledger_counts()[:2] == (1, 1)


def test_a_failed_line_on_a_payment_reversed_in_part_reverses_the_rest(world, three):
    """15 of 1,000 came back earlier; the bank now reports the payment failed: the other
    985 are reversed by a row of their own, and nothing waits for follow-up."""
    payments.reverse_disbursement(three[0], world.finance, "15 lost", amount=Decimal(15))
    db.session.commit()
    reconcile.import_statement(
        world.fund.id, world.finance, statement("TRF-1,0,EUR,2026-02-05,failed")
    )
    db.session.commit()
    db.session.refresh(three[0])
    assert [r.amount for r in three[0].reversals] == [Decimal("15.00"), Decimal("985.00")]
    assert "failed" in three[0].reversals[-1].reason and three[0].arrived == 0
    assert followup.mismatches(world.finance) == []
    assert check_ledger() == []


def test_a_payment_sent_again_under_its_reference_is_the_one_matched(world, three):
    """The first transfer bounced and was reversed; the second, under the same reference,
    is the one the statement reports on."""
    payments.reverse_disbursement(three[0], world.finance, "bounced")
    again = pay(world, three[0].grant, "1000", instalment=None, reference="TRF-1")
    reconcile.import_statement(
        world.fund.id, world.finance, statement("TRF-1,1000,EUR,2026-02-05,delivered")
    )
    db.session.commit()
    delivery = db.session.execute(sa.select(Delivery)).scalar_one()
    assert delivery.disbursement_id == again.id


def test_lines_of_other_funds_and_conflicted_cases_are_refused(world, three, make_fund, make_user):
    other_fund_finance = make_user("finance", fund_id=make_fund("Another Fund").id)
    with pytest.raises(reconcile.StatementError, match="no payment of this fund"):
        reconcile.import_statement(
            other_fund_finance.fund_id,
            other_fund_finance,
            statement("TRF-1,1000,EUR,2026-02-05,delivered"),
        )
    db.session.rollback()
    declare_conflict(three[1].grant.application, world.finance)
    db.session.commit()
    with pytest.raises(reconcile.StatementError, match="declared a conflict on"):
        reconcile.import_statement(
            world.fund.id, world.finance, statement("TRF-2,1000,EUR,2026-02-05,delivered")
        )
    db.session.rollback()
    assert ledger_counts()[0] == 0


def test_only_finance_of_the_fund_imports(world, three):
    for user in (world.m1, world.admin, world.reviewer):
        with pytest.raises(reconcile.StatementError, match="Only finance"):
            reconcile.import_statement(
                world.fund.id, user, statement("TRF-1,1000,EUR,2026-02-05,delivered")
            )


def upload(client, data):
    return client.post(
        "/payments/statements",
        data={"statement": (io.BytesIO(data), "statement.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_finance_imports_a_statement_from_the_payments_page(app, world, three):
    finance = signed_in(app, world.finance)
    page = finance.get("/payments").get_data(as_text=True)
    assert "Import a statement" in page and "TRF-3" in page
    refused = upload(finance, statement("TRF-7,1.00,EUR,2026-02-05,delivered"))
    assert [r.status_code for r in refused.history] == [303] and refused.status_code == 200
    assert refused.request.path == "/payments"
    assert "Choose the file again" in refused.get_data(as_text=True)
    assert "The statement was not applied" in refused.get_data(as_text=True)
    assert "no payment of this fund has the reference TRF-7" in refused.get_data(as_text=True)
    assert ledger_counts()[0] == 0
    empty = finance.post("/payments/statements", data={}, content_type="multipart/form-data")
    empty = refused_page(finance, empty, "/payments#import")
    assert "Choose the statement file" in empty.get_data(True)
    assert "Choose the file again" not in empty.get_data(True), "no file was chosen"
    done = upload(
        finance,
        statement("TRF-1,1000,EUR,2026-02-05,delivered", "TRF-2,990,EUR,2026-02-05,short"),
    )
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "1 delivered, 1 short, 0 failed" in body
    assert "Follow-up" in body and "TRF-2" in body and "990.00" in body
    manager = signed_in(app, world.m1)
    assert manager.post("/payments/statements").status_code == 403
    assert "TRF-2" in manager.get("/payments/follow-up").get_data(as_text=True)
    for user in (world.reviewer, world.applicant, world.admin):
        assert signed_in(app, user).get("/payments/follow-up").status_code in (403, 404)


def test_follow_up_lists_late_receipts_reports_and_instalments_until_they_come(app, world):
    today = utcnow().date()
    grant = world.grant("2000", pool=world.eur)
    world.plan(grant, count=2, starts_on=today - timedelta(days=70), interval_days=75)
    payment = pay(world, grant, "1000", paid_on=today - timedelta(days=65), reference="TRF-L")
    case = grant.application

    def listed(user=world.m1):
        return (
            [p.reference for p, *_c in followup.receipts_overdue(user, today, 14)],
            [c for c, _first, *_code in followup.reports_overdue(user, today, 60)],
            [i.seq for i, _plan, _c, _paid, *_code in followup.instalments_due(user, today, 7)],
        )

    assert listed() == (["TRF-L"], [case.uid], [2])
    # A manager who declared a conflict on the case does not see it in any list.
    conflicted = world.make_user("manager")
    declare_conflict(case, conflicted)
    db.session.commit()
    assert listed(conflicted) == ([], [], [])
    page = signed_in(app, world.m1).get("/payments/follow-up").get_data(as_text=True)
    assert "TRF-L" in page and case.uid in page
    receipts.answer_receipt(payment, world.applicant, "received")
    submit_report(case, world.applicant, "yes", "yes")
    pay(world, grant, "1000", instalment=2, paid_on=today, reference="TRF-M")
    db.session.commit()
    assert listed() == ([], [], [])
    assert "Every payment made so long ago is confirmed" in signed_in(app, world.finance).get(
        "/payments/follow-up"
    ).get_data(as_text=True)


def test_a_payment_reversed_in_part_still_waits_for_its_receipt_and_report(world):
    """A cent taken back of 1,000 leaves 999.99 sent: the payment still waits for the
    payee side's answer and the case for its report; all of it taken back, neither."""
    today = utcnow().date()
    grant = world.grant("2000", pool=world.eur)
    payment = pay(
        world, grant, "1000", instalment=None, paid_on=today - timedelta(days=65), reference="T"
    )

    def listed():
        return (
            [p.reference for p, *_c in followup.receipts_overdue(world.finance, today, 14)],
            [c for c, _first, *_code in followup.reports_overdue(world.finance, today, 60)],
        )

    payments.reverse_disbursement(payment, world.finance, "bank charge", Decimal("0.01"))
    db.session.commit()
    assert listed() == (["T"], [grant.application.uid])
    payments.reverse_disbursement(payment, world.finance, "account closed")
    db.session.commit()
    assert listed() == ([], [])


def test_follow_up_opens_with_its_lists_and_how_many_rows_each_holds(app, world):
    """A long page on a phone: at its top, each list's name leads to it, with its number
    of rows, so the lists with nothing in them need not be scrolled through."""
    today = utcnow().date()
    grant = world.grant("2000", pool=world.eur)
    world.plan(grant, count=2, starts_on=today - timedelta(days=70), interval_days=75)
    pay(world, grant, "1000", paid_on=today - timedelta(days=65), reference="TRF-L")
    page = signed_in(app, world.m1).get("/payments/follow-up").get_data(as_text=True)
    contents = page.split('<ul class="toc">', 1)[1].split("</ul>", 1)[0]
    items = [" ".join(re.sub(r"<[^>]+>", " ", li).split()) for li in contents.split("<li>")[1:]]
    assert items == [
        "Payments waiting for a second person (0)",
        "Payments reported short or failed (0)",
        "Instalments due within 7 days and not paid (1)",
        "Receipts not confirmed after 14 days (1)",
        "Use-of-funds reports not in 60 days after the first payment (1)",
    ]
    for anchor in ("held", "mismatches", "due", "receipts", "reports"):
        assert f'<a href="#{anchor}">' in contents and f'id="{anchor}"' in page


def test_a_list_longer_than_the_page_says_how_long_it_is_and_downloads_whole(
    app, world, monkeypatch
):
    """Past the rows a list shows, its count is still every row (456 receipts overdue read
    as 200 did), the list says how many it leaves out, and the download has them all."""
    today = utcnow().date()
    for n in (1, 2, 3):
        grant = world.grant("900", pool=world.eur, name=f"Late {n}")
        pay(
            world,
            grant,
            "900",
            instalment=None,
            paid_on=today - timedelta(days=20 + n),
            reference=f"TRF-LATE-{n}",
        )
    monkeypatch.setattr(followup, "LIMIT", 2)
    client = signed_in(app, world.finance)
    page = client.get("/payments/follow-up").get_data(as_text=True)
    contents = page.split('<ul class="toc">', 1)[1].split("</ul>", 1)[0]
    assert "Receipts not confirmed after 14 days (3)" in " ".join(
        re.sub(r"<[^>]+>", " ", contents).split()
    )
    assert "2 of 3 are listed here; the download has them all." in page
    assert sum(f"TRF-LATE-{n}" in page for n in (1, 2, 3)) == 2
    body = client.get("/payments/follow-up.csv").get_data(as_text=True)
    assert all(f"TRF-LATE-{n}" in body for n in (1, 2, 3))
    assert "Only the first" not in body


def test_a_payment_a_statement_reported_short_says_what_is_missing(app, world, three):
    reconcile.import_statement(
        world.fund.id, world.finance, statement("TRF-1,812.50,EUR,2026-02-05,short")
    )
    db.session.commit()
    page = signed_in(app, world.finance).get("/payments/follow-up").get_data(as_text=True)
    (row,) = [row for row in page.split("<tr") if "TRF-1" in row and "Missing" in row]
    missing = re.search(r'data-label="Missing">([^<]*)</td>', row).group(1)
    assert missing == "€187.50"


def test_an_instalment_past_its_date_says_so_in_words(app, world):
    """Not only a colour: the follow-up list says how late an instalment is."""
    today = utcnow().date()
    grant = world.grant("2000", pool=world.eur)
    world.plan(grant, count=2, starts_on=today - timedelta(days=3), interval_days=5)
    page = signed_in(app, world.finance).get("/payments/follow-up").get_data(as_text=True)
    (late,) = [row for row in page.split("<tr>") if (today - timedelta(days=3)).isoformat() in row]
    assert "overdue by 3 days" in late
    (coming,) = [
        row for row in page.split("<tr>") if (today + timedelta(days=2)).isoformat() in row
    ]
    assert "overdue" not in coming


def test_a_payment_younger_than_the_limit_is_not_yet_late(world):
    today = utcnow().date()
    grant = world.grant("2000", pool=world.eur)
    pay(world, grant, "1000", instalment=None, paid_on=today - timedelta(days=13))
    assert followup.receipts_overdue(world.finance, today, 14) == []
    assert followup.reports_overdue(world.finance, today, 60) == []


def test_a_problem_quotes_a_long_value_briefly(world, three):
    line = "TRF-1," + "9" * 100_000 + ",EUR,2026-02-05,delivered"
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.import_statement(world.fund.id, world.finance, statement(line))
    (problem,) = [str(p) for p in refused.value.problems]
    assert "not written like 1234.50" in problem and len(problem) < 200


def test_every_line_counts_towards_the_row_limit(world, three):
    """Lines of the wrong number of values count as rows: a file of a million short lines
    is refused at the limit, in one sentence, not checked line by line."""
    data = (HEADER + "a\n" * (statement_file.MAX_ROWS + 1)).encode()
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.check_statement(world.finance, data)
    assert [str(p) for p in refused.value.problems] == [
        f"The file has more than {statement_file.MAX_ROWS} lines below its header; split it."
    ]
    # At the limit the lines are still read, each named.
    data = (HEADER + "a\n" * statement_file.MAX_ROWS).encode()
    with pytest.raises(reconcile.StatementError, match="has 1 values where the first line"):
        reconcile.check_statement(world.finance, data)


def test_a_refusal_lists_the_first_problems_and_counts_the_rest(world, three):
    lines = [f"TRF-X{n},1.00,EUR,2026-02-05,delivered" for n in range(120)]
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.import_statement(world.fund.id, world.finance, statement(*lines))
    problems = [str(p) for p in refused.value.problems]
    assert len(problems) == csv_file.MAX_PROBLEMS + 1
    assert problems[0] == "Line 2: no payment of this fund has the reference TRF-X0."
    assert problems[-2] == "Line 51: no payment of this fund has the reference TRF-X49."
    assert problems[-1] == (
        "70 more problems on later lines are not listed; correct these and check the file again."
    )


def test_a_large_bad_file_gets_a_short_page_at_once(app, world, three):
    """A megabyte of one-letter lines took 18 seconds and made a page of 35 MB, listing
    half a million problems; now it is refused at the row limit, and a file of thousands
    of bad rows lists the first few dozen."""
    finance = signed_in(app, world.finance)
    # Encoded in memory: the test client would spool a large file it never closes.
    boundary, body = encode_multipart(
        {"statement": FileStorage(io.BytesIO((HEADER + "a\n" * 524_000).encode()), "s.csv")}
    )
    sent = finance.post(
        "/payments/statements",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    refused = refused_page(finance, sent, "/payments#import")
    assert "more than 5000 lines below its header" in refused.get_data(as_text=True)
    assert len(refused.data) < 100_000
    many = upload(finance, statement(*(f"NOPE-{n},1.00,EUR,2026-02-05,x" for n in range(5000))))
    assert [r.status_code for r in many.history] == [303] and len(many.data) < 100_000
    assert "4950 more problems on later lines" in many.get_data(as_text=True)


def test_a_statement_is_checked_with_no_write_lock_held(app, backend, world, three, monkeypatch):
    """Reading and checking the file keeps no other writer waiting; only applying the
    checked lines takes the write lock."""
    from hrdfund.core.extensions import sqlite_begin_statement
    from tests.test_models import _another_writer_gets_the_lock

    during = []
    check = reconcile.check_statement

    def watched(*args, **kwargs):
        lines = check(*args, **kwargs)
        free = _another_writer_gets_the_lock() if backend == "sqlite" else True
        during.append((sqlite_begin_statement(), free))
        return lines

    monkeypatch.setattr(reconcile, "check_statement", watched)
    finance = signed_in(app, world.finance)
    done = upload(finance, statement("TRF-1,1000,EUR,2026-02-05,delivered"))
    assert done.status_code == 200 and "1 delivered, 0 short, 0 failed" in done.get_data(True)
    assert during == [("BEGIN", True)]
    assert ledger_counts()[0] == 1


def test_what_changes_between_the_check_and_the_import_is_checked_again(world, three):
    """The lines were checked with no lock; before they are applied, what could have
    changed meanwhile is read again, and a line that no longer holds refuses the file."""
    data = statement(
        "TRF-1,1000,EUR,2026-02-05,delivered",
        "TRF-2,1000,EUR,2026-02-05,failed",
        "TRF-3,1000,EUR,2026-02-05,delivered",
    )
    checked = reconcile.check_statement(world.finance, data)
    db.session.rollback()
    # Meanwhile: another statement reconciles TRF-1, TRF-2 bounces and is sent again
    # under its reference, and the officer declares a conflict on TRF-3's case.
    reconcile.import_statement(
        world.fund.id, world.finance, statement("TRF-1,1000,EUR,2026-02-06,delivered")
    )
    payments.reverse_disbursement(three[1], world.finance, "bounced")
    pay(world, three[1].grant, "1000", instalment=None, reference="TRF-2")
    declare_conflict(three[2].grant.application, world.finance)
    db.session.commit()
    before = ledger_counts()
    with pytest.raises(reconcile.StatementError) as refused:
        reconcile.import_statement(world.fund.id, world.finance, data, checked=checked)
    db.session.rollback()
    assert [str(p) for p in refused.value.problems] == [
        "Line 2: payment TRF-1 was reconciled before, by a statement of "
        f"{utcnow().date().isoformat()}.",
        "Line 3: another payment took the reference TRF-2 while the file was checked; "
        "check it again.",
        "Line 4: payment TRF-3 is on a case you declared a conflict on; another finance "
        "officer reconciles it.",
    ]
    assert ledger_counts() == before
    # The same file checked twice at once: the first to apply it wins.
    data = statement("TRF-4,1000,EUR,2026-02-05,delivered")
    fourth = pay(
        world, world.grant("2000", pool=world.eur), "1000", instalment=None, reference="TRF-4"
    )
    db.session.commit()
    checked = reconcile.check_statement(world.finance, data)
    again = reconcile.check_statement(world.finance, data)
    db.session.rollback()
    reconcile.import_statement(world.fund.id, world.finance, data, checked=checked)
    db.session.commit()
    with pytest.raises(reconcile.StatementError, match="This statement was imported on"):
        reconcile.import_statement(world.fund.id, world.finance, data, checked=again)
    db.session.rollback()
    assert (
        db.session.execute(
            sa.select(Delivery.disbursement_id).where(Delivery.import_id.is_not(None))
        )
        .scalars()
        .all()[-1]
        == fourth.id
    )
