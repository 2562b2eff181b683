"""The staff's case page reads in the order of the work: a summary at the top (who, what,
how much, the status in staff words, the next step and whose it is, the time left), the
actions in the order they are taken, the application behind a section that opens without
JavaScript, and the case's history from the audit log, without content, for the staff of
the case only."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from hrdfund import audit
from hrdfund.cases import messages
from hrdfund.cases.models import (
    ApplicationStatus,
    BudgetLine,
    Decision,
    DecisionOutcome,
    Reference,
)
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.times import time_left
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.reviews import services as review_services
from hrdfund.reviews.models import NoteKind
from tests.conftest import login, make_case, pay
from tests.test_query_counts import statements

S = ApplicationStatus
NOTE_CANARY = "NOTE-CANARY-5KX2 the defender hides in the church"
MESSAGE_CANARY = "MESSAGE-CANARY-9PLQ call me at night"


def _text(html):
    """What a person reads: the page's text without tags or attributes."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _section(html, anchor):
    """The HTML of the page's section with id ``anchor``."""
    found = re.search(rf'<section[^>]*id="{anchor}"[^>]*>(.*?)</section>', html, re.S)
    assert found, f"no section #{anchor}"
    return found.group(1)


def _page(app, user, case):
    client = app.test_client()
    login(client, user)
    response = client.get(f"/applications/{case.uid}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        (53.5, "2 days 5 hours left"),
        (48, "2 days left"),
        (5.9, "5 hours left"),
        (-0.5, "overdue by 0 hours"),
        (-30, "overdue by 30 hours"),
        (-48, "overdue by 48 hours"),
        (-50, "overdue by 2 days"),
        (-97, "overdue by 4 days"),
    ],
)
def test_time_left_reads_in_days_and_hours_and_overdue_in_days_past_two_days(app, hours, words):
    with app.test_request_context():
        assert time_left(hours) == words


def test_the_summary_says_who_what_how_much_whose_step_and_the_time_left(app, fund, make_user):
    manager = make_user("manager")
    reviewer = make_user("reviewer", display_name="Rosa Reviewer")
    sent = utcnow() - timedelta(hours=10)
    case = make_case(
        fund,
        status=S.IN_REVIEW,
        submitted_at=sent,
        first_response_at=sent + timedelta(hours=1),
        response_due_at=sent + timedelta(hours=24),
        decision_due_at=sent + timedelta(hours=10 + 53, minutes=30),
        assigned_reviewer_id=reviewer.id,
        amount_requested=Decimal("6000.00"),
        budget_lines=[BudgetLine(description="Surgery", amount=Decimal("6000.00"), currency="EUR")],
    )
    case.defender_name = "Amina Defender"
    db.session.commit()

    html = _page(app, manager, case)
    summary = _text(_section(html, "summary"))
    assert summary.startswith("Status: In review")
    assert "Who Amina Defender , Kenya" in summary
    assert "What Medical costs · normal" in summary
    assert "How much asked €6,000.00" in summary
    assert "Next step Check the references and recommend · for Rosa Reviewer" in summary
    due = case.decision_due_at.strftime("%Y-%m-%d %H:%M")
    assert f"Time left Decision: 2 days 5 hours left (due {due} UTC)" in summary
    # The applicant side's words for the status are theirs.
    assert "Being reviewed" not in _text(html)

    # Past two days overdue, the time left is said in days.
    case.decision_due_at = utcnow() - timedelta(hours=73)
    db.session.commit()
    summary = _text(_section(_page(app, manager, case), "summary"))
    assert "Decision: overdue by 3 days" in summary


def test_the_actions_follow_the_work_and_the_application_waits_behind_a_section(app, money_world):
    world = money_world
    grant = world.grant("3000")
    case = grant.application
    case.defender_work = "WORK-TEXT-31 defends land rights"
    db.session.commit()
    html = _page(app, world.m1, case)
    order = [
        'id="summary"',
        'id="review"',
        'id="assign"',
        'id="assessment"',
        'id="money"',
        'id="plan"',
        'id="thread"',
        '<details class="application" id="application">',
        'id="history"',
    ]
    places = [html.index(mark) for mark in order]
    assert places == sorted(places), [order[i] for i in range(len(order))]
    # The application's answers are on the page, closed until asked for: a details
    # element that opens without JavaScript.
    details = html[html.index('<details class="application"') :]
    assert "WORK-TEXT-31" in details[: details.index("</details>")]
    assert '<details class="application" id="application" open' not in html
    # The summary's link opens it there, without JavaScript.
    summary = _section(html, "summary")
    link = re.search(r'<a href="([^"]+)">Read the application and its documents</a>', summary)
    assert link and link[1].endswith("?read=application#application")
    client = app.test_client()
    login(client, world.m1)
    opened = client.get(link[1]).get_data(as_text=True)
    assert '<details class="application" id="application" open' in opened


