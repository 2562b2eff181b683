"""alerts for every waiting hand: the second manager when an approval waits, finance when
a grant is approved or an instalment falls due, managers when a renewal review date comes

Revision ID: a1e7c4d2b9f0
Revises: 5c0de5a1b2c3
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a1e7c4d2b9f0'
down_revision = '5c0de5a1b2c3'
branch_labels = None
depends_on = None

_KINDS = ("urgent_case", "target_near", "applicant_answer", "payment_held")
_NEW = ("second_approval", "grant_approved", "instalment_due", "renewal_review")


def upgrade():
    _alert_kinds(_KINDS + _NEW)


def downgrade():
    values = ", ".join(f"'{kind}'" for kind in _NEW)
    op.execute(f"DELETE FROM alerts WHERE kind IN ({values})")
    _alert_kinds(_KINDS)


def _alert_kinds(kinds):
    """Let the alerts' kind column hold ``kinds``: its CHECK constraint, rewritten."""
    values = ", ".join(f"'{kind}'" for kind in kinds)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE alerts DROP CONSTRAINT ck_alerts_alert_kind")
        op.execute(f"ALTER TABLE alerts ADD CONSTRAINT ck_alerts_alert_kind CHECK (kind IN ({values}))")
        return
    # SQLite cannot change a constraint in place: the table is rebuilt (nothing refers
    # to alerts).
    with op.batch_alter_table('alerts', recreate="always") as batch_op:
        batch_op.drop_constraint(op.f('ck_alerts_alert_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alerts_alert_kind'), f"kind IN ({values})")
