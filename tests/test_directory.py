"""The directory of providers and partners: who keeps and who reads an entry, the search,
the reminder of entries not verified for a year, the case page's suggestions, a payment's
payee chosen from the directory, and the CSV export and import, on both databases."""

import io
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund.audit.models import AuditEvent
from hrdfund.core.columns import utcnow
from hrdfund.core.csv_file import MAX_BYTES
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.directory import csv_file
from hrdfund.directory import services as directory
from hrdfund.directory.models import DirectoryEntry
from hrdfund.disbursements.bounds import PaymentError
from hrdfund.ledger.models import Disbursement, PayeeType
from tests.conftest import count_rows, login, make_case, pay, payment_data

TODAY = utcnow().date()


def _entry(actor, name="Clinic Esperanza", **fields):
    values = {
        "name": name,
        "services": ["medical"],
        "countries": ["KE"],
        "regions": [],
        "languages": ["en", "sw"],
        "contact": "Signal +254 700 000 000",
        "referrers": "Member funds",
        "visibility": "network",
        "verified_on": TODAY,
        **fields,
    }
    entry = directory.create_entry(actor, **values)
    db.session.commit()
    return entry


@pytest.fixture
def two_funds(fund, make_fund, make_user):
    """The test fund and another, each with a manager, a reviewer and finance."""
    other = make_fund("Other Fund")
    staff = {}
    for tag, f in (("own", fund), ("other", other)):
        for role in ("manager", "reviewer", "finance"):
            staff[f"{tag}_{role}"] = make_user(role, fund_id=f.id)
    return fund, other, staff


def _chains(action):
    return (
        db.session.execute(sa.select(AuditEvent.chain).where(AuditEvent.action == action))
        .scalars()
        .all()
    )


# -- Keeping entries ----------------------------------------------------------------------------


def test_a_manager_keeps_the_funds_entries_each_change_in_its_chain(two_funds):
    fund, _other, s = two_funds
    entry = _entry(s["own_manager"], visibility="fund")
    assert entry.fund_id == fund.id
    directory.update_entry(
        s["own_manager"],
        entry,
        **{**_fields(entry), "name": "Clinic Esperanza North", "languages": ["fr"]},
    )
    directory.verify_entry(s["own_manager"], entry)
    directory.remove_entry(s["own_manager"], entry)
    db.session.commit()
    assert count_rows(DirectoryEntry) == 0
    for action in ("created", "updated", "verified", "removed"):
        assert _chains(f"directory.{action}") == [fund.id], action


def _fields(entry):
    return {name: getattr(entry, name) for name in (*directory.FIELDS, "visibility", "verified_on")}


@pytest.mark.parametrize("role", ["reviewer", "finance"])
def test_only_a_manager_adds_an_entry(two_funds, role):
    _fund, _other, s = two_funds
    with pytest.raises(directory.DirectoryError):
        _entry(s[f"own_{role}"])
    db.session.rollback()
    assert count_rows(DirectoryEntry) == 0


@pytest.mark.parametrize("step", ["update", "verify", "remove"])
def test_another_funds_manager_changes_nothing_even_of_a_network_entry(two_funds, step):
    _fund, _other, s = two_funds
    entry = _entry(s["own_manager"], verified_on=TODAY - timedelta(days=400))
    with pytest.raises(directory.DirectoryError):
        if step == "update":
            directory.update_entry(s["other_manager"], entry, **{**_fields(entry), "name": "X"})
        elif step == "verify":
            directory.verify_entry(s["other_manager"], entry)
        else:
            directory.remove_entry(s["other_manager"], entry)
    db.session.rollback()
    db.session.refresh(entry)
    assert entry.name == "Clinic Esperanza"
    assert entry.verified_on == TODAY - timedelta(days=400)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"services": []}, "service"),
        ({"countries": [], "regions": []}, "country or region"),
        ({"contact": "  "}, "contact"),
        ({"verified_on": TODAY + timedelta(days=1)}, "future"),
        ({"services": ["bakery"]}, "not one the directory knows"),
        ({"countries": ["XX"]}, "not one the directory knows"),
        ({"languages": ["xx"]}, "not one the directory knows"),
        ({"visibility": "everyone"}, "who finds"),
    ],
)
def test_an_entry_without_what_staff_need_is_refused(two_funds, change, words):
    _fund, _other, s = two_funds
    with pytest.raises(directory.DirectoryError, match=words):
        _entry(s["own_manager"], **change)


