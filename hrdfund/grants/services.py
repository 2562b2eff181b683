"""Deciding and committing money: approvals (four eyes above a threshold), pool eligibility,
and allocations that can never take a pool below zero, whatever runs at the same time.

On PostgreSQL an allocation locks the pool's row (SELECT ... FOR UPDATE) and re-reads the
balance after the lock; on SQLite every transaction already holds the write lock from its
first statement (BEGIN IMMEDIATE), so the same re-read is just as safe.
"""

from datetime import datetime, time
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit, geo
from ..applications.access import can_see, has_conflict
from ..applications.models import ApplicationStatus as S
from ..applications.review_models import Decision, DecisionOutcome, Review
from ..applications.review_services import decision_round
from ..applications.services import change_status
from ..auth.models import Role
from ..columns import utcnow
from ..extensions import db, lock_row
from ..money import convert, quantize
from ..pools import services as pools_services
from ..pools.models import Contribution, Pool
from ..pools.services import POOL_KEEPERS, check_actor, rate_entry
from .models import Allocation, Grant, Release


class DecisionError(Exception):
    """A decision the rules do not allow; the message says which rule."""


class SelfApprovalError(DecisionError):
    """The person who recommended a case may not approve it."""


class SecondApproverError(DecisionError):
    """Above the threshold the second approval must come from a different manager."""


class ConflictOfInterestError(DecisionError):
    """The manager declared a conflict of interest on this case."""


class IneligiblePoolError(DecisionError):
    """The pool's restrictions do not fit the case; ``reasons`` lists each mismatch."""

    def __init__(self, reasons):
        self.reasons = [str(reason) for reason in reasons]
        super().__init__("; ".join(self.reasons))


class InsufficientFundsError(DecisionError):
    """The pool has less available than the allocation asks."""


def four_eyes_threshold():
    """Approvals at or above this amount need a second manager."""
    return Decimal(str(current_app.config["FOUR_EYES_THRESHOLD"]))


def signed_amount(model):
    """A ledger row's amount, negative for a reversal row."""
    return sa.case((model.reversal_of_id.is_(None), model.amount), else_=-model.amount)


def summed(expr):
    """SUM that is 0, not NULL, over no rows."""
    return sa.func.coalesce(sa.func.sum(expr), 0)


def pool_commitments(pool_ids, until=None):
    """Map each pool id to (received, committed, costs): contributions net of their
    reversals; allocations net of releases; payment fees and exchange differences net of
    their reversals. With ``until`` (a date), only rows dated before it. Four grouped
    queries, whatever the number of rows."""
    payments = db.metadata.tables["disbursements"]  # a higher feature, read by name

    def grouped(query, key, *dated):
        query = query.where(key.in_(pool_ids))
        if until is not None:
            query = query.where(*(before(column, until) for column in dated))
        query = query.group_by(key)
        return {pid: quantize(total) for pid, total in db.session.execute(query)}

    received = grouped(
        sa.select(Contribution.pool_id, summed(signed_amount(Contribution))),
        Contribution.pool_id,
        Contribution.received_on,
    )
    allocated = grouped(
        sa.select(Allocation.pool_id, summed(Allocation.amount)),
        Allocation.pool_id,
        Allocation.created_at,
    )
    released = grouped(
        sa.select(Allocation.pool_id, summed(Release.amount)).join(
            Release, Release.allocation_id == Allocation.id
        ),
        Allocation.pool_id,
        Release.created_at,
    )
    cost = payments.c.fee_amount + payments.c.exchange_difference
    costs = grouped(
        sa.select(
            payments.c.pool_id,
            summed(sa.case((payments.c.reversal_of_id.is_(None), cost), else_=-cost)),
        ),
        payments.c.pool_id,
        payments.c.paid_on,
    )
    zero = Decimal("0.00")
    return {
        pid: (
            received.get(pid, zero),
            allocated.get(pid, zero) - released.get(pid, zero),
            costs.get(pid, zero),
        )
        for pid in pool_ids
    }


def before(column, until):
    """SQL: the row's date (or time) ``column`` falls before the day ``until``."""
    if isinstance(column.type, sa.DateTime):
        return column < datetime.combine(until, time.min)
    return column < until


def pool_available(pool_id):
    """What the pool can still commit: received, less commitments, fees and exchange
    differences."""
    received, committed, costs = pool_commitments([pool_id])[pool_id]
    return received - committed - costs


