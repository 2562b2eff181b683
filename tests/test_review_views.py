"""The staff screens of a case, through the forms a reviewer and managers use: taking the
case, checking references, notes, the assessment, questions, rejection, approval with money
from one or more pools, other funders and duplicate warnings."""

import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.cases import services
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    Decision,
    Urgency,
)
from hrdfund.core.extensions import db
from hrdfund.grants.models import Grant
from hrdfund.ledger.models import Allocation
from hrdfund.pools.models import Donor, ExchangeRate, Pool
from hrdfund.reviews import services as review_services
from hrdfund.reviews.models import CaseNote, Cofunding
from tests.conftest import as_shown, make_costed_case, signed_in

S = ApplicationStatus


@pytest.fixture
def staff(app, fund, make_user, make_donor, make_pool):
    donor = make_donor()
    return {
        "reviewer": make_user("reviewer", display_name="Rita"),
        "m1": make_user("manager", display_name="Mona"),
        "m2": make_user("manager", display_name="Marek"),
        "applicant": make_user("applicant"),
        "medical": make_pool(donor, "Medical pool", amount=4000, category="medical"),
        "general": make_pool(donor, "General pool", amount=20000),
        "legal": make_pool(donor, "Legal pool", category="legal"),
    }


def _case(fund, staff, status=S.SUBMITTED, name="Defender canary-NAME", **fields):
    return make_costed_case(
        fund,
        applicant_id=staff["applicant"].id,
        status=status,
        urgency=Urgency.URGENT,
        defender_name=name,
        defender_key=services.defender_key(name, "KE"),
        **fields,
    )


def _post(client, path, data):
    """Post a form: the answer, or the page a refused form comes back on."""
    return as_shown(client, client.post(path, data=data))


def test_a_reviewer_takes_checks_and_recommends_through_the_forms(app, fund, staff):
    case = _case(fund, staff)
    reviewer = signed_in(app, staff["reviewer"])
    page = reviewer.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Take this case" in page and "Medical pool" in page
    assert (
        _post(
            reviewer, f"/applications/{case.uid}/assign", {"assign-reviewer": staff["reviewer"].id}
        ).status_code
        == 302
    )
    db.session.refresh(case)
    assert case.status == S.IN_REVIEW and case.assigned_reviewer_id == staff["reviewer"].id
    for ref in case.references:
        response = _post(
            reviewer,
            f"/applications/{case.uid}/references/{ref.uid}",
            {f"ref-{ref.uid}-status": "confirmed", f"ref-{ref.uid}-notes": "Knows her work"},
        )
        assert response.status_code == 302
    _post(
        reviewer,
        f"/applications/{case.uid}/notes",
        {"note-kind": "partner_check", "note-body": "Partner confirmed the hospital canary-NOTE"},
    )
    form = {
        "recommend-recommendation": "approve_partly",
        "recommend-lines-0": "5000.00",
        "recommend-lines-1": "500.00",
        "recommend-assessment": "Verified by two references",
    }
    # The risk starts unchosen, and left so it is asked for: never taken as low.
    page = reviewer.get(f"/applications/{case.uid}").get_data(as_text=True)
    risk = page.split('name="recommend-risk_level"')[1].split("</select>")[0]
    assert re.match(r'[^<]*><option value="">Choose the risk</option>', risk), risk[:200]
    assert "selected" not in risk
    unchosen = _post(reviewer, f"/applications/{case.uid}/recommend", form)
    assert unchosen.refused and "Say how much risk the defender faces." in unchosen.text
    db.session.refresh(case)
    assert case.status == S.IN_REVIEW
    response = _post(
        reviewer, f"/applications/{case.uid}/recommend", {**form, "recommend-risk_level": "high"}
    )
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == S.RECOMMENDED
    assert [line.recommended_amount for line in case.budget_lines] == [
        Decimal("5000.00"),
        Decimal("500.00"),
    ]
    assert all(r.status.value == "confirmed" for r in case.references)
    page = reviewer.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Check with a local partner" in page and "canary-NOTE" in page
    # The note and the assessment stay with staff.
    applicant = signed_in(app, staff["applicant"])
    mine = applicant.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "canary-NOTE" not in mine and "Verified by two references" not in mine


