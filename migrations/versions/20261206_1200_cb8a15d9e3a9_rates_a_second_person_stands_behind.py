"""rates a second person stands behind, and what payments and approvals were weighed
against: table entries held for a second rate keeper and who confirmed them; on payments
(held and booked) the table rate and entry of their day and the limits then in force; on
approvals their worth in the reporting currency, the entry it was converted with and the
threshold then in force

Revision ID: cb8a15d9e3a9
Revises: 4aef067cf455
Create Date: 2026-12-06 12:00:00.000000

"""
import hashlib
import hmac
from decimal import Decimal

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = 'cb8a15d9e3a9'
down_revision = '4aef067cf455'
branch_labels = None
depends_on = None

PERCENTS = ('rate_tolerance_percent', 'max_fee_percent', 'max_difference_percent')
#: (table, column, type in SQL, table it refers to or None, CHECK or None), in order.
COLUMNS = (
    ('exchange_rates', 'needs_second', 'BOOLEAN DEFAULT 0 NOT NULL', None, None),
    ('exchange_rates', 'confirmed_by_id', 'INTEGER', 'users', None),
    ('exchange_rates', 'confirmed_at', 'DATETIME', None, None),
    ('disbursements', 'table_rate', 'NUMERIC(18, 8)', None, None),
    ('disbursements', 'rate_entry_id', 'INTEGER', 'exchange_rates', None),
    *(('disbursements', name, 'NUMERIC(9, 6)', None, None) for name in PERCENTS),
    ('held_payments', 'rate_entry_id', 'INTEGER', 'exchange_rates', None),
    *(('held_payments', name, 'NUMERIC(9, 6)', None, None) for name in PERCENTS),
    ('decisions', 'worth', 'NUMERIC(14, 2)', None, None),
    (
        'decisions',
        'worth_currency',
        'VARCHAR(3)',
        None,
        ('ck_decisions_worth_currency_code', 'length(worth_currency) = 3 AND upper(worth_currency) = worth_currency'),
    ),
    ('decisions', 'weighed_rate_id', 'INTEGER', 'exchange_rates', None),
    ('decisions', 'threshold', 'NUMERIC(14, 2)', None, None),
)


