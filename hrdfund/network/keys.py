"""Keys for packets between servers, and partner funds on other servers.

A member fund makes its key pair (``flask hrdfund network-keys``): X25519 to receive
packets, Ed25519 to sign them. Its public half travels to partner funds as one line of
text, with a fingerprint that both sides read out on a call. The private halves stay in
the database, encrypted like any sensitive field under the instance's data key (so they
rotate with ``flask hrdfund rotate-keys`` and are in every backup).

A fund's administrator registers a partner fund on another server by its name, its key
line and the fingerprint heard on the call: it becomes a ``Fund`` record marked as the
partner of that member fund, so that referrals to and from it are ordinary referrals. A
new key line for a known partner (same fund identifier) replaces its key; the old one
still verifies its packets for ``FundKey.RETIRED_DAYS``, unless the administrator says it
may be in other hands: then it verifies nothing from that moment. Making new keys of one's own
keeps the old ones opening packets addressed to them for as long.
"""

import base64
import binascii
import hashlib
import re
from datetime import timedelta

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.funds import fund_name_taken
from ..auth.models import Fund, Role
from ..core.columns import new_uid, utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from ..core.text import tidy_name
from .models import FundKey

#: The first word of a key line, and its version.
KEY_LINE = "hrdfund-key-1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
_UID = re.compile(r"^[0-9a-f]{20}$")


class PartnerError(ValueError):
    """A key or partner step the rules refuse, in words for the page."""


def fingerprint(encryption_public, signing_public):
    """SHA-256 over both public keys, in hex."""
    return hashlib.sha256(b"hrdfund-fund-key\x00" + encryption_public + signing_public).hexdigest()


def spoken(fingerprint_hex):
    """The fingerprint as people read it out: its first 128 bits, in eight groups of four."""
    head = fingerprint_hex[:32].upper()
    return " ".join(head[i : i + 4] for i in range(0, 32, 4))


def _raw_public(key):
    return key.public_key().public_bytes(*_RAW)


def make_keys(fund, actor=None):
    """New key pairs for the member ``fund``; its current key, if any, is retired (it still
    opens packets addressed to it for ``FundKey.RETIRED_DAYS``)."""
    fund = lock_row(Fund, fund.id)
    if fund.elsewhere:
        raise PartnerError(_l("Keys are made by the fund itself, on its own server."))
    encryption = X25519PrivateKey.generate()
    signing = Ed25519PrivateKey.generate()
    now = utcnow()
    db.session.execute(
        sa.update(FundKey)
        .where(FundKey.fund_id == fund.id, FundKey.retired_at.is_(None))
        .values(retired_at=now)
    )
    key = FundKey(
        uid=new_uid(),
        fund_id=fund.id,
        encryption_public=_raw_public(encryption),
        signing_public=_raw_public(signing),
        created_at=now,
    )
    key.fingerprint = fingerprint(key.encryption_public, key.signing_public)
    key.private = {
        "x25519": encryption.private_bytes_raw().hex(),
        "ed25519": signing.private_bytes_raw().hex(),
    }
    db.session.add(key)
    db.session.flush()
    audit.record("fund.keys_made", fund, actor=actor, fund=fund, key=key.fingerprint[:32])
    return key


