"""a reset second factor needs the administrator's code: after a reset, the new key is
shown only to someone who types the code the administrator was handed, kept as a keyed
hash on the account until the new authenticator is set up

Revision ID: 7c3e1a9d5f20
Revises: 2f6b9d3e8c47
Create Date: 2026-12-15 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '7c3e1a9d5f20'
down_revision = '2f6b9d3e8c47'
branch_labels = None
depends_on = None


def upgrade():
    # An account reset before and not yet set up again has no code: it sets up as before,
    # with its password alone, once; every reset from now on hands a code.
    op.add_column('users', sa.Column('reset_code_hash', sa.String(length=32), nullable=True))


def downgrade():
    # A plain ALTER TABLE on SQLite too (3.35 and later): no rebuild of `users`, which
    # other tables refer to.
    op.drop_column('users', 'reset_code_hash')
