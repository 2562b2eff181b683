"""payments newest first by date

Revision ID: 5d1e7a9c4b20
Revises: c2764b010692
Create Date: 2026-12-05 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d1e7a9c4b20'
down_revision = 'c2764b010692'
branch_labels = None
depends_on = None


def upgrade():
    # Lists of payments are newest first by date now, no longer by id: the pool page
    # reads a pool's by ix_disbursements_pool_sums (pool, date), the fund's by this one.
    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.drop_index('ix_disbursements_pool_latest')
        batch_op.create_index('ix_disbursements_newest', ['paid_on', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('disbursements', schema=None) as batch_op:
        batch_op.drop_index('ix_disbursements_newest')
        batch_op.create_index('ix_disbursements_pool_latest', ['pool_id', 'id'], unique=False)
