"""Referrals and duplicate checks with partner funds on other servers, by packet.

The referring fund refers a case to a partner fund as to a member fund (``refer_case``),
then downloads the referral packet: the shared parts only, documents included, encrypted
to the partner's key and signed with the fund's. The partner imports it: every check of
``packets.open_packet`` passes first, a preview shows what arrives, and accepting the
import makes the referral in its queue, its case's shared parts held by a record of the
referring fund (a case of that partner fund record, which no one opens but through the
referral). The fund asked answers as it answers any referral, and downloads the answer
packet; the referring fund imports it and its referral takes the answer.

The duplicate check asks a partner fund with a packet of keyed hashes only, under a key
the two funds derive from their own keys (X25519 between them, then HKDF): no third party
and no other pair of funds can compare them, and no secret needs to travel. The partner
hashes its own candidate cases under the same key and answers with the words the check
inside a server gives (open, supported, refused) and the month each case was sent.
"""

import base64
import hashlib
import hmac
import os
import secrets
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..audit.models import AuditEvent
from ..auth.models import Fund
from ..cases import documents
from ..cases.access import can_see, check_staff
from ..cases.models import (
    Application,
    ApplicationStatus,
    Consent,
    ConsentKind,
    Dependant,
    Document,
    DocumentKind,
    Urgency,
)
from ..cases.services import case_rows, network_identity
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.support import Category
from ..reviews import network_check
from ..reviews.models import Recommendation, Review, RiskLevel
from . import keys, packets
from . import referrals as services
from .models import Referral, ReferralStatus

#: What a packet file is called when downloaded: the kind and an opaque id, nothing more.
SUFFIX = ".hrdp"
#: How long a checked packet waits, encrypted, for its importer to confirm the preview.
HOLD_MINUTES = 30
#: The answers that travel with a referral that shares them.
ANSWER_FIELDS = ("defender_work", "threat", "urgency_reason", "other_funders")


class ExchangeError(ValueError):
    """A packet step the rules refuse, in words for the page."""


# Referral out -------------------------------------------------------------------------


def _referring(actor, referral):
    if (
        actor.fund_id != referral.from_fund_id
        or actor.role not in services.REFERRAL_ROLES
        or not can_see(referral.application, actor)
    ):
        raise ExchangeError(_l("Only the referring fund's reviewers and managers on the case."))
    if not referral.to_fund.elsewhere:
        raise ExchangeError(_l("This referral is to a member fund of this server: no packet."))


def _answers(application):
    answers = {
        "defender_name": application.defender_name,
        "country": application.country,
        "region": application.region,
        "gender": application.gender.value if application.gender else None,
        "dependants_count": application.dependants_count or 0,
        "details": application.details or {},
        "dependants": [
            {"age": d.age, "relation": d.relation, "needs": d.needs} for d in application.dependants
        ],
    }
    for name in ANSWER_FIELDS:
        answers[name] = getattr(application, name)
    return answers


def referral_packet(actor, referral):
    """The referral packet of ``referral`` to a partner fund: (bytes, file name). Only the
    parts shared travel; the defender's consent to referral must still stand."""
    _referring(actor, referral)
    if referral.status != ReferralStatus.PENDING:
        raise ExchangeError(_l("Only a referral waiting for an answer is sent as a packet."))
    application = referral.application
    if not services.consent_stands(application):
        raise ExchangeError(
            _l("The defender withdrew consent to referral: nothing more is shared.")
        )
    shared = [
        name
        for name, on in (
            ("answers", referral.share_answers),
            ("documents", referral.share_documents),
            ("assessment", referral.share_assessment),
        )
        if on
    ]
    attached = []
    if referral.share_documents:
        rows = [
            d for d in case_rows(Document, application) if d.kind != DocumentKind.PROOF_OF_PAYMENT
        ]
        if len(rows) > packets.DOCUMENTS_MAX:
            raise ExchangeError(
                _l("A packet carries %(n)d documents at most.", n=packets.DOCUMENTS_MAX)
            )
        attached = [
            {
                "kind": d.kind.value,
                "name": d.filename,
                "type": d.content_type,
                "data": base64.b64encode(documents.read_document(d)).decode(),
            }
            for d in rows
        ]
    assessment = []
    if referral.share_assessment:
        assessment = [
            {
                "risk": r.risk_level.value,
                "recommendation": r.recommendation.value,
                "text": r.assessment,
            }
            for r in case_rows(Review, application)
        ]
    body = {
        "referral": referral.uid,
        "category": referral.category.value,
        "months": None
        if referral.months_from is None
        else [referral.months_from, referral.months_to],
        "amount": str(referral.amount),
        "currency": referral.currency,
        "urgency": application.urgency.value,
        "reason": referral.reason,
        "answer_by": referral.answer_by.isoformat(),
        "shared": shared,
        "answers": _answers(application) if referral.share_answers else None,
        "documents": attached,
        "assessment": assessment,
    }
    data = _sealed(packets.REFERRAL, body, referral.from_fund, referral.to_fund)
    if len(data) > current_app.config["HRDFUND_MAX_PACKET_BYTES"]:
        raise ExchangeError(
            _l("The documents are too large for one packet: refer again sharing fewer.")
        )
    audit.record(
        "referral.packet_made",
        application,
        actor=actor,
        referral=referral.uid,
        to_fund=referral.to_fund_id,
        shared=shared,
        size=len(data),
    )
    return data, f"referral-{referral.uid}{SUFFIX}"


