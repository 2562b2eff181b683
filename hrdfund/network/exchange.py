"""Referrals with partner funds on other servers, by packet, and the import of every kind
of packet.

The referring fund refers a case to a partner fund as to a member fund (``refer_case``),
then downloads the referral packet: the shared parts only, documents included, encrypted
to the partner's key and signed with the fund's. The partner imports it: every check of
``packets.open_packet`` passes first, a preview shows what arrives, and accepting the
import makes the referral in its queue, its case's shared parts held by a record of the
referring fund (a case of that partner fund record, which no one opens but through the
referral). The fund asked answers as it answers any referral, and downloads the answer
packet; the referring fund imports it and its referral takes the answer. The duplicate
check with a partner fund is ``partner_checks``; a packet waiting for its preview,
``packet_holds``.
"""

import base64
import io

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Fund
from ..cases import cleaning, documents
from ..cases.access import can_see
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
from ..cases.services import case_rows
from ..core import geo
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from ..core.support import Category
from ..reviews.models import Recommendation, Review, RiskLevel
from . import keys, packets, partner_checks
from . import referrals as services
from .models import Referral, ReferralStatus

#: What a packet file is called when downloaded: the kind and an opaque id, nothing more.
SUFFIX = ".hrdp"
#: The answers that travel with a referral that shares them.
ANSWER_FIELDS = ("defender_work", "threat", "urgency_reason", "other_funders")


ExchangeError = packets.ExchangeError


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
    data = packets.seal_for(packets.REFERRAL, body, referral.from_fund, referral.to_fund)
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
    data = packets.seal_for(packets.ANSWER, body, referral.to_fund, referral.from_fund)
    audit.record(
        "referral.answer_packet_made",
        referral,
        actor=actor,
        fund=referral.to_fund_id,
        status=body["status"],
    )
    return data, f"answer-{referral.uid}{SUFFIX}"


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
        partner_checks.asked_case(opened)
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
        months = opened.body["months"]
        asked = None if referral.months_from is None else (referral.months_from, referral.months_to)
        if (months is None) != (asked is None) or (
            months is not None and (months[0] < asked[0] or months[1] > asked[1])
        ):
            raise ExchangeError(_l("This answer supports months the referral did not ask for."))
        if referral.supported_at is not None and months != _covered(referral):
            raise ExchangeError(
                _l("This referral's support was recorded already, for other months.")
            )
    elif referral.status != ReferralStatus.PENDING:
        raise ExchangeError(_l("This referral was answered already, or withdrawn."))
    return referral


def clean_documents(opened):
    """The documents of a checked referral packet cleaned as uploads are (images
    re-encoded without their metadata, PDFs rewritten without scripts, attached files or
    document information), or ExchangeError naming the one that cannot be. Slow work on
    what a partner sent: call it with no write transaction open."""
    if opened.kind != packets.REFERRAL:
        return []
    out = []
    for item in opened.body["documents"]:
        try:
            out.append(cleaning.clean_upload(io.BytesIO(item["data"]), item["name"]))
        except documents.DocumentError as exc:
            raise ExchangeError(
                _l("A document in this packet cannot be kept: %(problem)s", problem=str(exc))
            ) from None
    return out


def check_and_import(actor, data, cleaned=None):
    """Check ``data`` for the actor's fund (every check, again) and import it: (kind, what
    :func:`import_packet` returns). ``cleaned`` are its documents as
    :func:`clean_documents` gave them, outside the write transaction; without them they
    are cleaned here."""
    if not may_import(actor):
        raise ExchangeError(_l("Only the fund's reviewers and managers import its packets."))
    opened = check_packet(data, fund_of(actor))
    if cleaned is None:
        cleaned = clean_documents(opened)
    return opened.kind, import_packet(actor, opened, cleaned)


def import_packet(actor, opened, cleaned=()):
    """Store what the checked packet ``opened`` brings to the actor's fund, and record its
    id so it is never imported again. Returns what it made or changed: the referral (a
    referral or an answer), the answer packet's bytes and name (a duplicate check asked),
    or the matches (a duplicate check answered). ``cleaned``: a referral's documents, as
    :func:`clean_documents` gave them."""
    if not may_import(actor) or actor.fund_id != opened.fund.id:
        raise ExchangeError(_l("Only the fund's reviewers and managers import its packets."))
    packets.mark_imported(opened, actor)
    if opened.kind == packets.REFERRAL:
        return _import_referral(actor, opened, cleaned)
    if opened.kind == packets.ANSWER:
        return _import_answer(actor, opened)
    if opened.kind == packets.DUPLICATE_ASK:
        return partner_checks.answer_ask(actor, opened)
    return partner_checks.import_duplicate_answer(actor, opened)


def _import_referral(actor, opened, cleaned):
    body = opened.body
    if len(cleaned) != len(body["documents"]):
        raise ExchangeError(_l("The documents of this packet were not checked: import it again."))
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
        # The region follows from the country by this server's table: a partner's older
        # table may have none for it (Syria, Ecuador) or name one this server does not.
        source.country = answers["country"]
        source.region = geo.region_of(answers["country"]) or answers["region"]
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
    for item, upload in zip(body["documents"], cleaned, strict=True):
        if upload.content_type != item["type"]:
            raise ExchangeError(
                _l("The documents of this packet were not checked: import it again.")
            )
        documents.store_document(
            upload,
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


def _covered(referral):
    return None if referral.covered_from is None else (referral.covered_from, referral.covered_to)


def _import_answer(actor, opened):
    # Read afresh under its lock, then checked again: two answers imported at once take turns.
    referral = lock_row(Referral, answered_referral(opened).id)
    answered_referral(opened)
    body = opened.body
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
    now = utcnow()
    if referral.answered_at is None:
        referral.answered_at = now
        # When the partner made its answer, for the time to an answer (the packet may have
        # travelled for days): as its signed header says, neither before the referral was
        # made nor after now, for the clocks of two servers differ.
        referral.answer_made_at = min(max(opened.created, referral.created_at), now)
    if body["status"] == "supported" and referral.supported_at is None:
        referral.supported_at = now
        if body["months"] is not None:
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


def partner_funds_of(fund):
    """The partner funds on other servers ``fund`` registered, with a key."""
    return [partner for partner, key in keys.partners(fund) if key is not None]


def fund_of(user):
    return db.session.get(Fund, user.fund_id)