def test_names_contacts_and_payment_details_are_stored_encrypted(two_funds):
    _fund, _other, s = two_funds
    entry = _entry(s["own_manager"], name="CANARY-NAME-81", contact="CANARY-CONTACT-81")
    directory.set_payment_details(s["own_finance"], entry, "CANARY-IBAN-81")
    db.session.commit()
    raw = db.session.execute(
        sa.select(DirectoryEntry._name, DirectoryEntry._contact, DirectoryEntry._payment_details)
    ).one()
    for blob, canary in zip(raw, ("NAME", "CONTACT", "IBAN"), strict=True):
        assert f"CANARY-{canary}-81".encode() not in bytes(blob)
    assert entry.payment_details == "CANARY-IBAN-81"


def test_only_the_owner_funds_finance_sets_payment_details(two_funds):
    _fund, _other, s = two_funds
    entry = _entry(s["own_manager"])
    for actor in (s["own_manager"], s["own_reviewer"], s["other_finance"]):
        with pytest.raises(directory.DirectoryError):
            directory.set_payment_details(actor, entry, "IBAN")
        db.session.rollback()
    assert not entry.offers_payment
    directory.set_payment_details(s["own_finance"], entry, "IBAN KE00")
    db.session.commit()
    assert entry.offers_payment
    assert _chains("directory.payment_details") == [entry.fund_id]


# -- Who reads what, and the search ---------------------------------------------------------------


def test_an_entry_kept_for_its_fund_is_read_by_that_fund_only(two_funds, make_user):
    fund, _other, s = two_funds
    network = _entry(s["own_manager"], name="Network Clinic")
    own = _entry(s["own_manager"], name="Own Clinic", visibility="fund")
    directory.set_payment_details(s["own_finance"], own, "IBAN OWN")
    directory.set_payment_details(s["own_finance"], network, "IBAN NET")
    db.session.commit()
    case = make_case(fund, category=Category.MEDICAL, country="KE")
    for role in ("manager", "reviewer", "finance"):
        mine, theirs = s[f"own_{role}"], s[f"other_{role}"]
        assert [e.name for e in directory.search(mine)] == ["Network Clinic", "Own Clinic"]
        assert [e.name for e in directory.search(theirs)] == ["Network Clinic"]
        assert directory.entry_for(theirs, own.uid) is None
        assert directory.entry_for(theirs, network.uid) is network
        assert [e.name for e in directory.payable_entries(theirs)] == ["Network Clinic"]
        assert [e.name for e in directory.suggestions(theirs, case)] == ["Network Clinic"]
    for role in ("applicant", "partner", "donor", "admin"):
        outsider = make_user(role)
        assert directory.search(outsider) == []
        assert directory.entry_for(outsider, network.uid) is None


def test_the_search_finds_by_service_country_region_and_language(two_funds):
    _fund, _other, s = two_funds
    _entry(s["own_manager"], name="Nairobi Clinic")
    _entry(
        s["own_manager"],
        name="Listening Space",
        services=["psychosocial"],
        countries=[],
        regions=["East Africa"],
        languages=["fr", "sw"],
    )
    _entry(
        s["own_manager"],
        name="Bogota Counsellors",
        services=["psychosocial", "legal"],
        countries=["CO"],
        languages=["es"],
    )
    reader = s["other_reviewer"]

    def names(**filters):
        return [e.name for e in directory.search(reader, **filters)]

    assert names(service="psychosocial") == ["Bogota Counsellors", "Listening Space"]
    # A country is served by an entry naming it or its whole region.
    assert names(country="UG") == ["Listening Space"]
    assert names(country="KE") == ["Listening Space", "Nairobi Clinic"]
    # A region is served by an entry naming it or one of its countries.
    assert names(region="Andean region") == ["Bogota Counsellors"]
    # A country and a region together: an entry serving both.
    assert names(country="KE", region="East Africa") == ["Listening Space", "Nairobi Clinic"]
    assert names(country="KE", region="Andean region") == []
    assert names(service="psychosocial", country="KE", language="sw") == ["Listening Space"]
    assert names(service="psychosocial", country="KE", language="es") == []


