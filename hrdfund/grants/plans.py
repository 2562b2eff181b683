"""Payment plans on an approved grant, and closing a grant under budget.

A plan splits the grant's amount into instalments: one payment, tranches a number of days
apart, or a monthly stipend with a renewal-review date before it ends.
"""

from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role, User
from ..cases.models import ApplicationStatus as S
from ..cases.services import change_status
from ..core import times
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import CENT, money_words, smallest_unit
from ..core.sql import lock_row
from ..core.times import FIRST_DAY, TOO_EARLY, months_after
from ..ledger.balances import allocation_balances
from ..ledger.models import Allocation, Release
from ..pools.models import Pool
from . import coverage
from .models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind
from .services import DecisionError

#: How far ahead a plan's first payment may fall, made or moved: further is a slip of the
#: keyboard (2999 for 2029), whose money would wait committed for no real date.
FURTHEST_DAYS = 730
#: Longest stipend and largest number of tranches a plan may hold.
MAX_MONTHS = 36
MAX_TRANCHES = 12


class PlanError(DecisionError):
    """A plan or closure the rules refuse; the message says which rule."""


def split_amount(total, count, unit=CENT):
    """``count`` equal parts of ``total`` in ``unit`` (a cent, or one whole unit of a
    currency without cents), the last one taking the remainder. Parts are rounded to the
    nearest unit unless that would leave the last one nothing (0.06 in four: 0.02 three
    times is all of it); then they are rounded down, and the last, at least as large as
    the others, takes what is left. A total that is not whole units (an amount kept before
    its currency's units were weighed) is split in cents."""
    unit = _splitting_unit(total, unit)
    part = (total / count).quantize(unit, rounding=ROUND_HALF_UP)
    if total - part * (count - 1) < unit:
        part = (total / count).quantize(unit, rounding=ROUND_DOWN)
    return [part] * (count - 1) + [total - part * (count - 1)]


def _splitting_unit(total, unit):
    """The unit a total is split in: ``unit``, or a cent when the total has cents."""
    return unit if total == total.quantize(unit) else CENT


def due_dates(kind, starts_on, count, interval_days=30):
    """When each of a plan's ``count`` instalments falls due: monthly from ``starts_on``
    for a stipend, else ``interval_days`` apart."""
    if kind == PlanKind.STIPEND:
        return [months_after(starts_on, n) for n in range(count)]
    return [starts_on + timedelta(days=interval_days * n) for n in range(count)]


def period_month(kind, due_on):
    """The month a stipend's instalment pays for (None for other plans)."""
    return due_on.replace(day=1) if kind == PlanKind.STIPEND else None


def renewal_review_date(starts_on, ends_on):
    """When a stipend is reviewed for renewal unless its manager says otherwise: a month
    before its last instalment, and not before its first."""
    return max(starts_on, ends_on - timedelta(days=30))


def _check_plannable(grant, actor):
    """A manager of the grant's fund plans an active grant, once."""
    if actor.role != Role.MANAGER or actor.fund_id != grant.fund_id:
        raise PlanError(_l("Only a manager of the fund plans payments."))
    if grant.status != GrantStatus.ACTIVE:
        raise PlanError(_l("This grant is closed."))
    existing = db.session.execute(
        sa.select(PaymentPlan.id).where(PaymentPlan.grant_id == grant.id)
    ).first()
    if existing:
        raise PlanError(_l("This grant already has a payment plan."))


def check_months_free(application_id, kind, dues):
    """For a stipend of a stay shared with another fund by referral, refuse due dates in
    months that fund's plan pays: each fund pays its own months, as agreed."""
    if kind != PlanKind.STIPEND:
        return
    theirs = coverage.covered_elsewhere([application_id]).get(application_id, {})
    taken = sorted(set(theirs) & {period_month(kind, due) for due in dues})
    if taken:
        raise PlanError(
            _l(
                "%(fund)s's plan pays %(month)s of this stay: choose months it does not pay.",
                fund=theirs[taken[0]],
                month=times.month(taken[0]),
            )
        )


def _check_count(grant, kind, count, interval_days):
    """As many payments as the kind allows, each at least a cent (a whole unit of a
    currency without cents), tranches a day apart."""
    limit = MAX_MONTHS if kind == PlanKind.STIPEND else MAX_TRANCHES
    if not 1 <= count <= limit:
        raise PlanError(_l("Choose between 1 and %(limit)d payments.", limit=limit))
    if grant.amount < count * _splitting_unit(grant.amount, smallest_unit(grant.currency)):
        raise PlanError(
            _l(
                "%(amount)s cannot be split into %(count)d payments.",
                amount=money_words(grant.amount, grant.currency),
                count=count,
            )
        )
    if kind == PlanKind.TRANCHES and count > 1 and interval_days < 1:
        raise PlanError(_l("Tranches must be at least a day apart."))


