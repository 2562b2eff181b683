"""Attempts at a password or a code, as a request makes them: in short transactions, so
that no write lock is held while a password is hashed (ARCHITECTURE.md, Transactions).

A password attempt
1. reads what the check needs inside ``reading()``, with no write lock;
2. is charged against the sign-in limits and committed, so that attempts sent at once each
   see the ones before; at a locked login it ends here, with nothing hashed;
3. hashes with no transaction open;
4. is settled in a short write transaction that reads the account again under the lock.

A code costs a few HMACs: its attempt is charged, checked and settled in one short
transaction. These functions commit, as views and commands do; the rules they apply live
in ``services`` and ``throttle``.
"""

from dataclasses import dataclass

from ..extensions import db, reading
from . import services, throttle
from .services import AuthError


@dataclass
class SignedIn:
    """The outcome of an attempt that succeeded."""

    user: object
    #: The token to keep in the browser's client cookie, once a sign-in is complete.
    client_token: str | None = None
    #: What the step returned besides: new recovery codes, or how many are left.
    extra: object = None


def _charge(login, token):
    charge = throttle.charge_attempt(login, token)
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
    charge = _charge(credentials.login, token)
    matched = services.password_matches(credentials, password)
    return _settle(services.settle_sign_in, charge, credentials, matched)


def sign_up(login, password, token, **fields):
    """A new applicant account at ``login``, a login the server made for the sign-up form
    (the caller checked its seal), signed in. The password's rules are checked first
    (nothing counted, nothing hashed); then the attempt is charged and the password hashed.
    The account is made even if the login was taken meanwhile: at another login, made
    then (``user.login`` tells)."""
    login = services.normalise_login(login)
    if not services.is_made_login(login):
        raise services.LoginPolicyError("sign-up takes only a login the server made")
    services.check_password_rules(password, login)
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
        services.record_failure(charge, user.uid)
        db.session.commit()
        raise AuthError("invalid")
    return charge, extra


def check_code(user, code, token):
    """The second step with a code from the authenticator app, used once; the first code
    sets up the factor and brings ten recovery codes (``extra``)."""
    enrolling = user.totp_confirmed_at is None
    charge, _ok = _second_step(user, token, lambda: services.verify_totp(user, code))
    codes = services.issue_recovery_codes(user) if enrolling else None
    kept = services.complete_login(user, charge)
    db.session.commit()
    return SignedIn(user, kept, codes)


def check_recovery_code(user, code, token):
    """The second step with a recovery code, each used once; ``extra`` is how many are
    left."""
    charge, left = _second_step(user, token, lambda: services.use_recovery_code(user, code))
    kept = services.complete_login(user, charge)
    db.session.commit()
    return SignedIn(user, kept, left)
