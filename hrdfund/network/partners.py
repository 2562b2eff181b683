"""Partner organisations: the local organisations that refer defenders to the funds. The
network's administrator records them, and cuts a partner account off at once when it is
lost, seized or its holder leaves, or lets it sign in again; they see of an account what
managing it needs (its login, whether it is active, when it last signed in), never a case.

A partner account reads the cases its organisation referred, so the administrator does
not make one: whoever chose its first password could sign in with it and read those cases.
The server's operator makes it (``flask hrdfund create-user --role partner``), as the
administrator's own account was made; taking access away is all the page may do to one.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth import services as accounts
from ..auth.models import PartnerOrganisation, Role, User
from ..core import geo
from ..core.extensions import db
from ..core.sql import lock_row
from ..core.text import same_name, tidy_name

#: The longest organisation name.
NAME_MAX = 160


class PartnerError(ValueError):
    """A change the rules refuse, in words for the page."""


#: Refusals the partner pages turn into words.
REFUSALS = (PartnerError, accounts.AccountStateError)


def _check_network_admin(actor):
    if actor.role != Role.NETWORK_ADMIN:
        raise PartnerError(_l("Only the network's administrator manages partner organisations."))


def organisations():
    """Every partner organisation by name, each with its accounts by login."""
    found = db.session.execute(
        sa.select(PartnerOrganisation).order_by(PartnerOrganisation.name, PartnerOrganisation.id)
    ).scalars()
    rows = [(organisation, []) for organisation in found]
    by_id = {organisation.id: accounts_of for organisation, accounts_of in rows}
    for user in db.session.execute(
        sa.select(User)
        .where(User.role == Role.PARTNER, User.partner_organisation_id.in_(by_id))
        .order_by(User.login)
    ).scalars():
        by_id[user.partner_organisation_id].append(user)
    return rows


def create_organisation(actor, name, country):
    """A new partner organisation named ``name`` (tidied: :func:`core.text.tidy_name`),
    working in ``country`` (an ISO code, or none); a name another has, case aside, is
    refused."""
    _check_network_admin(actor)
    name = tidy_name(name)
    if not name or len(name) > NAME_MAX:
        raise PartnerError(_l("Enter the organisation's name, at most 160 characters."))
    country = (country or "").strip().upper() or None
    if country is not None and country not in dict(geo.countries()):
        raise PartnerError(_l("Choose a country from the list."))
    names = db.session.execute(sa.select(PartnerOrganisation.name)).scalars()
    if any(same_name(name, other) for other in names):
        raise PartnerError(_l("An organisation is already named %(name)s.", name=name))
    organisation = PartnerOrganisation(name=name, country=country)
    db.session.add(organisation)
    db.session.flush()
    audit.record("partner.organisation_created", organisation, actor=actor, fund=None)
    return organisation


def _partner_account(user):
    user = lock_row(User, user.id)
    if user.role != Role.PARTNER:
        raise PartnerError(_l("Only partner accounts are managed here."))
    return user


def deactivate_account(actor, user):
    """The partner account can no longer sign in, and each of its sessions ends at once;
    what it recorded stays."""
    _check_network_admin(actor)
    user = _partner_account(user)
    accounts.set_active(user, False, actor)
    return user


def reactivate_account(actor, user):
    """The partner account may sign in again (its old sessions stay ended)."""
    _check_network_admin(actor)
    user = _partner_account(user)
    accounts.set_active(user, True, actor)
    return user
