"""Addresses that moved keep working: each old address redirects to its new one (a GET with
301 and its query string, a form's POST with 308, which keeps its method and body), and
the new address answers as the old one did, with the same role and CSRF checks."""

from datetime import date

import sqlalchemy as sa

from hrdfund.core.extensions import db
from hrdfund.core.moved import MOVED
from hrdfund.pools.models import ExchangeRate
from tests.conftest import csrf_token, signed_in

QUERY = "period=2026&format=csv"


def _fill(rule, world):
    """``rule`` with its ``<uid>`` naming a real rate entry or pool of the world's fund."""
    entry = db.session.execute(
        sa.select(ExchangeRate.uid).where(ExchangeRate.fund_id == world.fund.id).limit(1)
    ).scalar_one()
    return rule.replace("<uid>", entry if "rates" in rule else world.eur.uid)


def test_every_moved_address_redirects_to_the_page_that_answers_it_now(app, money_world):
    manager = signed_in(app, money_world.m1)
    reviewer = signed_in(app, money_world.reviewer)
    assert len(MOVED) >= 5
    for moved in MOVED:
        old, new = _fill(moved.old, money_world), _fill(moved.new, money_world)
        for method in moved.methods:
            response = manager.open(f"{old}?{QUERY}", method=method)
            assert response.status_code == (301 if method == "GET" else 308), (method, old)
            assert response.location == f"{new}?{QUERY}", (method, old)
            answer = manager.open(response.location, method=method)
            assert answer.status_code not in (404, 405), (method, new)
            assert answer.status_code < 500, (method, new)
            # The role check is the new page's: a reviewer is refused there as before.
            refused = reviewer.open(old, method=method, follow_redirects=True)
            assert refused.status_code == 403, (method, old)


def test_a_form_sent_to_its_old_address_is_sent_on_with_its_body_and_token(app, money_world):
    """A rate form left open in a tab before the move is sent to /rates: the 308 sends it
    on to /pools/rates, where the browser sends the same body again, its CSRF token with
    it, and the rate is recorded; without its token it is refused at the old address."""
    finance = signed_in(app, money_world.finance)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        form = {
            "rate-on_date": date(2026, 4, 1).isoformat(),
            "rate-base": "EUR",
            "rate-quote": "KES",
            "rate-rate": "140.5",
            "rate-source": "Sent to the old address",
        }
        assert finance.post("/rates", data=form).status_code == 400
        form["csrf_token"] = csrf_token(finance, "/pools/rates")
        sent = finance.post("/rates", data=form)
        assert sent.status_code == 308 and sent.location == "/pools/rates"
        # On a 308 a browser repeats the request, method and body, at the new address.
        answer = finance.post(sent.location, data=form)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert answer.status_code == 302 and answer.location == "/pools/rates"
    recorded = db.session.execute(
        sa.select(ExchangeRate).where(
            ExchangeRate.quote == "KES", ExchangeRate.on_date == date(2026, 4, 1)
        )
    ).scalar_one()
    assert recorded.source == "Sent to the old address"
