"""The defender's consents on a case: given in the form, in force until taken back, kept
dated when withdrawn so what depended on them stops from then on."""

import sqlalchemy as sa

from .. import audit
from ..core.columns import utcnow
from ..core.extensions import db
from .models import Consent, ConsentKind


def active_consent(application, kind):
    """The defender's consent of ``kind`` that is still in force, if any."""
    return (
        db.session.execute(
            sa.select(Consent).where(
                Consent.application_id == application.id,
                Consent.kind == kind,
                Consent.withdrawn_at.is_(None),
            )
        )
        .scalars()
        .first()
    )


#: Consents the applicant side may take back once the case is sent (the partner's consent
#: to submit is the ground of the case itself).
WITHDRAWABLE = (ConsentKind.REFERRAL, ConsentKind.STORY)


def withdraw_consent(application, kind, actor):
    """Take back the defender's standing consent of ``kind``: the row stays, dated; what
    depends on it stops from now on (referrals, donors seeing the case). Returns the
    consent, or None when none of that kind stands."""
    current = active_consent(application, kind) if kind in WITHDRAWABLE else None
    if current is None:
        return None
    current.withdrawn_at = utcnow()
    db.session.flush()
    audit.record("consent.withdrawn", application, actor=actor, kind=kind.value)
    return current


def set_consent(application, kind, wanted, actor):
    current = active_consent(application, kind)
    if wanted and current is None:
        db.session.add(
            Consent(
                application_id=application.id,
                kind=kind,
                method="form",
                recorded_by_id=actor.id,
                given_at=utcnow(),
            )
        )
    elif not wanted and current is not None:
        current.withdrawn_at = utcnow()
