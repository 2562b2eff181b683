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
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

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
from flask import current_app
from flask_babel import lazy_gettext as _l

from ..auth.models import Fund
from ..cases.categories import CATEGORY_FIELDS
from ..cases.cleaning import EXTENSIONS, NAME_MAX, sniff
from ..cases.forms import LONG_MAX, STORY_MAX, TEXT_MAX
from ..cases.models import DocumentKind, Gender, Urgency
from ..core import geo
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import CURRENCIES
from ..core.support import Category
from ..reviews.models import Recommendation, RiskLevel
from ..reviews.network_check import NetworkWord
from . import keys
from .models import ImportedPacket, Referral

MAGIC = b"HRDFUND-PACKET\n"
VERSION = 1
#: The kinds of packet, and what each carries.
REFERRAL = "referral"
ANSWER = "answer"
DUPLICATE_ASK = "duplicate-ask"
DUPLICATE_ANSWER = "duplicate-answer"
KINDS = (REFERRAL, ANSWER, DUPLICATE_ASK, DUPLICATE_ANSWER)
#: At most this many documents travel in one referral packet.
DOCUMENTS_MAX = 20
#: At most this many keyed hashes in one duplicate-check ask, and matches in its answer.
HASHES_MAX = 10
MATCHES_MAX = 50
_HEX = re.compile(r"^[0-9a-f]+$")
_AMOUNT = re.compile(r"^\d{1,12}\.\d{2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


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


def _unb64(text, what):
    if not isinstance(text, str):
        raise _invalid(what)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(what) from None


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
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError):
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
    body = VALIDATORS[kind](body)
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


# The body of each kind, validated whole: every key known, every value of its type and
# within the limits the forms apply, or the whole packet is refused.


def _invalid(problem):
    return _refuse(INVALID, problem=problem)


def _keys(value, required, optional=(), what="body"):
    if not isinstance(value, dict):
        raise _invalid(_l("its parts are not those of a packet of this kind."))
    missing = set(required) - set(value)
    unknown = set(value) - set(required) - set(optional)
    if missing or unknown:
        raise _invalid(_l("its parts are not those of a packet of this kind."))
    return value


def _text(value, limit, what, required=True):
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise _invalid(_l("a text is missing or longer than this server accepts."))
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise _invalid(_l("a text holds control characters."))
    return value


def _int(value, low, high, what):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(_l("a number is outside its range."))
    return value


def _choice(value, allowed, what):
    if value not in allowed:
        raise _invalid(_l("a value is not one this server knows."))
    return value


def _uid(value, what):
    if not isinstance(value, str) or not re.match(r"^[0-9a-f]{20}$", value):
        raise _invalid(_l("an identifier is not valid."))
    return value


def _amount(value):
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise _invalid(_l("the amount is not in cents."))
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _invalid(_l("the amount is not in cents.")) from None
    if amount <= 0:
        raise _invalid(_l("the amount is not above zero."))
    return amount


def _months(value):
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise _invalid(_l("the months are not a first and a last month."))
    first = _int(value[0], 1, Referral.MONTHS_MAX, "months")
    last = _int(value[1], 1, Referral.MONTHS_MAX, "months")
    if first > last:
        raise _invalid(_l("the first month is after the last."))
    return (first, last)


def _day(value, what):
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _invalid(_l("a date is not valid.")) from None


def _detail_value(value, what):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return _int(value, -(10**12), 10**12, what)
    return _text(value, LONG_MAX, what, required=False)


def _answers(value, category):
    value = _keys(
        value,
        ("defender_name", "country"),
        (
            "defender_work",
            "threat",
            "urgency_reason",
            "other_funders",
            "details",
            "region",
            "gender",
            "dependants_count",
            "dependants",
        ),
        what="answers",
    )
    out = {
        "defender_name": _text(value["defender_name"], TEXT_MAX, "name", required=False),
        "country": value["country"],
    }
    if value["country"] is not None and value["country"] not in geo.COUNTRIES:
        raise _invalid(_l("the country is not a country code."))
    for name in ("defender_work", "threat", "urgency_reason", "other_funders"):
        out[name] = _text(value.get(name), STORY_MAX, name, required=False)
    region = value.get("region")
    if region is not None and region not in geo.REGIONS:
        raise _invalid(_l("the region is not a region code."))
    out["region"] = region
    gender = value.get("gender")
    out["gender"] = None if gender is None else _choice(gender, {g.value for g in Gender}, "gender")
    out["dependants_count"] = _int(value.get("dependants_count", 0), 0, 1000, "dependants")
    names = {name for name, *_ in CATEGORY_FIELDS[Category(category)]}
    details = value.get("details") or {}
    if not isinstance(details, dict) or not set(details) <= names:
        raise _invalid(_l("the answers name questions this kind of support does not ask."))
    out["details"] = {k: _detail_value(v, k) for k, v in details.items()}
    dependants = value.get("dependants") or []
    if not isinstance(dependants, list) or len(dependants) > 50:
        raise _invalid(_l("the dependants are not a list."))
    out["dependants"] = [
        {
            "age": _int(d.get("age"), 0, 120, "age"),
            "relation": _text(d.get("relation"), TEXT_MAX, "relation", required=False),
            "needs": _text(d.get("needs"), LONG_MAX, "needs", required=False),
        }
        for d in (_keys(d, ("age",), ("relation", "needs"), "dependant") for d in dependants)
    ]
    return out


