"""The pool-eligibility rule has one home and two forms: the Python form approvals check a
case with, and the SQL form the staff queue filters by. They must select the same cases."""

from datetime import timedelta
from itertools import product

import sqlalchemy as sa

from hrdfund.cases.models import Application, ApplicationStatus, Urgency
from hrdfund.core import geo
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.pools.eligibility import fitting_cases, pool_mismatches
from hrdfund.pools.models import PoolRestriction, RestrictionKind

#: (name, currency, days the window opened before today and closes after it (None: no
#: bound), restrictions as (kind, value) pairs).
POOLS = [
    ("Open", "EUR", (None, None), []),
    ("Medical", "EUR", (30, None), [("category", "medical")]),
    ("Kenya", "USD", (None, 30), [("country", "KE")]),
    ("Region of Kenya", "KES", (10, 10), [("region", geo.region_of("KE"))]),
    (
        "Middle East and North Africa",
        "USD",
        (None, None),
        [("region", "Middle East and North Africa")],
    ),
    (
        "Legal or relocation in Uganda or Colombia",
        "USD",
        (None, None),
        [
            ("category", "legal"),
            ("category", "relocation"),
            ("country", "UG"),
            ("country", "CO"),
        ],
    ),
    (
        "Medical in Colombia's region",
        "EUR",
        (None, None),
        [
            ("category", "medical"),
            ("region", geo.region_of("CO")),
        ],
    ),
]

CATEGORIES = [Category.MEDICAL, Category.LEGAL, Category.RELOCATION]
#: Syria and Ecuador were left out of the table of regions once: no regional pool fit them.
COUNTRIES = ["KE", "UG", "CO", "SY", "EC"]
CURRENCIES = ["EUR", "USD"]


def _pools(fund, make_donor, make_pool):
    today = utcnow().date()
    donor = make_donor()
    pools = []
    for name, currency, (opened, closes), restrictions in POOLS:
        pool = make_pool(donor, name, currency=currency)
        pool.starts_on = today - timedelta(days=opened) if opened is not None else None
        pool.ends_on = today + timedelta(days=closes) if closes is not None else None
        pool.restrictions = [
            PoolRestriction(kind=RestrictionKind(kind), value=value) for kind, value in restrictions
        ]
        pools.append(pool)
    db.session.commit()
    return pools


def _cases(fund):
    """One case of each category, country and currency, its region recorded as saving a
    case records it."""
    cases = [
        Application(
            fund_id=fund.id,
            category=category,
            country=country,
            region=geo.region_of(country),
            currency=currency,
            amount_requested=1000,
            status=ApplicationStatus.SUBMITTED,
            urgency=Urgency.NORMAL,
        )
        for category, country, currency in product(CATEGORIES, COUNTRIES, CURRENCIES)
    ]
    db.session.add_all(cases)
    db.session.commit()
    return cases


def test_the_python_and_sql_forms_of_pool_eligibility_select_the_same_cases(
    app, fund, make_donor, make_pool
):
    """For every pool of the grid, the cases the queue's SQL conditions select are exactly
    those an approval finds nothing against (its cap aside), whatever their currency, on a
    day inside every pool's window; each pool takes some cases, and the restricted ones
    leave some out, so a change to one form alone shows."""
    pools = _pools(fund, make_donor, make_pool)
    cases = _cases(fund)
    today = utcnow().date()
    refused = 0
    for pool in pools:
        by_sql = set(
            db.session.execute(
                sa.select(Application.uid).where(
                    Application.fund_id == fund.id, *fitting_cases(pool, Application)
                )
            ).scalars()
        )
        by_python = {case.uid for case in cases if not pool_mismatches(pool, case, None, today)}
        assert by_sql == by_python, pool.name
        assert by_python, pool.name
        refused += len(cases) - len(by_python)
        if pool.restrictions:
            assert len(by_python) < len(cases), pool.name
    assert refused > 0
