"""pools' money by day: what each pool received, committed, released, paid and what paying
cost on each day money moved, kept as ledger rows are written, for the pools' charts; and
an index of cases by fund and decision time, for the dashboard's counts of decisions

The days are added up here from the ledger's rows, as `flask hrdfund rebuild-figures` does.

Revision ID: 9e4c2b7d1a60
Revises: c0bf8a39d4e8
Create Date: 2026-12-08 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9e4c2b7d1a60'
down_revision = 'c0bf8a39d4e8'
branch_labels = None
depends_on = None

SUMS = ('received', 'allocated', 'released', 'paid', 'costs')


def upgrade():
    op.create_table(
        'pool_days',
        sa.Column('pool_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *(sa.Column(name, sa.Numeric(precision=20, scale=2), nullable=False) for name in SUMS),
        sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_pool_days_pool_id_pools')),
        sa.PrimaryKeyConstraint('pool_id', 'day', name=op.f('pk_pool_days')),
    )
    # A plain CREATE INDEX on both databases: rebuilding `applications` on SQLite would
    # trip over every row that refers to it.
    op.create_index(
        'ix_applications_decided', 'applications', ['fund_id', 'decided_at', 'decision_due_at']
    )
    bind = op.get_bind()
    day = 'CAST({} AS DATE)' if bind.dialect.name == 'postgresql' else 'date({})'
    bind.execute(
        sa.text(
            'INSERT INTO pool_days (pool_id, day, received, allocated, released, paid, costs) '
            'SELECT pool_id, day, SUM(received), SUM(allocated), SUM(released), SUM(paid), '
            'SUM(costs) FROM ('
            'SELECT pool_id, received_on AS day, CASE WHEN reversal_of_id IS NULL THEN amount '
            'ELSE -amount END AS received, 0 AS allocated, 0 AS released, 0 AS paid, '
            '0 AS costs FROM contributions '
            f'UNION ALL SELECT pool_id, {day.format("created_at")}, 0, amount, 0, 0, 0 '
            'FROM allocations '
            f'UNION ALL SELECT a.pool_id, {day.format("r.created_at")}, 0, 0, r.amount, 0, 0 '
            'FROM releases r JOIN allocations a ON a.id = r.allocation_id '
            'UNION ALL SELECT pool_id, paid_on, 0, 0, 0, '
            'CASE WHEN reversal_of_id IS NULL THEN amount ELSE -amount END, '
            'CASE WHEN reversal_of_id IS NULL THEN fee_amount + exchange_difference '
            'ELSE -(fee_amount + exchange_difference) END FROM disbursements'
            ') AS rows GROUP BY pool_id, day'
        )
    )
    # Statistics of the new index, so the planner does not take it for what it does not
    # serve (the cases received each week read the queue's index).
    bind.execute(sa.text('ANALYZE applications'))
    if bind.dialect.name == 'sqlite':
        # Sums of SQLite's floats, back to whole cents.
        for name in SUMS:
            bind.execute(sa.text(f'UPDATE pool_days SET {name} = ROUND({name}, 2)'))


def downgrade():
    op.drop_index('ix_applications_decided', table_name='applications')
    op.drop_table('pool_days')
