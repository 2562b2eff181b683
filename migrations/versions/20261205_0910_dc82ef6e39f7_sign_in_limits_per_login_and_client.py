"""sign-in limits per login and client

Failures are counted per login name (a keyed hash, whether the login has an account or
not) and browser, no longer on the account's row.

Revision ID: dc82ef6e39f7
Revises: 5d1e7a9c4b20
Create Date: 2026-12-05 06:42:29.069396

"""
import contextlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'dc82ef6e39f7'
down_revision = '5d1e7a9c4b20'
branch_labels = None
depends_on = None


@contextlib.contextmanager
def _users_rebuilt_in_place():
    """On SQLite, batch mode copies `users` to a new table and drops the old one: with
    foreign keys on, dropping a table other rows refer to fails (or cascades, deleting
    recovery codes). SQLite's own procedure turns them off around the rebuild (a pragma
    that only works outside a transaction), then checks every reference."""
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
            raise RuntimeError(f"references broken by rebuilding users: {broken[:5]}")


def upgrade():
    op.create_table('sign_in_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('counting_since', sa.DateTime(), nullable=True),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('known_until', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('failures >= 0', name=op.f('ck_sign_in_limits_failures_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_limits')),
    sa.UniqueConstraint('key', name=op.f('uq_sign_in_limits_key'))
    )
    with op.batch_alter_table('sign_in_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_limits_expires_at'), ['expires_at'], unique=False)

    # Counts and locks held on the account's row start afresh in the new counters.
    with _users_rebuilt_in_place():
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_users_failed_logins_positive'), type_='check')
            batch_op.drop_column('locked_until')
            batch_op.drop_column('failed_logins')


def downgrade():
    with _users_rebuilt_in_place():
        with op.batch_alter_table('users', schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0')
            )
            batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
            batch_op.create_check_constraint(
                op.f('ck_users_failed_logins_positive'), 'failed_logins >= 0'
            )

    with op.batch_alter_table('sign_in_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_limits_expires_at'))

    op.drop_table('sign_in_limits')
