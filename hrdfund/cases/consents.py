"""The defender's consents on a case: given, withdrawn and given again, each change dated.

Each time consent of a kind is given is one row (a grant): when and how it was given and
who recorded it, and, once taken back, when and how it was withdrawn and who recorded
that. Giving it again appends a new row; a row is never rewritten except to date its one
withdrawal, and never deleted, so the rows of a kind in order are its whole history. A
consent of a kind stands while one of its rows is not withdrawn (``in_force``): the one
rule every feature that depends on consent reads (referrals to other funds, the network's
duplicate check, stories and listings in donor reports), so withdrawing stops them from
then on and giving again lets them resume.

The defender records their own consent on their case page; on a case a partner organisation
referred, the partner holds the consent and records it, saying how the defender gave or
withdrew it (``PARTNER_HOW``). Consent to the partner's submission itself is the ground of
the case and is not changed here.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core.columns import utcnow
from ..core.extensions import db
from .models import ApplicationStatus, Consent, ConsentKind

#: Consents the applicant side may give and take back once the case is sent (the partner's
#: consent to submit is the ground of the case itself).
WITHDRAWABLE = (ConsentKind.REFERRAL, ConsentKind.STORY)

#: How a consent was given or withdrawn, in words (the ``method`` and ``withdrawn_how`` codes).
HOW_LABELS = {
    "form": _l("by the defender, in the application form"),
    "partner_form": _l("through the referring partner, in the application form"),
    "case_page": _l("by the defender, on their case page"),
    "in_person": _l("in person"),
    "phone": _l("by phone"),
    "in_writing": _l("in writing"),
    "secure_message": _l("by secure message"),
    "referral": _l("attested by the referring fund"),
    "packet": _l("attested by the referring fund"),
}
#: How a partner organisation says the defender gave or withdrew a consent.
PARTNER_HOW = ("in_person", "phone", "in_writing", "secure_message")


class ConsentError(ValueError):
    """A change of consent the rules refuse, in words for the page."""


def in_force(kind, row=Consent):
    """SQL condition on a consents row (``row``, Consent or an alias of it): a grant of
    consent of ``kind`` that was not withdrawn. A consent stands while such a row exists."""
    return sa.and_(row.kind == kind, row.withdrawn_at.is_(None))


def stands_on(application_id, kind, donor_id=None):
    """SQL condition: the consent of ``kind`` stands on the case ``application_id`` (a
    column or an id); for a story, ``donor_id`` names the donor it may be shown to (a
    consent for all the fund's donors counts too)."""
    condition = sa.and_(Consent.application_id == application_id, in_force(kind))
    if donor_id is not None:
        condition = sa.and_(
            condition, sa.or_(Consent.donor_id.is_(None), Consent.donor_id == donor_id)
        )
    return sa.select(Consent.id).where(condition).exists()


def active_consent(application, kind):
    """The defender's consent of ``kind`` that is in force, if any."""
    return (
        db.session.execute(
            sa.select(Consent)
            .where(Consent.application_id == application.id, in_force(kind))
            .order_by(Consent.given_at)
        )
        .scalars()
        .first()
    )


def history(application):
    """Every grant of consent on the case, oldest first, with who recorded it."""
    return (
        db.session.execute(
            sa.select(Consent)
            .where(Consent.application_id == application.id)
            .options(
                sa.orm.joinedload(Consent.recorded_by), sa.orm.joinedload(Consent.withdrawn_by)
            )
            .order_by(Consent.given_at, Consent.id)
        )
        .scalars()
        .all()
    )


def holds_consent(application, user):
    """Whether ``user`` records the defender's consents on ``application``: the defender's
    own account, or an account of the partner organisation that referred the case."""
    if user.role == Role.APPLICANT:
        return application.applicant_id is not None and application.applicant_id == user.id
    if user.role == Role.PARTNER:
        return (
            application.partner_organisation_id is not None
            and application.partner_organisation_id == user.partner_organisation_id
        )
    return False


def _how_for(actor, how):
    """The code of how the consent was given or withdrawn: the defender's own account says
    it; a partner says which of ``PARTNER_HOW``."""
    if actor.role == Role.PARTNER:
        if how not in PARTNER_HOW:
            raise ConsentError(_l("Say how the defender gave or withdrew this consent."))
        return how
    return "case_page"


def _check_change(application, kind, actor):
    if kind not in WITHDRAWABLE:
        raise ConsentError(_l("This consent cannot be changed here."))
    if not holds_consent(application, actor):
        raise ConsentError(_l("Only the defender or the organisation that referred the case."))
    if application.status == ApplicationStatus.DRAFT or application.purged_at is not None:
        raise ConsentError(_l("Consents of a draft are answered in the application form."))


def give_consent(application, kind, actor, how=None):
    """Record that the defender gives consent of ``kind`` from now on: a new grant, dated,
    the earlier ones kept as they are."""
    _check_change(application, kind, actor)
    method = _how_for(actor, how)
    if active_consent(application, kind) is not None:
        raise ConsentError(_l("This consent is already given."))
    return _give(application, kind, actor, method)


def _give(application, kind, actor, method):
    consent = Consent(
        application_id=application.id,
        kind=kind,
        method=method,
        recorded_by_id=actor.id,
        given_at=utcnow(),
    )
    db.session.add(consent)
    db.session.flush()
    audit.record("consent.given", application, actor=actor, kind=kind.value, how=method)
    return consent


def withdraw_consent(application, kind, actor, how=None):
    """Take back the defender's standing consent of ``kind``: its grant stays, dated; what
    depends on it stops from now on (referrals, donors seeing the case). Returns the
    consent, or None when none of that kind stands."""
    if kind not in WITHDRAWABLE or active_consent(application, kind) is None:
        return None
    _check_change(application, kind, actor)
    return _withdraw(application, kind, actor, _how_for(actor, how))


def _withdraw(application, kind, actor, method):
    now = utcnow()
    standing = (
        db.session.execute(
            sa.select(Consent).where(Consent.application_id == application.id, in_force(kind))
        )
        .scalars()
        .all()
    )
    for consent in standing:
        consent.withdrawn_at = max(now, consent.given_at)
        consent.withdrawn_by_id = actor.id
        consent.withdrawn_how = method
    db.session.flush()
    audit.record("consent.withdrawn", application, actor=actor, kind=kind.value, how=method)
    return standing[0]


def set_consent(application, kind, wanted, actor):
    """The application form's answer for ``kind`` on a draft: given or withdrawn as it says,
    each change a new date and an audit entry; an unchanged answer writes nothing."""
    current = active_consent(application, kind)
    # Ticked by the partner that refers the case, it is the partner's word for the
    # defender's, and says so.
    method = "partner_form" if actor.role == Role.PARTNER else "form"
    if wanted and current is None:
        _give(application, kind, actor, method)
    elif not wanted and current is not None:
        _withdraw(application, kind, actor, method)
