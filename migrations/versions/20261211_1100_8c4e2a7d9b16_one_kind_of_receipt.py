"""one kind of receipt: every confirmation kept in the old receipts table becomes the
answer "received" given then, by whom it was given, and the table goes

Each becomes a row of receipt_answers with the receipt's id negated: answers are read in
the order of their ids (the latest stands), and a confirmation was given before any answer
to the same payment, so it must stay before them. The negative id also tells the downgrade
which answers to give back to the receipts table. Receipts carried no seal and no uid: the
payments' seals and the audit entries that recorded each confirmation are untouched.

Revision ID: 8c4e2a7d9b16
Revises: 7c1d4e9a2b60
Create Date: 2026-12-11 11:00:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8c4e2a7d9b16'
down_revision = '7c1d4e9a2b60'
branch_labels = None
depends_on = None

_RECEIPTS = sa.table(
    "receipts",
    sa.column("id", sa.Integer),
    sa.column("disbursement_id", sa.Integer),
    sa.column("confirmed_by_id", sa.Integer),
    sa.column("confirmed_at", sa.DateTime),
)
_ANSWERS = sa.table(
    "receipt_answers",
    sa.column("id", sa.Integer),
    sa.column("uid", sa.String),
    sa.column("disbursement_id", sa.Integer),
    sa.column("answer", sa.String),
    sa.column("answered_by_id", sa.Integer),
    sa.column("answered_at", sa.DateTime),
)


def upgrade():
    conn = op.get_bind()
    receipts = conn.execute(sa.select(_RECEIPTS).order_by(_RECEIPTS.c.id)).all()
    if receipts:
        conn.execute(
            sa.insert(_ANSWERS),
            [
                {
                    "id": -r.id,
                    "uid": secrets.token_hex(10),
                    "disbursement_id": r.disbursement_id,
                    "answer": "received",
                    "answered_by_id": r.confirmed_by_id,
                    "answered_at": r.confirmed_at,
                }
                for r in receipts
            ],
        )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipts_confirmed_by_id'))
    # Its trigger goes with it on PostgreSQL.
    op.drop_table('receipts')


def downgrade():
    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('disbursement_id', sa.Integer(), nullable=False),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_receipts_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['disbursement_id'], ['disbursements.id'], name=op.f('fk_receipts_disbursement_id_disbursements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('disbursement_id', name=op.f('uq_receipts_disbursement_id'))
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipts_confirmed_by_id'), ['confirmed_by_id'], unique=False)
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    moved = sa.and_(_ANSWERS.c.id < 0, _ANSWERS.c.answer == "received")
    conn.execute(
        sa.insert(_RECEIPTS).from_select(
            ["id", "disbursement_id", "confirmed_by_id", "confirmed_at"],
            sa.select(
                -_ANSWERS.c.id,
                _ANSWERS.c.disbursement_id,
                _ANSWERS.c.answered_by_id,
                _ANSWERS.c.answered_at,
            ).where(moved),
        )
    )
    # The answers given back leave receipt_answers, whose rows the database otherwise
    # refuses to delete.
    if postgresql:
        op.execute("ALTER TABLE receipt_answers DISABLE TRIGGER receipt_answers_rows_are_final")
    conn.execute(sa.delete(_ANSWERS).where(moved))
    if postgresql:
        op.execute("ALTER TABLE receipt_answers ENABLE TRIGGER receipt_answers_rows_are_final")
        op.execute(
            "SELECT setval(pg_get_serial_sequence('receipts', 'id'), "
            "COALESCE(MAX(id), 0) + 1, false) FROM receipts"
        )
        op.execute(
            "CREATE TRIGGER receipts_rows_are_final BEFORE UPDATE OR DELETE ON receipts "
            "FOR EACH ROW EXECUTE FUNCTION hrdfund_rows_are_final()"
        )
