"""The pages and commands of the exchange with partner funds on other servers: the fund's
keys made and rotated by `flask hrdfund network-keys`, partner funds registered by the
fund's administrator only and only with a matching fingerprint, a packet imported with
`flask hrdfund import-referral`, a refused upload that loses nothing, and a packet held
for one account's preview that another account cannot import."""

import html
import io
import shlex
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from hrdfund.auth.models import Fund
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.network import exchange, keys
from hrdfund.network import referrals as services
from hrdfund.network.models import FundKey, ImportedPacket, Referral
from tests.conftest import PASSWORD, signed_in
from tests.exchange_world import (
    count,
    make_side,
    on,
    servers_fixture,  # noqa: F401  (the fixture ``servers``)
)


def test_network_keys_are_made_once_printed_again_and_rotated(app, fund, runner):
    made = runner.invoke(args=["hrdfund", "network-keys"])
    assert made.exit_code == 0, made.output
    key = keys.current_key(fund)
    assert keys.key_line(fund, key) in made.output and keys.spoken(key.fingerprint) in made.output
    again = runner.invoke(args=["hrdfund", "network-keys"])
    assert "Made new keys" not in again.output and keys.key_line(fund, key) in again.output
    rotated = runner.invoke(args=["hrdfund", "network-keys", "--new"])
    assert rotated.exit_code == 0 and "Made new keys" in rotated.output
    db.session.expire_all()
    new = keys.current_key(fund)
    assert new.id != key.id and db.session.get(FundKey, key.id).retired_at is not None
    # The old key still opens packets addressed to it, for a while.
    assert keys.usable_key(fund, key.fingerprint) is not None
    # The private keys are stored encrypted: their hex is nowhere in the row's bytes.
    raw = db.session.execute(
        sa.text("SELECT private FROM fund_keys WHERE id = :id"), {"id": new.id}
    ).scalar()
    assert new.private["x25519"].encode() not in bytes(raw)


def test_a_fund_with_no_keys_is_told_the_command_that_makes_its_own(
    app, fund, make_fund, make_user, runner
):
    """On a server of several funds, the command the page gives names the fund, as the
    command needs it to (it said only `network-keys`, which then asks which fund); run as
    given, it makes that fund's keys."""
    make_fund("Another Fund")
    admin = make_user("admin", fund_id=fund.id)
    page = html.unescape(signed_in(app, admin).get("/fund/partners").get_data(as_text=True))
    command = f"flask hrdfund network-keys --fund '{fund.name}'"
    assert f"The server's operator makes them with the command {command}." in page
    bare = runner.invoke(args=["hrdfund", "network-keys"])
    assert bare.exit_code != 0 and keys.current_key(fund) is None
    made = runner.invoke(args=shlex.split(command)[1:])
    assert made.exit_code == 0, made.output
    assert keys.current_key(fund) is not None


def _partner_page(client, **values):
    data = {f"partner-{k}": v for k, v in values.items()}
    return client.post("/fund/partners", data=data)


def test_only_the_funds_administrator_registers_a_partner_and_only_with_its_fingerprint(
    servers,
):
    a, b = servers["a"], servers["b"]
    c = make_side(b.server, "Third Fund", "c")
    with on(a.server):
        manager = signed_in(a.server, a.user("manager"))
        assert manager.get("/fund/partners").status_code == 403
        assert (
            _partner_page(manager, name="Third", key_line=c.line, fingerprint="x").status_code
            == 403
        )
        admin = signed_in(a.server, a.user("admin"))
        page = admin.get("/fund/partners").get_data(as_text=True)
        assert a.line in page and keys.spoken(a.fingerprint) in page and "International" in page
        before = count(Fund, FundKey)
        wrong = _partner_page(
            admin, name="Third", key_line=c.line, fingerprint=keys.spoken(b.fingerprint)
        )
        assert wrong.status_code == 303
        shown = admin.get("/fund/partners").get_data(as_text=True)
        assert "The fingerprint does not match this key." in shown
        assert c.line in shown  # what was typed comes back
        assert count(Fund, FundKey) == before
        ok = _partner_page(
            admin, name="Third", key_line=c.line, fingerprint=keys.spoken(c.fingerprint)
        )
        assert ok.status_code == 302
        assert count(Fund, FundKey) == {
            "Fund": before["Fund"] + 1,
            "FundKey": before["FundKey"] + 1,
        }
        assert "Third is registered" in admin.get("/fund/partners").get_data(as_text=True)
        # A partner fund is no member: not on the public list, not offered to applicants.
        assert "Third" not in admin.get("/funds").get_data(as_text=True)


