"""The open items staff chase (receipts, reports, instalments, payments a statement or the
payee side reported short or failed, grants without a plan) and the first payments, kept
as rows are written: the dashboard, Follow-up, finance's list to pay and the instalment
alerts give the same figures, over exactly the cases each reader may open, after any
sequence of the fund's work; `check`
finds the kept rows equal to their rule worked out again; the dashboard reads none of the
rows it counts."""

import importlib.util
import itertools
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import current_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases.access import visible_cases
from hrdfund.cases.models import Application
from hrdfund.cases.services import submit_report
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import followup, open_items, problems, receipts, reconcile
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.alerts import queue_instalment_alerts
from hrdfund.disbursements.checks import check_ledger
from hrdfund.disbursements.to_pay import count_to_pay, grants_to_pay
from hrdfund.grants import plans
from hrdfund.grants.models import Grant, GrantStatus
from hrdfund.ledger.models import (
    Disbursement,
    ReceiptAnswer,
    ReceiptResolution,
)
from hrdfund.ops import retention
from hrdfund.reports import dashboard
from hrdfund.reviews.services import declare_conflict
from tests.conftest import MoneyWorld, pay, signed_in
from tests.test_ledger_property import build_world, empty_database

_refs = itertools.count(1)


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    # Finance's alert address: an alert is queued only for staff it can reach.
    world.finance.contact = "finance@fund.example"
    db.session.commit()
    return world


def _settings():
    config = current_app.config
    return (
        config["RECEIPT_OVERDUE_DAYS"],
        config["REPORT_OVERDUE_DAYS"],
        config["INSTALMENT_NOTICE_DAYS"],
    )


def _by_rule(user, today):
    """The figures worked out here from the rule itself over the cases ``user`` may open,
    without the kept rows: what every page must say."""
    receipt_days, report_days, notice = _settings()
    rows = open_items.open_rows().subquery()
    found = db.session.execute(
        sa.select(rows.c.kind, rows.c.day)
        .join(Application, Application.id == rows.c.application_id)
        .where(visible_cases(user))
    ).all()

    def day(value):
        return date.fromisoformat(value[:10]) if isinstance(value, str) else value

    def count(kind, last=None):
        return sum(1 for k, d in found if k == kind and (last is None or day(d) <= last))

    return {
        "receipts": count("receipt", today - timedelta(days=receipt_days)),
        "reports": count("report", today - timedelta(days=report_days)),
        "instalments_late": count("instalment", today - timedelta(days=1)),
        "instalments_due": count("instalment", today + timedelta(days=notice)),
        "mismatches": count("mismatch") + count("answer"),
        "to_pay": count("instalment", today + timedelta(days=notice)) + count("unplanned"),
    }


def _follow_up(user, today):
    """What Follow-up and finance's list to pay say: their rows counted, and their counts."""
    receipt_days, report_days, notice = _settings()
    lists = {
        "receipts": followup.receipts_overdue(user, today, receipt_days),
        "reports": followup.reports_overdue(user, today, report_days),
        "instalments_due": followup.instalments_due(user, today, notice),
        "mismatches": followup.mismatches(user),
    }
    counted = {
        "receipts": followup.receipts_overdue(user, today, receipt_days, count=True),
        "reports": followup.reports_overdue(user, today, report_days, count=True),
        "instalments_due": followup.instalments_due(user, today, notice, count=True),
        "mismatches": followup.mismatches(user, count=True),
    }
    figures = {name: len(rows) for name, rows in lists.items()}
    assert figures == counted
    figures["instalments_late"] = sum(
        1 for instalment, *_rest in lists["instalments_due"] if instalment.due_on < today
    )
    listed, more = grants_to_pay(user, today, notice, 1, 1000)
    assert not more
    figures["to_pay"] = len(listed)
    assert count_to_pay(user, today, notice) == len(listed)
    return figures, lists


def _dashboard(user, today):
    found = dashboard.money_things(user, today)
    return {name: found[name] for name in _by_rule(user, today)}


