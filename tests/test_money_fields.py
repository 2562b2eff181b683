"""Every amount and every rate a form takes is one field, read by one parser: whatever is
typed, through the pages as the right person, the answer is a clear refusal or an amount
of whole cents that `flask hrdfund check` finds sealed, never a crash."""

import importlib
import itertools
import pkgutil
import re
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hrdfund
from hrdfund import audit
from hrdfund.auth.models import Fund
from hrdfund.auth.services import create_user
from hrdfund.cases.forms import application_form_class
from hrdfund.cases.models import Consent, ConsentKind
from hrdfund.core.columns import Money, Rate, utcnow
from hrdfund.core.extensions import db
from hrdfund.core.fields import MoneyField, RateField
from hrdfund.core.support import Category
from hrdfund.ledger.models import Contribution
from hrdfund.pools import services as pools
from hrdfund.reviews import services as reviews
from tests.conftest import (
    PASSWORD,
    MoneyWorld,
    login,
    make_costed_case,
    pay,
    payment_data,
    refused_page,
    start_application,
)

#: What people and attackers type into an amount or a rate: each must be refused, with
#: a message.
NASTY_NUMBERS = (
    "1e3",
    "1E-2",
    "0E-1000000",
    "NaN",
    "sNaN",
    "-sNaN",
    "Infinity",
    "-inf",
    "-0",
    "-0.00",
    "-5",
    "1_000",
    "1 000",
    "12,50",
    "0x1F",
    "+5",
    "9" * 5000,
    "１2",
    "\u202e12",
    "12€",
)
#: More than two places, or beyond Numeric(14, 2): no amount, though a rate may be.
NASTY = NASTY_NUMBERS + ("100.005", "0.001", "١٢٣.٤٥٦", "1000000000000", "1.500")
#: Beyond the rate range or its eight places.
NASTY_RATES = NASTY_NUMBERS + ("1e40", "1e30", "0", "0.0000001", "1000000.5", "1.123456789")
#: The words a refusal of an amount or a rate uses (hrdfund.core.money).
REFUSALS = (
    "Enter the amount in figures",
    "Enter the rate in figures",
    "Enter at most two decimal places",
    "may mean thousands",
    "Enter a rate with at most eight decimal places",
    "Enter a rate between 0.000001 and 1,000,000",
    "This amount is too large",
    "Enter an amount above zero",
    "Enter zero or more",
    "Use a point for decimals",
    "Enter at most 40 characters",
)


@dataclass
class Page:
    """A form with amounts or rates, and what it needs besides to be sent."""

    url: str
    data: dict


def _case_in_review(world):
    """A medical case with two budget lines, taken by the world's reviewer."""
    case = make_costed_case(world.fund, commit=False, applicant_id=world.applicant.id)
    db.session.flush()
    reviews.assign_reviewer(case, world.reviewer, world.reviewer)
    db.session.commit()
    return case


def _applicant(world, client):
    uid = start_application(client, "longer_term")
    data = {
        "budget-0-description": "Rent",
        "budget-0-amount": "100",
        "details-monthly_amount": "50",
        "save": "1",
    }
    return Page(f"/applications/{uid}/edit", data)


def _recommend(world, client):
    case = _case_in_review(world)
    data = {
        "recommend-risk_level": "high",
        "recommend-recommendation": "approve_partly",
        "recommend-lines-0": "4000",
        "recommend-lines-1": "0",
        "recommend-assessment": "Verified",
    }
    return Page(f"/applications/{case.uid}/recommend", data)


def _cofunding(world, client):
    case = _case_in_review(world)
    data = {
        "cofunding-funder": "Regional Fund",
        "cofunding-amount": "300",
        "cofunding-currency": "EUR",
    }
    return Page(f"/applications/{case.uid}/cofunding", data)


def _approve(world, client):
    case = world.recommended(f"Defender {next(_fresh)}")
    db.session.commit()
    data = {
        "approve-amount": "1000",
        "approve-draws-0-pool": str(world.eur.id),
        "approve-draws-0-amount": "1000",
    }
    return Page(f"/applications/{case.uid}/approve", data)


def _payment(world, client):
    grant = world.grant("200", name=f"Defender {next(_fresh)}")
    data = payment_data(
        grant,
        **{
            "pay-currency_paid": "USD",
            "pay-rate": "0.9",
            "pay-rate_source": "Bank statement",
            "pay-rate_reason": "The bank's own rate",
            "pay-amount_paid": "100",
            "pay-fee": "1.50",
        },
    )
    return Page(f"/applications/{grant.application.uid}/payments", data)


