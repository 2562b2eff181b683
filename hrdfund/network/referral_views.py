"""Pages of referrals between member funds: the referring fund's form and withdrawal on
its case page, the list of referrals in and out, and the referral page where the other
fund opens the shared parts and answers."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import SelectChoice

from .. import audit
from ..auth import refused
from ..auth.guard import role_required
from ..cases import documents, panels
from ..cases.access import can_see, get_application_or_404
from ..cases.categories import CATEGORY_FIELDS, detail_text
from ..cases.models import Document, Urgency
from ..cases.services import case_rows
from ..core import geo
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.forms import ConfirmForm
from ..core.support import Category
from ..core.work import perform
from ..reviews import network_check
from ..reviews.forms import RECOMMENDATION_LABELS, RISK_LABELS
from ..reviews.models import Review
from . import bp, exchange_views, support
from . import funds as funds_services
from . import referrals as services
from .forms import DeclineForm, ReferForm
from .models import Referral, ReferralStatus

ROLES = services.REFERRAL_ROLES
#: A referral's state, as both funds and the applicant side read it.
LABELS = {
    ReferralStatus.PENDING: _l("Waiting for an answer"),
    ReferralStatus.ACCEPTED: _l("Accepted"),
    ReferralStatus.DECLINED: _l("Declined"),
    ReferralStatus.WITHDRAWN: _l("Withdrawn"),
}


def _actor():
    return current_user._get_current_object()


def _refer_form(application, formdata=None, funds=None):
    form = ReferForm(formdata=formdata) if formdata is not None else ReferForm()
    form.to_fund.choices = [SelectChoice("", _("Choose a fund"))] + [
        # A partner on another server may share a member fund's name: said apart.
        SelectChoice(
            f.uid, _("%(fund)s, on another server", fund=f.name) if f.elsewhere else f.name
        )
        for f in (services.other_funds(application) if funds is None else funds)
    ]
    if not form.is_submitted():
        form.category.data = application.category.value
        form.currency.data = application.currency
    return form


@panels.register
def network_panel(application, user, sections):
    """On the case page: the referrals of the case and who handles which part; for the
    fund's reviewers and managers, the form to refer it to another member fund."""
    sent, made_by = services.of_case(application)
    if not sent and made_by is None and not user.is_staff:
        return None
    if user.is_staff and user.role not in ROLES:
        return None
    data = {
        "template": "network/_case_referrals.html",
        "sent": sent,
        "made_by": made_by,
        "stopped": services.stopped_ids(sent),
        "referral_labels": LABELS,
    }
    if user.is_staff:
        why = services.why_not_referable(application, user)
        data["why_not"] = why
        funds = services.other_funds(application) if why is None else []
        data["refer_form"] = (
            refused.restore(_refer_form(application, formdata=None, funds=funds))
            if why is None
            else None
        )
        # What each member fund offered says it covers, to choose one that may say yes.
        data["covers"] = _covers(funds)
        data["confirm"] = ConfirmForm()
        data["plan"] = support.support_plan(application) if sent or made_by else []
        data["ask_partner"] = (
            exchange_views.ask_partner_form(application)
            if network_check.why_not_asking(application) is None
            else None
        )
    return data


def _covers(funds):
    """Of the member funds among ``funds``: each one's name, the kinds of support it says
    it covers and where (empty: every one), in the reader's words. A partner on another
    server keeps its own on its server."""
    names = dict(geo.countries(str(get_locale() or "en")))
    return [{"name": f.name, **funds_services.covers(f, names)} for f in funds if not f.elsewhere]


@bp.post("/applications/<uid>/refer")
@role_required(*ROLES)
def refer(uid):
    """Refer the case, or a part of its need, to another member fund."""
    application = get_application_or_404(uid, current_user)
    form = _refer_form(application)
    back = url_for("cases.case", uid=uid, _anchor="referrals")
    if form.validate_on_submit():
        funds = {f.uid: f for f in services.other_funds(application)}
        part = services.Part(
            category=Category(form.category.data),
            months_from=form.months_from.data,
            months_to=form.months_to.data,
            amount=form.amount.data,
            currency=form.currency.data,
        )
        done = perform(
            services.refer_case,
            _actor(),
            application,
            funds.get(form.to_fund.data),
            part,
            form.shares.data,
            form.reason.data,
            form.answer_by.data,
            refused=services.ReferralError,
        )
        if done.ok:
            flash(
                _("Referred to %(fund)s. Its answer shows here.", fund=done.value.to_fund.name),
                "info",
            )
            return redirect(back)
        form.form_errors.append(done.words)
    return refused.refuse(form, to=back)


@bp.app_context_processor
def _referrals_waiting():
    """For the queue of the fund's reviewers and managers: how many referrals from other
    funds wait for their answer (counted only where a page asks)."""

    def waiting():
        if not current_user.is_authenticated:
            return 0
        return services.waiting_count(current_user)

    return {"referrals_waiting": waiting}


