"""Promises 16 to 19: every route is closed unless public, what is out of scope is a 404,
payees for finance and case details for staff on the case, four eyes and no double
payment.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth.guard import PUBLIC_ENDPOINTS
from hrdfund.cases.models import ApplicationStatus, ConflictDeclaration, Dependant, Document
from hrdfund.core.extensions import db
from hrdfund.disbursements.holds import confirm_held_payment
from hrdfund.disbursements.models import HeldPayment, HoldReason
from hrdfund.disbursements.services import PaymentError
from hrdfund.grants.decisions import (
    SecondApproverError,
    SelfApprovalError,
    approve_with_recorded_rates,
)
from hrdfund.grants.models import Grant
from hrdfund.ledger.balances import pool_available
from hrdfund.ledger.models import Disbursement
from hrdfund.pools import services as pools
from tests.conftest import (
    EUR_USD,
    MoneyWorld,
    count_rows,
    pay,
    signed_in,
    start_application,
)

from .common import PDF, fill_rule, get_closed, upload_document


def test_promise_16_every_route_is_closed_unless_listed_public(app, client):
    """Every route, and one added without any protection, sends a visitor to sign in;
    the only exceptions are the public endpoints (the language form, the page before applying
    and an invitation's link among them)."""
    app.add_url_rule("/promise-unguarded", "promise_unguarded", lambda: "nobody protected this")
    assert set(PUBLIC_ENDPOINTS) == {
        "static",
        "auth.login",
        "auth.code",
        "auth.qr",
        "auth.reset_code",
        "auth.recovery",
        "auth.register",
        "auth.choose_language",
        "auth.invitation_link",
        "auth.invitation",
        "network.directory",
        "cases.before",
    }
    swept = 0
    for rule in app.url_map.iter_rules():
        path = fill_rule(rule, {"filename": "style.css"})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            with client.open(path, method=method) as response:
                assert response.status_code < 500, (method, path)
                if rule.endpoint not in PUBLIC_ENDPOINTS:
                    assert response.status_code == 302 and response.location == "/login", (
                        method,
                        path,
                    )
                    swept += 1
    assert swept >= 40


def _without_token(response):
    return re.sub(rb'name="csrf_token" value="[^"]*"', b"", response.get_data())


def test_promise_17_what_is_out_of_scope_is_a_404_downloads_included(
    app, make_user, make_fund, make_partner_org, make_donor, fund
):
    """Another applicant, another organisation's partner and another fund's staff get the
    very page an unknown id gets, for the case and its document; a donor gets a 404 for
    another donor's pool report."""
    owner = signed_in(app, make_user("applicant"))
    uid = start_application(owner)
    assert upload_document(owner, uid, PDF).status_code == 302
    doc = db.session.execute(sa.select(Document.uid)).scalar_one()
    paths = [f"/applications/{uid}", f"/applications/{uid}/documents/{doc}"]
    assert [get_closed(owner, p).status_code for p in paths] == [200, 200]
    ours, theirs = make_partner_org("Ours"), make_partner_org("Theirs")
    partner = signed_in(app, make_user("partner", partner_organisation_id=ours.id))
    referred = start_application(partner, "medical", consent="y", consent_method="phone")
    assert partner.get(f"/applications/{referred}").status_code == 200
    intruders = [
        make_user("applicant"),
        make_user("partner", partner_organisation_id=theirs.id),
        make_user("reviewer", fund_id=make_fund("Other Fund").id),
    ]
    for intruder in intruders:
        stranger = signed_in(app, intruder)
        for path in [*paths, f"/applications/{referred}"]:
            unknown = path.replace(uid, "0" * 20).replace(referred, "0" * 20)
            unknown = unknown.replace(doc, "1" * 20)
            seen, fake = get_closed(stranger, path), get_closed(stranger, unknown)
            assert seen.status_code == fake.status_code == 404, (intruder.role, path)
            # The sign-out form's token is signed with the second it was made in.
            assert _without_token(seen) == _without_token(fake), (intruder.role, path)
    world = MoneyWorld(fund, make_user, make_donor)
    report = f"/donor/pools/{world.eur.uid}/report?period=2026&format=csv"
    assert (
        get_closed(signed_in(app, make_user("donor", donor_id=world.donor.id)), report).status_code
        == 200
    )
    other_donor = signed_in(app, make_user("donor", donor_id=make_donor("Someone Else").id))
    assert get_closed(other_donor, report).status_code == 404


def test_promise_18_payees_for_finance_case_details_for_staff_on_the_case(
    app, fund, make_user, make_donor, make_fund
):
    """Finance alone sees who was paid; relocation and family details show to the fund's
    reviewers and managers on the case and to no one else (finance sees an approved case's
    money, not its story); a donor never sees a case."""
    payee, details, family = "CANARY-PAYEE-1818", "canary-stay-plan-1818", "canary-family-1818"
    world = MoneyWorld(fund, make_user, make_donor)
    grant = world.grant("1000")
    case = grant.application
    case.details = {"stay_plan": details}
    case.dependants = [Dependant(relation=family, age=9)]
    db.session.commit()
    pay(world, grant, "400", instalment=None, payee_details=payee)
    conflicted = make_user("reviewer")
    db.session.add(ConflictDeclaration(application_id=case.id, user_id=conflicted.id))
    db.session.commit()
    viewers = {
        "finance": world.finance,
        "manager": world.m1,
        "reviewer": world.reviewer,
        "admin": world.admin,
        "donor": make_user("donor", donor_id=world.donor.id),
        "conflicted reviewer": conflicted,
        "other fund's manager": make_user("manager", fund_id=make_fund("Other Fund").id),
    }
    pages = [
        f"/applications/{case.uid}",
        "/",
        "/payments",
        "/payments/follow-up",
        "/cases",
        "/donor",
        f"/pools/{world.eur.uid}",
        "/reports/internal?period=2026",
        "/pools",
        "/admin/users",
    ]
    for name, user in viewers.items():
        viewer = signed_in(app, user)
        case_page = viewer.get(pages[0])
        text = "".join(
            get_closed(viewer, p, follow_redirects=True).get_data(as_text=True) for p in pages
        )
        assert (payee in text) is (name == "finance"), name
        on_the_case = name in ("finance", "manager", "reviewer")
        assert case_page.status_code == (200 if on_the_case else 404), name
        reviewing = name in ("manager", "reviewer")
        assert (details in text) is reviewing and (family in text) is reviewing, name
        if name == "donor":
            assert case.uid not in text


def test_promise_19_four_eyes_no_self_approval_and_no_double_payment(
    app, fund, make_user, make_donor
):
    """The manager who recommended a case cannot approve it; above the threshold (an
    amount in the reporting currency) one manager's approval waits for a second, different
    one; a payment form sent twice records one payment, and the database refuses a second
    row with its key; a payment at a rate far from the table waits for a second person,
    never the one who entered it."""
    world = MoneyWorld(fund, make_user, make_donor)
    app.config["FOUR_EYES_THRESHOLD"] = "500"
    own = world.recommended(reviewer=world.m1)
    db.session.commit()
    with pytest.raises(SelfApprovalError):
        approve_with_recorded_rates(own, world.m1, Decimal(100), [(world.eur.id, Decimal(100))])
    db.session.rollback()
    assert own.status == ApplicationStatus.RECOMMENDED and count_rows(Grant) == 0
    big = world.recommended()
    db.session.commit()
    draws = [(world.eur.id, Decimal(800))]
    available = pool_available(world.eur.id)
    assert approve_with_recorded_rates(big, world.m1, Decimal(800), draws) is None
    db.session.commit()
    assert big.status == ApplicationStatus.AWAITING_SECOND_APPROVAL
    assert count_rows(Grant) == 0 and pool_available(world.eur.id) == available
    with pytest.raises(SecondApproverError):
        approve_with_recorded_rates(big, world.m1, Decimal(800), draws)
    db.session.rollback()
    grant = approve_with_recorded_rates(big, world.m2, Decimal(800), draws)
    db.session.commit()
    assert big.status == ApplicationStatus.APPROVED
    assert pool_available(world.eur.id) == available - Decimal(800)
    first = pay(world, grant, "300", instalment=None, key="promise-19-form")
    again = pay(world, grant, "300", instalment=None, key="promise-19-form")
    assert again.id == first.id and count_rows(Disbursement) == 1
    row = dict(
        db.session.execute(sa.select(Disbursement.__table__).where(Disbursement.id == first.id))
        .mappings()
        .one()
    )
    row.pop("id")
    row["uid"] = "promise19duplicate00"
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.insert(Disbursement.__table__).values(**row))
    db.session.rollback()
    assert count_rows(Disbursement) == 1
    # 540 dollars are worth 490.91 euros: below the 500-euro threshold, one manager.
    dollars = world.recommended(currency="USD")
    db.session.commit()
    assert approve_with_recorded_rates(
        dollars, world.m1, Decimal(540), [(world.usd.id, Decimal(540))]
    )
    db.session.commit()
    # A made-up rate books nothing until a second person confirms it.
    held = pay(
        world,
        grant,
        "100",
        "USD",
        instalment=None,
        rate=Decimal(5),
        rate_source="x",
        rate_reason="x",
    )
    assert isinstance(held, HeldPayment) and count_rows(Disbursement) == 1
    with pytest.raises(PaymentError):
        confirm_held_payment(held, world.finance)
    db.session.rollback()
    assert confirm_held_payment(held, world.m2).confirmed_by_id == world.m2.id
    # A rate is never its own reference: a made-up rate finance writes in the table counts
    # nowhere until a second rate keeper confirms it, and one within the tolerance that
    # finance wrote alone holds finance's own payment at it.
    on, later = date(2026, 2, 2), date(2026, 3, 1)
    pools.record_rate(world.fund.id, world.finance, on, "EUR", "USD", Decimal(1000), "x")
    assert pools.rate_entry(world.fund.id, "EUR", "USD", later)[0] == EUR_USD
    pools.record_rate(world.fund.id, world.finance, later, "EUR", "USD", Decimal("1.11"), "x")
    db.session.commit()
    usd_grant = world.grant("400", pool=world.eur, currency="USD", name="Defender Two")
    own = pay(world, usd_grant, "100", "USD", instalment=None, paid_on=later)
    assert isinstance(own, HeldPayment) and own.why == [HoldReason.OWN_RATE]
