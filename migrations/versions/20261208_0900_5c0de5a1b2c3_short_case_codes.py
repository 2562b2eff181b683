"""short case codes: each sent case gets HRD<fund>-<yy>-<nnnn>, counted per fund and year
in a counter row that only goes up, unique on the server

Cases sent before this revision get theirs here, per fund in the order they were sent, and
each fund's counters start after them.

Revision ID: 5c0de5a1b2c3
Revises: 4247a59e3e99
Create Date: 2026-12-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c0de5a1b2c3'
down_revision = '4247a59e3e99'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    op.create_table(
        'case_code_counters',
        sa.Column('fund_id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('last_number', sa.Integer(), nullable=False),
        sa.CheckConstraint('last_number >= 0', name=op.f('ck_case_code_counters_last_number_positive')),
        sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_case_code_counters_fund_id_funds')),
        sa.PrimaryKeyConstraint('fund_id', 'year', name=op.f('pk_case_code_counters')),
    )
    # A plain ADD COLUMN and a unique index on both databases: rebuilding `applications`
    # on SQLite would trip over every row that refers to it.
    op.add_column('applications', sa.Column('code', sa.String(length=24), nullable=True))
    bind = op.get_bind()
    counters = {}
    last = None
    while True:
        where = ''
        params = {}
        if last is not None:
            where = 'AND (fund_id, submitted_at, id) > (:f, :s, :i) '
            params = {'f': last[0], 's': last[1], 'i': last[2]}
        rows = bind.execute(
            sa.text(
                'SELECT id, fund_id, submitted_at FROM applications '
                f'WHERE submitted_at IS NOT NULL {where}'
                f'ORDER BY fund_id, submitted_at, id LIMIT {BATCH}'
            ),
            params,
        ).all()
        if not rows:
            break
        codes = []
        for row_id, fund_id, submitted_at in rows:
            if isinstance(submitted_at, str):  # SQLite hands back text
                year = int(submitted_at[:4])
            else:
                year = submitted_at.year
            number = counters.get((fund_id, year), 0) + 1
            counters[(fund_id, year)] = number
            codes.append({'id': row_id, 'code': f'HRD{fund_id}-{year % 100:02d}-{number:04d}'})
        bind.execute(sa.text('UPDATE applications SET code = :code WHERE id = :id'), codes)
        last = rows[-1][1], rows[-1][2], rows[-1][0]
    if counters:
        bind.execute(
            sa.text(
                'INSERT INTO case_code_counters (fund_id, year, last_number) VALUES (:f, :y, :n)'
            ),
            [{'f': f, 'y': y, 'n': n} for (f, y), n in sorted(counters.items())],
        )
    op.create_index('ix_applications_code', 'applications', ['code'], unique=True)


def downgrade():
    op.drop_index('ix_applications_code', table_name='applications')
    op.execute('ALTER TABLE applications DROP COLUMN code')
    op.drop_table('case_code_counters')
