"""Packets between funds on two servers: a referral travels from fund A's server to fund B's
as a signed, encrypted file, B imports it into its queue and answers, and the answer
packet updates A's referral. A packet altered, replayed, addressed to another fund, signed
by an unknown key or not signed at all is refused with its reason and stores nothing; no
canary of the case is in a packet's bytes, and only the fund addressed opens it."""

import struct
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from hrdfund.audit.models import AuditEvent
from hrdfund.cases.models import Application, ApplicationStatus, Document
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.network import exchange, keys, packets, partner_checks
from hrdfund.network import referrals as services
from hrdfund.network.models import FundKey, ImportedPacket, Referral, ReferralStatus
from hrdfund.reports import network as network_report
from hrdfund.reviews.models import Review
from tests.conftest import signed_in
from tests.exchange_world import (
    CANARIES,
    CANARY_DOCUMENT,
    CANARY_NAME,
    canary_case,
    count,
    make_side,
    on,
    register,
    servers_fixture,  # noqa: F401  (the fixture ``servers``)
)

STORED = (Referral, Application, Document, Review, ImportedPacket, AuditEvent)


def _refer(a, case_uid, shares=("answers", "documents", "assessment"), months=(1, 6)):
    """A refers the case to its partner B (the medical part, for ``months``) and downloads
    the referral packet."""
    with on(a.server):
        case = db.session.execute(
            sa.select(Application).where(Application.uid == case_uid)
        ).scalar_one()
        referral = services.refer_case(
            a.user("reviewer"),
            case,
            a.partner(),
            services.Part(Category.MEDICAL, *months, Decimal("3000.00"), "EUR"),
            shares,
            "Our pool is spent; the surgery needs another fund.",
            date.today() + timedelta(days=7),
        )
        db.session.commit()
        data, name = exchange.referral_packet(a.user("reviewer"), referral)
        db.session.commit()
        return referral.uid, data, name


def _import(side, data, role="reviewer"):
    with on(side.server):
        kind, value = exchange.check_and_import(side.user(role), data)
        db.session.commit()
        return kind, getattr(value, "uid", value)


