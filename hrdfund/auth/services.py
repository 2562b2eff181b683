"""Accounts: password hashing and rules, sign-in with throttling, TOTP, sessions."""

import os
import re
import secrets
import time
from datetime import timedelta

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..columns import cipher, utcnow
from ..extensions import db, lock_row
from .models import RecoveryCode, Role, User

PASSWORD_MIN = 12
PASSWORD_MAX = 128
TOTP_INTERVAL = 30


class AuthError(Exception):
    """Sign-in refused; ``reason`` is "invalid" or "locked" (never which part was wrong)."""

    def __init__(self, reason, wait_minutes=None):
        super().__init__(reason)
        self.reason = reason
        self.wait_minutes = wait_minutes


class PasswordPolicyError(ValueError):
    """A password that breaks the rules; the message says which."""


class UserExistsError(ValueError):
    """The login name is taken."""


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


def authenticate(login, password):
    """Check a login and password; return the user or raise :class:`AuthError`.

    An unknown account costs the same hashing work as a known one, and failures are
    counted per account: after LOGIN_MAX_FAILURES that account is locked for a while.
    """
    if len(password) > PASSWORD_MAX:
        raise AuthError("invalid")
    user = find_user(login)
    if user is None or user.password_hash is None or not user.active:
        _verify(_dummy_hash(), password)
        raise AuthError("invalid")
    lock_row(User, user.id)
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        _verify(_dummy_hash(), password)
        raise AuthError("locked", _minutes_left(user.locked_until, now))
    if not _verify(user.password_hash, password):
        register_failure(user)
        raise AuthError("invalid")
    user.failed_logins = 0
    return user


def register_failure(user):
    """Count a failed password or code; lock the account at the limit."""
    cfg = current_app.config
    user.failed_logins += 1
    audit.record("auth.login_failed", user)
    if user.failed_logins >= cfg["LOGIN_MAX_FAILURES"]:
        user.failed_logins = 0
        user.locked_until = utcnow() + timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"])
        audit.record("auth.account_locked", user)
    db.session.flush()


def _minutes_left(until, now):
    return max(1, int((until - now).total_seconds() // 60) + 1)


LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
#: Letters and digits that cannot be mistaken for one another when copied by hand.
SUGGESTION_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def suggest_passphrase(groups=5, size=4):
    """A random passphrase easy to copy by hand (about 100 bits), offered at sign-up."""
    return "-".join(
        "".join(secrets.choice(SUGGESTION_ALPHABET) for _ in range(size)) for _ in range(groups)
    )


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


def complete_login(user):
    """Record a successful sign-in (both factors where needed)."""
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    audit.record("auth.login", user, actor=user)
    db.session.flush()


def reauthenticate(user, password):
    """Check ``user``'s current password before a change to the account; a wrong one counts
    towards the lock, like a failed sign-in. Raises :class:`AuthError`."""
    lock_row(User, user.id)
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        _verify(_dummy_hash(), password)
        raise AuthError("locked", _minutes_left(user.locked_until, now))
    if len(password) > PASSWORD_MAX or not _verify(user.password_hash, password):
        register_failure(user)
        raise AuthError("invalid")
    user.failed_logins = 0


def change_password(user, current, new):
    """Replace ``user``'s password after checking the current one; every session of the
    user ends, this one included (the view starts a fresh one)."""
    reauthenticate(user, current)
    check_password_rules(new, user.login)
    user.password_hash = hash_password(new)
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


def create_user(role, login, password=None, actor=None, **fields):
    """Create an account; staff roles get a TOTP secret to enrol with."""
    role = Role(role)
    login = normalise_login(login)
    if not LOGIN_PATTERN.match(login):
        raise ValueError("a login is 3 to 64 letters, digits, dots, dashes or underscores")
    if find_user(login) is not None:
        raise UserExistsError(login)
    user = User(role=role, login=login, **fields)
    if password is not None:
        check_password_rules(password, login)
        user.password_hash = hash_password(password)
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
