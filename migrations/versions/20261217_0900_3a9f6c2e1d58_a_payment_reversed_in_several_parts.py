"""a payment reversed in several parts: a bank returns part of a payment, later the payee
gives back more of it; each is a reversal of its own, until the whole payment came back

Revision ID: 3a9f6c2e1d58
Revises: 5d2a8c1f7b34
Create Date: 2026-12-17 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '3a9f6c2e1d58'
down_revision = '5d2a8c1f7b34'
branch_labels = None
depends_on = None


def _rebuild_on_sqlite(change):
    """Apply ``change`` to the payments table. On SQLite that rebuilds the table, which
    other tables refer to (receipts, deliveries, their own reversals): foreign keys are
    turned off around the rebuild (outside a transaction, where the pragma works), then
    every reference is checked."""
    if op.get_bind().dialect.name != 'sqlite':
        with op.batch_alter_table('disbursements', schema=None) as batch_op:
            change(batch_op)
        return
    with op.get_context().autocommit_block():
        op.execute('PRAGMA foreign_keys=OFF')
    try:
        with op.batch_alter_table('disbursements', schema=None, recreate='always') as batch_op:
            change(batch_op)
    finally:
        with op.get_context().autocommit_block():
            op.execute('PRAGMA foreign_keys=ON')
    broken = op.get_bind().exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if broken:
        raise RuntimeError(f'references broken by rebuilding disbursements: {broken[:5]}')


def upgrade():
    # The one-reversal-per-payment rule becomes an index: a payment's reversals are still
    # found by the payment they reverse, several of them now.
    def change(batch_op):
        batch_op.drop_constraint('uq_disbursements_reversal_of_id', type_='unique')
        batch_op.create_index('ix_disbursements_reversal_of_id', ['reversal_of_id'], unique=False)

    _rebuild_on_sqlite(change)


def downgrade():
    twice = op.get_bind().execute(
        sa.text(
            'SELECT count(*) FROM (SELECT reversal_of_id FROM disbursements'
            ' WHERE reversal_of_id IS NOT NULL GROUP BY reversal_of_id HAVING count(*) > 1) AS x'
        )
    ).scalar()
    if twice:
        raise RuntimeError(
            f'{twice} payments were reversed in several parts, which the earlier schema cannot'
            ' hold: restore the backup made before the upgrade instead'
        )

    def change(batch_op):
        batch_op.drop_index('ix_disbursements_reversal_of_id')
        batch_op.create_unique_constraint('uq_disbursements_reversal_of_id', ['reversal_of_id'])

    _rebuild_on_sqlite(change)
