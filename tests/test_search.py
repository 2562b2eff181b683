"""The staff search: a case by its short or long code, a payment by its reference or
code, a defender's cases by the keyed name; only what the reader may open, never a name
in an address or a log, every search by name in the fund's audit chain."""

import json
import logging
from datetime import datetime

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import ApplicationStatus, ConflictDeclaration
from hrdfund.cases.services import change_status, defender_key
from hrdfund.core.extensions import db
from tests.conftest import login, make_case, pay, signed_in

NAME = "Amina Diallo"


def _sent(fund, name=NAME, country="SN", **fields):
    """A case of ``fund`` for the defender ``name`` in ``country``, sent (so it has its
    short code)."""
    case = make_case(
        fund,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        country=country,
        defender_name=name,
        defender_key=defender_key(name, country),
        **fields,
    )
    change_status(case, ApplicationStatus.SUBMITTED, at=datetime(2026, 3, 1, 9))
    db.session.commit()
    return case


def _search(client, term, **extra):
    return client.post("/search", data={"q": term, **extra})


def _nothing(response):
    return response.status_code == 200 and "Nothing was found" in response.get_data(as_text=True)


def _name_searches():
    return (
        db.session.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "search.name")
            .order_by(AuditEvent.chain, AuditEvent.seq)
        )
        .scalars()
        .all()
    )


@pytest.mark.parametrize("typed", ["{code}", "{code_lower}", "{loose}", "{uid}"])
def test_a_case_opens_from_its_short_or_long_code(app, fund, make_user, typed):
    case = _sent(fund)
    number = case.code.rsplit("-", 1)[1]
    term = typed.format(
        code=case.code,
        code_lower=case.code.lower(),
        loose=f"hrd{fund.id} 26 {int(number)}",
        uid=case.uid,
    )
    client = signed_in(app, make_user("reviewer"))
    response = _search(client, term)
    assert response.status_code == 303
    assert response.location == f"/applications/{case.uid}"


def test_a_case_opens_from_its_code_said_aloud_without_the_fund(app, fund, make_user, make_fund):
    """On a call people say "case 103" or "26-0103": the reader's own fund is meant; a
    number two of its years share lists both; another fund's case of that number, never."""
    other = make_fund("Another Fund")
    _sent(other, name="Someone Else")
    first = _sent(fund)
    number = int(first.code.rsplit("-", 1)[1])
    client = signed_in(app, make_user("reviewer"))
    for term in (f"26-{number:04d}", f"26 {number}", f"{number:04d}", str(number)):
        response = _search(client, term)
        assert response.status_code == 303, term
        assert response.location == f"/applications/{first.uid}"
    assert _nothing(_search(client, f"25-{number:04d}"))
    assert _nothing(_search(client, "0"))
    # The same number a year later: the number alone lists both, the year picks one.
    later = _sent(fund, name="Later Defender")
    later.code = first.code.replace("-26-", "-27-")
    db.session.commit()
    both = _search(client, str(number)).get_data(as_text=True)
    assert first.code in both and later.code in both
    assert _search(client, f"27-{number}").location == f"/applications/{later.uid}"


def test_a_payment_opens_from_its_reference_on_its_case(app, money_world):
    grant = money_world.grant("2000")
    payment = pay(money_world, grant, "1000", instalment=None, reference="TRF-2026-77")
    case_uid = grant.application.uid
    for role in (money_world.finance, money_world.m1):
        client = signed_in(app, role)
        for term in ("TRF-2026-77", "  TRF-2026-77 ", payment.uid):
            response = _search(client, term)
            assert response.status_code == 303, term
            assert response.location == f"/applications/{case_uid}#payment-{payment.uid}"
        # A reference is matched whole, as typed: a part of it is no reference.
        assert _nothing(_search(client, "TRF-2026"))


def test_a_name_finds_the_defenders_cases_whatever_its_case_and_accents(app, fund, make_user):
    first = _sent(fund)
    second = _sent(fund, name="Amína  DIALLO")
    _sent(fund, name="Amina Diallo-Sow")
    in_kenya = _sent(fund, country="KE")
    client = signed_in(app, make_user("manager"))
    # Without a country: every country's cases of that name.
    response = _search(client, "  amina diallo ")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "3 matches" in html
    for case in (first, second, in_kenya):
        assert case.code in html and f"/applications/{case.uid}" in html
    # Narrowed to one country: one case, opened at once.
    response = _search(client, "amina diallo", country="KE")
    assert response.status_code == 303 and response.location == f"/applications/{in_kenya.uid}"
    # Part of a name is no name.
    assert _nothing(_search(client, "Amina"))


