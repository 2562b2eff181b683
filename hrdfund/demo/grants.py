"""Grants: the pools a grant draws on, its allocations, payment plan and instalments, and
closing it under budget."""

from datetime import timedelta
from decimal import Decimal

from .. import audit
from ..cases.models import ApplicationStatus as S
from ..core.money import convert, quantize, smallest_unit
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind
from ..grants.plans import due_dates, months_after, period_month, renewal_review_date, split_amount
from ..ledger.models import Allocation, Release
from ..pools.eligibility import pool_mismatches
from . import decisions, payments
from .answers import CATEGORIES

#: Below this (in US dollars) a grant is paid at once, whatever its category.
TRANCHE_MINIMUM = 2000


class GrantState:
    """What paying one grant needs to know."""

    __slots__ = (
        "id",
        "row",
        "category",
        "allocations",
        "owner",
        "approvals",
        "paid_currency",
        "payee",
        "channel",
    )


def pool_fits(case, pool, on):
    """The pool's restrictions and date window allow ``case`` on ``on``, by the rule an
    approval is checked against (its cap aside)."""
    return not pool_mismatches(pool, case, None, on)


def pool_shares(world, case, amount, currency, on):
    """(pool, share in grant currency, rate, pool amount) for each pool drawn on."""
    rng = world.rng
    fits = [p for p in world.pools if pool_fits(case, p, on)]
    same = [p for p in fits if p.currency == currency]
    # Mostly a pool in the grant's currency; now and then one in another, converted.
    candidates = same if same and rng.random() < 0.8 else fits
    half = quantize(amount / 2)
    if len(candidates) > 1 and rng.random() < 0.15:
        pair = rng.sample(candidates, 2)
        shares = [
            pool_share(world, case, pair[0], half, currency, on),
            pool_share(world, case, pair[1], amount - half, currency, on),
        ]
        if all(shares):
            return shares
    rng.shuffle(candidates)
    for pool in candidates:
        share = pool_share(world, case, pool, amount, currency, on)
        if share:
            return [share]
    # Every case fits the unrestricted, uncapped pools; prefer the grant's currency.
    general = [
        pool
        for pool in world.pools
        if pool.cap_per_grant is None and pool.ends_on is None and not pool.restrictions
    ]
    general.sort(key=lambda p: p.currency != currency)
    return [pool_share(world, case, general[0], amount, currency, on)]


def pool_share(world, case, pool, amount, currency, on):
    """The share tuple for ``amount`` from ``pool``, or None when the pool may not pay it
    (above its cap per grant)."""
    rate = world.rates.rate(pool.currency, currency, on)
    pool_amount = convert(amount, rate)
    if pool_mismatches(pool, case, pool_amount, on):
        return None
    return (pool, amount, rate, pool_amount)


def plan_shape(world, category, budget):
    """How a grant will be paid: kind, number of instalments and days between them."""
    rng = world.rng
    _, _, _, kind, fewest, most = CATEGORIES[category]
    if kind == PlanKind.STIPEND:
        count, step = budget["months"], 30
    else:
        count, step = rng.randint(fewest, most), rng.randint(45, 75)
        if kind == PlanKind.TRANCHES and (count == 1 or budget["usd"] < TRANCHE_MINIMUM):
            kind, count = PlanKind.ONE_OFF, 1
    return {"kind": kind, "count": count, "step": step, "days": step * (count - 1) + 6}


