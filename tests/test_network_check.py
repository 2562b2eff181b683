"""The duplicate check across member funds: a reviewer of one fund asks, before deciding,
whether another fund already supports or refused the same need of the same defender, and
learns only which fund, the status in one word and the month; both funds' audit chains
record the ask; nothing else of the other fund's case reaches the asking fund."""

import html
import json
import logging
import re
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Application, ApplicationStatus, Consent, ConsentKind
from hrdfund.cases.services import defender_key, network_key, submit_application
from hrdfund.core.columns import cipher, utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.reviews import network_check
from hrdfund.reviews import services as review_services
from tests.conftest import (
    login,
    make_costed_case,
    session_contents,
    signed_in,
    start_application,
)

S = ApplicationStatus


@pytest.fixture
def network(app, fund, make_fund, make_user):
    """Three member funds with their staff. Fund B is the first fund, the one the
    application form sends cases to."""
    fund.name = "Regional Fund B"
    db.session.commit()
    a, c = make_fund("Local Fund A"), make_fund("International Fund C")
    return SimpleNamespace(
        a=a,
        b=fund,
        c=c,
        reviewer_a=make_user("reviewer", fund_id=a.id),
        manager_a=make_user("manager", fund_id=a.id),
        finance_a=make_user("finance", fund_id=a.id),
        reviewer_b=make_user("reviewer", fund_id=fund.id),
        reviewer_c=make_user("reviewer", fund_id=c.id),
        applicant=make_user("applicant"),
    )


def sent(fund, name, country="KE", consent=True, consent_at=None, **fields):
    """A case sent to ``fund`` for the defender ``name`` in ``country``, with the keys
    sending gives it and, unless ``consent`` is false, the defender's consent to referral
    given in the form (a day ago, or at ``consent_at``)."""
    fields.setdefault("status", S.IN_REVIEW)
    case = make_costed_case(
        fund,
        commit=False,
        defender_name=name,
        country=country,
        defender_key=defender_key(name, country),
        network_key=network_key(name, country),
        **fields,
    )
    db.session.flush()
    if consent:
        db.session.add(
            Consent(
                application_id=case.id,
                kind=ConsentKind.REFERRAL,
                method="form",
                given_at=consent_at or utcnow() - timedelta(days=1),
            )
        )
    db.session.commit()
    return case


def ask(client, case):
    """Press "Ask the network" on the case page; return the page shown after it."""
    response = client.post(f"/applications/{case.uid}/network")
    assert response.status_code == 302, response.status_code
    assert response.location == f"/applications/{case.uid}#network"
    return client.get(f"/applications/{case.uid}").get_data(as_text=True)


def answer_of(page):
    """The answer on a case page: the lines it lists (an empty list for "no other fund"),
    or None when the page shows no answer."""
    found = re.search(r'<div class="network-answer"[^>]*>(.*?)</div>', page, re.S)
    if found is None:
        return None
    part = found.group(1)
    if "No other fund has a case" in part:
        assert "<li>" not in part
        return []
    return [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", part)]


def month(moment):
    return moment.strftime("%B %Y")


def _fund_of(entry):
    """The fund whose audit chain holds ``entry``: its chain, where entries name one; else
    the fund it was recorded for."""
    payload = json.loads(entry.payload)
    return getattr(entry, "chain", None) or payload.get("fund")


def chain(fund, everything=False):
    """The entries of ``fund``'s audit chain about the duplicate check (all of them with
    ``everything``): (action, object id, actor, payload without the fund)."""
    entries = db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    return [
        (
            e.action,
            e.object_id,
            e.actor,
            {k: v for k, v in json.loads(e.payload).items() if k != "fund"},
        )
        for e in entries
        if _fund_of(e) == fund.id and (everything or e.action.startswith("network."))
    ]


def test_a_match_at_another_fund_shows_only_its_name_its_status_in_a_word_and_the_month(
    app, network
):
    mine = sent(network.a, "Amara Okafor")
    local = sent(network.a, "Amara Okafor", status=S.PAYING)
    paid_since = utcnow() - timedelta(days=40)
    theirs = sent(
        network.b,
        "  AMARA   Okáfor ",
        status=S.PAYING,
        submitted_at=paid_since,
        amount_requested=Decimal("7341.00"),
    )
    reviewer = signed_in(app, network.reviewer_a)
    before = reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)
    assert "Ask the network" in before and answer_of(before) is None
    page = ask(reviewer, mine)
    assert "The other member funds were asked." in page
    assert answer_of(page) == [f"Regional Fund B · supported · {month(paid_since)}"]
    # The fund's own case of the same defender stays in its own list of duplicates.
    assert "Possible duplicate" in page and local.uid in page
    for secret in (theirs.uid, "Okáfor", "7,341", "7341", paid_since.strftime("%Y-%m-%d")):
        assert not _holds(page, secret), secret


