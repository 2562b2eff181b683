"""Sections that higher features (grants, payments) add to the case page.

Applications sit below grants and disbursements and never import them; those features
register a panel here instead. A panel returns the template to include and its data, so
the case page renders it with autoescaping like any other part of the page.
"""

_PANELS = []


def register(panel):
    """Add ``panel(application, user, sections) -> {"template": ..., **data} or None`` to
    case pages; ``sections`` is what :func:`~hrdfund.cases.access.sections` lets
    the user see, and a panel shows nothing outside it."""
    _PANELS.append(panel)
    return panel


def collect_panels(application, user, sections):
    """Every registered panel that has something to show for this case and user."""
    return [found for found in (panel(application, user, sections) for panel in _PANELS) if found]
