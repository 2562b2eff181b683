"""Two servers on one machine, two databases, two sets of keys: a case referred at fund A
reaches fund B's queue through a packet downloaded from A's server and uploaded to B's,
over HTTP, through the pages (CSRF on, signed in with the second factor); B accepts, and
B's answer packet, uploaded to A's server, updates A's referral.

Server A is the suite's app (SQLite, or PostgreSQL on that leg); server B another start of
the app on a SQLite file of its own. Each is served by werkzeug on 127.0.0.1 in a thread.
"""

import re
import secrets
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from hrdfund.cases.models import Application
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.network import keys
from hrdfund.network.models import ImportedPacket, Referral, ReferralStatus
from tests.conftest import PASSWORD
from tests.exchange_world import (
    CANARIES,
    CANARY_NAME,
    canary_case,
    count,
    make_side,
    on,
    other_server,
)
from tests.live import HOST, Authenticator, Client, find_form, sign_in


@pytest.fixture
def app_config(app_config):
    """Server A as deployed: CSRF on."""
    return {**app_config, "WTF_CSRF_ENABLED": True}


class Served:
    """``app`` served on a free port of 127.0.0.1 by werkzeug, in a thread."""

    def __init__(self, app):
        self.server = make_server(HOST, 0, app, threaded=True)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def two_servers(app, fund, tmp_path):
    a = make_side(app, None, "a", fund=fund)
    b = make_side(other_server(tmp_path, "b", WTF_CSRF_ENABLED=True), "International Fund", "b")
    served = Served(a.server), Served(b.server)
    try:
        yield a, b, served[0].port, served[1].port
    finally:
        for one in served:
            one.stop()
        with on(b.server):
            db.engine.dispose()


def _signed_in(side, port, role, authenticator):
    with on(side.server):
        user = side.user(role)
        account = {"login": user.login, "password": PASSWORD, "totp_secret": user.totp_secret}
    client = Client(port)
    sign_in(client, account, authenticator)
    return client


def _post(client, page, action, values=(), files=()):
    """Send the form of ``page`` posting to ``action``: its fields as the page has them,
    ``values`` (pairs) set or added, ``files`` (name, file name, bytes) attached."""
    form = find_form(client.get(page).text, action)
    given = dict(values)
    fields = [(n, v) for n, v in form.fields if n not in given] + list(values)
    if not files:
        return client.post(action, fields)
    boundary = "----hrdfund" + secrets.token_hex(12)
    body = b""
    for name, value in fields:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, filename, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return client.request(
        "POST",
        action,
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def _upload(client, packet):
    """Upload a packet on *Import a packet*: the preview page, nothing stored yet."""
    preview = _post(
        client, "/network/packets", "/network/packets", files=[("packet-file", "in.hrdp", packet)]
    )
    assert preview.status == 200, preview
    return preview


def _confirm(client, preview):
    form = find_form(preview.text, "/network/packets/confirm")
    return client.post(form.action, form.payload())


def _download(client, path):
    answer = client.get(path)
    assert answer.status == 200, answer
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    name = re.search(r'filename="?([^";]+)', disposition).group(1)
    assert re.fullmatch(r"(referral|answer)-[0-9a-f]{20}\.hrdp", name), name
    return answer.body


def _register(client, other):
    answer = _post(
        client,
        "/fund/partners",
        "/fund/partners",
        [
            ("partner-name", other.fund_name),
            ("partner-key_line", other.line),
            ("partner-fingerprint", keys.spoken(other.fingerprint)),
        ],
    )
    assert answer.status == 302 and answer.location == "/fund/partners", answer


def test_a_referral_goes_from_one_server_to_the_other_and_its_answer_comes_back(two_servers):
    a, b, port_a, port_b = two_servers
    totp = Authenticator()
    # Each fund's administrator registers the other by its key line and fingerprint.
    _register(_signed_in(a, port_a, "admin", totp), b)
    _register(_signed_in(b, port_b, "admin", totp), a)
    case_uid = canary_case(a)
    with on(a.server):
        partner_uid = a.partner().uid

    # At A: the case referred to the partner fund through the case page, sharing it all.
    a_reviewer = _signed_in(a, port_a, "reviewer", totp)
    page = f"/applications/{case_uid}"
    sent = _post(
        a_reviewer,
        page,
        f"{page}/refer",
        [
            ("refer-to_fund", partner_uid),
            ("refer-category", "medical"),
            ("refer-months_from", "1"),
            ("refer-months_to", "6"),
            ("refer-amount", "3000"),
            ("refer-currency", "EUR"),
            ("refer-shares", "answers"),
            ("refer-shares", "documents"),
            ("refer-shares", "assessment"),
            ("refer-reason", "Our medical pool is spent."),
            ("refer-answer_by", (utcnow().date() + timedelta(days=30)).isoformat()),
        ],
    )
    assert sent.status == 302, sent
    with on(a.server):
        referral_uid = db.session.execute(sa.select(Referral.uid)).scalar_one()
    packet = _download(a_reviewer, f"/network/referrals/{referral_uid}/packet")
    assert not any(canary.encode() in packet for canary in CANARIES)

    # At B: uploaded, previewed (nothing stored yet), imported into B's queue.
    b_reviewer = _signed_in(b, port_b, "reviewer", totp)
    with on(b.server):
        before = count(Referral, Application, ImportedPacket)
    preview = _upload(b_reviewer, packet)
    assert CANARY_NAME in preview.text and f"Signed by {a.fund_name}" in preview.text
    with on(b.server):
        assert count(Referral, Application, ImportedPacket) == before
    imported = _confirm(b_reviewer, preview)
    assert imported.status == 302 and imported.location.startswith("/network/referrals/")
    queue = b_reviewer.get("/network/referrals").text
    assert a.fund_name in queue and "Waiting for an answer" in queue
    there = imported.location
    shown = b_reviewer.get(there).text
    assert CANARY_NAME in shown and "Document 1" in shown

    # B accepts, as it accepts any referral, and downloads its answer.
    b_manager = _signed_in(b, port_b, "manager", totp)
    accepted = _post(b_manager, there, f"{there}/accept")
    assert accepted.status == 302, accepted
    answer = _download(b_manager, f"{there}/answer-packet")
    with on(b.server):
        arrived = db.session.execute(sa.select(Referral)).scalar_one()
        assert arrived.status == ReferralStatus.ACCEPTED and arrived.linked_application_id

    # At A: the answer's preview says which referral it answers (the case, the part);
    # imported, it updates the referral.
    preview = _upload(a_reviewer, answer)
    said = re.sub(r"<[^>]+>", "", preview.text)
    assert "Your referral of the case" in said and f"{case_uid}: Medical" in said, said[:2000]
    done = _confirm(a_reviewer, preview)
    assert done.status == 302 and done.location == f"/network/referrals/{referral_uid}", done
    with on(a.server):
        referral = db.session.execute(sa.select(Referral)).scalar_one()
        assert referral.status == ReferralStatus.ACCEPTED
    assert "Accepted" in a_reviewer.get(f"/network/referrals/{referral_uid}").text
    # The same answer again is refused, with its reason, and changes nothing.
    with on(a.server):
        before = count(Referral, ImportedPacket)
    again = _post(
        a_reviewer, "/network/packets", "/network/packets", files=[("packet-file", "in", answer)]
    )
    assert again.status == 303, again
    assert "This packet was already imported." in a_reviewer.follow(again).text
    with on(a.server):
        assert count(Referral, ImportedPacket) == before
