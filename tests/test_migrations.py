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