def pool_mismatches(pool, application, pool_amount, on=None):
    """Every way ``pool`` does not fit ``application`` for ``pool_amount``; empty if it fits."""
    on = on or utcnow().date()
    reasons = []
    if pool.fund_id != application.fund_id or not pool.active:
        reasons.append(_l("the pool is not open to this fund's grants"))
    rules = {}
    for restriction in pool.restrictions:
        rules.setdefault(str(restriction.kind), set()).add(restriction.value)
    if rules.get("category") and application.category.value not in rules["category"]:
        reasons.append(_l("the pool does not fund this kind of support"))
    if rules.get("country") and application.country not in rules["country"]:
        reasons.append(_l("the pool does not fund this country"))
    region = application.region or geo.region_of(application.country)
    if rules.get("region") and region not in rules["region"]:
        reasons.append(_l("the pool does not fund this region"))
    if pool.cap_per_grant is not None and pool_amount > pool.cap_per_grant:
        reasons.append(_l("the amount is above the pool's cap per grant"))
    if (pool.starts_on and on < pool.starts_on) or (pool.ends_on and on > pool.ends_on):
        reasons.append(_l("the pool's date window is closed"))
    return reasons


def allocate(grant, application, pool_id, grant_amount, actor, rate=Decimal(1)):
    """Commit ``grant_amount`` (grant currency) from a pool; ``rate`` is pool units per grant
    unit. The balance is re-read under the pool's lock, so no pool goes below zero."""
    pool = lock_row(Pool, pool_id)
    if pool.currency == grant.currency:
        rate = Decimal(1)
    pool_amount = convert(grant_amount, rate)
    if pool_amount <= 0 or quantize(grant_amount) <= 0:
        raise DecisionError(
            _l(
                "%(amount)s is too small to draw from %(pool)s.",
                amount=grant_amount,
                pool=pool.name,
            )
        )
    reasons = pool_mismatches(pool, application, pool_amount)
    if reasons:
        raise IneligiblePoolError(reasons)
    if pool_amount > pool_available(pool.id):
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
        grant_amount=quantize(grant_amount),
        fx_rate=rate,
        created_by_id=actor.id,
    )
    db.session.add(allocation)
    db.session.flush()
    audit.record(
        "allocation.created",
        allocation,
        actor=actor,
        grant=grant.uid,
        pool=pool.id,
        amount=pool_amount,
        currency=pool.currency,
    )
    return allocation


def _recommender_id(application):
    return (
        db.session.execute(
            sa.select(Review.reviewer_id)
            .where(Review.application_id == application.id)
            .order_by(Review.id.desc())
        )
        .scalars()
        .first()
    )


def _check_manager(application, manager):
    if manager.role != Role.MANAGER:
        raise DecisionError(_l("Only a manager decides."))
    if has_conflict(application, manager):
        raise ConflictOfInterestError(_l("You declared a conflict of interest on this case."))
    if not can_see(application, manager):
        raise DecisionError(_l("This case belongs to another fund."))
    if _recommender_id(application) == manager.id:
        raise SelfApprovalError(_l("The person who recommended a case may not approve it."))


def approve_application(application, manager, amount, allocations):
    """Approve ``amount`` (in the application's currency) drawn from ``allocations``, a list
    of (pool id, amount in grant currency, rate).

    At or above the four-eyes threshold the first approval only records the decision and
    waits; the second, by a different manager, commits the money. Returns the grant once
    money is committed, else None.
    """
    _check_manager(application, manager)
    amount = quantize(amount)
    if application.status == S.RECOMMENDED:
        _record_approval(application, manager, amount)
        if amount >= four_eyes_threshold():
            change_status(application, S.AWAITING_SECOND_APPROVAL, actor=manager)
            return None
    elif application.status == S.AWAITING_SECOND_APPROVAL:
        first = (
            db.session.execute(
                sa.select(Decision)
                .where(
                    Decision.application_id == application.id,
                    Decision.outcome == DecisionOutcome.APPROVE,
                )
                .order_by(Decision.id.desc())
            )
            .scalars()
            .first()
        )
        if first.manager_id == manager.id:
            raise SecondApproverError(_l("A second, different manager must confirm this approval."))
        if amount != first.amount:
            raise DecisionError(_l("The second approval confirms the amount of the first."))
        _record_approval(application, manager, amount)
    else:
        raise DecisionError(_l("This case is not waiting for a decision."))
    if sum((quantize(a[1]) for a in allocations), start=Decimal(0)) != amount:
        raise DecisionError(
            _l("The amounts drawn from the pools must add up to the approved amount.")
        )
    grant = Grant(
        fund_id=application.fund_id,
        application_id=application.id,
        amount=amount,
        currency=application.currency,
        approved_at=utcnow(),
    )
    db.session.add(grant)
    db.session.flush()
    for pool_id, grant_amount, rate in allocations:
        allocate(grant, application, pool_id, grant_amount, manager, rate)
    change_status(application, S.APPROVED, actor=manager)
    audit.record(
        "grant.approved",
        grant,
        actor=manager,
        case=application.uid,
        amount=amount,
        currency=grant.currency,
    )
    return grant


