"""Donors, pools, contributions and the fund's exchange-rate table.

Each service checks its rules, mutates, flushes and writes the audit entry; the caller
commits. Money is received by appending contribution rows; a correction is a reversal row.
"""

from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core import limits
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import (
    RATE_PLACES,
    ConversionError,
    MoneyError,
    check_units,
    convert,
    in_units,
    money_words,
    parse_rate,
    smallest_unit,
    usable_rate,
)
from ..core.sql import lock_row
from ..core.times import FIRST_DAY, TOO_EARLY, latest_day
from ..ledger.models import Contribution
from .models import Donor, ExchangeRate, Pool, PoolRestriction, RestrictionKind

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
    if any(day < FIRST_DAY for day in (starts_on, ends_on) if day):
        raise PoolError(TOO_EARLY)
    _check_units(cap_per_grant, currency)
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


def _check_units(amount, currency):
    """Refuse in words an amount in cents of a currency that has none."""
    try:
        check_units(amount, currency)
    except MoneyError as exc:
        raise PoolError(str(exc)) from exc


class TableRate(NamedTuple):
    """A rate read from the table, with the entry it comes from."""

    rate: Decimal
    source: str | None
    set_by_id: int | None
    #: The table entry, or None for a pair of one currency.
    entry: ExchangeRate | None

    def alone(self, user_id):
        """True when the entry is ``user_id``'s alone: they recorded it and nobody else
        confirmed it, so it is no reference for what they do."""
        return self.entry is not None and self.entry.alone(user_id)


def _pair(base, quote):
    return sa.or_(
        sa.and_(ExchangeRate.base == base, ExchangeRate.quote == quote),
        sa.and_(ExchangeRate.base == quote, ExchangeRate.quote == base),
    )


def table_rate(fund_id, base, quote, on):
    """The table's latest rate on or before ``on`` from ``base`` to ``quote`` (units of
    ``quote`` per unit of ``base``), read either way round, with its entry. An entry held
    for a second rate keeper does not count. Raises :class:`MissingRateError` when there
    is none, or when the latest is outside the rate range (written before the range held,
    or behind the application): converting with it could overflow, so it is no usable
    rate until a new one is recorded."""
    if base == quote:
        return TableRate(Decimal(1), None, None, None)
    entry = db.session.execute(
        sa.select(ExchangeRate)
        .where(
            ExchangeRate.fund_id == fund_id,
            ExchangeRate.on_date <= on,
            _pair(base, quote),
            ExchangeRate.counts(),
        )
        .order_by(ExchangeRate.on_date.desc(), ExchangeRate.id.desc())
        .limit(1)
    ).scalar()
    if entry is None:
        raise MissingRateError(
            _l("No exchange rate from %(base)s to %(quote)s is recorded.", base=base, quote=quote)
        )
    if not usable_rate(entry.rate):
        raise MissingRateError(
            _l(
                "No usable exchange rate from %(base)s to %(quote)s: the latest recorded is "
                "out of range. Record a new one.",
                base=base,
                quote=quote,
            ),
            out_of_range=True,
        )
    return TableRate(entry_rate(entry, base), entry.source, entry.set_by_id, entry)


def entry_rate(entry, base):
    """The rate of the table ``entry`` read from ``base`` (either of its currencies)."""
    rate = Decimal(entry.rate)
    if entry.base != base:
        rate = (Decimal(1) / rate).quantize(RATE_PLACES)
    return rate


def rate_entry(fund_id, base, quote, on):
    """:func:`table_rate` as (rate, source, set_by_id)."""
    return tuple(table_rate(fund_id, base, quote, on)[:3])


def checked_rate(rate, error=PoolError):
    """``rate`` if it is in the rate range with at most eight places, else raise
    ``error`` saying what a rate may be."""
    try:
        return parse_rate(rate)
    except MoneyError as exc:
        raise error(str(exc)) from None


def _anchor(fund_id, actor, on_date, base, quote):
    """The entry a new one by ``actor`` is measured against: the latest of the pair on or
    before ``on_date`` that counts and that someone other than ``actor`` stands behind
    (recorded it, or confirmed it). Measured against their own entries, one person could
    walk a rate anywhere in steps each within the tolerance."""
    return db.session.execute(
        sa.select(ExchangeRate)
        .where(
            ExchangeRate.fund_id == fund_id,
            ExchangeRate.on_date <= on_date,
            _pair(base, quote),
            ExchangeRate.counts(),
            sa.or_(
                ExchangeRate.set_by_id.is_(None),
                ExchangeRate.set_by_id != actor.id,
                ExchangeRate.confirmed_by_id.is_not(None),
            ),
        )
        .order_by(ExchangeRate.on_date.desc(), ExchangeRate.id.desc())
        .limit(1)
    ).scalar()


def moves_beyond_tolerance(rate, anchor, base):
    """True when ``rate`` (from ``base``) is further than the rate tolerance from the
    ``anchor`` entry, or there is no usable anchor."""
    if anchor is None or not usable_rate(anchor.rate):
        return True
    reference = entry_rate(anchor, base)
    return abs(rate - reference) > reference * limits.rate_tolerance()


