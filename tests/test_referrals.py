"""Referrals between member funds: fund A refers a case, or a part of it (months 7 to 12 of
a stay), to fund B while the defender's consent stands, sharing only what it chooses; B
opens only that, and accepts (its own case in its queue, under its targets) or declines
with a reason; A may withdraw; the defender's withdrawal of consent stops what B has not
accepted. Every step is written in both funds' records."""

import html
import io
import logging
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import (
    ApplicationStatus,
    Consent,
    ConsentKind,
    Document,
    Urgency,
)
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements import reschedule
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.bounds import PaymentError
from hrdfund.grants import coverage, plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.grants.plans import months_after
from hrdfund.network import funds, keys
from hrdfund.network import referrals as services
from hrdfund.network.models import Referral, ReferralStatus
from hrdfund.ops import retention
from hrdfund.pools import services as pools
from hrdfund.reviews.models import Recommendation, Review, RiskLevel
from tests.conftest import (
    MoneyWorld,
    input_value,
    make_costed_case,
    pay,
    refused_page,
    signed_in,
)
from tests.pdfs import PDF

SECRET_THREAT = "Threat canary: followed home by the Zebra unit"


@pytest.fixture
def two_funds(app, make_user, make_fund, fund):
    """A local fund (A) with a relocation case whose defender agreed to referral, with a
    document and an assessment, and an international fund (B); staff of both."""
    intl = make_fund("International Fund")
    applicant = make_user("applicant")
    case = make_costed_case(
        fund,
        category=Category.RELOCATION,
        urgency=Urgency.URGENT,
        applicant_id=applicant.id,
        defender_name="Amina Canary",
        threat=SECRET_THREAT,
    )
    db.session.add(
        Consent(
            application_id=case.id,
            kind=ConsentKind.REFERRAL,
            method="form",
            given_at=case.created_at,
        )
    )
    db.session.commit()
    return {
        "a": fund,
        "b": intl,
        "case": case,
        "applicant": applicant,
        "a_reviewer": make_user("reviewer"),
        "a_manager": make_user("manager"),
        "b_reviewer": make_user("reviewer", fund_id=intl.id),
        "b_manager": make_user("manager", fund_id=intl.id),
        "b_finance": make_user("finance", fund_id=intl.id),
    }


def _refer(app, w, shares=("answers",), **changes):
    client = signed_in(app, w["a_reviewer"])
    data = {
        "refer-to_fund": w["b"].uid,
        "refer-category": "relocation",
        "refer-months_from": "7",
        "refer-months_to": "12",
        "refer-amount": "3000",
        "refer-currency": "EUR",
        "refer-shares": list(shares),
        "refer-reason": "Our pool ends in June; months 7 to 12 need another fund.",
        "refer-answer_by": (date.today() + timedelta(days=7)).isoformat(),
        **changes,
    }
    response = client.post(f"/applications/{w['case'].uid}/refer", data=data)
    return client, response


def _text(response):
    """What a reader reads on the page: its text without tags."""
    return re.sub(r"<[^>]+>", "", response.get_data(as_text=True))


def _the_referral():
    db.session.expire_all()
    return db.session.execute(sa.select(Referral)).scalar_one()


def _chain_actions(fund_id):
    """The audit actions written to ``fund_id``'s chain, in order."""
    column = getattr(AuditEvent, "chain", None)
    query = sa.select(AuditEvent.action).order_by(AuditEvent.at, AuditEvent.action)
    if column is not None:
        query = query.where(column == fund_id)
    return db.session.execute(query).scalars().all()


def test_a_part_referred_with_consent_is_accepted_into_the_other_funds_queue(app, two_funds):
    w = two_funds
    client, sent = _refer(app, w)
    assert sent.status_code == 302
    referral = _the_referral()
    assert (referral.months_from, referral.months_to, referral.amount) == (7, 12, Decimal(3000))
    assert referral.share_answers and not referral.share_documents
    page = client.get(f"/applications/{w['case'].uid}").get_data(as_text=True)
    assert "International Fund" in page and "Waiting for an answer" in page
    # B's reviewer sees it arrive, with its own first-answer clock (an urgent case: 24 h).
    b = signed_in(app, w["b_reviewer"])
    listing = b.get("/network/referrals").get_data(as_text=True)
    assert "Test Fund" in listing and "months 7 to 12" in listing
    assert services.response_due(referral) == referral.created_at + timedelta(
        hours=app.config["TARGET_RESPONSE_HOURS_URGENT"]
    )
    shown = b.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert SECRET_THREAT in shown and "Amina Canary" in shown  # the answers were shared
    assert "Document 1" not in shown  # documents were not
    # B accepts: its own case, submitted, in its queue, with the part as its budget.
    assert b.post(f"/network/referrals/{referral.uid}/accept").status_code == 302
    referral = _the_referral()
    linked = referral.linked_application
    assert referral.status == ReferralStatus.ACCEPTED
    assert linked.fund_id == w["b"].id and linked.status == ApplicationStatus.SUBMITTED
    assert linked.amount_requested == Decimal(3000) and linked.currency == "EUR"
    assert [line.amount for line in linked.budget_lines] == [Decimal(3000)]
    assert linked.threat == SECRET_THREAT and linked.applicant_id == w["applicant"].id
    assert linked.response_due_at is not None
    assert linked.uid in b.get("/cases").get_data(as_text=True)
    # A's case still belongs to A alone: B's staff cannot open it, A's cannot open B's.
    assert b.get(f"/applications/{w['case'].uid}").status_code == 404
    assert client.get(f"/applications/{linked.uid}").status_code == 404
    # The defender reads which fund handles which part, on both cases.
    mine = signed_in(app, w["applicant"])
    theirs = _text(mine.get(f"/applications/{w['case'].uid}"))
    assert "International Fund handles Relocation, months 7 to 12." in theirs
    other = _text(mine.get(f"/applications/{linked.uid}"))
    assert "at the request of Test Fund" in other
    # Each fund's records say what happened, each in its own chain.
    assert "referral.sent" in _chain_actions(w["a"].id)
    assert "referral.accepted" in _chain_actions(w["a"].id)
    assert "referral.received" in _chain_actions(w["b"].id)
    assert "referral.accepted" in _chain_actions(w["b"].id)


