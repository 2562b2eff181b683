"""The stylesheet as a browser applies it to the app's own pages."""

import os
import re

import pytest

from hrdfund import ROOT
from tests.conftest import start_application

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