def _reversal(world, client):
    payment = pay(
        world, world.grant("200", name=f"Defender {next(_fresh)}"), "150", instalment=None
    )
    data = {"reverse-reason": "Bounced", "reverse-amount": "100"}
    return Page(f"/payments/{payment.uid}/reverse", data)


def _receipt(world, client):
    payment = pay(
        world, world.grant("200", name=f"Defender {next(_fresh)}"), "150", instalment=None
    )
    data = {"answer": "less", "amount": "100", "currency": payment.currency_paid}
    return Page(f"/payments/{payment.uid}/receipt", data)


def _contribution(world, client):
    data = {
        "contribution-amount": "100",
        "contribution-currency": "EUR",
        "contribution-received_on": "2026-01-05",
    }
    return Page(f"/pools/{world.eur.uid}/contributions", data)


def _pool(world, client):
    data = {
        "pool-donor": str(world.donor.id),
        "pool-name": "A new pool",
        "pool-currency": "EUR",
        "pool-cap_per_grant": "5000",
    }
    return Page("/pools", data)


def _rate(world, client):
    data = {
        "rate-on_date": "2026-03-01",
        "rate-base": "EUR",
        "rate-quote": "KES",
        "rate-rate": "140.5",
        "rate-source": "Central bank",
    }
    return Page("/pools/rates", data)


def _referral(world, client):
    """A case the reviewer refers to another member fund, its defender agreeing."""
    case = _case_in_review(world)
    db.session.add(
        Consent(application_id=case.id, kind=ConsentKind.REFERRAL, method="form", given_at=utcnow())
    )
    other = db.session.execute(sa.select(Fund).where(Fund.name == "Other Member Fund")).scalar()
    if other is None:
        other = Fund(name="Other Member Fund")
        db.session.add(other)
        db.session.flush()
        create_user("manager", "other.fund.manager", PASSWORD, fund_id=other.id)
    db.session.commit()
    data = {
        "refer-to_fund": other.uid,
        "refer-category": "medical",
        "refer-amount": "1000",
        "refer-currency": "EUR",
        "refer-reason": "Another fund covers this care.",
        "refer-answer_by": (utcnow().date() + timedelta(days=30)).isoformat(),
    }
    return Page(f"/applications/{case.uid}/refer", data)


def _threshold(world, client):
    return Page("/fund/settings/limits", {"limits-four_eyes_threshold": "2500"})


#: The money and rate fields each page sends (kept here so the test above can compare).
FIELDS_OF = {
    "applicant": ("budget-0-amount", "details-monthly_amount"),
    "recommend": ("recommend-lines-0", "recommend-lines-1"),
    "cofunding": ("cofunding-amount",),
    "approve": ("approve-amount", "approve-draws-0-amount"),
    "payment": ("pay-amount_paid", "pay-fee", "pay-rate"),
    "reversal": ("reverse-amount",),
    "receipt": ("amount",),
    "contribution": ("contribution-amount",),
    "pool": ("pool-cap_per_grant",),
    "rate": ("rate-rate",),
    "threshold": ("limits-four_eyes_threshold",),
    "referral": ("refer-amount",),
}
#: Each form, the person it is for, and how to reach a fresh one.
PAGES = {
    "applicant": ("applicant", _applicant),
    "recommend": ("reviewer", _recommend),
    "cofunding": ("reviewer", _cofunding),
    "approve": ("m1", _approve),
    "payment": ("finance", _payment),
    "reversal": ("finance", _reversal),
    "receipt": ("applicant", _receipt),
    "contribution": ("m1", _contribution),
    "pool": ("m1", _pool),
    "rate": ("finance", _rate),
    "threshold": ("admin", _threshold),
    "referral": ("reviewer", _referral),
}
#: What makes each send its own (a form key, a name or a date that may be used once), so
#: a valid amount is recorded again rather than refused as a repeat.
_fresh = itertools.count(1)


def _unique(data):
    n = next(_fresh)
    changes = {}
    if "pay-idempotency_key" in data:
        changes["pay-idempotency_key"] = f"key-{n}"
    if "pool-name" in data:
        changes["pool-name"] = f"Pool {n}"
    if "rate-on_date" in data:
        # Days before, never after: a rate is not recorded for a day still to come.
        changes["rate-on_date"] = (date(2026, 3, 1) - timedelta(days=n)).isoformat()
    return {**data, **changes}


