"""queue index holds targets: the index of the cases by fund, status and day sent also
holds each case's next target and whether its clock is paused, so the dashboard counts
the waiting cases by stage, age and lateness from the index alone

Revision ID: 9d3b5f1a7c24
Revises: 8c4e2a7d9b16
Create Date: 2026-12-12 09:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9d3b5f1a7c24'
down_revision = '8c4e2a7d9b16'
branch_labels = None
depends_on = None

BEFORE = ["fund_id", "status", "submitted_at"]
AFTER = BEFORE + ["next_due_at", "clock_paused_at"]


def _analyze():
    """Fresh statistics on the index just made: without them SQLite takes a new index for
    the most selective of all, and the queue's first page sorted every waiting case
    through it (270 ms at 100,000 applications) instead of reading the index of the
    next targets in order (5 ms)."""
    op.execute("ANALYZE applications")


def upgrade():
    op.drop_index("ix_applications_queue", table_name="applications")
    op.create_index("ix_applications_queue", "applications", AFTER)
    _analyze()


def downgrade():
    op.drop_index("ix_applications_queue", table_name="applications")
    op.create_index("ix_applications_queue", "applications", BEFORE)
    _analyze()
