"""The decision on the case page: pools that fit, and the approval that commits money."""

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases import panels
from ..cases.access import Section, get_application_or_404
from ..cases.models import ApplicationStatus as S
from ..core import limits
from ..core.columns import utcnow
from ..core.digits import plain_number
from ..core.extensions import db
from ..core.money import format_money
from ..core.paging import page_arg
from ..core.work import perform
from ..reviews.services import latest_review
from . import bp, decisions, plans, services
from . import coverage as coverage_rules
from .forms import (
    ApproveForm,
    CloseForm,
    PlanForm,
    QuestionForm,
    RejectForm,
    SecondApprovalForm,
)
from .models import Grant

DECIDING = (S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)


#: The largest row id a form may name; anything beyond is no row (and would overflow the
#: database's integer).
MAX_ID = 2**31 - 1


def _proposed_amount(application):
    """What the approval starts from: the first approval, the recommendation, the request."""
    if application.status == S.AWAITING_SECOND_APPROVAL:
        first = decisions.first_approval(application)
        if first is not None:
            return first.amount
    review = latest_review(application)
    if review is not None and review.recommended_amount:
        return review.recommended_amount
    return application.amount_requested


def _approve_form(application, options, fresh):
    """The approval form: as the request sent it, or (``fresh``) as the page offers it,
    starting from the first manager's split or the one pool that fits, or as it was
    refused a moment ago."""
    amount = _proposed_amount(application)
    form = ApproveForm(formdata=None, amount=amount) if fresh else ApproveForm()
    if fresh:
        first = (
            decisions.first_approval(application)
            if application.status == S.AWAITING_SECOND_APPROVAL
            else None
        )
        proposed = decisions.approval_draws(first) if first is not None else []
        fitting = [o for o in options if not o["reasons"]]
        if not proposed and len(fitting) == 1 and amount:
            proposed = [(fitting[0]["pool"].id, amount)]
        # The second manager starts from the first manager's split, and may confirm it.
        for entry, (pool_id, part) in zip(form.draws, proposed, strict=False):
            entry.pool.data = str(pool_id)
            entry.amount.data = part
        form = refused.restore(form)
    # After restoring: the lines of a list are built anew when a form is filled in.
    choices = [SelectChoice("", _("(none)"))] + [
        SelectChoice(str(o["pool"].id), f"{o['pool'].name} ({o['pool'].currency})")
        for o in options
        if not o["reasons"]
    ]
    for entry in form.draws:
        entry.pool.choices = choices
    return form


def _draws(form):
    """The form's lines as (pool id, amount); a half-filled line is refused in words, not
    dropped, so the split approved is the split the manager saw."""
    draws, problems = [], []
    for n, entry in enumerate(form.draws, start=1):
        pool, amount = str(entry.pool.data or "").strip(), entry.amount.data
        if not pool and amount is None:
            continue
        if not pool:
            problems.append(_("Line %(n)d has an amount but no pool: choose its pool.", n=n))
        elif not plain_number(pool) or not 0 < int(pool) <= MAX_ID:
            problems.append(_("Line %(n)d names no pool of this fund.", n=n))
        elif amount is None:
            problems.append(
                _("Line %(n)d has a pool but no amount: enter what the pool pays.", n=n)
            )
        else:
            draws.append((int(pool), amount))
    return draws, problems


def _threshold_note(application, amount, user):
    """What the decision form says of the four-eyes threshold: in the reporting currency,
    what ``amount`` is worth in it (or that no rate says), and whether the rate it is
    weighed at is the reader's own."""
    reporting = limits.reporting_currency()
    note = {"threshold": decisions.four_eyes_threshold(application.fund), "currency": reporting}
    if amount:
        try:
            weighing = decisions.weigh_approval(application, amount, user)
        except decisions.MissingRateError:
            note["missing"] = True
        else:
            note["value"], note["own_rate"] = weighing.worth, weighing.own_rate
    return note


