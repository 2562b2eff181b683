"""What sending an application costs the server, as the crisis wave sends it: choose the
kind of support (nothing stored), save the first step (the draft opens), send the whole
form complete. A fund's defenders apply by the hundred in a crisis while its staff work,
so each submission runs a known, small number of SQL statements, and the audit chain's
lock, which one fund's submissions take in turn, is taken only for the append at the
commit."""

import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.extensions import db
from tests.conftest import login

#: The whole application form, complete, for an urgent relocation.
APPLICATION = {
    "defender_name": "Bench defender",
    "defender_work": "Documents land evictions in the valley.",
    "threat": "Followed and threatened after a hearing.",
    "urgency_reason": "Threats in the last week.",
    "other_funders": "None",
    "country": "KE",
    "urgency": "urgent",
    "details-scope": "region",
    "details-destination_country": "UG",
    "details-people": "2",
    "details-months": "3",
    "details-stay_plan": "With a host organisation.",
    "details-security_plan": "New phone, varied routes.",
    "details-exit_plan": "Return once the case is heard.",
    "details-host_organisation": "A partner shelter",
    "budget-0-description": "Rent for three months",
    "budget-0-amount": "900",
    "budget-1-description": "Bus fares",
    "budget-1-amount": "60",
    "dependants-0-relation": "child",
    "dependants-1-relation": "partner",
    "references-0-name": "A colleague",
    "references-0-organisation": "A network",
    "references-0-contact": "Signal",
    "references-1-name": "A lawyer",
    "references-1-contact": "Office phone",
    "submit": "1",
}
FIRST_STEP = {
    "category": "relocation",
    "defender_name": "Bench defender",
    "country": "KE",
    "defender_work": "Documents land evictions in the valley.",
    "threat": "Followed and threatened after a hearing.",
}

#: Statements of the two requests that write (saving the first step; sending the whole
#: form), BEGIN and COMMIT aside, measured when the budget was set. On PostgreSQL the
#: first step runs 8: the account, the funds, the case, its first status, the case again
#: with its answers, the chain's lock, its last entry, one INSERT of the audit entries.
#: Sending runs 20: the account, the case, its budget lines, dependants and references as
#: saved before, its two consents, the case's row locked before its status moves, the
#: fund's targets, the case code's counter, one UPDATE of the case, one INSERT each of its
#: budget lines, dependants and references, its status change, the staff to alert, one
#: INSERT of their alerts, the chain's lock, its last entry, one INSERT of both audit
#: entries. SQLite runs no lock statement (it reads the case under the write lock), and
#: reads the account and the fund (the first step) or the account and the case (sending)
#: before it takes the write lock and again under it (``reads_first``): 9 and 20. Each
#: budget has a margin of one: a statement more for a rule added later is fine; a write
#: per row, or an autoflush or a flush per audit entry back, is not.
BUDGET = {
    "sqlite": {"first_step": 9 + 1, "send": 20 + 1},
    "postgresql": {"first_step": 8 + 1, "send": 20 + 1},
}


class Statements:
    """The SQL statements run on the app's engine while counting, BEGIN and COMMIT aside."""

    def __init__(self):
        self.seen = []

    def __call__(self, _conn, _cursor, statement, *_args):
        if statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.seen.append(" ".join(statement.split()))

    def during(self, send):
        self.seen = []
        sa.event.listen(db.engine, "before_cursor_execute", self)
        try:
            return send(), list(self.seen)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", self)


def _submit(client, count):
    """Send an application as the wave does; the statements of each request."""
    answer, choose = count.during(
        lambda: client.get("/apply/new", query_string={"category": "relocation"})
    )
    assert answer.status_code == 200
    answer, first = count.during(lambda: client.post("/apply/new", data=FIRST_STEP))
    assert answer.status_code == 302 and "/steps/" in answer.location, answer.status_code
    edit = answer.location.rsplit("/steps/", 1)[0] + "/edit"
    answer, send = count.during(lambda: client.post(edit, data=APPLICATION))
    assert answer.status_code == 302 and not answer.location.endswith("/edit"), answer.status
    return {"choose": choose, "first_step": first, "send": send}


@pytest.fixture
def applicant_client(app, client, fund, make_user):
    # On the case's fund, with an alert address: the urgent case alerts them.
    make_user("manager", contact="manager@fund.example")
    make_user("manager", login="manager-too", contact="manager2@fund.example")
    login(client, make_user("applicant"))
    _submit(client, Statements())  # what a process loads once, loaded
    return client


def test_a_submission_runs_within_its_budget_of_statements(app, applicant_client):
    seen = _submit(applicant_client, Statements())
    sent = db.session.execute(
        sa.select(Application).order_by(Application.id.desc()).limit(1)
    ).scalar_one()
    assert sent.status == ApplicationStatus.SUBMITTED and sent.code is not None
    assert len(sent.budget_lines) == 2 and len(sent.dependants) == 2
    assert len(sent.references) == 2
    for request, budget in BUDGET[db.engine.dialect.name].items():
        assert len(seen[request]) <= budget, "\n".join([request, *seen[request]])
    # One INSERT for all the rows of each kind, however many the form sends.
    for table in ("budget_lines", "dependants", '"references"', "alerts", "audit_events"):
        inserts = [s for s in seen["send"] if s.startswith(f"INSERT INTO {table} ")]
        assert len(inserts) == 1, (table, seen["send"])


def test_the_audit_chain_is_read_and_locked_only_at_the_end(app, applicant_client):
    """The chain's last entry is read, and on PostgreSQL its lock taken, after everything
    else each request writes: the lock is held for the append and the commit only."""
    seen = _submit(applicant_client, Statements())
    for request in ("first_step", "send"):
        statements = seen[request]
        chain = [
            i
            for i, s in enumerate(statements)
            if "audit_events" in s or "pg_advisory_xact_lock(%(k)s" in s
        ]
        assert chain, statements
        assert chain == list(range(len(statements) - len(chain), len(statements))), "\n".join(
            statements
        )
        if db.engine.dialect.name == "postgresql":
            assert "pg_advisory_xact_lock" in statements[chain[0]]
            assert len(chain) == 3  # the lock, the last entry, one INSERT of the entries
        else:
            assert len(chain) == 2
    # Appended in the order they were recorded, and the chain verifies.
    fund_id = db.session.execute(sa.select(Application.fund_id).limit(1)).scalar_one()
    actions = db.session.execute(
        sa.select(AuditEvent.action).where(AuditEvent.chain == fund_id).order_by(AuditEvent.seq)
    ).scalars()
    assert list(actions)[-3:] == ["application.saved", "application.saved", "application.status"]
    assert audit.verify(fund=fund_id) == []