def upgrade():
    # Plain ADD COLUMN, the foreign keys and checks inline on SQLite: rebuilding these
    # tables there would trip over the rows that refer to them (receipts to payments,
    # the split of pools to decisions, which a rebuild's DROP would delete in cascade).
    # Existing payments keep their seal: the new fields are sealed only when set.
    if op.get_bind().dialect.name == 'sqlite':
        for table, column, type_, refers, check in COLUMNS:
            sql = f'ALTER TABLE {table} ADD COLUMN {column} {type_}'
            if refers:
                sql += f' REFERENCES {refers} (id)'
            if check:
                sql += f' CONSTRAINT {check[0]} CHECK ({check[1]})'
            op.execute(sql)
        return
    op.add_column('exchange_rates', sa.Column('needs_second', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('exchange_rates', sa.Column('confirmed_by_id', sa.Integer(), nullable=True))
    op.add_column('exchange_rates', sa.Column('confirmed_at', sa.DateTime(), nullable=True))
    op.create_foreign_key(op.f('fk_exchange_rates_confirmed_by_id_users'), 'exchange_rates', 'users', ['confirmed_by_id'], ['id'])
    op.add_column('disbursements', sa.Column('table_rate', sa.Numeric(precision=18, scale=8), nullable=True))
    for table in ('disbursements', 'held_payments'):
        op.add_column(table, sa.Column('rate_entry_id', sa.Integer(), nullable=True))
        for name in PERCENTS:
            op.add_column(table, sa.Column(name, sa.Numeric(precision=9, scale=6), nullable=True))
        op.create_foreign_key(op.f(f'fk_{table}_rate_entry_id_exchange_rates'), table, 'exchange_rates', ['rate_entry_id'], ['id'])
    op.add_column('decisions', sa.Column('worth', sa.Numeric(precision=14, scale=2), nullable=True))
    op.add_column('decisions', sa.Column('worth_currency', sa.String(length=3), nullable=True))
    op.add_column('decisions', sa.Column('weighed_rate_id', sa.Integer(), nullable=True))
    op.add_column('decisions', sa.Column('threshold', sa.Numeric(precision=14, scale=2), nullable=True))
    op.create_foreign_key(op.f('fk_decisions_weighed_rate_id_exchange_rates'), 'decisions', 'exchange_rates', ['weighed_rate_id'], ['id'])
    op.create_check_constraint(op.f('ck_decisions_worth_currency_code'), 'decisions', 'length(worth_currency) = 3 AND upper(worth_currency) = worth_currency')


#: A payment's seal as it stands at this revision: the fields it covers, and those covered
#: by name when set (the second person; the five kept here, which the downgrade drops).
SEALED = (
    'uid', 'grant_id', 'allocation_id', 'pool_id', 'instalment_id', 'amount_paid',
    'currency_paid', 'amount', 'fx_rate', 'fee_amount', 'exchange_difference', 'paid_on',
    'reversal_of_id',
)
KEPT = ('table_rate', 'rate_entry_id', *PERCENTS)
PAYMENTS = sa.table(
    'disbursements',
    sa.column('id', sa.Integer),
    sa.column('seal', sa.String),
    *(sa.column(name, sa.Integer) for name in ('grant_id', 'allocation_id', 'pool_id', 'instalment_id', 'reversal_of_id', 'confirmed_by_id', 'rate_entry_id')),
    *(sa.column(name, sa.String) for name in ('uid', 'currency_paid')),
    *(sa.column(name, sa.Numeric(14, 2)) for name in ('amount_paid', 'amount', 'fee_amount', 'exchange_difference')),
    *(sa.column(name, sa.Numeric(18, 8)) for name in ('fx_rate', 'table_rate')),
    *(sa.column(name, sa.Numeric(9, 6)) for name in PERCENTS),
    sa.column('paid_on', sa.Date),
)


def _seal_value(value):
    if value is None:
        return ''
    if isinstance(value, Decimal):
        return format(value.normalize(), 'f')
    return str(value)


def _reseal_without_kept():
    """Seal again, without the fields the downgrade drops, each payment that kept them:
    its seal covered them, and would no longer match once they are gone."""
    key = current_app.extensions['hrdfund_audit_key']
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(PAYMENTS).where(sa.or_(*(PAYMENTS.c[name].is_not(None) for name in KEPT)))
    ).mappings().all()
    if not rows:
        return
    postgresql = bind.dialect.name == 'postgresql'
    if postgresql:
        op.execute('ALTER TABLE disbursements DISABLE TRIGGER disbursements_rows_are_final')
    for row in rows:
        parts = ['disbursements'] + [_seal_value(row[name]) for name in SEALED]
        if row['confirmed_by_id'] is not None:
            parts.append(f"confirmed_by_id={row['confirmed_by_id']}")
        message = '\x1f'.join(parts)
        seal = hmac.new(key, b'seal\x1f' + message.encode(), hashlib.sha256).hexdigest()
        bind.execute(sa.update(PAYMENTS).where(PAYMENTS.c.id == row['id']).values(seal=seal))
    if postgresql:
        op.execute('ALTER TABLE disbursements ENABLE TRIGGER disbursements_rows_are_final')


def downgrade():
    _reseal_without_kept()
    # A rate still waiting for a second person never counted; without the column that
    # holds it, it would count at once: it leaves the table (nothing refers to it).
    rates = sa.table('exchange_rates', sa.column('needs_second', sa.Boolean), sa.column('confirmed_by_id', sa.Integer))
    op.execute(sa.delete(rates).where(rates.c.needs_second.is_(True), rates.c.confirmed_by_id.is_(None)))
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('ck_decisions_worth_currency_code'), 'decisions', type_='check')
        op.drop_constraint(op.f('fk_decisions_weighed_rate_id_exchange_rates'), 'decisions', type_='foreignkey')
        for table in ('held_payments', 'disbursements'):
            op.drop_constraint(op.f(f'fk_{table}_rate_entry_id_exchange_rates'), table, type_='foreignkey')
        op.drop_constraint(op.f('fk_exchange_rates_confirmed_by_id_users'), 'exchange_rates', type_='foreignkey')
        for table, column, *_rest in reversed(COLUMNS):
            op.drop_column(table, column)
        return
    # SQLite drops a column that refers to another table only by rebuilding the table, and
    # other rows refer to these tables: foreign keys are off around the rebuilds (outside
    # a transaction, where the pragma works), then every reference is checked.
    with op.get_context().autocommit_block():
        op.execute('PRAGMA foreign_keys=OFF')
    try:
        for table in ('decisions', 'held_payments', 'disbursements', 'exchange_rates'):
            with op.batch_alter_table(table, schema=None) as batch_op:
                for name, column, _type, _refers, check in reversed(COLUMNS):
                    if name == table:
                        if check:
                            batch_op.drop_constraint(batch_op.f(check[0]), type_='check')
                        batch_op.drop_column(column)
    finally:
        with op.get_context().autocommit_block():
            op.execute('PRAGMA foreign_keys=ON')
    broken = op.get_bind().exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if broken:
        raise RuntimeError(f'references broken by rebuilding tables: {broken[:5]}')
