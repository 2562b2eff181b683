"""Donors, pools, contributions and the fund's exchange-rate table.

Each service checks its rules, mutates, flushes and writes the audit entry; the caller
commits. Money is received by appending contribution rows; a correction is a reversal row.
"""

from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..extensions import db
from ..money import RATE_PLACES, ConversionError, MoneyError, convert, parse_rate, usable_rate
from .models import Contribution, Donor, ExchangeRate, Pool, PoolRestriction, RestrictionKind

#: Who may set up donors and pools and record money received.
POOL_KEEPERS = (Role.ADMIN, Role.MANAGER)
#: Who maintains the rate table.
RATE_KEEPERS = (Role.FINANCE, Role.MANAGER)


class PoolError(Exception):
    """A change the rules refuse; the message says which rule."""


class MissingRateError(PoolError):
    """No usable rate is recorded between two currencies; ``out_of_range`` when one is
    recorded but outside the rate range."""

    def __init__(self, message, out_of_range=False):
        super().__init__(message)
        self.out_of_range = out_of_range


def check_actor(actor, fund_id, roles):
    """Refuse unless ``actor`` has one of ``roles`` in the fund ``fund_id``."""
    if actor.role not in roles or actor.fund_id != fund_id:
        raise PoolError(_l("Your role may not do this."))


def create_donor(fund_id, name, actor):
    """A new donor of the fund."""
    check_actor(actor, fund_id, POOL_KEEPERS)
    donor = Donor(fund_id=fund_id, name=name.strip())
    db.session.add(donor)
    db.session.flush()
    audit.record("donor.created", donor, actor=actor)
    return donor


def create_pool(
    donor,
    actor,
    name,
    currency,
    cap_per_grant=None,
    starts_on=None,
    ends_on=None,
    restrictions=(),
):
    """A new pool of ``donor``'s money; ``restrictions`` is (kind, value) pairs."""
    check_actor(actor, donor.fund_id, POOL_KEEPERS)
    if starts_on and ends_on and ends_on < starts_on:
        raise PoolError(_l("The pool's window must end after it starts."))
    exists = db.session.execute(
        sa.select(Pool.id).where(Pool.fund_id == donor.fund_id, Pool.name == name.strip())
    ).first()
    if exists:
        raise PoolError(_l("Another pool already has this name."))
    pool = Pool(
        fund_id=donor.fund_id,
        donor_id=donor.id,
        name=name.strip(),
        currency=currency,
        cap_per_grant=cap_per_grant,
        starts_on=starts_on,
        ends_on=ends_on,
    )
    db.session.add(pool)
    db.session.flush()
    for kind, value in sorted(set(restrictions)):
        db.session.add(PoolRestriction(pool_id=pool.id, kind=RestrictionKind(kind), value=value))
    db.session.flush()
    audit.record("pool.created", pool, actor=actor, currency=currency)
    return pool


def rate_entry(fund_id, base, quote, on):
    """The table's latest rate on or before ``on`` from ``base`` to ``quote`` (units of
    ``quote`` per unit of ``base``), read either way round, as (rate, source, set_by_id).
    Raises :class:`MissingRateError` when there is none, or when the latest is outside the
    rate range (written before the range held, or behind the application): converting
    with it could overflow, so it is no usable rate until a new one is recorded."""
    if base == quote:
        return Decimal(1), None, None
    row = db.session.execute(
        sa.select(
            ExchangeRate.base,
            ExchangeRate.rate,
            ExchangeRate.uid,
            ExchangeRate._source,
            ExchangeRate.set_by_id,
        )
        .where(
            ExchangeRate.fund_id == fund_id,
            ExchangeRate.on_date <= on,
            sa.or_(
                sa.and_(ExchangeRate.base == base, ExchangeRate.quote == quote),
                sa.and_(ExchangeRate.base == quote, ExchangeRate.quote == base),
            ),
        )
        .order_by(ExchangeRate.on_date.desc(), ExchangeRate.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise MissingRateError(
            _l("No exchange rate from %(base)s to %(quote)s is recorded.", base=base, quote=quote)
        )
    if not usable_rate(row.rate):
        raise MissingRateError(
            _l(
                "No usable exchange rate from %(base)s to %(quote)s: the latest recorded is "
                "out of range. Record a new one.",
                base=base,
                quote=quote,
            ),
            out_of_range=True,
        )
    rate = Decimal(row.rate)
    if row.base != base:
        rate = (Decimal(1) / rate).quantize(RATE_PLACES)
    return rate, ExchangeRate.source.read(row._source, row.uid), row.set_by_id


def checked_rate(rate, error=PoolError):
    """``rate`` if it is in the rate range with at most eight places, else raise
    ``error`` saying what a rate may be."""
    try:
        return parse_rate(rate)
    except MoneyError as exc:
        raise error(str(exc)) from None


def record_rate(fund_id, actor, on_date, base, quote, rate, source):
    """Add a rate to the table: ``rate`` units of ``quote`` per unit of ``base``."""
    check_actor(actor, fund_id, RATE_KEEPERS)
    if base == quote:
        raise PoolError(_l("A rate needs two different currencies."))
    rate = checked_rate(rate)
    exists = db.session.execute(
        sa.select(ExchangeRate.id).where(
            ExchangeRate.fund_id == fund_id,
            ExchangeRate.on_date == on_date,
            ExchangeRate.base == base,
            ExchangeRate.quote == quote,
        )
    ).first()
    if exists:
        raise PoolError(_l("A rate for this pair and date is already recorded."))
    entry = ExchangeRate(
        fund_id=fund_id,
        on_date=on_date,
        base=base,
        quote=quote,
        rate=rate,
        source=source.strip(),
        set_by_id=actor.id,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "rate.recorded", entry, actor=actor, object_id=str(entry.id), pair=f"{base}/{quote}"
    )
    return entry


def record_contribution(
    pool, actor, received_amount, received_currency, received_on, reference=None, rate=None
):
    """Money received into ``pool``. In another currency it converts at ``rate`` (pool
    units per unit received), by default the table's rate of that day."""
    check_actor(actor, pool.fund_id, POOL_KEEPERS)
    if received_amount <= 0:
        raise PoolError(_l("The amount received must be above zero."))
    if received_currency == pool.currency:
        rate = Decimal(1)
    elif rate is None:
        rate = rate_entry(pool.fund_id, received_currency, pool.currency, received_on)[0]
    else:
        rate = checked_rate(rate)
    try:
        amount = convert(received_amount, rate)
    except ConversionError as exc:
        raise PoolError(str(exc)) from None
    if amount <= 0:
        raise PoolError(
            _l(
                "%(amount)s %(currency)s is less than one cent in %(pool_currency)s.",
                amount=received_amount,
                currency=received_currency,
                pool_currency=pool.currency,
            )
        )
    contribution = Contribution(
        pool_id=pool.id,
        amount=amount,
        received_amount=received_amount,
        received_currency=received_currency,
        fx_rate=rate,
        received_on=received_on,
        reference=(reference or "").strip() or None,
        recorded_by_id=actor.id,
    )
    db.session.add(contribution)
    db.session.flush()
    audit.record(
        "contribution.recorded",
        contribution,
        actor=actor,
        pool=pool.id,
        amount=contribution.amount,
        currency=pool.currency,
    )
    return contribution