def test_a_search_by_name_is_audited_without_the_name_and_leaves_it_nowhere(
    app, fund, make_user, caplog
):
    _sent(fund)
    _sent(fund)
    reviewer = make_user("reviewer")
    client = signed_in(app, reviewer)
    with caplog.at_level(logging.DEBUG):
        found = _search(client, NAME)
        missed = _search(client, "Nobody Known")
    assert found.status_code == 200 and missed.status_code == 200
    for response in (found, missed):
        assert response.location is None and "Set-Cookie" not in response.headers
        # Nothing typed is written back into the page: no form field, no link.
        assert NAME not in response.get_data(as_text=True)
    entries = _name_searches()
    assert [(e.chain, e.actor, json.loads(e.payload)) for e in entries] == [
        (fund.id, reviewer.pseudonym, {"found": 2}),
        (fund.id, reviewer.pseudonym, {"found": 0}),
    ]
    raw = " ".join(e.payload + e.object_id + e.object_type for e in entries)
    assert "Amina" not in raw and "Nobody" not in raw
    assert "Amina" not in caplog.text and "Nobody" not in caplog.text
    # Every search box and the search page send by POST: nothing typed reaches an address.
    page = client.get("/search").get_data(as_text=True)
    assert page.count('action="/search"') == 2
    assert 'method="get" action="/search"' not in page


def test_another_funds_case_is_never_found(app, fund, make_fund, make_user, money_world):
    other = make_fund("Other fund")
    theirs = _sent(other)
    grant = money_world.grant("2000")
    pay(money_world, grant, "500", instalment=None, reference="THEIRS-1")
    reviewer = make_user("reviewer", fund_id=other.id)
    finance = make_user("finance", fund_id=other.id)
    client = signed_in(app, reviewer)
    for term in (money_world.grant("100").application.uid, "THEIRS-1"):
        assert _nothing(_search(client, term))
    # Their own case they find; ours by the same name they do not.
    _sent(fund)
    response = _search(client, NAME)
    assert response.status_code == 303 and response.location == f"/applications/{theirs.uid}"
    ours = _sent(fund, name="Only Ours")
    for term in (ours.code, ours.uid, "Only Ours"):
        assert _nothing(_search(client, term)), term
    assert _nothing(_search(signed_in(app, finance), "THEIRS-1"))


def test_a_declared_conflict_keeps_the_case_out_of_the_search(app, fund, make_user):
    case = _sent(fund)
    reviewer = make_user("reviewer")
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=reviewer.id))
    db.session.commit()
    client = signed_in(app, reviewer)
    for term in (case.code, case.uid, NAME):
        assert _nothing(_search(client, term)), term


def test_finance_finds_money_not_names_nor_cases_before_approval(app, money_world):
    grant = money_world.grant("2000", name=NAME)
    waiting = _sent(money_world.fund, name="Still Waiting")
    client = signed_in(app, money_world.finance)
    # An approved case by its code: yes; by the defender's name: finance sees no names.
    response = _search(client, grant.application.uid)
    assert response.status_code == 303
    assert _nothing(_search(client, NAME))
    assert _nothing(_search(client, waiting.code))
    assert _name_searches() == []
    page = client.get("/search").get_data(as_text=True)
    assert "full name" not in page and 'name="country"' not in page


@pytest.mark.parametrize("role", ["applicant", "partner", "donor", "admin"])
def test_the_search_is_for_staff_who_open_cases(app, fund, make_user, role):
    case = _sent(fund)
    user = make_user(role)
    client = app.test_client()
    login(client, user)
    assert _search(client, case.code).status_code in (403, 404)
    assert client.get("/search").status_code in (403, 404)
    assert 'id="search-box"' not in client.get("/").get_data(as_text=True)


def test_an_empty_or_overlong_term_or_an_unknown_country_is_a_form_error_not_a_search(
    app, fund, make_user
):
    client = signed_in(app, make_user("manager"))
    for term, country in (("", ""), ("   ", ""), ("x" * 201, ""), (NAME, "Atlantis")):
        response = _search(client, term, country=country)
        assert response.status_code == 400
        assert 'class="errors"' in response.get_data(as_text=True)
    assert _name_searches() == []


def test_a_purged_case_is_no_longer_found_by_its_defenders_name(app, fund, make_user, runner):
    """Purging takes the name out of a case, and with it the key a name search matches:
    the purged case is still found by its code (staff open its figures), not by the name."""
    from datetime import timedelta

    from hrdfund.core.columns import utcnow

    case = make_case(
        fund,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        country="SN",
        defender_name=NAME,
        defender_key=defender_key(NAME, "SN"),
    )
    change_status(case, ApplicationStatus.SUBMITTED, at=utcnow() - timedelta(days=90))
    change_status(case, ApplicationStatus.WITHDRAWN, at=utcnow() - timedelta(days=80))
    db.session.commit()
    client = signed_in(app, make_user("manager"))
    assert _search(client, NAME).location == f"/applications/{case.uid}"
    app.config["RETENTION_DAYS"] = 30
    assert runner.invoke(args=["hrdfund", "purge", "--yes"]).exit_code == 0
    assert _nothing(_search(client, NAME))
    assert _search(client, case.code).location == f"/applications/{case.uid}"
