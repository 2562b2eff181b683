"""Who on the applicant side hears that the fund wrote, decided or paid on a case: the
defender's own account; for a case a partner organisation referred, the partner's
account that referred it (partners follow their cases through it, and the defender may
have no account, or one the fund should not reach past the partner), or, once that
account is closed, the organisation's other partner accounts. Each hears only as its own
settings allow (``hrdfund.alerts.notices``); the outbox keeps several events from making
several notices."""

import sqlalchemy as sa

from ..alerts import outbox
from ..auth.models import Role, User
from ..core.extensions import db


def notified_accounts(application):
    """The applicant-side accounts told of news on ``application``."""
    accounts = []
    if application.applicant_id is not None:
        accounts.append(db.session.get(User, application.applicant_id))
    org = application.partner_organisation_id
    if org is None:
        return [a for a in accounts if a is not None]
    referrer = (
        db.session.get(User, application.submitted_by_id) if application.submitted_by_id else None
    )
    if (
        referrer is not None
        and referrer.role == Role.PARTNER
        and referrer.partner_organisation_id == org
        and referrer.active
    ):
        accounts.append(referrer)
    else:
        accounts.extend(
            db.session.execute(
                sa.select(User)
                .where(
                    User.role == Role.PARTNER,
                    User.partner_organisation_id == org,
                    User.active.is_(True),
                )
                .order_by(User.id)
            ).scalars()
        )
    return [a for a in accounts if a is not None]


def tell_applicant_side(application):
    """Queue a notice of news on ``application`` for each account told of it; returns how
    many were queued. Called by the services that write, decide or pay, in their
    transaction."""
    return sum(
        outbox.queue_notice(account, application) for account in notified_accounts(application)
    )
