"""partners sign in with a second factor: every session a partner organisation's account
opened with its password alone ends, so that the next sign-in sets the factor up

Revision ID: 5d2a8c1f7b34
Revises: 7c3e1a9d5f20
Create Date: 2026-12-16 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '5d2a8c1f7b34'
down_revision = '7c3e1a9d5f20'
branch_labels = None
depends_on = None


def upgrade():
    # A new session version stops every cookie of the account, as signing out does; each
    # partner account gets its key at its next sign-in (the sign-in makes one).
    op.execute(
        sa.text("UPDATE users SET session_version = session_version + 1 WHERE role = 'partner'")
    )


def downgrade():
    # Ended sessions stay ended; the factors set up meanwhile stay on the accounts.
    pass
