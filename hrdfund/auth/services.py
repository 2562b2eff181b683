"""Accounts: password hashing and rules, sign-in with throttling, TOTP, sessions."""

import os
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from . import throttle
from .models import RecoveryCode, Role, User

PASSWORD_MIN = 12
PASSWORD_MAX = 128
TOTP_INTERVAL = 30


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


def check_password_rules(password, login=None):
    """Raise :class:`PasswordPolicyError` unless ``password`` may be used."""
    if len(password) < PASSWORD_MIN:
        raise PasswordPolicyError(_l("at least %(n)d characters", n=PASSWORD_MIN))
    if len(password) > PASSWORD_MAX:
        raise PasswordPolicyError(_l("at most %(n)d characters", n=PASSWORD_MAX))
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        raise PasswordPolicyError(_l("it is too common"))
    if login and login.lower() in lowered:
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


def normalise_login(login):
    return (login or "").strip().lower()


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


def read_credentials(login=None, user_id=None):
    """The credentials at ``login`` (or of the account ``user_id``); a login without an
    account, or with one that cannot sign in, has no hash and fails like a wrong password."""
    user = db.session.get(User, user_id) if user_id is not None else find_user(login)
    if user is None:
        return Credentials(normalise_login(login))
    usable = user.active and user.password_hash is not None
    return Credentials(user.login, user.id, user.uid, user.password_hash if usable else None)


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


def record_failure(charge, uid=None, action="auth.login_failed"):
    """Audit a failed password or code (counted already, when it was charged): the same
    writes whether the login has an account or not."""
    target = {"object_type": "users", "object_id": uid} if uid else {}
    audit.record(action, **target)
    if charge.reached:
        audit.record("auth.sign_in_locked", **target)


def _still_the_same(credentials):
    """The account, its row locked, while it still has the password that was checked."""
    if credentials.user_id is None or credentials.password_hash is None:
        return None
    user = lock_row(User, credentials.user_id)
    if not user.active or user.password_hash != credentials.password_hash:
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
        record_failure(charge, credentials.uid)
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
        record_failure(charge, credentials.uid)
        raise AuthError("invalid")
    return user, throttle.complete(charge)


LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
#: Letters and digits that cannot be mistaken for one another when copied by hand.
SUGGESTION_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: The shape of the login names the server makes for sign-up: three groups of four of
#: those characters (about 59 bits). Sign-up takes no other login, and only applicant
#: accounts may have one (:func:`create_user`), so sign-up never reaches a staff, donor
#: or partner account.
MADE_LOGIN_PATTERN = re.compile(
    rf"^[{SUGGESTION_ALPHABET}]{{4}}-[{SUGGESTION_ALPHABET}]{{4}}-[{SUGGESTION_ALPHABET}]{{4}}$"
)


def _random_groups(groups, size=4):
    return "-".join(
        "".join(secrets.choice(SUGGESTION_ALPHABET) for _ in range(size)) for _ in range(groups)
    )


def suggest_passphrase():
    """A random passphrase easy to copy by hand (about 100 bits), offered at sign-up."""
    return _random_groups(5)


def make_login():
    """A random login name for a new applicant account (about 59 bits): nobody can guess
    one, so asking about one tells nothing."""
    return _random_groups(3)


def is_made_login(login):
    """Whether ``login`` has the shape of the login names the server makes for sign-up."""
    return MADE_LOGIN_PATTERN.match(normalise_login(login)) is not None


def login_seal(login):
    """What the sign-up form carries beside a login the server made for it: a keyed hash
    that only the server can compute, so the form cannot name any other login."""
    return cipher().blind_index(f"sign-up-login|{normalise_login(login)}")


def made_login(login, seal):
    """``login``, normalised, when the server made it for a sign-up form (its shape, and
    the seal the form carried with it); else None."""
    login = normalise_login(login)
    if not is_made_login(login):
        return None
    if not secrets.compare_digest((seal or "").encode(), login_seal(login).encode()):
        return None
    return login