@pytest.fixture
def world(fund, make_user, make_donor):
    """The money world, its euro pool rich enough for every grant an example makes (and
    hypothesis makes more while it narrows a failure down)."""
    world = MoneyWorld(fund, make_user, make_donor)
    pools.record_contribution(world.eur, world.m1, Decimal("10000000"), "EUR", date(2026, 1, 2))
    db.session.commit()
    return world


def _signed_in(app, world, page_name):
    """A client signed in as the user of the page's form."""
    client = app.test_client()
    login(client, getattr(world, PAGES[page_name][0]))
    return client


def _fresh_page(world, client, page_name):
    """A form of ``page_name`` on objects of its own (a new case, grant or payment), so
    what one send records does not change what the next one meets."""
    return PAGES[page_name][1](world, client)


def _send(client, page, field, value):
    """Send the form with ``field`` set to ``value``: the answer, or for a refused form the
    page it comes back on (``refused`` set)."""
    response = client.post(page.url, data={**_unique(page.data), field: value})
    if response.status_code != 303:
        return response
    shown = refused_page(client, response)
    shown.refused = True
    return shown


def _whole_cents_everywhere():
    """Every amount and rate in the database, in every table, as its column allows: an
    amount of whole cents, a rate of at most eight places (SQLite keeps what it is given,
    so a value that slipped past would show here)."""
    wrong = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Money | Rate):
                places = Decimal("0.01") if isinstance(column.type, Money) else Decimal("1E-8")
                for (value,) in db.session.execute(sa.select(column).where(column.is_not(None))):
                    if Decimal(value) != Decimal(value).quantize(places):
                        wrong.append(f"{table.name}.{column.name} = {value}")
    return wrong


def _checked(runner):
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0, result.output
    assert _whole_cents_everywhere() == []


def _refused(response, value):
    """The answer to a value that must be refused: the form again, with the reason."""
    html = response.get_data(as_text=True)
    assert getattr(response, "refused", False), (value[:40], response.status_code)
    assert any(words in html for words in REFUSALS), (value[:40], html[-3000:])


def _number_fields(form):
    """Every field of ``form`` (its sub-forms and lists included) as (name, field), the
    name without list positions."""
    for field in form:
        if field.type == "FormField":
            yield from _number_fields(field.form)
        elif field.type == "FieldList":
            if not field.entries:
                field.append_entry()
            entry = field.entries[0]
            if entry.type == "FormField":
                yield from _number_fields(entry.form)
            else:
                yield re.sub(r"-\d+", "", entry.name), entry
        else:
            yield re.sub(r"-\d+", "", field.name), field


def _form_classes():
    for info in pkgutil.walk_packages(hrdfund.__path__, "hrdfund."):
        importlib.import_module(info.name)
    classes = {
        cls
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("hrdfund.")
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, FlaskForm)
        and cls.__module__.startswith("hrdfund")
    }
    return classes | {application_form_class(category) for category in Category}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_amount_and_rate_of_every_form_is_the_one_field_and_is_sent_here(app, backend):
    """No form reads a number with WTForms' DecimalField or FloatField (which only format),
    and every amount and rate of every form (a MoneyField or a RateField) is among those
    the tests below send."""
    numbers, loose = set(), set()
    with app.test_request_context():
        for cls in _form_classes():
            for name, field in _number_fields(cls(meta={"csrf": False})):
                if isinstance(field, MoneyField | RateField):
                    numbers.add(name)
                elif field.type in ("DecimalField", "FloatField", "DecimalRangeField"):
                    loose.add(f"{cls.__name__}.{name}")
    assert loose == set()
    sent = {re.sub(r"-\d+", "", field) for fields in FIELDS_OF.values() for field in fields}
    assert numbers == sent


@pytest.mark.parametrize("page_name", list(PAGES))
def test_every_money_and_rate_field_refuses_what_is_not_an_amount(app, world, runner, page_name):
    """More than two places (or eight for a rate), exponents, NaN and sNaN, infinities,
    signs, "-0", underscores, commas as decimals, digits of two scripts, beyond
    Numeric(14, 2) or the rate range: each is a form error that records nothing."""
    client = _signed_in(app, world, page_name)
    page = _fresh_page(world, client, page_name)
    before = audit.heads()
    for field in FIELDS_OF[page_name]:
        for value in NASTY_RATES if field.endswith("rate") else NASTY:
            _refused(_send(client, page, field, value), value)
            assert audit.heads() == before, (field, value[:40])
    _checked(runner)


