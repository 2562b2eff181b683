"""member funds: each fund its public id, whether it takes applications and is the
network's intake fund, its suspension, what it covers (categories, countries, languages)
and its own four-eyes threshold and targets (empty: the environment's); the network's
administrator, an account of no fund

Existing funds take applications, cover everything and keep the environment's settings,
so an instance of one fund works as before.

Revision ID: 7993904b95fe
Revises: cb8a15d9e3a9
Create Date: 2026-12-07 09:00:00.000000

"""
import contextlib
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7993904b95fe'
down_revision = 'cb8a15d9e3a9'
branch_labels = None
depends_on = None

OLD_ROLES = ('applicant', 'partner', 'reviewer', 'manager', 'finance', 'donor', 'admin')
NEW_ROLES = OLD_ROLES + ('network_admin',)
TARGETS = (
    'target_response_hours_urgent',
    'target_decision_hours_urgent',
    'target_response_hours_normal',
    'target_decision_hours_normal',
)


@contextlib.contextmanager
def _rebuilt_in_place():
    """On SQLite, batch mode copies a table and drops the old one: with foreign keys on,
    dropping `funds` or `users`, which other rows refer to, fails. SQLite's own procedure
    turns them off around the rebuild (outside a transaction), then checks every
    reference."""
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


def _roles_check(roles):
    """The CHECK the role column's enum makes, for ``roles``."""
    return "role IN (" + ", ".join(f"'{r}'" for r in roles) + ")"


def upgrade():
    with _rebuilt_in_place():
        _upgrade()


def downgrade():
    with _rebuilt_in_place():
        _downgrade()


def _upgrade():
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uid', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('takes_applications', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('intake', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('suspended_at', sa.DateTime(), nullable=True))
        for name in ('categories', 'countries', 'languages'):
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('four_eyes_threshold', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('four_eyes_currency', sa.String(length=3), nullable=True))
        for name in TARGETS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
    funds = sa.table('funds', sa.column('id', sa.Integer), sa.column('uid', sa.String))
    bind = op.get_bind()
    for (fund_id,) in bind.execute(sa.select(funds.c.id)).all():
        bind.execute(
            funds.update().where(funds.c.id == fund_id).values(uid=secrets.token_hex(10))
        )
    bind.execute(sa.text("UPDATE funds SET categories = '[]', countries = '[]', languages = '[]'"))
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.alter_column('uid', existing_type=sa.String(length=20), nullable=False)
        for name in ('categories', 'countries', 'languages'):
            batch_op.alter_column(name, existing_type=sa.JSON(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_funds_uid'), ['uid'])
        batch_op.create_check_constraint(
            'threshold_positive', 'four_eyes_threshold IS NULL OR four_eyes_threshold >= 0'
        )
        batch_op.create_check_constraint(
            'threshold_has_currency',
            '(four_eyes_threshold IS NULL) = (four_eyes_currency IS NULL)',
        )
        batch_op.create_check_constraint(
            'targets_positive', ' AND '.join(f'({n} IS NULL OR {n} > 0)' for n in TARGETS)
        )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.drop_constraint(op.f('ck_users_staff_has_fund'), type_='check')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_check_constraint('role', _roles_check(NEW_ROLES))
        batch_op.create_check_constraint(
            'staff_has_fund', "role IN ('applicant', 'partner', 'network_admin') OR fund_id IS NOT NULL"
        )
        batch_op.create_check_constraint(
            'network_admin_has_no_fund', "role != 'network_admin' OR fund_id IS NULL"
        )


def _downgrade():
    op.execute("DELETE FROM users WHERE role = 'network_admin'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_network_admin_has_no_fund'), type_='check')
        batch_op.drop_constraint(op.f('ck_users_staff_has_fund'), type_='check')
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_check_constraint('role', _roles_check(OLD_ROLES))
        batch_op.create_check_constraint(
            'staff_has_fund', "role IN ('applicant', 'partner') OR fund_id IS NOT NULL"
        )
    with op.batch_alter_table('funds', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_funds_targets_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_funds_threshold_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_funds_threshold_has_currency'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_funds_uid'), type_='unique')
        for name in reversed(TARGETS):
            batch_op.drop_column(name)
        for name in ('four_eyes_currency', 'four_eyes_threshold', 'languages', 'countries', 'categories', 'suspended_at', 'intake', 'takes_applications', 'uid'):
            batch_op.drop_column(name)
