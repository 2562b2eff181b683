"""Accounts made in the browser: an administrator invites a member of staff or a donor to
their own fund with a one-time link, the person who opens it sets the password (the second
factor is enrolled at once, before the account works), and an administrator deactivates and
reactivates accounts of the fund.

The link carries a random token (32 bytes); only a keyed hash of it is stored, so the
database alone never opens an invitation. A link opens until it is accepted, withdrawn or
expired (``INVITATION_HOURS``), whichever comes first, and makes one account at most.

An account that reads cases or moves money (``CONFIRMED_ROLES``) takes two people: the
administrator's link, and a code a manager of the fund is shown once when confirming the
invitation, given to the person apart from the link. The administrator never sees the
code, nor the manager the link, so neither alone makes such an account (one for
themselves, to read cases or to be an approval's second manager). A fund with no manager
yet has the server's operator confirm it (``flask hrdfund confirm-invitation``).
"""

import hmac
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from . import handed, throttle
from .logins import normalise_login
from .models import CONFIRMED_ROLES, INVITABLE_ROLES, Invitation, Role, User
from .services import (
    AccountLinkError,
    AccountStateError,
    LoginPolicyError,
    UserExistsError,
    check_login_rules,
    check_not_made_login,
    create_user,
    held_by_invitation,
    set_active,
)


class InvitationError(ValueError):
    """An invitation, or a change to an account, the rules refuse; in words for the page."""


class InvitationClosedError(Exception):
    """The link is unknown, expired, used or withdrawn: it makes no account."""


class InvitationWaitingError(Exception):
    """No manager of the fund has confirmed the invitation yet: it makes no account."""


class InvitationCodeError(Exception):
    """The code sent is not the one the confirming manager was given (``missing``: none
    was sent)."""

    def __init__(self, missing=False):
        super().__init__()
        self.missing = missing


normalise_code, shown_code = handed.normalise, handed.shown


def check_config(config):
    """Refuse to start with invitations that never open."""
    if config["INVITATION_HOURS"] < 1:
        raise RuntimeError("HRDFUND_INVITATION_HOURS must be at least 1")


def token_hash(token):
    """The keyed hash an invitation's token is stored as."""
    return cipher().blind_index(f"invitation|{token or ''}")


_open = Invitation.opening


def code_hash(invitation, code):
    """The keyed hash a confirmation code is stored as, bound to its invitation."""
    return cipher().blind_index(f"invitation-code|{invitation.uid}|{code}")


def confirm_invitation(actor, invitation):
    """A manager of the invitation's fund (or, with ``actor`` None, the server's operator
    from the command line) confirms an open invitation to a role in ``CONFIRMED_ROLES``.
    Returns the invitation and its code, shown this once: only its keyed hash is kept.
    Confirmed already (its code lost, a form sent twice), it gets a new code and the
    earlier one stops working."""
    if actor is not None and (actor.role != Role.MANAGER or actor.fund_id != invitation.fund_id):
        raise InvitationError(_l("Only a manager of the fund confirms its invitations."))
    invitation = lock_row(Invitation, invitation.id)
    if not invitation.needs_code:
        raise InvitationError(_l("An invitation to a donor account needs no confirmation."))
    if not invitation.usable(utcnow()):
        raise InvitationError(_l("This invitation was already used, withdrawn or expired."))
    renewed = invitation.confirmed_at is not None
    code = handed.new_code()
    invitation.code_hash = code_hash(invitation, code)
    invitation.confirmed_at = utcnow()
    invitation.confirmed_by_id = actor.id if actor is not None else None
    action = "auth.invitation_code_renewed" if renewed else "auth.invitation_confirmed"
    audit.record(action, invitation, actor=actor, role=invitation.role.value)
    return invitation, code


