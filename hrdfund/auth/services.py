"""Accounts: password hashing and rules, sign-in with throttling, creating accounts, sessions.
Login names are in ``logins``, the second factor (TOTP, recovery codes) in ``second_factor``."""

import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from ..core.text import strip_invisible
from . import handed, throttle
from .logins import LOGIN_PATTERN, is_made_login, make_login, normalise_login
from .models import Invitation, RecoveryCode, Role, User
from .second_factor import new_totp_secret

PASSWORD_MIN = 12
PASSWORD_MAX = 128


class AuthError(Exception):
    """Sign-in refused; ``reason`` is "invalid" or "locked" (never which part was wrong, nor
    whether the login has an account)."""

    def __init__(self, reason, wait_minutes=None):
        super().__init__(reason)
        self.reason = reason
        self.wait_minutes = wait_minutes


class PasswordPolicyError(ValueError):
    """A password that breaks the rules; the message says which."""


class UserExistsError(ValueError):
    """The login name is taken."""


class LoginPolicyError(ValueError):
    """A login name of a form that is not allowed."""


def _hasher():
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg["ARGON2_TIME_COST"],
        memory_cost=cfg["ARGON2_MEMORY_COST"],
        parallelism=cfg["ARGON2_PARALLELISM"],
    )


def _common_passwords():
    cache = current_app.extensions.get("hrdfund_common_passwords")
    if cache is None:
        path = os.path.join(os.path.dirname(__file__), "common_passwords.txt")
        with open(path) as fh:
            cache = frozenset(
                line.strip() for line in fh if line.strip() and not line.startswith("#")
            )
        current_app.extensions["hrdfund_common_passwords"] = cache
    return cache


def _as_read(password):
    """``password`` as a person reads it, for the rules only (it is hashed as typed):
    compatibility forms as their plain letters (ｐａｓｓ as pass), without invisible
    characters (a zero-width space or joiner inside a common password), trimmed."""
    read = strip_invisible(unicodedata.normalize("NFKC", password))
    return "".join(char for char in read if unicodedata.category(char) != "Cf").strip()


def check_password_rules(password, login=None):
    """Raise :class:`PasswordPolicyError` unless ``password`` may be used. The rules weigh
    the password as it reads (:func:`_as_read`): its length in characters shown (an accent
    added to a letter adds none), and the login as it is stored."""
    if len(password) > PASSWORD_MAX:
        raise PasswordPolicyError(_l("at most %(n)d characters", n=PASSWORD_MAX))
    read = _as_read(password)
    if sum(1 for char in read if not unicodedata.combining(char)) < PASSWORD_MIN:
        raise PasswordPolicyError(_l("at least %(n)d characters", n=PASSWORD_MIN))
    lowered = read.casefold()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        raise PasswordPolicyError(_l("it is too common"))
    login = normalise_login(login)
    if login and login.casefold() in lowered:
        raise PasswordPolicyError(_l("it contains the login name"))


def hash_password(password):
    """Argon2id hash of a password that passed the length check."""
    if len(password) > PASSWORD_MAX:
        raise PasswordPolicyError(_l("at most %(n)d characters", n=PASSWORD_MAX))
    return _hasher().hash(password)


def _dummy_hash():
    cached = current_app.extensions.get("hrdfund_dummy_hash")
    if cached is None:
        cached = _hasher().hash(secrets.token_urlsafe(16))
        current_app.extensions["hrdfund_dummy_hash"] = cached
    return cached


