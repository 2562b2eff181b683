"""Reads never wait for writes. A page is answered while another connection holds the
write lock (SQLite) or the locks a payment holds (PostgreSQL: its pool's row, the defender's
and the audit chain's advisory locks); a download writes its audit entry in a short
transaction of its own, the append the last statement before the commit; and a page
rendered after a form was sent holds no lock while it renders."""

import contextlib
import io
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa
from flask import template_rendered

from hrdfund import audit
from hrdfund.cases.models import Document
from hrdfund.core.extensions import db, has_written
from hrdfund.pools.models import Pool
from tests.conftest import PASSWORD, MoneyWorld, login, signed_in
from tests.pdfs import PDF
from tests.test_models import _another_writer_gets_the_lock

#: How long a page may take while the lock is held elsewhere: far below SQLite's busy
#: timeout (30 s), which a page waiting for the lock would sit out.
ANSWERED_WITHIN = 8


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1200", name="Reader Defender")
    # Plain values: reading them later begins no transaction of the test's own.
    world.case_uid = grant.application.uid
    world.defender_key = grant.application.defender_key
    world.pool_id, world.pool_uid, world.fund_id = world.eur.id, world.eur.uid, world.fund.id
    db.session.commit()
    return world


def _pages(world):
    case = world.case_uid
    return [
        "/dashboard",
        "/cases",
        f"/applications/{case}",
        f"/pools/{world.pool_uid}",
        "/pools",
        "/coverage",
        "/payments/follow-up",
        "/search?q=Reader",
        "/account",
    ]


@contextlib.contextmanager
def _writer_holding_the_locks(world):
    """Another connection in the middle of a payment: on SQLite holding the write lock
    (BEGIN IMMEDIATE); on PostgreSQL the pool's row (FOR UPDATE), the defender's lock and
    the fund's audit chain lock, with a row of the pool changed and not committed."""
    db.session.rollback()
    if db.engine.dialect.name == "sqlite":
        other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE pools SET name = name || ' (held)' WHERE id = ?", (world.pool_id,))
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    with db.engine.connect() as other:
        other.execute(sa.select(Pool.id).where(Pool.id == world.pool_id).with_for_update())
        other.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"defender:{world.defender_key}"},
        )
        other.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k, :c)"),
            {"k": audit.PG_LOCK_ID, "c": world.fund_id},
        )
        other.execute(
            sa.update(Pool).where(Pool.id == world.pool_id).values(name=Pool.name + " (held)")
        )
        try:
            yield
        finally:
            other.rollback()


def _get_in_thread(app, client, path):
    """Ask for ``path`` on a thread of its own, as another request would (with a session
    and a connection of its own); returns the thread and where its answer lands."""
    answer = {}

    def run():
        started = time.monotonic()
        try:
            with app.app_context():
                answer["status"] = client.get(path).status_code
        except Exception as exc:  # noqa: BLE001  (the test reports what went wrong)
            answer["status"] = repr(exc)
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answer


def test_pages_are_answered_while_a_writer_holds_the_locks(app, world):
    """Staff keep working while a payment is being recorded: every page of theirs is
    answered at once, none waits for the writer to finish."""
    clients = {
        "manager": signed_in(app, world.m1),
        "finance": signed_in(app, world.finance),
        "reviewer": signed_in(app, world.reviewer),
    }
    db.session.commit()
    late, started = [], []
    with _writer_holding_the_locks(world):
        for role, client in clients.items():
            for path in _pages(world):
                thread, answer = _get_in_thread(app, client, path)
                started.append(thread)
                thread.join(ANSWERED_WITHIN)
                if thread.is_alive() or answer["status"] not in (200, 403):
                    late.append((role, path, answer.get("status", "waiting")))
                if thread.is_alive():
                    break  # the rest would wait too; the lock is released below
    # Only this test's requests: a daemon thread of another test in the same process (a
    # mail server, a live server) lives on until the run ends, and would be waited for.
    for thread in started:
        thread.join(60)
    assert late == []


def test_the_page_a_form_leads_to_is_rendered_with_no_lock(app, world, monkeypatch):
    """A form that shows a page after it is saved (new recovery codes) holds no lock while
    the page is rendered: another writer can take the lock then (SQLite); the request's
    transaction has written nothing and holds no advisory lock (PostgreSQL)."""
    client = signed_in(app, world.m1)
    db.session.commit()
    seen = []

    def rendered(_app, template, **_extra):
        if db.engine.dialect.name == "sqlite":
            free = _another_writer_gets_the_lock()
        else:  # a transaction that wrote nothing and holds no advisory lock
            advisory = db.session.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                )
            )
            free = not has_written() and advisory == 0
        seen.append((template.name, free))

    template_rendered.connect(rendered, app)
    try:
        response = client.post("/account/recovery-codes", data={"codes-password": PASSWORD})
    finally:
        template_rendered.disconnect(rendered, app)
    assert response.status_code == 200, response.status
    assert ("auth/recovery_codes.html", True) in seen, seen