def new_totp_secret():
    return pyotp.random_base32()


#: How many recovery codes a user gets, and how long each is (letters and digits that
#: cannot be mistaken for one another, about 49 bits).
RECOVERY_CODES = 10
RECOVERY_LENGTH = 10


def _recovery_hash(user, code):
    normal = "".join(c for c in (code or "").lower() if c.isalnum())
    return cipher().blind_index(f"recovery|{user.id}|{normal}")


def issue_recovery_codes(user):
    """New recovery codes for ``user``, replacing any earlier ones; returns them in plain
    text, to be shown once. Only keyed hashes are stored."""
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(SUGGESTION_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user, raw)))
    db.session.flush()
    audit.record("auth.recovery_codes_issued", user, actor=user)
    return codes


def recovery_codes_left(user):
    """How many of ``user``'s recovery codes are still unused."""
    return db.session.execute(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).scalar()


def use_recovery_code(user, code):
    """Accept one unused recovery code of ``user``, once; returns how many are left, or
    None when the code is not one of them."""
    lock_row(User, user.id)
    found = db.session.execute(
        sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(user, code),
            RecoveryCode.used_at.is_(None),
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    found.used_at = utcnow()
    db.session.flush()
    audit.record("auth.recovery_code_used", user, actor=user)
    return db.session.execute(
        sa.select(sa.func.count()).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    ).scalar()


def totp_uri(user, issuer):
    """The otpauth:// URI an authenticator app reads."""
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.login, issuer_name=issuer)


def verify_totp(user, code, at=None):
    """Accept a current TOTP code once; refuse reuse and codes of older time steps."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6) or not user.totp_secret:
        return False
    lock_row(User, user.id)
    totp = pyotp.TOTP(user.totp_secret)
    now = time.time() if at is None else at
    current_step = int(now // TOTP_INTERVAL)
    for step in (current_step, current_step - 1, current_step + 1):
        if secrets.compare_digest(totp.at(step * TOTP_INTERVAL), code):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False
            user.totp_last_step = step
            if user.totp_confirmed_at is None:
                user.totp_confirmed_at = utcnow()
            return True
    return False


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


def end_sessions(user, actor=None, action="auth.sessions_ended"):
    """Invalidate every session of ``user`` at once (logout, password change, admin)."""
    user.session_version += 1
    audit.record(action, user, actor=actor or user)
    db.session.flush()


def reset_second_factor(user, actor):
    """For a lost authenticator: a new key to enrol with at the next sign-in, the recovery
    codes gone, and every session of the user ended."""
    user.totp_secret = new_totp_secret()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(user, actor=actor, action="auth.second_factor_reset")


def set_alert_settings(user, contact, on_duty, actor):
    """Where a reviewer's or manager's alerts go (``contact``, none when empty) and whether
    they are on duty."""
    user.contact = (contact or "").strip() or None
    user.on_duty = bool(on_duty)
    audit.record("auth.alert_settings", user, actor=actor)
    return user


def check_login_rules(login):
    """Raise :class:`LoginPolicyError` unless ``login`` (normalised) has the allowed form."""
    if not LOGIN_PATTERN.match(login):
        raise LoginPolicyError("a login is 3 to 64 letters, digits, dots, dashes or underscores")


def create_user(role, login, password=None, actor=None, password_hash=None, **fields):
    """Create an account; staff roles get a TOTP secret to enrol with. ``password_hash``
    is a password hashed before the write transaction began (sign-up)."""
    role = Role(role)
    login = normalise_login(login)
    check_login_rules(login)
    if role != Role.APPLICANT and is_made_login(login):
        raise LoginPolicyError(
            "logins of three groups of four letters and digits (abcd-efgh-jkmn) are made by "
            "sign-up, for applicant accounts only: choose another login"
        )
    if find_user(login) is not None:
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
