"""issued figures: what the donor reports of an ended period said about people, kept as
first issued so every later report of the period says the same

Revision ID: 8c41d2e7a5f3
Revises: 455904078f36
Create Date: 2026-12-06 10:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8c41d2e7a5f3'
down_revision = '455904078f36'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('issued_figures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('figures', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_issued_figures_pool_id_pools')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_figures')),
    sa.UniqueConstraint('pool_id', 'year', 'period', name=op.f('uq_issued_figures_pool_id_year_period'))
    )


def downgrade():
    op.drop_table('issued_figures')
