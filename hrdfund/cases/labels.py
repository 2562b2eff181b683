"""A partner organisation's own labels for the cases it referred: a few words of its own
("Amina, Kisumu office") beside the case code, so its staff tell their defenders apart.

A label is personal free text: it is stored encrypted, read only for accounts of the
organisation that wrote it, on the case it referred, and never for staff, donors, other
partners, exports or logs. Its changes are audited without its words.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.columns import utcnow
from ..core.extensions import db
from .models import PartnerLabel

#: The longest label, in characters.
LABEL_MAX = 80


class LabelError(ValueError):
    """A label the rules refuse, in words for the page."""


def labels_case(application, user):
    """Whether ``user`` is an account of the organisation that referred ``application``."""
    return (
        user.role == Role.PARTNER
        and application.partner_organisation_id is not None
        and application.partner_organisation_id == user.partner_organisation_id
    )


def label_of(application, user):
    """The label ``user``'s organisation wrote for ``application``; None for anyone else."""
    if not labels_case(application, user):
        return None
    row = _row(application.id, user.partner_organisation_id)
    return row.label if row is not None else None


def labels_for(application_ids, user):
    """{case id: label} of the labels ``user``'s organisation wrote for these cases it
    referred; empty for anyone who is not a partner."""
    if user.role != Role.PARTNER or not application_ids:
        return {}
    rows = db.session.execute(
        sa.select(PartnerLabel).where(
            PartnerLabel.partner_organisation_id == user.partner_organisation_id,
            PartnerLabel.application_id.in_(application_ids),
        )
    ).scalars()
    return {row.application_id: row.label for row in rows if row.label}


def _row(application_id, organisation_id):
    return db.session.execute(
        sa.select(PartnerLabel).where(
            PartnerLabel.application_id == application_id,
            PartnerLabel.partner_organisation_id == organisation_id,
        )
    ).scalar_one_or_none()


def set_partner_label(application, actor, text):
    """Write, change or (empty ``text``) remove the label of ``actor``'s organisation for
    ``application``, which it must have referred. The audit entry says only that it
    changed."""
    if not labels_case(application, actor):
        raise LabelError(_l("Only the organisation that referred the case labels it."))
    text = " ".join((text or "").split())
    if len(text) > LABEL_MAX:
        raise LabelError(_l("A label is at most %(max)d characters.", max=LABEL_MAX))
    row = _row(application.id, actor.partner_organisation_id)
    if row is None and not text:
        return None
    if row is None:
        row = PartnerLabel(
            application_id=application.id, partner_organisation_id=actor.partner_organisation_id
        )
        db.session.add(row)
    row.updated_by_id = actor.id
    row.updated_at = utcnow()
    db.session.flush()
    row.label = text or None
    db.session.flush()
    audit.record("case.partner_label_changed", application, actor=actor, cleared=not text)
    return row
