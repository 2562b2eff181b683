"""consents a partner ticked in the application form say so: they were recorded as given
"by the defender, in the application form"; rows recorded (or withdrawn) by a partner
account in the form take the method of their own

Revision ID: 2f6b9d3e8c47
Revises: 8e1c4f7a2b95
Create Date: 2026-12-14 11:00:00.000000

"""
from alembic import op


revision = '2f6b9d3e8c47'
down_revision = '8e1c4f7a2b95'
branch_labels = None
depends_on = None

PARTNERS = "SELECT id FROM users WHERE role = 'partner'"


def upgrade():
    op.execute(
        f"UPDATE consents SET method = 'partner_form' "
        f"WHERE method = 'form' AND recorded_by_id IN ({PARTNERS})"
    )
    op.execute(
        f"UPDATE consents SET withdrawn_how = 'partner_form' "
        f"WHERE withdrawn_how = 'form' AND withdrawn_by_id IN ({PARTNERS})"
    )


def downgrade():
    op.execute("UPDATE consents SET method = 'form' WHERE method = 'partner_form'")
    op.execute("UPDATE consents SET withdrawn_how = 'form' WHERE withdrawn_how = 'partner_form'")