def test_only_what_is_shared_opens_and_a_document_only_through_the_referral(app, two_funds):
    w = two_funds
    owner = signed_in(app, w["applicant"])
    owner.post(
        f"/applications/{w['case'].uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "q.pdf")},
    )
    # The defender is told who opens it, a fund it is referred to with consent included.
    said = owner.get(f"/applications/{w['case'].uid}").get_data(as_text=True)
    assert "Only you and the staff of the funds working on your case can open it." in said
    doc = db.session.execute(sa.select(Document)).scalar_one()
    _refer(app, w, shares=("documents",))
    referral = _the_referral()
    b = signed_in(app, w["b_manager"])
    page = b.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert SECRET_THREAT not in page and "Amina Canary" not in page
    got = b.get(f"/network/referrals/{referral.uid}/documents/{doc.uid}")
    assert got.status_code == 200 and got.data.startswith(b"%PDF")
    assert b.get(f"/applications/{w['case'].uid}/documents/{doc.uid}").status_code == 404
    # B's finance, and a third fund, open nothing.
    assert signed_in(app, w["b_finance"]).get(f"/network/referrals/{referral.uid}").status_code in (
        403,
        404,
    )


def test_a_fund_that_declined_reads_only_what_was_asked(app, two_funds):
    """Shared the answers and the documents, the fund asked reads them while it decides;
    once it declines, what was asked and why, and its own answer, stay on its page; the
    defender's words and documents close to it."""
    w = two_funds
    signed_in(app, w["applicant"]).post(
        f"/applications/{w['case'].uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "q.pdf")},
    )
    doc = db.session.execute(sa.select(Document)).scalar_one()
    _refer(app, w, shares=("answers", "documents"))
    referral = _the_referral()
    b = signed_in(app, w["b_reviewer"])
    url = f"/network/referrals/{referral.uid}"
    assert SECRET_THREAT in b.get(url).get_data(as_text=True)
    assert b.get(f"{url}/documents/{doc.uid}").status_code == 200
    b.post(f"{url}/decline", data={"decline-reason": "Our medical pool is spent."})
    assert _the_referral().status == ReferralStatus.DECLINED
    page = b.get(url).get_data(as_text=True)
    assert "Our pool ends in June" in page and "Our medical pool is spent." in page
    assert SECRET_THREAT not in page and "Amina Canary" not in page
    # It says why what was shared is gone, not that nothing was shared.
    assert "Your fund declined: what the referring fund shared is closed to it now." in (
        html.unescape(page)
    )
    assert "Nothing but what is asked, and why." not in page
    assert b.get(f"{url}/documents/{doc.uid}").status_code == 404


def test_nothing_shared_shows_only_what_is_asked_and_why(app, two_funds):
    w = two_funds
    _refer(app, w, shares=())
    referral = _the_referral()
    page = signed_in(app, w["b_reviewer"]).get(f"/network/referrals/{referral.uid}")
    text = page.get_data(as_text=True)
    assert "Nothing but what is asked, and why." in text
    assert "Our pool ends in June" in text
    assert SECRET_THREAT not in text and "Amina Canary" not in text and w["case"].uid not in text


def test_withdrawn_consent_stops_what_was_not_accepted(app, two_funds):
    w = two_funds
    _refer(app, w)
    referral = _the_referral()
    owner = signed_in(app, w["applicant"])
    owner.post(f"/applications/{w['case'].uid}/consents/referral/withdraw")
    db.session.expire_all()
    assert not services.consent_stands(w["case"])
    b = signed_in(app, w["b_manager"])
    stopped = "The defender withdrew consent to referral: nothing more is shared."
    _closed(b, b.get(f"/network/referrals/{referral.uid}"), stopped)
    _closed(b, b.post(f"/network/referrals/{referral.uid}/accept"), stopped)
    assert _the_referral().status == ReferralStatus.PENDING
    assert _the_referral().linked_application_id is None
    a = signed_in(app, w["a_reviewer"])
    page = a.get(f"/applications/{w['case'].uid}").get_data(as_text=True)
    assert "Stopped: the defender withdrew consent to referral" in page
    # And no new referral is offered.
    assert "has not agreed that the case be referred" in page


def test_a_referral_of_an_application_the_defender_withdrew_shares_nothing_more(app, two_funds):
    """Withdrawn by its defender while a referral of it waits, the application is no longer
    open to the fund asked (it read the case and its documents, and could take it on):
    its pages and the answer lead to its list, which says why."""
    w = two_funds
    _refer(app, w, shares=("answers", "documents"))
    referral = _the_referral()
    b = signed_in(app, w["b_manager"])
    assert b.get(f"/network/referrals/{referral.uid}").status_code == 200
    owner = signed_in(app, w["applicant"])
    assert owner.post(f"/applications/{w['case'].uid}/withdraw", data={}).status_code == 302
    stopped = "The defender withdrew the application: nothing of it is shared any more."
    _closed(b, b.get(f"/network/referrals/{referral.uid}"), stopped)
    _closed(b, b.post(f"/network/referrals/{referral.uid}/accept"), stopped)
    assert _the_referral().status == ReferralStatus.PENDING
    assert _the_referral().linked_application_id is None
    assert services.waiting_count(w["b_manager"]) == 0
    listed = html.unescape(b.get("/network/referrals").get_data(as_text=True))
    assert "Stopped: the defender withdrew the application" in listed
    with pytest.raises(services.ReferralError, match="withdrew the application"):
        services.accept_referral(w["b_manager"], referral)
    db.session.rollback()