def add_grant(world, case, app_id, grant, amount, plan):
    """The grant, its allocations, plan, instalments and payments; return the first and
    last payment dates, or None when nothing was paid."""
    rng, currency, times, status = world.rng, case.currency, case.times, case.status
    decided = times[S.APPROVED]
    grant.id = world.tables[Grant].add(
        {
            "uid": world.uid(),
            "fund_id": world.fund.id,
            "application_id": app_id,
            "amount": amount,
            "currency": currency,
            "status": GrantStatus.ACTIVE,
            "approved_at": decided,
            "closed_at": None,
            "created_at": decided,
        }
    )
    grant.row = world.tables[Grant].rows[-1]
    shares = pool_shares(world, case, amount, currency, decided.date())
    decisions.add_approval_draws(world, grant.approvals, shares, currency)
    # The manager who approved last commits the money.
    manager = world.managers[1] if S.AWAITING_SECOND_APPROVAL in times else None
    _add_allocations(world, grant, shares, decided, manager or world.managers[app_id % 2])
    payments.choose_payee(world, grant, case.country)
    instalments = _add_plan(world, grant, amount, currency, plan, decided)
    # A completed grant sometimes closes under budget: its last instalment is not paid.
    count = len(instalments)
    unpaid = 1 if status == S.COMPLETED and count > 2 and rng.random() < 0.2 else 0
    paid_dates = []
    for seq, (inst_id, due, value) in enumerate(instalments, start=1):
        if status == S.APPROVED or due > world.last_day or seq > count - unpaid:
            continue
        paid_on = min(due + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5))), world.last_day)
        if payments.pay(world, grant, inst_id, value, paid_on):
            paid_dates.append(paid_on)
    return (paid_dates[0], paid_dates[-1]) if paid_dates else None


def _add_allocations(world, grant, shares, decided, manager):
    """One sealed allocation per pool drawn on, counted in the pool's quarter."""
    grant.allocations = []
    for pool, share, rate, pool_amount in shares:
        values = {
            "uid": world.uid(),
            "grant_id": grant.id,
            "pool_id": pool.id,
            "amount": pool_amount,
            "grant_amount": share,
            "fx_rate": rate,
        }
        alloc_id = world.tables[Allocation].add(
            {
                **values,
                "seal": audit.seal("allocations", values, world.audit_key),
                "created_by_id": manager,
                "created_at": decided,
            }
        )
        quarter = (decided.date() - pool.starts_on).days // 91
        draws = world.draws[pool.id]
        draws[quarter] = draws.get(quarter, Decimal(0)) + pool_amount
        grant.allocations.append({"id": alloc_id, "pool": pool, "left": pool_amount, "rate": rate})


def _add_plan(world, grant, amount, currency, plan, decided):
    """The payment plan and its instalments, scheduled and split as a manager's plan is;
    return (id, due date, amount) of each instalment."""
    rng = world.rng
    kind, count = plan["kind"], plan["count"]
    start = (decided + timedelta(days=rng.randint(1, 4))).date()
    if kind == PlanKind.STIPEND and start.day > 28:
        # Monthly on the same day: a stipend starting late in a month waits for the 1st.
        start = months_after(start.replace(day=1), 1)
    dues = due_dates(kind, start, count, plan["step"])
    plan_id = world.tables[PaymentPlan].add(
        {
            "grant_id": grant.id,
            "kind": kind,
            "starts_on": start,
            "ends_on": dues[-1],
            "renewal_review_on": renewal_review_date(start, dues[-1])
            if kind == PlanKind.STIPEND
            else None,
            "hold_for_report": kind == PlanKind.TRANCHES and rng.random() < 0.3,
            "created_at": decided,
        }
    )
    instalments = []
    for seq, (due, value) in enumerate(
        zip(dues, split_amount(amount, count, smallest_unit(currency)), strict=True), 1
    ):
        inst_id = world.tables[Instalment].add(
            {
                "plan_id": plan_id,
                "seq": seq,
                "due_on": due,
                "amount": value,
                "currency": currency,
                "period_month": period_month(kind, due),
            }
        )
        instalments.append((inst_id, due, value))
    return instalments


def close_grant(world, grant, at):
    """Close a completed grant and give back to its pools what it did not use."""
    grant.row.update(status=GrantStatus.CLOSED, closed_at=at)
    for alloc in grant.allocations:
        if alloc["left"] <= 0:
            continue
        values = {"uid": world.uid(), "allocation_id": alloc["id"], "amount": alloc["left"]}
        world.tables[Release].add(
            {
                **values,
                "reason": world.enc(
                    "releases", "reason", values["uid"], "Grant closed under budget"
                ),
                "seal": audit.seal("releases", values, world.audit_key),
                "created_by_id": world.finance,
                "created_at": at,
            }
        )
        alloc["left"] = Decimal(0)
