"""Deciding and committing money: approvals (four eyes above a threshold), pool eligibility,
and allocations that can never take a pool below zero, whatever runs at the same time.

On PostgreSQL an allocation locks the pool's row (SELECT ... FOR UPDATE) and re-reads the
balance after the lock; on SQLite every transaction that may write holds the write lock
from its first statement (BEGIN IMMEDIATE: a form's, and ``perform``'s in a request that
otherwise only reads), so the same re-read is just as safe.
"""

from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..cases.services import amount_asked
from ..core import limits
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import ConversionError, convert, money_words, quantize
from ..core.sql import lock_row
from ..ledger.balances import pool_commitments
from ..ledger.models import Allocation
from ..pools import services as pools_services
from ..pools.eligibility import pool_mismatches
from ..pools.models import Pool
from ..pools.services import rate_entry


class DecisionError(Exception):
    """A decision the rules do not allow; the message says which rule."""


class IneligiblePoolError(DecisionError):
    """The pool's restrictions do not fit the case; ``reasons`` lists each mismatch."""

    def __init__(self, reasons):
        self.reasons = [str(reason) for reason in reasons]
        super().__init__("; ".join(self.reasons))


class InsufficientFundsError(DecisionError):
    """The pool has less available than the allocation asks."""


class RepeatedPoolError(DecisionError):
    """One decision names the same pool on two lines."""


class MissingRateError(DecisionError):
    """No usable rate is recorded between two currencies."""


def _repeated(pool):
    return RepeatedPoolError(
        _l(
            "The pool %(pool)s is chosen twice: a grant draws on a pool once, so put its "
            "whole share on one line.",
            pool=pool.name,
        )
    )


def allocate(grant, application, pool_id, grant_amount, actor, rate=Decimal(1)):
    """Commit ``grant_amount`` (grant currency) from a pool; ``rate`` is pool units per grant
    unit. The balance is re-read under the pool's lock, so no pool goes below zero; a grant
    draws on a pool once, so the pool's cap per grant holds for the grant as a whole."""
    pool = lock_row(Pool, pool_id)
    if pool is None or pool.fund_id != application.fund_id:
        raise IneligiblePoolError([_l("the pool is not open to this fund's grants")])
    earlier = db.session.execute(
        sa.select(Allocation.id).where(
            Allocation.grant_id == grant.id, Allocation.pool_id == pool.id
        )
    ).first()
    if earlier is not None:
        raise _repeated(pool)
    if pool.currency == grant.currency:
        rate = Decimal(1)
    try:
        pool_amount = convert(grant_amount, rate)
    except ConversionError as exc:
        raise MissingRateError(_unusable(grant.currency, pool.currency)) from exc
    if pool_amount <= 0 or grant_amount <= 0:
        raise DecisionError(
            _l(
                "%(amount)s is too small to draw from %(pool)s.",
                amount=money_words(grant_amount, application.currency),
                pool=pool.name,
            )
        )
    reasons = pool_mismatches(pool, application, pool_amount)
    if reasons:
        raise IneligiblePoolError(_named(pool, reasons))
    if pool_amount > pool.available:
        raise InsufficientFundsError(
            _l(
                "The pool %(pool)s has less than %(amount)s available.",
                pool=pool.name,
                amount=pool_amount,
            )
        )
    allocation = Allocation(
        grant_id=grant.id,
        pool_id=pool.id,
        amount=pool_amount,
        grant_amount=grant_amount,
        fx_rate=rate,
        created_by_id=actor.id,
    )
    db.session.add(allocation)
    db.session.flush()
    audit.record(
        "allocation.created",
        allocation,
        actor=actor,
        fund=grant.fund_id,
        grant=grant.uid,
        pool=pool.id,
        amount=pool_amount,
        currency=pool.currency,
    )
    return allocation


def _named(pool, reasons):
    """Each reason a pool does not fit, prefixed with the pool's name."""
    return [_l("%(pool)s: %(reason)s", pool=pool.name, reason=reason) for reason in reasons]


def _fund_pools(application, pool_ids):
    """The pools named by ``pool_ids``, refused unless each is a pool of the case's fund."""
    wanted = {pid for pid in pool_ids if isinstance(pid, int) and 0 < pid < 2**31}
    pools = (
        {p.id: p for p in db.session.execute(sa.select(Pool).where(Pool.id.in_(wanted))).scalars()}
        if wanted
        else {}
    )
    for pid in pool_ids:
        pool = pools.get(pid) if pid in wanted else None
        if pool is None or pool.fund_id != application.fund_id:
            raise IneligiblePoolError([_l("the pool is not open to this fund's grants")])
    return pools


def refuse_repeated_pools(application, pool_ids):
    """Refuse a decision naming one pool on two lines: a pool's cap per grant and its
    restrictions are read per grant, so its whole share goes on one line. Returns the
    pools by id."""
    pools = _fund_pools(application, pool_ids)
    seen = set()
    for pid in pool_ids:
        if pid in seen:
            raise _repeated(pools[pid])
        seen.add(pid)
    return pools


