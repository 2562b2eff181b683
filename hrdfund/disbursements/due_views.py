"""Finance's own way in: the list of grants to pay, and a page to pay one from it in one
step (the case page's payment form, with what paying needs beside it)."""

from flask import abort, current_app, render_template, request
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import PAYEE_FIELDS, CaseView, Section, sections
from ..cases.categories import CATEGORY_FIELDS, detail_text
from ..core.columns import utcnow
from ..core.extensions import reading
from ..core.paging import page_arg
from ..core.support import CATEGORY_LABELS
from ..grants.models import GrantStatus
from ..ledger.balances import allocation_balances
from . import bp, case_bp, services
from .case_views import _case_grant_or_404
from .panels import payment_form
from .to_pay import due_in_pools, grants_to_pay, still_due


@bp.get("/to-pay")
@role_required(Role.FINANCE)
def to_pay():
    """Instalments due (now, overdue, or within the notice days) and approved grants
    without a plan, most urgent first, a page at a time."""
    with reading():
        now = utcnow()
        page = page_arg()
        days = current_app.config["INSTALMENT_NOTICE_DAYS"]
        rows, has_next = grants_to_pay(
            current_user, now.date(), days, page, current_app.config["PAGE_SIZE"]
        )
        return render_template(
            "disbursements/to_pay.html",
            rows=[(row, row.waited(now)) for row in rows],
            page=page,
            has_next=has_next,
            today=now.date(),
            days=days,
            kinds=CATEGORY_LABELS,
        )


@case_bp.get("/applications/<uid>/pay")
@role_required(Role.FINANCE)
def pay(uid):
    """The payment form of one grant on a page of its own, reached from the list of grants
    to pay: what is due for each instalment, whom the case names to pay, and the form,
    which sends to the same place as the case page's (every rule is the same)."""
    with reading():
        application, grant = _case_grant_or_404(uid)
        if grant.status != GrantStatus.ACTIVE:
            abort(404)
        balances = allocation_balances(grant.id)
        instalments = services.grant_instalments(grant)
        due = still_due(instalments)
        form = payment_form(
            grant, balances, instalments, formdata=False, payer=current_user, due=due
        )
        chosen = request.args.get("instalment", type=int)
        if chosen in due:
            form.instalment.data = chosen
        form = refused.restore(form)
        seen = sections(application, current_user)
        view = CaseView(application, seen)
        return render_template(
            "disbursements/pay.html",
            application=application,
            grant=grant,
            balances=balances,
            instalments=instalments,
            due=due,
            due_pools=due_in_pools(grant, balances, due),
            form=form,
            kinds=CATEGORY_LABELS,
            payee_answers=[
                (label, detail_text(kind, view.details[name], application.currency))
                for name, kind, label, _required in CATEGORY_FIELDS[application.category]
                if name in PAYEE_FIELDS and view.details.get(name) not in (None, "")
            ]
            if Section.PAYEE in seen
            else [],
        )