class _Statements:
    """The statements one request runs, with where each transaction begins and ends."""

    def __init__(self):
        self.log = []

    def __call__(self, _conn, _cursor, statement, _params, _context, _many):
        self.log.append(" ".join(statement.split())[:80])

    def commit(self, _conn):
        self.log.append("COMMIT")

    def rollback(self, _conn):
        self.log.append("ROLLBACK")

    @contextlib.contextmanager
    def watching(self):
        events = [
            ("before_cursor_execute", self),
            ("commit", self.commit),
            ("rollback", self.rollback),
        ]
        for name, fn in events:
            sa.event.listen(db.engine, name, fn)
        try:
            yield self
        finally:
            for name, fn in events:
                sa.event.remove(db.engine, name, fn)

    def writing_transactions(self):
        """The transactions that wrote, each as the list of its statements."""
        found, current = [], []
        for line in self.log:
            if line in ("COMMIT", "ROLLBACK") or line.startswith("BEGIN"):
                if any(s.split()[0] in ("INSERT", "UPDATE", "DELETE") for s in current):
                    found.append(current)
                current = []
                if line.startswith("BEGIN"):
                    current = [line]
                continue
            current.append(line)
        return found


@pytest.mark.parametrize(
    "path, roles",
    [
        ("/cases/export.csv", ("reviewer", "m1")),
        ("/coverage.csv", ("reviewer", "m1", "finance")),
        ("/payments/follow-up.csv", ("m1", "finance")),
        ("/payments/export.csv", ("finance",)),
    ],
)
def test_a_download_writes_only_its_audit_entry_in_a_short_transaction(app, world, path, roles):
    """Each export is an entry in the audit chain (SECURITY.md 28), written in a transaction
    of its own once the file is built: the lock (SQLite's write lock, PostgreSQL's chain
    lock) covers the append and its commit, nothing else."""
    for role in roles:
        client = signed_in(app, getattr(world, role))
        db.session.commit()
        before = db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEvent))
        with _Statements().watching() as statements:
            response = client.get(path)
        assert response.status_code == 200, (role, path, response.status)
        after = db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEvent))
        assert after == before + 1
        wrote = statements.writing_transactions()
        assert len(wrote) == 1, wrote
        (transaction,) = wrote
        if db.engine.dialect.name == "sqlite":
            assert transaction[0] == "BEGIN IMMEDIATE", transaction
        # The append is the last statement; before it, the chain's lock and last entry.
        assert transaction[-1].startswith("INSERT INTO audit_events"), transaction
        locked = [i for i, s in enumerate(transaction) if "pg_advisory_xact_lock" in s]
        if db.engine.dialect.name == "postgresql":
            assert locked and len(transaction) - locked[0] <= 3, transaction
        assert len(transaction) <= 6, transaction


def test_a_document_download_decrypts_with_no_lock(app, client, world, make_user):
    """A document is decrypted and sent after its audit entry is committed: while it is
    read from the disk no transaction holds the lock."""
    login(client, world.applicant)
    uploaded = client.post(
        f"/applications/{world.case_uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "quote.pdf")},
    )
    assert uploaded.status_code == 302, uploaded.status
    doc = db.session.scalar(sa.select(Document.uid))
    staff = signed_in(app, world.m1)
    db.session.commit()
    with _Statements().watching() as statements:
        response = staff.get(f"/applications/{world.case_uid}/documents/{doc}")
    assert response.status_code == 200
    wrote = statements.writing_transactions()
    assert len(wrote) == 1 and wrote[0][-1].startswith("INSERT INTO audit_events"), wrote
    # Who may see the case was decided before: the lock covers the entry only.
    assert not any("FROM applications" in s for s in wrote[0]), wrote
    assert len(wrote[0]) <= 6, wrote


def _create_fund(app, make_user):
    chief = make_user("network_admin")
    client = signed_in(app, chief)
    data = {
        "fund-name": "Fund Made Here",
        "fund-admin_login": "made.admin",
        "fund-admin_password": "a long first passphrase 42",
    }
    return lambda: client.post("/network/funds", data=data)


def _accept_invitation(app, make_user):
    from tests.test_invitations import _form, _invite  # noqa: PLC0415

    client = signed_in(app, make_user("admin"))
    _response, path = _invite(client)
    invited = app.test_client()

    def act():
        assert invited.get(path).status_code == 303
        return invited.post("/invitation", data=_form(path))

    return act


@pytest.mark.parametrize("path", [_create_fund, _accept_invitation], ids=lambda f: f.__name__)
def test_a_new_account_s_password_is_hashed_with_no_lock_held(app, make_user, path):
    """The first password of an account made in the browser (a fund's administrator, an
    invited member of staff) is hashed before the transaction that makes the account
    begins: no transaction of the request is open, and on SQLite another connection takes
    the write lock at once."""
    from hrdfund.auth import services  # noqa: PLC0415
    from tests.test_sign_in_limits import _WatchedHasher  # noqa: PLC0415

    act = path(app, make_user)
    db.session.commit()
    seen = []
    real = services._hasher
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "_hasher", lambda: _WatchedHasher(real(), seen))
        response = act()
    assert response.status_code in (302, 303), response.status
    assert seen, "no password was hashed"
    assert all(seen), f"{seen.count(False)} of {len(seen)} hashes ran under a write lock"