def _referral_packet(a, case_uid):
    with on(a.server):
        case = db.session.execute(
            sa.select(Application).where(Application.uid == case_uid)
        ).scalar_one()
        referral = services.refer_case(
            a.user("reviewer"),
            case,
            a.partner(),
            services.Part(Category.MEDICAL, None, None, Decimal("500.00"), "EUR"),
            ("answers",),
            "Please take the medical part.",
            date.today() + timedelta(days=3),
        )
        db.session.commit()
        data, _name = exchange.referral_packet(a.user("reviewer"), referral)
        db.session.commit()
        return data


def test_import_referral_command_previews_then_imports_and_refuses_a_replay(servers, tmp_path):
    a, b = servers["a"], servers["b"]
    path = tmp_path / "in.hrdp"
    path.write_bytes(_referral_packet(a, servers["case"]))
    runner = b.server.test_cli_runner()
    with on(b.server):
        args = ["hrdfund", "import-referral", str(path), "--by", b.logins["reviewer"]]
        declined = runner.invoke(args=args, input="n\n")
        assert "medical, 500.00 EUR" in declined.output and "Nothing imported." in declined.output
        assert count(Referral)["Referral"] == 0
        done = runner.invoke(args=[*args, "--yes"])
        assert done.exit_code == 0 and "Imported: referral" in done.output, done.output
        assert count(Referral)["Referral"] == 1
        again = runner.invoke(args=[*args, "--yes"])
        assert again.exit_code != 0 and "This packet was already imported." in again.output
        assert count(Referral, ImportedPacket) == {"Referral": 1, "ImportedPacket": 1}


def test_a_packet_held_for_one_account_is_not_imported_by_another(servers):
    a, b = servers["a"], servers["b"]
    data = _referral_packet(a, servers["case"])
    with on(b.server):
        reviewer = signed_in(b.server, b.user("reviewer"))
        preview = reviewer.post(
            "/network/packets", data={"packet-file": (io.BytesIO(data), "in.hrdp")}
        )
        assert preview.status_code == 200
        token = preview.get_data(as_text=True).split('name="hold-token"')[1].split('value="')[1]
        token = token.split('"')[0]
        manager = signed_in(b.server, b.user("manager"))
        before = count(Referral, ImportedPacket, Application)
        stolen = manager.post("/network/packets/confirm", data={"hold-token": token})
        assert stolen.status_code == 302
        assert "waited too long" in manager.get("/network/packets").get_data(as_text=True)
        assert count(Referral, ImportedPacket, Application) == before
        mine = reviewer.post("/network/packets/confirm", data={"hold-token": token})
        assert mine.status_code == 302 and "/network/referrals/" in mine.location
        assert count(Referral)["Referral"] == before["Referral"] + 1


def test_a_refused_upload_says_why_and_nothing_is_kept(servers):
    b = servers["b"]
    with on(b.server):
        reviewer = signed_in(b.server, b.user("reviewer"))
        before = count(Referral, ImportedPacket, Application)
        refused = reviewer.post(
            "/network/packets", data={"packet-file": (io.BytesIO(b"%PDF-1.4 hello"), "x.pdf")}
        )
        assert refused.status_code == 303
        page = reviewer.get("/network/packets").get_data(as_text=True)
        assert "This file is not a packet from hrdfund" in page
        assert count(Referral, ImportedPacket, Application) == before
        # A finance account may not import packets at all.
        from hrdfund.auth import services as auth_services

        finance = auth_services.create_user("finance", "b-finance", PASSWORD, fund_id=b.fund().id)
        db.session.commit()
        assert signed_in(b.server, finance).get("/network/packets").status_code == 403