@bp.get("/network/referrals")
@role_required(*ROLES)
def referrals():
    """Referrals to the fund, waiting ones first, and the fund's own referrals."""
    arriving = services.incoming(current_user)
    return render_template(
        "network/referrals.html",
        incoming=arriving,
        outgoing=services.outgoing(current_user),
        due={r.id: services.response_due(r) for r in arriving},
        stopped=services.stopped_ids(arriving),
        now=utcnow(),
        referral_labels=LABELS,
    )


def _referral_or_404(uid):
    referral = db.session.execute(
        sa.select(Referral).where(Referral.uid == uid)
    ).scalar_one_or_none()
    if referral is None:
        abort(404)
    if not services.may_open(referral, current_user):
        closed = services.closed_to(referral, current_user)
        if closed is None:
            abort(404)
        # The fund asked had it: it reads why it is gone (an old link, or an answer sent
        # after the referring fund withdrew it), not that there is nothing here.
        flash(str(closed), "info")
        abort(redirect(url_for("network.referrals")))
    return referral


@bp.get("/network/referrals/<uid>")
@role_required(*ROLES)
def referral(uid):
    """The referral: what is asked and why, its state, and for the fund asked the parts
    of the case it may open and the answer."""
    referral = _referral_or_404(uid)
    asked = current_user.fund_id == referral.to_fund_id
    parts = services.shared_parts(referral, current_user) if asked else frozenset()
    source = referral.application
    return render_template(
        "network/referral.html",
        referral=referral,
        asked=asked,
        parts=parts,
        stopped=services.is_stopped(referral),
        due=services.response_due(referral),
        case=source if "answers" in parts else None,
        category_fields=CATEGORY_FIELDS[source.category],
        detail_text=detail_text,
        documents=case_rows(Document, source) if "documents" in parts else [],
        reviews=case_rows(Review, source) if "assessment" in parts else [],
        risk_labels=RISK_LABELS,
        recommendation_labels=RECOMMENDATION_LABELS,
        urgent=source.urgency == Urgency.URGENT,
        decline_form=refused.restore(DeclineForm(formdata=None)),
        confirm=ConfirmForm(),
        referral_labels=LABELS,
        # The referring fund's way back to its case (unless the reader may not open it).
        own_case=source if not asked and can_see(source, current_user) else None,
    )


@bp.get("/network/referrals/<uid>/documents/<doc>")
@role_required(*ROLES)
def shared_document(uid, doc):
    """A document the referring fund shared, for the fund asked."""
    referral = _referral_or_404(uid)
    own = current_user.fund_id == referral.from_fund_id  # the case's staff (may_open)
    if not own and "documents" not in services.shared_parts(referral, current_user):
        abort(404)
    document = db.session.execute(
        sa.select(Document).where(
            Document.uid == doc, Document.application_id == referral.application_id
        )
    ).scalar_one_or_none()
    if document is None:
        abort(404)
    return documents.send_document(
        document,
        record=lambda: perform(
            audit.record,
            "document.downloaded",
            document,
            actor=_actor(),
            fund=current_user.fund_id,
            referral=referral.uid,
        ),
    )


def _answer(uid, service, words, *args):
    referral = _referral_or_404(uid)
    done = perform(service, _actor(), referral, *args, refused=services.ReferralError)
    if done.ok:
        flash(words, "info")
    else:
        flash(done.words, "error")
    return redirect(url_for("network.referral", uid=uid))


@bp.post("/network/referrals/<uid>/accept")
@role_required(*ROLES)
def accept(uid):
    """Take the part on: the fund's own case enters its queue."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _answer(
        uid,
        services.accept_referral,
        _("Accepted: the case is in your fund's queue, with your fund's targets."),
    )


@bp.post("/network/referrals/<uid>/decline")
@role_required(*ROLES)
def decline(uid):
    referral = _referral_or_404(uid)
    form = DeclineForm()
    back = url_for("network.referral", uid=uid)
    if form.validate_on_submit():
        done = perform(
            services.decline_referral,
            _actor(),
            referral,
            form.reason.data,
            refused=services.ReferralError,
        )
        if done.ok:
            flash(_("Declined. The referring fund reads your reason."), "info")
            return redirect(back)
        form.form_errors.append(done.words)
    return refused.refuse(form, to=back + "#decline")


@bp.post("/network/referrals/<uid>/withdraw")
@role_required(*ROLES)
def withdraw(uid):
    """Take back a referral not answered yet."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    referral = _referral_or_404(uid)
    done = perform(services.withdraw_referral, _actor(), referral, refused=services.ReferralError)
    flash(_("Referral withdrawn.") if done.ok else done.words, "info" if done.ok else "error")
    return redirect(url_for("cases.case", uid=referral.application.uid, _anchor="referrals"))
