"""Staff read plain words in their own language, never a stored code: a status by its
staff name, a country by its name, the answers to a category's questions, channels,
roles and a pool's restrictions."""

import html
import re
from datetime import date

import pytest

from hrdfund.cases.models import Application, ApplicationStatus, Reference, Urgency
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.ledger.models import Channel
from hrdfund.pools import services as pools
from hrdfund.pools.models import RestrictionKind
from tests.conftest import MoneyWorld, login, pay, refused_page


def _text(response):
    """What a person reads on the page: its text, without tags or attributes."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def relocation(fund, make_user):
    """A relocation case to a nearby country, sent and recommended."""
    case = Application(
        fund_id=fund.id,
        applicant_id=make_user("applicant").id,
        category=Category.RELOCATION,
        status=ApplicationStatus.RECOMMENDED,
        currency="EUR",
        country="KE",
        region="East Africa",
        urgency=Urgency.NORMAL,
        details={"scope": "region", "destination_country": "UG", "people": 2},
    )
    db.session.add(case)
    db.session.flush()
    db.session.add(Reference(application_id=case.id, name="Ref One", contact="Signal"))
    db.session.commit()
    return case


def test_staff_read_a_case_in_their_own_words(app, client, make_user, relocation):
    manager = make_user("manager")
    login(client, manager)
    text = _text(client.get(f"/applications/{relocation.uid}"))
    assert "Status: Recommended" in text
    # The applicant side's wording and its next step are theirs, not the staff's.
    assert "Being reviewed" not in text
    assert "a manager will decide soon" not in text
    assert "Country Kenya (East Africa)" in text
    assert "Where to To a nearby country" in text
    assert "Destination country Uganda" in text
    assert "Not contacted yet" in text
    for code in ("KE", "UG", "region", "pending"):
        assert not re.search(rf"\b{code}\b", text), code

    applicant = app.test_client()
    login(applicant, relocation.applicant)
    assert "Status: Being reviewed" in _text(applicant.get(f"/applications/{relocation.uid}"))


def test_a_money_answer_reads_as_an_amount(client, make_user, fund):
    case = Application(
        fund_id=fund.id,
        category=Category.LONGER_TERM,
        status=ApplicationStatus.SUBMITTED,
        currency="USD",
        country="CO",
        details={"monthly_amount": "450.00", "months": 6, "where": "exile"},
    )
    db.session.add(case)
    db.session.commit()
    login(client, make_user("reviewer"))
    text = _text(client.get(f"/applications/{case.uid}"))
    assert "Amount needed each month $450.00" in text
    assert "Where you would live In exile" in text
    assert "Country Colombia" in text
    assert "exile " not in text.replace("In exile", "")


def test_the_queue_names_countries(client, make_user, fund):
    for country in ("KE", "UG"):
        db.session.add(
            Application(
                fund_id=fund.id,
                category=Category.MEDICAL,
                status=ApplicationStatus.SUBMITTED,
                currency="EUR",
                country=country,
                region="East Africa",
                submitted_at=date(2026, 3, 1),
            )
        )
    db.session.commit()
    login(client, make_user("reviewer"))
    rows = _text(client.get("/cases?country=UG"))
    assert "Uganda (East Africa)" in rows and "Kenya (East Africa)" not in rows


def test_payments_accounts_and_pools_name_what_they_show(app, client, fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    world.plan(grant)
    pay(world, grant, "500", channel=Channel.CASH_THROUGH_PARTNER)
    pool = pools.create_pool(
        world.donor,
        world.m1,
        "Restricted",
        "EUR",
        restrictions=[
            (RestrictionKind.CATEGORY, "longer_term"),
            (RestrictionKind.COUNTRY, "KE"),
            (RestrictionKind.REGION, "East Africa"),
        ],
    )
    db.session.commit()

    finance = app.test_client()
    login(finance, world.finance)
    payments = _text(finance.get("/payments"))
    assert "Cash through a partner" in payments and "cash_through_partner" not in payments

    admin = app.test_client()
    login(admin, world.admin)
    accounts = _text(admin.get("/admin/users"))
    for role in ("Manager", "Finance", "Reviewer", "Administrator"):
        assert role in accounts
    assert not re.search(r"\b(manager|finance|reviewer|admin)\b", accounts)

    login(client, world.m1)
    page = _text(client.get(f"/pools/{pool.uid}"))
    assert "Funds only: Longer-term support, Kenya, East Africa" in page


def test_a_pool_is_restricted_by_choosing_words_not_typing_codes(client, fund, make_user):
    """The new pool form offers kinds of support as boxes to tick and countries by name;
    a value it does not offer is refused."""
    from hrdfund.pools.models import Donor, Pool, PoolRestriction

    donor = Donor(fund_id=fund.id, name="Donor")
    db.session.add(donor)
    db.session.commit()
    login(client, make_user("manager"))
    form = client.get("/pools/new").get_data(as_text=True)
    assert 'type="checkbox"' in form and "Medical costs" in form
    assert '<option value="KE">Kenya</option>' in form
    assert "longer_term" not in _text(client.get("/pools/new"))
    base = {"pool-donor": donor.id, "pool-name": "Medical in Kenya", "pool-currency": "EUR"}
    forged = client.post("/pools", data={**base, "pool-countries": "XA"})
    forged = refused_page(client, forged, "/pools/new#pool")
    assert "'XA' is not a valid choice" in html.unescape(forged.get_data(as_text=True))
    assert db.session.query(Pool).count() == 0
    made = client.post(
        "/pools", data={**base, "pool-categories": "medical", "pool-countries": ["KE", "UG"]}
    )
    assert made.status_code == 302
    rules = {(r.kind.value, r.value) for r in db.session.query(PoolRestriction)}
    assert rules == {("category", "medical"), ("country", "KE"), ("country", "UG")}
