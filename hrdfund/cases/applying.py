"""Applying, one step at a time: choose the fund and the kind of support (nothing is
stored), answer each step and save it (the first save opens the draft), check every answer
and send. The whole form on one page (``views.edit``) asks the same questions."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth import funds, refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..core.money import MoneyError
from ..core.support import Category
from ..core.work import perform, reads_first
from . import bp, consents, services, steps
from .access import get_application_or_404
from .categories import CATEGORY_FIELDS, detail_text
from .forms import (
    CONSENT_LABELS,
    GENDER_LABELS,
    HOW_CHOICES,
    URGENCY_LABELS,
    ReferralStartForm,
    SendForm,
    StartForm,
    error_links,
    new_application_form_class,
    required_fields,
    step_form_class,
)
from .models import ApplicationStatus, ConsentKind

#: The fund choice that leaves it to the network: the intake fund.
NOT_SURE = "intake"


def _offer_funds(form):
    """The funds the form offers, and where each choice goes: every fund that takes
    applications, and, where the network names an intake fund, "I do not know". With one
    fund only, nothing to choose: it goes there."""
    opened = funds.open_funds()
    intake = funds.intake_fund(opened)
    goes_to = {f.uid: f for f in opened}
    form.fund.choices = [SelectChoice(f.uid, f.name) for f in opened]
    if intake is not None:
        goes_to[NOT_SURE] = intake
        form.fund.choices.append(
            SelectChoice(NOT_SURE, _("I do not know: the network chooses for me"))
        )
    if len(opened) <= 1:
        form.fund.choices = []
    return goes_to


def _choice(formdata):
    """The choice of a fund and a kind of support (a partner also records the defender's
    consent), read from ``formdata`` or empty; with where each fund offered goes, and
    whether there is a fund to choose."""
    referral = current_user.role == Role.PARTNER
    form = (ReferralStartForm if referral else StartForm)(formdata=formdata)
    goes_to = _offer_funds(form)
    choosing = bool(form.fund.choices)
    if not choosing:
        del form.fund
    elif NOT_SURE in goes_to and not form.fund.raw_data:
        # Not knowing is the answer given until another fund is chosen.
        form.fund.validators = []
        form.fund.data = NOT_SURE
    return form, goes_to, choosing


@bp.get("/apply")
@role_required(Role.APPLICANT, Role.PARTNER)
def start():
    """Choose the fund and the kind of support; a partner also records the defender's
    consent. Nothing is stored: the choice is sent by GET to the first step, whose form
    carries it on, and the draft exists once that step is saved."""
    referral = current_user.role == Role.PARTNER
    form, goes_to, _choosing = _choice(None)
    if not goes_to:
        return render_template("cases/start.html", form=None, referral=referral)
    return render_template("cases/start.html", form=refused.restore(form), referral=referral)


def _chosen(referral):
    """The first step for the choice the start page sent in the address; a choice refused
    is the start page again, with its errors, at this address: a page read, it keeps
    nothing (a reload shows it the same)."""
    form, goes_to, choosing = _choice(request.args)
    if not goes_to:
        return redirect(url_for("cases.start"))
    if referral and request.args.get("consent") != "y":
        # Only the box the page offers says yes: "on" or "n" in an address is no consent.
        form.consent.data = False
    if not form.validate():
        return render_template("cases/start.html", form=form, referral=referral)
    carried = {"fund": form.fund.data if choosing else "", "category": form.category.data}
    if referral:
        carried.update(consent="y", consent_method=form.consent_method.data)
    first = new_application_form_class(referral)(formdata=None, data=carried)
    return _render_new(first, form.category.data, referral)


def _render_new(form, category, referral):
    """The first step of an application not stored yet; a partner's says what it records
    of the defender's consent, so that a link that chose for it is not followed unseen."""
    try:
        category = Category(category)
    except ValueError:
        category = None
    method = dict(HOW_CHOICES).get(form.consent_method.data) if referral else None
    return render_template(
        "cases/step.html",
        form=form,
        application=None,
        category=category,
        step=steps.DEFENDER,
        action=url_for("cases.begin"),
        back=url_for("cases.start"),
        consent_recorded=method,
        **_step_context(None, steps.DEFENDER, form, referral),
    )