def test_withdrawn_consent_stops_what_an_accepted_referral_reads_and_its_onward_referral(
    app, two_funds, make_fund
):
    """Accepted, the other fund keeps its own case; once the defender withdraws consent it
    reads nothing more of the referred case (a document added since included) and cannot
    refer its own case onward to a third fund."""
    w = two_funds
    owner = signed_in(app, w["applicant"])
    _refer(app, w, shares=("answers", "documents"))
    referral = _the_referral()
    b = signed_in(app, w["b_manager"])
    assert b.post(f"/network/referrals/{referral.uid}/accept").status_code == 302
    linked = _the_referral().linked_application
    assert b.get(f"/network/referrals/{referral.uid}").status_code == 200
    owner.post(f"/applications/{w['case'].uid}/consents/referral/withdraw")
    owner.post(
        f"/applications/{w['case'].uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "after.pdf")},
    )
    db.session.expire_all()
    later = db.session.execute(sa.select(Document)).scalar_one()
    stopped = "The defender withdrew consent to referral: nothing more is shared."
    _closed(b, b.get(f"/network/referrals/{referral.uid}"), stopped)
    _closed(b, b.get(f"/network/referrals/{referral.uid}/documents/{later.uid}"), stopped)
    # Its own case stays its own; referring it onward is refused.
    assert b.get(f"/applications/{linked.uid}").status_code == 200
    assert not services.consent_stands(linked)
    third = make_fund("Third Fund")
    sent = b.post(
        f"/applications/{linked.uid}/refer",
        data={
            "refer-to_fund": third.uid,
            "refer-category": "relocation",
            "refer-amount": "1000",
            "refer-currency": "EUR",
            "refer-shares": ["answers"],
            "refer-reason": "Onward",
            "refer-answer_by": (date.today() + timedelta(days=7)).isoformat(),
        },
    )
    assert sent.status_code in (302, 303)
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 1


def test_without_consent_nothing_can_be_referred(app, two_funds):
    w = two_funds
    db.session.execute(sa.update(Consent).values(withdrawn_at=utcnow()))
    db.session.commit()
    client, sent = _refer(app, w)
    page = refused_page(client, sent).get_data(as_text=True)
    assert "has not agreed" in page
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 0


def test_a_referral_is_refused_while_consent_is_withdrawn_and_allowed_once_given_again(
    app, two_funds
):
    w = two_funds
    owner = signed_in(app, w["applicant"])
    consents_url = f"/applications/{w['case'].uid}/consents/referral"
    assert owner.post(f"{consents_url}/withdraw").status_code == 302
    client, sent = _refer(app, w)
    assert "has not agreed" in refused_page(client, sent).get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 0
    assert owner.post(f"{consents_url}/give").status_code == 302
    db.session.expire_all()
    assert services.consent_stands(w["case"])
    client, sent = _refer(app, w)
    assert sent.status_code == 302, sent.status_code
    referral = _the_referral()
    assert referral.status == ReferralStatus.PENDING
    b = signed_in(app, w["b_manager"])
    assert b.get(f"/network/referrals/{referral.uid}").status_code == 200
    # Withdrawn again: the referral waiting stops from then on.
    owner.post(f"{consents_url}/withdraw")
    stopped = "The defender withdrew consent to referral: nothing more is shared."
    _closed(b, b.get(f"/network/referrals/{referral.uid}"), stopped)
    grants = (
        db.session.execute(
            sa.select(Consent).where(Consent.kind == ConsentKind.REFERRAL).order_by(Consent.id)
        )
        .scalars()
        .all()
    )
    assert [g.withdrawn_at is not None for g in grants] == [True, True]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"refer-months_to": ""}, "the first and the last month, or neither"),
        ({"refer-months_from": "9", "refer-months_to": "3"}, "no later than the last"),
        ({"refer-amount": "100.005"}, "may mean thousands"),
        ({"refer-amount": "0.005"}, "two decimal places"),
        ({"refer-amount": "0"}, "above zero"),
        # The case asks 6,000 EUR: a referral never asks another fund for more.
        ({"refer-amount": "6000.01"}, "at most what the application asks"),
        ({"refer-amount": "999999999999", "refer-currency": "XOF"}, "No exchange rate"),
        # CFA francs have no cents: nobody can be paid half a franc.
        ({"refer-amount": "500.50", "refer-currency": "XOF"}, "has no cents"),
        ({"refer-answer_by": "2020-01-01"}, "cannot be in the past"),
        ({"refer-answer_by": "9999-12-31"}, "Ask for an answer within a year."),
        ({"refer-to_fund": "nosuchfund0000000000"}, "Not a valid choice"),
        ({"refer-reason": ""}, "Say why."),
    ],
)
def test_a_referral_the_rules_refuse_says_why_and_records_nothing(app, two_funds, changes, words):
    client, sent = _refer(app, two_funds, **changes)
    page = refused_page(client, sent).get_data(as_text=True)
    assert words in page
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 0


