"""applicant notices: an email to the applicant side's safe contact when the fund writes,
decides or pays, which the account may turn off or make name the fund

Revision ID: 6d2f8b1c4a73
Revises: 5b8e1f2a7c34
Create Date: 2026-12-10 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6d2f8b1c4a73'
down_revision = '5b8e1f2a7c34'
branch_labels = None
depends_on = None

_KINDS = (
    "urgent_case",
    "target_near",
    "applicant_answer",
    "payment_held",
    "second_approval",
    "grant_approved",
    "instalment_due",
    "renewal_review",
    "receipt_problem",
)
_NEW = ("applicant_news",)


def upgrade():
    # Added in place (ALTER TABLE ... ADD COLUMN, on SQLite too): the users table, which
    # many tables refer to, is not rebuilt.
    op.add_column('users', sa.Column('notices', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('users', sa.Column('notices_discreet', sa.Boolean(), server_default=sa.true(), nullable=False))
    _alert_kinds(_KINDS + _NEW)


def downgrade():
    values = ", ".join(f"'{kind}'" for kind in _NEW)
    op.execute(f"DELETE FROM alerts WHERE kind IN ({values})")
    _alert_kinds(_KINDS)
    # SQLite drops a column in place too (3.35 and later).
    op.drop_column('users', 'notices_discreet')
    op.drop_column('users', 'notices')


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