def test_finance_reads_the_money_and_its_own_next_step_without_the_defender(app, money_world):
    world = money_world
    grant = world.grant("3000", name="Hidden Name")
    world.plan(grant, count=2)
    pay(world, grant, "1000")
    html = _page(app, world.finance, grant.application)
    summary = _text(_section(html, "summary"))
    assert "Status: Paying" in summary
    assert "approved €3,000.00 · paid €1,000.00" in summary
    assert "Next step Pay instalment 1, due on 2026-02-01 · for finance" in summary
    assert "Hidden Name" not in html


def test_the_next_step_passes_an_instalment_paid_within_the_tolerance(app, money_world):
    """An instalment paid a few cents short (a rate's rounding, within the tolerance the
    grants-to-pay list and `check` allow) is paid: the next step is the next instalment,
    as the lists say, not the one just paid."""
    world = money_world
    grant = world.grant("3000")
    world.plan(grant, count=2)
    pay(world, grant, "1499.40")
    summary = _text(_section(_page(app, world.finance, grant.application), "summary"))
    assert "Next step Pay instalment 2, due on 2026-03-03 · for finance" in summary


def test_a_grant_without_a_plan_paid_to_the_cent_s_rounding_is_for_a_manager_to_close(
    app, money_world
):
    """Paid in francs, a grant in euros with no plan is left two cents short by the rate's
    rounding: it is paid (the list of grants to pay no longer shows it), and the next step
    is its closing, which frees the cents, not a payment nobody will make."""
    world = money_world
    grant = world.grant("1000")
    pay(world, grant, "999.98", instalment=None)
    summary = _text(_section(_page(app, world.finance, grant.application), "summary"))
    assert "Next step Close the grant: it is paid in full · for a manager" in summary
    other = world.grant("1000", name="Defender Two")
    pay(world, other, "900", instalment=None)
    summary = _text(_section(_page(app, world.finance, other.application), "summary"))
    assert "Next step Pay the grant (a manager may first plan its payments) · for finance" in (
        summary
    )


def test_a_recommended_case_is_any_managers_or_another_managers_when_a_manager_recommended(
    app, money_world
):
    """A reviewer's recommendation goes to a manager, not to "a manager other than" the
    reviewer; a manager's, to a manager other than them."""
    world = money_world
    world.reviewer.display_name = "Rita Reviewer"
    world.m1.display_name = "Manon First"
    by_reviewer = world.recommended("By A Reviewer")
    by_manager = world.recommended("By A Manager", reviewer=world.m1)
    db.session.commit()
    summary = _text(_section(_page(app, world.m2, by_reviewer), "summary"))
    assert "Decide: approve, ask a question or reject · for a manager" in summary
    assert "Rita Reviewer" not in summary
    summary = _text(_section(_page(app, world.m2, by_manager), "summary"))
    assert "for a manager other than Manon First, who recommended it" in summary


def test_the_second_manager_is_told_the_step_is_theirs_and_not_the_first_ones(app, money_world):
    world = money_world
    world.m1.display_name = "Manon First"
    case = world.recommended("Second Look")
    case.amount_requested = Decimal("90000.00")
    db.session.commit()
    case.status = S.AWAITING_SECOND_APPROVAL
    db.session.add(
        Decision(
            application_id=case.id,
            manager_id=world.m1.id,
            outcome=DecisionOutcome.APPROVE,
            amount=Decimal("9000.00"),
            currency="EUR",
        )
    )
    db.session.commit()
    second = _page(app, world.m2, case)
    summary = _text(_section(second, "summary"))
    assert "Confirm the first approval as it stands · for a second manager, not Manon First" in (
        summary
    )
    # The second manager is offered the confirmation alone, nothing to change; the first,
    # nothing at all, rather than a form the rules would refuse.
    assert f"/applications/{case.uid}/confirm-approval?to=case" in second
    assert f"/applications/{case.uid}/approve" not in second
    first = _page(app, world.m1, case)
    assert "You approved it first: another manager confirms it." in first
    assert "/confirm-approval" not in first and f"/applications/{case.uid}/approve" not in first


