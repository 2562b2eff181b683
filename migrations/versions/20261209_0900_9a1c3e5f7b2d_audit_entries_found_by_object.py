"""audit entries found by their object: an index on audit_events.object_id, so that a
case page lists the entries about the case and its rows without reading its fund's whole
chain

Revision ID: 9a1c3e5f7b2d
Revises: 9e4c2b7d1a60
Create Date: 2026-12-09 09:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9a1c3e5f7b2d'
down_revision = '9e4c2b7d1a60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(op.f('ix_audit_events_object_id'), 'audit_events', ['object_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_audit_events_object_id'), table_name='audit_events')
