"""What a pool's page lists of the payments from it: each payment and reversal with its
case's code (the page keeps the rows of the cases its reader may open)."""

import sqlalchemy as sa

from ..cases.models import Application
from ..grants.models import Grant
from ..ledger.models import Disbursement
from ..pools.page import CaseRows, register_case_rows


def _on_cases(case_ids):
    """SQL: the payment is of a grant to one of ``case_ids``."""
    return Disbursement.grant_id.in_(sa.select(Grant.id).where(Grant.application_id.in_(case_ids)))


@register_case_rows
def payments(pool):
    payments = (
        sa.select(Disbursement, Application.uid.label("case"), Application.code.label("code"))
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Disbursement.pool_id == pool.id)
    )
    return {
        "payments": CaseRows(
            payments,
            Disbursement.paid_on,
            Disbursement,
            sa.select(Disbursement.id).where(Disbursement.pool_id == pool.id),
            _on_cases,
        )
    }
