"""open items staff chase: payments the payee side has not answered on, reports overdue,
instalments not settled, payments a statement reported short or failed, payments the payee
side reported short or not received and finance has not resolved, grants without a plan;
one row per open item with the day its clock starts, kept as rows are written, for the dashboard's counts
and the Follow-up lists; and each grant's first payment beside its case's decision day,
for the dashboard's days to first payment; the cases' indexes by decision and sending
time hold whether a case is purged, so the dashboard counts them from the indexes alone

The items are worked out here from the rows, by the rule of
`hrdfund.disbursements.open_items.open_rows` as it stands at this revision, as
`flask hrdfund rebuild-figures` does.

Revision ID: 5d2e8b1c7a43
Revises: 177310c02cef
Create Date: 2026-12-10 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d2e8b1c7a43'
down_revision = '177310c02cef'
branch_labels = None
depends_on = None

#: The rule, one SELECT per kind; {rate} is the allocation's rate as each database divides,
#: {day} the UTC day of the payee's answer as each database takes it.
RULE = (
    "SELECT 'receipt' AS kind, disbursements.id AS item_id, applications.id AS "
    'application_id, applications.fund_id AS fund_id, disbursements.paid_on AS day FROM '
    'disbursements JOIN grants ON grants.id = disbursements.grant_id JOIN applications ON '
    'applications.id = grants.application_id WHERE applications.purged_at IS NULL AND '
    "applications.status IN ('approved', 'completed', 'paying') AND "
    'disbursements.reversal_of_id IS NULL AND (disbursements.id NOT IN (SELECT '
    'disbursements.reversal_of_id FROM disbursements WHERE disbursements.reversal_of_id '
    'IS NOT NULL)) AND (disbursements.id NOT IN (SELECT receipts.disbursement_id FROM '
    "receipts)) AND (disbursements.id NOT IN (SELECT receipt_answers.disbursement_id FROM "
    "receipt_answers)) UNION ALL SELECT 'report' AS kind, applications.id AS item_id, "
    'applications.id AS application_id, applications.fund_id AS fund_id, '
    'min(disbursements.paid_on) AS day FROM applications JOIN grants ON '
    'grants.application_id = applications.id JOIN disbursements ON disbursements.grant_id '
    '= grants.id WHERE applications.purged_at IS NULL AND applications.status IN '
    "('approved', 'completed', 'paying') AND disbursements.reversal_of_id IS NULL AND "
    '(disbursements.id NOT IN (SELECT disbursements.reversal_of_id FROM disbursements '
    'WHERE disbursements.reversal_of_id IS NOT NULL)) AND (applications.id NOT IN (SELECT '
    'use_of_funds_reports.application_id FROM use_of_funds_reports)) GROUP BY '
    "applications.id, applications.fund_id UNION ALL SELECT 'instalment' AS kind, "
    'instalments.id AS item_id, applications.id AS application_id, applications.fund_id '
    'AS fund_id, instalments.due_on AS day FROM instalments JOIN payment_plans ON '
    'payment_plans.id = instalments.plan_id JOIN grants ON grants.id = '
    'payment_plans.grant_id JOIN applications ON applications.id = grants.application_id '
    'LEFT OUTER JOIN (SELECT disbursements.instalment_id AS instalment_id, '
    'coalesce(sum(CASE WHEN (disbursements.reversal_of_id IS NULL) THEN '
    'disbursements.amount / {rate} ELSE -(disbursements.amount / {rate}) END), 0) AS '
    'paid, count(disbursements.id) FILTER (WHERE disbursements.reversal_of_id IS NULL) AS '
    'payments FROM disbursements JOIN allocations ON allocations.id = '
    'disbursements.allocation_id WHERE disbursements.instalment_id IS NOT NULL GROUP BY '
    'disbursements.instalment_id) AS anon_1 ON anon_1.instalment_id = instalments.id '
    "WHERE applications.purged_at IS NULL AND applications.status IN ('approved', "
    "'completed', 'paying') AND grants.status = 'active' AND (coalesce(anon_1.paid, 0) < "
    '0.005 OR coalesce(anon_1.paid, 0) < instalments.amount - 1.00) UNION ALL SELECT '
    "'mismatch' AS kind, deliveries.id AS item_id, applications.id AS application_id, "
    'applications.fund_id AS fund_id, deliveries.reported_on AS day FROM deliveries JOIN '
    'disbursements ON disbursements.id = deliveries.disbursement_id JOIN grants ON '
    'grants.id = disbursements.grant_id JOIN applications ON applications.id = '
    'grants.application_id LEFT OUTER JOIN disbursements AS disbursements_1 ON '
    'disbursements_1.reversal_of_id = disbursements.id WHERE applications.purged_at IS '
    "NULL AND applications.status IN ('approved', 'completed', 'paying') AND "
    "(deliveries.status = 'short' AND disbursements_1.id IS NULL OR deliveries.status = "
    "'failed' AND coalesce(disbursements_1.amount, 0) < disbursements.amount) UNION ALL "
    "SELECT 'answer' AS kind, receipt_answers.id AS item_id, applications.id AS "
    'application_id, applications.fund_id AS fund_id, {day} AS day FROM receipt_answers '
    'JOIN disbursements ON disbursements.id = receipt_answers.disbursement_id JOIN grants '
    'ON grants.id = disbursements.grant_id JOIN applications ON applications.id = '
    'grants.application_id LEFT OUTER JOIN receipt_resolutions ON '
    'receipt_resolutions.answer_id = receipt_answers.id WHERE applications.purged_at IS '
    "NULL AND applications.status IN ('approved', 'completed', 'paying') AND "
    "receipt_answers.answer != 'received' AND receipt_resolutions.id IS NULL AND NOT "
    '(EXISTS (SELECT * FROM receipt_answers AS receipt_answers_1 WHERE '
    'receipt_answers_1.disbursement_id = receipt_answers.disbursement_id AND '
    'receipt_answers_1.id > receipt_answers.id)) UNION ALL '
    "SELECT 'unplanned' AS kind, grants.id AS item_id, applications.id AS application_id, "
    'applications.fund_id AS fund_id, date(grants.approved_at) AS day FROM grants JOIN '
    'applications ON applications.id = grants.application_id LEFT OUTER JOIN (SELECT '
    'disbursements.grant_id AS grant_id, coalesce(sum(CASE WHEN '
    '(disbursements.reversal_of_id IS NULL) THEN disbursements.amount / {rate} ELSE '
    '-(disbursements.amount / {rate}) END), 0) AS paid FROM disbursements JOIN '
    'allocations ON allocations.id = disbursements.allocation_id GROUP BY '
    'disbursements.grant_id) AS anon_2 ON anon_2.grant_id = grants.id WHERE '
    "applications.purged_at IS NULL AND applications.status IN ('approved', 'completed', "
    "'paying') AND grants.status = 'active' AND (grants.id NOT IN (SELECT "
    'payment_plans.grant_id FROM payment_plans)) AND coalesce(anon_2.paid, 0) < '
    'grants.amount - 1.00'
)


def rule(dialect):
    """The rule's SQL as ``dialect`` ('postgresql' or 'sqlite') runs it."""
    if dialect == 'postgresql':
        rate = 'CAST(allocations.fx_rate AS NUMERIC(18, 8))'
        answered = 'CAST(receipt_answers.answered_at AS DATE)'
    else:
        rate = '(allocations.fx_rate + 0.0)'
        answered = 'date(receipt_answers.answered_at)'
    return RULE.format(rate=rate, day=answered)


