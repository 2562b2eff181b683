"""Everything `flask hrdfund check` verifies of the money, in one list: the ledger's own
rows, the grants, and payments beyond a bound confirmed by a second person."""

import sqlalchemy as sa

from ..auth.models import User
from ..core.extensions import db
from ..core.sql import alias
from ..grants.checks import check_approvals, check_grant_draws, check_grant_payments
from ..ledger import daily
from ..ledger.invariants import check_deliveries, check_rows
from ..ledger.models import Disbursement
from ..pools.models import Pool
from ..pools.rate_table import RateTable
from . import open_items
from .bounds import SECOND_PERSONS, Bounds, bounds_passed, rate_beyond_tolerance


def check_ledger(sums=None):
    """Return a list of broken ledger invariants, each naming the rows; empty when healthy.
    ``sums``: the pools' sums of rows, when the caller has added them up already."""
    problems = check_rows(sums)
    problems += check_grant_payments()
    problems += check_deliveries()
    problems += check_grant_draws()
    table = RateTable()
    problems += check_second_persons(table)
    problems += check_approvals(table)
    problems += daily.differences()
    problems += open_items.differences()
    return problems


def check_second_persons(table=None):
    """A payment beyond a bound one person may not pass was confirmed by a second person:
    finance or a manager of the fund, not the one who entered it. The bounds: a rate beyond
    the tolerance of the table rate of its day (or any rate without one), a table entry
    that was the payer's alone, a fee or an exchange difference above its share. Each is
    judged against what the payment kept of its day (its table rate and entry, the limits
    then in force, sealed); a payment from before they were kept, against today's table
    and settings."""
    table = table or RateTable()
    in_force = Bounds.in_force()
    rows = _payments_to_weigh()
    problems = []
    for row in rows:
        bounds = Bounds.kept_on(row)
        kept = bounds is not None
        if not kept:
            # Booked before payments kept these: judged as then, against today's table and
            # settings, by the rules of then (a rate of one's own was no bound yet).
            entry = table.latest(row.fund_id, row.currency_paid, row.currency, row.paid_on)
            reference, bounds = table.rate(entry, row.currency_paid), in_force
        else:
            entry = table.entries.get(row.rate_entry_id)
            reference = row.table_rate
            if entry is not None and table.rate(entry, row.currency_paid) != reference:
                problems.append(
                    f"disbursement {row.id}: its table rate {reference} is not that of the "
                    f"table entry {entry.id} it names"
                )
        foreign = row.currency_paid != row.currency
        beyond = foreign and rate_beyond_tolerance(row.fx_rate, reference, bounds.tolerance)
        own = foreign and kept and table.alone(entry, row.recorded_by_id, row.created_at)
        passed = bounds_passed(
            row.amount, row.fee_amount, row.exchange_difference, bounds, beyond, own
        )
        if passed and row.confirmed_by_id is None:
            problems.append(
                f"disbursement {row.id} is beyond {', '.join(passed)} bounds and no second "
                "person confirmed it"
            )
        if row.confirmed_by_id is not None and (
            row.confirmed_by_id == row.recorded_by_id
            or row.role not in SECOND_PERSONS
            or row.confirmer_fund != row.fund_id
        ):
            problems.append(
                f"disbursement {row.id} was confirmed by user {row.confirmed_by_id}, who may "
                "not confirm it"
            )
    return problems


def _payments_to_weigh():
    """Every payment (not reversals), oldest first, with what `check` weighs it by: what it
    kept of its day, its pool's fund and currency, and its confirmer's role and fund."""
    confirmer = alias(User, "check: confirmer")
    return db.session.execute(
        sa.select(
            Disbursement.id,
            Disbursement.amount,
            Disbursement.fee_amount,
            Disbursement.exchange_difference,
            Disbursement.currency_paid,
            Disbursement.fx_rate,
            Disbursement.paid_on,
            Disbursement.recorded_by_id,
            Disbursement.confirmed_by_id,
            Disbursement.created_at,
            Disbursement.table_rate,
            Disbursement.rate_entry_id,
            Disbursement.rate_tolerance_percent,
            Disbursement.max_fee_percent,
            Disbursement.max_difference_percent,
            Pool.fund_id,
            Pool.currency,
            confirmer.role,
            confirmer.fund_id.label("confirmer_fund"),
        )
        .join(Pool, Pool.id == Disbursement.pool_id)
        .outerjoin(confirmer, confirmer.id == Disbursement.confirmed_by_id)
        .where(Disbursement.reversal_of_id.is_(None))
        .order_by(Disbursement.id)
    ).yield_per(5000)
