"""On PostgreSQL a transaction that wrote nothing ends with COMMIT, not ROLLBACK: psycopg
forgets every statement it prepared at a rollback, so with each page that only reads ending
in one, the server planned nearly every statement afresh. A transaction that wrote, holds
unsaved changes or failed is still rolled back."""

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import User
from hrdfund.core.extensions import (
    db,
    end_read,
    end_transaction,
    read_by_default,
    restore_mode,
)
from tests.conftest import login, make_case


def _prepared_on_the_app_connection():
    with db.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_pages_that_only_read_keep_their_statements_prepared(app, client, fund, make_user):
    manager = make_user("manager")
    for _ in range(3):
        make_case(fund)
    login(client, manager)
    db.session.remove()
    # One connection in the pool, so the page's connection is the one asked after.
    db.engine.dispose()
    for _ in range(8):
        assert client.get("/cases").status_code == 200
    assert db.engine.pool.checkedout() == 0
    # psycopg prepares a statement on its fifth run on a connection; the queue's own
    # statements ran eight times.
    assert _prepared_on_the_app_connection() >= 5


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_transaction_that_failed_is_rolled_back(app):
    with pytest.raises(sa.exc.ProgrammingError):
        db.session.execute(sa.text("SELECT no_such_column FROM users"))
    end_read(db.session)
    # The session works again: the failed transaction was rolled back, not left pending.
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_a_transaction_that_wrote_is_rolled_back(app, fund, backend):
    db.session.execute(sa.insert(User).values(login="never-kept", role="applicant", uid="x1"))
    end_transaction(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_unsaved_changes_are_rolled_back(app, fund, backend):
    db.session.add(User(login="never-added", role="applicant"))
    end_transaction(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_a_read_ends_and_reads_again_afresh(app, fund, backend):
    """Ended as a read, the transaction is over: a change committed elsewhere since is
    seen by the next statement."""
    before = db.session.execute(sa.select(sa.func.count(User.id))).scalar()
    end_transaction(db.session)
    assert not db.session().in_transaction()
    with db.engine.begin() as other:
        other.execute(sa.insert(User).values(login="added-elsewhere", role="applicant", uid="x2"))
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == before + 1


def test_a_read_on_another_connection_does_not_hide_a_write(app, fund, backend):
    """What the session's transaction wrote stays known while another connection begins
    and ends a read (a document's pieces are streamed so): the write is rolled back."""
    db.session.execute(sa.insert(User).values(login="never-kept", role="applicant", uid="x3"))
    token = read_by_default()  # on SQLite a reader beside the session's writer
    try:
        with db.engine.connect() as other:
            other.execute(sa.select(sa.literal(1)))
            other.commit()
    finally:
        restore_mode(token)
    end_transaction(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0