@pytest.mark.parametrize("page_name", list(PAGES))
def test_every_money_and_rate_field_takes_a_plain_amount(app, world, runner, page_name):
    """The same forms, with each field as the form was filled in, record what was sent
    (the control for the test above)."""
    client = _signed_in(app, world, page_name)
    for field in FIELDS_OF[page_name]:
        page = _fresh_page(world, client, page_name)
        before = audit.heads()
        response = _send(client, page, field, page.data[field])
        assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
        assert audit.heads() != before, field
    _checked(runner)


def test_an_amount_of_half_a_cent_is_refused_and_the_ledger_stays_sealed(app, world, runner):
    """A contribution of 100.005 was stored as typed, and then `check` called the row
    altered; now it is refused at the form, and the column refuses it from any caller."""
    client = _signed_in(app, world, "contribution")
    page = _fresh_page(world, client, "contribution")
    response = _send(client, page, "contribution-amount", "100.005")
    assert response.refused
    assert "may mean thousands" in response.get_data(as_text=True)
    with pytest.raises(sa.exc.StatementError, match="not whole cents"):
        pools.record_contribution(world.eur, world.m1, Decimal("100.005"), "EUR", date(2026, 1, 5))
    db.session.rollback()
    with pytest.raises(sa.exc.StatementError, match="must be a Decimal"):
        pools.record_contribution(world.eur, world.m1, 100.5, "EUR", date(2026, 1, 5))
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Contribution.id))).scalar() == 3
    _checked(runner)


def test_digits_of_another_script_are_read_as_the_amount_they_write(app, world):
    """Full-width and Arabic-Indic digits are read deliberately, by their value, and
    stored as the plain amount they write; "1_000", which Python would read as 1000, is
    refused."""
    client = _signed_in(app, world, "contribution")
    page = _fresh_page(world, client, "contribution")
    assert _send(client, page, "contribution-amount", "１２").status_code == 302
    assert _send(client, page, "contribution-amount", "١٢٣٫٤٥").status_code == 302
    _refused(_send(client, page, "contribution-amount", "1_000"), "1_000")
    received = db.session.execute(
        sa.select(Contribution.received_amount).order_by(Contribution.id)
    ).scalars()
    assert list(received)[-2:] == [Decimal("12.00"), Decimal("123.45")]


def test_a_refused_amount_comes_back_as_typed_and_a_stored_one_as_cents(app, world):
    """The form shows back what was refused, for its owner to correct, and a stored
    amount in plain figures."""
    client = _signed_in(app, world, "contribution")
    page = _fresh_page(world, client, "contribution")
    html = _send(client, page, "contribution-amount", "12,50").get_data(as_text=True)
    assert 'value="12,50"' in html and "Use a point for decimals" in html
    assert 'inputmode="decimal"' in html


#: Random text for an amount: anything at all, things close to a number, numbers of any
#: size and places, and the nasty values above.
NUMBERISH = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789.,-+eE_ ", max_size=25),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=0, max_value=10**13, places=3).map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(alphabet="٠١٢٣٤٥٦٧٨٩０１２３４５６７８９٫.", min_size=1, max_size=8),
    st.sampled_from(NASTY_RATES),
)
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def signed_in(app, world, page_name):
    """The world, and a client signed in as the form's user, once for all the examples of
    a test."""
    return world, _signed_in(app, world, page_name)


@pytest.mark.parametrize("page_name", list(PAGES))
@PROPERTY
@given(data=st.data())
def test_no_amount_or_rate_crashes_a_page_or_breaks_a_seal(signed_in, runner, page_name, data):
    """Random text in every money and rate field of every form, sent by the person the
    form is for: a form error, or an amount recorded exactly and sealed; never a 500."""
    world, client = signed_in
    page = _fresh_page(world, client, page_name)
    field = data.draw(st.sampled_from(FIELDS_OF[page_name]), label="field")
    value = data.draw(NUMBERISH, label="value")
    before = audit.heads()
    response = _send(client, page, field, value)
    if "\x00" in value:  # refused as a bad request before any form reads it
        assert response.status_code == 400
        return
    assert response.status_code == 302 or response.refused, response.status_code
    html = response.get_data(as_text=True)
    assert "Something went wrong" not in html
    if response.status_code != 302:
        assert 'class="errors"' in html or "error-summary" in html, html[-3000:]
        assert audit.heads() == before, "a refusal records nothing"
    else:
        _checked(runner)  # what was recorded is whole cents, and sealed