def _sealed(kind, body, from_fund, to_fund):
    try:
        return packets.seal_packet(kind, body, from_fund, to_fund)
    except keys.PartnerError as exc:
        raise ExchangeError(str(exc)) from None


def answer_packet(actor, referral):
    """The answer packet of a referral from a partner fund on another server, answered by
    the actor's fund: accepted, declined with its reason, or, once the fund's own case for
    the part is approved, supported for the months asked."""
    if actor.fund_id != referral.to_fund_id or actor.role not in services.REFERRAL_ROLES:
        raise ExchangeError(_l("Only the reviewers and managers of the fund asked answer."))
    if not referral.from_fund.elsewhere or not referral.remote_uid:
        raise ExchangeError(_l("This referral came from a member fund of this server."))
    if referral.status not in (ReferralStatus.ACCEPTED, ReferralStatus.DECLINED):
        raise ExchangeError(_l("Answer the referral first."))
    body = {"referral": referral.remote_uid, "status": referral.status.value, "reason": None}
    body["months"] = None
    if referral.status == ReferralStatus.DECLINED:
        body["reason"] = referral.decline_reason
    elif referral.linked_application is not None and referral.linked_application.status in (
        ApplicationStatus.APPROVED,
        ApplicationStatus.PAYING,
        ApplicationStatus.COMPLETED,
    ):
        body["status"] = "supported"
        if referral.months_from is not None:
            body["months"] = [referral.months_from, referral.months_to]
    data = _sealed(packets.ANSWER, body, referral.to_fund, referral.from_fund)
    audit.record(
        "referral.answer_packet_made",
        referral,
        actor=actor,
        fund=referral.to_fund_id,
        status=body["status"],
    )
    return data, f"answer-{referral.uid}{SUFFIX}"


# Holding a checked packet for its preview ---------------------------------------------


def _holds():
    path = os.path.join(current_app.instance_path, "packet_holds")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _hold_aad(user, token):
    return f"packet-hold\x1f{user.uid}\x1f{token}".encode()