def record_rate(fund_id, actor, on_date, base, quote, rate, source):
    """Add a rate to the table: ``rate`` units of ``quote`` per unit of ``base``.

    An entry further than the rate tolerance from the latest one someone else stands
    behind (or the first of its pair) is held: it counts nowhere until a second rate
    keeper confirms it (:func:`confirm_rate`)."""
    check_actor(actor, fund_id, RATE_KEEPERS)
    if base == quote:
        raise PoolError(_l("A rate needs two different currencies."))
    if on_date > latest_day():
        raise PoolError(_l("A rate cannot be recorded for a day still to come."))
    if on_date < FIRST_DAY:
        raise PoolError(TOO_EARLY)
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
    held = moves_beyond_tolerance(rate, _anchor(fund_id, actor, on_date, base, quote), base)
    entry = ExchangeRate(
        fund_id=fund_id,
        on_date=on_date,
        base=base,
        quote=quote,
        rate=rate,
        source=source.strip(),
        set_by_id=actor.id,
        needs_second=held,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "rate.recorded",
        entry,
        actor=actor,
        object_id=str(entry.id),
        pair=f"{base}/{quote}",
        rate=rate,
        held=held,
    )
    return entry


def _lock_entry(entry):
    """``entry`` re-read under its lock; refused when it left the table meanwhile."""
    try:
        return lock_row(ExchangeRate, entry.id)
    except sa.exc.NoResultFound:
        raise PoolError(_l("This rate was refused and is no longer in the table.")) from None


def _check_second_keeper(entry, actor):
    check_actor(actor, entry.fund_id, RATE_KEEPERS)
    if actor.id == entry.set_by_id:
        raise PoolError(_l("A second person confirms this rate: not the one who recorded it."))


def confirm_rate(entry, actor):
    """A second rate keeper stands behind ``entry``: a held entry counts from now on, and
    no entry they confirmed is anyone's alone."""
    _check_second_keeper(entry, actor)
    entry = _lock_entry(entry)
    if entry.confirmed_by_id is not None:
        raise PoolError(_l("This rate was already confirmed."))
    entry.confirmed_by_id = actor.id
    entry.confirmed_at = utcnow()
    db.session.flush()
    audit.record(
        "rate.confirmed",
        entry,
        actor=actor,
        object_id=str(entry.id),
        pair=f"{entry.base}/{entry.quote}",
        rate=entry.rate,
    )
    return entry


def refuse_rate(entry, actor):
    """Take a held entry out of the table (its author withdrawing it, or a second rate
    keeper refusing it). It never counted, so nothing was converted at it; the audit
    entry keeps what it said."""
    check_actor(actor, entry.fund_id, RATE_KEEPERS)
    entry = _lock_entry(entry)
    if not entry.needs_second or entry.confirmed_by_id is not None:
        raise PoolError(
            _l("Only a rate waiting for a second person can be refused: this one counts.")
        )
    audit.record(
        "rate.refused",
        entry,
        actor=actor,
        object_id=str(entry.id),
        pair=f"{entry.base}/{entry.quote}",
        on=entry.on_date.isoformat(),
        rate=entry.rate,
    )
    db.session.delete(entry)
    db.session.flush()


def record_contribution(
    pool, actor, received_amount, received_currency, received_on, reference=None, rate=None
):
    """Money received into ``pool``. In another currency it converts at ``rate`` (pool
    units per unit received), by default the table's rate of that day."""
    check_actor(actor, pool.fund_id, POOL_KEEPERS)
    if received_amount <= 0:
        raise PoolError(_l("The amount received must be above zero."))
    _check_units(received_amount, received_currency)
    if received_on > latest_day():
        raise PoolError(_l("The date received cannot be in the future."))
    if received_on < FIRST_DAY:
        raise PoolError(TOO_EARLY)
    if received_currency == pool.currency:
        rate = Decimal(1)
    elif rate is None:
        rate = rate_entry(pool.fund_id, received_currency, pool.currency, received_on)[0]
    else:
        rate = checked_rate(rate)
    try:
        # Credited in whole units of a pool's currency that has no cents, as a bank does.
        amount = in_units(convert(received_amount, rate), pool.currency)
    except ConversionError as exc:
        raise PoolError(str(exc)) from None
    if amount <= 0:
        least = smallest_unit(pool.currency)
        raise PoolError(
            _l(
                "%(amount)s %(currency)s is less than %(least)s, the least a pool in "
                "%(pool_currency)s holds.",
                amount=received_amount,
                currency=received_currency,
                least=money_words(least, pool.currency),
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
        fund=pool.fund_id,
        pool=pool.id,
        amount=contribution.amount,
        currency=pool.currency,
    )
    return contribution


def reverse_contribution(contribution, actor, reason):
    """Take back a contribution booked by mistake: once, and only while the pool has not
    committed that money (:attr:`Pool.available`, read under the pool's lock)."""
    pool = lock_row(Pool, contribution.pool_id)
    check_actor(actor, pool.fund_id, POOL_KEEPERS)
    if contribution.reversal_of_id is not None:
        raise PoolError(_l("A correction cannot itself be reversed."))
    done = db.session.execute(
        sa.select(Contribution.id).where(Contribution.reversal_of_id == contribution.id)
    ).first()
    if done:
        raise PoolError(_l("This contribution was already reversed."))
    if not (reason or "").strip():
        raise PoolError(_l("Say why the contribution is reversed."))
    if pool.available < contribution.amount:
        raise PoolError(_l("The pool has committed this money already; it cannot be taken back."))
    reversal = Contribution(
        pool_id=pool.id,
        amount=contribution.amount,
        received_amount=contribution.received_amount,
        received_currency=contribution.received_currency,
        fx_rate=contribution.fx_rate,
        received_on=contribution.received_on,
        reference=contribution.reference,
        reversal_of_id=contribution.id,
        reason=reason.strip(),
        recorded_by_id=actor.id,
    )
    db.session.add(reversal)
    db.session.flush()
    audit.record(
        "contribution.reversed",
        reversal,
        actor=actor,
        fund=pool.fund_id,
        reverses=contribution.uid,
    )
    return reversal
