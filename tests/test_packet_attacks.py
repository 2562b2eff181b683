"""Packets made by an attacker rather than by hrdfund: a header nested deep enough to
crash a parser, a document whose name carries folders or markup, a duplicate-check ask
probing many names at once, an answer to a duplicate check from a fund that was not
asked, and a list where a body holds a choice. Each is refused with a reason, or made
harmless, and never a crash."""

import base64
import hashlib
import io
import json
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Application, ApplicationStatus, Document
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.network import exchange, keys, packets, partner_checks
from tests.conftest import signed_in
from tests.exchange_world import (
    CANARY_NAME,
    canary_case,
    make_side,
    on,
    register,
    servers_fixture,  # noqa: F401  (the fixture ``servers``)
)
from tests.test_packets import _ask, _import, _join, _parts, _refer, _refused


@pytest.mark.parametrize("nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1}"])
def test_a_header_nested_too_deep_is_refused_not_a_crash(servers, nested):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    _header, body, signature = _parts(data)
    _refused(b, _join([nested, body, signature]), packets.FORMAT)


def test_a_documents_name_from_a_packet_keeps_no_folder_markup_or_hidden_characters(servers):
    a, b = servers["a"], servers["b"]
    with on(a.server):
        case = db.session.execute(
            sa.select(Application).where(Application.uid == servers["case"])
        ).scalar_one()
        document = db.session.execute(
            sa.select(Document).where(Document.application_id == case.id)
        ).scalar_one()
        document.filename = '../../etc/<img src=x onerror="1">quote\u202efdp.exe'
        db.session.commit()
    _kind, referral_uid = _import(b, _refer(a, servers["case"])[1])
    with on(b.server):
        names = [d.filename for d in db.session.execute(sa.select(Document)).scalars()]
    assert len(names) == 1
    name = names[0]
    assert "/" not in name and "<" not in name and '"' not in name and "\u202e" not in name
    assert name.endswith(".pdf")


def test_a_duplicate_check_ask_carries_one_keyed_hash_only(servers):
    a, b = servers["a"], servers["b"]
    probes = [hashlib.sha256(f"guess {n}".encode()).hexdigest() for n in range(2)]
    body = {"ask": "ab" * 10, "hashes": probes, "category": "medical", "since": "2026-01"}
    with on(a.server):
        data = packets.seal_packet(packets.DUPLICATE_ASK, body, a.fund(), a.partner())
    _refused(b, data, packets.INVALID)


@pytest.mark.parametrize(("ended_days_ago", "told"), [(700, False), (30, True)])
def test_a_duplicate_check_looks_back_no_further_than_the_answering_funds_window(
    servers, ended_days_ago, told
):
    """The asker names the month its question looks back to; one naming January 2000 would
    learn whether a defender was supported at any time. The answering fund looks back no
    further than its own window from today, and its preview says from when."""
    a, b = servers["a"], servers["b"]
    theirs = canary_case(b)
    with on(b.server):
        case = db.session.execute(sa.select(Application).where(Application.uid == theirs)).one()[0]
        ended = utcnow() - timedelta(days=ended_days_ago)
        case.submitted_at = ended - timedelta(days=60)
        case.status, case.closed_at = ApplicationStatus.COMPLETED, ended
        db.session.commit()
    with on(a.server):
        key = partner_checks.pair_key(keys.current_key(a.fund()), keys.current_key(a.partner()))
        body = {
            "ask": "ab" * 10,
            "hashes": [partner_checks.pair_hash(key, CANARY_NAME, "KE")],
            "category": "medical",
            "since": "2000-01",
        }
        data = packets.seal_packet(packets.DUPLICATE_ASK, body, a.fund(), a.partner())
    with on(b.server):
        client = signed_in(b.server, b.user("reviewer"))
        window = date.today() - timedelta(days=b.server.config["DUPLICATE_WINDOW_DAYS"])
        preview = client.post(
            "/network/packets", data={"packet-file": (io.BytesIO(data), "check.hrdp")}
        )
        assert preview.status_code == 200
        text = " ".join(preview.get_data(as_text=True).split())
        assert f"open or ended since {window:%B %Y}" in text
        assert "2000" not in text
        _kind, (reply, _name) = exchange.check_and_import(b.user("reviewer"), data)
        db.session.commit()
        matched = (
            db.session.execute(
                sa.select(AuditEvent.object_id).where(AuditEvent.action == "network.matched")
            )
            .scalars()
            .all()
        )
    assert matched == ([theirs] if told else [])
    with on(a.server):
        answer = packets.open_packet(reply, a.fund())
    assert bool(answer.body["matches"]) is told


