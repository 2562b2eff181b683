"""partner fund names are their owner's: a member fund's name is unique among the
server's member funds, a partner fund's among the partners of the fund that registered
it, so that registering a partner never tells one fund another's

Revision ID: 2f7d4b9c1e60
Revises: 8c4e1f7a2b93
Create Date: 2026-12-19 09:00:00.000000

"""
import contextlib

from alembic import op
import sqlalchemy as sa


revision = '2f7d4b9c1e60'
down_revision = '8c4e1f7a2b93'
branch_labels = None
depends_on = None

MEMBER = "partner_of_id IS NULL"
PARTNER = "partner_of_id IS NOT NULL"


@contextlib.contextmanager
def _rebuilt_in_place():
    """On SQLite, batch mode copies `funds` and drops the old one, which every account,
    pool and case refers to: foreign keys are turned off around it (outside a
    transaction), then every reference is checked."""
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
    with _rebuilt_in_place():
        with op.batch_alter_table('funds', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('uq_funds_name'), type_='unique')
    op.create_index(
        'uq_funds_member_name', 'funds', ['name'], unique=True,
        sqlite_where=sa.text(MEMBER), postgresql_where=sa.text(MEMBER),
    )
    op.create_index(
        'uq_funds_partner_name', 'funds', ['partner_of_id', 'name'], unique=True,
        sqlite_where=sa.text(PARTNER), postgresql_where=sa.text(PARTNER),
    )


def downgrade():
    # Two funds' partners of one name, or a partner named as a member fund, stop it here.
    op.drop_index('uq_funds_partner_name', table_name='funds')
    op.drop_index('uq_funds_member_name', table_name='funds')
    with _rebuilt_in_place():
        with op.batch_alter_table('funds', schema=None) as batch_op:
            batch_op.create_unique_constraint(batch_op.f('uq_funds_name'), ['name'])
