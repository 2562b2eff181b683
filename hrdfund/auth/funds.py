"""Which member funds an application may go to: those that take applications and are not
suspended, and the intake fund the network names for applicants who do not know."""

import sqlalchemy as sa

from ..core.extensions import db
from ..core.text import same_name
from .models import Fund


def _open():
    return sa.and_(
        Fund.takes_applications.is_(True),
        Fund.suspended_at.is_(None),
        Fund.partner_of_id.is_(None),
    )


def open_funds():
    """The funds that take applications now, by name."""
    return db.session.execute(sa.select(Fund).where(_open()).order_by(Fund.name)).scalars().all()


def intake_fund(opened=None):
    """The fund an application goes to when its applicant does not know, if one is named;
    ``opened``, the funds ``open_funds`` gave, spares reading them again."""
    if opened is not None:
        named = [fund for fund in opened if fund.intake]
        if len(named) > 1:
            raise sa.exc.MultipleResultsFound("more than one intake fund")
        return named[0] if named else None
    return db.session.execute(
        sa.select(Fund).where(Fund.intake.is_(True), _open())
    ).scalar_one_or_none()


def takes_applications(fund):
    return (
        fund is not None and fund.takes_applications and not fund.suspended and not fund.elsewhere
    )


def fund_name_taken(name, owner_id=None):
    """Whether ``name`` is taken, case aside, where one reader would see both funds: by a
    member fund of the server; for a partner fund on another server that the fund
    ``owner_id`` registers, by one of that fund's partners too. Another fund's partners
    are its own to know: their names neither show here nor are taken."""
    whose = Fund.partner_of_id.is_(None)
    if owner_id is not None:
        whose = sa.or_(whose, Fund.partner_of_id == owner_id)
    names = db.session.execute(sa.select(Fund.name).where(whose)).scalars()
    return any(same_name(name, other) for other in names)