@panels.register
def decision_panel(application, user, sections):
    """For reviewers and managers: which pools fit the case and hold enough; for managers
    at the decision, the approval form."""
    if Section.DECISION not in sections:
        return None
    if application.status not in (S.SUBMITTED, S.IN_REVIEW, S.INFO_REQUESTED, *DECIDING):
        return None
    amount = _proposed_amount(application)
    options = services.pool_options(application, amount)
    first = (
        decisions.first_approval(application)
        if application.status == S.AWAITING_SECOND_APPROVAL
        else None
    )
    manager = user.role == Role.MANAGER
    # Waiting for a second manager, the case offers what its reader may do: the one who
    # approved first, nothing; another manager, the first approval to confirm as it
    # stands (the second approval never changes its amount or split).
    deciding = manager and application.status in DECIDING and first is None
    form = _approve_form(application, options, fresh=True) if deciding else None
    mine = first is not None and first.manager_id == user.id
    names = {o["pool"].id: o["pool"].name for o in options}
    return {
        "template": "grants/_decision.html",
        "options": options,
        "amount": amount,
        "threshold": _threshold_note(application, amount, user),
        "first_approval": first,
        "first_draws": [
            (names.get(pool_id, "?"), part) for pool_id, part in decisions.approval_draws(first)
        ]
        if first is not None
        else [],
        "approve_form": form,
        "approved_first_by_reader": mine,
        "second_form": refused.restore(SecondApprovalForm(formdata=None))
        if manager and first is not None and not mine
        else None,
        "question_form": refused.restore(QuestionForm(formdata=None)),
        "reject_form": refused.restore(RejectForm(formdata=None)),
    }


