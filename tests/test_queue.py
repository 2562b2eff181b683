"""The staff queue: targets and overdue cases stand out, filters narrow it, and it costs
the same number of queries for five cases as for sixty."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hrdfund.cases import messages
from hrdfund.cases.models import ApplicationStatus, Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.conftest import login, make_case


def _cases(fund, n, **fields):
    """``n`` sent cases, sent an hour apart, the newest just now."""
    now = utcnow()
    rows = [
        make_case(fund, commit=False, **{"submitted_at": now - timedelta(hours=i), **fields})
        for i in range(n)
    ]
    db.session.commit()
    return rows


def _count_queries(client, path):
    # Start each measurement from the same state: nothing cached in the shared session.
    db.session.commit()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_the_queue_costs_the_same_queries_for_five_or_sixty_cases(client, fund, make_user):
    login(client, make_user("reviewer"))
    _cases(fund, 5)
    few = _count_queries(client, "/cases")
    _cases(fund, 55)
    many = _count_queries(client, "/cases")
    filtered = _count_queries(client, "/cases?category=medical&urgency=normal")
    sorted_ = _count_queries(client, "/cases?sort=amount&country=KE&mine=1")
    assert few == many == filtered == sorted_


def test_the_pool_filter_costs_the_same_queries_whatever_the_cases(
    client, fund, make_user, make_donor
):
    from hrdfund.pools.models import Pool, PoolRestriction, RestrictionKind

    login(client, make_user("reviewer"))
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="Medical", currency="EUR")
    pool.restrictions = [PoolRestriction(kind=RestrictionKind.CATEGORY, value="medical")]
    db.session.add(pool)
    db.session.commit()
    _cases(fund, 3)
    few = _count_queries(client, f"/cases?pool={pool.id}")
    _cases(fund, 40)
    assert _count_queries(client, f"/cases?pool={pool.id}") == few


def test_an_urgent_case_past_its_first_response_target_is_marked_overdue(client, fund, make_user):
    login(client, make_user("manager"))
    (late,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=utcnow() - timedelta(hours=30))
    (fresh,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=utcnow() - timedelta(hours=2))
    html = client.get("/cases").get_data(as_text=True)
    assert "first response overdue by 6 h" in html
    assert "first response in 21 h" in html
    assert late.uid in html and fresh.uid in html


def test_past_two_days_overdue_the_queue_counts_days_and_a_time_says_its_zone(
    client, fund, make_user
):
    login(client, make_user("manager"))
    sent = utcnow() - timedelta(hours=24 + 73, minutes=30)
    (late,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=sent)
    html = client.get("/cases").get_data(as_text=True)
    assert "first response overdue by 3 days" in html
    assert "overdue by 73 h" not in html
    assert f"{sent.strftime('%Y-%m-%d %H:%M')} UTC" in html


@pytest.mark.parametrize(
    "query, shown",
    [
        ("category=legal", "legal"),
        ("urgency=urgent", "urgent"),
        ("country=co", "co"),
        ("status=in_review", "review"),
        ("mine=1", "mine"),
    ],
)
def test_filters_narrow_the_queue(client, fund, make_user, query, shown):
    me = make_user("reviewer")
    login(client, me)
    cases = {
        "legal": _cases(fund, 1, category=Category.LEGAL)[0],
        "urgent": _cases(fund, 1, urgency=Urgency.URGENT)[0],
        "co": _cases(fund, 1, country="CO")[0],
        "review": _cases(fund, 1, status=ApplicationStatus.IN_REVIEW)[0],
        "mine": _cases(fund, 1, assigned_reviewer_id=me.id)[0],
    }
    html = client.get(f"/cases?{query}").get_data(as_text=True)
    assert cases[shown].uid in html
    assert all(c.uid not in html for name, c in cases.items() if name != shown)
    # The urgency reads in words staff say, in the list and its filter.
    row = html[html.index(cases[shown].uid) :].split("</tr>")[0]
    urgency = "Urgent" if shown == "urgent" else "Not urgent"
    assert f'data-label="Urgency">{urgency}</td>' in row
    assert '<option value="normal">Not urgent</option>' in html


def test_the_queue_says_who_each_case_is_assigned_to_and_filters_by_it(
    client, fund, make_user, make_fund
):
    """Each row names whom the case is assigned to (the reader as "you", a colleague by
    name, "no one yet"); the filter lists the reader, no one, and each reviewer and
    manager of the fund, one who left marked so. A colleague of another fund sent in the
    address filters nothing; the earlier link ``mine=1`` still means the reader. The CSV
    of the list says it too."""
    me = make_user("reviewer", display_name="Rita Reviewer")
    colleague = make_user("manager", display_name="Marek Manager")
    gone = make_user("reviewer", display_name="Gabriel Gone")
    outsider = make_user("reviewer", fund_id=make_fund("Other Fund").id, display_name="Oscar")
    cases = {
        "me": _cases(fund, 1, assigned_reviewer_id=me.id)[0],
        "colleague": _cases(fund, 1, assigned_reviewer_id=colleague.id)[0],
        "gone": _cases(fund, 1, assigned_reviewer_id=gone.id)[0],
        "no one": _cases(fund, 1)[0],
    }
    gone.active = False
    db.session.commit()
    login(client, me)
    html = client.get("/cases").get_data(as_text=True)
    rows = {name: re.search(rf"{case.uid}.*?</tr>", html, re.S)[0] for name, case in cases.items()}
    assert ">you<" in rows["me"] and "Marek Manager" in rows["colleague"]
    assert "Gabriel Gone" in rows["gone"] and "no one yet" in rows["no one"]
    choices = re.search(r'<select id="f-assigned" name="assigned">(.*?)</select>', html, re.S)[1]
    assert "Marek Manager" in choices and "Gabriel Gone (deactivated)" in choices
    assert "Oscar" not in choices and "Rita Reviewer" not in choices  # the reader is "Me"

    def listed(query):
        page = client.get(f"/cases?{query}").get_data(as_text=True)
        return {name for name, case in cases.items() if case.uid in page}

    assert listed("assigned=me") == listed("mine=1") == {"me"}
    assert listed("assigned=none") == {"no one"}
    assert listed(f"assigned={colleague.uid}") == {"colleague"}
    assert listed(f"assigned={gone.uid}") == {"gone"}
    assert listed(f"assigned={outsider.uid}") == set(cases)
    nothing = client.get("/cases?assigned=none&urgency=urgent").get_data(as_text=True)
    assert "No open case matches these filters." in nothing and "No open cases." not in nothing
    data = client.get(f"/cases/export.csv?assigned={colleague.uid}").get_data(as_text=True)
    header, line = data.splitlines()[:2]
    assert "Assigned to" in header.split(",") and "Marek Manager" in line
    assert cases["colleague"].uid in line and len(data.splitlines()) == 2


def test_the_status_filter_lists_the_statuses_in_the_order_of_the_work(client, fund, make_user):
    """The same order on every page and every server process: a case's path from sent to
    paying, not whatever order a set of statuses happens to take in a process."""
    login(client, make_user("reviewer"))
    html = client.get("/cases").get_data(as_text=True)
    select = re.search(r'<select id="f-status" name="status">(.*?)</select>', html, re.S)[1]
    listed = [v for v in re.findall(r'<option value="([^"]*)"', select) if v]
    work = [s.value for s in ApplicationStatus]
    assert len(listed) > 3
    assert listed == sorted(listed, key=work.index)


def test_nonsense_filters_are_ignored_not_errors(client, fund, make_user):
    login(client, make_user("reviewer"))
    (case,) = _cases(fund, 1)
    response = client.get("/cases?status=approved&category=<script>&page=-4")
    assert response.status_code == 200 and case.uid in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "typed, language",
    [("Kenya", "en"), ("  kenya ", "en"), ("ke", "en"), ("Kenia", "es"), ("Kenya", "fr")],
)
def test_the_country_filter_takes_a_name_in_the_users_language(
    client, fund, make_user, typed, language
):
    login(client, make_user("reviewer", language=language))
    (kenya,) = _cases(fund, 1, country="KE")
    (colombia,) = _cases(fund, 1, country="CO")
    response = client.get("/cases", query_string={"country": typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert kenya.uid in html and colombia.uid not in html


@pytest.mark.parametrize("typed", ["Kenyaa", "123", "<script>", "Atlantis"])
def test_a_country_no_one_is_called_is_refused_in_words_not_ignored(client, fund, make_user, typed):
    """Typed wrong, the filter says so and lists nothing, instead of listing every case as
    if it had not been asked."""
    login(client, make_user("reviewer"))
    (case,) = _cases(fund, 1, country="KE")
    response = client.get("/cases", query_string={"country": typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "No country is called" in html and "type its name or its two-letter code" in html
    assert case.uid not in html and "<script>" not in html


def test_largest_amount_first_compares_what_amounts_are_worth(client, fund, make_user):
    """5,500,000 pesos are about 1,300 euros, 22,310 dollars about 20,000: sorted by
    their worth in the reporting currency, at the fund's recorded rates; a case whose
    currency has no rate comes last."""
    from datetime import date
    from decimal import Decimal

    from hrdfund.pools.models import ExchangeRate

    for base, quote, rate, on in (
        ("EUR", "USD", "1.20", date(2026, 1, 1)),  # an older rate, not the one used
        ("EUR", "USD", "1.1155", date(2026, 2, 1)),
        ("COP", "EUR", "0.00024", date(2026, 2, 1)),
    ):
        db.session.add(
            ExchangeRate(
                fund_id=fund.id, on_date=on, base=base, quote=quote, rate=Decimal(rate), source="x"
            )
        )
    login(client, make_user("reviewer"))
    (pesos,) = _cases(fund, 1, currency="COP", amount_requested=Decimal(5_500_000))
    (dollars,) = _cases(fund, 1, currency="USD", amount_requested=Decimal(22_310))
    (euros,) = _cases(fund, 1, currency="EUR", amount_requested=Decimal(15_000))
    (shillings,) = _cases(fund, 1, currency="KES", amount_requested=Decimal(90_000_000))
    (small,) = _cases(fund, 1, currency="EUR", amount_requested=Decimal(1_000))
    html = client.get("/cases?sort=amount").get_data(as_text=True)
    order = sorted((dollars, euros, pesos, small, shillings), key=lambda c: html.index(c.uid))
    assert order == [dollars, euros, pesos, small, shillings]
    assert "≈ €20,000.00" in html and "≈ €1,320.00" in html and "no rate to EUR" in html


def test_the_worth_shown_is_converted_as_a_decision_converts_it(client, fund, make_user):
    """1.15 pounds at 1.5 euros a pound are 1.725 euros, rounded half up to 1.73 as every
    decision rounds them; a sum in floating point makes it 1.7249... and shows 1.72."""
    from decimal import Decimal

    from hrdfund.core.money import convert
    from hrdfund.pools.models import ExchangeRate

    db.session.add(
        ExchangeRate(
            fund_id=fund.id,
            on_date=utcnow().date(),
            base="GBP",
            quote="EUR",
            rate=Decimal("1.5"),
            source="x",
        )
    )
    login(client, make_user("reviewer"))
    _cases(fund, 1, currency="GBP", amount_requested=Decimal("1.15"))
    html = client.get("/cases?sort=amount").get_data(as_text=True)
    assert convert(Decimal("1.15"), Decimal("1.5")) == Decimal("1.73")
    assert "≈ €1.73" in html


def test_the_pool_filter_keeps_only_cases_the_pool_may_fund(client, fund, make_user, make_donor):
    from hrdfund.pools.models import Pool, PoolRestriction, RestrictionKind

    login(client, make_user("reviewer"))
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="Legal aid pool", currency="EUR")
    pool.restrictions = [PoolRestriction(kind=RestrictionKind.CATEGORY, value="legal")]
    db.session.add(pool)
    db.session.commit()
    (legal,) = _cases(fund, 1, category=Category.LEGAL)
    (medical,) = _cases(fund, 1, category=Category.MEDICAL)
    html = client.get(f"/cases?pool={pool.id}").get_data(as_text=True)
    assert legal.uid in html and medical.uid not in html
    assert "Legal aid pool" in html


def test_sorting_puts_the_chosen_case_first(client, fund, make_user):
    login(client, make_user("reviewer"))
    now = utcnow()
    # An urgent case sent an hour ago is due before a normal case sent two days ago.
    (old_normal,) = _cases(fund, 1, submitted_at=now - timedelta(hours=48))
    (new_urgent,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=now - timedelta(hours=1))
    (big,) = _cases(fund, 1, submitted_at=now - timedelta(hours=5), amount_requested=9000)

    def first(sort):
        html = client.get(f"/cases?sort={sort}").get_data(as_text=True)
        uids = [c.uid for c in (old_normal, new_urgent, big)]
        return min(uids, key=html.index)

    assert first("due") == new_urgent.uid
    assert first("oldest") == old_normal.uid
    assert first("newest") == new_urgent.uid
    assert first("amount") == big.uid


def test_targets_can_differ_by_category(app, client, fund, make_user):
    app.config["TARGETS_BY_CATEGORY"] = '{"medical": {"urgent": [6, 24]}}'
    login(client, make_user("reviewer"))
    sent = utcnow() - timedelta(minutes=30)
    (medical,) = _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=sent)
    (legal,) = _cases(fund, 1, urgency=Urgency.URGENT, category=Category.LEGAL, submitted_at=sent)
    assert medical.response_due_at == sent + timedelta(hours=6)
    assert medical.decision_due_at == sent + timedelta(hours=24)
    assert legal.response_due_at == sent + timedelta(hours=24)
    html = client.get("/cases").get_data(as_text=True)
    assert "first response in 5 h" in html and "first response in 23 h" in html


def test_time_left_past_two_days_is_said_in_days(client, fund, make_user):
    """A first response due in 71 hours reads "in 2 days" (whole days, rounded down, as
    overdue ones are said), not "in 71 h"; one within two days, in hours."""
    login(client, make_user("reviewer"))
    _cases(fund, 1, submitted_at=utcnow() - timedelta(minutes=30))  # normal: 72 h
    _cases(fund, 1, urgency=Urgency.URGENT, submitted_at=utcnow() - timedelta(minutes=30))
    html = client.get("/cases").get_data(as_text=True)
    assert "first response in 2 days" in html and "first response in 23 h" in html
    assert "in 71 h" not in html


@pytest.mark.parametrize(
    "table",
    ['{"medical": {"urgent": [0, 24]}}', '{"nonsense": {}}', "[1]", "{not json"],
)
def test_a_malformed_target_table_stops_the_start(app_config, table):
    from hrdfund import create_app
    from hrdfund.cases.targets import TargetConfigError

    with pytest.raises(TargetConfigError):
        create_app({**app_config, "TARGETS_BY_CATEGORY": table})


def test_the_clock_pauses_while_the_applicant_is_asked(client, fund, make_user):

    reviewer = make_user("reviewer")
    applicant = make_user("applicant")
    (case,) = _cases(
        fund,
        1,
        status=ApplicationStatus.IN_REVIEW,
        applicant_id=applicant.id,
        submitted_at=utcnow() - timedelta(hours=10),
        first_response_at=utcnow() - timedelta(hours=9),
    )
    due = case.decision_due_at
    messages.post_message(case, reviewer, "Which hospital gave the quote?")
    assert case.status == ApplicationStatus.INFO_REQUESTED and case.clock_paused_at
    # The applicant answers three days later: the decision target moves by three days.
    case.clock_paused_at -= timedelta(days=3)
    db.session.commit()
    login(client, reviewer)
    assert "clock paused" in client.get("/cases").get_data(as_text=True)
    messages.post_message(case, applicant, "The city hospital.")
    db.session.commit()
    assert case.status == ApplicationStatus.IN_REVIEW and case.clock_paused_at is None
    assert abs((case.decision_due_at - due) - timedelta(days=3)) < timedelta(seconds=5)
