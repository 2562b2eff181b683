"""referral supported from elsewhere: when a partner fund on another server said its own
case for the part is approved, whether or not the part has months; and when it made its
answer, for the time to an answer

Revision ID: 3e6a9c2d5b81
Revises: 9d3b5f1a7c24
Create Date: 2026-12-13 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '3e6a9c2d5b81'
down_revision = '9d3b5f1a7c24'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('supported_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('answer_made_at', sa.DateTime(), nullable=True))
    # Until now only a support answer with months was kept, as those months.
    op.execute("UPDATE referrals SET supported_at = answered_at WHERE covered_from IS NOT NULL")


def downgrade():
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('answer_made_at')
        batch_op.drop_column('supported_at')
