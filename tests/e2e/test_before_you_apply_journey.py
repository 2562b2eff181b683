"""A defender on a phone, JavaScript off, reads what to expect before applying, and finds
the way out at the top of the page."""

import os
import re

import pytest

from config import Config

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def _exit_url():
    """Where the server's "Leave this page" leads: its environment's setting, else the
    default."""
    return os.environ.get("HRDFUND_QUICK_EXIT_URL", Config.QUICK_EXIT_URL)


def test_a_defender_reads_before_applying_and_finds_the_way_out(live_server, page):
    page.set_viewport_size(PHONE)
    page.goto(live_server["url"] + "/login")
    page.get_by_role("link", name="Before you apply: what the fund covers").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Before you apply"
    assert page.url.endswith("/before-you-apply")

    # The demo network has several funds: the page offers them, and describes the one chosen.
    page.get_by_role("link", name="Coastal Local Fund").click()
    assert "fund=" in page.url
    covers = page.locator("h2#covers + p + ul").inner_text()
    assert covers.split("\n") == [
        "Medical costs",
        "Dependants' costs",
        "Legal fees",
        "Prison visits",
    ]
    body = page.locator("main").inner_text()
    assert "Defenders in: Kenya and Tanzania." in body
    assert re.search(
        r"Urgent \(danger now or within days\):\s+a first answer within \d+ hours", body
    )
    for heading in (
        "What to prepare",
        "How your answers are kept",
        "Other ways to ask",
        "Using this site more safely",
    ):
        assert page.get_by_role("heading", name=heading, level=2).is_visible()
    # The questions of each kind of support fold out without a script.
    medical = page.locator("details", has_text="Medical costs")
    assert not medical.get_by_text("Hospital, clinic or therapist").is_visible()
    medical.locator("summary").click()
    assert medical.get_by_text("Hospital, clinic or therapist").is_visible()
    assert "Private window" not in body and "private window" in body and "Tor Browser" in body

    # A phone's width, no script, nothing wider than the screen.
    assert page.locator("script").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The way out: seen at once, the first thing the keyboard reaches, a plain link to the
    # neutral site that tells it nothing of this one. It is not followed: the test stays
    # on 127.0.0.1.
    page.reload()
    leave = page.get_by_role("link", name="Leave this page")
    assert leave.count() == 1 and leave.is_visible()
    box = leave.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"] / 4
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert leave.get_attribute("href") == _exit_url()
    assert "noreferrer" in leave.get_attribute("rel").split()
    assert leave.get_attribute("target") is None
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Leave this page"

    # Every page of the way in has it too.
    for path in ("/login", "/register", "/funds"):
        page.goto(live_server["url"] + path)
        assert page.get_by_role("link", name="Leave this page").get_attribute("href") == _exit_url()
