"""free text encrypted at rest: reasons, references, rate sources, other funders' names and
display names move into encrypted columns (AES-GCM with table, column and row bound);
payment references get a blind index for statement matching; exchange rates get row uids

The values are encrypted here with the application's cipher, under the row's uid, as the
model's Encrypted attribute writes them. Ledger seals cover amounts and ties, not these
columns, so they verify as before. On PostgreSQL the final ledger rows' triggers are made
again with the columns an UPDATE may now change.

Revision ID: 31e085be65e9
Revises: dc82ef6e39f7
Create Date: 2026-12-05 10:00:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '31e085be65e9'
down_revision = 'dc82ef6e39f7'
branch_labels = None
depends_on = None

#: Each column moved: table, column, the clear type it had, and whether it was NOT NULL.
MOVED = (
    ("users", "display_name", sa.String(120), False),
    ("contributions", "reference", sa.String(80), False),
    ("contributions", "reason", sa.String(200), False),
    ("exchange_rates", "source", sa.String(80), True),
    ("releases", "reason", sa.String(200), False),
    ("cofundings", "funder", sa.String(160), True),
    ("disbursements", "rate_source", sa.String(80), False),
    ("disbursements", "rate_reason", sa.String(200), False),
    ("disbursements", "reference", sa.String(64), False),
    ("disbursements", "reason", sa.String(200), False),
)

#: The columns an UPDATE may change on a final ledger row, before and after: the encrypted
#: ones (key rotation rewrites them, retention empties them) and the blind index.
WRITABLE_BEFORE = {"contributions": (), "releases": (), "disbursements": ("payee_details",)}
WRITABLE_AFTER = {
    "contributions": ("reference", "reason"),
    "releases": ("reason",),
    "disbursements": (
        "payee_details",
        "rate_source",
        "rate_reason",
        "reference",
        "reference_key",
        "reason",
    ),
}

BATCH = 1000


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # The final rows' triggers refuse the UPDATEs below; they come back at the end.
        _drop_triggers()
    cipher = current_app.extensions["hrdfund_cipher"]

    op.add_column("exchange_rates", sa.Column("uid", sa.String(length=20), nullable=True))
    _fill("exchange_rates", "id", "uid", lambda _id, _none: secrets.token_hex(10), uid="NULL")

    op.add_column("disbursements", sa.Column("reference_key", sa.String(length=32), nullable=True))
    _fill(
        "disbursements",
        "reference",
        "reference_key",
        lambda reference, _uid: cipher.blind_index("payment-reference|" + reference.strip()),
    )
    op.drop_index("ix_disbursements_reference", table_name="disbursements")
    op.create_index("ix_disbursements_reference_key", "disbursements", ["reference_key"])

    for table, column, _clear, _required in MOVED:
        _replace(
            table,
            column,
            sa.LargeBinary(),
            lambda text, uid, table=table, column=column: cipher.encrypt(text, table, column, uid),
        )

    with op.batch_alter_table("exchange_rates") as batch_op:
        batch_op.alter_column("uid", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_unique_constraint("uq_exchange_rates_uid", ["uid"])

    if postgresql:
        _create_triggers(WRITABLE_AFTER)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        _drop_triggers()
    cipher = current_app.extensions["hrdfund_cipher"]

    for table, column, clear, _required in MOVED:
        _replace(
            table,
            column,
            clear,
            lambda blob, uid, table=table, column=column: cipher.decrypt(blob, table, column, uid),
        )
    op.drop_index("ix_disbursements_reference_key", table_name="disbursements")
    op.execute("ALTER TABLE disbursements DROP COLUMN reference_key")
    op.create_index("ix_disbursements_reference", "disbursements", ["reference"])

    # Rebuilt on SQLite: nothing refers to these two tables.
    with op.batch_alter_table("exchange_rates") as batch_op:
        batch_op.drop_constraint("uq_exchange_rates_uid", type_="unique")
        batch_op.drop_column("uid")
    for table, column, clear, required in MOVED:
        if required:
            with op.batch_alter_table(table) as batch_op:
                batch_op.alter_column(column, existing_type=clear, nullable=False)

    if postgresql:
        _create_triggers(WRITABLE_BEFORE)


def _replace(table, column, type_, convert):
    """Put ``convert(value, uid)`` of every value of ``column`` in a new column of
    ``type_``, then let the new column take the old one's name and place.

    Plain ADD, DROP and RENAME COLUMN: rebuilding these tables on SQLite trips over the rows
    that reference them."""
    moved = f"{column}_moved"
    op.add_column(table, sa.Column(moved, type_, nullable=True))
    _fill(table, column, moved, convert)
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {moved} TO {column}")


def _fill(table, source, target, convert, uid="uid"):
    """Set ``target`` to ``convert(source, uid)`` on every row where ``source`` is set, a
    batch of rows at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                f"SELECT id, {uid}, {source} FROM {table} "
                f"WHERE id > :last AND {source} IS NOT NULL ORDER BY id LIMIT {BATCH}"
            ),
            {"last": last},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text(f"UPDATE {table} SET {target} = :value WHERE id = :id"),
            [{"id": row_id, "value": convert(value, row_uid)} for row_id, row_uid, value in rows],
        )
        last = rows[-1][0]


def _drop_triggers():
    for table in WRITABLE_AFTER:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_rows_are_final ON {table}")


def _create_triggers(writable):
    for table, columns in writable.items():
        arguments = ", ".join(f"'{name}'" for name in columns)
        op.execute(
            f"CREATE TRIGGER {table}_rows_are_final BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hrdfund_rows_are_final({arguments})"
        )