def test_a_referral_travels_by_packet_and_the_answer_comes_back(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, name = _refer(a, servers["case"])
    assert name == f"referral-{referral_uid}.hrdp"
    kind, imported_uid = _import(b, data)
    assert kind == packets.REFERRAL
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        assert imported.from_fund.name == "Local Fund" and imported.to_fund_id == b.fund().id
        assert imported.remote_uid == referral_uid
        assert (imported.months_from, imported.months_to, imported.amount) == (1, 6, Decimal(3000))
        # B's staff open the shared parts as from a member fund.
        assert services.shared_parts(imported, b.user("manager")) == {
            "referral",
            "answers",
            "documents",
            "assessment",
        }
        assert imported.application.defender_name == CANARY_NAME
        assert services.waiting_count(b.user("manager")) == 1
        services.accept_referral(b.user("manager"), imported)
        db.session.commit()
        answer, answer_name = exchange.answer_packet(b.user("manager"), imported)
        db.session.commit()
        assert imported.linked_application.fund_id == b.fund().id
    assert answer_name.endswith(".hrdp") and CANARY_NAME.encode() not in answer
    kind, updated_uid = _import(a, answer)
    assert (kind, updated_uid) == (packets.ANSWER, referral_uid)
    with on(a.server):
        referral = db.session.execute(
            sa.select(Referral).where(Referral.uid == referral_uid)
        ).scalar_one()
        assert referral.status == ReferralStatus.ACCEPTED and referral.answered_at is not None


def test_a_declined_answer_carries_its_reason(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"], shares=())
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        assert imported.application.defender_name is None  # nothing shared, nothing sent
        services.decline_referral(b.user("reviewer"), imported, "Our medical pool is closed.")
        db.session.commit()
        answer, _ = exchange.answer_packet(b.user("reviewer"), imported)
        db.session.commit()
    _import(a, answer)
    with on(a.server):
        referral = db.session.execute(
            sa.select(Referral).where(Referral.uid == referral_uid)
        ).scalar_one()
        assert referral.status == ReferralStatus.DECLINED
        assert referral.decline_reason == "Our medical pool is closed."


def _parts(data):
    at, parts = len(packets.MAGIC), []
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        parts.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return parts


def _join(parts):
    return packets.MAGIC + b"".join(struct.pack(">I", len(p)) + p for p in parts)


def _flip(part, at):
    return part[:at] + bytes([part[at] ^ 1]) + part[at + 1 :]


def _refused(side, data, reason):
    """``data`` is refused at ``side`` with ``reason``, and nothing is stored there."""
    with on(side.server):
        before = count(*STORED)
        with pytest.raises(packets.PacketRefused) as refused:
            exchange.check_and_import(side.user("reviewer"), data)
        db.session.rollback()
        assert refused.value.reason == reason
        words = str(packets.REASONS[reason])
        if reason == packets.INVALID:
            assert str(refused.value).startswith(words.split("%")[0]), str(refused.value)
        else:
            assert str(refused.value) == words
        assert count(*STORED) == before


def test_an_altered_packet_is_refused_and_stores_nothing(servers):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    header, body, signature = _parts(data)
    _refused(b, _join([header, _flip(body, 40), signature]), packets.ALTERED)
    _refused(b, _join([header, body, _flip(signature, 3)]), packets.ALTERED)
    # A header changed in a way that still reads: the kind, the time it was made.
    changed = header.replace(b'"kind":"referral"', b'"kind":"answer"')
    assert changed != header
    _refused(b, _join([changed, body, signature]), packets.ALTERED)
    # Cut short, or not a packet at all.
    _refused(b, data[:-10], packets.FORMAT)
    _refused(b, b"%PDF-1.4 not a packet", packets.FORMAT)


def test_a_replayed_packet_is_refused_and_stores_nothing(servers):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    _import(b, data)
    _refused(b, data, packets.REPLAYED)


def test_a_packet_for_another_fund_is_refused_and_stores_nothing(servers, tmp_path):
    a, b = servers["a"], servers["b"]
    # A third fund on B's server, registered with A too: A's packet to B is not for it.
    c = make_side(b.server, "Third Fund", "c")
    register(c, a, name="Local Fund at C")
    _uid, data, _ = _refer(a, servers["case"])
    _refused(c, data, packets.ELSEWHERE)


def test_an_unknown_key_or_no_signature_is_refused_and_stores_nothing(servers):
    a, b = servers["a"], servers["b"]
    # A makes new keys and does not tell B: its packets are signed by a key B does not know.
    with on(a.server):
        keys.make_keys(a.fund())
        db.session.commit()
    _uid, data, _ = _refer(a, servers["case"])
    _refused(b, data, packets.UNKNOWN_KEY)
    header, body, _signature = _parts(data)
    _refused(b, _join([header, body]), packets.UNSIGNED)


def test_a_key_retired_still_opens_packets_addressed_to_it_for_a_while(servers):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    with on(b.server):
        keys.make_keys(b.fund())
        db.session.commit()
    _import(b, data)  # addressed to B's old key, retired today
    _uid, later, _ = _refer(a, canary_case(a, name="Another Defender"))
    with on(b.server):
        db.session.execute(
            sa.update(FundKey)
            .where(FundKey.fund_id == b.fund().id, FundKey.retired_at.is_not(None))
            .values(retired_at=db.func.now() - timedelta(days=FundKey.RETIRED_DAYS + 1))
        )
        db.session.commit()
    _refused(b, later, packets.OLD_KEY)


def test_nothing_in_a_packet_is_readable_without_the_receiving_funds_key(servers):
    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    for canary in CANARIES:
        for form in (canary.encode(), canary.encode("utf-16-le"), canary.upper().encode()):
            assert form not in data
    header, ciphertext, _signature = _parts(data)
    with on(b.server):
        opened = packets.open_packet(data, b.fund())
        # The fund addressed reads every canary...
        assert opened.body["answers"]["defender_name"] == CANARY_NAME
        assert CANARY_DOCUMENT.encode() in opened.body["documents"][0]["data"]
        own_key = keys.current_key(b.fund())
    # ...and another fund's private key opens nothing.
    c = make_side(b.server, "Third Fund", "c")
    with on(c.server):
        other_key = keys.current_key(c.fund())
        import json

        parsed = json.loads(header)
        ephemeral = packets.base64.b64decode(parsed["ephemeral"])
        nonce = packets.base64.b64decode(parsed["nonce"])
        for key in (other_key, own_key):
            private, _ = packets._private(key)
            shared = private.exchange(packets.X25519PublicKey.from_public_bytes(ephemeral))
            aead = packets.AESGCM(
                packets._derive(shared, ephemeral, own_key.encryption_public, "referral")
            )
            if key is other_key:
                with pytest.raises(InvalidTag):
                    aead.decrypt(nonce, ciphertext, header)
            else:
                assert CANARY_NAME.encode() in aead.decrypt(nonce, ciphertext, header)


def test_a_partner_key_is_registered_only_with_its_fingerprint(servers):
    a, b = servers["a"], servers["b"]
    c = make_side(b.server, "Third Fund", "c")
    with on(a.server):
        admin = a.user("admin")
        with pytest.raises(keys.PartnerError):
            keys.register_partner(admin, a.fund(), "Third", c.line, keys.spoken(b.fingerprint))
        with pytest.raises(keys.PartnerError):
            keys.register_partner(a.user("manager"), a.fund(), "Third", c.line, c.fingerprint)
        db.session.rollback()
        partner = keys.register_partner(admin, a.fund(), "Third", c.line, c.fingerprint)
        db.session.commit()
        assert partner.elsewhere and not partner.takes_applications
        from hrdfund.auth.funds import intake_fund, open_funds
        from hrdfund.network.funds import member_funds

        assert partner not in open_funds() and partner not in member_funds()
        assert intake_fund() is None or intake_fund().id != partner.id


def _ask(a, case_uid):
    with on(a.server):
        case = db.session.execute(
            sa.select(Application).where(Application.uid == case_uid)
        ).scalar_one()
        data, name = partner_checks.ask_partner(a.user("reviewer"), case, a.partner())
        db.session.commit()
        return data, name, case.network_key


def test_a_duplicate_check_across_servers_finds_the_same_defender_by_keyed_hash_only(servers):
    a, b = servers["a"], servers["b"]
    # The same defender asked B too, written another way (case, accents, spacing).
    theirs = canary_case(b, name="  canary ZAPHOD  Beeblébrox ")
    canary_case(b, name="Someone Else Entirely")
    ask, name, own_index = _ask(a, servers["case"])
    assert name.startswith("check-") and name.endswith(".hrdp")
    for canary in (*CANARIES, "Beeblebrox", "Zaphod"):
        assert canary.encode() not in ask and canary.lower().encode() not in ask
    with on(b.server):
        opened = packets.open_packet(ask, b.fund())
        # Only a keyed hash, the kind of support and a month travel...
        assert set(opened.body) == {"ask", "hashes", "category", "since"}
        assert opened.body["category"] == "medical" and len(opened.body["hashes"]) == 1
        # ...under the two funds' own key: neither server's own index of the defender.
        indexes = set(db.session.execute(sa.select(Application.network_key)).scalars()) | {
            own_index
        }
        assert not indexes & set(opened.body["hashes"])
        kind, (reply, _name) = exchange.check_and_import(b.user("reviewer"), ask)
        db.session.commit()
        assert kind == packets.DUPLICATE_ASK
        told = (
            db.session.execute(
                sa.select(AuditEvent.object_id).where(AuditEvent.action == "network.matched")
            )
            .scalars()
            .all()
        )
        assert told == [theirs]
    for canary in CANARIES:
        assert canary.encode() not in reply
    with on(a.server):
        kind, (case, matches) = exchange.check_and_import(a.user("reviewer"), reply)
        db.session.commit()
        assert kind == packets.DUPLICATE_ANSWER and case.uid == servers["case"]
        assert matches == [{"word": "open", "month": date.today().strftime("%Y-%m")}]


def test_a_duplicate_check_finds_nothing_for_another_defender(servers):
    a, b = servers["a"], servers["b"]
    canary_case(b, name="Someone Else Entirely")
    ask, _name, _index = _ask(a, servers["case"])
    _kind, (reply, _name) = _import(b, ask)
    with on(a.server):
        _kind, (_case, matches) = exchange.check_and_import(a.user("reviewer"), reply)
        db.session.commit()
        assert matches == []


def test_what_a_partner_shared_is_purged_with_the_retention_period(servers):
    from hrdfund import audit
    from hrdfund.ops import retention

    a, b = servers["a"], servers["b"]
    _uid, data, _ = _refer(a, servers["case"])
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        services.decline_referral(b.user("reviewer"), imported, "Not our region.")
        db.session.commit()
        source_id = imported.application_id
        assert retention.plan_purge().cases == []  # answered today: kept
        later = imported.answered_at + timedelta(days=retention.retention_days() + 1)
        plan = retention.plan_purge(now=later)
        assert plan.cases == [source_id]
        retention.purge(plan, now=later)
        db.session.expire_all()
        copy = db.session.get(Application, source_id)
        assert copy.purged_at is not None and copy.defender_name is None
        assert count(Document, Review)["Document"] == 0
        assert db.session.get(Referral, imported.id).reason is None
        entry = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "case.purged")
        ).scalar_one()
        assert entry.chain == b.fund().id
        assert audit.verify(fund=b.fund().id) == []
        # Nothing of the partner fund's record has a chain of its own.
        assert audit.verify(fund=b.partner().id) == []
        partner_entries = db.session.execute(
            sa.select(sa.func.count()).where(AuditEvent.chain == b.partner().id)
        ).scalar()
        assert partner_entries == 0


