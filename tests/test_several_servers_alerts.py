"""Two gunicorn servers on two ports share one PostgreSQL database and one mail server:
alerts are queued through both, each server sends them after its responses, and
`flask hrdfund alerts` runs at the same time, as cron would. Every alert reaches its
recipient exactly once.

The demo world is loaded once; its outbox already holds the alerts its story queued.
Applicants then answer on their cases through both servers at once (each answer alerts the
case's staff), while the cron command runs beside them. The mail server answers slowly, so
the senders overlap.
"""

import importlib.util
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.conftest import empty_schema, missing_infrastructure, pg_database_beside
from tests.live import Client, LiveServer
from tests.test_outbox_claims import SlowMailbox
from tests.test_staff_alerts import _free_port

SCALE = 10
WORKERS = 2
#: Answers posted through each server.
ANSWERS = 6
#: Rounds of the cron command run while the answers are posted.
CRON_ROUNDS = 3
BASE_URL = "https://fund.example"
#: Alerts not yet handed over: neither sent nor settled nor given up.
WAITING = "sent_at IS NULL AND dropped_at IS NULL AND attempts < 5"


@pytest.fixture(scope="module")
def mailbox():
    box = SlowMailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def servers(mailbox, tmp_path_factory):
    """Two gunicorn servers on one PostgreSQL database (its own, emptied first), with the
    same keys and the same mail server; stopped at the end even when a test failed."""
    if importlib.util.find_spec("gunicorn") is None:
        missing_infrastructure("gunicorn is not installed")
    url, _created = pg_database_beside("_alerts_serving")
    empty_schema(url)
    url = url.render_as_string(hide_password=False)
    settings = {
        "HRDFUND_SMTP_HOST": "127.0.0.1",
        "HRDFUND_SMTP_PORT": str(mailbox[1]),
        "HRDFUND_SMTP_SECURITY": "none",
        "HRDFUND_BASE_URL": BASE_URL,
    }
    first = LiveServer(url, tmp_path_factory.mktemp("alerts-a"), WORKERS, settings)
    second = LiveServer(url, tmp_path_factory.mktemp("alerts-b"), WORKERS, settings)
    second.keys = first.keys
    try:
        first.prepare(SCALE)
        second.accounts = first.accounts
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


def _rows(url, sql, **params):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def _answerable_cases(url):
    """(login, case uid) for every case of a demo applicant still open to messages."""
    return _rows(
        url,
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


def test_alerts_queued_on_two_servers_are_each_sent_once(servers, mailbox):
    first, second = servers
    box, _port = mailbox
    url = first.database_url
    cases = _answerable_cases(url)
    assert len(cases) >= 2, "the demo world has no case an applicant can answer on"
    queued_before = _rows(url, "SELECT count(*) FROM alerts")[0][0]

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
    waiting = _rows(url, f"SELECT count(*) FROM alerts WHERE {WAITING}")[0][0]
    assert waiting == 0

    sent = _rows(
        url,
        """
        SELECT u.login, a.uid FROM alerts al
        JOIN users u ON u.id = al.user_id JOIN applications a ON a.id = al.application_id
        WHERE al.sent_at IS NOT NULL
        """,
    )
    answers = _rows(url, "SELECT count(*) FROM alerts WHERE kind = 'applicant_answer'")[0][0]
    assert answers >= len(work), "each answer alerts the case's staff"
    assert _rows(url, "SELECT count(*) FROM alerts")[0][0] > queued_before
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