def test_the_assignment_rule_holds_for_whoever_calls_the_service(app, fund, staff):
    """A reviewer takes a case only for themself, whatever calls the service; a manager
    gives it to anyone on its staff."""
    case = _case(fund, staff)
    with pytest.raises(review_services.AssignOthersError):
        review_services.assign_reviewer(case, staff["m1"], staff["reviewer"])
    db.session.rollback()
    case = db.session.get(Application, case.id)
    assert case.assigned_reviewer_id is None and case.status == S.SUBMITTED
    review_services.assign_reviewer(case, staff["reviewer"], staff["reviewer"])
    review_services.assign_reviewer(case, staff["m2"], staff["m1"])
    assert case.assigned_reviewer_id == staff["m2"].id and case.status == S.IN_REVIEW


def test_a_reviewer_cannot_assign_someone_else_nor_approve(app, fund, staff):
    case = _case(fund, staff)
    reviewer = signed_in(app, staff["reviewer"])
    assert (
        _post(
            reviewer, f"/applications/{case.uid}/assign", {"assign-reviewer": staff["m1"].id}
        ).status_code
        == 403
    )
    assert (
        _post(reviewer, f"/applications/{case.uid}/approve", {"approve-amount": "10"}).status_code
        == 403
    )
    assert (
        _post(reviewer, f"/applications/{case.uid}/reject", {"reject-reason": "x"}).status_code
        == 403
    )


def _recommended(fund, staff, amount="5500.00", **asked):
    """A case recommended in part for ``amount``; ``asked`` sets what it asks (its
    ``amount_requested`` and ``currency``)."""
    case = _case(fund, staff, status=S.SUBMITTED)
    for name, value in asked.items():
        setattr(case, name, value)
    from hrdfund.reviews import services as reviews

    reviews.assign_reviewer(case, staff["reviewer"], staff["reviewer"])
    reviews.recommend(case, staff["reviewer"], "high", "approve_partly", Decimal(amount), "ok")
    db.session.commit()
    return case


def _approve(client, case, amount, *draws):
    data = {"approve-amount": amount}
    for i, (pool, part) in enumerate(draws):
        data[f"approve-draws-{i}-pool"] = str(pool.id)
        data[f"approve-draws-{i}-amount"] = part
    return _post(client, f"/applications/{case.uid}/approve", data)


def test_two_managers_approve_above_the_threshold_with_two_pools(app, fund, staff):
    """The first manager approves an amount and its split of pools; the second manager
    finds that split stated, with the confirmation alone to send, and confirming it as it
    is draws the money."""
    case = _recommended(fund, staff)
    m1, m2 = signed_in(app, staff["m1"]), signed_in(app, staff["m2"])
    page = m1.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Legal pool" in page and "does not fund this kind of support" in page
    assert "Approvals worth €5,000.00 or more need two managers" in page
    split = ((staff["medical"], "4000.00"), (staff["general"], "1500.00"))
    response = _approve(m1, case, "5500.00", *split)
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == S.AWAITING_SECOND_APPROVAL
    assert db.session.execute(sa.select(sa.func.count(Grant.id))).scalar() == 0
    # The first manager cannot complete it.
    again = _approve(m1, case, "5500.00", *split)
    assert again.refused
    assert "second, different manager" in again.get_data(as_text=True)
    # The second manager reads the first manager's split and may only confirm it.
    page = m2.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Split proposed: Medical pool €4,000.00; General pool €1,500.00." in page
    assert 'id="approve-draws-0-pool"' not in page and 'id="approve-amount"' not in page
    confirm = f"/applications/{case.uid}/confirm-approval?to=case"
    assert f'action="{confirm}"' in page
    # Confirming it as it is draws on both pools; the medical pool is emptied exactly.
    done = m2.post(confirm)
    assert done.status_code == 302 and done.location.endswith(f"/applications/{case.uid}#decision")
    db.session.refresh(case)
    assert case.status == S.APPROVED
    allocations = db.session.execute(sa.select(Allocation.pool_id, Allocation.amount)).all()
    assert sorted(allocations) == sorted(
        [(staff["medical"].id, Decimal("4000.00")), (staff["general"].id, Decimal("1500.00"))]
    )
    applicant = signed_in(app, staff["applicant"])
    mine = applicant.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "The fund approved €5,500.00" in mine and "part of what was asked" in mine


