"""Attempts at a password or a code, as a request makes them: in short transactions, so
that no write lock is held while a password is hashed (ARCHITECTURE.md, Transactions).

A password attempt
1. reads what the check needs inside ``reading()``, with no write lock, and looks at the
   server's budget of checks (``budget``): past it, the attempt ends here, answered
   "busy" (:class:`Busy`), having written nothing;
2. waits for its process's turn to hash (one at a time per process, a short wait at most);
3. is charged against the sign-in limits and takes its check from the budget, committed,
   so that attempts sent at once each see the ones before; at a locked login it ends
   here, and when the budget was spent meanwhile it is answered "busy" with nothing
   charged; either way nothing is hashed;
4. hashes with no transaction open;
5. is settled in a short write transaction that reads the account again under the lock.

A code costs a few HMACs: its attempt is charged, checked and settled in one short
transaction. These functions commit, as views and commands do; the rules they apply live
in ``services`` and ``throttle``.
"""

import contextlib
import threading
from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..core.extensions import db, reading
from . import budget, invitations, logins, second_factor, services, throttle
from .services import AuthError

#: Each process hashes one password at a time: a burst of attempts at one process takes
#: turns instead of every core and 64 MiB each.
_HASHING = threading.Lock()


class Busy(Exception):  # noqa: N818 (what the person is told: the server is busy)
    """No password can be checked just now (the process's turn did not come soon enough,
    or the server's budget of checks is spent): the attempt was charged to no limit and
    nothing was hashed."""


@dataclass
class SignedIn:
    """The outcome of an attempt that succeeded."""

    user: object
    #: The token to keep in the browser's client cookie, once a sign-in is complete.
    client_token: str | None = None
    #: What the step returned besides: new recovery codes, or how many are left.
    extra: object = None


def _first_look(login, token):
    """Inside ``reading()``: :class:`Busy` at once when the budget could not grant this
    client's check, before anything is written or waited for."""
    if not budget.available(throttle.knows(login, token)):
        raise Busy()


@contextlib.contextmanager
def _turn_to_hash():
    """This process's turn to hash a password, waited for ``PASSWORD_CHECK_WAIT_SECONDS``
    at most; :class:`Busy` when it does not come."""
    if not _HASHING.acquire(timeout=current_app.config["PASSWORD_CHECK_WAIT_SECONDS"]):
        raise Busy()
    try:
        yield
    finally:
        _HASHING.release()


def _charge(login, token):
    """Charge an attempt at ``login`` to the sign-in limits and take its check from the
    server's budget, and commit; raises :class:`AuthError` at a locked login and
    :class:`Busy` when the budget is spent, in both cases before anything is hashed."""
    charge = throttle.charge_attempt(login, token)
    if not charge.refused and not budget.take(charge.known):
        db.session.rollback()  # nothing is counted: the attempt was not made
        raise Busy()
    db.session.commit()
    if charge.refused:
        raise AuthError("locked", charge.wait_minutes)
    return charge


def _settle(settle, *args, then=None, **kwargs):
    """Run ``settle`` (and ``then`` on its user) and commit; a refusal is committed too:
    the failure stays counted and is audited."""
    try:
        user, token = settle(*args, **kwargs)
    except AuthError:
        db.session.commit()
        raise
    extra = then(user) if then is not None else None
    db.session.commit()
    return SignedIn(user, token, extra)


def sign_in(login, password, token):
    """The first step of signing in: a login and a password. Raises :class:`AuthError`."""
    if len(password) > services.PASSWORD_MAX:
        raise AuthError("invalid")  # refused before any hashing
    with reading():
        credentials = services.read_credentials(login)
        _first_look(credentials.login, token)
    with _turn_to_hash():
        charge = _charge(credentials.login, token)
        matched = services.password_matches(credentials, password)
    return _settle(services.settle_sign_in, charge, credentials, matched)


def sign_up(login, password, token, **fields):
    """A new applicant account at ``login``, a login the server made for the sign-up form
    (the caller checked its seal), signed in. The password's rules are checked first
    (nothing counted, nothing hashed); then the attempt is charged and the password hashed.
    The account is made even if the login was taken meanwhile: at another login, made
    then (``user.login`` tells)."""
    login = logins.normalise_login(login)
    if not logins.is_made_login(login):
        raise services.LoginPolicyError("sign-up takes only a login the server made")
    services.check_password_rules(password, login)
    with reading():
        _first_look(login, token)
    with _turn_to_hash():
        charge = _charge(login, token)
        password_hash = services.hash_password(password)
    return _settle(services.settle_sign_up, charge, login, password_hash, **fields)


