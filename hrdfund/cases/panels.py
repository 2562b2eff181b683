"""Sections that higher features (grants, payments) add to the case page.

Applications sit below grants and disbursements and never import them; those features
register a panel here instead. A panel returns the template to include and its data, so
the case page renders it with autoescaping like any other part of the page. A panel may
name its ``slot``: ``top`` (before everything, as the staff's summary), ``bottom`` (after
everything, as the case's history), else it stands among the actions, in the order of the
work (``WORK_ORDER``).
"""

#: The actions of a case in the order of the work, each named by its panel's template:
#: assignment, references and assessment; the decision; the plan and payments; then what
#: helps beside them. A panel not named here comes after these.
WORK_ORDER = (
    "reviews/_review.html",
    "grants/_decision.html",
    "disbursements/_staff_money.html",
    "disbursements/_case_payments.html",
    "network/_case_referrals.html",
    "directory/_case_panel.html",
)

_PANELS = []


def register(panel):
    """Add ``panel(application, user, sections) -> {"template": ..., **data} or None`` to
    case pages; ``sections`` is what :func:`~hrdfund.cases.access.sections` lets
    the user see, and a panel shows nothing outside it."""
    _PANELS.append(panel)
    return panel


def _place(found):
    template = found["template"]
    return WORK_ORDER.index(template) if template in WORK_ORDER else len(WORK_ORDER)


def collect_panels(application, user, sections):
    """Every registered panel that has something to show for this case and user, by slot
    (``top``, ``work``, ``bottom``), the work's in the order of the work."""
    found = [f for f in (panel(application, user, sections) for panel in _PANELS) if f]
    slots = {"top": [], "work": [], "bottom": []}
    for panel in sorted(found, key=_place):
        slots[panel.get("slot", "work")].append(panel)
    return slots