def upgrade():
    op.create_table(
        'open_items',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('item_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('fund_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ['application_id'],
            ['applications.id'],
            name=op.f('fk_open_items_application_id_applications'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_open_items_fund_id_funds')),
        sa.PrimaryKeyConstraint('kind', 'item_id', name=op.f('pk_open_items')),
    )
    op.create_index(
        op.f('ix_open_items_application_id'), 'open_items', ['application_id'], unique=False
    )
    op.create_index(
        'ix_open_items_count', 'open_items', ['fund_id', 'kind', 'day', 'item_id'], unique=False
    )
    bind = op.get_bind()
    bind.execute(
        sa.text(
            'INSERT INTO open_items (kind, item_id, application_id, fund_id, day) '
            + rule(bind.dialect.name)
        )
    )
    bind.execute(sa.text('ANALYZE open_items'))
    op.create_table(
        'first_payments',
        sa.Column('grant_id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('fund_id', sa.Integer(), nullable=False),
        sa.Column('paid_on', sa.Date(), nullable=False),
        sa.Column('decided_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ['application_id'],
            ['applications.id'],
            name=op.f('fk_first_payments_application_id_applications'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['fund_id'], ['funds.id'], name=op.f('fk_first_payments_fund_id_funds')
        ),
        sa.ForeignKeyConstraint(
            ['grant_id'], ['grants.id'], name=op.f('fk_first_payments_grant_id_grants')
        ),
        sa.PrimaryKeyConstraint('grant_id', name=op.f('pk_first_payments')),
    )
    op.create_index(
        op.f('ix_first_payments_application_id'), 'first_payments', ['application_id'], unique=False
    )
    op.create_index(
        'ix_first_payments_chart',
        'first_payments',
        ['fund_id', 'paid_on', 'decided_on', 'application_id'],
        unique=False,
    )
    day = 'CAST({} AS DATE)' if bind.dialect.name == 'postgresql' else 'date({})'
    bind.execute(
        sa.text(
            'INSERT INTO first_payments (grant_id, application_id, fund_id, paid_on, decided_on) '
            'SELECT grants.id, applications.id, applications.fund_id, '
            f'min(disbursements.paid_on), {day.format("applications.decided_at")} '
            'FROM grants JOIN applications ON applications.id = grants.application_id '
            'JOIN disbursements ON disbursements.grant_id = grants.id '
            'WHERE applications.purged_at IS NULL '
            "AND applications.status IN ('approved', 'completed', 'paying') "
            'AND applications.decided_at IS NOT NULL AND disbursements.reversal_of_id IS NULL '
            'GROUP BY grants.id, applications.id, applications.fund_id, applications.decided_at'
        )
    )
    bind.execute(sa.text('ANALYZE first_payments'))
    # The cases received and decided by week and month are counted from indexes alone.
    op.drop_index('ix_applications_decided', table_name='applications')
    op.create_index(
        'ix_applications_decided',
        'applications',
        ['fund_id', 'decided_at', 'decision_due_at', 'purged_at'],
        unique=False,
    )
    op.create_index(
        'ix_applications_received',
        'applications',
        ['fund_id', 'submitted_at', 'purged_at'],
        unique=False,
    )
    bind.execute(sa.text('ANALYZE applications'))


def downgrade():
    op.drop_index('ix_applications_received', table_name='applications')
    op.drop_index('ix_applications_decided', table_name='applications')
    op.create_index(
        'ix_applications_decided', 'applications', ['fund_id', 'decided_at', 'decision_due_at']
    )
    op.drop_index('ix_first_payments_chart', table_name='first_payments')
    op.drop_index(op.f('ix_first_payments_application_id'), table_name='first_payments')
    op.drop_table('first_payments')
    op.drop_index('ix_open_items_count', table_name='open_items')
    op.drop_index(op.f('ix_open_items_application_id'), table_name='open_items')
    op.drop_table('open_items')