@pytest.mark.parametrize(
    "draws, message",
    [
        (
            [("medical", "4000.00")],
            "must add up to the approved amount: they add up to €4,000.00, not €4,900.00.",
        ),
        ([("legal", "4900.00")], "does not fund this kind of support"),
        ([], "Choose the pool or pools the grant draws on, and how much."),
        ([("medical", "4500.00"), ("general", "400.00")], "less than 4500.00 available"),
    ],
)
def test_an_approval_that_breaks_a_rule_commits_nothing(app, fund, staff, draws, message):
    # Below the four-eyes threshold: this approval would commit the money at once.
    case = _recommended(fund, staff, amount="4900.00")
    m1 = signed_in(app, staff["m1"])
    response = _approve(m1, case, "4900.00", *[(staff[p], a) for p, a in draws])
    assert response.refused
    assert message in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.status == S.RECOMMENDED
    assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 0
    assert db.session.execute(sa.select(sa.func.count(Decision.id))).scalar() == 0


def test_the_same_pool_on_three_lines_is_refused_by_name(app, fund, staff):
    """The form's three lines naming one pool would take three times its cap: refused in
    words naming the pool, and nothing recorded."""
    capped = staff["general"]
    db.session.execute(sa.update(Pool).where(Pool.id == capped.id).values(cap_per_grant=1500))
    db.session.commit()
    case = _recommended(fund, staff, amount="4500.00")
    m1 = signed_in(app, staff["m1"])
    page = m1.get(f"/applications/{case.uid}").get_data(as_text=True)
    # It fits for a part only: the table says so beside what the case asks, in its currency.
    assert "for a part only: at most €1,500.00 for one grant, and the amount asked is" in page
    assert "about €6,000.00" in page  # what the case asks; 4,500 were recommended
    response = _approve(m1, case, "4500.00", *[(capped, "1500.00")] * 3)
    assert response.refused
    assert "The pool General pool is chosen twice" in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 0
    assert db.session.execute(sa.select(sa.func.count(Decision.id))).scalar() == 0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"approve-draws-1-amount": "100.00"}, "Line 2 has an amount but no pool"),
        ({"approve-draws-1-pool": "general"}, "Line 2 has a pool but no amount"),
        ({"approve-draws-1-pool": "x1", "approve-draws-1-amount": "100"}, "Line 2 names no pool"),
        (
            {"approve-draws-1-pool": "99999999999999999999", "approve-draws-1-amount": "100"},
            "Line 2 names no pool",
        ),
        ({"approve-draws-1-pool": "elsewhere", "approve-draws-1-amount": "100"}, "not open"),
        # Figures a digit test takes and a number reading does not: ² is no pool id.
        ({"approve-draws-1-pool": "\u00b2", "approve-draws-1-amount": "100"}, "names no pool"),
        ({"approve-draws-1-pool": "\u2460", "approve-draws-1-amount": "100"}, "names no pool"),
    ],
)
def test_a_half_filled_or_forged_line_is_refused_not_dropped(
    app, fund, staff, make_fund, data, message, make_pool
):
    """A line with an amount and no pool, a pool and no amount, or a pool the form does not
    offer (another fund's included) is refused in words; the rest is not approved alone."""
    other = make_fund("Other fund")
    donor = Donor(fund_id=other.id, name="Elsewhere donor")
    db.session.add(donor)
    db.session.flush()
    names = {
        "general": staff["general"].id,
        "elsewhere": make_pool(donor, "Elsewhere", fund_id=other.id).id,
    }
    case = _recommended(fund, staff, amount="500.00")
    form = {
        "approve-amount": "500.00",
        "approve-draws-0-pool": str(staff["general"].id),
        "approve-draws-0-amount": "400.00",
    }
    for key, value in data.items():
        form[key] = str(names.get(value, value))
    response = _post(signed_in(app, staff["m1"]), f"/applications/{case.uid}/approve", form)
    assert response.refused
    page = response.get_data(as_text=True)
    assert message in page and "Elsewhere" not in page
    db.session.refresh(case)
    assert case.status == S.RECOMMENDED
    assert db.session.execute(sa.select(sa.func.count(Allocation.id))).scalar() == 0


