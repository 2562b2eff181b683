"""Unbound extensions, initialised by create_app(), and the database's transaction modes."""

import contextlib
import contextvars

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

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


#: How the next SQLite transaction begins: with the write lock (the default, so a balance
#: read and the write that depends on it never interleave with another writer), or
#: deferred, as a reader beside any writer, inside :func:`reading`.
_SQLITE_BEGIN = contextvars.ContextVar("hrdfund_sqlite_begin", default="BEGIN IMMEDIATE")


def sqlite_begin_statement():
    """The statement that begins the next SQLite transaction."""
    return _SQLITE_BEGIN.get()


@contextlib.contextmanager
def reading():
    """Run the statements inside in a transaction of their own that takes no write lock
    (on SQLite a deferred BEGIN: a reader beside writers; on PostgreSQL no row lock), and
    end it on leaving, so that slow work after it (hashing a password, decoding an image)
    holds no lock while it runs. Nothing inside may write; objects loaded inside are
    expired on leaving and read again when next used.

    A transaction already open is ended first; one holding unsaved changes is a bug."""
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("reading() would drop unsaved changes")
    session.rollback()
    token = _SQLITE_BEGIN.set("BEGIN")
    try:
        yield
    finally:
        session.rollback()
        _SQLITE_BEGIN.reset(token)
