"""The bounds a payment is held to, and who may lift them.

One finance officer alone may book a payment at the fund's table rate (or within
``HRDFUND_RATE_TOLERANCE_PERCENT`` of it), with a fee up to ``HRDFUND_MAX_FEE_PERCENT`` of
what the payment costs the pool and an exchange difference up to
``HRDFUND_MAX_EXCHANGE_DIFFERENCE_PERCENT`` of the commitment it settles. Beyond any of
them the payment is held until a second person (another finance officer or a manager of
the fund, never the one who entered it) confirms it; `check` reports a booked payment
beyond them without that confirmation.
"""

from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import limits
from ..alerts.models import AlertKind
from ..alerts.services import notify_users
from ..applications.review_models import ConflictDeclaration
from ..auth.models import Role, User
from ..extensions import db
from ..pools.services import MissingRateError, checked_rate, rate_entry
from .models import HoldReason


class PaymentError(Exception):
    """A payment the rules refuse; the message says which rule in plain words."""


#: What a payment says when a rate's source or reason comes without the rate.
RATE_OR_NOTHING = _l(
    "A source or reason was given without a rate: enter the rate, or leave its source and "
    "reason empty to use the fund's table."
)


def payment_rate(fund_id, paid, pool_currency, on, rate, source, reason, actor):
    """The rate to freeze on a payment and whether a second person must confirm it, as
    (rate, source, set_by_id, reason, table rate or None, beyond the tolerance). A source
    or reason given without a rate is refused rather than dropped."""
    if rate is None and ((source or "").strip() or (reason or "").strip()):
        raise PaymentError(RATE_OR_NOTHING)
    if paid == pool_currency:
        if rate is not None:
            raise PaymentError(
                _l(
                    "This payment is in the pool's own currency (%(currency)s): leave the "
                    "rate, its source and reason empty.",
                    currency=paid,
                )
            )
        return Decimal(1), None, None, None, Decimal(1), False
    try:
        table, table_source, table_by = rate_entry(fund_id, paid, pool_currency, on)
    except MissingRateError:
        table = None
    if rate is None:
        if table is None:
            raise PaymentError(
                _l(
                    "No rate from %(paid)s to %(pool)s is in the table: enter the rate used "
                    "and its source.",
                    paid=paid,
                    pool=pool_currency,
                )
            )
        return table, table_source, table_by, None, table, False
    rate = checked_rate(rate, PaymentError)
    if not (source or "").strip():
        raise PaymentError(_l("Say where the rate comes from."))
    reason = (reason or "").strip() or None
    beyond = rate_beyond_tolerance(rate, table)
    if beyond and reason is None:
        raise PaymentError(
            _l(
                "This rate is more than %(pct)s%% away from the fund's table "
                "(%(table)s): give a reason for it; a second person confirms it.",
                pct=format((limits.rate_tolerance() * 100).normalize(), "f"),
                table=table if table is not None else _l("none recorded"),
            )
        )
    return rate, source.strip(), actor.id, reason, table, beyond


def rate_beyond_tolerance(rate, table):
    """True when ``rate`` is further than the tolerance from the ``table`` rate, or when the
    table has none to compare with."""
    return table is None or abs(rate - table) > table * limits.rate_tolerance()


def bounds_passed(amount, fee, difference, rate_beyond=False):
    """The bounds a payment passes that one person may not pass alone (HoldReason values):
    a rate beyond the tolerance, a fee above its share of what the payment costs the pool,
    an exchange difference above its share of the commitment it settles."""
    passed = []
    if rate_beyond:
        passed.append(HoldReason.RATE)
    if fee > (amount + difference) * limits.max_fee_share():
        passed.append(HoldReason.FEE)
    if abs(difference) > amount * limits.max_difference_share():
        passed.append(HoldReason.DIFFERENCE)
    return passed


#: Who may be the second person on a payment.
SECOND_PERSONS = (Role.FINANCE, Role.MANAGER)


def second_persons(held, application):
    """Who may confirm ``held``: active finance officers and managers of the fund, but not
    the one who entered it nor anyone with a declared conflict on the case."""
    conflicted = sa.select(ConflictDeclaration.user_id).where(
        ConflictDeclaration.application_id == application.id
    )
    return (
        db.session.execute(
            sa.select(User)
            .where(
                User.fund_id == application.fund_id,
                User.active.is_(True),
                User.role.in_(SECOND_PERSONS),
                User.id != held.recorded_by_id,
                User.id.not_in(conflicted),
            )
            .order_by(User.id)
        )
        .scalars()
        .all()
    )


def alert_second_persons(held, application):
    """Queue an alert, in the outbox, to everyone who may confirm ``held``."""
    return notify_users(second_persons(held, application), application, AlertKind.PAYMENT_HELD)
