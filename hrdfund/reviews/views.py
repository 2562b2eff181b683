"""The staff side of a case page: each step posts here and comes back to the case.

A step the rules refuse comes back with the rule's message; a form with mistakes comes
back with them beside the fields, and nothing typed is lost (``auth.refused``).
"""

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role, User
from ..cases import access, panels
from ..cases.access import Section, get_application_or_404
from ..cases.models import ApplicationStatus as S
from ..cases.models import Reference
from ..cases.states import OPEN_STATES, STAFF_LABELS
from ..core.extensions import db
from ..core.money import MoneyError
from ..core.work import perform
from . import bp, network_check
from . import services as review_services
from .forms import (
    NOTE_LABELS,
    RECOMMENDATION_LABELS,
    RISK_LABELS,
    AssignForm,
    CofundingForm,
    ConflictForm,
    NetworkForm,
    NoteForm,
    QuickRecommendForm,
    RecommendForm,
    ReferenceCheckForm,
)
from .models import Recommendation
from .services import ReviewError

STAFF = (Role.REVIEWER, Role.MANAGER)


def _me():
    return current_user._get_current_object()


def _back(application, message):
    """Back to the case's review, saying what was done (committed already)."""
    flash(message, "info")
    return redirect(url_for("cases.case", uid=application.uid) + "#review")


def _again(application, anchor, form, error=None):
    """Back to the form on the case page (at ``anchor``) as it was sent, with the refusal,
    if any."""
    if error is not None:
        form.form_errors.append(str(error))
    return refused.refuse(form, to=url_for("cases.case", uid=application.uid, _anchor=anchor))


def assignable_staff(application):
    """Reviewers and managers of the case's fund without a conflict on it, by role, then
    by the name shown (names are encrypted, so they are ordered here)."""
    # Sorted here, the fund's few staff: ordered in SQL, SQLite walks every account of
    # every applicant in the order of logins to find them.
    staff = db.session.execute(access.staff_on_case(application, STAFF)).scalars().all()
    staff.sort(key=lambda u: u.login)
    staff.sort(key=lambda u: (u.display_name or u.login).casefold())
    staff.sort(key=lambda u: u.role.value, reverse=True)  # stable: names stay in order
    return staff


def assign_form(application, fresh=False):
    """The assignment form; ``fresh`` ignores what the request sent."""
    if fresh:
        form = AssignForm(formdata=None, reviewer=application.assigned_reviewer_id)
    else:
        form = AssignForm()
    # A required select opens on an empty choice, so nobody is assigned by default.
    form.reviewer.choices = [SelectChoice("", _("Choose someone"))] + [
        SelectChoice(u.id, u.display_name or u.login) for u in assignable_staff(application)
    ]
    return form


def recommend_form(application):
    """A fresh assessment form, each budget line's amount offered as asked."""
    return RecommendForm(
        formdata=None,
        data={
            "lines": [line.recommended_amount or line.amount for line in application.budget_lines]
        },
    )


@bp.post("/applications/<uid>/assign")
@role_required(*STAFF)
def assign(uid):
    """A manager gives the case to someone; a reviewer takes it for themself."""
    application = get_application_or_404(uid, current_user)
    form = assign_form(application)
    if not form.validate_on_submit():
        return _again(application, "assign", form)
    reviewer = db.session.get(User, form.reviewer.data)
    done = perform(
        review_services.assign_reviewer, application, reviewer, _me(), refused=ReviewError
    )
    if isinstance(done.refusal, review_services.AssignOthersError):
        abort(403)  # a reviewer is not offered anyone else; sending it is not a mistake
    if not done.ok:
        return _again(application, "assign", form, done.refusal)
    return _back(application, _("The case is assigned."))


@bp.post("/applications/<uid>/conflict")
@role_required(*STAFF, Role.FINANCE)
def conflict(uid):
    """Declare a conflict of interest: the declarer leaves the case for good."""
    application = get_application_or_404(uid, current_user)
    form = ConflictForm()
    if not form.validate_on_submit():
        return _again(application, "conflict", form)
    perform(review_services.declare_conflict, application, _me())
    if current_user.role == Role.FINANCE:
        flash(_("Your conflict of interest is recorded; the case left your lists."), "info")
        return redirect(url_for("disbursements.index"))
    flash(_("Your conflict of interest is recorded; the case left your queue."), "info")
    return redirect(url_for("reviews.queue"))


@bp.post("/applications/<uid>/references/<ref>")
@role_required(*STAFF)
def check_reference(uid, ref):
    """What a reference said when the fund contacted them."""
    application = get_application_or_404(uid, current_user)
    reference = db.session.execute(
        sa.select(Reference).where(Reference.uid == ref, Reference.application_id == application.id)
    ).scalar_one_or_none()
    if reference is None:
        abort(404)
    form = ReferenceCheckForm(prefix=f"ref-{reference.uid}")
    if not form.validate_on_submit():
        return _again(application, f"reference-{reference.uid}", form)
    done = perform(
        review_services.record_reference_check,
        reference,
        form.status.data,
        form.notes.data,
        _me(),
        refused=ReviewError,
    )
    if not done.ok:
        return _again(application, f"reference-{reference.uid}", form, done.refusal)
    return _back(application, _("The reference check is recorded."))


@bp.post("/applications/<uid>/notes")
@role_required(*STAFF)
def add_note(uid):
    application = get_application_or_404(uid, current_user)
    form = NoteForm()
    if not form.validate_on_submit():
        return _again(application, "notes", form)
    perform(review_services.add_note, application, _me(), form.kind.data, form.body.data)
    return _back(application, _("Note added. Only staff on this case can read it."))