@bp.route("/apply/new", methods=["GET", "POST"])
@reads_first
@role_required(Role.APPLICANT, Role.PARTNER)
def begin():
    """The first save: it opens the draft with the first step's answers, at the fund and
    for the kind of support the form carries. Its page shows the first step for the
    choice sent in its address, or a first step refused; without either, the choice
    starts again."""
    referral = current_user.role == Role.PARTNER
    form_class = new_application_form_class(referral)
    here = url_for("cases.begin")
    if request.method == "GET":
        if request.args:
            return _chosen(referral)
        form = refused.restore(form_class(formdata=None))
        if not form.refused:
            return redirect(url_for("cases.start"))
        return _render_new(form, form.category.data, referral)
    form = form_class()
    if not form.validate_on_submit():
        return refused.refuse(form, to=here)
    choice = StartForm(formdata=None)
    goes_to = _offer_funds(choice)
    if choice.fund.choices:
        fund = goes_to.get(form.fund.data)
    else:
        fund = next(iter(goes_to.values()), None)
    if fund is None:
        form.form_errors.append(_("Choose a fund."))
        return refused.refuse(form, to=here)
    done = perform(
        _begin_draft,
        current_user,
        form.category.data,
        fund,
        form.data,
        consent_method=form.consent_method.data if referral else None,
        refused=services.FundClosedError,
    )
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=here)
    flash(_("Saved. Your draft is kept: you can come back to it at any time."), "info")
    return redirect(url_for("cases.step", uid=done.value, step=steps.next_step(steps.DEFENDER)))


def _begin_draft(actor, category, fund, data, consent_method=None):
    """Open the draft; returns its uid, known before the commit (the case, read again
    after it, would take a transaction of its own just to name its page)."""
    application = services.begin_application(
        actor, category, fund, data, consent_method=consent_method
    )
    return application.uid


def _step_url(application, step, anchor=None, then=None):
    """The address of a step of ``application`` (at ``anchor``); ``then`` names the step
    its saving goes on to when it is not the next one."""
    return url_for("cases.step", uid=application.uid, step=step, then=then, _anchor=anchor)


def _step_context(application, step, form, referral):
    """What every step's page shows around its form: the list of steps (done, to do,
    current), the mark on the questions sending needs, and the error summary."""
    saved = steps.saved_steps(application) if application is not None else set()
    missing = services.missing_items(application) if application is not None else []
    incomplete = {m.step for m in missing}
    listed = []
    for name in (*steps.STEPS, steps.REVIEW):
        if name == steps.REVIEW:
            state = "current" if name == step else "todo"
        elif name == step:
            state = "current"
        elif name in saved:
            state = "incomplete" if name in incomplete else "done"
        else:
            state = "todo"
        link = _step_url(application, name) if application is not None else None
        listed.append((name, steps.TITLES[name], state, link))
    category = application.category if application is not None else Category.OTHER
    return {
        "steps_listed": listed,
        "step_title": steps.TITLES[step],
        "step_number": (*steps.STEPS, steps.REVIEW).index(step) + 1,
        "step_count": len(steps.STEPS) + 1,
        "required": required_fields(category, referral) if form is not None else set(),
        "error_links": error_links(form) if form is not None else [],
    }