def test_referrals_together_ask_at_most_what_the_defender_asked(
    app, two_funds, make_fund, make_user
):
    """Two funds asked 4,000 and 2,000 of a case asking 6,000: a third asking one cent more
    is refused, in words that say what is asked already; once one of them declines, its
    part may be asked of another fund. Another currency is weighed at the table rate."""
    w, later = two_funds, date.today() + timedelta(days=3)
    third = make_fund("Third Fund")
    make_user("reviewer", fund_id=third.id)

    def refer(to_fund, amount, currency="EUR"):
        part = services.Part(Category.RELOCATION, None, None, Decimal(amount), currency)
        return services.refer_case(
            w["a_reviewer"], w["case"], to_fund, part, (), "Part of the need", later
        )

    refer(w["b"], "4000")
    fourth = make_fund("Fourth Fund")
    make_user("manager", fund_id=fourth.id)
    # The refusal says what is left to ask: the reader need not work it out.
    with pytest.raises(services.ReferralError, match="This referral may ask €2,000.00 at most"):
        refer(third, "2500")
    db.session.rollback()
    second = refer(third, "2000")
    db.session.commit()
    with pytest.raises(services.ReferralError, match="already cover €6,000.00") as refusal:
        refer(fourth, "0.01")
    assert "This referral may ask €0.00 at most." in str(refusal.value)
    db.session.rollback()
    second.status = ReferralStatus.DECLINED  # as answering "decline" leaves it
    db.session.commit()
    with pytest.raises(services.ReferralError, match="No exchange rate from USD to EUR"):
        refer(fourth, "100", "USD")
    db.session.rollback()
    finance = make_user("finance")
    entry = pools.record_rate(w["a"].id, finance, date.today(), "USD", "EUR", Decimal("0.5"), "ECB")
    pools.confirm_rate(entry, w["a_manager"])
    assert refer(fourth, "4000", "USD").amount == Decimal("4000.00")  # worth 2,000 EUR
    db.session.commit()


def test_what_the_fund_granted_itself_counts_in_what_may_be_referred(
    app, two_funds, make_user, make_donor
):
    """A case asking 6,000 the fund granted 4,000 itself: another fund may be asked 2,000
    more, not a cent beyond, where the two together could ask twice the need."""
    w, later = two_funds, date.today() + timedelta(days=3)
    world = MoneyWorld(w["a"], make_user, make_donor)
    _recommend(w["case"], world.reviewer)
    approve_with_recorded_rates(w["case"], world.m1, Decimal(4000), [(world.eur.id, Decimal(4000))])
    db.session.commit()

    def refer(amount):
        part = services.Part(Category.RELOCATION, None, None, Decimal(amount), "EUR")
        return services.refer_case(w["a_reviewer"], w["case"], w["b"], part, (), "Rest", later)

    with pytest.raises(services.ReferralError, match="grant and the referrals"):
        refer("2000.01")
    db.session.rollback()
    assert refer("2000").amount == Decimal("2000.00")


def test_a_referral_to_the_funds_own_self_or_a_suspended_fund_is_refused(app, two_funds):
    w = two_funds
    part = services.Part(Category.RELOCATION, 7, 12, Decimal(3000), "EUR")
    later = date.today() + timedelta(days=3)
    for target in (w["a"], None):
        with pytest.raises(services.ReferralError):
            services.refer_case(w["a_reviewer"], w["case"], target, part, (), "x", later)
        db.session.rollback()
    w["b"].suspended_at = utcnow()
    db.session.commit()
    with pytest.raises(services.ReferralError):
        services.refer_case(w["a_reviewer"], w["case"], w["b"], part, (), "x", later)


def test_a_fund_with_no_one_to_answer_is_not_offered_nor_taken(app, two_funds, make_user):
    """A fund just made by the network's administrator has only its own administrator:
    no reviewer or manager reads a referral there, so the form does not offer it and a
    referral sent to it anyway is refused. Once it has a manager, it is offered; the
    manager deactivated, it is not."""
    w = two_funds
    nobody = funds.create_fund(
        make_user("network_admin"), "Newly Made Fund", "new.fund.admin", "x"
    )[0]
    db.session.commit()
    client = signed_in(app, w["a_reviewer"])
    page = client.get(f"/applications/{w['case'].uid}").get_data(as_text=True)
    assert "International Fund" in page and "Newly Made Fund" not in page
    _client, response = _refer(app, w, **{"refer-to_fund": nobody.uid})
    assert "Not a valid choice" in _text(refused_page(_client, response))
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 0
    part = services.Part(Category.RELOCATION, 7, 12, Decimal(3000), "EUR")
    later = date.today() + timedelta(days=3)
    with pytest.raises(services.ReferralError, match="Choose another member fund"):
        services.refer_case(w["a_reviewer"], w["case"], nobody, part, (), "x", later)
    db.session.rollback()
    manager = make_user("manager", fund_id=nobody.id)
    assert "Newly Made Fund" in client.get(f"/applications/{w['case'].uid}").get_data(as_text=True)
    manager.active = False
    db.session.commit()
    assert nobody not in services.other_funds(w["case"])


def _partner(owner, name, remote, make_user):
    """``remote``'s key registered by ``owner``'s administrator as a partner fund named
    ``name`` on another server."""
    keys.make_keys(remote)
    key = keys.current_key(remote)
    admin = make_user("admin", fund_id=owner.id)
    return keys.register_partner(admin, owner, name, keys.key_line(remote, key), key.fingerprint)


def test_a_partner_funds_name_is_its_owners_alone(app, two_funds, make_fund, make_user):
    """Fund A registers a partner on another server; fund B registering its own partner
    of that name is not told A has one. Within A, the name is taken (case aside), as a
    member fund's is; a member fund may share it, and A's form to refer a case says which
    one is on another server."""
    w = two_funds
    a, b = w["a"], w["b"]
    _partner(a, "Harbour Fund", make_fund("Remote One"), make_user)
    db.session.commit()
    assert _partner(b, "Harbour Fund", make_fund("Remote Two"), make_user).elsewhere
    db.session.commit()
    for name in ("HARBOUR fund", "International Fund"):
        with pytest.raises(keys.PartnerError, match="already named"):
            _partner(a, name, make_fund(f"Remote {name}"), make_user)
        db.session.rollback()
    funds.create_fund(make_user("network_admin"), "Harbour Fund", "harbour.admin", "x")
    db.session.commit()
    harbour = next(f for f in funds.member_funds() if f.name == "Harbour Fund")
    make_user("reviewer", fund_id=harbour.id)
    page = signed_in(app, w["a_reviewer"]).get(f"/applications/{w['case'].uid}")
    text = html.unescape(page.get_data(as_text=True))
    assert ">Harbour Fund<" in text and ">Harbour Fund, on another server<" in text