def test_a_pool_without_a_rate_says_so_in_one_plain_sentence(
    app, fund, staff, make_donor, make_pool
):
    make_pool(make_donor("Shilling donor"), "Shilling pool", currency="KES")
    case = _recommended(fund, staff, amount="500.00")
    page = signed_in(app, staff["m1"]).get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Does not fit: no exchange rate from EUR to KES is recorded." in page
    assert "No: No" not in page


def test_the_decision_form_names_the_threshold_in_its_own_currency(app, fund, staff):
    """A case in shillings: the form gives the threshold in euros and what the case is
    worth in euros; without a rate it says a rate must be recorded first."""
    case = _recommended(
        fund, staff, amount="150000.00", currency="KES", amount_requested=Decimal("200000.00")
    )
    m1 = signed_in(app, staff["m1"])
    page = m1.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Approvals worth €5,000.00 or more need two managers" in page
    assert "KES\xa05,000.00" not in page and "KES5,000.00" not in page
    assert "No exchange rate from KES to EUR is recorded: finance or a manager records one" in page
    db.session.add(
        ExchangeRate(
            fund_id=fund.id,
            on_date=date(2026, 1, 1),
            base="EUR",
            quote="KES",
            rate=Decimal(143),
            source="CBK",
        )
    )
    db.session.commit()
    page = m1.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "KES\xa0150,000.00 is worth €1,048.95." in page


def test_the_recommender_may_not_approve(app, fund, staff):
    from hrdfund.reviews import services as reviews

    case = _case(fund, staff)
    reviews.assign_reviewer(case, staff["m1"], staff["m1"])
    reviews.recommend(case, staff["m1"], "low", "approve", Decimal(100), "ok")
    db.session.commit()
    response = _approve(signed_in(app, staff["m1"]), case, "100.00", (staff["general"], "100.00"))
    assert response.refused
    assert "recommended a case may not approve" in response.get_data(as_text=True)


def test_a_pool_in_another_currency_converts_at_the_recorded_rate(
    app, fund, staff, make_donor, make_pool
):
    usd = make_pool(make_donor("US donor"), "Dollar pool", currency="USD", amount=10000)
    db.session.add(
        ExchangeRate(
            fund_id=fund.id,
            on_date=date(2026, 11, 1),
            base="EUR",
            quote="USD",
            rate=Decimal("1.08"),
            source="Central bank",
        )
    )
    db.session.commit()
    case = _recommended(fund, staff, amount="1000.00")
    response = _approve(signed_in(app, staff["m1"]), case, "1000.00", (usd, "1000.00"))
    assert response.status_code == 302
    allocation = db.session.execute(sa.select(Allocation)).scalar_one()
    assert (allocation.amount, allocation.grant_amount) == (Decimal("1080.00"), Decimal("1000.00"))
    assert allocation.fx_rate == Decimal("1.08")


