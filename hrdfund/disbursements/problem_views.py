"""Finance resolves, from follow-up, a payment the payee side reported short or not
received."""

import sqlalchemy as sa
from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import Section, sections
from ..core.work import perform
from . import bp, problems


def _answer_or_404(uid):
    """A payee's answer on a case whose payees the user may see (finance of the fund, on a
    case they may open); 404 otherwise."""
    answer = problems.answer_by_uid(uid)
    if answer is None or Section.PAYEES not in sections(
        answer.disbursement.grant.application, current_user
    ):
        abort(404)
    return answer


@bp.post("/answers/<uid>/resolve")
@role_required(Role.FINANCE)
def resolve(uid):
    """Record how a payment reported short or not received was resolved."""
    answer = _answer_or_404(uid)
    form = problems.ResolveForm()
    if form.validate_on_submit():
        done = perform(
            problems.resolve_receipt_problem,
            answer,
            current_user._get_current_object(),
            form.outcome.data,
            note=form.note.data,
            # IntegrityError: another finance officer resolved it at the same moment.
            refused=(problems.ResolutionError, sa.exc.IntegrityError),
        )
        if done.ok:
            flash(_("Resolved: the report leaves the follow-up list."), "info")
            return redirect(url_for("disbursements.follow_up", _anchor="mismatches"))
        if isinstance(done.refusal, sa.exc.IntegrityError):
            form.form_errors.append(_("This report was resolved already."))
        else:
            form.form_errors.append(done.words)
    page = url_for("disbursements.follow_up", _anchor=f"answer-{answer.uid}")
    return refused.refuse(form, to=page, about=answer.uid)