def check_draws(application, amount, allocations, on=None):
    """Every rule on a decision's split of pools, before anything is written: each pool of
    the case's fund and named once, each part above zero, the parts adding up to
    ``amount``, and each pool fitting the case for all the grant draws from it. Returns
    the pools by id."""
    pools = refuse_repeated_pools(application, [a[0] for a in allocations])
    for pool_id, grant_amount, _rate in allocations:
        if grant_amount <= 0:
            raise DecisionError(
                _l(
                    "%(amount)s is too small to draw from %(pool)s.",
                    amount=money_words(grant_amount, application.currency),
                    pool=pools[pool_id].name,
                )
            )
    if not allocations:
        raise DecisionError(_l("Choose the pool or pools the grant draws on, and how much."))
    drawn = sum((a[1] for a in allocations), start=Decimal(0))
    if drawn != amount:
        raise DecisionError(
            _l(
                "The amounts drawn from the pools must add up to the approved amount: they"
                " add up to %(drawn)s, not %(amount)s.",
                drawn=money_words(drawn, application.currency),
                amount=money_words(amount, application.currency),
            )
        )
    for pool_id, grant_amount, rate in allocations:
        pool = pools[pool_id]
        pool_amount = _pool_amount(pool, application, grant_amount, rate)
        reasons = pool_mismatches(pool, application, pool_amount, on)
        if reasons:
            raise IneligiblePoolError(_named(pool, reasons))
    return pools


def _pool_amount(pool, application, grant_amount, rate):
    """``grant_amount`` in the pool's currency at ``rate``; refused in words when the rate
    gives nothing usable."""
    if pool.currency == application.currency:
        return grant_amount
    try:
        pool_amount = convert(grant_amount, rate)
    except ConversionError as exc:
        raise MissingRateError(_unusable(application.currency, pool.currency)) from exc
    if pool_amount <= 0:
        raise DecisionError(
            _l(
                "%(amount)s is too small to draw from %(pool)s.",
                amount=money_words(grant_amount, application.currency),
                pool=pool.name,
            )
        )
    return pool_amount


def _unusable(base, quote):
    return _l(
        "The recorded rate from %(base)s to %(quote)s gives no usable amount: record a "
        "sound rate on Rates.",
        base=base,
        quote=quote,
    )


def in_reporting_currency(fund_id, amount, currency, on=None):
    """``amount`` of ``currency`` in the fund's reporting currency, at the fund's recorded
    rate of ``on`` (today by default). Raises :class:`MissingRateError` when no usable
    rate is recorded."""
    reporting = limits.reporting_currency()
    if currency == reporting:
        return quantize(amount)
    rate = recorded_rate(fund_id, currency, reporting, on)
    try:
        return convert(amount, rate)
    except ConversionError as exc:
        raise MissingRateError(_unusable(currency, reporting)) from exc


def recorded_rate(fund_id, base, quote, on=None):
    """Units of ``quote`` per unit of ``base`` from the fund's rate table: the latest rate
    on or before ``on``, read either way round. Raises :class:`MissingRateError`."""
    try:
        return rate_entry(fund_id, base, quote, on or utcnow().date())[0]
    except pools_services.MissingRateError as exc:
        raise MissingRateError(str(exc)) from exc


def _over_cap(pool, application, asked, rate):
    """What ``asked`` (in the case's currency) is in ``pool``'s currency at ``rate``, when
    that passes the pool's cap per grant; else None."""
    if pool.cap_per_grant is None or asked is None:
        return None
    if pool.currency == application.currency:
        in_pool = asked
    elif rate is None:
        return None
    else:
        try:
            in_pool = convert(asked, rate)
        except ConversionError:
            return None
    return in_pool if in_pool > pool.cap_per_grant else None


def pool_options(application, grant_amount):
    """Every active pool of the case's fund with what it has available, its currency, the
    rate it would use, its cap per grant, and the reasons it cannot pay any part of the
    grant (empty if it can). A cap below ``grant_amount`` is no such reason: the pool can
    still pay up to its cap; ``over_cap`` then gives what the case asks in the pool's
    currency, where that passes the cap (None otherwise), for the page to say the pool
    fits for a part only."""
    pools = (
        db.session.execute(
            sa.select(Pool)
            .where(Pool.fund_id == application.fund_id, Pool.active.is_(True))
            .options(sa.orm.selectinload(Pool.restrictions))
            .order_by(Pool.name)
        )
        .scalars()
        .all()
    )
    figures = pool_commitments([p.id for p in pools]) if pools else {}
    asked = amount_asked(application)
    rates = {}  # pool currency -> (rate, why there is none): one lookup per currency
    options = []
    for pool in pools:
        received, committed, costs = figures[pool.id]
        if pool.currency not in rates:
            try:
                rate = rate_entry(
                    application.fund_id, application.currency, pool.currency, utcnow().date()
                )[0]
                rates[pool.currency] = rate, None
            except pools_services.MissingRateError as exc:
                words = (
                    _l(
                        "the latest exchange rate from %(base)s to %(quote)s is out of range:"
                        " no usable rate",
                        base=application.currency,
                        quote=pool.currency,
                    )
                    if exc.out_of_range
                    else _l(
                        "no exchange rate from %(base)s to %(quote)s is recorded",
                        base=application.currency,
                        quote=pool.currency,
                    )
                )
                rates[pool.currency] = None, words
        rate, missing = rates[pool.currency]
        reasons = [str(missing)] if missing else []
        reasons += [str(r) for r in pool_mismatches(pool, application, None)]
        options.append(
            {
                "pool": pool,
                "available": received - committed - costs,
                "rate": rate,
                "cap": pool.cap_per_grant,
                "over_cap": _over_cap(pool, application, asked, rate),
                "reasons": reasons,
            }
        )
    return options