def _payee_reports(user):
    """The payee side's reports of a payment short or not received that Follow-up must
    list, worked out here from the answers themselves over the cases ``user`` may open: the
    answer that stands (the latest to its payment) says less arrived, or nothing, and
    finance has recorded no resolution of it."""
    later = sa.orm.aliased(ReceiptAnswer)
    return set(
        db.session.execute(
            sa.select(ReceiptAnswer.id)
            .join(Disbursement, Disbursement.id == ReceiptAnswer.disbursement_id)
            .join(Grant, Grant.id == Disbursement.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(
                visible_cases(user),
                ReceiptAnswer.answer != "received",
                ReceiptAnswer.id.not_in(sa.select(ReceiptResolution.answer_id)),
                ~sa.exists().where(
                    later.disbursement_id == ReceiptAnswer.disbursement_id,
                    later.id > ReceiptAnswer.id,
                ),
            )
        ).scalars()
    )


def _agree(users, today):
    for user in users:
        expected = _by_rule(user, today)
        follow_up, lists = _follow_up(user, today)
        assert _dashboard(user, today) == expected, user.role
        assert follow_up == expected, user.role
        listed = {m.answer.id for m in lists["mismatches"] if m.by_payee}
        assert listed == _payee_reports(user), user.role
    assert open_items.differences() == []


def _backfill_agrees():
    """The open items the migration that brings the table works out from the rows, in its
    own SQL, are the rows the rule finds: a database upgraded with payments, answers and
    resolutions in it starts with the counts the rule gives."""
    path = next(
        Path(current_app.root_path).parent.glob("migrations/versions/*_5d2e8b1c7a43_open_items.py")
    )
    spec = importlib.util.spec_from_file_location("open_items_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    def rows(query):
        return sorted(tuple(str(value)[:10] for value in row) for row in db.session.execute(query))

    sql = migration.rule(db.session.get_bind().dialect.name)
    # That SQL also reads the receipts kept before answers, a table a later revision
    # turned into answers: here it is empty, as it is for that revision's rows.
    db.session.execute(sa.text("CREATE TEMPORARY TABLE receipts (disbursement_id INTEGER)"))
    backfilled = rows(sa.text(sql))
    db.session.execute(sa.text("DROP TABLE receipts"))
    assert backfilled == rows(open_items.open_rows())
    assert {row[0] for row in backfilled} >= {"answer", "receipt", "mismatch"}


def _statement(world, *lines):
    data = "reference,amount,currency,date,status\n" + "".join(f"{line}\n" for line in lines)
    reconcile.import_statement(world.fund.id, world.finance, data.encode())
    db.session.commit()


def _late_of_every_kind(world, name, today):
    """A grant with a payment nobody confirmed, no report, a late tranche, one due soon,
    and a payment the bank reported short; and a grant without a plan."""
    grant = world.grant("3000", name=name)
    world.plan(grant, count=3, starts_on=today - timedelta(days=90), interval_days=85)
    ref = f"TRF-{next(_refs)}"
    pay(world, grant, "1000", paid_on=today - timedelta(days=89), reference=ref)
    _statement(world, f"{ref},900.00,EUR,{today - timedelta(days=80)},delivered")
    unplanned = world.grant("500", name=f"{name} unplanned")
    return grant, unplanned


def test_every_page_gives_the_same_late_items_over_the_cases_each_reader_may_open(app, world):
    """A world with late items of every kind, a conflict declared and a case purged: the
    dashboard, Follow-up, the list to pay and the rule worked out from scratch agree for
    each reader; the declarer does not count the case; the alerts name every instalment
    due by today, and only those."""
    today = utcnow().date()
    mine, _mine_unplanned = _late_of_every_kind(world, "Mine", today)
    theirs, theirs_unplanned = _late_of_every_kind(world, "Conflicted", today)
    # Settled, confirmed and reported: nothing left to chase on it.
    done = world.grant("1000", name="Done")
    world.plan(done, kind="one_off", starts_on=today - timedelta(days=100))
    paid = pay(world, done, "1000", paid_on=today - timedelta(days=99))
    receipts.answer_receipt(paid, world.applicant, "received")
    submit_report(done.application, world.applicant, "yes", "yes")
    # Failed and taken back only in part.
    failed = world.grant("1000", name="Failed")
    world.plan(failed, kind="one_off", starts_on=today - timedelta(days=30))
    gone = pay(world, failed, "1000", paid_on=today - timedelta(days=29), reference="TRF-F")
    db.session.commit()
    declare_conflict(theirs.application, world.m1)
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    m1, m2 = _dashboard(world.m1, today), _dashboard(world.m2, today)
    before = dict(m1)
    # The declarer counts none of the case's items: its payment nobody confirmed, its
    # missing report, its tranche overdue and its payment reported short.
    assert {name: m2[name] - m1[name] for name in m1} == dict.fromkeys(m1, 1)
    assert m2["mismatches"] == 2 and m2["reports"] == 2 and m2["instalments_late"] == 2

    # The payee side's answers, of every kind: any answer confirms the payment; an answer
    # that stands saying less arrived, or nothing, is reported short or failed until
    # finance resolves it or the payee side answers it arrived.
    answered = world.grant("3000", name="Answered")
    world.plan(answered, kind="one_off", starts_on=today - timedelta(days=100))
    sent = [
        pay(world, answered, "400", instalment=1, paid_on=today - timedelta(days=90 - i))
        for i in range(6)
    ]
    got, less, lost, fixed, found, worse = sent
    receipts.answer_receipt(got, world.applicant, "received")
    receipts.answer_receipt(less, world.applicant, "less", Decimal("300.00"), "EUR")
    receipts.answer_receipt(lost, world.applicant, "not_received", note="Nothing came")
    short = receipts.answer_receipt(fixed, world.applicant, "less", Decimal("100.00"), "EUR")
    receipts.answer_receipt(found, world.applicant, "not_received")
    receipts.answer_receipt(worse, world.applicant, "received")
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    # One at a time, each written by its own service: the counts follow at once.
    problems.resolve_receipt_problem(short, world.finance, "contacted")
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    receipts.answer_receipt(found, world.applicant, "received")
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    receipts.answer_receipt(worse, world.applicant, "less", Decimal("350.00"), "EUR")
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    m1 = _dashboard(world.m1, today)
    # Every payment answered: none overdue; less, not received and the later less stand.
    assert m1["receipts"] == before["receipts"]
    assert m1["mismatches"] == before["mismatches"] + 3
    reported = {m.answer.disbursement_id for m in followup.mismatches(world.finance) if m.by_payee}
    assert reported == {less.id, lost.id, worse.id}
    _backfill_agrees()
    page = signed_in(app, world.finance).get("/dashboard").get_data(as_text=True)
    shown = _dashboard(world.finance, today)["mismatches"]
    assert f"{shown} payments reported short or failed" in page
    m2 = _dashboard(world.m2, today)

    # Reversed in part after the bank said it failed: still to chase until taken back.
    payments.reverse_disbursement(gone, world.finance, "returned", amount=Decimal("400"))
    db.session.commit()
    _statement(world, f"TRF-F,0,EUR,{today - timedelta(days=20)},failed")
    _agree([world.m1, world.m2, world.finance], today)

    # The alerts name exactly the instalments Follow-up lists as due by today.
    queue_instalment_alerts(today)
    db.session.commit()
    alerted = {  # once per instalment and finance officer
        key.rsplit(":", 1)[0]
        for key in db.session.execute(
            sa.select(Alert.once_key).where(Alert.kind == AlertKind.INSTALMENT_DUE)
        ).scalars()
    }
    _figures, lists = _follow_up(world.finance, today)
    due = {f"instalment:{i.id}" for i, *_rest in lists["instalments_due"] if i.due_on <= today}
    assert due and alerted == due

    # Closing a grant ends its instalments and its unplanned line; a purged case leaves
    # every list.
    plans.close_grant(theirs_unplanned, world.m1, "not needed")
    db.session.commit()
    assert theirs_unplanned.status == GrantStatus.CLOSED
    retention._reduce_cases([mine.application_id], {}, utcnow())
    db.session.commit()
    _agree([world.m1, world.m2, world.finance], today)
    assert _dashboard(world.m1, today)["receipts"] == 0


def _statements(engine):
    """Record the SQL statements ``engine`` runs, for the block that uses it."""
    seen = []

    def remember(_conn, _cursor, statement, *_args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", remember)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", remember)


@pytest.mark.parametrize("reader", ["m1", "finance"])
def test_the_dashboard_reads_none_of_the_rows_it_counts(app, world, reader):
    """The dashboard's counts of what is late and its days to first payment read the kept
    rows only: not the payments, receipts, deliveries, reports, instalments or grants, which
    grow with every payment ever made (at 100,000 applications, 1.5 s of the page)."""
    today = utcnow().date()
    _late_of_every_kind(world, "One", today)
    client = signed_in(app, getattr(world, reader))
    seen, stop = _statements(db.engine)
    try:
        page = client.get("/dashboard").get_data(as_text=True)
    finally:
        stop()
    assert "receipt not confirmed" in page
    read = " ".join(seen)
    for table in (
        "disbursements",
        "receipts",
        "receipt_answers",
        "receipt_resolutions",
        "deliveries",
        "use_of_funds_reports",
    ):
        assert not re.search(rf"\b(FROM|JOIN) {table}\b", read), table
    assert not re.search(r"\b(FROM|JOIN) instalments\b", read)


# -- any sequence of the fund's work ------------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "grant",
                "plan",
                "pay",
                "reverse",
                "confirm",
                "less",
                "not_received",
                "resolve",
                "report",
                "short",
                "failed",
                "close",
                "conflict",
            ]
        ),
        st.integers(0, 5),
        st.integers(-120, 20),
    ),
    min_size=1,
    max_size=14,
)


