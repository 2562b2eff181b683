"""Several app servers on one PostgreSQL: two gunicorn servers on two ports, each with an
instance folder of its own (as two machines have), the same keys and one database.

An applicant adds a document to a case through server one; a reviewer takes and
recommends it, a manager approves it, and finance pays it with a proof of payment, all
through server two; the document is then downloaded through server two and the proof
through server one, byte for byte as the server they were uploaded to gives them, and
neither server's folder holds a document. Over plain HTTP with CSRF on, signed in with
codes, as `test_serving` drives a server.

Both servers send alerts to one mail server after their responses, and
`flask hrdfund alerts` runs beside them as cron would: applicants answer on their cases
through both servers at once (each answer alerts the case's staff), the mail server
answers slowly so the senders overlap, and every alert reaches its recipient exactly once.

PostgreSQL only (SQLite is one machine's file). The servers are a module fixture, so
other tests of several servers reuse them. Under CI=true the test fails, not skips, when
PostgreSQL or gunicorn is missing.
"""

import importlib.util
import io
import re
import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from PIL import Image

from tests.conftest import empty_schema, missing_infrastructure, pg_database_beside
from tests.live import Client, LiveServer, sign_in
from tests.test_outbox_claims import SlowMailbox
from tests.test_staff_alerts import _free_port

#: The demo world's size: the smallest with a case sent and waiting for review, and cases
#: of more than one applicant open to their messages.
SCALE = 10
WORKERS = 2
#: Answers posted through each server.
ANSWERS = 6
#: Rounds of the cron command run while the answers are posted.
CRON_ROUNDS = 3
BASE_URL = "https://fund.example"
#: Alerts not yet handed over: neither sent nor settled nor given up.
WAITING = "sent_at IS NULL AND dropped_at IS NULL AND attempts < 5"


@dataclass
class SeveralServers:
    """Servers on one database: ``servers[0]`` loaded the demo world, all share its keys,
    accounts and authenticator app."""

    servers: list
    database_url: str

    @property
    def accounts(self):
        return self.servers[0].accounts

    def client(self, index, login):
        """A browser signed in as ``login`` through server ``index``."""
        server, account = self.servers[index], self.accounts[login]
        client = Client(server.port)
        if account["totp_secret"]:
            sign_in(client, account, server.authenticator)
        else:  # an applicant: a password only
            form = client.form("/login")
            _sent(client.submit(form, login=login, password=account["password"]), client)
        return client

    def rows(self, sql, **params):
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).all()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def mailbox():
    """One slow mail server on 127.0.0.1 for every server of the module."""
    box = SlowMailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def several_servers(mailbox, tmp_path_factory):
    """Two gunicorn servers (two workers each) on two ports, one PostgreSQL database of
    their own beside the suite's (`_several`), emptied first, one mail server; stopped at
    the end."""
    if importlib.util.find_spec("gunicorn") is None:
        missing_infrastructure("gunicorn is not installed")
    url, _created = pg_database_beside("_several")
    empty_schema(url)
    database_url = url.render_as_string(hide_password=False)
    settings = {
        "HRDFUND_SMTP_HOST": "127.0.0.1",
        "HRDFUND_SMTP_PORT": str(mailbox[1]),
        "HRDFUND_SMTP_SECURITY": "none",
        "HRDFUND_BASE_URL": BASE_URL,
    }
    servers = [
        LiveServer(database_url, tmp_path_factory.mktemp(f"server-{n}"), WORKERS, settings)
        for n in (1, 2)
    ]
    first = servers[0]
    for other in servers[1:]:
        other.keys, other.authenticator = first.keys, first.authenticator
    try:
        first.prepare(SCALE)
        for other in servers[1:]:
            other.accounts = first.accounts
        failures = []

        def start(server):
            try:
                server.start(timeout=60)
            except Exception as exc:  # noqa: BLE001 (raised again below, with the others)
                failures.append(exc)

        threads = [threading.Thread(target=start, args=(server,)) for server in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        yield SeveralServers(servers, database_url)
    finally:
        for server in servers:
            server.stop()


def _noise_png(seed):
    """A photo-like PNG that does not compress: several stored pieces once cleaned."""
    data = secrets.token_bytes(320 * 240 * 3) if seed is None else seed
    image = Image.frombytes("RGB", (320, 240), data)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), data


def _pixels(png):
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").tobytes()


