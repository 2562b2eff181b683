"""consents both ways: who withdrew a grant of consent and how, beside when; partner
labels: a partner organisation's own encrypted name for a case it referred

Revision ID: 5d2e8b1f4c7a
Revises: 5d2e8b1c7a43
Create Date: 2026-12-10 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '5d2e8b1f4c7a'
down_revision = '5d2e8b1c7a43'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_how', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_consents_withdrawn_by_id'), ['withdrawn_by_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_consents_withdrawn_by_id_users'), 'users', ['withdrawn_by_id'], ['id'])

    op.create_table('partner_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('partner_organisation_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.LargeBinary(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_partner_labels_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_organisation_id'], ['partner_organisations.id'], name=op.f('fk_partner_labels_partner_organisation_id_partner_organisations')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_partner_labels_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_labels')),
    sa.UniqueConstraint('application_id', 'partner_organisation_id', name=op.f('uq_partner_labels_application_id_partner_organisation_id')),
    sa.UniqueConstraint('uid', name=op.f('uq_partner_labels_uid'))
    )
    with op.batch_alter_table('partner_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_labels_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_labels_partner_organisation_id'), ['partner_organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_labels_updated_by_id'), ['updated_by_id'], unique=False)


def downgrade():
    with op.batch_alter_table('partner_labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_labels_updated_by_id'))
        batch_op.drop_index(batch_op.f('ix_partner_labels_partner_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_partner_labels_application_id'))

    op.drop_table('partner_labels')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_consents_withdrawn_by_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_consents_withdrawn_by_id'))
        batch_op.drop_column('withdrawn_how')
        batch_op.drop_column('withdrawn_by_id')
