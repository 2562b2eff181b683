"""The applicant side's pages that end what it started (``withdrawal``): each asks once
more on a page of its own, as nothing of it can be undone, and works without script."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..core.extensions import db
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import bp, withdrawal
from .access import Section, get_application_or_404
from .forms import DOCUMENT_LABELS, WithdrawForm
from .models import ApplicationStatus, Document


def _held_case(uid):
    """The case ``uid`` if the reader speaks for its applicant side; 404 otherwise."""
    application = get_application_or_404(uid, current_user)
    if not withdrawal.holds_case(application, current_user):
        abort(404)
    return application


def _list():
    """The reader's list of cases."""
    if current_user.role == Role.PARTNER:
        return url_for("cases.referrals")
    return url_for("cases.mine")


def _ask(page, form_class, service, said, to):
    """A page that asks once more (``page``: the template's values, ``kind`` among them),
    and its form: sent, ``service(actor, form)`` ends what it names, and the reader is told
    ``said`` at ``to``; refused, the page shows why."""
    here = request.path
    form = form_class()
    if not form.is_submitted():
        form = refused.restore(form_class(formdata=None))
        return render_template("cases/withdraw.html", form=form, **page)
    if not form.validate_on_submit():
        return refused.refuse(form, to=here)
    actor = current_user._get_current_object()
    done = perform(service, actor, form, refused=withdrawal.WithdrawalError)
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=here)
    flash(said, "info")
    return redirect(to)


@bp.route("/applications/<uid>/withdraw", methods=["GET", "POST"])
@role_required(Role.APPLICANT, Role.PARTNER)
def withdraw(uid):
    """Withdraw an application sent and not decided, after saying what that means."""
    application = _held_case(uid)
    if application.status not in withdrawal.WITHDRAWABLE:
        abort(404)
    return _ask(
        {"application": application, "kind": "withdraw"},
        WithdrawForm,
        lambda actor, form: withdrawal.withdraw_application(application, actor, form.reason.data),
        _("The application is withdrawn. The fund is told, and will not decide it."),
        url_for("cases.case", uid=uid),
    )


@bp.route("/applications/<uid>/delete", methods=["GET", "POST"])
@role_required(Role.APPLICANT, Role.PARTNER)
def delete_draft(uid):
    """Delete a draft never sent, with everything in it."""
    application = _held_case(uid)
    if application.status != ApplicationStatus.DRAFT:
        abort(404)
    return _ask(
        {"application": application, "kind": "delete"},
        ConfirmForm,
        lambda actor, _form: withdrawal.delete_draft(application, actor),
        _("The draft is deleted, with everything written in it."),
        _list(),
    )


@bp.route("/applications/<uid>/documents/<doc>/remove", methods=["GET", "POST"])
@role_required(Role.APPLICANT, Role.PARTNER)
def remove_document(uid, doc):
    """Take out a document the applicant side added, while the case is open."""
    application = _held_case(uid)
    get_application_or_404(uid, current_user, Section.DOCUMENTS)
    document = db.session.execute(
        sa.select(Document).where(Document.uid == doc, Document.application_id == application.id)
    ).scalar_one_or_none()
    if document is None or not withdrawal.removable(application, document, current_user):
        abort(404)
    return _ask(
        {
            "application": application,
            "kind": "document",
            "document": document,
            "document_labels": DOCUMENT_LABELS,
        },
        ConfirmForm,
        lambda actor, _form: withdrawal.remove_document(application, document, actor),
        _("The document is removed: nobody can open it any more."),
        url_for("cases.case", uid=uid, _anchor="documents"),
    )