def test_only_the_partner_asked_answers_a_duplicate_check_and_only_once(servers):
    a, b = servers["a"], servers["b"]
    # A third fund, on B's server, is A's partner too: it did not get A's ask.
    ask, name, _index = _ask(a, servers["case"])
    c = make_side(b.server, "Third Fund", "c")
    register(a, c)
    register(c, a, name="Local Fund at C")
    ask_id = name.removeprefix("check-").removesuffix(".hrdp")
    forged = {"ask": ask_id, "matches": [{"word": "refused", "month": "2026-01"}]}
    with on(c.server):
        data = packets.seal_packet(packets.DUPLICATE_ANSWER, forged, c.fund(), c.partner())
    with on(a.server):
        with pytest.raises(exchange.ExchangeError):
            exchange.check_and_import(a.user("reviewer"), data)
        db.session.rollback()
    # B's real answer is taken once; a second answer to the same ask is refused.
    _kind, (reply, _name) = _import(b, ask)
    _import(a, reply)
    again = {"ask": ask_id, "matches": [{"word": "supported", "month": "2026-01"}]}
    with on(b.server):
        partner = db.session.execute(
            sa.select(packets.Fund).where(packets.Fund.partner_of_id == b.fund().id)
        ).scalar_one()
        second = packets.seal_packet(packets.DUPLICATE_ANSWER, again, b.fund(), partner)
    with on(a.server):
        with pytest.raises(exchange.ExchangeError):
            exchange.check_and_import(a.user("reviewer"), second)
        db.session.rollback()


def _referral_body(**changes):
    body = {
        "referral": "cd" * 10,
        "category": "medical",
        "months": None,
        "amount": "100.00",
        "currency": "EUR",
        "urgency": "urgent",
        "reason": "Our pool is spent.",
        "answer_by": "2026-12-31",
        "shared": [],
        "answers": None,
        "documents": [],
        "assessment": [],
    }
    return {**body, **changes}


@pytest.mark.parametrize(
    "kind, body",
    [
        (packets.REFERRAL, _referral_body(category=["medical"])),
        (packets.REFERRAL, _referral_body(urgency={"urgent": 1})),
        (packets.REFERRAL, _referral_body(shared=[["answers"]])),
        (
            packets.REFERRAL,
            _referral_body(shared=["answers"], answers={"defender_name": "X", "country": ["KE"]}),
        ),
        (
            packets.REFERRAL,
            _referral_body(
                shared=["documents"],
                documents=[{"kind": "quote", "name": "a.pdf", "type": [], "data": "JVBERi0="}],
            ),
        ),
        (
            packets.DUPLICATE_ASK,
            {"ask": "ab" * 10, "hashes": ["0" * 64], "category": [], "since": "2026-01"},
        ),
        (
            packets.DUPLICATE_ANSWER,
            {"ask": "ab" * 10, "matches": [{"word": ["open"], "month": "2026-01"}]},
        ),
    ],
)
def test_a_list_where_a_choice_belongs_is_refused_not_a_crash(servers, kind, body):
    a, b = servers["a"], servers["b"]
    with on(a.server):
        data = packets.seal_packet(kind, body, a.fund(), a.partner())
    _refused(b, data, packets.INVALID)


def test_a_referral_asking_cents_of_a_currency_without_them_is_refused(servers):
    """A partner server's referral for 1,500.50 CFA francs is refused as the form refuses
    it: no case here asks for half a franc."""
    a, b = servers["a"], servers["b"]
    with on(a.server):
        data = packets.seal_packet(
            packets.REFERRAL,
            _referral_body(amount="1500.50", currency="XOF"),
            a.fund(),
            a.partner(),
        )
    _refused(b, data, packets.INVALID)