def test_a_manager_rejects_and_the_applicant_reads_why(app, fund, staff):
    case = _recommended(fund, staff)
    m1 = signed_in(app, staff["m1"])
    empty = _post(m1, f"/applications/{case.uid}/reject", {"reject-reason": "  "})
    assert empty.refused and "Give the applicant a reason" in empty.get_data(as_text=True)
    assert (
        _post(
            m1,
            f"/applications/{case.uid}/reject",
            {"reject-reason": "We only fund work linked to human rights."},
        ).status_code
        == 302
    )
    mine = (
        signed_in(app, staff["applicant"]).get(f"/applications/{case.uid}").get_data(as_text=True)
    )
    assert "We only fund work linked to human rights." in mine


def test_a_manager_asks_for_information_and_the_case_waits(app, fund, staff):
    case = _recommended(fund, staff)
    m1 = signed_in(app, staff["m1"])
    assert (
        _post(
            m1, f"/applications/{case.uid}/question", {"question-question": "Which hospital?"}
        ).status_code
        == 302
    )
    db.session.refresh(case)
    assert case.status == S.INFO_REQUESTED and case.clock_paused_at is not None
    outcomes = db.session.execute(sa.select(Decision.outcome)).scalars().all()
    assert [o.value for o in outcomes] == ["request_info"]
    mine = (
        signed_in(app, staff["applicant"]).get(f"/applications/{case.uid}").get_data(as_text=True)
    )
    assert "Which hospital?" in mine


def test_declaring_a_conflict_takes_the_manager_off_the_case(app, fund, staff):
    case = _recommended(fund, staff)
    m1 = signed_in(app, staff["m1"])
    unticked = _post(m1, f"/applications/{case.uid}/conflict", {})
    assert unticked.refused and "Tick the box" in unticked.get_data(as_text=True)
    assert (
        _post(m1, f"/applications/{case.uid}/conflict", {"conflict-confirm": "y"}).status_code
        == 302
    )
    assert m1.get(f"/applications/{case.uid}").status_code == 404
    assert _approve(m1, case, "5500.00").status_code == 404
    assert case.uid not in m1.get("/cases").get_data(as_text=True)


def test_other_funders_are_recorded_and_a_duplicate_is_flagged(app, fund, staff):
    first = _case(fund, staff)
    first.code = "HRD1-26-0042"
    second = _case(fund, staff, name="  defender CANARY-name ")
    other_person = _case(fund, staff, name="Someone else")
    other_person.applicant_id = None
    db.session.commit()
    reviewer = signed_in(app, staff["reviewer"])
    page = reviewer.get(f"/applications/{second.uid}").get_data(as_text=True)
    assert "Possible duplicate" in page and first.uid in page
    # Named by its short code too, as staff say it.
    warning = page.split("Possible duplicate")[1].split("</ul>")[0]
    assert "HRD1-26-0042" in warning
    assert "Possible duplicate" not in reviewer.get(f"/applications/{other_person.uid}").get_data(
        as_text=True
    )
    bad = _post(
        reviewer,
        f"/applications/{second.uid}/cofunding",
        {
            "cofunding-funder": "Regional Fund",
            "cofunding-currency": "EUR",
            "cofunding-starts_on": "2026-12-01",
            "cofunding-ends_on": "2026-11-01",
        },
    )
    assert bad.refused and "ends before it starts" in bad.get_data(as_text=True)
    assert 'value="Regional Fund"' in bad.get_data(as_text=True)
    ok = _post(
        reviewer,
        f"/applications/{second.uid}/cofunding",
        {
            "cofunding-funder": "Regional Fund",
            "cofunding-amount": "300",
            "cofunding-currency": "EUR",
        },
    )
    assert ok.status_code == 302
    row = db.session.execute(sa.select(Cofunding)).scalar_one()
    assert (row.funder, row.amount) == ("Regional Fund", Decimal("300.00"))


