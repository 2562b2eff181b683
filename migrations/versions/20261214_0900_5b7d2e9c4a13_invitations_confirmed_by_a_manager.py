"""invitations confirmed by a manager: an invitation to a reviewer, manager or finance
account opens only with the code a manager of the fund gives when confirming it

Revision ID: 5b7d2e9c4a13
Revises: 3e6a9c2d5b81
Create Date: 2026-12-14 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '5b7d2e9c4a13'
down_revision = '3e6a9c2d5b81'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_hash', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('confirmed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_invitations_confirmed_by_id'), ['confirmed_by_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_invitations_confirmed_by_id_users'), 'users', ['confirmed_by_id'], ['id'])
        batch_op.create_check_constraint(
            batch_op.f('ck_invitations_confirmed_whole'),
            "(confirmed_at IS NULL) = (code_hash IS NULL)",
        )
    # An open invitation made before waits, like a new one, for a manager's code.


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_invitations_confirmed_whole'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_invitations_confirmed_by_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_invitations_confirmed_by_id'))
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('confirmed_by_id')
        batch_op.drop_column('code_hash')