@bp.post("/applications/<uid>/recommend")
@role_required(*STAFF)
def recommend(uid):
    """The assessment: risk, an amount per budget line, and the recommendation."""
    application = get_application_or_404(uid, current_user)
    form = RecommendForm()
    if not form.validate_on_submit():
        return _again(application, "assessment", form)
    lines = application.budget_lines
    amounts = {line.id: entry.data for line, entry in zip(lines, form.lines.entries, strict=False)}
    if form.recommendation.data == Recommendation.REJECT.value:
        amounts = {}
    done = perform(
        review_services.recommend,
        application,
        _me(),
        form.risk_level.data,
        form.recommendation.data,
        None,
        form.assessment.data,
        line_amounts=amounts,
        refused=(ReviewError, MoneyError),
    )
    if not done.ok:
        return _again(application, "assessment", form, done.refusal)
    return _back(application, _("Recommendation recorded. A manager decides next."))


#: The queue's arguments a form sent from it carries, to come back to the same list.
QUEUE_ARGS = ("status", "category", "urgency", "country", "pool", "sort", "assigned", "page")


def queue_back(uid=None):
    """The queue as the request's arguments filtered it (at the row of ``uid``)."""
    kept = {k: request.args[k] for k in QUEUE_ARGS if k in request.args}
    return url_for("reviews.queue", **kept, _anchor=f"quick-{uid}" if uid else None)


@bp.post("/applications/<uid>/quick-recommend")
@role_required(*STAFF)
def quick_recommend(uid):
    """From the queue, for an urgent case: take it and recommend it in one step; back to
    the queue as it was filtered."""
    application = get_application_or_404(uid, current_user, Section.REVIEW)
    form = QuickRecommendForm()
    if form.validate_on_submit():
        done = perform(
            review_services.take_and_recommend,
            application,
            _me(),
            form.risk_level.data,
            form.recommendation.data,
            form.assessment.data,
            refused=(ReviewError, MoneyError),
        )
        if done.ok:
            flash(
                _(
                    "%(case)s: taken and recommended. A manager decides next.",
                    case=application.code or application.uid,
                ),
                "info",
            )
            return redirect(queue_back())
        form.form_errors.append(done.words)
    return refused.refuse(form, to=queue_back(uid), about=uid)


@bp.post("/applications/<uid>/cofunding")
@role_required(*STAFF)
def cofunding(uid):
    """Another funder pays part of the same need."""
    application = get_application_or_404(uid, current_user)
    form = CofundingForm()
    if not form.validate_on_submit():
        return _again(application, "cofunding", form)
    done = perform(
        review_services.record_cofunding,
        application,
        _me(),
        form.funder.data,
        form.amount.data,
        form.currency.data,
        form.starts_on.data,
        form.ends_on.data,
        refused=ReviewError,
    )
    if not done.ok:
        return _again(application, "cofunding", form, done.refusal)
    return _back(application, _("The other funder is recorded."))


@bp.post("/applications/<uid>/network")
@role_required(*STAFF)
def ask_network(uid):
    """Ask the other member funds whether one already supports or refused this need; the
    answer is shown on the case page (it is not kept, see ``network_check``)."""
    application = get_application_or_404(uid, current_user, Section.REVIEW)
    form = NetworkForm()
    if not form.validate_on_submit():
        return _again(application, "network", form)
    done = perform(
        network_check.ask_network, application, _me(), refused=network_check.NetworkCheckError
    )
    if not done.ok:
        return _again(application, "network", form, done.refusal)
    flash(_("The other member funds were asked. Their answer is below."), "info")
    return redirect(url_for("cases.case", uid=application.uid, _anchor="network"))


def network_panel(application, user):
    """The duplicate check across funds on the case page, until the case is decided: why
    the case may not ask, or the button, and the answer to the reader's last ask while it
    is recent."""
    if application.status not in network_check.ASKING:
        return None
    reason = network_check.why_not_asking(application)
    return {
        "reason": reason,
        "answer": None if reason else network_check.recent_answer(application, user),
        "form": refused.restore(NetworkForm(formdata=None)),
        "words": network_check.WORD_LABELS,
        "minutes": network_check.ANSWER_MINUTES,
    }


@panels.register
def review_panel(application, user, sections):
    """Assignment, verification, notes, assessment, other funders."""
    if Section.REVIEW not in sections or application.status == S.DRAFT:
        return None
    fresh = {"formdata": None}
    # Each form as the user sent it, when it was refused a moment ago; else a fresh one.
    restore = refused.restore
    references = [(r, restore(_reference_form(r))) for r in application.references]
    return {
        "template": "reviews/_review.html",
        "open_case": application.status in OPEN_STATES,
        "assign_form": restore(assign_form(application, fresh=True)),
        "conflict_form": restore(ConflictForm(**fresh)),
        "references": references,
        "notes": review_services.case_notes(application),
        "note_form": restore(NoteForm(**fresh)),
        "review": review_services.latest_review(application),
        "recommend_form": restore(recommend_form(application)),
        "cofundings": review_services.cofundings(application),
        "cofunding_form": restore(CofundingForm(formdata=None, currency=application.currency)),
        "duplicates": review_services.possible_duplicates(application, user),
        "network": network_panel(application, user),
        "status_labels": STAFF_LABELS,
        "note_labels": NOTE_LABELS,
        "risk_labels": RISK_LABELS,
        "recommendation_labels": RECOMMENDATION_LABELS,
    }


def _reference_form(reference):
    return ReferenceCheckForm(
        formdata=None,
        prefix=f"ref-{reference.uid}",
        status=reference.status.value,
        notes=reference.notes,
    )
