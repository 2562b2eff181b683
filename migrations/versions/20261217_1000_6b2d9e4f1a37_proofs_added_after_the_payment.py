"""proofs added after the payment: a payment recorded without a proof (the bank's
confirmation came a day later) gets one when it comes, as a row of its own, since the
payment row is final

Revision ID: 6b2d9e4f1a37
Revises: 3a9f6c2e1d58
Create Date: 2026-12-17 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '6b2d9e4f1a37'
down_revision = '3a9f6c2e1d58'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payment_proofs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('disbursement_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_payment_proofs_added_by_id_users')),
    sa.ForeignKeyConstraint(['disbursement_id'], ['disbursements.id'], name=op.f('fk_payment_proofs_disbursement_id_disbursements')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_payment_proofs_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_proofs')),
    sa.UniqueConstraint('disbursement_id', name=op.f('uq_payment_proofs_disbursement_id'))
    )


def downgrade():
    added = op.get_bind().execute(sa.text('SELECT count(*) FROM payment_proofs')).scalar()
    if added:
        raise RuntimeError(
            f'{added} payments have a proof added after them, which the earlier schema cannot'
            ' tie to them: restore the backup made before the upgrade instead'
        )
    op.drop_table('payment_proofs')