def test_once_the_partner_approves_its_answer_says_which_months_it_supports(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"])
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        services.accept_referral(b.user("manager"), imported)
        db.session.commit()
        accepted, _ = exchange.answer_packet(b.user("manager"), imported)
        # B's own case for the part is approved (as its decision would leave it).
        imported.linked_application.status = ApplicationStatus.APPROVED
        db.session.commit()
        supported, _ = exchange.answer_packet(b.user("manager"), imported)
        db.session.commit()
    _import(a, accepted)
    _import(a, supported)
    with on(a.server):
        referral = db.session.execute(
            sa.select(Referral).where(Referral.uid == referral_uid)
        ).scalar_one()
        assert referral.status == ReferralStatus.ACCEPTED
        assert (referral.covered_from, referral.covered_to) == (1, 6)
        client = signed_in(a.server, a.user("reviewer"))
        page = client.get(f"/network/referrals/{referral_uid}").get_data(as_text=True)
        assert "International Fund says it supports months 1 to 6." in page
        # The case page says it too, beside the referral and in the one support plan.
        case = client.get(f"/applications/{referral.application.uid}").get_data(as_text=True)
        plan = case[case.index("One support plan across the funds") :].split("</table>")[0]
        assert "International Fund" in plan and "months 1 to 6" in plan
        assert "On another server: it says it supports its part." in plan
        sent = case[case.index("Other funds of the network") :].split("</table>")[0]
        assert "International Fund says it supports months 1 to 6." in sent


def _referral_at(side, uid):
    return db.session.execute(sa.select(Referral).where(Referral.uid == uid)).scalar_one()


def _answer(b, imported_uid, *, approve=False, months_said=None):
    """B accepts the referral it imported (and approves its own case for the part), and
    downloads its answer packet; ``months_said`` replaces the months the packet says
    (False: none)."""
    with on(b.server):
        imported = _referral_at(b, imported_uid)
        if imported.status == ReferralStatus.PENDING:
            services.accept_referral(b.user("manager"), imported)
        if approve:
            imported.linked_application.status = ApplicationStatus.APPROVED
        db.session.commit()
        seal = packets.seal_for

        def said(kind, body, *args):
            if months_said is not None:
                body["months"] = months_said or None
            return seal(kind, body, *args)

        packets.seal_for = said
        try:
            data, _ = exchange.answer_packet(b.user("manager"), imported)
        finally:
            packets.seal_for = seal
        db.session.commit()
        return data, imported.answered_at


def test_a_part_without_months_is_answered_supported_and_shown_so(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"], months=(None, None))
    _kind, imported_uid = _import(b, data)
    supported, _ = _answer(b, imported_uid, approve=True)
    assert _import(a, supported) == (packets.ANSWER, referral_uid)
    with on(a.server):
        referral = _referral_at(a, referral_uid)
        assert referral.status == ReferralStatus.ACCEPTED and referral.supported_at is not None
        assert referral.covered_from is None
        client = signed_in(a.server, a.user("reviewer"))
        page = client.get(f"/network/referrals/{referral_uid}").get_data(as_text=True)
        assert "International Fund says it supports this part." in page


def test_an_answer_counts_from_when_the_partner_made_it_not_when_it_arrived(servers, clock):
    a, b = servers["a"], servers["b"]
    today = utcnow().replace(microsecond=0)
    with clock.on(today - timedelta(days=10)):
        referral_uid, data, _ = _refer(a, servers["case"])
    with clock.on(today - timedelta(days=4)):
        _kind, imported_uid = _import(b, data)
        answer, _ = _answer(b, imported_uid)
    _import(a, answer)  # today: the packet travelled four days
    with on(a.server):
        referral = _referral_at(a, referral_uid)
        assert referral.answer_made_at == today - timedelta(days=4)
        assert referral.answered_at >= today  # what counts in the periods of reports
        report = network_report.fund_report(
            a.fund().id, date.today() - timedelta(days=30), date.today(), sa.true()
        )
        assert report["made"].total.median_hours == 6 * 24


def test_the_months_a_partner_elsewhere_supports_count_in_the_network_report(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"], months=(1, 6))
    _kind, imported_uid = _import(b, data)
    supported, _ = _answer(b, imported_uid, approve=True)
    _import(a, supported)
    with on(a.server):
        report = network_report.fund_report(
            a.fund().id, date.today() - timedelta(days=3), date.today(), sa.true()
        )
        made = report["made"].by_fund["International Fund"]
        assert (made.months_accepted, made.months_planned) == (6, 6)
        assert [(g["fund"], g["months_planned"]) for g in report["gaps"]] == [
            ("International Fund", 6)
        ]


#: What an answer sets on a referral: a refused one sets none of it.
ANSWERED = (
    Referral.uid,
    Referral.status,
    Referral.answered_at,
    Referral.answer_made_at,
    Referral.supported_at,
    Referral.covered_from,
    Referral.covered_to,
)


def _turned_away(side, data, words):
    """``data`` is refused at ``side`` in ``words``, and nothing is stored there."""
    with on(side.server):
        before = count(*STORED)
        referrals = db.session.execute(sa.select(*ANSWERED).order_by(Referral.id)).all()
        with pytest.raises(exchange.ExchangeError) as refused:
            exchange.check_and_import(side.user("reviewer"), data)
        db.session.rollback()
        assert str(refused.value) == words
        assert count(*STORED) == before
        assert db.session.execute(sa.select(*ANSWERED).order_by(Referral.id)).all() == referrals


def test_a_referral_imported_once_is_refused_in_a_new_packet(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"])
    with on(a.server):
        again, _ = exchange.referral_packet(a.user("reviewer"), _referral_at(a, referral_uid))
        db.session.commit()
    _import(b, data)
    _turned_away(b, again, "This referral was imported already.")


def test_an_answer_to_no_referral_or_answered_twice_is_refused(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"])
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        services.decline_referral(b.user("reviewer"), _referral_at(b, imported_uid), "Closed.")
        db.session.commit()
        declined, _ = exchange.answer_packet(b.user("reviewer"), _referral_at(b, imported_uid))
        # The same answer naming a referral A never made.
        _referral_at(b, imported_uid).remote_uid = "0" * 20
        db.session.commit()
        stray, _ = exchange.answer_packet(b.user("reviewer"), _referral_at(b, imported_uid))
        db.session.commit()
    _turned_away(a, stray, "This answer names no referral of your fund to this partner.")
    _import(a, declined)
    with on(b.server):
        # B changes its mind behind the app and answers again: A keeps the first answer.
        _referral_at(b, imported_uid).remote_uid = referral_uid
        _referral_at(b, imported_uid).status = ReferralStatus.ACCEPTED
        db.session.commit()
    accepted, _ = _answer(b, imported_uid)
    _turned_away(a, accepted, "This referral was answered already, or withdrawn.")


def test_support_for_months_not_asked_or_changed_is_refused(servers):
    a, b = servers["a"], servers["b"]
    referral_uid, data, _ = _refer(a, servers["case"], months=(1, 6))
    _kind, imported_uid = _import(b, data)
    not_asked = "This answer supports months the referral did not ask for."
    wider, _ = _answer(b, imported_uid, approve=True, months_said=[1, 12])
    _turned_away(a, wider, not_asked)
    none, _ = _answer(b, imported_uid, months_said=False)
    _turned_away(a, none, not_asked)
    fewer, _ = _answer(b, imported_uid, months_said=[2, 3])
    _import(a, fewer)
    # A later packet does not change what was recorded; the same months again are no change.
    again, _ = _answer(b, imported_uid, months_said=[1, 6])
    _turned_away(a, again, "This referral's support was recorded already, for other months.")
    same, _ = _answer(b, imported_uid, months_said=[2, 3])
    _import(a, same)
    with on(a.server):
        referral = _referral_at(a, referral_uid)
        assert (referral.covered_from, referral.covered_to) == (2, 3)


@pytest.mark.parametrize(
    "change",
    [
        lambda body: body["answers"]["details"].update(provider="x" * 5000),
        lambda body: body["answers"]["details"].update(months=12),
        lambda body: body["answers"].update(country="XX"),
        lambda body: body.update(amount="3000.001"),
        lambda body: body.update(amount=3000.0),
        lambda body: body.update(currency="XYZ"),
        lambda body: body.update(category="weapons"),
        lambda body: body.update(months=[0, 6]),
        lambda body: body.update(months=[7, 40]),
        lambda body: body.update(shared=["answers", "everything"]),
        lambda body: body.update(extra="field"),
        lambda body: body["documents"][0].update(type="text/html"),
        lambda body: body["documents"][0].update(data="PGh0bWw+"),
        lambda body: body["assessment"][0].update(risk="extreme"),
    ],
)
def test_a_body_outside_the_forms_limits_is_refused_whole(servers, change, monkeypatch):
    """A partner's packet, signed and sealed as its server makes it, whose body breaks one
    limit the forms hold to: refused as not valid, and nothing stored."""
    a, b = servers["a"], servers["b"]
    with on(a.server):
        case = db.session.execute(
            sa.select(Application).where(Application.uid == servers["case"])
        ).scalar_one()
        referral = services.refer_case(
            a.user("reviewer"),
            case,
            a.partner(),
            services.Part(Category.MEDICAL, 1, 6, Decimal("3000.00"), "EUR"),
            ("answers", "documents", "assessment"),
            "Our pool is spent.",
            date.today() + timedelta(days=7),
        )
        db.session.commit()
        real = packets.seal_packet

        def tampered(kind, body, from_fund, to_fund):
            change(body)
            return real(kind, body, from_fund, to_fund)

        monkeypatch.setattr(packets, "seal_packet", tampered)
        data, _ = exchange.referral_packet(a.user("reviewer"), referral)
        monkeypatch.undo()
        db.session.rollback()
    _refused(b, data, packets.INVALID)


def test_answers_naming_any_country_the_form_offers_travel(servers):
    """A defender in a country outside the fund's list of regions, relocating to another:
    both are countries the form offers, so the packet is valid."""
    a, b = servers["a"], servers["b"]
    uid = canary_case(a, name="Defender In Europe", country="FR", category=Category.RELOCATION)
    with on(a.server):
        case = db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()
        case.details = {"scope": "abroad", "destination_country": "NL", "people": 2, "months": 6}
        referral = services.refer_case(
            a.user("reviewer"),
            case,
            a.partner(),
            services.Part(Category.RELOCATION, 1, 6, Decimal("1200.00"), "EUR"),
            ("answers",),
            "A stay abroad.",
            date.today() + timedelta(days=7),
        )
        db.session.commit()
        data, _ = exchange.referral_packet(a.user("reviewer"), referral)
        db.session.commit()
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        assert imported.application.country == "FR"
        assert imported.application.details["destination_country"] == "NL"
        # Its region follows from its country here, whatever the packet said.
        assert imported.application.region == "Europe"


def test_a_region_the_receiving_server_does_not_know_is_read_from_the_country(servers, monkeypatch):
    """A partner's server with another table of regions (older: none for Syria; newer: a
    region this one lacks) sends a packet this server still takes: the case's region is
    the one its country has here."""
    a, b = servers["a"], servers["b"]
    uid = canary_case(a, name="Defender In Syria", country="SY", category=Category.MEDICAL)
    real = packets.seal_packet

    def from_another_table(kind, body, from_fund, to_fund):
        body["answers"]["region"] = "Levant and beyond"
        return real(kind, body, from_fund, to_fund)

    monkeypatch.setattr(packets, "seal_packet", from_another_table)
    _referral_uid, data, _name = _refer(a, uid, shares=("answers",))
    monkeypatch.undo()
    _kind, imported_uid = _import(b, data)
    with on(b.server):
        imported = db.session.execute(
            sa.select(Referral).where(Referral.uid == imported_uid)
        ).scalar_one()
        assert imported.application.region == "Middle East and North Africa"
