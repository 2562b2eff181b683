"""application steps: the form is answered one step at a time, so a draft notes the steps
it saved, and its urgency stays empty until the defender chooses one (a sent case always
has one)

Revision ID: 5b8e1f2a7c34
Revises: 7d2e9b4c1a85
Create Date: 2026-12-10 09:00:00.000000

"""
import contextlib

from alembic import op
import sqlalchemy as sa


revision = '5b8e1f2a7c34'
down_revision = '7d2e9b4c1a85'
branch_labels = None
depends_on = None

URGENCY = sa.Enum('urgent', 'normal', name='urgency', native_enum=False, create_constraint=True, length=32)


@contextlib.contextmanager
def _rebuilt_in_place():
    """On SQLite, batch mode copies a table and drops the old one: with foreign keys on,
    dropping `applications`, which other rows refer to, fails. SQLite's own procedure
    turns them off around the rebuild (outside a transaction), then checks every
    reference."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.get_context().autocommit_block():
            op.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if sqlite:
            with op.get_context().autocommit_block():
                op.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"references broken by rebuilding a table: {broken[:5]}")


def upgrade():
    with _rebuilt_in_place(), op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('steps_saved', sa.String(length=80), nullable=True))
        batch_op.alter_column('urgency', existing_type=URGENCY, nullable=True)


def downgrade():
    # A draft with no urgency chosen yet reads as not urgent, as the form used to say.
    op.execute("UPDATE applications SET urgency = 'normal' WHERE urgency IS NULL")
    with _rebuilt_in_place(), op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('urgency', existing_type=URGENCY, nullable=False)
        batch_op.drop_column('steps_saved')
