"""What a pool's page lists of the grants drawing on it: each commitment and release with
its case's code (the page keeps the rows of the cases its reader may open)."""

import sqlalchemy as sa

from ..cases.models import Application
from ..ledger.models import Allocation, Release
from ..pools.page import CaseRows, register_case_rows
from .models import Grant


def _grants_of(case_ids):
    return sa.select(Grant.id).where(Grant.application_id.in_(case_ids))


def _allocation_on_cases(case_ids):
    """SQL: the allocation is of a grant to one of ``case_ids``."""
    return Allocation.grant_id.in_(_grants_of(case_ids))


def _release_on_cases(case_ids):
    """SQL: the release gives back an allocation of a grant to one of ``case_ids``."""
    return Release.allocation_id.in_(
        sa.select(Allocation.id).where(Allocation.grant_id.in_(_grants_of(case_ids)))
    )


@register_case_rows
def commitments(pool):
    case = (Application.uid.label("case"), Application.code.label("code"))
    allocations = (
        sa.select(Allocation, *case)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    releases = (
        sa.select(Release, *case)
        .join(Allocation, Allocation.id == Release.allocation_id)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id)
    )
    return {
        "allocations": CaseRows(
            allocations,
            Allocation.created_at,
            Allocation,
            sa.select(Allocation.id).where(Allocation.pool_id == pool.id),
            _allocation_on_cases,
        ),
        "releases": CaseRows(
            releases,
            Release.created_at,
            Release,
            # From the releases, few, each to its commitment; not from every commitment
            # of the pool to its releases.
            sa.select(Release.id).where(
                sa.exists()
                .where(Allocation.id == Release.allocation_id, Allocation.pool_id == pool.id)
                .correlate_except(Allocation)
            ),
            _release_on_cases,
        ),
    }