class Work:
    """The fund's work, step by step, through the real services."""

    def __init__(self, world):
        self.world, self.grants, self.paid = world, [], []
        self.today = utcnow().date()

    def _pick(self, items, index):
        return items[index % len(items)] if items else None

    def answer(self, kind, index):
        """A reversal, a payee's answer (received, less, not received) or finance's
        resolution of the answer that stands, on one of the payments."""
        world = self.world
        payment, _ref = self._pick(self.paid, index)
        if kind == "reverse":
            payments.reverse_disbursement(
                payment, world.finance, "returned", amount=Decimal("100") * (index % 3 + 1)
            )
        elif kind == "confirm":
            receipts.answer_receipt(payment, world.applicant, "received")
        elif kind == "less":
            amount = Decimal("100.00") * (index % 3 + 1)
            receipts.answer_receipt(payment, world.applicant, "less", amount, "EUR")
        elif kind == "not_received":
            receipts.answer_receipt(payment, world.applicant, "not_received")
        else:
            latest = receipts.latest_answer(payment)
            if latest is not None:
                problems.resolve_receipt_problem(latest, world.finance, "contacted")

    def run(self, kind, index, days):
        world, day = self.world, self.today + timedelta(days=days)
        grant = self._pick(self.grants, index)
        try:
            if kind == "grant" or grant is None:
                self.grants.append(world.grant("2000", name=f"Defender {len(self.grants)}"))
            elif kind == "plan":
                world.plan(grant, kind="tranches", count=2, starts_on=day, interval_days=20)
            elif kind == "pay":
                due = payments.grant_instalments(grant)
                ref = f"TRF-{next(_refs)}"
                self.paid.append(
                    (
                        pay(
                            world,
                            grant,
                            "500",
                            instalment=(index % len(due)) + 1 if due else None,
                            paid_on=min(day, self.today),
                            reference=ref,
                        ),
                        ref,
                    )
                )
            elif kind in ("reverse", "confirm", "less", "not_received", "resolve") and self.paid:
                self.answer(kind, index)
            elif kind in ("short", "failed") and self.paid:
                _payment, ref = self._pick(self.paid, index)
                amount = "400.00" if kind == "short" else "0"
                status = "delivered" if kind == "short" else "failed"
                _statement(world, f"{ref},{amount},EUR,{self.today},{status}")
            elif kind == "report":
                submit_report(grant.application, world.applicant, "yes", "no")
            elif kind == "close":
                plans.close_grant(grant, world.m1, "done")
            elif kind == "conflict":
                declare_conflict(grant.application, world.m2)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 (a step the rules refuse changes nothing)
            db.session.rollback()
            if "Error" not in type(exc).__name__:
                raise


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
# A payee's answers one after another, and finance resolving the one that stands.
@example(
    steps=[
        ("grant", 0, 0),
        ("pay", 0, -30),
        ("less", 0, 0),
        ("resolve", 0, 0),
        ("not_received", 0, 0),
        ("confirm", 0, 0),
        ("not_received", 0, 0),
        ("resolve", 0, 0),
    ]
)
def test_after_any_work_the_kept_items_are_the_rule_and_every_page_agrees(app, backend, steps):
    """Grants, plans, payments, reversals, the payee side's answers of every kind and
    finance's resolutions, reports, bank statements, closures and conflicts in any order:
    after each step the kept rows are what the rule finds from scratch, and the dashboard
    and Follow-up say the same for every reader."""
    empty_database(backend)
    world = build_world()
    work = Work(world)
    for step in steps:
        work.run(*step)
        assert check_ledger() == []
        _agree([world.m1, world.m2, world.finance], work.today)
