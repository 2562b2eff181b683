"""document chunks: stored documents kept in the database, in encrypted pieces, so that
every app server on one PostgreSQL serves them

Revision ID: 7c1d4e9a2b60
Revises: 7c41e0a9d2b6
Create Date: 2026-12-11 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '7c1d4e9a2b60'
down_revision = '7c41e0a9d2b6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('document_chunks',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_document_chunks_document_id_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id', 'seq', name=op.f('pk_document_chunks'))
    )


def downgrade():
    # Dropping the table would lose every document kept in it.
    if op.get_bind().execute(sa.text('SELECT 1 FROM document_chunks LIMIT 1')).first():
        raise RuntimeError('documents are kept in the database: downgrading would delete them')
    op.drop_table('document_chunks')
