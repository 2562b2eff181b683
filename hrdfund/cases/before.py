"""Before you apply (public, no account): what a fund covers and how fast it answers, by
the settings it really uses; who may apply; what the form will ask; how the answers are
kept and who reads them; safer ways to ask; and how to use the site more safely.

Several funds may take applications on one instance, each with its own kinds of support,
countries and targets: the page describes one fund, the one named in the address (a link
on the page chooses it), or the only one there is. With several and none chosen it lists
them to choose from, and says the rest, which is the same for every fund."""

from flask import current_app, render_template, request
from flask_babel import get_locale, ngettext

from ..auth import funds
from ..auth.language import NAMES as LANGUAGE_NAMES
from ..core import geo
from ..core.extensions import reading
from ..core.quick_exit import exit_host
from ..core.support import CATEGORY_LABELS, Category
from . import bp
from .categories import CATEGORY_FIELDS
from .forms import DOCUMENT_LABELS
from .models import DocumentKind, Urgency
from .targets import target_hours

#: The documents that help the fund decide on each kind of support: the kinds the case
#: page's upload form offers. None is needed to send an application.
HELPFUL_DOCUMENTS = {
    Category.LONGER_TERM: (DocumentKind.EVIDENCE,),
    Category.RELOCATION: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
    Category.MEDICAL: (DocumentKind.QUOTE, DocumentKind.MEDICAL_REPORT, DocumentKind.EVIDENCE),
    Category.DEPENDANTS: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
    Category.LEGAL: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
    Category.PRISON_VISITS: (DocumentKind.EVIDENCE,),
    Category.TRIAL_MONITORING: (DocumentKind.EVIDENCE,),
    Category.PHYSICAL_SECURITY: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
    Category.DIGITAL_SECURITY: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
    Category.HUMANITARIAN: (DocumentKind.EVIDENCE,),
    Category.OTHER: (DocumentKind.QUOTE, DocumentKind.EVIDENCE),
}


def duration(hours):
    """A target in words: hours up to three days, whole days beyond (rounded up, so the
    page never promises sooner than the target)."""
    if hours <= 72:
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    days = -(-hours // 24)
    return ngettext("%(num)d day", "%(num)d days", days)


def _targets(category, fund):
    return {
        urgency: tuple(duration(h) for h in target_hours(category, urgency, fund=fund))
        for urgency in (Urgency.URGENT, Urgency.NORMAL)
    }


def describe(fund):
    """What one fund covers, where and in which languages its staff answer, and its
    targets: the general ones and those of each kind of support that differs."""
    locale = str(get_locale() or "en")
    names = dict(geo.countries(locale))
    categories = [Category(c) for c in fund.categories] or list(Category)
    general = _targets(None, fund)
    return {
        "fund": fund,
        "categories": categories,
        "countries": sorted(names.get(c, c) for c in fund.countries),
        "languages": [LANGUAGE_NAMES[c] for c in fund.languages if c in LANGUAGE_NAMES],
        "targets": general,
        "exceptions": [(c, own) for c in categories if (own := _targets(c.value, fund)) != general],
    }


def _chosen(open_funds):
    """The fund the page describes: the one named in the address, or the only one."""
    wanted = request.args.get("fund", "")
    for fund in open_funds:
        if fund.uid == wanted:
            return fund
    return open_funds[0] if len(open_funds) == 1 else None


@bp.get("/before-you-apply")
def before():
    """What to know before applying, for anyone, signed in or not."""
    config = current_app.config
    with reading():
        open_funds = funds.open_funds()
        chosen = _chosen(open_funds)
        return render_template(
            "cases/before.html",
            open_funds=open_funds,
            about=describe(chosen) if chosen else None,
            questions={c: [label for _n, _k, label, _r in CATEGORY_FIELDS[c]] for c in Category},
            documents={c: [DOCUMENT_LABELS[k] for k in HELPFUL_DOCUMENTS[c]] for c in Category},
            category_labels=CATEGORY_LABELS,
            urgent=Urgency.URGENT,
            normal=Urgency.NORMAL,
            max_mb=config["HRDFUND_MAX_DOCUMENT_BYTES"] // (1024 * 1024),
            retention_days=config["RETENTION_DAYS"],
            contact=(config.get("FUND_CONTACT") or "").strip(),
            exit_site=exit_host(config),
        )