def test_entries_not_verified_for_a_year_are_named_to_their_own_fund(two_funds):
    _fund, _other, s = two_funds
    old = _entry(s["own_manager"], name="Old Shelter", verified_on=date(2020, 1, 1))
    year = _entry(s["own_manager"], name="Year Shelter", verified_on=TODAY - timedelta(days=366))
    fresh = _entry(s["own_manager"], name="Fresh", verified_on=TODAY - timedelta(days=300))
    assert directory.is_stale(old) and directory.is_stale(year) and not directory.is_stale(fresh)
    for role in ("manager", "reviewer", "finance"):
        assert [e.name for e in directory.stale_own_entries(s[f"own_{role}"])] == [
            "Old Shelter",
            "Year Shelter",
        ]
        assert directory.stale_own_entries(s[f"other_{role}"]) == []
    directory.verify_entry(s["own_manager"], old)
    db.session.commit()
    assert [e.name for e in directory.stale_own_entries(s["own_manager"])] == ["Year Shelter"]


def test_a_year_before_a_29th_of_february():
    assert directory.year_before(date(2028, 2, 29)) == date(2027, 2, 28)


def test_a_case_is_suggested_what_its_category_needs_in_its_country(two_funds):
    fund, _other, s = two_funds
    _entry(s["own_manager"], name="Medic KE")
    _entry(s["own_manager"], name="Therapist KE", services=["psychosocial"])
    _entry(s["own_manager"], name="Medic CO", countries=["CO"])
    _entry(s["own_manager"], name="School KE", services=["schooling"])
    _entry(
        s["own_manager"],
        name="Old Medic KE",
        verified_on=TODAY - timedelta(days=500),
    )
    medical = make_case(fund, category=Category.MEDICAL, country="KE")
    dependants = make_case(fund, category=Category.DEPENDANTS, country="KE")
    names = [e.name for e in directory.suggestions(s["own_reviewer"], medical)]
    # Verified first, medical care before psychosocial care.
    assert names == ["Medic KE", "Therapist KE", "Old Medic KE"]
    assert [e.name for e in directory.suggestions(s["own_reviewer"], dependants)] == ["School KE"]


# -- Payee chosen from the directory ------------------------------------------------------------


@pytest.fixture
def paying(money_world, make_fund, make_user):
    """A grant of the world's fund, its entries and another fund's."""
    w = money_world
    grant = w.grant("3000", category=Category.MEDICAL)
    other = make_fund("Other Fund")
    other_manager = make_user("manager", fund_id=other.id)
    other_finance = make_user("finance", fund_id=other.id)
    entries = {
        "own": _entry(w.m1, name="Hospital Own", services=["medical"]),
        "other network": _entry(other_manager, name="Hospital Network"),
        "other own": _entry(other_manager, name="Hospital Secret", visibility="fund"),
        "intermediary": _entry(
            other_manager, name="Hawala Trust", services=["payment_intermediary"]
        ),
    }
    for key, entry in entries.items():
        payer = w.finance if key == "own" else other_finance
        directory.set_payment_details(payer, entry, f"ACCOUNT {key.upper()}")
    entries["unpaid"] = _entry(w.m1, name="No Details")
    db.session.commit()
    return w, grant, entries


