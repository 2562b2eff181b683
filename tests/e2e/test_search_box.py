"""The search box in the header of every staff page, as a phone shows it."""

import pytest

from tests.e2e.test_styles import _styled

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("role", ["reviewer", "finance"])
def test_the_search_box_fits_a_phone(client, login_as, page, role):
    """At 390 px wide the header with its search box, and the search page, are no wider
    than the screen, and the box is there to type in."""
    login_as(role)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/search", "/account"):
        page.set_content(_styled(client.get(path).get_data(as_text=True)))
        box = page.get_by_label("Find a case")
        assert box.is_visible()
        width = box.evaluate("b => b.getBoundingClientRect().right")
        assert width <= 390, (path, width)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