def test_a_referral_page_leads_back_to_the_case_and_the_list(app, two_funds):
    """The referring fund's page of a referral links to its case; the fund asked has no
    way into the other fund's case, only to its list of referrals."""
    w = two_funds
    _refer(app, w)
    referral = _the_referral()
    page = signed_in(app, w["a_manager"]).get(f"/network/referrals/{referral.uid}")
    text = page.get_data(as_text=True)
    assert f'href="/applications/{w["case"].uid}#referrals">Back to the case' in text
    assert 'href="/network/referrals">Every referral' in text
    theirs = signed_in(app, w["b_reviewer"]).get(f"/network/referrals/{referral.uid}")
    text = theirs.get_data(as_text=True)
    assert "Back to the case" not in text and f"/applications/{w['case'].uid}" not in text
    assert 'href="/network/referrals">Every referral' in text


def test_declined_with_a_reason_the_referring_fund_reads_it(app, two_funds):
    w = two_funds
    _refer(app, w)
    referral = _the_referral()
    b = signed_in(app, w["b_reviewer"])
    empty = b.post(f"/network/referrals/{referral.uid}/decline", data={"decline-reason": ""})
    assert "Say why the fund declines." in refused_page(b, empty).get_data(as_text=True)
    b.post(
        f"/network/referrals/{referral.uid}/decline",
        data={"decline-reason": "Our relocation pool is spent until March."},
    )
    assert _the_referral().status == ReferralStatus.DECLINED
    a = signed_in(app, w["a_manager"])
    page = a.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert "Declined" in page and "Our relocation pool is spent until March." in page
    # Answered once: a second answer is refused.
    again = b.post(f"/network/referrals/{referral.uid}/accept")
    assert again.status_code == 302
    assert _the_referral().status == ReferralStatus.DECLINED


def test_a_withdrawn_referral_opens_nothing_more(app, two_funds):
    w = two_funds
    a, _sent = _refer(app, w)
    referral = _the_referral()
    # The referring fund withdraws it from the referral's own page too.
    page = a.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert f'action="/network/referrals/{referral.uid}/withdraw"' in page
    assert "International Fund then opens nothing more of the case" in html.unescape(page)
    assert a.post(f"/network/referrals/{referral.uid}/withdraw").status_code == 302
    page = a.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert "/withdraw" not in page and "Withdrawn" in page
    assert _the_referral().status == ReferralStatus.WITHDRAWN
    b = signed_in(app, w["b_manager"])
    # B, who had it, reads that it was withdrawn, and when, where it looks for it: its
    # list (no link to it any more), an old link, an answer sent after the withdrawal.
    day = f"{utcnow():%-d %B %Y}"
    gone = f"Test Fund withdrew this referral on {day}: nothing of the case is shared any more."
    listing = _closed(b, b.get(f"/network/referrals/{referral.uid}"), gone)
    assert f"/network/referrals/{referral.uid}" not in listing
    assert f"Withdrawn ({day})" in listing
    _closed(b, b.post(f"/network/referrals/{referral.uid}/accept"), gone)
    assert _the_referral().status == ReferralStatus.WITHDRAWN
    # B cannot withdraw A's referral, nor A answer its own.
    _refer(app, w)
    second = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.PENDING)
    ).scalar_one()
    assert b.post(f"/network/referrals/{second.uid}/withdraw").status_code == 302
    assert a.post(f"/network/referrals/{second.uid}/accept").status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, second.id).status == ReferralStatus.PENDING


def _closed(client, response, words):
    """The fund asked, opening or answering a referral it had that shares nothing any
    more, is sent to its list of referrals, which says why and holds none of the case:
    that list's page."""
    assert response.status_code == 302 and response.location == "/network/referrals"
    page = html.unescape(client.get(response.location).get_data(as_text=True))
    assert words in page and SECRET_THREAT not in page
    return page


def test_a_third_fund_and_other_roles_see_nothing(app, two_funds, make_fund, make_user):
    w = two_funds
    _refer(app, w, shares=("answers", "documents", "assessment"))
    referral = _the_referral()
    third = make_fund("Third Fund")
    for user in (
        make_user("reviewer", fund_id=third.id),
        make_user("manager", fund_id=third.id),
        w["b_finance"],
        make_user("admin", fund_id=w["b"].id),
    ):
        client = signed_in(app, user)
        got = client.get(f"/network/referrals/{referral.uid}")
        assert got.status_code in (403, 404), user.login
        listing = client.get("/network/referrals")
        assert SECRET_THREAT not in listing.get_data(as_text=True)


def test_who_declared_a_conflict_on_the_case_a_referral_made_opens_nothing_of_it(
    app, two_funds, make_user
):
    """Declaring a conflict of interest takes a person off a case for good: the referral
    that made it no longer lists or opens for them, nor what it shared, while their
    colleagues keep it."""
    w = two_funds
    signed_in(app, w["applicant"]).post(
        f"/applications/{w['case'].uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "q.pdf")},
    )
    doc = db.session.execute(sa.select(Document)).scalar_one()
    _refer(app, w, shares=("answers", "documents", "assessment"))
    referral = _the_referral()
    colleague = make_user("reviewer", fund_id=w["b"].id)
    b = signed_in(app, w["b_reviewer"])
    assert b.post(f"/network/referrals/{referral.uid}/accept").status_code == 302
    linked = _the_referral().linked_application
    declared = b.post(f"/applications/{linked.uid}/conflict", data={"conflict-confirm": "y"})
    assert declared.status_code == 302
    assert b.get(f"/applications/{linked.uid}").status_code == 404
    assert b.get(f"/network/referrals/{referral.uid}").status_code in (403, 404)
    got = b.get(f"/network/referrals/{referral.uid}/documents/{doc.uid}")
    assert got.status_code in (403, 404)
    listing = b.get("/network/referrals").get_data(as_text=True)
    assert referral.uid not in listing and SECRET_THREAT not in listing
    other = signed_in(app, colleague)
    assert referral.uid in other.get("/network/referrals").get_data(as_text=True)
    shown = other.get(f"/network/referrals/{referral.uid}").get_data(as_text=True)
    assert SECRET_THREAT in shown