def test_a_payment_to_an_entry_takes_its_payee_type_and_details(paying):
    w, grant, entries = paying
    payment = pay(w, grant, "100", instalment=0, payee_entry=entries["other network"])
    assert payment.payee_type == PayeeType.VENDOR
    assert payment.payee_details == "Hospital Network\nACCOUNT OTHER NETWORK"
    payment = pay(w, grant, "100", instalment=0, payee_entry=entries["intermediary"])
    assert payment.payee_type == PayeeType.INTERMEDIARY


@pytest.mark.parametrize("key", ["other own", "unpaid"])
def test_a_payment_to_an_entry_the_fund_may_not_pay_is_refused(paying, key):
    """Another fund's entry kept for itself is refused as one that does not exist, an
    entry without payment details as one finance cannot pay; nothing is recorded."""
    w, grant, entries = paying
    with pytest.raises(PaymentError):
        pay(w, grant, "100", instalment=0, payee_entry=entries[key])
    db.session.rollback()
    assert count_rows(Disbursement) == 0


# -- Pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, status",
    [
        ("reviewer", 200),
        ("manager", 200),
        ("finance", 200),
        ("admin", 403),
        ("donor", 403),
        ("applicant", 403),
        ("partner", 403),
    ],
)
def test_only_staff_who_work_on_cases_open_the_directory(client, login_as, role, status):
    login_as(role)
    assert client.get("/directory").status_code == status
    assert client.get("/directory/new").status_code in ((200,) if role == "manager" else (403,))


def test_a_manager_adds_verifies_and_removes_an_entry_through_the_pages(app, client, login_as):
    manager = login_as("manager")
    data = {
        "entry-name": "Casa Refugio",
        "entry-services": ["shelter", "relocation_host"],
        "entry-countries": ["MX", "GT"],
        "entry-languages": ["es"],
        "entry-contact": "Signal only",
        "entry-visibility": "fund",
        "entry-verified_on": (TODAY - timedelta(days=400)).isoformat(),
    }
    refused = client.post("/directory/new", data={**data, "entry-services": []})
    assert refused.status_code == 303
    assert count_rows(DirectoryEntry) == 0
    response = client.post("/directory/new", data=data)
    assert response.status_code == 302
    entry = db.session.execute(sa.select(DirectoryEntry)).scalar_one()
    assert entry.name == "Casa Refugio" and entry.fund_id == manager.fund_id
    page = client.get(response.location).get_data(as_text=True)
    assert "Casa Refugio" in page and "Not verified for 12 months" in page
    listing = client.get("/directory").get_data(as_text=True)
    assert "not verified for 12 months" in listing
    assert "was not verified for 12 months or more" in listing
    client.post(f"/directory/{entry.uid}/verify")
    db.session.refresh(entry)
    assert entry.verified_on == TODAY
    assert "not verified for 12 months" not in client.get("/directory").get_data(as_text=True)
    client.post(f"/directory/{entry.uid}/remove")
    assert count_rows(DirectoryEntry) == 0


def test_the_search_form_is_a_get_with_codes_only(two_funds, app):
    _fund, _other, s = two_funds
    _entry(
        s["own_manager"],
        name="Espacio Escucha",
        services=["psychosocial"],
        countries=["CO"],
        languages=["es"],
    )
    _entry(s["own_manager"], name="Nairobi Clinic")
    client = app.test_client()
    login(client, s["other_manager"])
    page = client.get("/directory?service=psychosocial&country=CO&language=es").get_data(
        as_text=True
    )
    assert "Espacio Escucha" in page and "Nairobi Clinic" not in page
    assert '<form method="get" action="/directory"' in page
    # A value the directory does not know is set aside, not a 500.
    assert client.get("/directory?country=<script>&service=x").status_code == 200


