"""The stylesheet as a browser applies it to the app's own pages."""

import os
import re

import pytest

from hrdfund import ROOT
from hrdfund.core.columns import utcnow
from tests.conftest import login, pay, signed_in, start_application
from tests.test_applicant_views import RELOCATION

pytestmark = pytest.mark.e2e


def _styled(html):
    """The page with its stylesheet inlined, so it renders without a server."""
    with open(os.path.join(ROOT, "hrdfund", "static", "style.css")) as fh:
        css = fh.read()
    link = re.search(r'<link rel="stylesheet" href="/static/style\.css\?v=[0-9a-f]+">', html)
    assert link, html[:600]
    return html.replace(link.group(0), f"<style>{css}</style>")


def test_a_secondary_button_looks_secondary(client, login_as, page):
    """The "Save draft" button beside "Send application" is the quieter one: white, with
    the accent colour for its text and border, whatever rules come later in the
    stylesheet."""
    login_as("applicant")
    uid = start_application(client, "medical")
    html = client.get(f"/applications/{uid}/edit").get_data(as_text=True)
    page.set_content(_styled(html))

    def look(name):
        button = page.get_by_role("button", name=name)
        return button.evaluate(
            "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
        )

    save_background, save_text = look("Save draft")
    send_background, send_text = look("Send application")
    assert save_background == "rgb(255, 255, 255)"
    assert save_text == send_background != save_background
    assert send_text == "rgb(255, 255, 255)"


def test_a_refused_budget_line_keeps_what_it_pays_for_readable_on_a_phone(client, login_as, page):
    """A budget refused for its amounts, on a 390 px screen: the errors under each amount
    used to squeeze "what it pays for" to a few letters; the column keeps its share."""
    login_as("applicant")
    uid = start_application(client, "relocation")
    data = {
        "budget-0-description": "Bus tickets for three people",
        "budget-0-amount": "1.500.000",
        "budget-1-description": "Rent for two months",
        "budget-1-amount": "6.000.000,50",
    }
    refused = client.post(f"/applications/{uid}/steps/budget", data=data, follow_redirects=True)
    html = refused.get_data(as_text=True)
    assert "Bus tickets for three people" in html and 'class="errors"' in html
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_content(_styled(html))
    widths = page.evaluate(
        """() => {
            const first = document.querySelector('table.rows input[name="budget-0-description"]');
            const table = first.closest('table');
            return [first.getBoundingClientRect().width, table.getBoundingClientRect().width,
                    document.documentElement.scrollWidth];
        }"""
    )
    description, table, page_width = widths
    assert description >= 0.5 * table, widths
    assert page_width <= 390, widths


def test_what_is_due_is_read_whole_on_a_phone(app, money_world, page):
    """The pay page's instalments, on a 390 px screen: each instalment a block with every
    figure beside its name (the pools' currencies among them), none out of sight sideways;
    the table used to run past the screen's edge. Each row keeps its header cell."""
    grant = money_world.grant("3000.00", pool=money_world.usd)
    money_world.plan(grant, count=3)
    html = signed_in(app, money_world.finance).get(f"/applications/{grant.application.uid}/pay")
    html = html.get_data(as_text=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_content(_styled(html))
    cells = page.evaluate(
        """() => [...document.querySelectorAll('table.due td, table.due tbody th')].map(td => {
            const box = td.getBoundingClientRect();
            return [td.dataset.label, td.textContent.trim(), box.left, box.right];
        })"""
    )
    assert len(cells) == 3 * 5, cells
    assert {label for label, *_rest in cells} >= {"Instalment", "Due on", "Still to pay"}
    assert any(label.startswith("In the currency of") for label, *_rest in cells)
    for label, text, left, right in cells:
        assert text and 0 <= left and right <= 390, (label, text, left, right)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("document.querySelectorAll('table.due tbody th[scope=row]').length") == 3


def test_what_a_tables_rows_offer_to_do_stays_on_a_phone_screen(app, money_world, make_user, page):
    """On a 390 px screen, every link and button in a row of the lists staff act from (the
    grants to pay, a grant's payments, the fund's accounts) is within the screen, each
    figure beside its name: they used to sit off to the right of a table that scrolled."""
    world = money_world
    today = utcnow().date()
    grant = world.grant("3000")
    world.plan(grant, count=2, starts_on=today)
    pay(world, grant, "100", paid_on=today)
    make_user("reviewer")
    pages = [
        (world.finance, "/payments/to-pay"),
        (world.finance, f"/applications/{grant.application.uid}"),
        (make_user("admin"), "/admin/users"),
    ]
    page.set_viewport_size({"width": 390, "height": 844})
    for user, path in pages:
        html = signed_in(app, user).get(path).get_data(as_text=True)
        page.set_content(_styled(html))
        controls = page.evaluate(
            """() => [...document.querySelectorAll('tbody a, tbody button, tbody summary')]
                .map(c => [c.textContent.trim(), c.getBoundingClientRect().right])"""
        )
        assert controls, path
        outside = [(text, right) for text, right in controls if right > 390]
        assert not outside, (path, outside)


def test_a_number_answered_on_a_page_written_right_to_left_sits_under_its_question(
    client, make_user, page
):
    """On the check page in Farsi, "3" (people) took the left-to-right direction its
    figures have and sat at the far left, away from its question on the right."""
    client.post("/language", data={"language": "fa"})
    login(client, make_user("applicant", language="fa"))
    uid = start_application(client, "relocation")
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "save": "1"})
    html = client.get(f"/applications/{uid}/steps/review").get_data(as_text=True)
    assert 'dir="rtl"' in html
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_content(_styled(html))
    sides = page.evaluate(
        """() => {
            const dd = [...document.querySelectorAll('dd')].find(d => d.textContent.trim() === '3');
            const range = document.createRange();
            range.selectNodeContents(dd);
            const text = range.getBoundingClientRect(), box = dd.getBoundingClientRect();
            return [text.right, box.right, text.left, box.left];
        }"""
    )
    text_right, box_right, text_left, box_left = sides
    assert box_right - text_right < 2 and text_left - box_left > 100, sides
