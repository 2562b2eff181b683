"""queue and pool page plans: each case's next target kept by the database beside the two
targets it comes from, with an index of the waiting cases by fund in the queue's order; a
pool's payments and commitments indexed newest first with the amounts its figures add up,
and the releases newest first; fresh statistics for the planner afterwards

Revision ID: 177310c02cef
Revises: 6d2f8b1c4a73
Create Date: 2026-12-10 12:00:00.000000

"""
import contextlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '177310c02cef'
down_revision = '6d2f8b1c4a73'
branch_labels = None
depends_on = None

NEXT_DUE = "CASE WHEN first_response_at IS NULL THEN response_due_at ELSE decision_due_at END"
WAITING = (
    "status IN ('awaiting_second_approval', 'in_review', 'info_requested', 'recommended',"
    " 'submitted')"
)
OLD_SUMS = ['pool_id', 'paid_on', 'reversal_of_id', 'amount', 'fee_amount', 'exchange_difference']
NEW_SUMS = ['pool_id', 'paid_on', 'id', 'reversal_of_id', 'amount', 'fee_amount', 'exchange_difference']


@contextlib.contextmanager
def _applications_rebuilt_in_place():
    """On SQLite a stored generated column cannot be added to a table: batch mode copies
    `applications` to a new table and drops the old one, which other rows refer to. As
    SQLite's own procedure says, foreign keys are off around the rebuild (a pragma that
    only works outside a transaction), then every reference is checked."""
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
            raise RuntimeError(f"references broken by rebuilding applications: {broken[:5]}")


def _analyze():
    """Fresh statistics on the tables whose indexes changed, so the planner weighs them."""
    for table in ('applications', 'allocations', 'releases', 'disbursements'):
        op.execute(f"ANALYZE {table}")


def upgrade():
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_pool_id'))
        batch_op.create_index('ix_allocations_pool_newest', ['pool_id', 'created_at', 'id', 'amount'], unique=False)

    with _applications_rebuilt_in_place():
        with op.batch_alter_table('applications', schema=None, recreate='auto' if op.get_bind().dialect.name != 'sqlite' else 'always') as batch_op:
            batch_op.add_column(sa.Column('next_due_at', sa.DateTime(), sa.Computed(NEXT_DUE, persisted=True), nullable=True))
            batch_op.create_index('ix_applications_next_due', ['fund_id', 'next_due_at', 'id'], unique=False, sqlite_where=sa.text(WAITING), postgresql_where=sa.text(WAITING))

    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disbursements_pool_sums'))
        batch_op.create_index('ix_disbursements_pool_sums', NEW_SUMS, unique=False)

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.create_index('ix_releases_newest', ['created_at', 'id'], unique=False)

    _analyze()


def downgrade():
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index('ix_releases_newest')

    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.drop_index('ix_disbursements_pool_sums')
        batch_op.create_index(batch_op.f('ix_disbursements_pool_sums'), OLD_SUMS, unique=False)

    with _applications_rebuilt_in_place():
        with op.batch_alter_table('applications', schema=None) as batch_op:
            batch_op.drop_index('ix_applications_next_due')
            batch_op.drop_column('next_due_at')

    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index('ix_allocations_pool_newest')
        batch_op.create_index(batch_op.f('ix_allocations_pool_id'), ['pool_id'], unique=False)

    _analyze()