def test_another_funds_entry_kept_for_itself_is_not_found(two_funds, app):
    _fund, _other, s = two_funds
    own = _entry(s["own_manager"], name="Hidden Shelter", visibility="fund")
    network = _entry(s["own_manager"], name="Open Clinic")
    client = app.test_client()
    login(client, s["other_manager"])
    assert client.get(f"/directory/{own.uid}").status_code == 404
    assert "Hidden Shelter" not in client.get("/directory").get_data(as_text=True)
    assert client.get(f"/directory/{network.uid}").status_code == 200
    # Reading a network entry is not keeping it.
    for path in ("edit", "verify", "remove"):
        method = client.get if path == "edit" else client.post
        assert method(f"/directory/{network.uid}/{path}").status_code == 404, path
    assert count_rows(DirectoryEntry) == 2


def test_payment_details_are_shown_to_finance_only(two_funds, app):
    _fund, _other, s = two_funds
    entry = _entry(s["own_manager"])
    directory.set_payment_details(s["own_finance"], entry, "IBAN-CANARY-55")
    db.session.commit()
    for key in ("own_manager", "own_reviewer", "other_manager", "other_reviewer"):
        client = app.test_client()
        login(client, s[key])
        assert "IBAN-CANARY-55" not in client.get(f"/directory/{entry.uid}").get_data(
            as_text=True
        ), key
    for key in ("own_finance", "other_finance"):
        client = app.test_client()
        login(client, s[key])
        assert "IBAN-CANARY-55" in client.get(f"/directory/{entry.uid}").get_data(as_text=True)


def test_finance_pays_an_entry_chosen_on_the_payment_form(paying, app):
    w, grant, entries = paying
    client = app.test_client()
    login(client, w.finance)
    case = f"/applications/{grant.application.uid}"
    page = client.get(case).get_data(as_text=True)
    assert "Hospital Network" in page and "Hospital Secret" not in page
    # The payment form offers no entry without payment details (the directory's
    # suggestions further down the page may name it).
    assert "No Details" not in page.split('id="pay"')[1].split("</form>")[0]
    data = payment_data(grant, **{"pay-payee_details": "", "pay-instalment": 0})
    picked = {**data, "pay-payee_entry": entries["other network"].uid}
    assert client.post(f"{case}/payments", data=picked).status_code == 302
    payment = db.session.execute(sa.select(Disbursement)).scalar_one()
    assert payment.payee_details.startswith("Hospital Network\n")
    assert "Hospital Network" in client.get(case).get_data(as_text=True)
    # Another fund's entry kept for itself, sent by hand: refused, nothing recorded.
    stolen = {
        **data,
        "pay-payee_entry": entries["other own"].uid,
        "pay-idempotency_key": "another-key",
    }
    assert client.post(f"{case}/payments", data=stolen).status_code == 303
    assert count_rows(Disbursement) == 1
    # Neither an entry nor details: refused in words.
    empty = {**data, "pay-idempotency_key": "third-key"}
    assert client.post(f"{case}/payments", data=empty).status_code == 303
    assert count_rows(Disbursement) == 1


def test_the_case_page_suggests_entries_to_its_own_funds_staff(two_funds, app):
    fund, other, s = two_funds
    _entry(s["own_manager"], name="Therapist KE", services=["psychosocial"])
    case = make_case(fund, category=Category.MEDICAL, country="KE")
    client = app.test_client()
    login(client, s["own_reviewer"])
    page = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Who may help, from the directory" in page and "Therapist KE" in page
    client = app.test_client()
    login(client, s["other_reviewer"])
    assert client.get(f"/applications/{case.uid}").status_code == 404


# -- CSV -------------------------------------------------------------------------------------------


