"""Unbound extensions, initialised by create_app(), and the database's transaction modes."""

import contextlib
import contextvars
import logging

from flask_babel import Babel, Domain, get_locale
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import scoped_session

log = logging.getLogger("hrdfund")

#: Stable constraint names, so migrations diff cleanly on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


class _RequestDomain(Domain):
    """Flask-Babel's message domain, keeping the translations it gave last with the locale
    they were for. A page asks for them at each of its words (160 on a case page), and
    Flask-Babel looked up the request's context twice more and wrote out the locale's name
    each time: about a twentieth of a case page's time. A request's locale is one object;
    another (the next request's, a notice written in its reader's language) is looked up
    afresh."""

    def __init__(self):
        super().__init__(domain="messages")
        self._last = (None, None)

    def get_translations(self):
        locale = get_locale()
        last_locale, translations = self._last
        if locale is None or locale is not last_locale:
            translations = super().get_translations()
            self._last = (locale, translations)
        return translations


babel.domain_instance = _RequestDomain()


#: How the next SQLite transaction begins: with the write lock (``BEGIN IMMEDIATE``, the
#: default, so a balance read and the write that depends on it never interleave with
#: another writer), or deferred (``BEGIN``), as a reader beside any writer: inside
#: :func:`reading`, and for the whole of a request that only reads (GET, HEAD), where
#: :func:`writing` takes the lock for the short unit of work that writes.
_SQLITE_BEGIN = contextvars.ContextVar("hrdfund_sqlite_begin", default="BEGIN IMMEDIATE")
WRITE_LOCK = "BEGIN IMMEDIATE"
NO_WRITE_LOCK = "BEGIN"
#: Requests that only read: they run with no write lock, and write (an audit entry of a
#: download) only inside :func:`writing`.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The connections whose open transaction has written, in this context, by identity (kept
#: by the engine hooks in ``hrdfund/__init__.py``). By connection: a read on a connection
#: of its own (a document's pieces streamed) begins and ends without hiding what the
#: session's transaction wrote. A mark is dropped only as its connection's transaction
#: begins or ends: one left by a connection dropped without either errs on the safe side
#: (a read rolled back rather than committed), where forgetting marks wholesale could
#: hide a write still open.
_WROTE = contextvars.ContextVar("hrdfund_wrote", default=frozenset())


def sqlite_begin_statement():
    """The statement that begins the next SQLite transaction."""
    return _SQLITE_BEGIN.get()


def note_write(connection, wrote=True):
    """Record that ``connection``'s open transaction wrote (or, as a transaction begins or
    ends on it, that it has written nothing). Returns whether this is news."""
    written, key = _WROTE.get(), id(connection)
    if wrote == (key in written):
        return False
    _WROTE.set(written | {key} if wrote else written - {key})
    return True


def has_written():
    """Whether a transaction open in this context has written anything."""
    return bool(_WROTE.get())


def in_reading_mode():
    """Whether transactions begin now with no write lock (a read, or a request that only
    reads, outside :func:`writing`)."""
    return _SQLITE_BEGIN.get() == NO_WRITE_LOCK


def read_by_default():
    """Begin every transaction from here on with no write lock, until the token returned is
    given to :func:`restore_mode`: a request that only reads, or the rest of a request
    once nothing it holds is left to write (its page being rendered)."""
    return _SQLITE_BEGIN.set(NO_WRITE_LOCK)


def restore_mode(token):
    """End what :func:`read_by_default` began."""
    try:
        _SQLITE_BEGIN.reset(token)
    except ValueError:  # set in another context (a test's request kept open): the default
        _SQLITE_BEGIN.set(WRITE_LOCK)


#: Where a session keeps the audit entries recorded in its transaction and not yet
#: appended to their chains (``hrdfund.audit``): unsaved changes, as new rows are.
AUDIT_QUEUE = "hrdfund_audit_queue"


def has_unsaved(session):
    """Whether ``session`` holds changes not written yet: rows, or audit entries queued."""
    return bool(session.new or session.dirty or session.deleted or session.info.get(AUDIT_QUEUE))


def end_read(session):
    """End ``session``'s open transaction: rolled back when it wrote anything or holds
    changes not written yet; otherwise, on PostgreSQL, with COMMIT. For a transaction that
    wrote nothing a COMMIT is the same as a ROLLBACK but for one thing: psycopg forgets
    every statement it prepared at a rollback, and with every request that only reads
    ending in one, the server planned almost every statement it ran afresh. A transaction
    whose COMMIT fails (one left in error) is rolled back."""
    actual = session() if isinstance(session, scoped_session) else session
    if (
        actual.in_transaction()
        and not has_written()
        and not has_unsaved(actual)
        and actual.get_bind().dialect.name == "postgresql"
    ):
        try:
            actual.commit()
            return
        except SQLAlchemyError as exc:
            log.warning("a read ended in error (%s): rolled back", type(exc).__name__)
    actual.rollback()


def _refuse_unsaved(session, what):
    if has_unsaved(session):
        raise RuntimeError(f"{what} would drop unsaved changes")


@contextlib.contextmanager
def reading():
    """Run the statements inside in a transaction of their own that takes no write lock
    (on SQLite a deferred BEGIN: a reader beside writers; on PostgreSQL no row lock), and
    end it on leaving, so that slow work after it (hashing a password, decoding an image)
    holds no lock while it runs. Nothing inside may write; objects loaded inside are
    expired on leaving and read again when next used.

    A transaction already open is ended first; one holding unsaved changes is a bug."""
    session = db.session
    _refuse_unsaved(session, "reading()")
    end_read(session)
    token = _SQLITE_BEGIN.set(NO_WRITE_LOCK)
    try:
        yield
    finally:
        end_read(session)
        _SQLITE_BEGIN.reset(token)


@contextlib.contextmanager
def writing():
    """A unit of work that writes: committed on leaving, undone when it raises (rolled
    back, or when it wrote nothing ended as a read is).

    Where transactions begin with the write lock (a form sent, a command), it runs in the
    transaction already open, as it always did. In a request that only reads, the read
    transaction is ended first (objects loaded are read again when next used, now under
    the lock) and this one begins with the write lock (BEGIN IMMEDIATE on SQLite), so a
    check inside it and the write that depends on it see no other writer between them; it
    ends on leaving, and the request reads on with no lock. A read ended over unsaved
    changes is a bug."""
    session = db.session
    token = None
    if in_reading_mode():
        _refuse_unsaved(session, "writing()")
        end_read(session)
        token = _SQLITE_BEGIN.set(WRITE_LOCK)
    try:
        yield
        session.commit()
    except BaseException:
        if token is not None:  # the lock is not kept while the error is answered
            end_read(session)
        raise
    finally:
        if token is not None:
            _SQLITE_BEGIN.reset(token)