def _sent(answer, client=None):
    """A form taken (302); refused (303), the page it leads to tells why."""
    if answer.status == 303 and client is not None:
        page = client.follow(answer).text
        why = [
            " ".join(re.sub(r"<[^>]+>", " ", part).split())
            for part in re.findall(r'class="[^"]*error[^"]*"[^>]*>(.*?)</', page, re.S)
        ]
        raise AssertionError(f"{answer.location} refused the form: {why or page[:3000]}")
    assert answer.status == 302, f"{answer}\n{answer.text[:1500]}"
    return answer


def test_a_case_goes_from_one_server_to_the_other_with_its_documents(several_servers):
    s = several_servers
    # A case sent by one of the demo applicants, with a budget to recommend amounts on.
    case_uid, lines, login = s.rows(
        """
        SELECT a.uid, (SELECT count(*) FROM budget_lines b WHERE b.application_id = a.id),
               u.login
        FROM applications a JOIN users u ON u.id = a.applicant_id
        WHERE a.status = 'submitted' AND a.currency = 'EUR' AND u.login LIKE 'demo-applicant%'
          AND EXISTS (SELECT 1 FROM budget_lines b WHERE b.application_id = a.id)
        ORDER BY a.id
        """
    )[0]
    case = f"/applications/{case_uid}"

    # Server one: the applicant adds a document to the case.
    applicant = s.client(0, login)
    upload, pixels = _noise_png(None)
    form = applicant.form(case, f"{case}/documents")
    _sent(
        applicant.submit(form, {"kind": "evidence"}, uploads={"file": ("photo.png", upload)}),
        applicant,
    )

    # Server two: reviewed, approved and paid with a proof.
    reviewer = s.client(1, "demo-reviewer1")
    reviewer_id = s.rows("SELECT id FROM users WHERE login = 'demo-reviewer1'")[0][0]
    assign = reviewer.form(case, f"{case}/assign")
    _sent(reviewer.submit(assign, {"assign-reviewer": reviewer_id}), reviewer)
    recommend = {
        "recommend-risk_level": "medium",
        "recommend-recommendation": "approve_partly",
        "recommend-assessment": "Checked against the quote.",
        **{f"recommend-lines-{n}": "50.00" for n in range(lines)},
    }
    _sent(reviewer.submit(reviewer.form(case, f"{case}/recommend"), recommend), reviewer)
    manager = s.client(1, "demo-manager1")
    approve = manager.form(case, f"{case}/approve")
    euro_pool = next(
        value
        for value, label in approve.options["approve-draws-0-pool"]
        if value and "EUR" in label
    )
    amount = "50.00"
    _sent(
        manager.submit(
            approve,
            {
                "approve-amount": amount,
                "approve-draws-0-pool": euro_pool,
                "approve-draws-0-amount": amount,
            },
        ),
        manager,
    )
    [(grant_id, allocation_id)] = s.rows(
        """
        SELECT g.id, al.id FROM grants g JOIN applications a ON a.id = g.application_id
        JOIN allocations al ON al.grant_id = g.id WHERE a.uid = :uid
        """,
        uid=case_uid,
    )
    finance = s.client(1, "demo-finance1")
    proof, proof_pixels = _noise_png(None)
    pay = finance.form(case, f"{case}/payments")
    reference = f"several-{secrets.token_hex(4)}"
    _sent(
        finance.submit(
            pay,
            {
                "pay-allocation": allocation_id,
                "pay-instalment": 0,
                "pay-payee_type": "defender",
                "pay-payee_details": "Demo bank account 0000 0000",
                "pay-channel": "bank",
                "pay-amount_paid": amount,
                "pay-currency_paid": "EUR",
                "pay-fee": "0.00",
                "pay-paid_on": datetime.now(UTC).date().isoformat(),
                "pay-reference": reference,
            },
            uploads={"pay-proof": ("proof.png", proof)},
        ),
        finance,
    )
    [(document_uid,)] = s.rows(
        """
        SELECT d.uid FROM documents d JOIN applications a ON a.id = d.application_id
        WHERE a.uid = :uid AND d.kind = 'evidence' ORDER BY d.id DESC LIMIT 1
        """,
        uid=case_uid,
    )
    [(payment_uid, proof_id)] = s.rows(
        "SELECT uid, proof_document_id FROM disbursements WHERE grant_id = :grant",
        grant=grant_id,
    )

    # Each downloaded through the other server, as the server it was uploaded to gives it.
    document = f"{case}/documents/{document_uid}"
    through_two = reviewer.get(document)
    assert through_two.status == 200, through_two
    assert _pixels(through_two.body) == pixels
    assert through_two.body == s.client(0, "demo-reviewer1").get(document).body
    proof_page = f"/payments/{payment_uid}/proof"
    through_one = s.client(0, "demo-finance1").get(proof_page)
    assert through_one.status == 200, through_one
    assert _pixels(through_one.body) == proof_pixels
    assert through_one.body == finance.get(proof_page).body
    [(pieces,)] = s.rows(
        "SELECT count(*) FROM document_chunks WHERE document_id = :id", id=proof_id
    )
    assert pieces > 1, "the proof is kept in the database, in several pieces"
    for server in s.servers:
        folder = server.instance / "documents"
        assert not folder.exists() or not any(folder.iterdir())


