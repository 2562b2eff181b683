"""The application form in steps, as a defender on a phone goes through it with no
JavaScript: nothing is stored until the first save, each step keeps to its own answers,
required questions are marked, urgency is the defender's choice, the budget's currency
follows the country, errors are listed at the top with links to their fields, and sending
checks every step."""

import html.parser
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases import steps
from hrdfund.cases.models import Application, ApplicationStatus, Consent, ConsentKind, Urgency
from hrdfund.core.extensions import db
from tests.conftest import (
    application_by_uid,
    apply_step_by_step,
    choose_support,
    count_rows,
    login,
    refused_page,
    save_first_step,
    signed_in,
    start_application,
    step_data,
)
from tests.test_applicant_views import RELOCATION


def _step(uid, step):
    return f"/applications/{uid}/steps/{step}"


def _page(response):
    return response.get_data(as_text=True)


class _Page(html.parser.HTMLParser):
    """The ids of a page, the links of its error summary, and its inputs' attributes."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.summary_links, self.inputs = set(), [], {}
        self._in_summary = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "div" and "error-summary" in (attrs.get("class") or ""):
            self._in_summary = 1
        elif self._in_summary and tag == "div":
            self._in_summary += 1
        if self._in_summary and tag == "a":
            self.summary_links.append(attrs["href"])
        if tag in ("input", "select", "textarea") and "id" in attrs:
            self.inputs[attrs["id"]] = attrs

    def handle_endtag(self, tag):
        if self._in_summary and tag == "div":
            self._in_summary -= 1


def _label(text, field_id):
    return re.search(rf'<label for="{field_id}">(.*?)</label>', text, re.S).group(1)


def test_choosing_a_kind_of_support_stores_nothing_the_first_save_opens_the_draft(
    client, make_user, fund
):
    """Choosing the kind of support, and opening pages, write no case and no audit entry
    about one; the first save writes the draft with its audit entries."""
    login(client, make_user("applicant"))
    events = count_rows(AuditEvent)
    chosen = choose_support(client, "relocation")
    assert count_rows(Application) == 0 and count_rows(AuditEvent) == events
    assert "Nothing is stored until you save this step" in _page(chosen)
    # The first step's address, opened without a form to show, starts again.
    assert client.get("/apply/new").location == "/apply"
    assert count_rows(Application) == 0
    saved = save_first_step(client, chosen, {"country": "KE"})
    assert saved.status_code == 302
    case = db.session.execute(sa.select(Application)).scalar_one()
    assert saved.location == _step(case.uid, steps.URGENCY)
    assert case.status == ApplicationStatus.DRAFT and case.country == "KE"
    assert case.urgency is None  # the defender has not answered yet
    actions = db.session.execute(
        sa.select(AuditEvent.action).where(AuditEvent.object_id == case.uid)
    ).scalars()
    assert list(actions) == ["application.started", "application.saved"]
    for step in (*steps.STEPS, steps.REVIEW):
        assert client.get(_step(case.uid, step)).status_code == 200
    assert count_rows(Application) == 1


def test_a_referral_records_the_consent_at_the_first_save(client, make_user, fund):
    login(client, make_user("partner"))
    chosen = choose_support(client, "medical", consent="y", consent_method="phone")
    assert count_rows(Application) == 0 and count_rows(Consent) == 0
    uid = save_first_step(client, chosen, {"defender_name": "A. Defender"}).location.split("/")[2]
    consent = db.session.execute(sa.select(Consent)).scalar_one()
    assert consent.kind == ConsentKind.PARTNER_SUBMISSION and consent.method == "phone"
    assert application_by_uid(uid).partner_organisation_id is not None
    # The partner's form marks the defender's name: a referral needs it.
    page = _page(client.get(_step(uid, steps.DEFENDER)))
    assert "(required)" in _label(page, "defender_name")


@pytest.mark.parametrize(
    "data, role",
    [
        ({"category": "bogus", "fund": "FUND"}, "applicant"),
        ({"category": "medical", "fund": "no-such-fund"}, "applicant"),
        ({"category": "medical", "fund": "FUND", "consent_method": "phone"}, "partner"),
        (
            {"category": "medical", "fund": "FUND", "consent": "y", "consent_method": "pigeon"},
            "partner",
        ),
    ],
)
def test_the_first_save_refuses_a_choice_the_start_page_would_refuse(
    app, make_user, fund, make_fund, data, role
):
    """A first step sent with a kind of support, a fund or a consent the start page does
    not offer opens nothing."""
    make_fund("Second Fund")  # two funds: the fund must be one of them
    client = signed_in(app, make_user(role))
    data = {k: fund.uid if v == "FUND" else v for k, v in data.items()}
    response = client.post("/apply/new", data={**data, "country": "KE", "save": "1"})
    assert response.status_code == 303 and response.location == "/apply/new"
    assert count_rows(Application) == 0 and count_rows(Consent) == 0


def test_a_refused_first_step_comes_back_with_the_choice_and_what_was_typed(
    client, make_user, fund
):
    login(client, make_user("applicant"))
    chosen = choose_support(client, "medical")
    refused = save_first_step(client, chosen, {"defender_name": "x" * 121, "threat": "kept"})
    page = refused_page(client, refused, "/apply/new")
    text = _page(page)
    assert count_rows(Application) == 0
    assert "kept" in text and 'value="medical"' in text
    parsed = _Page(text)
    assert parsed.summary_links == ["#defender_name"] and "defender_name" in parsed.ids
    again = save_first_step(client, page, {"defender_name": "A. Defender", "threat": "kept"})
    case = application_by_uid(again.location.split("/")[2])
    assert case.category.value == "medical" and case.threat == "kept"


def test_each_step_saves_its_own_answers_and_loses_none_of_the_others(client, make_user, fund):
    login(client, make_user("applicant"))
    uid = apply_step_by_step(client, "relocation", RELOCATION, send=False)
    before = application_by_uid(uid)
    kept = {
        "threat": before.threat,
        "details": before.details,
        "lines": [(b.description, b.amount) for b in before.budget_lines],
        "dependants": [(d.relation, d.age) for d in before.dependants],
        "references": [(r.name, r.contact) for r in before.references],
    }
    # The urgency step, sent with other steps' fields too: only its own are written.
    forged = {
        "urgency": "normal",
        "threat": "overwritten",
        "budget-0-amount": "1",
        "references-0-name": "overwritten",
        "details-scope": "abroad",
        "save": "1",
    }
    assert client.post(_step(uid, steps.URGENCY), data=forged).status_code == 302
    after = application_by_uid(uid)
    assert after.urgency == Urgency.NORMAL and after.urgency_reason is None
    assert {
        "threat": after.threat,
        "details": after.details,
        "lines": [(b.description, b.amount) for b in after.budget_lines],
        "dependants": [(d.relation, d.age) for d in after.dependants],
        "references": [(r.name, r.contact) for r in after.references],
    } == kept
    # A step's page shows what was saved before.
    page = _page(client.get(_step(uid, steps.REFERENCES)))
    assert 'value="Reference One"' in page
    # Every step saved and complete: each is listed as done.
    review = _page(client.get(_step(uid, steps.REVIEW)))
    assert review.count('class="step-done"') == len(steps.STEPS)


def test_required_questions_carry_a_mark_in_words_and_aria_required(client, make_user, fund):
    login(client, make_user("applicant"))
    uid = start_application(client, "relocation")
    page = _page(client.get(_step(uid, steps.DEFENDER)))
    inputs = _Page(page).inputs
    assert "Questions marked (required) must be answered before the application can be sent" in (
        page
    )
    for required in ("country", "defender_work", "threat"):
        assert "(required)" in _label(page, required)
        assert inputs[required].get("aria-required") == "true"
        assert "required" not in inputs[required]  # a step is saved half done
    for optional in ("gender", "defender_name"):
        assert "(required)" not in _label(page, optional)
        assert "aria-required" not in inputs[optional]
    support = _page(client.get(_step(uid, steps.SUPPORT)))
    assert "(required)" in _label(support, "details-stay_plan")
    assert "(required)" not in _label(support, "details-host_organisation")
    # Needed for a move abroad only: its hint says so, and no mark says otherwise.
    assert "(required)" not in _label(support, "details-destination_country")
    assert "Not needed for a move within your country" in support
    references = _page(client.get(_step(uid, steps.REFERENCES)))
    assert "(required)" in _label(references, "references-1-contact")
    assert "(required)" not in _label(references, "references-1-organisation")
    urgency = _page(client.get(_step(uid, steps.URGENCY)))
    assert re.search(r'<fieldset[^>]*id="urgency"[^>]*aria-required="true"', urgency)


def test_urgency_is_not_chosen_for_the_defender_and_sending_without_it_says_so(
    client, make_user, fund
):
    login(client, make_user("applicant"))
    fresh = start_application(client, "relocation")
    radios = re.findall(
        r'<input[^>]*name="urgency"[^>]*>', _page(client.get(_step(fresh, "urgency")))
    )
    assert len(radios) == 2 and not any("checked" in r for r in radios)
    unchosen = {k: v for k, v in RELOCATION.items() if k not in ("urgency", "urgency_reason")}
    uid = apply_step_by_step(client, "relocation", unchosen, send=False)
    for path in (_step(uid, steps.URGENCY), f"/applications/{uid}/edit"):
        radios = re.findall(r'<input[^>]*name="urgency"[^>]*>', _page(client.get(path)))
        assert len(radios) == 2 and not any("checked" in r for r in radios)
    assert application_by_uid(uid).urgency is None
    sent = client.post(_step(uid, steps.REVIEW))
    page = _page(refused_page(client, sent, _step(uid, steps.REVIEW)))
    assert application_by_uid(uid).status == ApplicationStatus.DRAFT
    assert "There is a problem" in page
    link = f"{_step(uid, steps.URGENCY)}?then=review#urgency"
    assert f'<a href="{link}">Urgency: How urgent it is: choose one answer</a>' in page
    # Only urgency is missing, and the link leads to the question on its step's page,
    # whose saving goes back to the last step rather than on to the next one.
    assert _Page(page).summary_links == [link]
    step_page = _page(client.get(link.split("#")[0]))
    assert "urgency" in _Page(step_page).ids
    assert f'action="{_step(uid, steps.URGENCY)}?then=review"' in step_page
    saved = client.post(
        f"{_step(uid, steps.URGENCY)}?then=review", data={"urgency": "normal", "save": "1"}
    )
    assert saved.location == _step(uid, steps.REVIEW)
    # Each "Change" link of the last step leads back to it the same way.
    review = _page(client.get(_step(uid, steps.REVIEW)))
    for name in steps.STEPS:
        assert f'href="{_step(uid, name)}?then=review">Change: ' in review, name
    # Opened in the ordinary way, a step's saving goes on to the next step.
    onward = client.post(_step(uid, steps.URGENCY), data={"urgency": "normal", "save": "1"})
    assert onward.location == _step(uid, steps.next_step(steps.URGENCY))
    assert client.post(_step(uid, steps.REVIEW)).location == f"/applications/{uid}"
    # Sent, its page says which fund has it (a partner organisation applies to one of
    # several).
    sent = _page(client.get(f"/applications/{uid}"))
    assert "Your application was sent. The fund will answer here." in sent
    assert f"Fund: <bdi>{fund.name}</bdi>" in sent


def test_the_budget_currency_follows_the_country_until_the_budget_is_saved(client, make_user, fund):
    login(client, make_user("applicant"))

    def chosen_currency():
        page = _page(client.get(_step(uid, steps.BUDGET)))
        return re.search(r'<option selected value="([A-Z]{3})"', page).group(1)

    uid = start_application(client, "relocation", first={"country": "KE"})
    assert chosen_currency() == "KES"
    client.post(_step(uid, steps.DEFENDER), data={"country": "UG", "save": "1"})
    assert chosen_currency() == "UGX"
    client.post(_step(uid, steps.DEFENDER), data={"country": "FR", "save": "1"})
    assert chosen_currency() == "EUR"  # beyond the fund's own map, from the locale data
    client.post(_step(uid, steps.DEFENDER), data={"country": "IR", "save": "1"})
    assert chosen_currency() == "USD"  # a currency the fund does not pay in
    client.post(_step(uid, steps.DEFENDER), data={"country": "KE", "save": "1"})
    # The defender changes it: from then on the budget keeps its currency.
    budget = {"currency": "EUR", "budget-0-description": "Rent", "budget-0-amount": "300"}
    client.post(_step(uid, steps.BUDGET), data={**budget, "save": "1"})
    client.post(_step(uid, steps.DEFENDER), data={"country": "UG", "save": "1"})
    case = application_by_uid(uid)
    assert chosen_currency() == "EUR" and case.country == "UG"
    assert [(b.amount, b.currency) for b in case.budget_lines] == [(Decimal("300.00"), "EUR")]


def test_the_error_summary_lists_each_error_with_a_link_to_its_field(client, make_user, fund):
    login(client, make_user("applicant"))
    uid = start_application(client, "relocation")
    bad = {
        "budget-0-description": "x" * 201,
        "budget-0-amount": "12.3456",
        "budget-1-amount": "1e3",
        "budget-2-description": "Taxi",
        "save": "1",
    }
    refused = client.post(_step(uid, steps.BUDGET), data=bad)
    page = _page(refused_page(client, refused, _step(uid, steps.BUDGET)))
    parsed = _Page(page)
    assert re.search(r'<div class="error-summary"[^>]*>\s*<h2[^>]*>There is a problem</h2>', page)
    assert parsed.summary_links == [
        "#budget-0-description",
        "#budget-0-amount",
        "#budget-1-amount",
        "#budget-2-description",
    ]
    for link in parsed.summary_links:
        assert link[1:] in parsed.ids
    assert "Budget line 1, Amount: Enter at most two decimal places." in page
    assert "Budget line 3, What it pays for: Enter the amount for this line." in page
    # Nothing of the refused step was written; what was typed is shown back.
    assert application_by_uid(uid).budget_lines == []
    assert 'value="12.3456"' in page


def _stored(case):
    """What a case holds of its answers, for comparing two of them."""
    consents = {
        c.kind: c.withdrawn_at is None
        for c in db.session.execute(
            sa.select(Consent).where(Consent.application_id == case.id)
        ).scalars()
    }
    return {
        "fields": {
            name: getattr(case, name)
            for name in (
                "defender_name",
                "country",
                "region",
                "gender",
                "urgency",
                "urgency_reason",
                "defender_work",
                "threat",
                "details",
                "currency",
                "amount_requested",
                "dependants_count",
                "other_funders",
                "status",
                "category",
                "fund_id",
                "defender_key",
                "network_key",
            )
        },
        "lines": [(b.description, b.amount, b.currency) for b in case.budget_lines],
        "dependants": [(d.relation, d.age) for d in case.dependants],
        "references": [(r.name, r.organisation, r.contact) for r in case.references],
        "consents": consents,
        "targets": (
            case.response_due_at - case.submitted_at,
            case.decision_due_at - case.submitted_at,
        ),
    }


def test_an_application_sent_step_by_step_stores_what_the_single_form_stores(app, make_user, fund):
    data = {**RELOCATION, "other_funders": "A city grant, refused", "consent_story": "y"}
    # Every answer of the whole form goes with exactly one step.
    assert sum(len(step_data(step, data)) for step in steps.STEPS) == len(data)
    whole = signed_in(app, make_user("applicant"))
    one_page = start_application(whole, "relocation")
    sent = whole.post(f"/applications/{one_page}/edit", data={**data, "submit": "1"})
    assert sent.location == f"/applications/{one_page}"
    stepwise = signed_in(app, make_user("applicant"))
    stepped = apply_step_by_step(stepwise, "relocation", data)
    first, second = application_by_uid(one_page), application_by_uid(stepped)
    assert first.status == ApplicationStatus.SUBMITTED
    assert _stored(first) == _stored(second)
    assert second.amount_requested == Decimal("150000.50") and second.currency == "KES"
    assert set(steps.saved_steps(second)) == set(steps.STEPS)


def test_no_one_else_reads_or_writes_a_step(app, make_user, fund):
    owner = signed_in(app, make_user("applicant"))
    uid = start_application(owner, "relocation", first={"threat": "canary-step-threat"})
    others = {
        "applicant": (signed_in(app, make_user("applicant")), 404),
        "partner": (signed_in(app, make_user("partner")), 404),
        "reviewer": (signed_in(app, make_user("reviewer")), 403),
    }
    for who, (client, code) in others.items():
        for step in (*steps.STEPS, steps.REVIEW):
            shown = client.get(_step(uid, step))
            assert shown.status_code == code, (who, step)
            assert "canary-step-threat" not in _page(shown)
            posted = client.post(_step(uid, step), data={"threat": "forged", "save": "1"})
            assert posted.status_code == code, (who, step)
    case = application_by_uid(uid)
    assert case.threat == "canary-step-threat" and case.status == ApplicationStatus.DRAFT
    assert steps.saved_steps(case) == {steps.DEFENDER}
    assert owner.get(_step(uid, "nowhere")).status_code == 404
    # Once sent, a step no longer takes answers: it leads to the case page.
    case.status = ApplicationStatus.SUBMITTED
    db.session.commit()
    assert owner.get(_step(uid, steps.DEFENDER)).location == f"/applications/{uid}"
    posted = owner.post(_step(uid, steps.DEFENDER), data={"threat": "late", "save": "1"})
    assert posted.location == f"/applications/{uid}"
    assert application_by_uid(uid).threat == "canary-step-threat"


def test_a_partner_sees_the_consent_a_link_chose_and_only_yes_is_consent(app, make_user):
    """A link to the first step can carry a partner's choice: the step says what it records
    of the defender's consent, and how; an address saying "on" or "n" is no consent."""
    client = signed_in(app, make_user("partner"))
    chosen = {"category": "medical", "consent": "y", "consent_method": "in_writing"}
    page = client.get("/apply/new", query_string=chosen).get_data(as_text=True)
    assert "You record that the defender agreed that your organisation applies" in page
    assert "How the defender gave consent: In writing." in page
    for forged in ("on", "n", ""):
        page = client.get("/apply/new", query_string={**chosen, "consent": forged})
        shown = html.unescape(page.get_data(as_text=True))
        assert "A referral needs the defender's consent." in shown, forged
        assert "You record that" not in shown
