"""A date before 2000 where money is recorded is a slip of the keyboard (1900 for 2019):
refused in words at every service that takes one, and a pool that holds one from before
still opens, for its managers and its donor."""

from datetime import date
from decimal import Decimal

import pytest

from hrdfund.core.extensions import db
from hrdfund.disbursements.bounds import PaymentError
from hrdfund.grants import plans
from hrdfund.grants.models import PlanKind
from hrdfund.grants.plans import PlanError
from hrdfund.ledger.models import Contribution
from hrdfund.pools import services as pools
from hrdfund.pools.services import PoolError
from tests.conftest import pay, refused_page, signed_in

SLIP = date(1900, 1, 1)
WORDS = "A date before the year 2000 is not accepted: check the year."


def test_a_contribution_dated_before_2000_is_refused_in_words(app, money_world):
    world = money_world
    manager = signed_in(app, world.m1)
    url = f"/pools/{world.eur.uid}"
    sent = manager.post(
        f"{url}/contributions",
        data={
            "contribution-amount": "10",
            "contribution-currency": "EUR",
            "contribution-received_on": SLIP.isoformat(),
            "contribution-reference": "slip",
        },
    )
    assert WORDS in refused_page(manager, sent).get_data(as_text=True)
    assert not Contribution.query.filter_by(received_on=SLIP).count()


@pytest.mark.parametrize("where", ["rate", "pool start", "pool end", "payment", "plan"])
def test_every_money_date_before_2000_is_refused(money_world, where):
    world = money_world
    with pytest.raises((PoolError, PlanError, PaymentError), match=WORDS):
        if where == "rate":
            pools.record_rate(world.fund.id, world.finance, SLIP, "USD", "EUR", "0.9", "x")
        elif where in ("pool start", "pool end"):
            days = (SLIP, None) if where == "pool start" else (None, SLIP)
            pools.create_pool(world.donor, world.m1, "Old", "EUR", None, *days)
        elif where == "payment":
            pay(world, world.grant("500"), "100", instalment=None, paid_on=SLIP)
        else:
            plans.create_plan(world.grant("500"), world.m1, PlanKind.ONE_OFF, SLIP)
    db.session.rollback()


def test_a_pool_holding_a_date_before_2000_still_opens(app, money_world, make_user, monkeypatch):
    """Recorded before the rule, a contribution of 1900 left the pool's page, the donor's
    portal and the internal report answering 500: reports begin in 2000, and so do the
    periods these pages offer."""
    world = money_world
    # Recorded as the service took it before the rule (rows are never edited afterwards).
    monkeypatch.setattr(pools, "FIRST_DAY", date(1800, 1, 1))
    pools.record_contribution(world.eur, world.m1, Decimal(10), "EUR", SLIP)
    db.session.commit()
    monkeypatch.undo()
    manager = signed_in(app, world.m1)
    assert manager.get(f"/pools/{world.eur.uid}").status_code == 200
    assert manager.get("/reports/internal").status_code == 200
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    page = donor.get("/donor")
    assert page.status_code == 200 and "2000" in page.get_data(as_text=True)