def _answerable_cases(several_servers):
    """(login, case uid) for every case of a demo applicant still open to messages."""
    return several_servers.rows(
        """
        SELECT u.login, a.uid FROM applications a JOIN users u ON u.id = a.applicant_id
        WHERE u.login LIKE 'demo-applicant%'
          AND a.status IN ('submitted', 'in_review', 'info_requested', 'recommended',
                           'awaiting_second_approval', 'approved', 'paying')
        ORDER BY a.id
        """,
    )


def _applicant(server, login):
    """An applicant signed in (password only: the applicant side has no second factor)."""
    client = Client(server.port)
    account = server.accounts[login]
    form = client.form("/login")
    answer = client.submit(form, login=account["login"], password=account["password"])
    assert answer.status == 302 and answer.location != "/login", answer
    return client


def _answer(server, client, uid, n):
    form = client.form(f"/applications/{uid}")
    answer = client.submit(form, body=f"Answer {n} through port {server.port}")
    assert answer.status == 302, f"{answer}\n{answer.text[:500]}"


def test_alerts_queued_on_two_servers_are_each_sent_once(several_servers, mailbox):
    servers = several_servers.servers
    first = servers[0]
    box, _port = mailbox
    cases = _answerable_cases(several_servers)
    assert len(cases) >= 2, "the demo world has no case an applicant can answer on"
    queued_before = several_servers.rows("SELECT count(*) FROM alerts")[0][0]

    clients = {}
    for server in servers:
        for login in {login for login, _uid in cases}:
            clients[server.port, login] = _applicant(server, login)
    work = [(server, cases[n % len(cases)], n) for n in range(ANSWERS) for server in servers]
    stop = threading.Event()
    cron = []

    def run_cron():
        for _round in range(CRON_ROUNDS):
            cron.append(first.flask("hrdfund", "alerts", check=False).returncode)
            if stop.is_set():
                break

    cron_thread = threading.Thread(target=run_cron)
    cron_thread.start()

    def post(item):
        server, (login, uid), n = item
        _answer(server, clients[server.port, login], uid, n)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, work))
    finally:
        stop.set()
        cron_thread.join()
    assert cron and all(code == 0 for code in cron), cron

    # What the servers are still sending after their responses, then one last cron run
    # for anything left (an alert some server's run had not reached yet).
    first.flask("hrdfund", "alerts")
    waiting = several_servers.rows(f"SELECT count(*) FROM alerts WHERE {WAITING}")[0][0]
    assert waiting == 0

    sent = several_servers.rows(
        """
        SELECT u.login, a.uid FROM alerts al
        JOIN users u ON u.id = al.user_id JOIN applications a ON a.id = al.application_id
        WHERE al.sent_at IS NOT NULL
        """,
    )
    answers = several_servers.rows("SELECT count(*) FROM alerts WHERE kind = 'applicant_answer'")[
        0
    ][0]
    assert answers >= len(work), "each answer alerts the case's staff"
    assert several_servers.rows("SELECT count(*) FROM alerts")[0][0] > queued_before
    messages = box.wait_for(len(sent), seconds=30)
    arrived = Counter()
    for rcpts, body in messages:
        link = next(word for word in body.split() if word.startswith(f"{BASE_URL}/applications/"))
        uid = link.removeprefix(f"{BASE_URL}/applications/").split("#")[0]
        arrived.update((rcpt, uid) for rcpt in rcpts)
    # The demo's staff receive their alerts at LOGIN@example.org.
    expected = Counter((f"{login}@example.org", uid) for login, uid in sent)
    assert arrived == expected
    assert len(messages) == len(sent)