def current_key(fund):
    """The fund's newest key not retired, or None."""
    return db.session.execute(
        sa.select(FundKey)
        .where(FundKey.fund_id == fund.id, FundKey.retired_at.is_(None))
        .order_by(FundKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def usable_key(fund, fingerprint_hex, now=None):
    """The key of ``fund`` with ``fingerprint_hex``, current or retired for less than
    ``FundKey.RETIRED_DAYS``; None otherwise."""
    now = now or utcnow()
    return db.session.execute(
        sa.select(FundKey).where(
            FundKey.fund_id == fund.id,
            FundKey.fingerprint == fingerprint_hex,
            sa.or_(
                FundKey.retired_at.is_(None),
                FundKey.retired_at > now - timedelta(days=FundKey.RETIRED_DAYS),
            ),
        )
    ).scalar_one_or_none()


def key_line(fund, key):
    """The one line of text a partner registers: version, the fund's identifier, and both
    public keys in base64."""
    keys = base64.b64encode(key.encryption_public + key.signing_public).decode()
    return f"{KEY_LINE} {fund.uid} {keys}"


def parse_key_line(text):
    """(fund identifier, X25519 public key, Ed25519 public key) of a key line, or a
    refusal saying it is not one."""
    words = (text or "").split()
    refusal = PartnerError(_l("This is not a key line made by `flask hrdfund network-keys`."))
    if len(words) != 3 or words[0] != KEY_LINE or not _UID.match(words[1]):
        raise refusal
    try:
        raw = base64.b64decode(words[2], validate=True)
    except (binascii.Error, ValueError):
        raise refusal from None
    if len(raw) != 64:
        raise refusal
    return words[1], raw[:32], raw[32:]


def _heard(text):
    return re.sub(r"[\s:-]", "", text or "").lower()


def partners(fund):
    """The partner funds on other servers ``fund`` registered, by name, with their
    current key."""
    rows = (
        db.session.execute(sa.select(Fund).where(Fund.partner_of_id == fund.id).order_by(Fund.name))
        .scalars()
        .all()
    )
    return [(partner, current_key(partner)) for partner in rows]


def partner_by_remote_uid(fund, remote_uid):
    return db.session.execute(
        sa.select(Fund).where(Fund.partner_of_id == fund.id, Fund.remote_uid == remote_uid)
    ).scalar_one_or_none()


def register_partner(actor, fund, name, line, heard, revoke=False):
    """Register a partner fund on another server for ``fund``, by its ``name``, its key
    ``line`` and the fingerprint ``heard`` on a call (its spoken part, or whole). A line
    naming a partner already registered replaces that partner's key; with ``revoke``, the
    key replaced (it may be in other hands) verifies no packet from now on."""
    if actor.role != Role.ADMIN or actor.fund_id != fund.id:
        raise PartnerError(_l("Only this fund's administrator registers its partner funds."))
    remote_uid, encryption_public, signing_public = parse_key_line(line)
    printed = fingerprint(encryption_public, signing_public)
    said = _heard(heard)
    if len(said) < 32 or not printed.startswith(said):
        raise PartnerError(
            _l(
                "The fingerprint does not match this key. Read it out again with the partner "
                "fund: a key that does not match may not be theirs."
            )
        )
    if remote_uid == fund.uid or usable_key(fund, printed):
        raise PartnerError(_l("This is your own fund's key."))
    registered = db.session.execute(
        sa.select(FundKey.id)
        .join(Fund, Fund.id == FundKey.fund_id)
        .where(Fund.partner_of_id == fund.id, FundKey.fingerprint == printed)
    ).first()
    if registered:
        raise PartnerError(_l("This key is registered already."))
    fund = lock_row(Fund, fund.id)
    partner = partner_by_remote_uid(fund, remote_uid)
    name = tidy_name(name)
    if partner is None:
        if not name:
            raise PartnerError(_l("Give the partner fund's name."))
        if fund_name_taken(name, owner_id=fund.id):
            raise PartnerError(_l("A fund is already named %(name)s.", name=name))
        partner = Fund(
            name=name,
            partner_of_id=fund.id,
            remote_uid=remote_uid,
            takes_applications=False,
            intake=False,
            categories=[],
            countries=[],
            languages=[],
        )
        db.session.add(partner)
        db.session.flush()
        action = "partner.registered"
    else:
        # Retired now, its packets verify for a while; revoked, it is as if retired long
        # enough ago that none does.
        retired_at = utcnow()
        if revoke:
            retired_at -= timedelta(days=FundKey.RETIRED_DAYS)
        db.session.execute(
            sa.update(FundKey)
            .where(
                FundKey.fund_id == partner.id,
                sa.or_(FundKey.retired_at.is_(None), FundKey.retired_at > retired_at),
            )
            .values(retired_at=retired_at)
        )
        action = "partner.key_revoked" if revoke else "partner.key_replaced"
    key = FundKey(
        fund_id=partner.id,
        encryption_public=encryption_public,
        signing_public=signing_public,
        fingerprint=printed,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(action, partner, actor=actor, fund=fund, key=printed[:32])
    return partner
