"""A declared conflict of interest keeps the case off every list its declarer reads:
Coverage, the pool page's rows, follow-up, finance's payments, the internal report and a
statement's problem lines; colleagues without the conflict still see it everywhere."""

import io
from datetime import timedelta

import pytest

from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.grants.plans import months_after
from hrdfund.reviews.services import declare_conflict
from tests.conftest import MoneyWorld, login, pay, refused_page


@pytest.fixture
def lists(fund, make_user, make_donor):
    """Two stipends of the same pool, each with a payment nobody confirmed and months
    still due, ending within the Coverage warning; a manager and a finance officer
    declared a conflict on the second."""
    world = MoneyWorld(fund, make_user, make_donor)
    today = utcnow().date()
    cases = {}
    for name in ("kept", "conflicted"):
        grant = world.grant("600", category=Category.LONGER_TERM, name=f"Defender {name}")
        world.plan(grant, kind="stipend", count=3, starts_on=months_after(today, -2))
        payment = pay(
            world,
            grant,
            "200",
            instalment=1,
            reference=f"PAY-{name.upper()}",
            paid_on=today - timedelta(days=40),
        )
        cases[name] = (grant.application.uid, payment)
    manager, finance = make_user("manager"), make_user("finance")
    for user in (manager, finance):
        declare_conflict(cases["conflicted"][1].grant.application, user)
    db.session.commit()
    return {"world": world, "cases": cases, "manager": manager, "finance": finance}


def _page(app, user, path):
    client = app.test_client()
    login(client, user)
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def _names(lists, name):
    uid, payment = lists["cases"][name]
    return uid, payment.reference, payment.uid


@pytest.mark.parametrize(
    "role, path",
    [
        ("manager", "/coverage"),
        ("finance", "/coverage"),
        ("manager", "/pools/{pool}"),
        ("finance", "/pools/{pool}"),
        ("manager", "/payments/follow-up"),
        ("finance", "/payments/follow-up"),
        ("finance", "/payments"),
        ("manager", "/reports/internal?period={year}"),
    ],
)
def test_every_list_leaves_out_the_declarers_conflicted_case(app, lists, role, path):
    world = lists["world"]
    path = path.format(pool=world.eur.uid, year=utcnow().year)
    colleague = {"manager": world.m1, "finance": world.finance}[role]
    seen_by_colleague = _page(app, colleague, path)
    seen_by_declarer = _page(app, lists[role], path)
    # What the list names of each case (its code, a payment's reference or id): the
    # colleague reads it for both cases, the declarer for the kept one only.
    kept = [text for text in _names(lists, "kept") if text in seen_by_colleague]
    conflicted = [text for text in _names(lists, "conflicted") if text in seen_by_colleague]
    assert kept and conflicted, path
    assert all(text in seen_by_declarer for text in kept), path
    assert not any(text in seen_by_declarer for text in conflicted), path


def test_the_pool_page_says_rows_are_left_out_and_its_figures_still_count_them(app, lists):
    world = lists["world"]
    path = f"/pools/{world.eur.uid}"
    declarer = _page(app, lists["manager"], path)
    colleague = _page(app, world.m1, path)
    assert "not listed below; the figures above count them" in declarer
    assert "not listed below" not in colleague
    figures = [line for line in colleague.splitlines() if 'id="fig-' in line]
    assert figures and all(line in declarer for line in figures)


def test_a_statement_line_of_a_conflicted_case_says_so_and_nothing_more(app, lists):
    """The declarer learns neither how many payments carry the reference nor whether one
    was reconciled; the line is refused and the whole file with it."""
    _uid, payment = lists["cases"]["conflicted"]
    client = app.test_client()
    login(client, lists["finance"])
    data = (
        "reference,amount,currency,date,status\n"
        f"{payment.reference},200.00,{payment.currency_paid},{utcnow().date()},delivered\n"
    ).encode()
    response = client.post(
        "/payments/statements",
        data={"statement": (io.BytesIO(data), "statement.csv")},
        content_type="multipart/form-data",
    )
    text = refused_page(client, response, "/payments#import").get_data(as_text=True)
    assert f"payment {payment.reference} is on a case you declared a conflict on" in text