def staff_invitations(fund_id, now=None):
    """The fund's open invitations to accounts that need a manager's code, confirmed or
    not, oldest first."""
    return (
        db.session.execute(
            sa.select(Invitation)
            .options(sa.orm.joinedload(Invitation.invited_by))
            .where(
                Invitation.fund_id == fund_id,
                Invitation.role.in_(CONFIRMED_ROLES),
                _open(now or utcnow()),
            )
            .order_by(Invitation.created_at, Invitation.id)
        )
        .scalars()
        .all()
    )


def waiting_for_manager(fund_id, now=None):
    """How many of the fund's open invitations a manager has still to confirm (as
    ``Invitation.waiting_for_manager`` says of one)."""
    vouching = sa.select(User.id).where(
        User.fund_id == fund_id, User.role == Role.MANAGER, User.active.is_(True)
    )
    return db.session.execute(
        sa.select(sa.func.count(Invitation.id)).where(
            Invitation.fund_id == fund_id,
            Invitation.role.in_(CONFIRMED_ROLES),
            sa.or_(
                Invitation.confirmed_at.is_(None),
                Invitation.confirmed_by_id.not_in(vouching),
            ),
            _open(now or utcnow()),
        )
    ).scalar_one()


def confirm_as_operator(login):
    """The server's operator confirms the open invitation at ``login``, for a fund that has
    no active manager to do it (and is not suspended). Returns the invitation and its
    code, as :func:`confirm_invitation` does."""
    invitation = db.session.execute(
        sa.select(Invitation).where(Invitation.login == normalise_login(login), _open(utcnow()))
    ).scalar_one_or_none()
    if invitation is None:
        raise InvitationError(_l("No invitation at that login is open."))
    if invitation.fund.suspended:
        raise InvitationError(_l("The invitation's fund is suspended."))
    managers = sa.select(User.id).where(
        User.fund_id == invitation.fund_id, User.role == Role.MANAGER, User.active.is_(True)
    )
    if db.session.execute(managers.limit(1)).first():
        raise InvitationError(
            _l("The fund has a manager: they confirm the invitation on Invitations to confirm.")
        )
    return confirm_invitation(None, invitation)


def code_matches(invitation, code):
    """Whether ``code`` is the confirming manager's for ``invitation`` (True for one that
    needs none)."""
    if not invitation.needs_code:
        return True
    if invitation.code_hash is None:
        return False
    return hmac.compare_digest(code_hash(invitation, normalise_code(code)), invitation.code_hash)


def check_code(invitation, code):
    """Raise :class:`InvitationWaitingError` while no manager has confirmed the invitation
    and :class:`InvitationCodeError` when ``code`` is not theirs; an invitation to a donor
    account needs none."""
    if not invitation.needs_code:
        return
    if invitation.waiting_for_manager:
        raise InvitationWaitingError()
    if not code_matches(invitation, code):
        raise InvitationCodeError()


def _check_admin(actor):
    if actor.role != Role.ADMIN or actor.fund_id is None:
        raise InvitationError(_l("Only an administrator of the fund manages its accounts."))


def fund_donors(fund_id):
    """The donors of the fund, by name: who a donor account may read the pools of."""
    donor = sa.inspect(Invitation).relationships["donor"].mapper.class_
    return (
        db.session.execute(sa.select(donor).where(donor.fund_id == fund_id).order_by(donor.name))
        .scalars()
        .all()
    )


