"""Explanations of variances: for each line of budget against actual (a category, or the
total) whose paid differs from its committed by 10% or more in an ended period, a manager
writes a line for the donor, and the donor's report of that period prints the newest one
(or "not yet explained"). The words are the manager's, shown to a donor: the form asks
that no one be named, and they are kept encrypted."""

import json

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.extensions import db
from .data import budget_lines, variance_notes
from .models import IssuedFigures, VarianceNote

#: The longest explanation, in characters.
NOTE_MAX = 600


class ExplanationError(Exception):
    """An explanation the rules refuse; the message says why."""


def flagged(pool_id):
    """Every variance of 10% or more of the pool's issued periods, newest year first, as
    dicts (period, line and its budget, actual and percent) with the newest explanation
    (``note``, or None)."""
    issued = db.session.execute(
        sa.select(IssuedFigures.period, IssuedFigures.figures)
        .where(IssuedFigures.pool_id == pool_id)
        .order_by(IssuedFigures.year.desc(), IssuedFigures.period)
    ).all()
    written = variance_notes(pool_id)
    found = []
    for period, figures in issued:
        if "-H" in period:
            continue  # a half-year has no report of its own
        for line in budget_lines(json.loads(figures)["budget"]):
            if line["flagged"]:
                found.append(
                    {"period": period, **line, "note": written.get((period, line["label"]))}
                )
    return found


def explain_variance(pool, actor, period, line, text):
    """Keep ``actor``'s explanation of the variance of ``line`` in ``period`` of ``pool``
    for the donor's report (flushed, audited without its words). Refused unless the actor
    is a manager of the pool's fund and the line is a variance of 10% or more of an issued
    period."""
    if actor.role != Role.MANAGER or actor.fund_id != pool.fund_id:
        raise ExplanationError(_l("Your role may not do this."))
    text = " ".join((text or "").split())
    if not text:
        raise ExplanationError(_l("Write the explanation."))
    if len(text) > NOTE_MAX:
        raise ExplanationError(_l("An explanation has at most %(max)d characters.", max=NOTE_MAX))
    lines = [v for v in flagged(pool.id) if v["period"] == period and v["label"] == line]
    if not lines:
        raise ExplanationError(
            _l("That line has no variance of a tenth or more to explain in an ended period.")
        )
    note = VarianceNote(pool_id=pool.id, period=period, line=line, written_by_id=actor.id)
    note.text = text
    db.session.add(note)
    db.session.flush()
    audit.record(
        "variance.explained",
        note,
        actor=actor,
        fund=pool.fund_id,
        pool=pool.id,
        period=period,
        line=line,
    )
    return note
