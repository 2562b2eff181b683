"""The applicant side (start, fill in, send, follow a case) and the staff queue."""

import logging

import sqlalchemy as sa
from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from .. import audit
from ..auth import logins, refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..core.extensions import db, reading
from ..core.money import MoneyError
from ..core.work import perform, reads_first
from . import (
    access,
    bp,
    cleaning,
    consents,
    documents,
    labels,
    messages,
    page,
    services,
    waiting,
)
from .access import Section, get_application_or_404
from .applying import form_data
from .categories import CATEGORY_FIELDS
from .forms import (
    ConsentChangeForm,
    DocumentForm,
    MessageForm,
    PartnerLabelForm,
    ReportForm,
    application_form_class,
    error_links,
    required_fields,
)
from .models import Application, ApplicationStatus, ConsentKind, Document, DocumentKind
from .states import APPLICANT_LABELS, TERMINAL_STATES

log = logging.getLogger(__name__)


@bp.app_errorhandler(documents.DocumentDamaged)
def damaged_document(exc):
    """A stored document that does not read back whole, whatever page asked for it: the
    log names it by its uid (an opaque id), so an administrator can bring it back from a
    backup; the person is told in plain words, and nothing of it was sent."""
    log.warning("stored document %s does not read back whole: %s", exc.uid, exc.reason)
    return render_template("errors/damaged_document.html", language_back="/"), 500


@bp.get("/my")
@role_required(Role.APPLICANT)
def mine():
    """The applicant's own applications."""
    return _own_cases(referrals=False)


@bp.post("/my/login-noted")
@role_required(Role.APPLICANT)
def login_noted():
    """The new account noted its login name down: the list stops showing it (someone
    looking over a shoulder later reads it there no more; the account page keeps it)."""
    session.pop(logins.NEW_LOGIN_KEY, None)
    return redirect(url_for("cases.mine"))


@bp.get("/referrals")
@role_required(Role.PARTNER)
def referrals():
    """The cases a partner organisation referred, and nothing else."""
    return _own_cases(referrals=True)


def _own_cases(referrals):
    """The applicant side's list: the cases the access rule lets its reader open, those
    where something waits for them first, each group newest first."""
    rows = (
        db.session.execute(
            sa.select(Application)
            .where(access.visible_cases(current_user))
            .options(sa.orm.joinedload(Application.fund))
            .order_by(Application.created_at.desc(), Application.id.desc())
        )
        .scalars()
        .all()
    )
    waits = waiting.waiting_on(rows)
    # Stable: newest first within each group.
    rows.sort(key=lambda a: a.id not in waits)
    own_labels = (
        labels.labels_for([a.id for a in rows], current_user._get_current_object())
        if referrals
        else {}
    )
    return render_template(
        "cases/list.html",
        applications=rows,
        labels=APPLICANT_LABELS,
        referrals=referrals,
        waiting=waits,
        waiting_labels=waiting.WAITING_LABELS,
        own_labels=own_labels,
        new_login=current_user.login if session.get(logins.NEW_LOGIN_KEY) else None,
    )


@bp.route("/applications/<uid>/edit", methods=["GET", "POST"])
@reads_first
@role_required(Role.APPLICANT, Role.PARTNER)
def edit(uid):
    """The whole application form on one page: save a draft any time, send it when
    complete. The steps (:func:`step`) ask the same questions a few at a time."""
    application = get_application_or_404(uid, current_user)
    if application.status != ApplicationStatus.DRAFT:
        return redirect(url_for("cases.case", uid=application.uid))
    form_class = application_form_class(application.category)
    page = url_for("cases.edit", uid=application.uid)
    # Its page after sending, named now: the case, read again after the commit, would take
    # a transaction of its own (on SQLite the write lock) just for its address.
    sent_page = url_for("cases.case", uid=application.uid)
    if request.method == "GET":
        form = refused.restore(form_class(data=form_data(application)))
        return render_template(
            "cases/edit.html",
            form=form,
            application=application,
            missing=form.problems,
            fields=CATEGORY_FIELDS[application.category],
            required=required_fields(
                application.category, application.partner_organisation_id is not None
            ),
            error_links=error_links(form),
        )
    form = form_class()
    if not form.validate_on_submit():
        form.form_errors.append(_("Some answers need correcting: see the messages below."))
        return refused.refuse(form, to=page)
    done = perform(
        _save_or_send,
        application,
        form.data,
        current_user,
        send=form.submit.data,
        refused=MoneyError,  # budget lines adding up past what one amount holds
    )
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=page)
    if not form.submit.data:
        flash(_("Draft saved. You can come back to it at any time."), "info")
        return redirect(page)
    if done.value:  # the draft is saved; the page lists what sending it needs
        return refused.refuse(form, to=page, problems=done.value)
    flash(_("Your application was sent. The fund will answer here."), "info")
    return redirect(sent_page)


def _save_or_send(application, data, actor, send):
    """Save the draft and, when ``send``, send it. Returns what sending it still needs,
    or nothing: a draft not complete is saved all the same."""
    services.save_draft(application, data, actor)
    if send:
        try:
            services.submit_application(application, actor)
        except services.IncompleteError as exc:
            return exc.missing
    return None


@bp.route("/applications/<uid>", methods=["GET", "POST"])
def case(uid):
    """The case as its reader may see it (``access.sections``), with the message thread
    for those who read it."""
    application = get_application_or_404(uid, current_user)
    form = MessageForm()
    if form.validate_on_submit():
        done = perform(
            messages.post_message,
            application,
            current_user._get_current_object(),
            form.body.data,
            refused=messages.ThreadClosedError,
        )
        if not done.ok:
            abort(404)
        flash(_("Message sent."), "info")
        return redirect(url_for("cases.case", uid=application.uid))
    if form.is_submitted():
        return refused.refuse(form, to=url_for("cases.case", uid=application.uid, _anchor="thread"))
    forms = {"message": MessageForm, "document": DocumentForm, "report": ReportForm}
    return page.render_case(application, current_user._get_current_object(), forms)


