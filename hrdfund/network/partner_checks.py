"""The duplicate check with a partner fund on another server, by packet.

The asking fund sends a keyed hash of the defender's name and country, the kind of support
and the month the check looks back to, under a key the two funds derive from their own keys
(X25519 between them, then HKDF bound to both fingerprints): no third fund can compute or
compare it, and no secret needs to travel. The partner hashes its own candidate cases under
the same key and answers with the words the check inside a server gives (open, supported,
refused) and the month each case was sent.
"""

import hashlib
import hmac
import json
import secrets
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..audit.models import AuditEvent
from ..cases.access import check_staff
from ..cases.models import Application, ApplicationStatus
from ..cases.services import network_identity
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.support import Category
from ..reviews import network_check
from . import keys, packets
from .packets import ExchangeError

#: What a packet file is called when downloaded: the kind and an opaque id, nothing more.
SUFFIX = ".hrdp"


def pair_key(own_key, their_key):
    """The key two funds share for the duplicate check, derived from the fund's own key
    and the partner's public key (X25519, then HKDF bound to both fingerprints): each side
    computes it alone, and no other fund can."""
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(own_key.private["x25519"]))
    shared = private.exchange(X25519PublicKey.from_public_bytes(their_key.encryption_public))
    pair = "|".join(sorted((own_key.fingerprint, their_key.fingerprint)))
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"hrdfund-duplicate-check-pair:{pair}".encode(),
    ).derive(shared)


def pair_hash(key, name, country):
    identity = network_identity(name, country)
    if identity is None:
        return None
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()


def _window_start(moment):
    """The first day of the month the duplicate window reaches back to from ``moment``."""
    since = moment - timedelta(days=current_app.config["DUPLICATE_WINDOW_DAYS"])
    return since.date().replace(day=1)


def answered_since(body):
    """The month a partner's question is answered from: the one it names, but never before
    this fund's own window counted back from today. The asker chooses its month; a
    question looking back years would otherwise learn a defender's whole history here."""
    asked = date.fromisoformat(body["since"] + "-01")
    return max(asked, _window_start(utcnow()))


def ask_partner(actor, application, partner):
    """The duplicate-check packet asking ``partner`` about ``application``: its keyed hash
    under the pair's key, its kind of support and the month the check looks back to;
    (bytes, file name). Audited on the case."""
    check_staff(application, actor, ExchangeError)
    reason = network_check.why_not_asking(application)
    if reason is not None:
        raise ExchangeError(reason)
    if partner is None or partner.partner_of_id != application.fund_id:
        raise ExchangeError(_l("Choose a partner fund your fund registered."))
    own, theirs = keys.current_key(application.fund), keys.current_key(partner)
    if own is None or theirs is None:
        raise ExchangeError(_l("Your fund and the partner fund both need keys first."))
    ask = secrets.token_hex(10)
    key = pair_key(own, theirs)
    body = {
        "ask": ask,
        "hashes": [pair_hash(key, application.defender_name, application.country)],
        "category": application.category.value,
        "since": _window_start(application.submitted_at or utcnow()).strftime("%Y-%m"),
    }
    data = packets.seal_for(packets.DUPLICATE_ASK, body, application.fund, partner)
    audit.record("network.asked_partner", application, actor=actor, partner=partner.id, ask=ask)
    return data, f"check-{ask}{SUFFIX}"


def answer_ask(actor, opened):
    """Match the ask against the importing fund's own cases, as the check inside a server
    matches, and seal the answer: one word and a month per case."""
    body = opened.body
    fund = opened.fund
    key = pair_key(opened.own_key, opened.sender_key)
    start = datetime.combine(answered_since(body), time.min)
    ended = sa.case(
        (Application.status == ApplicationStatus.REJECTED, Application.decided_at),
        else_=Application.closed_at,
    )
    rows = (
        db.session.execute(
            sa.select(Application)
            .where(
                Application.fund_id == fund.id,
                Application.category == Category(body["category"]),
                Application.status.in_(network_check.MATCHED),
                Application.purged_at.is_(None),
                Application.submitted_at.is_not(None),
                Application.network_key.is_not(None),
                sa.or_(ended.is_(None), ended >= start),
                network_check.consent_stands(Application),
            )
            .order_by(Application.submitted_at.desc(), Application.id)
        )
        .scalars()
        .all()
    )
    wanted = set(body["hashes"])
    found = [r for r in rows if pair_hash(key, r.defender_name, r.country) in wanted][
        : packets.MATCHES_MAX
    ]
    matches = []
    for case in found:
        line = {
            "word": network_check.WORDS[case.status].value,
            "month": case.submitted_at.strftime("%Y-%m"),
        }
        if line not in matches:
            matches.append(line)
        audit.record(
            "network.matched",
            case,
            actor=actor,
            fund=fund.id,
            asking_fund=opened.partner.id,
        )
    audit.record(
        "network.answered_partner",
        opened.partner,
        actor=actor,
        fund=fund.id,
        ask=body["ask"],
        found=len(found),
    )
    data = packets.seal_for(
        packets.DUPLICATE_ANSWER, {"ask": body["ask"], "matches": matches}, fund, opened.partner
    )
    return data, f"check-answer-{body['ask']}{SUFFIX}"


def _asks(action, ask):
    """The payloads and cases of the audit entries ``action`` naming ``ask``."""
    rows = db.session.execute(
        sa.select(AuditEvent.object_id, AuditEvent.payload).where(
            AuditEvent.action == action,
            AuditEvent.object_type == "applications",
            AuditEvent.payload.contains(ask),
        )
    ).all()
    return [(row.object_id, json.loads(row.payload)) for row in rows]


def asked_case(opened):
    """The case of the fund's own ask that ``opened`` answers: asked of the partner fund
    that answers, and not answered before."""
    ask = opened.body["ask"]
    uids = [
        uid
        for uid, payload in _asks("network.asked_partner", ask)
        if payload.get("ask") == ask and payload.get("partner") == opened.partner.id
    ]
    case = None
    if uids:
        case = db.session.execute(
            sa.select(Application).where(
                Application.uid == uids[0], Application.fund_id == opened.fund.id
            )
        ).scalar_one_or_none()
    if case is None:
        raise ExchangeError(_l("This answer names no check your fund asked of this partner."))
    if any(payload.get("ask") == ask for _uid, payload in _asks("network.partner_answered", ask)):
        raise ExchangeError(_l("This check was answered already."))
    return case


def import_duplicate_answer(actor, opened):
    case = asked_case(opened)
    matches = opened.body["matches"]
    audit.record(
        "network.partner_answered",
        case,
        actor=actor,
        partner=opened.partner.id,
        ask=opened.body["ask"],
        matches=matches,
    )
    return case, matches
