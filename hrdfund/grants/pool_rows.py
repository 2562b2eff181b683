"""What a pool's page lists of the grants drawing on it: each commitment and release with
its case's code (the page keeps the rows of the cases its reader may open)."""

import sqlalchemy as sa

from ..cases.models import Application
from ..ledger.models import Allocation, Release
from ..pools.page import register_case_rows
from .models import Grant


@register_case_rows
def commitments(pool):
    case = Application.uid.label("case")
    allocations = (
        sa.select(Allocation, case)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    releases = (
        sa.select(Release, case)
        .join(Allocation, Allocation.id == Release.allocation_id)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    return {
        "allocations": (allocations, Allocation.created_at, Allocation),
        "releases": (releases, Release.created_at, Release),
    }
