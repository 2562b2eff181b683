"""clear text left behind by encrypting free text is vacuumed away: the tables whose
reasons, references, rate sources and names moved into encrypted columns are rewritten

Encrypting those columns dropped the clear ones, but a database keeps what it drops until
it rewrites the pages: PostgreSQL keeps a dropped column's values in every row, and the
earlier versions of updated rows, until the table is rewritten (VACUUM FULL); SQLite keeps
old pages in its write-ahead log until a checkpoint truncates it. Both are done here,
outside a transaction (they cannot run inside one), once the earlier migrations are
committed; run again, they only rewrite the tables again. The write-ahead log segments
PostgreSQL has already archived, and backups made before, are the operator's to replace
(README, data at rest).

Revision ID: 455904078f36
Revises: 6a0f3c1d2e84
Create Date: 2026-12-06 10:00:00.000000

"""
import logging

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '455904078f36'
down_revision = '6a0f3c1d2e84'
branch_labels = None
depends_on = None

#: The tables that held the clear text, as the free-text migration lists them.
TABLES = (
    "users",
    "contributions",
    "exchange_rates",
    "releases",
    "cofundings",
    "disbursements",
)

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # VACUUM skips, with only a warning, a table the user running it does not own.
        foreign = bind.execute(
            sa.text(
                "SELECT relname FROM pg_class WHERE relname = ANY(:tables) "
                "AND relnamespace = current_schema()::regnamespace "
                "AND NOT pg_has_role(current_user, relowner, 'USAGE')"
            ),
            {"tables": list(TABLES)},
        ).scalars().all()
        with op.get_context().autocommit_block():
            op.execute(f"VACUUM (FULL, ANALYZE) {', '.join(TABLES)}")
        if foreign:
            log.warning(
                "Not rewritten (owned by another user): %s. Run VACUUM FULL on them as "
                "their owner; see README, data at rest.",
                ", ".join(foreign),
            )
    elif bind.dialect.name == "sqlite":
        with op.get_context().autocommit_block():
            op.execute("VACUUM")
            op.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def downgrade():
    # Nothing to undo: the rows are the same, only their pages were rewritten.
    pass
