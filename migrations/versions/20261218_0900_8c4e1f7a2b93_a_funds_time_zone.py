"""a fund's time zone: its staff's pages give times in it rather than in UTC

Revision ID: 8c4e1f7a2b93
Revises: 6b2d9e4f1a37
Create Date: 2026-12-18 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '8c4e1f7a2b93'
down_revision = '6b2d9e4f1a37'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('funds', sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    # In place on SQLite too (3.35 and later): rebuilding the table that every account,
    # pool and case refers to would trip their foreign keys.
    op.drop_column('funds', 'time_zone')