def create_plan(
    grant,
    actor,
    kind,
    starts_on,
    count=1,
    interval_days=30,
    renewal_review_on=None,
    hold_for_report=False,
):
    """Plan how ``grant`` is paid: ``count`` tranches ``interval_days`` apart, or a stipend
    of ``count`` months starting ``starts_on``, or one payment on ``starts_on``."""
    _check_plannable(grant, actor)
    if starts_on < FIRST_DAY:
        raise PlanError(TOO_EARLY)
    if starts_on > utcnow().date() + timedelta(days=FURTHEST_DAYS):
        raise PlanError(_l("Choose a date within two years."))
    kind = PlanKind(kind)
    if kind == PlanKind.ONE_OFF:
        count = 1
    _check_count(grant, kind, count, interval_days)
    dues = due_dates(kind, starts_on, count, interval_days)
    check_months_free(grant.application_id, kind, dues)
    ends_on = dues[-1]
    if kind == PlanKind.STIPEND:
        renewal_review_on = renewal_review_on or renewal_review_date(starts_on, ends_on)
        if not starts_on <= renewal_review_on <= ends_on:
            raise PlanError(_l("The renewal review falls between the first and last month."))
    else:
        renewal_review_on = None
    plan = PaymentPlan(
        grant_id=grant.id,
        kind=kind,
        starts_on=starts_on,
        ends_on=ends_on,
        renewal_review_on=renewal_review_on,
        hold_for_report=bool(hold_for_report) and kind == PlanKind.TRANCHES and count > 1,
    )
    db.session.add(plan)
    db.session.flush()
    parts = split_amount(grant.amount, count, smallest_unit(grant.currency))
    for seq, (due, amount) in enumerate(zip(dues, parts, strict=True), 1):
        db.session.add(
            Instalment(
                plan_id=plan.id,
                seq=seq,
                due_on=due,
                amount=amount,
                currency=grant.currency,
                period_month=period_month(kind, due),
            )
        )
    db.session.flush()
    audit.record("plan.created", grant, actor=actor, kind=kind.value, instalments=count)
    return plan


def closing_reason(grant):
    """Why a manager closed ``grant`` early, as the release of what it had not paid
    keeps it; None when it is open, or closed with nothing left to give back."""
    if grant.status != GrantStatus.CLOSED:
        return None
    release = db.session.execute(
        sa.select(Release)
        .join(Allocation, Allocation.id == Release.allocation_id)
        .join(User, User.id == Release.created_by_id)
        # A closing's releases are a manager's; finance's are a reversal's after it.
        .where(Allocation.grant_id == grant.id, User.role == Role.MANAGER)
        .order_by(Release.id)
        .limit(1)
    ).scalar_one_or_none()
    return release.reason if release is not None else None


def close_grant(grant, actor, reason):
    """Close ``grant``: what its allocations still commit beyond what was paid goes back
    to the pools as release rows; no payment follows."""
    if actor.role != Role.MANAGER or actor.fund_id != grant.fund_id:
        raise PlanError(_l("Only a manager of the fund closes a grant."))
    lock_row(Grant, grant.id)
    if grant.status != GrantStatus.ACTIVE:
        raise PlanError(_l("This grant is already closed."))
    reason = (reason or "").strip()
    if not reason:
        raise PlanError(_l("Say why the grant closes."))
    releases = []
    for allocation, released, paid in allocation_balances(grant.id):
        lock_row(Pool, allocation.pool_id)
        rest = allocation.amount - released - paid
        if rest > 0:
            release = Release(
                allocation_id=allocation.id, amount=rest, reason=reason, created_by_id=actor.id
            )
            db.session.add(release)
            releases.append(release)
    grant.status = GrantStatus.CLOSED
    grant.closed_at = utcnow()
    db.session.flush()
    application = grant.application
    if application.status in (S.APPROVED, S.PAYING):
        change_status(application, S.COMPLETED, actor=actor)
    audit.record(
        "grant.closed",
        grant,
        actor=actor,
        released=sum((r.amount for r in releases), start=Decimal(0)),
    )
    return releases
