"""Short case codes: given once when a case is sent, per fund and year, never twice, not
even to cases sent at the same moment, and read back however staff type them."""

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from hrdfund.cases import codes
from hrdfund.cases.models import Application, ApplicationStatus, CaseCodeCounter
from hrdfund.cases.services import change_status
from hrdfund.core.extensions import db
from tests.conftest import make_case


def _draft(fund):
    return make_case(fund, status=ApplicationStatus.DRAFT, submitted_at=None)


def test_a_case_gets_its_code_when_sent_and_keeps_it(app, fund, make_fund):
    other = make_fund("Other fund")
    first, second, elsewhere = _draft(fund), _draft(fund), _draft(other)
    assert first.code is None
    for case in (first, second, elsewhere):
        change_status(case, ApplicationStatus.SUBMITTED, at=datetime(2026, 4, 1, 10))
    db.session.commit()
    assert first.code == f"HRD{fund.id}-26-0001"
    assert second.code == f"HRD{fund.id}-26-0002"
    # Each fund counts its own cases: the other fund's first case is its number 1.
    assert elsewhere.code == f"HRD{other.id}-26-0001"
    # Sent again after the applicant answered a question: the same code.
    change_status(first, ApplicationStatus.IN_REVIEW)
    change_status(first, ApplicationStatus.INFO_REQUESTED)
    change_status(first, ApplicationStatus.IN_REVIEW)
    db.session.commit()
    assert first.code == f"HRD{fund.id}-26-0001"


def test_a_number_is_never_given_again_even_when_its_case_is_gone(app, fund):
    case = _draft(fund)
    change_status(case, ApplicationStatus.SUBMITTED, at=datetime(2026, 4, 1, 10))
    db.session.commit()
    db.session.delete(case)
    db.session.commit()
    later = _draft(fund)
    change_status(later, ApplicationStatus.SUBMITTED, at=datetime(2026, 4, 2, 10))
    db.session.commit()
    assert later.code == f"HRD{fund.id}-26-0002"


def test_a_new_year_counts_from_one(app, fund):
    cases = [_draft(fund) for _ in range(2)]
    change_status(cases[0], ApplicationStatus.SUBMITTED, at=datetime(2026, 12, 31, 23, 59))
    change_status(cases[1], ApplicationStatus.SUBMITTED, at=datetime(2027, 1, 1, 0, 1))
    db.session.commit()
    assert [c.code for c in cases] == [f"HRD{fund.id}-26-0001", f"HRD{fund.id}-27-0001"]


def test_cases_sent_at_the_same_moment_get_different_numbers(app, fund):
    """Twenty cases of one fund sent at once by twenty requests: twenty codes, numbered 1
    to 20 with none missing or twice, and the counter at 20."""
    ids = [_draft(fund).id for _ in range(20)]
    fund_id = fund.id
    db.session.rollback()  # on SQLite this thread's read would hold the write lock
    outcomes, start = [], threading.Barrier(len(ids))

    def send(case_id):
        with app.app_context():
            try:
                start.wait()
                case = db.session.get(Application, case_id)
                change_status(case, ApplicationStatus.SUBMITTED, at=datetime(2026, 5, 1, 9))
                db.session.commit()
                outcomes.append("sent")
            except Exception as exc:  # noqa: BLE001  (any other outcome fails the test below)
                db.session.rollback()
                outcomes.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["sent"] * len(ids)
    given = db.session.execute(sa.select(Application.code).where(Application.id.in_(ids)))
    assert sorted(given.scalars()) == [f"HRD{fund_id}-26-{n:04d}" for n in range(1, 21)]
    assert db.session.get(CaseCodeCounter, (fund_id, 2026)).last_number == 20


@pytest.mark.parametrize(
    "typed, code",
    [
        ("HRD3-26-0412", "HRD3-26-0412"),
        ("hrd3-26-412", "HRD3-26-0412"),
        ("  HRD 3 26 0412 ", "HRD3-26-0412"),
        ("HRD-3-26-0412", "HRD3-26-0412"),
        ("HRD12-27-10345", "HRD12-27-10345"),
        ("HRD3-26-0000", None),
        ("HRD3-2026-0412", None),
        ("3-26-0412", None),
        ("HRD3-26-0412; DROP TABLE", None),
        ("Amina Diallo", None),
        ("", None),
    ],
)
def test_a_code_is_read_however_it_is_typed(typed, code):
    assert codes.parse_code(typed) == code


def test_the_short_code_stands_beside_the_long_one_for_staff_and_applicant(
    app, money_world, make_user
):
    """The applicant reads the short code on their case and in their list; the queue,
    the case page, the payments list and follow-up show it to staff beside the long code."""
    from datetime import date, timedelta

    from hrdfund.core.columns import utcnow
    from tests.conftest import pay, signed_in

    applicant = money_world.applicant
    case = make_case(
        money_world.fund,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        applicant_id=applicant.id,
    )
    change_status(case, ApplicationStatus.SUBMITTED)
    db.session.commit()
    mine = signed_in(app, applicant)
    for path in (f"/applications/{case.uid}", "/my"):
        html = mine.get(path).get_data(as_text=True)
        assert case.code in html and case.uid in html, path
    queue = signed_in(app, money_world.reviewer).get("/cases").get_data(as_text=True)
    shown = f'<strong class="case-code">{case.code}</strong> <code class="case-uid">{case.uid}'
    assert shown in queue

    grant = money_world.grant("2000")
    paid_case = grant.application
    # The helper writes the case as recommended already: it gets its code as sending would.
    codes.assign_code(paid_case, utcnow())
    db.session.commit()
    pay(money_world, grant, "500", instalment=None, paid_on=date.today() - timedelta(days=40))
    finance = signed_in(app, money_world.finance)
    for path in ("/payments", "/payments/follow-up", f"/applications/{paid_case.uid}"):
        html = finance.get(path).get_data(as_text=True)
        assert paid_case.code in html and paid_case.uid in html, path
