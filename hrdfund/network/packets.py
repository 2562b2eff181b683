"""Packets between funds on different servers: a file one fund downloads and sends by any
channel, and another imports.

A packet is ``MAGIC``, then three parts each preceded by its length (4 bytes, big-endian):

- the header, canonical JSON in clear: format version, packet id (random), kind, time made,
  the sender (fund identifier and key fingerprint), the recipient (the same), and the
  sender's ephemeral X25519 public key and the nonce;
- the body, encrypted to the recipient: an ephemeral X25519 key agreement with the
  recipient's key, HKDF-SHA256 (salt: both public keys; info: the version and the kind)
  gives a single-use AES-256-GCM key; the header bytes are the associated data;
- the sender's Ed25519 signature over a label, the header and the encrypted body.

Opening checks, in this order, and refuses with one reason: the format and version; that
the packet is addressed to the importing fund, under a key of it still in use; that the
sender is a partner fund registered here and signed with its key; the signature; that the
body decrypts; that the body is valid as a whole for its kind; that this packet from this
sender was not imported before. Nothing is stored before every check passes.
"""

import base64
import binascii
import json
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask_babel import lazy_gettext as _l

from ..auth.models import Fund
from ..core.columns import utcnow
from ..core.extensions import db
from . import keys, packet_bodies
from .models import ImportedPacket

MAGIC = b"HRDFUND-PACKET\n"
VERSION = 1
#: The kinds of packet (what each carries: ``packet_bodies``).
REFERRAL = packet_bodies.REFERRAL
ANSWER = packet_bodies.ANSWER
DUPLICATE_ASK = packet_bodies.DUPLICATE_ASK
DUPLICATE_ANSWER = packet_bodies.DUPLICATE_ANSWER
KINDS = packet_bodies.KINDS
DOCUMENTS_MAX = packet_bodies.DOCUMENTS_MAX
MATCHES_MAX = packet_bodies.MATCHES_MAX
#: A header is a few hundred bytes; one larger is refused before it is parsed.
HEADER_MAX = 2048


class PacketRefused(ValueError):
    """A packet that may not be imported; ``reason`` names the check, the message says it
    in words for the page."""

    def __init__(self, reason, words):
        super().__init__(words)
        self.reason = reason
        self.words = words


FORMAT = "format"
ELSEWHERE = "addressed-elsewhere"
OLD_KEY = "old-key"
UNKNOWN_KEY = "unknown-key"
UNSIGNED = "unsigned"
ALTERED = "altered"
UNREADABLE = "unreadable"
INVALID = "invalid"
REPLAYED = "replayed"

REASONS = {
    FORMAT: _l(
        "This file is not a packet from hrdfund, or of a version this server does not read."
    ),
    ELSEWHERE: _l("This packet is addressed to another fund."),
    OLD_KEY: _l(
        "This packet is addressed to a key your fund no longer uses: ask the sender to make it "
        "again with your fund's current key."
    ),
    UNKNOWN_KEY: _l(
        "This packet is signed by an unknown key: not by a partner fund your fund registered."
    ),
    UNSIGNED: _l("This packet is not signed: it cannot be trusted."),
    ALTERED: _l("This packet was altered after it was signed."),
    UNREADABLE: _l("This packet does not open with your fund's key."),
    INVALID: _l("This packet's content is not valid: %(problem)s"),
    REPLAYED: _l("This packet was already imported."),
}


def _refuse(reason, **values):
    return PacketRefused(reason, REASONS[reason] % values if values else REASONS[reason])


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64(data):
    return base64.b64encode(data).decode()


def _derive(shared, ephemeral_public, recipient_public, kind):
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_public + recipient_public,
        info=f"hrdfund-packet-{VERSION}:{kind}".encode(),
    ).derive(shared)


def _signed_bytes(header_bytes, ciphertext):
    return b"hrdfund-packet-signature\x00" + header_bytes + b"\x00" + ciphertext