def hold_packet(data, user):
    """Keep ``data``, encrypted under the instance's key and bound to ``user``, while they
    read its preview; returns the random token that names it (no personal data)."""
    folder = _holds()
    now = time.time()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if now - os.path.getmtime(path) > HOLD_MINUTES * 60:
                os.unlink(path)
        except FileNotFoundError:
            pass
    token = secrets.token_hex(16)
    fd = os.open(os.path.join(folder, token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cipher().encrypt_bytes(bytes(data), _hold_aad(user, token)))
    return token


def held_packet(token, user):
    """The packet ``user`` holds under ``token``, or None (expired, another user's, gone)."""
    if not isinstance(token, str) or len(token) != 32 or not token.isalnum():
        return None
    path = os.path.join(_holds(), token)
    try:
        if time.time() - os.path.getmtime(path) > HOLD_MINUTES * 60:
            os.unlink(path)
            return None
        with open(path, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError:
        return None
    try:
        return cipher().decrypt_bytes(blob, _hold_aad(user, token))
    except ValueError:
        return None


def drop_hold(token):
    if isinstance(token, str) and len(token) == 32 and token.isalnum():
        try:
            os.unlink(os.path.join(_holds(), token))
        except FileNotFoundError:
            pass


# Import -------------------------------------------------------------------------------


def may_import(user):
    return user.fund_id is not None and user.role in services.REFERRAL_ROLES


def check_packet(data, fund):
    """Open ``data`` for ``fund`` (every check, nothing stored) and, for a referral or an
    answer, check it fits what the fund holds: ``Opened`` or ExchangeError/PacketRefused."""
    opened = packets.open_packet(data, fund)
    if opened.kind == packets.REFERRAL:
        if db.session.execute(
            sa.select(Referral.id).where(
                Referral.from_fund_id == opened.partner.id,
                Referral.remote_uid == opened.body["referral"],
            )
        ).first():
            raise ExchangeError(_l("This referral was imported already."))
    elif opened.kind == packets.ANSWER:
        answered_referral(opened)
    elif opened.kind == packets.DUPLICATE_ANSWER:
        asked_case(opened)
    return opened


def answered_referral(opened):
    referral = db.session.execute(
        sa.select(Referral).where(
            Referral.uid == opened.body["referral"],
            Referral.from_fund_id == opened.fund.id,
            Referral.to_fund_id == opened.partner.id,
        )
    ).scalar_one_or_none()
    if referral is None:
        raise ExchangeError(_l("This answer names no referral of your fund to this partner."))
    status = opened.body["status"]
    if status == "supported":
        if referral.status not in (ReferralStatus.PENDING, ReferralStatus.ACCEPTED):
            raise ExchangeError(_l("This referral was not accepted: no support to record."))
    elif referral.status != ReferralStatus.PENDING:
        raise ExchangeError(_l("This referral was answered already, or withdrawn."))
    return referral


def check_and_import(actor, data):
    """Check ``data`` for the actor's fund (every check, again) and import it: (kind, what
    :func:`import_packet` returns)."""
    if not may_import(actor):
        raise ExchangeError(_l("Only the fund's reviewers and managers import its packets."))
    opened = check_packet(data, fund_of(actor))
    return opened.kind, import_packet(actor, opened)


def import_packet(actor, opened):
    """Store what the checked packet ``opened`` brings to the actor's fund, and record its
    id so it is never imported again. Returns what it made or changed: the referral (a
    referral or an answer), the answer packet's bytes and name (a duplicate check asked),
    or the matches (a duplicate check answered)."""
    if not may_import(actor) or actor.fund_id != opened.fund.id:
        raise ExchangeError(_l("Only the fund's reviewers and managers import its packets."))
    packets.mark_imported(opened, actor)
    if opened.kind == packets.REFERRAL:
        return _import_referral(actor, opened)
    if opened.kind == packets.ANSWER:
        return _import_answer(actor, opened)
    if opened.kind == packets.DUPLICATE_ASK:
        return _answer_ask(actor, opened)
    return _import_duplicate_answer(actor, opened)


def _import_referral(actor, opened):
    body = opened.body
    if db.session.execute(
        sa.select(Referral.id).where(
            Referral.from_fund_id == opened.partner.id,
            Referral.remote_uid == body["referral"],
        )
    ).first():
        raise ExchangeError(_l("This referral was imported already."))
    now = utcnow()
    source = Application(
        fund_id=opened.partner.id,
        category=Category(body["category"]),
        status=ApplicationStatus.SUBMITTED,
        urgency=Urgency(body["urgency"]),
        currency=body["currency"],
        amount_requested=body["amount"],
        submitted_at=now,
    )
    source.fund = opened.partner
    db.session.add(source)
    db.session.flush()
    answers = body["answers"]
    if answers is not None:
        source.defender_name = answers["defender_name"]
        for name in ANSWER_FIELDS:
            setattr(source, name, answers[name])
        source.details = answers["details"]
        source.country, source.region = answers["country"], answers["region"]
        source.gender = answers["gender"]
        source.dependants_count = answers["dependants_count"]
        for item in answers["dependants"]:
            dependant = Dependant(application_id=source.id, age=item["age"])
            db.session.add(dependant)
            db.session.flush()
            dependant.relation, dependant.needs = item["relation"], item["needs"]
    # The referring fund attests the defender's consent: it sends nothing without it.
    db.session.add(
        Consent(
            application_id=source.id,
            kind=ConsentKind.REFERRAL,
            method="packet",
            recorded_by_id=actor.id,
            given_at=now,
        )
    )
    for item in body["documents"]:
        documents.store_document(
            documents.CleanUpload(item["data"], item["type"], item["name"]),
            source,
            DocumentKind(item["kind"]),
            actor,
            fund=actor.fund_id,
        )
    for item in body["assessment"]:
        review = Review(
            application_id=source.id,
            reviewer_id=actor.id,
            risk_level=RiskLevel(item["risk"]),
            recommendation=Recommendation(item["recommendation"]),
            currency=body["currency"],
        )
        db.session.add(review)
        db.session.flush()
        review.assessment = item["text"]
    months = body["months"] or (None, None)
    referral = Referral(
        application_id=source.id,
        from_fund_id=opened.partner.id,
        to_fund_id=opened.fund.id,
        category=Category(body["category"]),
        months_from=months[0],
        months_to=months[1],
        amount=body["amount"],
        currency=body["currency"],
        share_answers="answers" in body["shared"],
        share_documents="documents" in body["shared"],
        share_assessment="assessment" in body["shared"],
        answer_by=body["answer_by"],
        created_by_id=actor.id,
        remote_uid=body["referral"],
    )
    db.session.add(referral)
    db.session.flush()
    referral.reason = body["reason"]
    audit.record(
        "referral.received",
        referral,
        actor=actor,
        fund=opened.fund.id,
        from_fund=opened.partner.id,
        category=body["category"],
        shared=body["shared"],
        packet=opened.packet_id,
    )
    return referral


def _import_answer(actor, opened):
    referral = answered_referral(opened)
    body = opened.body
    referral = db.session.get(Referral, referral.id)
    action = {
        "accepted": "referral.accepted",
        "declined": "referral.declined",
        "supported": "referral.supported",
    }[body["status"]]
    if body["status"] == "declined":
        referral.status = ReferralStatus.DECLINED
        referral.decline_reason = body["reason"]
    else:
        referral.status = ReferralStatus.ACCEPTED
    if referral.answered_at is None:
        referral.answered_at = utcnow()
    if body["status"] == "supported" and body["months"] is not None:
        referral.covered_from, referral.covered_to = body["months"]
    db.session.flush()
    audit.record(
        action,
        referral.application,
        actor=actor,
        fund=opened.fund.id,
        referral=referral.uid,
        packet=opened.packet_id,
    )
    return referral


# The duplicate check across servers ---------------------------------------------------


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


def _window_start(application):
    since = (application.submitted_at or utcnow()) - timedelta(
        days=current_app.config["DUPLICATE_WINDOW_DAYS"]
    )
    return since.date().replace(day=1)


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
        "since": _window_start(application).strftime("%Y-%m"),
    }
    data = _sealed(packets.DUPLICATE_ASK, body, application.fund, partner)
    audit.record("network.asked_partner", application, actor=actor, partner=partner.id, ask=ask)
    return data, f"check-{ask}{SUFFIX}"


def _answer_ask(actor, opened):
    """Match the ask against the importing fund's own cases, as the check inside a server
    matches, and seal the answer: one word and a month per case."""
    body = opened.body
    fund = opened.fund
    key = pair_key(opened.own_key, opened.sender_key)
    start = datetime.strptime(body["since"] + "-01", "%Y-%m-%d")
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
    data = _sealed(
        packets.DUPLICATE_ANSWER, {"ask": body["ask"], "matches": matches}, fund, opened.partner
    )
    return data, f"check-answer-{body['ask']}{SUFFIX}"


def asked_case(opened):
    """The case of the fund's own ask that ``opened`` answers."""
    row = db.session.execute(
        sa.select(AuditEvent.object_id)
        .where(
            AuditEvent.action == "network.asked_partner",
            AuditEvent.object_type == "applications",
            AuditEvent.payload.contains(opened.body["ask"]),
        )
        .limit(1)
    ).first()
    case = None
    if row is not None:
        case = db.session.execute(
            sa.select(Application).where(
                Application.uid == row.object_id, Application.fund_id == opened.fund.id
            )
        ).scalar_one_or_none()
    if case is None:
        raise ExchangeError(_l("This answer names no check your fund asked."))
    return case


def _import_duplicate_answer(actor, opened):
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


def partner_funds_of(fund):
    """The partner funds on other servers ``fund`` registered, with a key."""
    return [partner for partner, key in keys.partners(fund) if key is not None]


def fund_of(user):
    return db.session.get(Fund, user.fund_id)