def test_a_rejected_case_of_the_same_defender_is_no_duplicate(app, fund, staff):
    _case(fund, staff, status=S.REJECTED)
    second = _case(fund, staff)
    page = (
        signed_in(app, staff["reviewer"]).get(f"/applications/{second.uid}").get_data(as_text=True)
    )
    assert "Possible duplicate" not in page


def test_notes_are_audited_and_encrypted(app, fund, staff):
    case = _case(fund, staff)
    reviewer = signed_in(app, staff["reviewer"])
    _post(
        reviewer,
        f"/applications/{case.uid}/notes",
        {"note-kind": "note", "note-body": "canary-SECRET"},
    )
    raw = db.session.execute(sa.text("SELECT body FROM case_notes")).scalar_one()
    assert b"canary-SECRET" not in bytes(raw)
    assert db.session.execute(sa.select(CaseNote)).scalar_one().body == "canary-SECRET"


def test_a_forged_pool_value_is_a_clear_refusal_not_an_error(app, fund, staff):
    case = _recommended(fund, staff, amount="100.00")
    m1 = signed_in(app, staff["m1"])
    response = _post(
        m1,
        f"/applications/{case.uid}/approve",
        {
            "approve-amount": "100.00",
            "approve-draws-0-pool": "x'--",
            "approve-draws-0-amount": "100",
        },
    )
    assert response.refused
    assert "Line 1 names no pool of this fund." in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.status == S.RECOMMENDED


def test_a_duplicate_the_reader_stepped_away_from_is_not_listed(app, fund, staff):
    from hrdfund.reviews import services as reviews

    first = _case(fund, staff)
    second = _case(fund, staff)
    reviews.declare_conflict(first, staff["reviewer"])
    db.session.commit()
    page = (
        signed_in(app, staff["reviewer"]).get(f"/applications/{second.uid}").get_data(as_text=True)
    )
    assert first.uid not in page and "Possible duplicate" not in page
    colleague = (
        signed_in(app, staff["m1"]).get(f"/applications/{second.uid}").get_data(as_text=True)
    )
    assert first.uid in colleague


def test_nothing_is_recommended_or_approved_beyond_what_was_asked(app, fund, staff):
    """The case asks €6,000 in two lines (5,000 and 1,000). A line recommended above what
    it asks, a whole above the ask, or "in part" for all of it is refused in words; a
    manager's approval above the ask is refused too, before any pool is touched. A typo
    of 99999 used to pass as "Approve in part: £99,999.00" and then be approved."""
    from hrdfund.reviews import services as reviews

    case = _case(fund, staff)
    reviews.assign_reviewer(case, staff["reviewer"], staff["reviewer"])
    db.session.commit()
    surgery, transport = sorted(case.budget_lines, key=lambda line: -line.amount)
    for args, words in (
        (("approve_partly", None, {surgery.id: Decimal("99999.00")}), "at most what it asks"),
        (("approve", Decimal("6000.01"), None), "at most what the application asks"),
        (
            ("approve_partly", None, {surgery.id: Decimal(5000), transport.id: Decimal(1000)}),
            "choose Approve",
        ),
    ):
        recommendation, amount, lines = args
        with pytest.raises(reviews.ReviewError, match=words):
            reviews.recommend(case, staff["reviewer"], "high", recommendation, amount, "ok", lines)
        db.session.rollback()
    reviews.recommend(
        case, staff["reviewer"], "high", "approve_partly", None, "ok", {surgery.id: Decimal(4000)}
    )
    db.session.commit()
    assert case.status == S.RECOMMENDED
    m1 = signed_in(app, staff["m1"])
    refused = _approve(m1, case, "6500.00", (staff["general"], "6500.00"))
    assert refused.refused and "at most what the application asks: €6,000.00" in refused.text
    assert db.session.execute(sa.select(Grant)).first() is None
