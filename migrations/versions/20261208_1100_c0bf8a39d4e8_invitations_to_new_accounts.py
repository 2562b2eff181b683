"""invitations to new accounts: an administrator's one-time link to a staff or donor
account of their fund, named by a keyed hash of its token

Revision ID: c0bf8a39d4e8
Revises: a1e7c4d2b9f0
Create Date: 2026-12-08 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c0bf8a39d4e8'
down_revision = 'a1e7c4d2b9f0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('token_hash', sa.String(length=32), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('applicant', 'partner', 'reviewer', 'manager', 'finance', 'donor', 'admin', 'network_admin', name='invitation_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('donor_id', sa.Integer(), nullable=True),
    sa.Column('invited_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("(role = 'donor') = (donor_id IS NOT NULL)", name=op.f('ck_invitations_donor_for_donor')),
    sa.CheckConstraint("role IN ('reviewer', 'manager', 'finance', 'donor')", name=op.f('ck_invitations_invitable')),
    sa.CheckConstraint('accepted_at IS NULL OR user_id IS NOT NULL', name=op.f('ck_invitations_accepted_has_account')),
    sa.ForeignKeyConstraint(['donor_id'], ['donors.id'], name=op.f('fk_invitations_donor_id_donors')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_invitations_fund_id_funds')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_invitations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash')),
    sa.UniqueConstraint('uid', name=op.f('uq_invitations_uid'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_donor_id'), ['donor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_fund_id'), ['fund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_invited_by_id'), ['invited_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_user_id'))
        batch_op.drop_index(batch_op.f('ix_invitations_invited_by_id'))
        batch_op.drop_index(batch_op.f('ix_invitations_fund_id'))
        batch_op.drop_index(batch_op.f('ix_invitations_donor_id'))

    op.drop_table('invitations')
