"""Which payments a member of staff may list: their fund's payments and reversals on cases
they may open, with the pool and the case each is on. The payments page and the payments
download both read through it, so the rule is written once."""

import sqlalchemy as sa

from ..cases.access import visible_cases
from ..cases.models import Application
from ..grants.models import Grant
from ..ledger.models import Disbursement
from ..pools.models import Pool

#: The pool and the case of each payment, beside the columns a list asks for.
PLACE = (
    Pool.name.label("pool"),
    Pool.currency.label("pool_currency"),
    Application.uid.label("case_uid"),
    Application.code.label("case_code"),
)


def visible_payments(user, *columns):
    """A select of ``columns`` and :data:`PLACE` over the payments and reversals of
    ``user``'s fund on cases ``user`` may open."""
    return (
        sa.select(*columns, *PLACE)
        .select_from(Disbursement)
        .join(Pool, Pool.id == Disbursement.pool_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Pool.fund_id == user.fund_id, visible_cases(user))
    )