def test_the_history_says_a_first_approval_as_the_decision_it_is(app, money_world):
    """Above the four-eyes threshold, the first manager's approval reads as one, with who
    gave it (it read as a move from Recommended to Awaiting second approval), and the
    second's as the grant approved."""
    world = money_world
    case = world.recommended()
    first = approve_with_recorded_rates(
        case, world.m1, Decimal("6000"), [(world.eur.id, Decimal("6000"))]
    )
    db.session.commit()
    assert first is None and case.status == S.AWAITING_SECOND_APPROVAL
    text = _text(_section(_page(app, world.m2, case), "history"))
    name = world.m1.display_name or world.m1.login
    assert f"{name} (Manager) gave the first approval; a second manager confirms it" in text
    assert "to Awaiting second approval" not in text
    approve_with_recorded_rates(case, world.m2, Decimal("6000"), [(world.eur.id, Decimal("6000"))])
    db.session.commit()
    text = _text(_section(_page(app, world.m2, case), "history"))
    assert "approved the grant" in text


def test_the_history_says_who_did_what_and_when_without_content(app, money_world, make_user):
    world = money_world
    grant = world.grant("3000")
    case = grant.application
    colleague = make_user("reviewer", display_name="Colin Colleague")
    review_services.add_note(case, colleague, NoteKind.NOTE, NOTE_CANARY)
    messages.post_message(case, world.applicant, MESSAGE_CANARY)
    pay(world, grant, "1234.56", instalment=None)
    # Another case of the fund: its entries are not this one's.
    other = world.recommended("Someone Else")
    review_services.add_note(other, world.reviewer, NoteKind.NOTE, "other note")
    db.session.commit()

    html = _page(app, world.m1, case)
    history = _section(html, "history")
    text = _text(history)
    assert "Colin Colleague (Reviewer) added a note" in text
    assert "the applicant side wrote a message" in text
    assert "moved the case from Recommended to Approved" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \S+ \(Finance\) recorded a payment", text)
    assert text.count("added a note") == 1
    # Who and what, never what was written or paid.
    for content in (NOTE_CANARY, MESSAGE_CANARY, "1,234.56", "1234.56", "3,000", "€"):
        assert content not in history, content
    # No login, pseudonym or stored code.
    assert f"u{colleague.id}" not in text
    assert "case_note" not in text and "payment.recorded" not in text

    # Finance reads the money's history, not the review's.
    finance = _text(_section(_page(app, world.finance, case), "history"))
    assert "recorded a payment" in finance
    assert "added a note" not in finance
    # The applicant side reads no history at all.
    assert 'id="history"' not in _page(app, world.applicant, case)


def test_the_history_names_no_one_of_another_fund(app, money_world, make_user, make_fund):
    """Another member fund's reviewer who ran the duplicate check on their own case left
    an entry on this one, in this fund's chain: read without their name."""
    world = money_world
    case = world.grant("3000").application
    other = make_fund("Other fund")
    outsider = make_user("reviewer", fund_id=other.id, display_name="Otto Outsider")
    # As the duplicate check records it in each fund it matched.
    audit.record(
        "network.matched",
        actor=outsider,
        fund=case.fund_id,
        object_type="applications",
        object_id=case.uid,
        asking_fund=other.id,
    )
    db.session.commit()
    history = _text(_section(_page(app, world.m1, case), "history"))
    assert (
        "staff of another member fund asked whether this fund has a case for the same defender"
        in history
    )
    assert "Otto Outsider" not in history and "Other fund" not in history


def test_the_history_is_one_query_however_long(app, money_world):
    world = money_world
    grant = world.grant("3000")
    case = grant.application
    for i in range(25):
        review_services.add_note(case, world.reviewer, NoteKind.NOTE, f"note {i}")
        db.session.add(Reference(application_id=case.id, name=f"Ref {i}"))
    world.plan(grant, count=3, starts_on=date(2026, 2, 1))
    for seq in (1, 2, 3):
        pay(world, grant, "100", instalment=seq)
    db.session.commit()
    client = app.test_client()
    login(client, world.m1)
    response, ran = statements(app, client, f"/applications/{case.uid}")
    assert response.status_code == 200
    assert _text(_section(response.get_data(as_text=True), "history")).count("added a note") == 25
    assert len([s for s in ran if "audit_events" in s]) == 1
