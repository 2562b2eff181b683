"""Every rate column, a held payment's included, refuses what it cannot store."""

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.extensions import db
from hrdfund.money import MoneyError

from .money_world import MoneyWorld, pay

FEB_2 = date(2026, 2, 2)


@pytest.fixture
def world(fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    world.finance2 = make_user("finance")
    return world


# -- payments ----------------------------------------------------------------------------


def test_a_held_payments_rates_refuse_what_their_column_cannot_store(world):
    """A held payment's rates are rate columns like every other: a rate of nine places (which
    one database rounds and the other keeps) or beyond the rate range is refused from any
    caller, not stored for the second person to book."""
    grant = world.grant("1200", pool=world.eur, currency="USD")
    held = pay(
        world,
        grant,
        "1200",
        "USD",
        instalment=None,
        rate=Decimal(10),
        rate_source="x",
        rate_reason="y",
    )
    held.fx_rate = Decimal("0.123456789")
    with pytest.raises(sa.exc.StatementError) as caught:
        db.session.flush()
    assert isinstance(caught.value.orig, MoneyError)
    db.session.rollback()
    held.table_rate = Decimal("1e40")
    with pytest.raises(sa.exc.StatementError) as caught:
        db.session.flush()
    assert isinstance(caught.value.orig, MoneyError)
    db.session.rollback()


def test_every_numeric_column_is_an_amount_a_rate_or_a_share(app):
    """Every numeric column is one of the checked types, so no caller stores a value one
    database rounds and the other keeps."""
    from hrdfund.columns import Money, Percent, Rate

    plain = [
        f"{table.name}.{column.name}"
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.Numeric)
        and not isinstance(column.type, Money | Rate | Percent)
    ]
    assert plain == []
