"""Each pool's money by day, kept as the ledger's rows are written (the pools' charts read
it): every kind of row adds to its pool's day in the same transaction, the kept days equal
a recount from the rows, `flask hrdfund check` reports a kept day that differs, and
`flask hrdfund rebuild-figures` adds the days up again.

The random sequences of `tests/test_ledger_property.py` check the same after every step."""

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from hrdfund.ledger import daily
from hrdfund.ledger.daily import PoolDay
from hrdfund.pools import services as pools
from tests.conftest import pay


def _days(pool):
    """{day: (received, allocated, released, paid, costs)} kept for ``pool``."""
    rows = db.session.execute(
        sa.select(PoolDay.day, *(PoolDay.__table__.c[n] for n in daily.SUMS))
        .where(PoolDay.pool_id == pool.id)
        .order_by(PoolDay.day)
    ).all()
    return {day: tuple(sums) for day, *sums in rows}


def _money(*values):
    return tuple(Decimal(v) for v in values)


def test_every_kind_of_ledger_row_adds_to_its_pools_day(app, money_world):
    world = money_world
    today = utcnow().date()
    # The world received 20,000 EUR on 2 January; a contribution booked by mistake the
    # same day is taken back (its reversal is dated as the money it takes back).
    wrong = pools.record_contribution(world.eur, world.m1, Decimal("500"), "EUR", date(2026, 1, 2))
    pools.reverse_contribution(wrong, world.m1, "booked twice")
    grant = world.grant("3000")  # committed today
    first = pay(world, grant, "1000", instalment=None, paid_on=date(2026, 2, 3), fee=Decimal("5"))
    pay(world, grant, "200", instalment=None, paid_on=date(2026, 3, 3), reference="D-2")
    payments.reverse_disbursement(first, world.finance, "bounced", fee_refunded=False)
    plans.close_grant(grant, world.m1, "ended early")  # releases what was not paid, today
    db.session.commit()

    days = _days(world.eur)
    assert days[date(2026, 1, 2)] == _money("20000", "0", "0", "0", "0")
    assert days[date(2026, 3, 3)] == _money("0", "0", "0", "200", "0")
    assert days[date(2026, 2, 3)] == _money("0", "0", "0", "1000", "5")
    # Today: the commitment, the payment of 3 February taken back (its fee was not
    # refunded), and on closing what was not paid released.
    assert days[today][:4] == _money("0", "3000", "2800", "-1000")
    assert daily.differences() == []


def test_a_kept_day_that_differs_is_reported_and_rebuilt(app, money_world, runner):
    world = money_world
    grant = world.grant("3000")
    pay(world, grant, "1000", instalment=None, paid_on=date(2026, 2, 3))
    db.session.commit()
    kept = _days(world.eur)
    assert runner.invoke(args=["hrdfund", "check"]).exit_code == 0

    db.session.execute(
        sa.update(PoolDay)
        .where(PoolDay.pool_id == world.eur.id, PoolDay.day == date(2026, 2, 3))
        .values(paid=Decimal("999.00"))
    )
    db.session.commit()
    checked = runner.invoke(args=["hrdfund", "check"])
    assert checked.exit_code == 1
    assert f"pool {world.eur.id} on 2026-02-03" in checked.output
    assert "rebuild-figures" in checked.output

    rebuilt = runner.invoke(args=["hrdfund", "rebuild-figures"])
    assert rebuilt.exit_code == 0, rebuilt.output
    db.session.expire_all()
    assert _days(world.eur) == kept
    assert runner.invoke(args=["hrdfund", "check"]).exit_code == 0


def test_a_refused_payment_adds_nothing(app, money_world):
    world = money_world
    """A payment the rules refuse rolls back with its transaction, its day's sums too."""
    grant = world.grant("100")
    before = _days(world.eur)
    try:
        pay(world, grant, "5000", instalment=None, paid_on=date(2026, 2, 3))
    except payments.PaymentError:
        db.session.rollback()
    else:
        raise AssertionError("a payment beyond the grant is refused")
    assert _days(world.eur) == before
    assert daily.differences() == []


def test_a_day_keeps_more_than_one_amounts_column_holds(app, money_world):
    """Two of the largest contributions a form takes, on one day: the day's sum is more
    than one amount's column holds, and is kept (PostgreSQL refused it, and the page
    failed, when the days were kept in amounts' columns)."""
    world = money_world
    largest = Decimal("999999999999.99")
    for _ in range(2):
        pools.record_contribution(world.usd, world.m1, largest, "USD", date(2026, 4, 1))
    db.session.commit()
    assert _days(world.usd)[date(2026, 4, 1)][0] == largest * 2
    assert daily.differences() == []
    daily.rebuild()
    db.session.commit()
    assert _days(world.usd)[date(2026, 4, 1)][0] == largest * 2
