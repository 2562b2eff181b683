"""Sections that higher features (grants, payments) add to the case page.

Applications sit below grants and disbursements and never import them; those features
register a panel here instead, and the case page renders whatever is registered.
"""

_PANELS = []


def register(panel):
    """Add ``panel(application, user) -> HTML or None`` to every case page."""
    _PANELS.append(panel)
    return panel


def render_panels(application, user):
    """The HTML of every registered panel that has something to show."""
    return [html for html in (panel(application, user) for panel in _PANELS) if html]
