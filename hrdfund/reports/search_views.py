"""The staff search: one box on every staff page, a page of its own with the country for
a name. Sent by POST only, so what was typed is in no address; a single find opens it,
several are listed on the answer, none says so."""

from flask import redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.states import STAFF_LABELS
from ..core.extensions import reading
from ..core.support import CATEGORY_LABELS
from ..core.work import perform
from . import bp
from . import search as finder
from .forms import SearchForm

#: Staff who may search: those who open cases.
SEARCHERS = (Role.REVIEWER, Role.MANAGER, Role.FINANCE)


def _page(form, found=None, status=200):
    if not finder.may_search_names(current_user):
        form.q.label.text = _("Case code or payment reference")
    return (
        render_template(
            "reports/search.html",
            form=form,
            found=found,
            names=finder.may_search_names(current_user),
            labels=STAFF_LABELS,
            category_labels=CATEGORY_LABELS,
        ),
        status,
    )


@bp.get("/search")
@role_required(*SEARCHERS)
def search_page():
    """The search form, with the country to narrow a name to."""
    return _page(SearchForm(formdata=None))


@bp.post("/search")
@role_required(*SEARCHERS)
def search():
    """Open what the term names, list what it names when several, or say nothing was
    found; a search by name is an audit entry of the fund."""
    user = current_user._get_current_object()
    form = SearchForm()
    if not form.validate():
        return _page(form, status=400)
    with reading():
        found = finder.find(user, form.q.data, form.country.data or None)
    if found.kind == finder.Kind.NAME:
        perform(finder.record_name_search, user, found)
    if found.count == 1 and found.cases:
        return redirect(url_for("cases.case", uid=found.cases[0].uid), 303)
    if found.count == 1:
        payment = found.payments[0]
        return redirect(
            url_for("cases.case", uid=payment.case_uid, _anchor=f"payment-{payment.uid}"), 303
        )
    # The answer is this response: the term is not carried on to any other address.
    return _page(SearchForm(formdata=None), found)
