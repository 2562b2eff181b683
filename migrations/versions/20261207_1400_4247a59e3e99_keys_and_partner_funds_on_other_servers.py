"""keys and partner funds on other servers: each fund's key pairs for packets (private
halves encrypted), a fund record marked as the partner of a member fund, the packets a fund
imported (so none is imported twice), and on a referral the other side's id of it and the
months a fund on another server said it covered

Revision ID: 4247a59e3e99
Revises: 7b04d7dabfb3
Create Date: 2026-12-07 14:00:00.000000

"""
import contextlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4247a59e3e99'
down_revision = '7b04d7dabfb3'
branch_labels = None
depends_on = None


@contextlib.contextmanager
def _rebuilt_in_place():
    """On SQLite, batch mode copies `funds` and drops the old table, which other rows refer
    to: foreign keys are turned off around the rebuild (outside a transaction), then every
    reference is checked."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.get_context().autocommit_block():
            op.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if sqlite:
            with op.get_context().autocommit_block():
                op.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"references broken by rebuilding a table: {broken[:5]}")


def upgrade():
    with _rebuilt_in_place():
        _upgrade()


def downgrade():
    with _rebuilt_in_place():
        _downgrade()


def _upgrade():
    op.create_table('fund_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('encryption_public', sa.LargeBinary(), nullable=False),
    sa.Column('signing_public', sa.LargeBinary(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('private', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_keys_fund_id_funds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_keys')),
    sa.UniqueConstraint('fund_id', 'fingerprint', name='uq_fund_key_once'),
    sa.UniqueConstraint('uid', name=op.f('uq_fund_keys_uid'))
    )
    with op.batch_alter_table('fund_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fund_keys_fund_id'), ['fund_id'], unique=False)

    op.create_table('imported_packets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fund_id', sa.Integer(), nullable=False),
    sa.Column('from_fund_id', sa.Integer(), nullable=False),
    sa.Column('packet_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('imported_by_id', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['from_fund_id'], ['funds.id'], name=op.f('fk_imported_packets_from_fund_id_funds')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_imported_packets_fund_id_funds')),
    sa.ForeignKeyConstraint(['imported_by_id'], ['users.id'], name=op.f('fk_imported_packets_imported_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imported_packets')),
    sa.UniqueConstraint('from_fund_id', 'packet_id', name='uq_packet_once')
    )
    with op.batch_alter_table('imported_packets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imported_packets_from_fund_id'), ['from_fund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_packets_fund_id'), ['fund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_packets_imported_by_id'), ['imported_by_id'], unique=False)

    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('remote_uid', sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f('ix_funds_partner_of_id'), ['partner_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_funds_partner_of_id_funds'), 'funds', ['partner_of_id'], ['id'])
        batch_op.create_check_constraint(
            'partner_takes_no_applications',
            'partner_of_id IS NULL OR (NOT takes_applications AND NOT intake)',
        )

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remote_uid', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('covered_from', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('covered_to', sa.Integer(), nullable=True))



def _downgrade():
    # Referrals to and from partner funds, and the partner funds, go with their columns.
    op.execute(
        'DELETE FROM referrals WHERE from_fund_id IN (SELECT id FROM funds WHERE partner_of_id IS NOT NULL)'
        ' OR to_fund_id IN (SELECT id FROM funds WHERE partner_of_id IS NOT NULL)'
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('covered_to')
        batch_op.drop_column('covered_from')
        batch_op.drop_column('remote_uid')

    op.execute('DELETE FROM fund_keys')
    op.execute('DELETE FROM imported_packets')
    op.execute('DELETE FROM funds WHERE partner_of_id IS NOT NULL')
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_funds_partner_takes_no_applications'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_funds_partner_of_id_funds'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_funds_partner_of_id'))
        batch_op.drop_column('remote_uid')
        batch_op.drop_column('partner_of_id')

    with op.batch_alter_table('imported_packets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imported_packets_imported_by_id'))
        batch_op.drop_index(batch_op.f('ix_imported_packets_fund_id'))
        batch_op.drop_index(batch_op.f('ix_imported_packets_from_fund_id'))

    op.drop_table('imported_packets')
    with op.batch_alter_table('fund_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fund_keys_fund_id'))

    op.drop_table('fund_keys')