def _record_approval(application, manager, amount):
    db.session.add(
        Decision(
            application_id=application.id,
            manager_id=manager.id,
            outcome=DecisionOutcome.APPROVE,
            amount=amount,
            currency=application.currency,
            round=decision_round(application),
        )
    )
    db.session.flush()


class MissingRateError(DecisionError):
    """No rate is recorded between the grant's and the pool's currencies."""


def recorded_rate(fund_id, base, quote, on=None):
    """Units of ``quote`` per unit of ``base`` from the fund's rate table: the latest rate
    on or before ``on``, read either way round. Raises :class:`MissingRateError`."""
    try:
        return rate_entry(fund_id, base, quote, on or utcnow().date())[0]
    except pools_services.MissingRateError as exc:
        raise MissingRateError(str(exc)) from exc


def pool_options(application, grant_amount):
    """Every active pool of the case's fund with what it has available, its currency, the
    rate it would use and the reasons it does not fit ``grant_amount`` (empty if it fits)."""
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
    rates = {}  # pool currency -> (rate, why there is none): one lookup per currency
    options = []
    for pool in pools:
        received, committed, costs = figures[pool.id]
        if pool.currency not in rates:
            try:
                rate = recorded_rate(application.fund_id, application.currency, pool.currency)
                rates[pool.currency] = rate, None
            except MissingRateError as exc:
                rates[pool.currency] = None, str(exc)
        rate, missing = rates[pool.currency]
        if missing:
            reasons = [missing]
        else:
            reasons = [
                str(r) for r in pool_mismatches(pool, application, convert(grant_amount or 0, rate))
            ]
        options.append(
            {
                "pool": pool,
                "available": received - committed - costs,
                "rate": rate,
                "reasons": reasons,
            }
        )
    return options


def approve_with_recorded_rates(application, manager, amount, draws):
    """:func:`approve_application` with ``draws`` as (pool id, amount in grant currency);
    each pool in another currency converts at the fund's recorded rate of the day."""
    pools = {
        p.id: p
        for p in db.session.execute(
            sa.select(Pool).where(Pool.id.in_([d[0] for d in draws]))
        ).scalars()
    }
    allocations = []
    for pool_id, grant_amount in draws:
        pool = pools.get(pool_id)
        if pool is None or pool.fund_id != application.fund_id:
            raise IneligiblePoolError([_l("the pool is not open to this fund's grants")])
        rate = recorded_rate(application.fund_id, application.currency, pool.currency)
        allocations.append((pool_id, grant_amount, rate))
    return approve_application(application, manager, amount, allocations)


def reverse_contribution(contribution, actor, reason):
    """Take back a contribution booked by mistake: once, and only while the pool has not
    committed that money (checked under the pool's lock). It lives here, beside the
    commitments, because pools know nothing of grants."""
    pool = lock_row(Pool, contribution.pool_id)
    check_actor(actor, pool.fund_id, POOL_KEEPERS)
    if contribution.reversal_of_id is not None:
        raise DecisionError(_l("A correction cannot itself be reversed."))
    done = db.session.execute(
        sa.select(Contribution.id).where(Contribution.reversal_of_id == contribution.id)
    ).first()
    if done:
        raise DecisionError(_l("This contribution was already reversed."))
    if not (reason or "").strip():
        raise DecisionError(_l("Say why the contribution is reversed."))
    if pool_available(pool.id) < contribution.amount:
        raise DecisionError(
            _l("The pool has committed this money already; it cannot be taken back.")
        )
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
    audit.record("contribution.reversed", reversal, actor=actor, reverses=contribution.uid)
    return reversal
