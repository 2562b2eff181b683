"""variance notes: a manager's explanation, for the donor's report, of a variance of 10% or
more between what a pool committed and paid, per pool, ended period and line; the words
encrypted

Revision ID: 3f6a2d9c8e41
Revises: 9a1c3e5f7b2d
Create Date: 2026-12-09 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '3f6a2d9c8e41'
down_revision = '9a1c3e5f7b2d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('variance_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('line', sa.String(length=32), nullable=False),
    sa.Column('text', sa.LargeBinary(), nullable=False),
    sa.Column('written_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_variance_notes_pool_id_pools')),
    sa.ForeignKeyConstraint(['written_by_id'], ['users.id'], name=op.f('fk_variance_notes_written_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_variance_notes')),
    sa.UniqueConstraint('uid', name=op.f('uq_variance_notes_uid'))
    )
    with op.batch_alter_table('variance_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_variance_notes_pool_id'), ['pool_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_variance_notes_written_by_id'), ['written_by_id'], unique=False)


def downgrade():
    with op.batch_alter_table('variance_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_variance_notes_written_by_id'))
        batch_op.drop_index(batch_op.f('ix_variance_notes_pool_id'))

    op.drop_table('variance_notes')