@bp.post("/applications/<uid>/consents/<kind>/give")
@role_required(Role.APPLICANT, Role.PARTNER)
def give_consent(uid, kind):
    """The defender gives a consent on their case page, or the partner that referred the
    case records that the defender gave it, and how."""
    return _change_consent(uid, kind, consents.give_consent)


@bp.post("/applications/<uid>/consents/<kind>/withdraw")
@role_required(Role.APPLICANT, Role.PARTNER)
def withdraw_consent(uid, kind):
    """The defender takes back a consent, or the partner that referred the case records
    that the defender took it back, and how."""
    return _change_consent(uid, kind, consents.withdraw_consent)


def _change_consent(uid, kind, service):
    application = get_application_or_404(uid, current_user, Section.CONSENTS)
    user = current_user._get_current_object()
    try:
        kind = ConsentKind(kind)
    except ValueError:
        abort(404)
    if kind not in consents.WITHDRAWABLE or not consents.holds_consent(application, user):
        abort(404)
    back = url_for("cases.case", uid=uid, _anchor=f"consent-{kind.value}")
    form = ConsentChangeForm(prefix=kind.value)
    if user.role != Role.PARTNER:
        del form.how  # the defender says it themselves
    if not form.validate_on_submit():
        return refused.refuse(form, to=back)
    how = form.how.data if user.role == Role.PARTNER else None
    done = perform(service, application, kind, user, how=how, refused=consents.ConsentError)
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=back)
    if done.value is None:  # none of that kind stands: nothing was written
        abort(404)
    given = service is consents.give_consent
    if user.role == Role.PARTNER:
        words = (
            _("The defender's consent is recorded. It applies from now on.")
            if given
            else _("The defender's withdrawal is recorded. It applies from now on.")
        )
    else:
        words = (
            _("Your consent is given. It applies from now on.")
            if given
            else _("Your consent is withdrawn. It applies from now on.")
        )
    flash(words, "info")
    return redirect(back)


@bp.post("/applications/<uid>/label")
@role_required(Role.PARTNER)
def partner_label(uid):
    """The referring organisation writes, changes or removes its own label for the case."""
    application = get_application_or_404(uid, current_user, Section.CONSENTS)
    back = url_for("cases.case", uid=uid, _anchor="label")
    form = PartnerLabelForm()
    if not form.validate_on_submit():
        return refused.refuse(form, to=back)
    # A form sent without its field at all says nothing: as an empty one, no label.
    text = form.label.data or ""
    done = perform(
        labels.set_partner_label,
        application,
        current_user._get_current_object(),
        text,
        refused=labels.LabelError,
    )
    if not done.ok:
        form.form_errors.append(done.words)
        return refused.refuse(form, to=back)
    flash(_("Your label is saved.") if text.strip() else _("Your label is removed."), "info")
    return redirect(back)


@bp.post("/applications/<uid>/report")
@role_required(Role.APPLICANT, Role.PARTNER)
def report(uid):
    """The short use-of-funds report with the outcome questions."""
    application = get_application_or_404(uid, current_user, Section.CONSENTS)
    form = ReportForm()
    if form.validate_on_submit():
        done = perform(
            services.submit_report,
            application,
            current_user._get_current_object(),
            form.felt_safer.data,
            form.continued_work.data,
            form.narrative.data,
            refused=services.ReportNotDueError,
        )
        if not done.ok:
            abort(404)
        flash(_("Thank you for your report."), "info")
        return redirect(url_for("cases.case", uid=uid))
    return refused.refuse(form, to=url_for("cases.case", uid=uid, _anchor="report"))


@bp.post("/applications/<uid>/documents")
def upload(uid):
    """Add a quote, report or evidence to the case. The file is cleaned with no transaction
    open; what the first read decided is checked again in the one that stores it."""
    with reading():
        application = get_application_or_404(uid, current_user, Section.DOCUMENTS)
        if application.status in TERMINAL_STATES:
            abort(404)
        form = DocumentForm()
        valid = form.validate_on_submit()
    if valid:
        try:
            cleaned = cleaning.clean_upload(form.file.data.stream, form.file.data.filename)
        except cleaning.DocumentError as exc:
            form.file.errors.append(str(exc))
        else:
            application = get_application_or_404(uid, current_user, Section.DOCUMENTS)
            if application.status in TERMINAL_STATES:
                abort(404)  # closed while the file was being cleaned
            perform(
                documents.store_document,
                cleaned,
                application,
                DocumentKind(form.kind.data),
                current_user._get_current_object(),
            )
            # Said whole: a fund the case was referred to with the defender's consent opens
            # its documents too, while that consent stands.
            flash(
                _(
                    "Document added. Only you and the staff of the funds working on your case"
                    " can open it."
                ),
                "info",
            )
            return redirect(url_for("cases.case", uid=uid))
    return refused.refuse(form, to=url_for("cases.case", uid=uid, _anchor="documents"))


@bp.get("/applications/<uid>/documents/<doc>")
def download(uid, doc):
    """A document of the case, as an attachment, for those who may see its documents."""
    application = get_application_or_404(uid, current_user, Section.DOCUMENTS)
    document = db.session.execute(
        sa.select(Document).where(Document.uid == doc, Document.application_id == application.id)
    ).scalar_one_or_none()
    if document is None:
        abort(404)
    return documents.send_document(
        document,
        record=lambda: perform(
            audit.record,
            "document.downloaded",
            document,
            actor=current_user._get_current_object(),
            fund=application.fund_id,
        ),
    )