def _recommend(case, reviewer):
    """Move a sent case to recommended, as a review does."""
    case.status = ApplicationStatus.RECOMMENDED
    db.session.add(
        Review(
            application_id=case.id,
            reviewer_id=reviewer.id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency=case.currency,
        )
    )
    db.session.flush()


def _co_funded(app, w, make_user, make_donor, b_from=6, monkeypatch=None, a_plans=True):
    """Fund A pays months 1 to 6 of a relocation stipend from this month on, from its
    pool; fund B, which accepted the referral of months 7 to 12, plans six months from
    month ``b_from`` + 1 from its own (over A's months, as planned before that was
    refused, given ``monkeypatch``; none when ``b_from`` is None): (world A, world B, A's
    grant, B's grant, the first month). A plans nothing unless ``a_plans``."""
    b = w["b"]
    world_a = MoneyWorld(w["a"], make_user, make_donor)
    world_b = MoneyWorld(
        b,
        lambda role, **kw: make_user(
            role, **({} if role == "applicant" else {"fund_id": b.id}), **kw
        ),
        lambda name, fund_id=None: make_donor(name, b.id),
    )
    world_b.eur.name = "Pool Of The Other Fund"
    db.session.commit()
    case = w["case"]
    _refer(app, w)
    referral = _the_referral()
    signed_in(app, w["b_manager"]).post(f"/network/referrals/{referral.uid}/accept")
    linked = _the_referral().linked_application
    first = date(utcnow().year, utcnow().month, 1)
    _recommend(case, world_a.reviewer)
    grant_a = approve_with_recorded_rates(
        case, world_a.m1, Decimal(3000), [(world_a.eur.id, Decimal(3000))]
    )
    if a_plans:
        plans.create_plan(grant_a, world_a.m1, "stipend", first, count=6)
    _recommend(linked, world_b.reviewer)
    grant_b = approve_with_recorded_rates(
        linked, world_b.m1, Decimal(3000), [(world_b.eur.id, Decimal(3000))]
    )
    if monkeypatch is not None:
        monkeypatch.setattr(plans, "check_months_free", lambda *args: None)
    if b_from is not None:
        plans.create_plan(grant_b, world_b.m1, "stipend", months_after(first, b_from), count=6)
    if monkeypatch is not None:
        monkeypatch.undo()
    db.session.commit()
    return world_a, world_b, grant_a, grant_b, first


def test_a_co_funded_stay_is_one_plan_and_both_coverage_pages_show_twelve_months(
    app, two_funds, make_user, make_donor
):
    """Fund A pays months 1 to 6 of a relocation from its pool, fund B months 7 to 12 from
    its own: each fund's coverage shows the other's months by its name only, neither lists
    the stay as ending with nothing after, and the case pages hold one support plan with
    each fund's committed and paid figures."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, first = _co_funded(app, w, make_user, make_donor)
    case, linked = w["case"], grant_b.application
    pay(world_b, grant_b, Decimal(500))
    a_page = signed_in(app, w["a_manager"]).get("/coverage").get_data(as_text=True)
    b_page = signed_in(app, w["b_manager"]).get("/coverage").get_data(as_text=True)
    # A's row: its own six months in figures, then six months in B's name; and the other way.
    a_row = a_page[a_page.index(case.uid) :].split("</tr>")[0]
    b_row = b_page[b_page.index(linked.uid) :].split("</tr>")[0]
    assert a_row.count("500.00") == 6 and a_row.count("International Fund") == 6
    assert b_row.count("Test Fund") == 6 and b_row.count("500.00") == 6
    # Ending in six months, but another fund follows on: not listed as ending uncovered.
    ending = coverage.ending_soon(w["a_manager"], months_after(first, 5), 60)
    assert case.id not in [application.id for application, _g, _p in ending]
    # One plan, each fund's figures: A reads B's committed and paid for this case, no more.
    page = signed_in(app, w["a_manager"]).get(f"/applications/{case.uid}").get_data(as_text=True)
    plan = page[page.index("One support plan across the funds") :].split("</table>")[0]
    assert "International Fund" in plan and "€3,000.00" in plan and "€500.00" in plan
    assert world_b.eur.name not in page  # nothing of B's pools


def test_the_fund_asked_plans_the_months_asked_from_a_form_filled_in_for_them(
    app, two_funds, make_user, make_donor
):
    """Fund B accepted months 7 to 12 of a stay fund A pays from this month: the plan form
    of B's case says so, filled in as a six-month stipend from A's seventh month; sent as
    it is, B's plan pays months 7 to 12, after A's."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, first = _co_funded(
        app, w, make_user, make_donor, b_from=None
    )
    linked = grant_b.application
    manager = signed_in(app, w["b_manager"])
    page = manager.get(f"/applications/{linked.uid}").get_data(as_text=True)
    seventh = months_after(first, 6)
    month = f"{seventh:%B} {seventh.year}"
    assert (
        f"Test Fund asked your fund for months 7 to 12 of the stay: by its stipend, they "
        f"start in {month}. The form is filled in for them." in html.unescape(page)
    )
    assert input_value(page, "plan-starts_on") == seventh.isoformat()
    assert input_value(page, "plan-count") == "6"
    assert re.search(r'<option selected value="stipend">|<option value="stipend" selected', page)
    sent = manager.post(
        f"/applications/{linked.uid}/plan",
        data={
            "plan-kind": "stipend",
            "plan-starts_on": input_value(page, "plan-starts_on"),
            "plan-count": input_value(page, "plan-count"),
            "plan-interval_days": input_value(page, "plan-interval_days"),
        },
    )
    assert sent.status_code == 302, sent.get_data(as_text=True)[:500]
    db.session.expire_all()
    months = [i.period_month for i in grant_b.plan.instalments]
    assert months == [months_after(first, n) for n in range(6, 12)]


