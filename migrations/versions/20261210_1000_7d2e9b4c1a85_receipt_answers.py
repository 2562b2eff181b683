"""receipt answers: the payee side says a payment arrived, arrived short (how much) or did
not arrive, each answer a new dated row with an encrypted note; finance records how a
report was resolved; both final rows; finance alerted of a report

Revision ID: 7d2e9b4c1a85
Revises: 3f6a2d9c8e41
Create Date: 2026-12-10 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '7d2e9b4c1a85'
down_revision = '3f6a2d9c8e41'
branch_labels = None
depends_on = None

_KINDS = (
    "urgent_case", "target_near", "applicant_answer", "payment_held", "second_approval",
    "grant_approved", "instalment_due", "renewal_review",
)
_NEW = ("receipt_problem",)
#: The final tables this revision adds, and the columns an UPDATE may change on them (the
#: encrypted ones, which key rotation rewrites and retention empties).
_FINAL = {"receipt_answers": ("note",), "receipt_resolutions": ("note",)}


def upgrade():
    op.create_table('receipt_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('disbursement_id', sa.Integer(), nullable=False),
    sa.Column('answer', sa.Enum('received', 'less', 'not_received', name='receipt_answer', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('amount_received', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency_received', sa.String(length=3), nullable=True),
    sa.Column('note', sa.LargeBinary(), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(amount_received IS NULL) = (currency_received IS NULL)", name=op.f('ck_receipt_answers_amount_has_currency')),
    sa.CheckConstraint("(answer = 'less') = (amount_received IS NOT NULL)", name=op.f('ck_receipt_answers_amount_when_less')),
    sa.CheckConstraint('amount_received > 0', name=op.f('ck_receipt_answers_amount_received_positive')),
    sa.CheckConstraint('length(currency_received) = 3 AND upper(currency_received) = currency_received', name=op.f('ck_receipt_answers_currency_received_code')),
    sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_receipt_answers_answered_by_id_users')),
    sa.ForeignKeyConstraint(['disbursement_id'], ['disbursements.id'], name=op.f('fk_receipt_answers_disbursement_id_disbursements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_answers')),
    sa.UniqueConstraint('uid', name=op.f('uq_receipt_answers_uid'))
    )
    with op.batch_alter_table('receipt_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_answers_answered_by_id'), ['answered_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_answers_disbursement_id'), ['disbursement_id'], unique=False)

    op.create_table('receipt_resolutions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('answer_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('contacted', 'traced', 'corrected', 'reversed', name='resolution_outcome', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('note', sa.LargeBinary(), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['answer_id'], ['receipt_answers.id'], name=op.f('fk_receipt_resolutions_answer_id_receipt_answers')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_receipt_resolutions_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_resolutions')),
    sa.UniqueConstraint('answer_id', name=op.f('uq_receipt_resolutions_answer_id')),
    sa.UniqueConstraint('uid', name=op.f('uq_receipt_resolutions_uid'))
    )
    with op.batch_alter_table('receipt_resolutions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_resolutions_resolved_by_id'), ['resolved_by_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for table, writable in _FINAL.items():
            columns = ", ".join(f"'{name}'" for name in writable)
            op.execute(
                f"CREATE TRIGGER {table}_rows_are_final BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION hrdfund_rows_are_final({columns})"
            )
    _alert_kinds(_KINDS + _NEW)


def downgrade():
    values = ", ".join(f"'{kind}'" for kind in _NEW)
    op.execute(f"DELETE FROM alerts WHERE kind IN ({values})")
    _alert_kinds(_KINDS)
    with op.batch_alter_table('receipt_resolutions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_resolutions_resolved_by_id'))
    op.drop_table('receipt_resolutions')
    with op.batch_alter_table('receipt_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_answers_disbursement_id'))
        batch_op.drop_index(batch_op.f('ix_receipt_answers_answered_by_id'))
    op.drop_table('receipt_answers')


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
