"""The second factor: TOTP keys and codes, each accepted once, and the recovery codes for a
lost authenticator (stored as keyed hashes, each used once)."""

import secrets
import time

import pyotp
import sqlalchemy as sa

from .. import audit
from ..core.columns import cipher, utcnow
from ..core.digits import ascii_digits, plain_number
from ..core.extensions import db
from ..core.sql import lock_row
from .logins import SUGGESTION_ALPHABET
from .models import RecoveryCode, User

TOTP_INTERVAL = 30


def new_totp_secret():
    """A new TOTP key to enrol an authenticator with."""
    return pyotp.random_base32()


#: How many recovery codes a user gets, and how long each is (letters and digits that
#: cannot be mistaken for one another, about 49 bits).
RECOVERY_CODES = 10
RECOVERY_LENGTH = 10


def _recovery_hash(user, code):
    """The keyed hash a recovery code is stored as, whatever its case and dashes."""
    normal = "".join(c for c in ascii_digits(code).lower() if c.isalnum())
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
    code = ascii_digits(code).strip().replace(" ", "")
    if not (plain_number(code) and len(code) == 6) or not user.totp_secret:
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
