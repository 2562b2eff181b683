"""The migrations build exactly the models' schema, on SQLite and PostgreSQL, and undo."""

import flask_migrate
import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.extensions import db


@pytest.fixture
def empty_app(app_config, backend, pg_reset):
    """An app whose database has no tables at all."""
    application = create_app(app_config)
    with application.app_context():
        if backend == "postgresql":
            pg_reset(drop_only=True)
        yield application
        db.session.remove()
        if backend == "postgresql":
            pg_reset()
        db.engine.dispose()


@pytest.fixture
def pg_reset(backend):
    """On PostgreSQL: empty the shared test schema, then rebuild it for later tests."""

    def reset(drop_only=False):
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            if not drop_only:
                db.metadata.create_all(conn)

    return reset


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_matches_models_then_downgrades_to_base(empty_app):
    """`flask db upgrade` builds every table, `flask db check` finds nothing pending,
    and `flask db downgrade base` removes it all again."""
    assert _tables() == set()
    flask_migrate.upgrade()
    assert set(db.metadata.tables) <= _tables()
    flask_migrate.check()  # exits with status 1 (SystemExit) on any difference
    flask_migrate.downgrade(revision="base")
    assert _tables() <= {"alembic_version"}


def test_check_notices_a_model_change(empty_app):
    """The check is real: an index missing from the database is reported."""
    flask_migrate.upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_applications_queue"))
    with pytest.raises(SystemExit) as exited:
        flask_migrate.check()
    assert exited.value.code == 1


#: The revision that moved the sign-in counters off `users`, which rebuilds that table on
#: SQLite while other tables refer to it.
COUNTERS_OFF_USERS = "dc82ef6e39f7"


def _rows(conn):
    return {
        table: conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        for table in ("users", "recovery_codes", "alerts")
    }


def test_rebuilding_the_users_table_keeps_every_row_that_refers_to_it(empty_app):
    """Accounts, the recovery codes that would go with them (ON DELETE CASCADE) and the
    alerts that name them (no cascade) all stay, up and down again."""
    flask_migrate.upgrade(revision=COUNTERS_OFF_USERS)
    flask_migrate.downgrade(revision="-1")
    now = {"at": "2026-11-30 12:00:00"}
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (uid, login, role, active, session_version, failed_logins,"
                " locked_until, created_at) VALUES ('u1', 'amina', 'applicant', true, 1, 3,"
                " :at, :at)"
            ),
            now,
        )
        user_id = conn.execute(sa.text("SELECT id FROM users")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (:u, 'h', :at)"
            ),
            {"u": user_id, **now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO alerts (user_id, kind, created_at, attempts)"
                " VALUES (:u, 'urgent_case', :at, 0)"
            ),
            {"u": user_id, **now},
        )
        before = _rows(conn)
    assert before == {"users": 1, "recovery_codes": 1, "alerts": 1}
    flask_migrate.upgrade(revision=COUNTERS_OFF_USERS)
    with db.engine.connect() as conn:
        assert _rows(conn) == before
        assert "failed_logins" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
    flask_migrate.downgrade(revision="-1")
    with db.engine.connect() as conn:
        assert _rows(conn) == before
        assert conn.execute(sa.text("SELECT failed_logins FROM users")).scalar() == 0
    flask_migrate.upgrade()
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