def _documents(value):
    if not isinstance(value, list) or len(value) > DOCUMENTS_MAX:
        raise _invalid(_l("more documents than one packet carries."))
    limit = current_app.config["HRDFUND_MAX_DOCUMENT_BYTES"]
    kinds = {k.value for k in DocumentKind} - {DocumentKind.PROOF_OF_PAYMENT.value}
    out = []
    for item in value:
        item = _keys(item, ("kind", "name", "type", "data"), what="document")
        data = _unb64(item["data"], _l("a document is not readable."))
        if not data or len(data) > limit:
            raise _invalid(_l("a document is empty or larger than this server accepts."))
        content_type = _choice(item["type"], EXTENSIONS, "type")
        if sniff(data) != content_type:
            raise _invalid(_l("a document is not the type it says."))
        out.append(
            {
                "kind": _choice(item["kind"], kinds, "kind"),
                "name": _text(item["name"], NAME_MAX, "name"),
                "type": content_type,
                "data": data,
            }
        )
    return out


def _assessment(value):
    if not isinstance(value, list) or len(value) > 20:
        raise _invalid(_l("the assessment is not a list."))
    out = []
    for item in value:
        item = _keys(item, ("risk", "recommendation", "text"), what="assessment")
        out.append(
            {
                "risk": _choice(item["risk"], {r.value for r in RiskLevel}, "risk"),
                "recommendation": _choice(
                    item["recommendation"], {r.value for r in Recommendation}, "recommendation"
                ),
                "text": _text(item["text"], STORY_MAX, "assessment", required=False),
            }
        )
    return out


def validate_referral(body):
    """A referral: what is asked (kind of support, months, amount and currency), why, by
    when, and the parts shared."""
    body = _keys(
        body,
        (
            "referral",
            "category",
            "months",
            "amount",
            "currency",
            "urgency",
            "reason",
            "answer_by",
            "shared",
            "answers",
            "documents",
            "assessment",
        ),
    )
    category = _choice(body["category"], {c.value for c in Category}, "category")
    shared = body["shared"]
    if not isinstance(shared, list) or not set(shared) <= {"answers", "documents", "assessment"}:
        raise _invalid(_l("the parts shared are not ours."))
    if ("answers" in shared) != (body["answers"] is not None):
        raise _invalid(_l("the parts shared are not the parts carried."))
    if "documents" not in shared and body["documents"]:
        raise _invalid(_l("the parts shared are not the parts carried."))
    if "assessment" not in shared and body["assessment"]:
        raise _invalid(_l("the parts shared are not the parts carried."))
    return {
        "referral": _uid(body["referral"], "referral"),
        "category": category,
        "months": _months(body["months"]),
        "amount": _amount(body["amount"]),
        "currency": _choice(body["currency"], CURRENCIES, "currency"),
        "urgency": _choice(body["urgency"], {u.value for u in Urgency}, "urgency"),
        "reason": _text(body["reason"], LONG_MAX, "reason").strip(),
        "answer_by": _day(body["answer_by"], "answer_by"),
        "shared": sorted(set(shared)),
        "answers": None if body["answers"] is None else _answers(body["answers"], category),
        "documents": _documents(body["documents"]),
        "assessment": _assessment(body["assessment"]),
    }


ANSWER_STATES = ("accepted", "declined", "supported")


def validate_answer(body):
    """The answer to a referral: accepted, declined with a reason, or the months supported."""
    body = _keys(body, ("referral", "status", "reason", "months"))
    status = _choice(body["status"], ANSWER_STATES, "status")
    reason = _text(body["reason"], LONG_MAX, "reason", required=status == "declined")
    months = _months(body["months"])
    if (status == "supported") != (months is not None):
        raise _invalid(_l("the months supported come with a support answer only."))
    return {
        "referral": _uid(body["referral"], "referral"),
        "status": status,
        "reason": reason.strip() if reason else None,
        "months": months,
    }


def validate_ask(body):
    """A duplicate check: keyed hashes only, a kind of support, the month it asks from."""
    body = _keys(body, ("ask", "hashes", "category", "since"))
    hashes = body["hashes"]
    if (
        not isinstance(hashes, list)
        or not 1 <= len(hashes) <= HASHES_MAX
        or not all(isinstance(h, str) and len(h) == 64 and _HEX.match(h) for h in hashes)
    ):
        raise _invalid(_l("the keyed hashes are not hashes."))
    if not isinstance(body["since"], str) or not _MONTH.match(body["since"]):
        raise _invalid(_l("the period is not a month."))
    return {
        "ask": _uid(body["ask"], "ask"),
        "hashes": hashes,
        "category": _choice(body["category"], {c.value for c in Category}, "category"),
        "since": body["since"],
    }


def validate_duplicate_answer(body):
    """The answer to a duplicate check: for each case found, one word and a month."""
    body = _keys(body, ("ask", "matches"))
    matches = body["matches"]
    if not isinstance(matches, list) or len(matches) > MATCHES_MAX:
        raise _invalid(_l("the answer is not a list of matches."))
    out = []
    for item in matches:
        item = _keys(item, ("word", "month"), what="match")
        if not isinstance(item["month"], str) or not _MONTH.match(item["month"]):
            raise _invalid(_l("the period is not a month."))
        out.append(
            {
                "word": _choice(item["word"], {w.value for w in NetworkWord}, "word"),
                "month": item["month"],
            }
        )
    return {"ask": _uid(body["ask"], "ask"), "matches": out}


VALIDATORS = {
    REFERRAL: validate_referral,
    ANSWER: validate_answer,
    DUPLICATE_ASK: validate_ask,
    DUPLICATE_ANSWER: validate_duplicate_answer,
}