def _private(key):
    """The X25519 and Ed25519 private keys of one of the fund's own keys."""
    secret = key.private
    return (
        X25519PrivateKey.from_private_bytes(bytes.fromhex(secret["x25519"])),
        Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret["ed25519"])),
    )


def packet_id():
    return os.urandom(16).hex()


def seal_packet(kind, body, from_fund, to_fund):
    """The bytes of a packet of ``kind`` carrying ``body`` (JSON-safe) from the member fund
    ``from_fund`` to the partner ``to_fund``, under both funds' current keys."""
    sender_key = keys.current_key(from_fund)
    recipient_key = keys.current_key(to_fund)
    if sender_key is None:
        raise keys.PartnerError(
            _l("Your fund has no keys yet: its administrator makes them first.")
        )
    if recipient_key is None or not to_fund.elsewhere:
        raise keys.PartnerError(_l("This fund is not a partner fund with a registered key."))
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    nonce = os.urandom(12)
    header = {
        "version": VERSION,
        "packet": packet_id(),
        "kind": kind,
        "created": utcnow().replace(microsecond=0).isoformat() + "Z",
        "from": {"fund": from_fund.uid, "key": sender_key.fingerprint},
        "to": {"fund": to_fund.remote_uid, "key": recipient_key.fingerprint},
        "ephemeral": _b64(ephemeral_public),
        "nonce": _b64(nonce),
    }
    header_bytes = canonical(header)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_key.encryption_public))
    aead_key = _derive(shared, ephemeral_public, recipient_key.encryption_public, kind)
    ciphertext = AESGCM(aead_key).encrypt(nonce, canonical(body), header_bytes)
    _, signing = _private(sender_key)
    signature = signing.sign(_signed_bytes(header_bytes, ciphertext))
    return b"".join(
        [MAGIC]
        + [struct.pack(">I", len(part)) + part for part in (header_bytes, ciphertext, signature)]
    )


@dataclass(frozen=True)
class Opened:
    """A packet that passed every check: who sent it to whom, and its validated body."""

    packet_id: str
    kind: str
    created: datetime
    fund: Fund
    partner: Fund
    body: dict
    #: The fund's key the packet is addressed to, and the partner's key that signed it.
    own_key: object
    sender_key: object


def _parts(data):
    if not isinstance(data, bytes | bytearray) or not data.startswith(MAGIC):
        raise _refuse(FORMAT)
    parts, at = [], len(MAGIC)
    while at < len(data):
        if at + 4 > len(data):
            raise _refuse(FORMAT)
        (size,) = struct.unpack(">I", data[at : at + 4])
        at += 4
        if at + size > len(data):
            raise _refuse(FORMAT)
        parts.append(bytes(data[at : at + size]))
        at += size
    if len(parts) == 2:
        raise _refuse(UNSIGNED)
    if len(parts) != 3:
        raise _refuse(FORMAT)
    return parts


def _header(header_bytes):
    # Read before the signature is checked: bounded, and a nesting too deep for the
    # parser is a refusal, not a crash.
    if len(header_bytes) > HEADER_MAX:
        raise _refuse(FORMAT)
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refuse(FORMAT) from None
    if not isinstance(header, dict) or header.get("version") != VERSION:
        raise _refuse(FORMAT)
    expected = {"version", "packet", "kind", "created", "from", "to", "ephemeral", "nonce"}
    if set(header) != expected or header["kind"] not in KINDS:
        raise _refuse(FORMAT)
    if not isinstance(header["packet"], str) or not re.match(r"^[0-9a-f]{32}$", header["packet"]):
        raise _refuse(FORMAT)
    for side in ("from", "to"):
        who = header[side]
        if (
            not isinstance(who, dict)
            or set(who) != {"fund", "key"}
            or not all(isinstance(v, str) for v in who.values())
            or not re.match(r"^[0-9a-f]{64}$", who["key"])
            or not re.match(r"^[0-9a-f]{20}$", who["fund"])
        ):
            raise _refuse(FORMAT)
    try:
        created = datetime.fromisoformat(header["created"].removesuffix("Z"))
        ephemeral = base64.b64decode(header["ephemeral"], validate=True)
        nonce = base64.b64decode(header["nonce"], validate=True)
    except (AttributeError, TypeError, ValueError, binascii.Error):
        raise _refuse(FORMAT) from None
    if len(ephemeral) != 32 or len(nonce) != 12:
        raise _refuse(FORMAT)
    if created.tzinfo is not None:
        created = created.astimezone(UTC)
    return header, created.replace(tzinfo=None), ephemeral, nonce


