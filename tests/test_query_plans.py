"""The queue and a pool's page read a page of rows in the order they list them from an
index, stopping after the page, rather than sorting every waiting case or every payment of
the pool; a pool's page counts its rows without joining each one to its case. What the
database plans is read from its own EXPLAIN, on SQLite and PostgreSQL. On PostgreSQL the
tables of a test are too small for the planner to prefer any index, so sorting is priced
out first: what is checked is that an index can give the order."""

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import Role, User
from hrdfund.cases.models import QUEUE_STATES, ApplicationStatus
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.reviews.queue import WAITING
from tests.conftest import MoneyWorld, login, make_case, pay


def _tables():
    return ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)


@pytest.fixture
def app(app):
    """On PostgreSQL, the test's tables start as new files: the planner prices a read by
    a table's and an index's size on disk, and earlier tests leave their deleted rows'
    pages behind (the suite empties its tables by DELETE), so the plan would depend on
    which tests this process ran before."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {_tables()} RESTART IDENTITY")
    return app


def _statements(client, path):
    """Every SQL statement the page ran, with its parameters. On PostgreSQL the planner
    is given statistics of this test's rows first, not whatever the server's autovacuum
    last took (of an earlier test's rows, or of none)."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text(f"ANALYZE {_tables()}"))
        db.session.commit()
    seen = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    return seen


def _plan(statement, parameters):
    """The plan of ``statement``: on SQLite the lines of EXPLAIN QUERY PLAN at the top
    level (not inside a subquery) as (detail, top level); on PostgreSQL the lines of
    EXPLAIN with sorting priced out."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_sort = off")
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        db.session.rollback()
        return [row[0] for row in rows]
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return [(detail, parent == 0) for _id, parent, _unused, detail in rows]


def _read_in_order(plan, index):
    """Whether ``plan`` reads its rows through ``index`` and does not sort them after."""
    if isinstance(plan[0], tuple):  # SQLite
        uses = any(index in detail for detail, _top in plan)
        sorts = any("TEMP B-TREE" in detail for detail, top in plan if top)
        return uses and not sorts
    # PostgreSQL: the index is scanned, and the node under the LIMIT is no sort.
    uses = any(index in line for line in plan)
    return uses and not re.match(r"\s*->\s+(Incremental )?Sort\b", plan[1])


def _listing(statements, table):
    """The page's statement that lists a page of ``table``'s rows."""
    (found,) = [
        (s, p)
        for s, p in statements
        if re.match(rf"SELECT {table}\.u?id\b", s) and "ORDER BY" in s and "LIMIT" in s
    ]
    return found


def test_the_queue_lists_exactly_the_cases_its_index_holds():
    """The index of the queue holds the waiting cases, which the queue names in the
    index's own order (SQLite uses a partial index only for the very same terms)."""
    assert set(QUEUE_STATES) == set(WAITING)
    assert list(QUEUE_STATES) == sorted(QUEUE_STATES)


def test_the_queues_first_page_reads_its_cases_in_order_from_an_index(client, fund, make_user):
    login(client, make_user("manager"))
    now = utcnow()
    for i in range(6):
        make_case(fund, submitted_at=now - timedelta(hours=i))
    for path in ("/cases", "/cases?category=relocation&urgency=urgent"):
        statement, parameters = _listing(_statements(client, path), "applications")
        assert _read_in_order(_plan(statement, parameters), "ix_applications_next_due"), path


def test_the_queue_sorts_by_the_next_target_as_it_moves(client, fund, make_user):
    """The next target is the first response until there is one, then the decision; the
    database keeps it as the targets change, and a case with none comes last."""
    login(client, make_user("manager"))
    now = utcnow()
    answered = make_case(
        fund,
        submitted_at=now - timedelta(hours=3),
        response_due_at=now + timedelta(hours=1),
        decision_due_at=now + timedelta(hours=50),
    )
    waiting = make_case(
        fund,
        submitted_at=now - timedelta(hours=2),
        response_due_at=now + timedelta(hours=10),
        decision_due_at=now + timedelta(hours=40),
    )
    without = make_case(
        fund, submitted_at=now - timedelta(hours=1), response_due_at=None, decision_due_at=None
    )

    def order():
        html = client.get("/cases").get_data(as_text=True)
        return sorted((answered.uid, waiting.uid, without.uid), key=html.index)

    assert order() == [answered.uid, waiting.uid, without.uid]
    answered.first_response_at = now
    answered.status = ApplicationStatus.IN_REVIEW
    db.session.commit()
    assert order() == [waiting.uid, answered.uid, without.uid]


def test_a_pools_page_lists_its_rows_from_indexes_and_counts_them_without_their_cases(
    app, fund, make_user, make_donor
):
    world = MoneyWorld(fund, make_user, make_donor)
    for n in range(3):
        grant = world.grant("300", name=f"Defender {n}")
        for k in range(2):
            pay(world, grant, "50", instalment=None, paid_on=date(2026, 3, 1 + n + k))
    # Another pool's payments, twice as many: a plan that walks every payment by date
    # and keeps the pool's costs more than one that reads the pool's alone, as it does
    # in a ledger of many pools.
    for n in range(3):
        grant = world.grant("300", pool=world.usd, currency="USD", name=f"Other {n}")
        for k in range(4):
            pay(world, grant, "50", "USD", instalment=None, paid_on=date(2026, 3, 1 + n + k))
    client = app.test_client()
    login(client, world.m1)
    statements = _statements(client, f"/pools/{world.eur.uid}")
    for table, index in (
        ("disbursements", "ix_disbursements_pool_sums"),
        ("allocations", "ix_allocations_pool_newest"),
    ):
        statement, parameters = _listing(statements, table)
        assert _read_in_order(_plan(statement, parameters), index), table
    counts = [s for s, _p in statements if re.search(r"\bcount\(", s)]
    assert counts
    assert not [s for s in counts if "JOIN applications" in s]


def _searches_only(statement, parameters, table):
    """Whether every read of ``table`` in the plan of ``statement`` looks its rows up by
    a key equal to a value (an index search), rather than reading the whole table, a
    whole index or a range of it (every payment with an instalment, say). On PostgreSQL
    sequential scans are priced out first, and a read must keep its rows to a key equal
    to a value, by its index or its filter."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        (plan,) = connection.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + statement, parameters
        ).scalar_one()
        db.session.rollback()
        nodes, reads = [plan["Plan"]], []
        while nodes:
            node = nodes.pop()
            nodes.extend(node.get("Plans", []))
            if node.get("Relation Name") == table:
                # With fresh statistics of a test's few rows the planner may read a whole
                # small index and filter it: the filter then says what is kept.
                kept = ("Index Cond", "Recheck Cond", "Filter")
                reads.append(" ".join(node.get(k, "") for k in kept))
        return all(" = " in condition for condition in reads)
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    reads = [d for _id, _parent, _unused, d in rows if re.match(rf"(SCAN|SEARCH) {table}\b", d)]
    return all(d.startswith("SEARCH") and "=?" in d for d in reads)


def test_a_paid_cases_page_reads_only_its_own_payments(app, fund, make_user, make_donor):
    """The next step of a paid case (the next instalment not paid in full) adds up the
    payments of that case's grant alone, not every payment of the fund: the case page
    costs the same on a fund with a hundred thousand payments as on a new one."""
    world = MoneyWorld(fund, make_user, make_donor)
    grants = [world.grant("300", name=f"Defender {n}") for n in range(3)]
    for grant in grants:
        world.plan(grant)
        pay(world, grant, "150")
    client = app.test_client()
    login(client, world.m1)
    statements = _statements(client, f"/applications/{grants[0].application.uid}")
    reading = [(s, p) for s, p in statements if re.search(r"\bFROM disbursements\b", s)]
    assert reading
    broad = [s for s, p in reading if not _searches_only(s, p, "disbursements")]
    assert not broad, broad


def test_a_waiting_cases_page_finds_the_staff_to_assign_among_its_funds_staff(
    app, fund, make_user, make_donor
):
    """The list of reviewers and managers a manager may assign a case to is read from the
    fund's staff, not by walking every account (each applicant has one) in login order."""
    world = MoneyWorld(fund, make_user, make_donor)
    # Applicants' accounts, made through the model: no password, so no hashing cost.
    db.session.add_all(User(login=f"applicant-{n:02d}", role=Role.APPLICANT) for n in range(300))
    case = world.recommended("Defender Waiting")
    case.status = ApplicationStatus.IN_REVIEW
    db.session.commit()
    if db.session.connection().dialect.name == "sqlite":
        # SQLite told what the fund holds, as the demo's load tells it: a few staff and
        # many applicants' accounts (PostgreSQL is given its statistics by _statements).
        db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    client = app.test_client()
    login(client, world.m1)
    statements = _statements(client, f"/applications/{case.uid}")
    html = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert f'<option value="{world.reviewer.id}"' in html
    reading = [(s, p) for s, p in statements if re.search(r"\bFROM users\b", s)]
    assert reading
    broad = [s for s, p in reading if not _searches_only(s, p, "users")]
    assert not broad, broad