def test_the_months_asked_are_said_before_the_referring_fund_plans_them(
    app, two_funds, make_user, make_donor
):
    """Before fund A planned its stipend, B's form names the months asked, with nothing to
    count them from; a case of B that no referral asked months of says nothing of them."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, first = _co_funded(
        app, w, make_user, make_donor, b_from=None, a_plans=False
    )
    manager = signed_in(app, w["b_manager"])
    page = html.unescape(
        manager.get(f"/applications/{grant_b.application.uid}").get_data(as_text=True)
    )
    assert (
        "Test Fund asked your fund for months 7 to 12 of the stay. It has no stipend on "
        "this server to count them from: choose the date of the first." in page
    )
    assert input_value(page, "plan-count") == "6"
    assert not re.search(r'<input[^>]*name="plan-starts_on"[^>]*value="[^"]', page)
    own = world_b.grant()
    page = manager.get(f"/applications/{own.application.uid}").get_data(as_text=True)
    assert "asked your fund for months" not in page
    assert input_value(page, "plan-count") == "1"


def test_a_fund_may_not_plan_or_move_its_months_of_a_shared_stay_onto_the_others(
    app, two_funds, make_user, make_donor
):
    """Fund B pays months 7 to 12 of the stay: moving them to start this month, onto the
    months fund A's plan pays, is refused in A's name, as a plan over them would have
    been; after A's months, they move."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, first = _co_funded(app, w, make_user, make_donor)
    with pytest.raises(plans.PlanError, match="Test Fund's plan pays"):
        reschedule.move_instalments(grant_b, world_b.m1, utcnow().date())
    db.session.rollback()
    with pytest.raises(plans.PlanError, match="International Fund's plan pays"):
        plans.check_months_free(grant_a.application_id, "stipend", [months_after(first, 8)])
    later = months_after(first, 7)
    assert reschedule.move_instalments(grant_b, world_b.m1, later)[0].due_on == later


def test_a_month_of_a_shared_stay_is_paid_once_whichever_fund_pays(
    app, two_funds, make_user, make_donor, monkeypatch
):
    """Two plans of a shared stay hold the same months (planned so before the move was
    refused): the second fund to pay a month is refused, in the first one's name,
    whichever comes first; a payment taken back in full frees the month."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, first = _co_funded(
        app, w, make_user, make_donor, b_from=0, monkeypatch=monkeypatch
    )
    paid_a = pay(world_a, grant_a, Decimal(500), instalment=1)
    month = first.strftime("%B %Y")
    with pytest.raises(PaymentError, match=f"Test Fund paid {month} of this stay already"):
        pay(world_b, grant_b, Decimal(500), instalment=1)
    db.session.rollback()
    payments.reverse_disbursement(paid_a, world_a.finance, "sent twice")
    db.session.commit()
    assert pay(world_b, grant_b, Decimal(500), instalment=1).amount == Decimal(500)
    pay(world_b, grant_b, Decimal(500), instalment=2)
    second = months_after(first, 1).strftime("%B %Y")
    with pytest.raises(PaymentError, match=f"International Fund paid {second}"):
        pay(world_a, grant_a, Decimal(500), instalment=2)


def test_two_funds_paying_a_month_of_a_shared_stay_at_once_pay_it_once(
    app, two_funds, make_user, make_donor, monkeypatch
):
    """Both funds' finance officers pay the first month of the stay at the same moment:
    the referral that links the cases is locked while each checks, so one payment is
    booked and the other refused, whichever comes first."""
    w = two_funds
    world_a, world_b, grant_a, grant_b, _first = _co_funded(
        app, w, make_user, make_donor, b_from=0, monkeypatch=monkeypatch
    )
    sides = [(grant_a.id, world_a.finance.id), (grant_b.id, world_b.finance.id)]
    db.session.rollback()
    outcomes, start = [], threading.Barrier(2)

    def pay_first_month(grant_id, finance_id):
        from hrdfund.auth.models import User
        from hrdfund.grants.models import Grant

        with app.app_context():
            try:
                start.wait()
                finance = db.session.get(User, finance_id)
                grant = db.session.get(Grant, grant_id)
                pay(SimpleNamespace(finance=finance), grant, Decimal(500), instalment=1)
                outcomes.append("paid")
            except PaymentError as exc:
                db.session.rollback()
                outcomes.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=pay_first_month, args=side) for side in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[-1] == "paid" and "of this stay already" in sorted(outcomes)[0]


def test_purging_either_case_empties_the_referrals_words(app, two_funds):
    """Retention keeps which fund handled which part, never why: the reasons go when the
    other fund's case or the referred case is purged."""
    w = two_funds
    b = signed_in(app, w["b_reviewer"])
    _refer(app, w)
    first = _the_referral()
    b.post(f"/network/referrals/{first.uid}/accept")
    linked_id = _the_referral().linked_application_id
    retention.purge(retention.PurgePlan(cutoff=utcnow(), cases=[linked_id]))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Referral, first.id).reason is None
    assert db.session.get(Referral, first.id).status == ReferralStatus.ACCEPTED
    _refer(app, w)
    second = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.PENDING)
    ).scalar_one()
    b.post(
        f"/network/referrals/{second.uid}/decline",
        data={"decline-reason": "Our relocation pool is spent."},
    )
    db.session.expire_all()
    assert db.session.get(Referral, second.id).decline_reason == "Our relocation pool is spent."
    retention.purge(retention.PurgePlan(cutoff=utcnow(), cases=[w["case"].id]))
    db.session.commit()
    db.session.expire_all()
    gone = db.session.get(Referral, second.id)
    assert gone.reason is None and gone.decline_reason is None
    assert gone.status == ReferralStatus.DECLINED and gone.to_fund_id == w["b"].id