def _holds(text, secret):
    """Whether ``secret`` is in ``text`` as itself, not as a run of characters inside a
    longer word or number: the amount's digits turn up by chance inside a random token's
    hex (a session's, a form's), which says nothing of the amount."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


#: Each status, as another fund learns it; None: never found.
EXPECTED_WORDS = {
    S.DRAFT: None,
    S.SUBMITTED: "open",
    S.IN_REVIEW: "open",
    S.INFO_REQUESTED: "open",
    S.RECOMMENDED: "open",
    S.AWAITING_SECOND_APPROVAL: "open",
    S.APPROVED: "supported",
    S.PAYING: "supported",
    S.COMPLETED: "supported",
    S.REJECTED: "refused",
    S.WITHDRAWN: None,
}


def test_every_status_has_its_word_or_is_never_found():
    assert set(EXPECTED_WORDS) == set(S), "a new status needs its word in the network"


@pytest.mark.parametrize("status", list(EXPECTED_WORDS))
def test_each_status_is_told_in_one_word(app, network, status):
    now = utcnow()
    ended = {"decided_at": now} if status == S.REJECTED else {}
    if status in (S.COMPLETED, S.WITHDRAWN):
        ended = {"closed_at": now}
    sent(network.b, "Lina Haddad", status=status, **ended)
    mine = sent(network.a, "Lina Haddad")
    lines = network_check.ask_network(mine, network.reviewer_a)
    expected = EXPECTED_WORDS[status]
    assert [line.word.value for line in lines] == ([expected] if expected else [])


def test_the_same_defender_matches_whatever_the_case_accents_or_spacing(app, network):
    sent(network.b, "José María Ndlovu")
    sent(network.c, "José María Ndlovu", country="UG")  # another country: another person
    sent(network.c, "José Marian Ndlovu")  # another name
    for spelling in ("  JOSE   maria  ndlovu ", "josé maría ndlovu", "Jose\tMaria Ndlovu"):
        mine = sent(network.a, spelling)
        lines = network_check.ask_network(mine, network.reviewer_a)
        assert [line.fund for line in lines] == ["Regional Fund B"], spelling


def test_another_category_or_a_period_outside_the_window_is_no_match(app, network):
    mine = sent(network.a, "Tomas Quispe", country="PE")
    window = timedelta(days=app.config["DUPLICATE_WINDOW_DAYS"])
    sent_at = mine.submitted_at
    sent(network.b, "Tomas Quispe", country="PE", category=Category.LEGAL)
    sent(network.b, "Tomas Quispe", country="PE", status=S.COMPLETED,
         closed_at=sent_at - window - timedelta(days=1))  # fmt: skip
    sent(network.b, "Tomas Quispe", country="PE", status=S.REJECTED,
         decided_at=sent_at - window - timedelta(days=1))  # fmt: skip
    assert network_check.ask_network(mine, network.reviewer_a) == []
    recent = sent_at - window + timedelta(days=1)
    sent(network.c, "Tomas Quispe", country="PE", status=S.REJECTED, decided_at=recent,
         submitted_at=recent - timedelta(days=3))  # fmt: skip
    sent(network.c, "Tomas Quispe", country="PE", status=S.COMPLETED, closed_at=recent,
         submitted_at=recent - timedelta(days=60))  # fmt: skip
    lines = network_check.ask_network(mine, network.reviewer_a)
    assert sorted((line.fund, line.word.value) for line in lines) == [
        ("International Fund C", "refused"),
        ("International Fund C", "supported"),
    ]


def test_a_case_without_consent_to_referral_neither_asks_nor_is_found(app, network):
    reviewer = signed_in(app, network.reviewer_a)
    silent = sent(network.a, "Nadia Rahimi", consent=False)
    page = reviewer.get(f"/applications/{silent.uid}").get_data(as_text=True)
    assert "Asking the other funds is not offered.</strong> The defender" in page
    assert "has not agreed to the case being referred to another fund" in page
    assert "Ask the network" not in page
    forged = reviewer.post(f"/applications/{silent.uid}/network", follow_redirects=True)
    assert forged.history[0].status_code == 303 and forged.status_code == 200
    assert "has not agreed to the case being referred" in forged.get_data(as_text=True)
    assert answer_of(forged.get_data(as_text=True)) is None
    assert chain(network.a) == [] and chain(network.b) == []

    sent(network.b, "Nadia Rahimi", consent=False)
    mine = sent(network.a, "Nadia Rahimi")
    assert answer_of(ask(reviewer, mine)) == []
    assert chain(network.b) == []


def test_withdrawing_consent_takes_the_defenders_cases_out_at_once(app, network):
    applicant = network.applicant
    earlier = sent(network.b, "Omar Farouk", status=S.PAYING, applicant_id=applicant.id)
    later = sent(network.b, "Omar Farouk", applicant_id=applicant.id)
    mine = sent(network.a, "Omar Farouk")
    reviewer = signed_in(app, network.reviewer_a)
    found = answer_of(ask(reviewer, mine))
    assert sorted(line.split(" · ")[1] for line in found) == ["open", "supported"]

    defender = signed_in(app, applicant)
    withdrawn = defender.post(f"/applications/{later.uid}/consents/referral/withdraw")
    assert withdrawn.status_code == 302
    # The answer on the page is matched again: both of the defender's cases left at once,
    # the one withdrawn on and the one consent was given on before it.
    assert answer_of(reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)) == []
    told = len(chain(network.b))
    assert answer_of(ask(reviewer, mine)) == []
    assert len(chain(network.b)) == told, "no fund is told of a case out of the check"
    assert earlier.uid not in reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)

    # Consent given again, on a new case, brings that case back in; the old ones stay out.
    again = sent(
        network.b, "Omar Farouk", status=S.SUBMITTED, applicant_id=applicant.id, consent_at=utcnow()
    )
    assert [line.word.value for line in network_check.ask_network(mine, network.reviewer_a)] == [
        "open"
    ]
    db.session.commit()
    assert chain(network.b)[-1][1] == again.uid

    # The asking side too: once its defender withdraws, the case no longer asks.
    db.session.execute(
        sa.update(Consent)
        .where(Consent.application_id == mine.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=utcnow())
    )
    db.session.commit()
    page = reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)
    assert "Ask the network" not in page and answer_of(page) is None


def test_asking_is_an_entry_in_the_asking_funds_chain_and_in_each_fund_found(app, network):
    mine = sent(network.a, "Grace Wanjiru")
    theirs = sent(network.b, "Grace Wanjiru", status=S.APPROVED)
    unrelated = sent(network.c, "Someone Else")
    reviewer = signed_in(app, network.reviewer_a)
    ask(reviewer, mine)
    actor = network.reviewer_a.pseudonym
    assert chain(network.a) == [("network.asked", mine.uid, actor, {"funds": [network.b.id]})]
    assert chain(network.b) == [
        ("network.matched", theirs.uid, actor, {"asking_fund": network.a.id})
    ]
    assert chain(network.c) == []
    everything = " ".join(
        f"{e.object_id} {e.payload}" for e in db.session.scalars(sa.select(AuditEvent))
    )
    assert unrelated.uid not in everything
    assert "Grace" not in everything and "KE" not in everything


def test_a_reviewer_of_a_fund_not_matched_learns_nothing(app, network):
    mine = sent(network.a, "Hana Tesfaye", country="ET")
    sent(network.b, "Hana Tesfaye", country="ET")
    reviewer = signed_in(app, network.reviewer_a)
    assert answer_of(ask(reviewer, mine)) == [f"Regional Fund B · open · {month(utcnow())}"]
    own = sent(network.c, "Another Defender", country="ET")
    outsider = signed_in(app, network.reviewer_c)
    assert outsider.get(f"/applications/{mine.uid}").status_code == 404
    assert outsider.post(f"/applications/{mine.uid}/network").status_code == 404
    page = ask(outsider, own)
    assert answer_of(page) == []
    # The member funds' names are public (the page of funds, the referral form); what the
    # outsider must not learn is that anyone asked about this defender, or whom.
    for name in ("Hana", mine.uid):
        assert name not in page, name
    assert [entry[0] for entry in chain(network.c)] == ["network.asked"]
    assert len(chain(network.a)) == 1 and len(chain(network.b)) == 1


def test_the_answer_is_shown_to_the_asker_for_a_few_minutes(app, network, clock):
    mine = sent(network.a, "Ivan Petrenko", country="UA")
    sent(network.b, "Ivan Petrenko", country="UA")
    reviewer = signed_in(app, network.reviewer_a)
    asked_at = utcnow()
    assert len(answer_of(ask(reviewer, mine))) == 1
    # Another reviewer of the fund sees the button, not the answer given to a colleague.
    colleague = signed_in(app, network.manager_a)
    page = colleague.get(f"/applications/{mine.uid}").get_data(as_text=True)
    assert answer_of(page) is None and "Ask the network" in page
    # Cases found only now are not in the answer, at another fund or at the one told: no
    # fund was told of them. Asking again finds them.
    sent(network.c, "Ivan Petrenko", country="UA")
    earlier = utcnow() - timedelta(days=70)
    sent(network.b, "Ivan Petrenko", country="UA", status=S.PAYING, submitted_at=earlier)
    clock.at(asked_at + timedelta(minutes=network_check.ANSWER_MINUTES - 1))
    page = reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)
    assert answer_of(page) == [f"Regional Fund B · open · {month(asked_at)}"]
    assert answer_of(ask(reviewer, mine)) == [
        f"International Fund C · open · {month(asked_at)}",
        f"Regional Fund B · open · {month(asked_at)}",
        f"Regional Fund B · supported · {month(earlier)}",
    ]
    asked_at = utcnow()
    clock.at(asked_at + timedelta(minutes=network_check.ANSWER_MINUTES, seconds=5))
    page = reviewer.get(f"/applications/{mine.uid}").get_data(as_text=True)
    assert answer_of(page) is None and "Ask the network" in page


def test_only_reviewers_and_managers_ask_and_only_before_the_decision(app, network):
    mine = sent(network.a, "Mei Chen", country="MM")
    sent(network.b, "Mei Chen", country="MM")
    finance = signed_in(app, network.finance_a)
    assert finance.post(f"/applications/{mine.uid}/network").status_code in (403, 404)
    manager = signed_in(app, network.manager_a)
    assert len(answer_of(ask(manager, mine))) == 1
    decided = sent(network.a, "Mei Chen", country="MM", status=S.APPROVED)
    page = manager.get(f"/applications/{decided.uid}").get_data(as_text=True)
    assert 'id="network"' not in page
    refused = manager.post(f"/applications/{decided.uid}/network", follow_redirects=True)
    assert "Only a sent case that is not decided yet" in refused.get_data(as_text=True)
    assert [entry[1] for entry in chain(network.a)] == [mine.uid]


def test_a_case_gets_its_network_key_when_sent_under_a_key_of_its_own(app, network):
    draft = make_costed_case(
        network.a, status=S.DRAFT, submitted_at=None, defender_name="Ana Lima", country="BR"
    )
    draft.applicant_id = network.applicant.id
    draft.urgency_reason = None
    for name in ("defender_work", "threat"):
        setattr(draft, name, "Works on land rights")
    draft.details = {"provider": "Clinic", "treatment": "Surgery", "link_to_threat": "Attack"}
    db.session.commit()
    assert draft.network_key is None
    submit_application(draft, network.applicant)
    db.session.commit()
    assert draft.network_key == network_key("ana lima", "BR")
    assert draft.network_key != defender_key("Ana Lima", "BR")
    text = "defender|ana lima|BR"
    assert cipher().network_index(text) != cipher().blind_index(text)
    assert not cipher().network_index(text).startswith(cipher().blind_index(text)[:8])
    assert network_key("Ana Lima", None) is None and network_key(None, "BR") is None


#: What fund B's case holds that fund A must never read.
CANARIES = {
    "defender_work": "canary-work-5521",
    "threat": "canary-threat-5522",
    "urgency_reason": "canary-urgency-5523",
    "other_funders": "canary-funders-5524",
    "details-stay_plan": "canary-stay-5525",
    "details-security_plan": "canary-security-5526",
    "details-exit_plan": "canary-exit-5527",
    "details-host_organisation": "canary-host-5528",
    "budget-0-description": "canary-budget-5529",
    "dependants-0-relation": "canary-dep-5530",
    "references-0-name": "canary-ref-name-5531",
    "references-0-organisation": "canary-org-5532",
    "references-0-contact": "canary-ref-contact-5533",
    "references-1-name": "canary-ref-name-5534",
    "references-1-contact": "canary-ref-contact-5535",
}
#: Fund B's spelling of the defender's name; fund A's case spells it its own way.
THEIR_SPELLING = "Zuleyka Ämbertown-Quill"
OURS = "ZULEYKA  ambertown-quill"
#: A country neither fund's other pages name.
COUNTRY, COUNTRY_NAME = "BT", "Bhutan"
AMOUNT = "7341.00"


def test_canaries_of_the_other_funds_case_never_reach_the_asking_fund(app, network, caplog):
    """Fund B's case, sent through the form with distinctive details, is found by fund A's
    check; none of those details, nor the case's code, reach fund A's pages, flashes,
    cookies, headers, audit entries, the logs of its requests or the error pages of forged
    asks."""
    caplog.set_level(logging.DEBUG)
    defender = signed_in(app, network.applicant)
    uid = start_application(defender, "relocation", fund=network.b.uid)
    data = {
        **CANARIES,
        "defender_name": THEIR_SPELLING,
        "budget-0-amount": AMOUNT,
        "country": COUNTRY,
        "urgency": "urgent",
        "details-scope": "region",
        "details-destination_country": "NP",
        "details-people": "2",
        "details-months": "3",
        "consent_referral": "y",
        "save": "1",
    }
    assert defender.post(f"/applications/{uid}/edit", data=data).status_code == 302
    done = defender.post(f"/applications/{uid}/edit", data={**data, "submit": "1"})
    assert done.location == f"/applications/{uid}", done.get_data(as_text=True)[-800:]
    theirs = db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()
    assert theirs.fund_id == network.b.id and theirs.network_key == network_key(OURS, COUNTRY)

    mine = sent(network.a, OURS, country=COUNTRY, category=Category.RELOCATION)
    hidden = sent(network.a, OURS, country=COUNTRY, category=Category.RELOCATION)
    review_services.declare_conflict(hidden, network.reviewer_a)
    db.session.commit()
    reviewer = app.test_client()
    login(reviewer, network.reviewer_a)
    caplog.clear()  # from here on, only what fund A's staff do

    responses = [reviewer.post(f"/applications/{mine.uid}/network")]
    cookies = str(session_contents(app, reviewer))  # the flash waits in the session
    responses.append(reviewer.get(f"/applications/{mine.uid}"))
    page = responses[-1].get_data(as_text=True)
    assert answer_of(page) == [f"Regional Fund B · open · {month(theirs.submitted_at)}"]
    answer = re.search(r'<div class="network-answer".*?</div>', page, re.S).group(0)
    forged = [
        reviewer.post(f"/applications/{theirs.uid}/network"),
        reviewer.post(f"/applications/{hidden.uid}/network"),
        reviewer.get(f"/applications/{theirs.uid}"),
    ]
    assert [r.status_code for r in forged] == [404, 404, 404]
    responses += forged
    manager = signed_in(app, network.manager_a)
    responses.append(manager.post(f"/applications/{theirs.uid}/network"))
    assert responses[-1].status_code == 404

    shown = "".join(r.get_data(as_text=True) for r in responses)
    headers = "".join(f"{k}: {v}\n" for r in responses for k, v in r.headers.items())
    audit_a = json.dumps(chain(network.a, everything=True), ensure_ascii=False)
    logs = caplog.text
    secrets = [*CANARIES.values(), THEIR_SPELLING, "Ämbertown", "7,341", "7341", theirs.uid]
    for secret in secrets:
        for where, text in (
            ("page", shown),
            ("flash", cookies),
            ("headers", headers),
            ("audit of fund A", audit_a),
            ("logs", logs),
        ):
            assert not _holds(text, secret), (secret, where)
    for text in (headers, audit_a, logs, cookies):
        assert "zuleyka" not in text.casefold() and COUNTRY_NAME not in text
    # The answer names the fund, the word and the month: not the country, not a day.
    assert COUNTRY_NAME not in answer and COUNTRY not in answer
    assert theirs.submitted_at.strftime("%Y-%m-%d") not in answer
    assert "zuleyka" not in answer.casefold()
    for error in forged + responses[-1:]:
        body = error.get_data(as_text=True)
        assert "Page not found" in body and theirs.uid not in body and hidden.uid not in body