def invite_account(actor, role, login, donor_id=None):
    """An invitation from ``actor``, an administrator, to a new account of their own fund
    with ``role`` (one of ``INVITABLE_ROLES``) at ``login``; for a donor account, of the
    fund's donor ``donor_id``. Returns the invitation and its token, which only the link
    carries: it is not stored, and this is the one time it is known."""
    _check_admin(actor)
    try:
        role = Role(role)
    except ValueError:
        role = None
    if role not in INVITABLE_ROLES:
        raise InvitationError(
            _l("An administrator invites reviewers, managers, finance and donors.")
        )
    login = normalise_login(login)
    check_login_rules(login)
    check_not_made_login(login)
    _check_login_free(login)
    donor = None
    if role == Role.DONOR:
        donor = next((d for d in fund_donors(actor.fund_id) if d.id == donor_id), None)
        if donor is None:
            raise InvitationError(_l("Choose the donor whose pools the account will read."))
    elif donor_id is not None:
        raise InvitationError(_l("Only a donor account reads a donor's pools."))
    token = secrets.token_urlsafe(32)
    now = utcnow()
    invitation = Invitation(
        token_hash=token_hash(token),
        fund_id=actor.fund_id,
        role=role,
        login=login,
        donor_id=donor.id if donor else None,
        invited_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(hours=current_app.config["INVITATION_HOURS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(
        "auth.invited",
        invitation,
        actor=actor,
        role=role.value,
        donor=donor.uid if donor else None,
        expires_at=invitation.expires_at.isoformat(timespec="seconds"),
    )
    return invitation, token


def _check_login_free(login, but=None):
    """Refuse a login an account has, or an open invitation other than ``but`` holds."""
    if db.session.execute(sa.select(User.id).where(User.login == login)).first():
        raise UserExistsError(login)
    if held_by_invitation(login, but):
        raise UserExistsError(login)


def open_invitation(token, now=None):
    """The invitation ``token`` opens, or None when it opens none (unknown, expired, used
    or withdrawn: the same answer for each). Only reads."""
    if not token or len(token) > 100:
        return None
    invitation = db.session.execute(
        sa.select(Invitation).where(Invitation.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if invitation is None or not invitation.usable(now or utcnow()):
        return None
    return invitation


def settle_acceptance(charge, invitation_id, password_hash, code=None):
    """Settle a charged acceptance, in a short write transaction after the hash: the
    account the invitation (read again, its row locked) names, with the password hashed
    before, its second factor still to enrol. The attempt is refunded: the sign-in is
    complete once the first code from the authenticator is accepted. Raises
    :class:`InvitationClosedError` when the invitation closed meanwhile, and those of
    :func:`check_code` when its manager's code is missing or wrong (the attempt stays
    counted)."""
    throttle.hold(charge)
    invitation = lock_row(Invitation, invitation_id)
    now = utcnow()
    if not invitation.usable(now) or (invitation.fund and invitation.fund.suspended):
        raise InvitationClosedError()
    check_code(invitation, code)
    try:
        _check_login_free(invitation.login, but=invitation)
    except UserExistsError as exc:
        raise InvitationClosedError() from exc
    user = create_user(
        invitation.role,
        invitation.login,
        invitation=invitation,
        password_hash=password_hash,
        fund_id=invitation.fund_id,
        donor_id=invitation.donor_id,
    )
    invitation.accepted_at = now
    invitation.user_id = user.id
    throttle.refund(charge)
    audit.record("auth.invitation_accepted", invitation, actor=user, account=user.uid)
    return user, None


def revoke_invitation(actor, invitation):
    """Withdraw an open invitation of ``actor``'s fund: its link stops working."""
    _check_admin(actor)
    invitation = lock_row(Invitation, invitation.id)
    if invitation.fund_id != actor.fund_id:
        raise InvitationError(_l("Only an administrator of the fund manages its accounts."))
    if not invitation.usable(utcnow()):
        raise InvitationError(_l("This invitation was already used, withdrawn or expired."))
    invitation.revoked_at = utcnow()
    audit.record("auth.invitation_revoked", invitation, actor=actor)
    return invitation


def _closed(now):
    """SQL: the invitations whose link no longer opens (used, withdrawn or expired), but
    those that opened an account with the link alone (:func:`opened_with_link_alone`):
    they are kept while the account is, as what marks it on *Accounts*."""
    return sa.and_(sa.not_(_open(now)), sa.not_(_link_alone()))


def _link_alone():
    """SQL: accepted invitations to an account that reads cases or moves money that no
    manager (nor the operator) confirmed: invited before a manager's code was asked."""
    return sa.and_(
        Invitation.role.in_(CONFIRMED_ROLES),
        Invitation.accepted_at.is_not(None),
        Invitation.confirmed_at.is_(None),
        Invitation.user_id.is_not(None),
    )


def count_closed(now=None):
    """How many invitations no longer open: retention deletes them."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Invitation).where(_closed(now or utcnow()))
    )


def forget_closed(now=None):
    """Delete every invitation that no longer opens (but those :func:`_closed` keeps): once
    used, withdrawn or expired it serves nothing, and its login is one more copy of a
    person's sign-in name. The audit entries name it by its opaque id, so the chain still
    verifies. Returns how many."""
    return db.session.execute(sa.delete(Invitation).where(_closed(now or utcnow()))).rowcount


def opened_with_link_alone(fund_id):
    """The ids of the fund's accounts that read cases or move money and were opened from
    an invitation no manager (nor the operator) confirmed: invited before a manager's code
    was asked, so the administrator alone may have made them."""
    return set(
        db.session.execute(
            sa.select(Invitation.user_id).where(Invitation.fund_id == fund_id, _link_alone())
        ).scalars()
    )


def open_invitations(fund_id, now=None):
    """The fund's invitations whose link still opens, oldest first."""
    now = now or utcnow()
    return (
        db.session.execute(
            sa.select(Invitation)
            .options(sa.orm.joinedload(Invitation.donor))
            .where(Invitation.fund_id == fund_id, _open(now))
            .order_by(Invitation.created_at, Invitation.id)
        )
        .scalars()
        .all()
    )


def deactivate_account(actor, user):
    """An account of ``actor``'s fund can no longer sign in and each of its sessions ends
    at once; its records stay. Not the administrator's own, nor the fund's last active
    administrator."""
    _check_admin(actor)
    user = lock_row(User, user.id)
    if user.fund_id != actor.fund_id or user.is_applicant_side:
        raise InvitationError(_l("Only an administrator of the fund manages its accounts."))
    if user.id == actor.id:
        raise InvitationError(_l("You cannot deactivate your own account."))
    if user.role == Role.ADMIN and user.active:
        others = db.session.execute(
            sa.select(sa.func.count())
            .select_from(User)
            .where(
                User.fund_id == user.fund_id,
                User.role == Role.ADMIN,
                User.active.is_(True),
                User.id != user.id,
            )
        ).scalar()
        if not others:
            raise InvitationError(_l("The fund's last administrator stays active."))
    set_active(user, False, actor)
    if user.role == Role.MANAGER:
        _lapse_confirmations(actor, user)
    return user


def _lapse_confirmations(actor, manager):
    """The codes ``manager`` gave for invitations still open stop working: a manager who
    is still active (or the operator, when none is) confirms each of them again. An
    account no longer trusted to sign in is not trusted to vouch for a new one."""
    confirmed = db.session.execute(
        sa.select(Invitation)
        .where(Invitation.confirmed_by_id == manager.id, _open(utcnow()))
        .order_by(Invitation.id)
        .with_for_update()
    ).scalars()
    for invitation in confirmed:
        invitation.code_hash = None
        invitation.confirmed_at = None
        invitation.confirmed_by_id = None
        audit.record(
            "auth.invitation_confirmation_lapsed",
            invitation,
            actor=actor,
            role=invitation.role.value,
        )


def reactivate_account(actor, user):
    """A deactivated account of ``actor``'s fund may sign in again (with its password and
    second factor as they were); its old sessions stay ended."""
    _check_admin(actor)
    user = lock_row(User, user.id)
    if user.fund_id != actor.fund_id or user.is_applicant_side:
        raise InvitationError(_l("Only an administrator of the fund manages its accounts."))
    set_active(user, True, actor)
    return user


#: Refusals an invitation form turns into words for the page.
REFUSALS = (
    InvitationError,
    LoginPolicyError,
    UserExistsError,
    AccountLinkError,
    AccountStateError,
)