@bp.post("/applications/<uid>/approve")
@role_required(Role.MANAGER)
def approve(uid):
    """Approve in full or in part; money is committed at once below the threshold, or when
    a second manager confirms above it."""
    application = get_application_or_404(uid, current_user)
    options = services.pool_options(application, _proposed_amount(application))
    form = _approve_form(application, options, fresh=False)
    draws, problems = _draws(form) if form.validate_on_submit() else (None, [])
    form.form_errors.extend(problems)
    if draws is not None and not problems:
        done = perform(
            decisions.approve_with_recorded_rates,
            application,
            current_user._get_current_object(),
            form.amount.data,
            draws,
            refused=decisions.DecisionError,
        )
        if done.ok:
            grant = done.value
            locale = str(get_locale())
            first = decisions.first_approval(application) if grant is None else None
            if first is not None and first.worth is not None and first.worth < first.threshold:
                flash(
                    _(
                        "Approval recorded. The rate it was weighed at is one you recorded "
                        "and nobody else confirmed, so a second manager confirms it before "
                        "money is committed."
                    ),
                    "info",
                )
            elif grant is None:
                flash(
                    _(
                        "Approval recorded. At %(threshold)s or more (amounts in other "
                        "currencies converted at the fund's recorded rate) a second manager "
                        "confirms it before money is committed.",
                        threshold=format_money(
                            decisions.four_eyes_threshold(application.fund),
                            limits.reporting_currency(),
                            locale,
                        ),
                    ),
                    "info",
                )
            else:
                flash(
                    _(
                        "Approved: %(amount)s committed.",
                        amount=format_money(grant.amount, grant.currency, locale),
                    ),
                    "info",
                )
            return redirect(url_for("cases.case", uid=application.uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=_case(application, "approve"))


@bp.post("/applications/<uid>/confirm-approval")
@role_required(Role.MANAGER)
def confirm_approval(uid):
    """A second manager confirms a first approval as it stands, from the dashboard's list of
    decisions waiting: every rule of the case page's approval holds."""
    application = get_application_or_404(uid, current_user, Section.DECISION)
    # Sent from the case page (``to=case``) or from the dashboard's list: back there.
    from_case = request.args.get("to") == "case"
    back = (
        _case(application, "decision")
        if from_case
        else url_for("reports.dashboard", _anchor="decisions")
    )
    form = SecondApprovalForm()
    if form.validate_on_submit():
        done = perform(
            decisions.confirm_first_approval,
            application,
            current_user._get_current_object(),
            refused=decisions.DecisionError,
        )
        if done.ok:
            grant = done.value
            flash(
                _(
                    "%(case)s approved: %(amount)s committed. Finance sees it among the "
                    "grants to pay.",
                    case=application.code or application.uid,
                    amount=format_money(grant.amount, grant.currency, str(get_locale())),
                ),
                "info",
            )
            return redirect(back)
        form.form_errors.append(done.words)
    return refused.refuse(form, to=back, about=uid)


def _case(application, anchor):
    """The case page at one of its forms."""
    return url_for("cases.case", uid=application.uid, _anchor=anchor)


def _refuse(application, anchor, form, refusal):
    """Back to the form at ``anchor`` on the case page as it was sent, with why it was
    refused."""
    form.form_errors.append(str(refusal))
    return refused.refuse(form, to=_case(application, anchor))


def _grant_or_404(application):
    grant = db.session.execute(
        sa.select(Grant).where(Grant.application_id == application.id)
    ).scalar_one_or_none()
    if grant is None:
        abort(404)
    return grant


@bp.post("/applications/<uid>/plan")
@role_required(Role.MANAGER)
def plan(uid):
    """Plan how the grant is paid: once, in tranches, or monthly."""
    application = get_application_or_404(uid, current_user)
    grant = _grant_or_404(application)
    form = PlanForm()
    if form.validate_on_submit():
        done = perform(
            plans.create_plan,
            grant,
            current_user._get_current_object(),
            form.kind.data,
            form.starts_on.data,
            count=form.count.data or 1,
            interval_days=form.interval_days.data or 30,
            renewal_review_on=form.renewal_review_on.data,
            hold_for_report=form.hold_for_report.data,
            refused=plans.PlanError,
        )
        if done.ok:
            flash(_("Payment plan saved."), "info")
            overdue = [i for i in done.value.instalments if i.due_on < utcnow().date()]
            if overdue:
                # Planned from a day gone by: said at once, not found later as overdue.
                flash(
                    ngettext(
                        "Its first payment was due on %(day)s, a day gone by: it is overdue"
                        " already.",
                        "Its first %(num)d payments were due on days gone by, the first on"
                        " %(day)s: they are overdue already.",
                        len(overdue),
                        day=overdue[0].due_on.isoformat(),
                    ),
                    "info",
                )
            return redirect(url_for("cases.case", uid=application.uid, _anchor="money"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=_case(application, "plan"))


@bp.post("/applications/<uid>/close")
@role_required(Role.MANAGER)
def close(uid):
    """Close the grant; what it still commits goes back to its pools."""
    application = get_application_or_404(uid, current_user)
    grant = _grant_or_404(application)
    form = CloseForm()
    if form.validate_on_submit():
        done = perform(
            plans.close_grant,
            grant,
            current_user._get_current_object(),
            form.reason.data,
            refused=plans.PlanError,
        )
        if done.ok:
            flash(
                ngettext(
                    "Grant closed; %(num)d pool got money back.",
                    "Grant closed; %(num)d pools got money back.",
                    len(done.value),
                ),
                "info",
            )
            return redirect(url_for("cases.case", uid=application.uid, _anchor="money"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=_case(application, "close"))


@bp.get("/coverage")
@role_required(Role.REVIEWER, Role.MANAGER, Role.FINANCE)
def coverage():
    """Support ending soon with nothing after it, and each defender's months of support."""
    today = utcnow().date()
    days = current_app.config["COVERAGE_WARNING_DAYS"]
    page = page_arg()
    user = current_user._get_current_object()
    rows, months, has_next = coverage_rules.calendar(
        user,
        today.replace(day=1),
        12,
        page,
        current_app.config["PAGE_SIZE"],
    )
    return render_template(
        "grants/coverage.html",
        ending=coverage_rules.ending_soon(user, today, days),
        days=days,
        today=today,
        rows=rows,
        months=months,
        page=page,
        has_next=has_next,
    )


@bp.post("/applications/<uid>/question")
@role_required(Role.REVIEWER, Role.MANAGER)
def ask(uid):
    """Ask the applicant side for information; the case waits, and so does its clock."""
    application = get_application_or_404(uid, current_user)
    form = QuestionForm()
    if not form.validate_on_submit():
        return refused.refuse(form, to=_case(application, "ask"))
    done = perform(
        decisions.request_information,
        application,
        current_user._get_current_object(),
        form.question.data,
        refused=decisions.DecisionError,
    )
    if not done.ok:
        return _refuse(application, "ask", form, done.refusal)
    flash(_("Question sent. The case waits for the answer."), "info")
    return redirect(_case(application, "review"))


@bp.post("/applications/<uid>/reject")
@role_required(Role.MANAGER)
def reject(uid):
    application = get_application_or_404(uid, current_user)
    form = RejectForm()
    if not form.validate_on_submit():
        return refused.refuse(form, to=_case(application, "reject"))
    done = perform(
        decisions.reject_application,
        application,
        current_user._get_current_object(),
        form.reason.data,
        refused=decisions.DecisionError,
    )
    if not done.ok:
        return _refuse(application, "reject", form, done.refusal)
    flash(_("The case is rejected; the applicant sees the reason."), "info")
    return redirect(_case(application, "review"))
