"""alert claims: a sending process claims an alert for a time, so that several servers send
each alert once; an alert that can no longer be sent is settled, not left pending

Revision ID: 7c41e0a9d2b6
Revises: 5d2e8b1f4c7a
Create Date: 2026-12-10 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '7c41e0a9d2b6'
down_revision = '5d2e8b1f4c7a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('dropped_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('dropped_at')
        batch_op.drop_column('claimed_until')