def reauthenticate(user_id, password, token, then=None):
    """Check a signed-in user's current password before a change to the account; ``then``
    makes the change, given the user, in the same transaction as the outcome."""
    if len(password) > services.PASSWORD_MAX:
        raise AuthError("invalid")
    with reading():
        credentials = services.read_credentials(user_id=user_id)
        _first_look(credentials.login, token)
    with _turn_to_hash():
        charge = _charge(credentials.login, token)
        matched = services.password_matches(credentials, password)
    return _settle(services.settle_reauthentication, charge, credentials, matched, then=then)


def change_password(user_id, current, new, token):
    """A new password, given the current one. The new one is checked against the rules
    before anything is counted, and hashed, like the current one, with no transaction open;
    every session of the user ends."""
    with reading():
        credentials = services.read_credentials(user_id=user_id)
        services.check_password_rules(new, credentials.login)
        if len(current) > services.PASSWORD_MAX:
            raise AuthError("invalid")
        _first_look(credentials.login, token)
    with _turn_to_hash():
        charge = _charge(credentials.login, token)
        matched = services.password_matches(credentials, current)
        new_hash = services.hash_password(new) if matched else None
    return _settle(
        services.settle_reauthentication,
        charge,
        credentials,
        matched,
        then=lambda user: services.set_password(user, new_hash),
    )


def _second_step(user, token, check):
    charge = throttle.charge_attempt(user.login, token)
    if charge.refused:
        db.session.commit()
        raise AuthError("locked", charge.wait_minutes)
    extra = check()
    if extra is None or extra is False:
        services.record_failure(charge, user.uid, user.fund_id)
        db.session.commit()
        raise AuthError("invalid")
    return charge, extra


def check_code(user, code, token):
    """The second step with a code from the authenticator app, used once; the first code
    sets up the factor and brings ten recovery codes (``extra``)."""
    enrolling = user.totp_confirmed_at is None
    charge, _ok = _second_step(user, token, lambda: second_factor.verify_totp(user, code))
    codes = second_factor.issue_recovery_codes(user) if enrolling else None
    if enrolling:
        user.reset_code_hash = None  # set up again: the administrator's code is spent
    kept = services.complete_login(user, charge)
    db.session.commit()
    return SignedIn(user, kept, codes)


def check_reset_code(user, code, token):
    """Before a reset second factor is set up again: the code the administrator handed
    over, counted as a wrong code is when it is not theirs."""
    charge, _ok = _second_step(user, token, lambda: services.reset_code_matches(user, code))
    throttle.refund(charge)  # the right code is no failure: the code step comes next
    audit.record("auth.reset_code_accepted", user, actor=user)
    db.session.commit()


def check_recovery_code(user, code, token):
    """The second step with a recovery code, each used once; ``extra`` is how many are
    left."""
    charge, left = _second_step(user, token, lambda: second_factor.use_recovery_code(user, code))
    kept = services.complete_login(user, charge)
    db.session.commit()
    return SignedIn(user, kept, left)


def accept_invitation(link_token, password, token, code=None):
    """The first step of an invited account: the password chosen for it, checked against
    the rules first (nothing counted, nothing hashed), then charged at the invitation's
    login and hashed with no transaction open, as a sign-in is. The account is made in a
    short transaction; its second factor is enrolled next. Raises
    :class:`invitations.InvitationClosedError` when the link opens no invitation (or
    closed meanwhile), :class:`invitations.InvitationWaitingError` while no manager has
    confirmed it (nothing counted), :class:`invitations.InvitationCodeError` for a code
    that is not the manager's (counted at the login, as a wrong password is), and
    :class:`services.PasswordPolicyError` for a password the rules refuse."""
    with reading():
        invitation = invitations.open_invitation(link_token)
        if invitation is None:
            raise invitations.InvitationClosedError()
        if invitation.waiting_for_manager:
            raise invitations.InvitationWaitingError()
        if invitation.needs_code and not invitations.normalise_code(code):
            raise invitations.InvitationCodeError(missing=True)  # nothing counted
        login, invitation_id = invitation.login, invitation.id
        fund_id, uid = invitation.fund_id, invitation.uid
        # A keyed hash, cheap: a wrong code is known before the password is hashed.
        code_right = invitations.code_matches(invitation, code)
        services.check_password_rules(password, login)
        _first_look(login, token)
    with _turn_to_hash():
        charge = _charge(login, token)
        if not code_right:
            # Counted already, as a wrong password is; audited in the fund's chain.
            audit.record(
                "auth.invitation_code_refused",
                fund=fund_id,
                object_type="invitations",
                object_id=uid,
            )
            if charge.reached:
                audit.record("auth.sign_in_locked", fund=fund_id)
            db.session.commit()
            raise invitations.InvitationCodeError()
        password_hash = services.hash_password(password)
    try:
        user, _kept = invitations.settle_acceptance(charge, invitation_id, password_hash, code)
    except (
        invitations.InvitationClosedError,
        invitations.InvitationWaitingError,
        invitations.InvitationCodeError,
    ):
        db.session.rollback()
        raise
    db.session.commit()
    return SignedIn(user)
