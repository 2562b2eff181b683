"""The case page's panel of directory entries that may help with the case: a service its
category needs, in its country, for the staff of the case's own fund."""

from ..cases import panels
from ..cases.access import Section
from .models import SERVICE_LABELS
from .services import CATEGORY_SERVICES, is_stale, suggestions


@panels.register
def directory_panel(application, user, sections):
    """Entries the case's reviewers, managers and finance may turn to."""
    if not sections & {Section.REVIEW, Section.PAYEES}:
        return None
    if user.fund_id != application.fund_id or application.purged_at is not None:
        return None
    if not CATEGORY_SERVICES.get(application.category):
        return None
    return {
        "template": "directory/_case_panel.html",
        "suggested": suggestions(user, application),
        "is_stale": is_stale,
        "service_labels": SERVICE_LABELS,
    }
