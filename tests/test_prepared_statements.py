"""On PostgreSQL a transaction that wrote nothing ends with COMMIT, not ROLLBACK: psycopg
forgets every statement it prepared at a rollback, so with each page that only reads ending
in one, the server planned nearly every statement afresh. A transaction that wrote, holds
unsaved changes or failed is still rolled back. A refusal, by a service or by a form's own
checks, ends the same way."""

import pytest
import sqlalchemy as sa
from flask import abort, render_template

from hrdfund.auth.models import User
from hrdfund.core.extensions import (
    db,
    end_read,
    read_by_default,
    restore_mode,
)
from hrdfund.core.work import perform
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
def test_a_read_whose_commit_fails_is_rolled_back(app):
    """A flush that failed leaves the session's transaction unusable: its COMMIT is
    refused, and the read is rolled back instead, the session working again."""
    db.session.add(User(login="twice-over", role="applicant", uid="same"))
    db.session.add(User(login="twice-over-2", role="applicant", uid="same"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.expunge_all()
    end_read(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_a_transaction_that_wrote_is_rolled_back(app, fund, backend):
    db.session.execute(sa.insert(User).values(login="never-kept", role="applicant", uid="x1"))
    end_read(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_unsaved_changes_are_rolled_back(app, fund, backend):
    db.session.add(User(login="never-added", role="applicant"))
    end_read(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def test_a_read_ends_and_reads_again_afresh(app, fund, backend):
    """Ended as a read, the transaction is over: a change committed elsewhere since is
    seen by the next statement."""
    before = db.session.execute(sa.select(sa.func.count(User.id))).scalar()
    end_read(db.session)
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
    end_read(db.session)
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == 0


def _write_then(app, answer):
    """A form of the test's own that writes a row, then answers with ``answer``."""

    def view():
        db.session.execute(
            sa.insert(User).values(login="written-then-refused", role="applicant", uid="x4")
        )
        return answer()

    app.add_url_rule("/test/write-then", "write_then", view, methods=["POST"])


@pytest.mark.parametrize(
    "answer",
    [
        lambda: abort(404),
        lambda: render_template("errors/404.html", code=404, language_back="/"),
    ],
    ids=["refused", "page"],
)
def test_a_request_that_wrote_never_ends_as_a_read(app, client, fund, make_user, answer):
    """A form that wrote and then answered with a refusal or a page, committing nothing,
    leaves its write uncommitted: the page rendered and the request's end do not end its
    transaction as a read (a COMMIT on PostgreSQL)."""
    _write_then(app, answer)
    login(client, make_user("manager"))
    client.post("/test/write-then")
    db.session.rollback()  # what the end of the app context does in a server
    found = db.session.execute(
        sa.select(sa.func.count(User.id)).where(User.login == "written-then-refused")
    ).scalar()
    assert found == 0


class Refused(Exception):
    """A service's own refusal, for `perform` to answer with."""


def _users():
    return db.session.execute(sa.select(sa.func.count(User.id))).scalar()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_refusal_that_wrote_nothing_keeps_the_statements_prepared(app, fund):
    """Most refusals come before anything is written (a pool short of money, a case that
    moved on): `perform` ends them as a read, and psycopg keeps what it prepared."""

    fund_id = fund.id

    def refused_after_reading():
        db.session.execute(sa.select(User.id).where(User.fund_id == fund_id)).all()
        raise Refused("the rules refuse it")

    db.session.remove()
    db.engine.dispose()
    for _ in range(8):
        assert perform(refused_after_reading, refused=Refused).words == "the rules refuse it"
    assert _prepared_on_the_app_connection() >= 1


def test_a_refusal_after_a_write_keeps_nothing(app, fund, backend):
    def refused_after_writing():
        db.session.execute(sa.insert(User).values(login="half-done", role="applicant", uid="x5"))
        raise Refused("the rules refuse it")

    before = _users()
    assert not perform(refused_after_writing, refused=Refused).ok
    assert _users() == before


def test_a_refusal_holding_unsaved_changes_keeps_nothing(app, fund, backend):
    def refused_after_adding():
        db.session.add(User(login="never-flushed", role="applicant"))
        raise Refused("the rules refuse it")

    before = _users()
    assert not perform(refused_after_adding, refused=Refused).ok
    assert _users() == before


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_refused_form_keeps_the_statements_prepared(app, client, fund, make_user):
    """A form refused by its own checks (a note with no words) comes back on its page:
    the request wrote nothing but the form kept for that page, and psycopg keeps what it
    prepared."""
    manager = make_user("manager")
    notes = f"/applications/{make_case(fund).uid}/notes"
    login(client, manager)
    db.session.remove()
    db.engine.dispose()
    for _ in range(8):
        answer = client.post(notes, data={"body": ""})
        assert answer.status_code == 303
    assert db.engine.pool.checkedout() == 0
    assert _prepared_on_the_app_connection() >= 5
