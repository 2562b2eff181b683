"""refused forms kept for their page: what was typed into a refused form and its errors,
encrypted, for the few minutes until the page it comes back on shows them

Revision ID: 6a0f3c1d2e84
Revises: 17b703f65196
Create Date: 2026-12-06 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6a0f3c1d2e84'
down_revision = '17b703f65196'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refused_forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_forms')),
    sa.UniqueConstraint('key', name=op.f('uq_refused_forms_key')),
    sa.UniqueConstraint('uid', name=op.f('uq_refused_forms_uid'))
    )
    with op.batch_alter_table('refused_forms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refused_forms_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('refused_forms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refused_forms_expires_at'))

    op.drop_table('refused_forms')