@bp.route("/applications/<uid>/steps/<step>", methods=["GET", "POST"])
@reads_first
@role_required(Role.APPLICANT, Role.PARTNER)
def step(uid, step):
    """One step of the application: its questions, saved on their own; the last step
    shows every answer and sends the application."""
    application = get_application_or_404(uid, current_user)
    if step not in steps.STEPS and step != steps.REVIEW:
        abort(404)
    if application.status != ApplicationStatus.DRAFT:
        return redirect(url_for("cases.case", uid=application.uid))
    if step == steps.REVIEW:
        return _review(application)
    referral = application.partner_organisation_id is not None
    form_class = step_form_class(application.category, step)
    # Opened from the last step's list of what sending still needs: saved, back to it.
    back_to_review = request.args.get("then") == steps.REVIEW
    here = _step_url(application, step, then=steps.REVIEW if back_to_review else None)
    if request.method == "GET":
        form = refused.restore(form_class(data=form_data(application)))
        previous = steps.previous_step(step)
        return render_template(
            "cases/step.html",
            form=form,
            application=application,
            category=application.category,
            step=step,
            action=here,
            back=_step_url(application, previous) if previous else None,
            fields=CATEGORY_FIELDS[application.category],
            **_step_context(application, step, form, referral),
        )
    form = form_class()
    if not form.validate_on_submit():
        return refused.refuse(form, to=here)
    done = perform(
        services.save_draft,
        application,
        form.data,
        current_user,
        step=step,
        refused=MoneyError,  # budget lines adding up past what one amount holds
    )
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=here)
    flash(_("Saved."), "info")
    following = steps.REVIEW if back_to_review else steps.next_step(step)
    return redirect(_step_url(application, following))


def _review(application):
    """The last step: every answer by step, what sending still needs (each linked to its
    step and question), and the button that sends."""
    here = _step_url(application, steps.REVIEW)
    uid = application.uid  # its page's address, without reading the case after the commit
    form = SendForm()
    if request.method == "GET":
        form = refused.restore(SendForm(formdata=None))
        missing = services.missing_items(application)
        return render_template(
            "cases/review.html",
            form=form,
            application=application,
            missing=[
                (m, _step_url(application, m.step, m.field, then=steps.REVIEW)) for m in missing
            ],
            fields=CATEGORY_FIELDS[application.category],
            detail_text=detail_text,
            titles=steps.TITLES,
            gender_labels=GENDER_LABELS,
            urgency_labels=URGENCY_LABELS,
            consents=[
                (CONSENT_LABELS[kind], consents.active_consent(application, kind) is not None)
                for kind in (ConsentKind.REFERRAL, ConsentKind.STORY)
            ],
            step=steps.REVIEW,
            back=_step_url(application, steps.previous_step(steps.REVIEW)),
            **_step_context(application, steps.REVIEW, None, False),
        )
    if not form.validate_on_submit():
        return refused.refuse(form, to=here)
    done = perform(
        services.submit_application,
        application,
        current_user,
        refused=services.IncompleteError,
    )
    if not done.ok:
        form.form_errors.append(_("The application cannot be sent yet: see what it still needs."))
        return refused.refuse(form, to=here)
    flash(_("Your application was sent. The fund will answer here."), "info")
    return redirect(url_for("cases.case", uid=uid))


def form_data(application):
    """The stored draft, as the form's initial data."""
    budget = [{"description": b.description, "amount": b.amount} for b in application.budget_lines]
    dependants = [{"relation": d.relation, "age": d.age} for d in application.dependants]
    references = [
        {"name": r.name, "organisation": r.organisation, "contact": r.contact}
        for r in application.references
    ]
    return {
        "defender_name": application.defender_name,
        "country": application.country or "",
        "gender": application.gender.value if application.gender else "",
        "urgency": application.urgency.value if application.urgency else None,
        "urgency_reason": application.urgency_reason,
        "defender_work": application.defender_work,
        "threat": application.threat,
        "details": application.details or {},
        "currency": application.currency,
        "budget": budget,
        "dependants": dependants,
        "references": references,
        "other_funders": application.other_funders,
        "consent_referral": consents.active_consent(application, ConsentKind.REFERRAL) is not None,
        "consent_story": consents.active_consent(application, ConsentKind.STORY) is not None,
    }