def _verify(password_hash, password):
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def find_user(login):
    return db.session.execute(
        sa.select(User).where(User.login == normalise_login(login))
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Credentials:
    """What checking a password at a login needs, read without a write lock: the login
    (normalised), and the account's id, uid and hash when it may sign in with a password."""

    login: str
    user_id: int | None = None
    uid: str | None = None
    password_hash: str | None = None
    #: The account's fund (a staff account's), whose audit chain records failed attempts.
    fund_id: int | None = None


def read_credentials(login=None, user_id=None):
    """The credentials at ``login`` (or of the account ``user_id``); a login without an
    account, or with one that cannot sign in, has no hash and fails like a wrong password."""
    user = db.session.get(User, user_id) if user_id is not None else find_user(login)
    if user is None:
        return Credentials(normalise_login(login))
    usable = user.is_active and user.password_hash is not None
    return Credentials(
        user.login, user.id, user.uid, user.password_hash if usable else None, user.fund_id
    )


def password_matches(credentials, password):
    """One Argon2id verification, whether the account exists or not (SECURITY.md, promise 8).
    Slow on purpose: call it with no transaction open."""
    if len(password) > PASSWORD_MAX:
        return False
    dummy = _dummy_hash()  # made once per process, whoever asks first
    if credentials.password_hash is None:
        _verify(dummy, password)
        return False
    return _verify(credentials.password_hash, password)


def record_failure(charge, uid=None, fund_id=None, action="auth.login_failed"):
    """Audit a failed password or code (counted already, when it was charged): the same
    writes whether the login has an account or not; in the chain of the account's fund
    (a staff account's), else the instance's."""
    target = {"object_type": "users", "object_id": uid} if uid else {}
    audit.record(action, fund=fund_id, **target)
    if charge.reached:
        audit.record("auth.sign_in_locked", fund=fund_id, **target)


def _still_the_same(credentials):
    """The account, its row locked, while it still has the password that was checked."""
    if credentials.user_id is None or credentials.password_hash is None:
        return None
    user = lock_row(User, credentials.user_id)
    if not user.is_active or user.password_hash != credentials.password_hash:
        return None
    return user


def settle_sign_in(charge, credentials, matched):
    """Settle a charged password attempt, in a short write transaction after the hash.

    A wrong password stays counted. A right one is refunded; for roles with a second
    factor nothing else is forgotten (failed codes count until a full sign-in), otherwise
    the sign-in is complete. Returns the user and the client token to keep (None until
    the sign-in is complete); raises :class:`AuthError` for a failure."""
    throttle.hold(charge)
    user = _still_the_same(credentials) if matched else None
    if user is None:
        record_failure(charge, credentials.uid, credentials.fund_id)
        raise AuthError("invalid")
    if user.needs_totp:
        throttle.refund(charge)
        if user.totp_secret is None:
            user.totp_secret = new_totp_secret()
        db.session.flush()
        return user, None
    return user, complete_login(user, charge)


def settle_sign_up(charge, login, password_hash, **fields):
    """Settle a charged sign-up, in a short write transaction after the hash: a new
    applicant account at ``login`` (one this server made), signed in at once. Should an
    account hold that login already (two random logins alike, or one form sent twice), the
    new account gets another login, made now: the caller tells the person so. Sign-up
    never refuses, and never reaches another account."""
    throttle.hold(charge)
    while find_user(login) is not None:
        login = make_login()
    user = create_user(Role.APPLICANT, login, password_hash=password_hash, **fields)
    return user, complete_login(user, charge)


def settle_reauthentication(charge, credentials, matched):
    """Settle a charged check of a signed-in user's current password (before a change to
    the account): a wrong one counts like a failed sign-in. Returns the user, its row
    locked, and the client token to keep."""
    throttle.hold(charge)
    user = _still_the_same(credentials) if matched else None
    if user is None:
        record_failure(charge, credentials.uid, credentials.fund_id)
        raise AuthError("invalid")
    return user, throttle.complete(charge)


def complete_login(user, charge):
    """Record a full sign-in (both factors where needed): the client's failures are
    forgotten and it becomes known to the login. Returns the client token to keep."""
    token = throttle.complete(charge, login=user.login)
    user.last_login_at = utcnow()
    audit.record("auth.login", user, actor=user)
    db.session.flush()
    return token


def set_password(user, password_hash):
    """Replace ``user``'s password with one hashed (and checked against the rules) before;
    every session of the user ends, this one included (the view starts a fresh one)."""
    user.password_hash = password_hash
    end_sessions(user, action="auth.password_changed")


def end_sessions(user, actor=None, action="auth.sessions_ended", by_operator=False):
    """Invalidate every session of ``user`` at once (logout, password change, admin, the
    server's operator: ``by_operator``, recorded as the system)."""
    user.session_version += 1
    audit.record(action, user, actor=None if by_operator else actor or user)
    db.session.flush()


class AccountStateError(ValueError):
    """An account deactivated or let back in that is so already, in words for the page."""


def set_active(user, active, actor):
    """Deactivate ``user`` (``active`` false: it can no longer sign in and each of its
    sessions ends at once; its records stay) or let it sign in again (its old sessions
    stay ended). The caller has checked ``actor`` may, and locked the user's row."""
    if user.active == active:
        raise AccountStateError(
            _l("This account is active already.")
            if active
            else _l("This account is deactivated already.")
        )
    user.active = active
    if active:
        audit.record("auth.reactivated", user, actor=actor)
        db.session.flush()
    else:
        end_sessions(user, actor=actor, action="auth.deactivated")


def reset_second_factor(user, actor):
    """For a lost authenticator: a new key to enrol with at the next sign-in, the recovery
    codes gone, and every session of the user ended. Returns the code ``actor`` (None: the
    server's operator) hands to the person (shown this once): the new key is shown only
    after it is typed, so a password alone does not set up an authenticator of its own."""
    code = handed.new_code()
    user.totp_secret = new_totp_secret()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    user.reset_code_hash = reset_code_hash(user, code)
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(user, actor=actor, action="auth.second_factor_reset", by_operator=actor is None)
    return code


def reset_code_hash(user, code):
    """The keyed hash a reset code is stored as, bound to its account."""
    return cipher().blind_index(f"reset-code|{user.uid}|{handed.normalise(code)}")


def reset_code_matches(user, code):
    """Whether ``code`` is the one ``user``'s administrator was given at the reset."""
    return user.reset_code_hash is not None and hmac.compare_digest(
        reset_code_hash(user, code), user.reset_code_hash
    )


def set_alert_settings(user, contact, on_duty, actor):
    """Where a staff member's alerts go (``contact``, none when empty) and whether they are
    on duty (reviewers and managers only: duty is who hears of a new case first)."""
    user.contact = (contact or "").strip() or None
    user.on_duty = bool(on_duty) and user.role in (Role.REVIEWER, Role.MANAGER)
    audit.record("auth.alert_settings", user, actor=actor)
    return user


def set_notice_settings(user, contact, notices, discreet):
    """The applicant side's own safe contact (none when empty), whether notices of news go
    to it, and whether they name the fund. A change is an audit entry saying what is on,
    and whether the contact changed (never what it is); a form that changes nothing
    records nothing. Returns whether something changed."""
    contact = (contact or "").strip() or None
    contact_changed = contact != user.contact
    if not contact_changed and (bool(notices), bool(discreet)) == (
        user.notices,
        user.notices_discreet,
    ):
        return False
    user.contact = contact
    user.notices = bool(notices)
    user.notices_discreet = bool(discreet)
    db.session.flush()
    audit.record(
        "auth.notice_settings",
        user,
        actor=user,
        notices=user.notices,
        discreet=user.notices_discreet,
        contact_changed=contact_changed,
    )
    return True


def check_login_rules(login):
    """Raise :class:`LoginPolicyError` unless ``login`` (normalised) has the allowed form."""
    if not LOGIN_PATTERN.match(login):
        raise LoginPolicyError(
            _l("A login is 3 to 64 letters, digits, dots, dashes or underscores.")
        )


def check_not_made_login(login):
    """Raise :class:`LoginPolicyError` for a login of the form sign-up makes: those are
    for applicant accounts only, so sign-up never reaches another account."""
    if is_made_login(login):
        raise LoginPolicyError(
            _l(
                "Logins of three groups of four letters and digits (abcd-efgh-jkmn) are made "
                "by sign-up, for applicant accounts only: choose another login."
            )
        )


def create_user(
    role, login, password=None, actor=None, password_hash=None, invitation=None, **fields
):
    """Create an account; staff roles get a TOTP secret to enrol with. ``password_hash``
    is a password hashed before the write transaction began (sign-up). A login an open
    invitation holds is taken, unless it is ``invitation``'s, being accepted."""
    role = Role(role)
    login = normalise_login(login)
    check_login_rules(login)
    if role != Role.APPLICANT:
        check_not_made_login(login)
    if find_user(login) is not None or held_by_invitation(login, but=invitation):
        raise UserExistsError(login)
    user = User(role=role, login=login, **fields)
    if password is not None:
        check_password_rules(password, login)
        user.password_hash = hash_password(password)
    elif password_hash is not None:
        user.password_hash = password_hash
    if user.needs_totp:
        user.totp_secret = new_totp_secret()
    db.session.add(user)
    db.session.flush()
    check_account_links(user)
    audit.record("auth.user_created", user, actor=actor, role=role.value)
    return user


def held_by_invitation(login, but=None):
    """Whether an invitation whose link still opens, other than ``but``, holds ``login``
    for the account it will make."""
    held = sa.select(Invitation.id).where(Invitation.login == login, Invitation.opening(utcnow()))
    if but is not None:
        held = held.where(Invitation.id != but.id)
    return db.session.execute(held.limit(1)).first() is not None


class AccountLinkError(ValueError):
    """An account linked to something its role takes no link to, or to another fund's."""


def check_account_links(user):
    """A donor account belongs to its donor's fund, and only a donor account names a
    donor, only a partner account an organisation; applicants and partners belong to no
    fund. The caller rolls back what was flushed."""
    if (user.donor_id is not None) != (user.role == Role.DONOR):
        raise AccountLinkError("only a donor account names a donor, and it must")
    if user.partner_organisation_id is not None and user.role != Role.PARTNER:
        raise AccountLinkError("only a partner account names a partner organisation")
    if user.is_applicant_side and user.fund_id is not None:
        raise AccountLinkError("applicants and partners belong to no fund")
    if user.donor is not None and user.donor.fund_id != user.fund_id:
        raise AccountLinkError("a donor account belongs to its donor's fund")