#: Identifying details of the defender at the referring fund, each one distinctive.
CANARIES = {
    "defender_name": "Ysolde Canaryvale",
    "defender_work": "canary-work-8811",
    "threat": "canary-threat-8812",
    "urgency_reason": "canary-urgency-8813",
    "other_funders": "canary-funders-8814",
}


def test_what_a_referral_did_not_share_reaches_nothing_the_other_fund_can_see(
    app, two_funds, caplog
):
    """The referring fund shares nothing but what it asks: none of the case's identifying
    details, its code, its document or its amounts reach the other fund's pages, lists,
    exports, audit entries, logs, or the error pages of forged addresses."""
    caplog.set_level(logging.DEBUG)
    w = two_funds
    case = w["case"]
    for name, value in CANARIES.items():
        setattr(case, name, value)
    db.session.commit()
    owner = signed_in(app, w["applicant"])
    owner.post(
        f"/applications/{case.uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "canary-file-8815.pdf")},
    )
    doc = db.session.execute(sa.select(Document)).scalar_one()
    _refer(app, w, shares=())
    referral = _the_referral()
    forbidden = [*CANARIES.values(), "canary-file-8815", case.uid, doc.uid, "Surgery", "6,000"]
    caplog.clear()
    seen = []
    for user in (w["b_reviewer"], w["b_manager"], w["b_finance"]):
        client = signed_in(app, user)
        for path in (
            "/network/referrals",
            f"/network/referrals/{referral.uid}",
            f"/network/referrals/{referral.uid}/documents/{doc.uid}",
            f"/applications/{case.uid}",
            f"/applications/{case.uid}/documents/{doc.uid}",
            "/cases",
            "/coverage",
            "/payments",
            "/",
        ):
            response = client.get(path, follow_redirects=True)
            seen.append(response.get_data(as_text=True))
            seen.append(str(response.headers))
        forged = client.post(f"/applications/{case.uid}/refer", data={"refer-reason": "x"})
        seen.append(forged.get_data(as_text=True))
    seen.append(caplog.text)
    chain = getattr(AuditEvent, "chain", None)
    entries = sa.select(AuditEvent.payload, AuditEvent.object_id)
    if chain is not None:
        entries = entries.where(chain == w["b"].id)
    else:
        entries = entries.where(AuditEvent.action == "referral.received")  # the other fund's
    seen += [f"{payload} {object_id}" for payload, object_id in db.session.execute(entries)]
    text = "\n".join(seen)
    found = {
        c: text[max(0, text.find(c) - 200) : text.find(c) + 40] for c in forbidden if c in text
    }
    assert found == {}
    # The control: the referral itself, and why, did reach them.
    assert "Our pool ends in June" in text and referral.uid in text


def test_the_other_funds_queue_says_a_referral_waits_for_its_answer(app, two_funds):
    """A referral waiting for an answer shows at the top of the asked fund's queue, not of
    the referring fund's, and no more once answered or stopped."""
    w = two_funds
    notice = "1 referral from another fund waits for your fund’s answer."
    b = signed_in(app, w["b_reviewer"])
    assert notice not in b.get("/cases").get_data(as_text=True)
    a, _sent = _refer(app, w)
    # On the queue, and on the dashboard where a sign-in lands.
    for page in ("/cases", "/dashboard"):
        assert notice in b.get(page).get_data(as_text=True), page
        assert notice not in a.get(page).get_data(as_text=True), page
    referral = _the_referral()
    b.post(f"/network/referrals/{referral.uid}/accept")
    assert notice not in b.get("/cases").get_data(as_text=True)
    assert notice not in b.get("/dashboard").get_data(as_text=True)


def test_the_service_refuses_a_referral_without_a_reason(app, two_funds):
    """Why a case is referred is what the other fund reads first: a caller that is not the
    form is held to it too."""
    w = two_funds
    part = services.Part(Category.RELOCATION, 7, 12, Decimal(3000), "EUR")
    later = date.today() + timedelta(days=3)
    with pytest.raises(services.ReferralError, match="Say why"):
        services.refer_case(w["a_reviewer"], w["case"], w["b"], part, (), "  ", later)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Referral.id))).scalar() == 0


def test_the_refer_form_says_what_each_fund_covers(app, two_funds):
    """Beside the funds offered, what each says it covers and where, as the public list of
    funds says it: a fund that pays medical costs in Kenya only is not asked for a
    relocation in Bolivia blind."""
    w = two_funds
    w["b"].categories = ["medical", "legal"]
    w["b"].countries = ["KE", "TZ"]
    db.session.commit()
    page = signed_in(app, w["a_reviewer"]).get(f"/applications/{w['case'].uid}")
    covers = _text(page).split("What each fund says it covers")[1].split("Kind of support")[0]
    assert "International Fund" in covers
    assert "Medical costs" in covers and "Kenya" in covers and "Tanzania" in covers
    assert "Relocation" not in covers


def test_the_fund_asked_reads_the_cases_urgency_and_the_assessments_risk(app, two_funds):
    """What the fund asked needs to weigh a referral: how urgent the case is, and, where the
    assessment is shared, its risk and recommendation beside its words."""
    w = two_funds
    review = Review(
        application_id=w["case"].id,
        reviewer_id=w["a_reviewer"].id,
        risk_level=RiskLevel.CRITICAL,
        recommendation=Recommendation.APPROVE_PARTLY,
        currency="EUR",
    )
    db.session.add(review)
    db.session.flush()
    review.assessment = "Followed for a month."
    db.session.commit()
    _refer(app, w, shares=("assessment",))
    referral = _the_referral()
    page = _text(signed_in(app, w["b_reviewer"]).get(f"/network/referrals/{referral.uid}"))
    assert "UrgencyUrgent" in page
    assert "Risk: Critical; recommended: Approve in part." in page
    assert "Followed for a month." in page
