"""The coverage page finds support about to end with nothing after it, and shows each
defender's months of support with the grant and pool paying them."""

from datetime import timedelta

import pytest

from hrdfund.core.columns import utcnow
from hrdfund.core.support import Category
from hrdfund.grants import plans
from tests.conftest import login


def test_a_stipend_ending_in_ten_days_is_listed_until_a_renewal_is_approved(app, money_world):
    today = utcnow().date()
    stipend = money_world.grant("600", category=Category.LONGER_TERM, name="Ana Defender")
    # Three months, the last one paid in ten days.
    first = plans.months_after(today + timedelta(days=10), -2)
    money_world.plan(stipend, kind="stipend", count=3, starts_on=first)
    later = money_world.grant("600", category=Category.LONGER_TERM, name="Someone Else")
    money_world.plan(later, kind="stipend", count=6, starts_on=today)
    client = app.test_client()
    login(client, money_world.m1)
    page = client.get("/coverage").get_data(as_text=True)
    ending = page.split("Support by month")[0]
    assert stipend.application.uid in ending and "in 10 days" in ending
    assert later.application.uid not in ending
    assert "Emergency EUR" in page.split("Support by month")[1]

    renewal = money_world.grant("600", category=Category.LONGER_TERM, name="ana  DEFENDER")
    money_world.plan(renewal, kind="stipend", count=3, starts_on=today + timedelta(days=11))
    page = client.get("/coverage").get_data(as_text=True)
    assert stipend.application.uid not in page.split("Support by month")[0]
    assert "Nothing ends soon without a follow-on." in page


def test_applicants_and_donors_have_no_coverage_page(app, money_world):
    for user in (
        money_world.applicant,
        money_world.make_user("donor", donor_id=money_world.donor.id),
    ):
        client = app.test_client()
        login(client, user)
        assert client.get("/coverage").status_code == 403


@pytest.mark.parametrize("path", ["/coverage", "/cases"])
@pytest.mark.parametrize("page", [str(10**19), "-4", "two", str(-(10**30))])
def test_any_page_number_answers_a_page(app, money_world, path, page):
    """A page number no database can hold, or not a number at all, reads as a page within
    the list's range: the answer is the list, never an error."""
    client = app.test_client()
    login(client, money_world.m1)
    assert client.get(f"{path}?page={page}").status_code == 200


def test_a_stipend_past_its_renewal_review_stands_out_in_words(app, money_world):
    """A renewal review date that passed with no renewal decided lists the stipend, however
    far its end, and says so in words; a renewal takes it off the list."""
    today = utcnow().date()
    first = plans.months_after(today, -2)
    overdue = money_world.grant("1200", category=Category.LONGER_TERM, name="Bea Defender")
    money_world.plan(
        overdue,
        kind="stipend",
        count=6,
        starts_on=first,
        renewal_review_on=today - timedelta(days=5),
    )
    on_time = money_world.grant("1200", category=Category.LONGER_TERM, name="Cai Defender")
    money_world.plan(on_time, kind="stipend", count=6, starts_on=first)
    client = app.test_client()
    login(client, money_world.finance)
    ending = client.get("/coverage").get_data(as_text=True).split("Support by month")[0]
    (row,) = [r for r in ending.split("<tr>") if overdue.application.uid in r]
    assert "passed 5 days ago, no renewal decided" in row
    assert on_time.application.uid not in ending

    renewal = money_world.grant("1200", category=Category.LONGER_TERM, name="Bea Defender")
    money_world.plan(renewal, kind="stipend", count=6, starts_on=plans.months_after(first, 6))
    ending = client.get("/coverage").get_data(as_text=True).split("Support by month")[0]
    assert overdue.application.uid not in ending and "no renewal decided" not in ending