def test_the_export_neutralises_formulas_and_is_audited(two_funds, app):
    fund, _other, s = two_funds
    _entry(s["own_manager"], name='=HYPERLINK("http://x")', contact="+1 555 0100")
    _entry(s["other_manager"], name="Not Ours")
    client = app.test_client()
    login(client, s["own_manager"])
    response = client.get("/directory/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert "'=HYPERLINK" in text and "'+1 555 0100" in text
    assert "Not Ours" not in text
    assert _chains("directory.exported") == [fund.id]
    client = app.test_client()
    login(client, s["own_reviewer"])
    assert client.get("/directory/export.csv").status_code == 403


def _csv(*lines):
    return ("\n".join([",".join(csv_file.COLUMNS), *lines]) + "\n").encode()


def test_an_import_adds_and_corrects_entries_all_at_once(two_funds):
    fund, _other, s = two_funds
    entry = _entry(s["own_manager"], name="Old Name")
    data = _csv(
        f"{entry.uid},New Name,medical;psychosocial,KE,,en,Signal,,network,{TODAY}",
        ",Escucha,psychosocial,Colombia,Andean region,es,Wire,Partners,fund,2026-01-05",
    )
    assert directory.import_entries(s["own_manager"], data) == (1, 1)
    db.session.commit()
    db.session.refresh(entry)
    assert entry.name == "New Name" and entry.services == ["medical", "psychosocial"]
    added = next(e for e in directory.own_entries(s["own_manager"]) if e.name == "Escucha")
    assert added.countries == ["CO"] and added.regions == ["Andean region"]
    assert _chains("directory.imported") == [fund.id]


def test_an_import_with_any_wrong_line_stores_nothing_and_says_each_line(two_funds):
    _fund, _other, s = two_funds
    theirs = _entry(s["other_manager"], name="Theirs")
    data = _csv(
        f",Good,medical,KE,,en,Signal,,network,{TODAY}",
        ",,bakery,Atlantis,,xx,,,everyone,yesterday",
        f"{theirs.uid},Steal,medical,KE,,en,Signal,,network,{TODAY}",
        "too,few",
    )
    with pytest.raises(csv_file.EntriesFileError) as refused:
        directory.import_entries(s["own_manager"], data)
    db.session.rollback()
    said = [str(p) for p in refused.value.problems]
    assert "Line 3: the name is empty." in said
    assert any(p.startswith("Line 3: bakery is not a service") for p in said)
    assert "Line 3: Atlantis is not a country." in said
    assert any(p.startswith("Line 3: xx is not a language code") for p in said)
    assert any(p.startswith("Line 3: the visibility is everyone") for p in said)
    assert "Line 3: yesterday is not a date as YYYY-MM-DD." in said
    assert f"Line 4: no entry of your fund has the code {theirs.uid}." in said
    assert any(p.startswith("Line 5: 2 values") for p in said)
    assert not any(p.startswith("Line 2") for p in said)
    assert [e.name for e in directory.search(s["own_manager"])] == ["Theirs"]


def test_an_export_imports_back_unchanged(two_funds):
    _fund, _other, s = two_funds
    _entry(s["own_manager"], name="-Minus Clinic", contact="@handle on Signal")
    text = directory.export_entries(s["own_manager"])
    before = [_fields(e) for e in directory.own_entries(s["own_manager"])]
    assert directory.import_entries(s["own_manager"], text.encode()) == (0, 1)
    db.session.commit()
    assert [_fields(e) for e in directory.own_entries(s["own_manager"])] == before


def test_the_import_page_lists_the_problems_and_stores_nothing(two_funds, app):
    _fund, _other, s = two_funds
    client = app.test_client()
    login(client, s["own_manager"])
    bad = _csv(f",Good,medical,KE,,en,Signal,,network,{TODAY}", ",,medical,KE,,en,S,,fund,x")
    response = client.post("/directory/import", data={"entries": (io.BytesIO(bad), "entries.csv")})
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "Nothing was imported" in page and "Line 3: the name is empty." in page
    assert count_rows(DirectoryEntry) == 0
    good = _csv(f",Good,medical,KE,,en,Signal,,network,{TODAY}")
    response = client.post("/directory/import", data={"entries": (io.BytesIO(good), "entries.csv")})
    assert response.status_code == 302 and count_rows(DirectoryEntry) == 1


def test_the_funds_staff_are_reminded_where_they_start(two_funds, app):
    """The queue (reviewers, managers) and the payments page (finance) of the fund that
    keeps an entry not verified for a year say so, with a link; the other fund's don't."""
    _fund, _other, s = two_funds
    year_ago = directory.year_before(TODAY)
    _entry(s["own_manager"], name="Old Shelter", verified_on=year_ago)
    _entry(s["own_manager"], name="Fresh", verified_on=year_ago + timedelta(days=1))
    words = "1 entry your fund keeps in the directory was not verified for 12 months"
    for key, path in (
        ("own_reviewer", "/cases"),
        ("own_manager", "/cases"),
        ("own_finance", "/payments"),
        ("other_reviewer", "/cases"),
        ("other_finance", "/payments"),
    ):
        client = app.test_client()
        login(client, s[key])
        page = client.get(path).get_data(as_text=True)
        assert (words in page) == key.startswith("own"), key
        assert ('href="/directory#stale"' in page) == key.startswith("own"), key


def test_the_import_page_takes_a_file_up_to_its_megabyte(two_funds, app):
    """A file of 150 entries with long contacts (about 160 KB, more than any other form of
    a signed-in user sends) is imported; a file over 1 MB is refused in words on the
    import's page, not with an error page that loses it."""
    _fund, _other, s = two_funds
    client = app.test_client()
    login(client, s["own_manager"])
    contact = "Signal +254 700 000 000, ask for the duty officer; " * 19
    lines = [f',Clinic {n},medical,KE,,en,"{contact}",,fund,{TODAY}' for n in range(150)]
    data = _csv(*lines)
    assert 128 * 1024 < len(data) < MAX_BYTES
    response = client.post("/directory/import", data={"entries": (io.BytesIO(data), "e.csv")})
    assert response.status_code == 302, response.status_code
    assert count_rows(DirectoryEntry) == 150
    big = _csv(*lines * 7)
    assert len(big) > MAX_BYTES
    # Encoded here, in memory: the test client would spool a body this large to a file
    # it does not close.
    boundary, body = encode_multipart({"entries": FileStorage(io.BytesIO(big), "e.csv")})
    response = client.post(
        "/directory/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 303, response.status_code
    page = client.get(response.location).get_data(as_text=True)
    assert "The file is larger than 1 MB" in page
    assert count_rows(DirectoryEntry) == 150


@pytest.mark.parametrize("step", ["update", "verify", "remove", "payment"])
def test_a_change_to_an_entry_removed_meanwhile_is_refused_in_words(two_funds, step):
    """Two managers on one entry: one removes it while the other's page still shows it.
    The other's correction, verification or removal, or finance's payment details, is
    refused in words: it no longer writes an audit entry of a change to nothing, nor fails
    with a server error on a removal already done."""
    _fund, _other, s = two_funds
    entry = _entry(s["own_manager"])
    entry_id = entry.id
    # The other request: the row is gone, this request's copy of it is not.
    db.session.execute(sa.delete(DirectoryEntry).where(DirectoryEntry.id == entry_id))
    with pytest.raises(directory.DirectoryError, match="removed"):
        if step == "update":
            directory.update_entry(s["own_manager"], entry, **{**_fields(entry), "name": "X"})
        elif step == "verify":
            directory.verify_entry(s["own_manager"], entry)
        elif step == "remove":
            directory.remove_entry(s["own_manager"], entry)
        else:
            directory.set_payment_details(s["own_finance"], entry, "IBAN KE00 1")
    db.session.rollback()


def test_an_import_drops_the_characters_that_make_text_read_otherwise(two_funds):
    """As every form does: a right-to-left override would show a name backwards to every
    fund's staff ("Clinic txet"), and zero-width characters would make two entries' names
    look alike while they differ; the file's cells lose them as the entry's form does."""
    _fund, _other, s = two_funds
    data = _csv(
        f",Clinic \u202etxet\u202c,medical,KE,,en,Sig\u200bnal \u2066+254\u2069,"
        f"Fun\ufeffds,network,{TODAY}"
    )
    assert directory.import_entries(s["own_manager"], data) == (1, 0)
    db.session.commit()
    (entry,) = directory.own_entries(s["own_manager"])
    assert (entry.name, entry.contact, entry.referrers) == ("Clinic txet", "Signal +254", "Funds")
