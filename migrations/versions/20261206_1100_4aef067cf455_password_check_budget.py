"""the server's budget of password checks

One row, shared by every process: the checks granted so far use the budget up to
`spent_until`. Created when the first attempt needs it.

Revision ID: 4aef067cf455
Revises: 8c41d2e7a5f3
Create Date: 2026-12-06 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4aef067cf455'
down_revision = '8c41d2e7a5f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('password_check_budget',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spent_until', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_check_budget'))
    )


def downgrade():
    op.drop_table('password_check_budget')