def test_a_month_of_year_zero_is_refused_not_a_crash(servers):
    a, b = servers["a"], servers["b"]
    body = {"ask": "ab" * 10, "hashes": ["0" * 64], "category": "medical", "since": "0000-01"}
    with on(a.server):
        data = packets.seal_packet(packets.DUPLICATE_ASK, body, a.fund(), a.partner())
    _refused(b, data, packets.INVALID)


def test_a_partner_key_said_to_be_in_other_hands_signs_nothing_from_then_on(servers):
    a, b = servers["a"], servers["b"]
    # A packet made with A's key before A's server was seized: the thief holds that key.
    _uid, stolen, _ = _refer(a, servers["case"])
    with on(a.server):
        new = keys.make_keys(a.fund())
        line, printed = keys.key_line(a.fund(), new), new.fingerprint
        db.session.commit()
    with on(b.server):
        keys.register_partner(
            b.user("admin"), b.fund(), "", line, keys.spoken(printed), revoke=True
        )
        db.session.commit()
        actions = db.session.execute(
            sa.select(AuditEvent.action).where(AuditEvent.action.like("partner.%"))
        ).scalars()
        assert "partner.key_revoked" in set(actions)
    _refused(b, stolen, packets.UNKNOWN_KEY)


def test_the_partners_page_offers_to_refuse_an_old_key_at_once(servers):
    a, b = servers["a"], servers["b"]
    _uid, stolen, _ = _refer(a, servers["case"])
    with on(a.server):
        new = keys.make_keys(a.fund())
        line, printed = keys.key_line(a.fund(), new), new.fingerprint
        db.session.commit()
    with on(b.server):
        client = signed_in(b.server, b.user("admin"))
        assert 'name="partner-revoke"' in client.get("/fund/partners").get_data(as_text=True)
        response = client.post(
            "/fund/partners",
            data={
                "partner-name": "",
                "partner-key_line": line,
                "partner-fingerprint": keys.spoken(printed),
                "partner-revoke": "y",
            },
        )
        assert response.status_code == 302
    _refused(b, stolen, packets.UNKNOWN_KEY)


def _jpeg_with_gps():
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Camera canary"  # Make
    exif.get_ifd(0x8825)[2] = (1.0, 17.0, 42.0)  # GPSLatitude
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_document_from_a_packet_is_cleaned_as_an_upload_is(servers):
    from hrdfund.cases import documents

    a, b = servers["a"], servers["b"]
    photo = _jpeg_with_gps()
    assert b"Exif" in photo and b"Camera canary" in photo
    with on(a.server):
        # A partner's server that does not clean what it sends (or one in other hands).
        case = db.session.execute(
            sa.select(Application).where(Application.uid == servers["case"])
        ).scalar_one()
        document = db.session.execute(
            sa.select(Document).where(Document.application_id == case.id)
        ).scalar_one()
        documents.store_document(
            documents.CleanUpload(photo, "image/jpeg", "photo.jpg"),
            case,
            document.kind,
            a.user("reviewer"),
        )
        db.session.commit()
    _import(b, _refer(a, servers["case"])[1])
    with on(b.server):
        kept = [
            documents.read_document(d)
            for d in db.session.execute(sa.select(Document)).scalars()
            if d.content_type == "image/jpeg"
        ]
    assert len(kept) == 1
    assert b"Exif" not in kept[0] and b"Camera canary" not in kept[0]


def test_a_headers_time_with_an_offset_is_read_in_utc():
    """A partner's server may write its packets' time with its own offset: the time an
    answer was made is kept in UTC, as every time is."""
    header = {
        "version": packets.VERSION,
        "packet": "0" * 32,
        "kind": packets.ANSWER,
        "created": "2026-12-06T09:30:00+14:00",
        "from": {"fund": "a" * 20, "key": "b" * 64},
        "to": {"fund": "c" * 20, "key": "d" * 64},
        "ephemeral": base64.b64encode(bytes(32)).decode(),
        "nonce": base64.b64encode(bytes(12)).decode(),
    }
    _header, created, _ephemeral, _nonce = packets._header(json.dumps(header).encode())
    assert created == datetime(2026, 12, 5, 19, 30)
