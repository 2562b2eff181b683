"""Payee details (account, phone, name of who was paid) and proofs of payment are seen by
finance only: every page of the app, as every role, with canary payee data."""

import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from hrdfund.core.extensions import db
from hrdfund.ledger.models import Disbursement
from tests.conftest import MoneyWorld, login
from tests.pdfs import make_pdf

CANARY = "CANARY-PAYEE-93XK"
PROOF = make_pdf("Paid to CANARY-PAYEE-93XK")
ROLES = ["applicant", "partner", "reviewer", "manager", "finance", "donor", "admin"]


@pytest.fixture
def paid(app, fund, make_user, make_donor):
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    world.plan(grant, kind="one_off")
    finance = app.test_client()
    login(finance, world.finance)
    from hrdfund.disbursements.services import grant_allocations, grant_instalments

    response = finance.post(
        f"/applications/{grant.application.uid}/payments",
        content_type="multipart/form-data",
        data={
            "pay-allocation": grant_allocations(grant)[0].id,
            "pay-instalment": grant_instalments(grant)[0].id,
            "pay-payee_type": "vendor",
            "pay-payee_details": CANARY,
            "pay-channel": "bank",
            "pay-amount_paid": "1000",
            "pay-currency_paid": "EUR",
            "pay-paid_on": "2026-02-03",
            "pay-idempotency_key": "canary-form",
            "pay-proof": (io.BytesIO(PROOF), "proof.pdf"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    payment = db.session.execute(sa.select(Disbursement)).scalar_one()
    return {"world": world, "grant": grant, "payment": payment}


def _users(paid):
    world = paid["world"]
    make = world.make_user
    return {
        "applicant": world.applicant,
        "partner": make("partner"),
        "reviewer": world.reviewer,
        "manager": world.m1,
        "finance": world.finance,
        "donor": make("donor", donor_id=world.donor.id),
        "admin": world.admin,
    }


def _paths(app, paid):
    """Every GET page, its arguments filled with the case, pool, payment and proof."""
    grant, payment, world = paid["grant"], paid["payment"], paid["world"]
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        args = {}
        for name in rule.arguments:
            if name == "uid":
                if rule.endpoint.startswith("disbursements"):
                    args[name] = payment.uid
                elif rule.endpoint in ("pools.pool",):
                    args[name] = world.eur.uid
                else:
                    args[name] = grant.application.uid
            else:
                args[name] = "x"
        path = rule.rule
        for name, value in args.items():
            path = path.replace(f"<{name}>", value)
        paths.append(path)
    return paths


def _shown(response):
    """What a person reads in a response: a PDF's text, or the page."""
    if response.data.startswith(b"%PDF"):
        return "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    return response.get_data(as_text=True)


@pytest.mark.parametrize("role", ROLES)
def test_only_finance_ever_sees_payee_details_or_proofs(app, paid, role):
    user = _users(paid)[role]
    client = app.test_client()
    login(client, user)
    seen = []
    for path in _paths(app, paid):
        response = client.get(path)
        assert response.status_code != 500, path
        if CANARY in _shown(response):
            seen.append(path)
    if role == "finance":
        case = f"/applications/{paid['grant'].application.uid}"
        assert case in seen and f"/payments/{paid['payment'].uid}/proof" in seen
    else:
        assert seen == [], f"{role} saw payee details on {seen}"