def open_packet(data, fund, kinds=KINDS):
    """Check a packet for the member ``fund`` and return it :class:`Opened`, or raise
    :class:`PacketRefused` with the first check it fails. Reads, stores nothing."""
    header_bytes, ciphertext, signature = _parts(data)
    header, created, ephemeral, nonce = _header(header_bytes)
    if header["to"]["fund"] != fund.uid:
        raise _refuse(ELSEWHERE)
    own_key = keys.usable_key(fund, header["to"]["key"])
    if own_key is None:
        known = db.session.execute(
            sa.select(sa.literal(1)).where(
                keys.FundKey.fund_id == fund.id, keys.FundKey.fingerprint == header["to"]["key"]
            )
        ).first()
        raise _refuse(OLD_KEY if known else ELSEWHERE)
    partner = keys.partner_by_remote_uid(fund, header["from"]["fund"])
    sender_key = keys.usable_key(partner, header["from"]["key"]) if partner else None
    if sender_key is None:
        raise _refuse(UNKNOWN_KEY)
    if not signature:
        raise _refuse(UNSIGNED)
    try:
        Ed25519PublicKey.from_public_bytes(sender_key.signing_public).verify(
            signature, _signed_bytes(header_bytes, ciphertext)
        )
    except InvalidSignature:
        raise _refuse(ALTERED) from None
    kind = header["kind"]
    if kind not in kinds:
        raise _refuse(INVALID, problem=_l("a packet of another kind was expected here."))
    private, _ = _private(own_key)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        aead_key = _derive(shared, ephemeral, own_key.encryption_public, kind)
        plain = AESGCM(aead_key).decrypt(nonce, ciphertext, header_bytes)
        body = json.loads(plain)
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise _refuse(UNREADABLE) from None
    except RecursionError:
        raise _refuse(INVALID, problem=_l("its parts are nested too deep.")) from None
    try:
        body = packet_bodies.VALIDATORS[kind](body)
    except packet_bodies.BodyInvalid as exc:
        raise _refuse(INVALID, problem=exc.words) from None
    seen = db.session.execute(
        sa.select(ImportedPacket.id).where(
            ImportedPacket.from_fund_id == partner.id,
            ImportedPacket.packet_id == header["packet"],
        )
    ).first()
    if seen:
        raise _refuse(REPLAYED)
    return Opened(header["packet"], kind, created, fund, partner, body, own_key, sender_key)


def mark_imported(opened, actor):
    """Record that ``opened`` was imported: the same packet is refused from now on."""
    db.session.add(
        ImportedPacket(
            fund_id=opened.fund.id,
            from_fund_id=opened.partner.id,
            packet_id=opened.packet_id,
            kind=opened.kind,
            imported_by_id=actor.id,
        )
    )
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        # The same packet imported at the same moment by someone else.
        raise _refuse(REPLAYED) from None


class ExchangeError(ValueError):
    """A step of the exchange with a partner fund the rules refuse, in words for the page."""


def seal_for(kind, body, from_fund, to_fund):
    """:func:`seal_packet`, its refusals as :class:`ExchangeError`."""
    try:
        return seal_packet(kind, body, from_fund, to_fund)
    except keys.PartnerError as exc:
        raise ExchangeError(str(exc)) from None
