"""The app served the way production serves it, on SQLite and on PostgreSQL.

gunicorn runs several sync workers with HRDFUND_ENV=production, its own three keys and a
DATABASE_URL; the demo world is loaded with the flask command first (in development mode:
`demo-data` refuses production), then the tests talk plain HTTP to 127.0.0.1 on a fresh
connection per request, so that requests are answered by different workers:

- a session works on every worker, and after logout its cookie works on none;
- five wrong passwords lock an account on every worker, and no other account;
- payments acknowledged before the whole server is killed (SIGKILL, master and workers
  at once) are all in the database after a restart, and `flask hrdfund check` passes;
- the same payment form sent twice at the same moment records one payment, without a 500;
- wrong passwords, from one browser or from as many new ones, or one second-factor code,
  sent at the same moment to several workers are held to the same limits as when sent one
  after another (on PostgreSQL the login's counters, and the account's row for a code, are
  locked while they are charged or settled; SQLite transactions take the write lock first);
- the form closing a grant sent twice at the same moment gives back what the grant still
  commits once, and `flask hrdfund check` passes afterwards;
- sign-in attempts at ever new logins sent at once to every worker get no more password
  checks than the server's budget, shared by the workers, grants; the rest are answered
  "busy" with nothing hashed.

On PostgreSQL the server uses its own database, named after HRDFUND_TEST_DATABASE_URL's
with `_serving` added (hrdfund_test -> hrdfund_test_serving), emptied before the module.
The role must own it; the test creates it when the role may create databases.
"""

import http.client
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import empty_schema, pg_database_beside
from tests.live import Client, LiveServer, find_form, sign_in

SCALE = 40
WORKERS = 3
NOT_RIGHT = "Login name or password is not right."
RECORDED = "Payment recorded."


def _recorded(flashes):
    """Whether the messages a response flashed say its payment was recorded (the message
    goes on with the sum and the case)."""
    return any(words.startswith(RECORDED) for words in flashes)


ALREADY = "This payment was already recorded."
LOCKED = re.compile(r"Too many failed attempts\. Wait \d+ minutes, then try again\.")
#: The burst of payments: threads, payments each at most, and how many must be
#: acknowledged before the server is killed.
THREADS = 4
PER_THREAD = 50
KILL_AFTER = 16
BURST_AMOUNT = Decimal("1.00")
#: Wrong passwords sent at once to one account.
GUESSES = 16
#: Failures from browsers a login does not know that lock it for all of them (the default).
NEW_CLIENT_LIMIT = 10
#: The server's budget of password checks: a minute's worth, and what browsers a login does
#: not know may take at once (a sixth), leaving room for the bursts the tests above send.
CHECKS_PER_MINUTE = 120
NEW_BROWSER_BURST = CHECKS_PER_MINUTE // 6


def _serving_database():
    """An empty PostgreSQL database of its own, beside the suite's."""
    url, _created = pg_database_beside("_serving")
    empty_schema(url)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """The demo world served by gunicorn in production mode; stopped at the end even when
    a test failed, killed if it does not stop."""
    folder = tmp_path_factory.mktemp(f"serving-{request.param}")
    if request.param == "postgresql":
        url = _serving_database()
    else:
        url = f"sqlite:///{folder / 'hrdfund.sqlite3'}"
    live = LiveServer(
        url,
        folder,
        workers=WORKERS,
        settings={"HRDFUND_PASSWORD_CHECKS_PER_MINUTE": str(CHECKS_PER_MINUTE)},
    )
    try:
        live.prepare(SCALE)
        live.start()
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def finance(server):
    """The demo finance officer, signed in."""
    client = Client(server.port)
    sign_in(client, server.accounts["demo-finance1"], server.authenticator)
    return client


def _rows(server, sql, **params):
    """Read the server's database directly (the test's own connection, closed after)."""
    engine = sa.create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            statement = sa.text(sql)
            if "keys" in params:
                statement = statement.bindparams(sa.bindparam("keys", expanding=True))
            return conn.execute(statement, params).all()
    finally:
        engine.dispose()


def _parallel(count, call, threads=8):
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(call, range(count)))


def _today():
    return datetime.now(UTC).date().isoformat()


#: What an allocation still commits (pool currency), as the payment rules compute it.
REMAINING = """
    al.amount
    - COALESCE((SELECT SUM(r.amount) FROM releases r WHERE r.allocation_id = al.id), 0)
    - COALESCE((SELECT SUM(CASE WHEN d.reversal_of_id IS NULL THEN d.amount ELSE -d.amount END)
                FROM disbursements d WHERE d.allocation_id = al.id), 0)
"""
#: Allocations of open grants that finance may pay from, in the grant's own currency (no
#: exchange rate involved, so neither an exchange difference nor a fee draws on the pool).
PAYABLE = f"""
    SELECT a.uid AS case_uid, g.id AS grant_id, al.id AS allocation_id, g.currency,
           {REMAINING} AS remaining
    FROM allocations al
    JOIN grants g ON g.id = al.grant_id
    JOIN applications a ON a.id = g.application_id
    JOIN pools p ON p.id = al.pool_id
    WHERE g.status = 'active' AND a.status IN ('approved', 'paying')
      AND p.currency = g.currency
"""


def _burst_allocation(server):
    """The payable allocation that still commits the most, with the instalment of its
    grant that has the most left to pay (``instalment_id``): a grant paid by a plan is
    paid instalment by instalment, each in as many payments as it takes. Stipends (one
    month each) and tranches held for a report are left out."""
    rows = _rows(
        server,
        f"""
        SELECT payable.*, i.id AS instalment_id,
               i.amount - COALESCE((SELECT SUM(d.amount) FROM disbursements d
                                    WHERE d.instalment_id = i.id
                                      AND d.reversal_of_id IS NULL), 0) AS instalment_left
        FROM ({PAYABLE}) payable
        JOIN payment_plans pp ON pp.grant_id = payable.grant_id
        JOIN instalments i ON i.plan_id = pp.id
        WHERE pp.kind != 'stipend' AND (i.seq = 1 OR NOT pp.hold_for_report)
        ORDER BY payable.remaining DESC, instalment_left DESC, i.id
        """,
    )
    burst = BURST_AMOUNT * THREADS * PER_THREAD * 2
    rows = [r for r in rows if min(r.remaining, r.instalment_left) >= burst]
    assert rows, "no allocation of the demo world can take the burst"
    return rows[0]


def _open_instalment(server, other_than):
    """An instalment nobody paid yet, on a grant whose allocation can pay all of it: one
    falling due first; tranches held for a report are left out (they wait for it)."""
    rows = _rows(
        server,
        f"""
        SELECT payable.*, i.id AS instalment_id, i.amount, i.due_on
        FROM ({PAYABLE}) payable
        JOIN payment_plans pp ON pp.grant_id = payable.grant_id
        JOIN instalments i ON i.plan_id = pp.id
        WHERE payable.grant_id != :other
          AND pp.kind != 'stipend'
          AND (i.seq = 1 OR NOT pp.hold_for_report)
          AND NOT EXISTS (SELECT 1 FROM disbursements d WHERE d.instalment_id = i.id)
          AND payable.remaining >= i.amount
        ORDER BY i.due_on, i.id
        """,
        other=other_than,
    )
    assert rows, "the demo world has no open instalment to pay"
    return rows[0]


def _payment_values(row, amount, key=None, instalment=0, reference=None):
    values = {
        "pay-allocation": row.allocation_id,
        "pay-instalment": instalment,
        "pay-payee_type": "defender",
        "pay-payee_details": "Demo bank account 0000 0000",
        "pay-channel": "bank",
        "pay-amount_paid": amount,
        "pay-currency_paid": row.currency,
        "pay-fee": "0.00",
        "pay-paid_on": _today(),
        "pay-reference": reference or f"serving-{secrets.token_hex(6)}",
    }
    if key is not None:
        values["pay-idempotency_key"] = key
    return values


def test_a_session_works_on_every_worker_and_logout_ends_it_on_all(server):
    client = Client(server.port)
    home = sign_in(client, server.accounts["demo-reviewer1"], server.authenticator)

    mark = server.log_mark()
    pages = _parallel(40, lambda _n: client.get(home))
    workers = server.workers_since(mark, len(pages))
    signed_out = [p for p in pages if p.status != 200 or 'action="/logout"' not in p.text]
    assert not signed_out, f"{len(signed_out)} of 40 requests were not signed in: {signed_out[:5]}"
    assert len(set(workers)) >= 2, f"one worker answered everything: {workers}"

    # The parallel pages each drew a CSRF secret into their own cookie and the jar kept
    # the last to arrive: sign out from a page rendered with the cookie it holds now.
    page = client.get(home)
    cookies = dict(client.cookies)
    answer = client.submit(find_form(page.text, "/logout"))
    assert answer.status == 302 and answer.location == "/login", answer

    mark = server.log_mark()
    replays = _parallel(40, lambda _n: client.get(home, cookies=cookies))
    workers = server.workers_since(mark, len(replays))
    let_in = [r for r in replays if r.status != 302 or r.location != "/login"]
    assert not let_in, f"{len(let_in)} of 40 replays of the old cookie were let in: {let_in[:5]}"
    assert len(set(workers)) >= 2, f"one worker answered everything: {workers}"


def test_five_wrong_passwords_lock_the_account_on_every_worker(server):
    victim = server.accounts["demo-manager1"]
    client = Client(server.port)
    form = client.form("/login")

    mark = server.log_mark()
    for n in range(5):
        answer = client.submit(form, login=victim["login"], password=f"not the password {n}")
        assert answer.status == 303 and answer.location == "/login", (n, answer)
        assert NOT_RIGHT in client.follow(answer).text, (n, answer)
    guessed_on = server.workers_since(mark, 5)

    mark = server.log_mark()
    jar = client.jar()
    refusals = _parallel(
        9,
        lambda _n: client.submit(form, jar=jar, login=victim["login"], password=victim["password"]),
    )
    workers = server.workers_since(mark, len(refusals))
    let_in = [
        r for r in refusals if r.status != 303 or not LOCKED.search(client.follow(r, jar).text)
    ]
    assert not let_in, (
        f"the right password got past the lock (wrong guesses on workers {guessed_on}): "
        f"{let_in[:3]} {let_in[0].text[:600]}"
    )
    assert len(set(workers)) >= 2, f"one worker answered everything: {workers}"

    # Another account of the same fund is not held up by the lock.
    started = time.monotonic()
    sign_in(Client(server.port), server.accounts["demo-manager2"], server.authenticator)
    assert time.monotonic() - started < 10


def test_acknowledged_payments_survive_killing_the_whole_server(server, finance):
    row = _burst_allocation(server)
    case = f"/applications/{row.case_uid}"
    form = finance.form(case, f"{case}/payments")
    sent, acknowledged, refused = [], [], []
    lock = threading.Lock()
    killed = threading.Event()

    def pay(_thread):
        for _n in range(PER_THREAD):
            if killed.is_set():
                return
            key = secrets.token_hex(16)  # what the form's hidden field carries
            with lock:
                sent.append(key)
            try:
                answer = finance.submit(
                    form, _payment_values(row, BURST_AMOUNT, key, instalment=row.instalment_id)
                )
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            if answer.status == 302 and answer.location == case and _recorded(answer.flashes):
                with lock:
                    acknowledged.append(key)
            else:
                with lock:
                    refused.append((answer.status, answer.text[:300]))
                return

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline and not refused:
            time.sleep(0.005)
        server.kill()
        killed.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        killed.set()
        if server.process is None:
            server.start()

    assert not refused, f"payments were refused before the kill: {refused[:3]}"
    assert KILL_AFTER <= len(acknowledged) < THREADS * PER_THREAD, len(acknowledged)
    stored = {
        r.idempotency_key
        for r in _rows(
            server,
            "SELECT idempotency_key FROM disbursements WHERE idempotency_key IN :keys",
            keys=sent,
        )
    }
    lost = [key for key in acknowledged if key not in stored]
    assert not lost, (
        f"{len(acknowledged)} payments acknowledged, only {len(acknowledged) - len(lost)} of "
        f"them stored after the restart ({len(stored)} of {len(sent)} sent are stored); "
        f"lost keys: {lost[:5]}"
    )

    check = server.flask("hrdfund", "check", check=False)
    assert check.returncode == 0, (
        f"flask hrdfund check after the kill:\n{check.stdout}\n{check.stderr}"
    )

    # The restarted server takes payments again: nothing was left locked.
    form = finance.form(case, f"{case}/payments")
    answer = finance.submit(form, _payment_values(row, BURST_AMOUNT, instalment=row.instalment_id))
    assert answer.status == 302 and _recorded(answer.flashes), (answer, answer.text[:500])


def _form_errors(page):
    """The error summary above a form that was refused, as text."""
    found = re.search(r'<div class="error-summary" role="alert">(.*?)</div>', page, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip() if found else ""


def _post_twice_at_once(client, form, values):
    """Post the same form (same key, same CSRF token) on two fresh connections released
    together; return both answers."""
    payload = form.payload(values)
    multipart = form.enctype == "multipart/form-data"
    barrier = threading.Barrier(2)

    def post(_n):
        return client.post(
            form.action, payload, multipart=multipart, files=form.files, barrier=barrier
        )

    return _parallel(2, post, threads=2)


@pytest.mark.parametrize("whole", [True, False], ids=["whole-instalment", "part-of-instalment"])
def test_the_same_payment_form_sent_twice_at_once_records_one_payment(server, finance, whole):
    burst = _burst_allocation(server)
    if whole:
        row = _open_instalment(server, other_than=burst.grant_id)
        amount, instalment_id, rounds = Decimal(str(row.amount)), row.instalment_id, 1
    else:
        row, amount, instalment_id, rounds = burst, Decimal("2.50"), burst.instalment_id, 3
    case = f"/applications/{row.case_uid}"
    for _round in range(rounds):
        form = finance.form(case, f"{case}/payments")
        key = form.value("pay-idempotency_key")
        answers = _post_twice_at_once(
            finance, form, _payment_values(row, amount, instalment=instalment_id)
        )
        assert all(a.status in (302, 303) for a in answers), answers
        said = [
            a.flashes if a.status == 302 else [_form_errors(finance.follow(a).text)]
            for a in answers
        ]
        # One answer says the payment is recorded; the other, which waited its turn on
        # the grant, finds it and says it was recorded already.
        assert sorted(_recorded(words) for words in said) == [False, True], said
        second = next(n for n, words in enumerate(said) if not _recorded(words))
        assert answers[second].status == 302 and ALREADY in said[second], said
        stored = _rows(
            server, "SELECT id FROM disbursements WHERE idempotency_key IN :keys", keys=[key]
        )
        assert len(stored) == 1, f"{len(stored)} payments recorded for one form: {said}"
    if whole:
        paid = _rows(
            server, "SELECT id FROM disbursements WHERE instalment_id = :id", id=instalment_id
        )
        assert len(paid) == 1, f"the instalment was paid {len(paid)} times"


def test_wrong_passwords_sent_at_once_get_no_more_than_five_checks(server):
    victim = server.accounts["demo-donor1"]
    client = Client(server.port)
    form = client.form("/login")
    jar = client.jar()
    answers = _parallel(
        GUESSES,
        lambda n: client.submit(form, jar=jar, login=victim["login"], password=f"guess {n}"),
    )
    pages = [client.follow(a, jar).text for a in answers]
    checked = sum(NOT_RIGHT in page for page in pages)
    locked = sum(bool(LOCKED.search(page)) for page in pages)
    assert checked + locked == GUESSES, answers
    message = f"{checked} of {GUESSES} guesses sent at once were checked against the password"
    assert checked == 5, message


def test_wrong_passwords_from_new_browsers_at_once_get_no_more_than_their_limit(server):
    """Guesses from as many fresh browsers, sent at the same moment, are held to the limit
    on browsers the login does not know."""
    victim = server.accounts["demo-donor2"]
    forms = [
        (client, client.form("/login")) for client in (Client(server.port) for _ in range(GUESSES))
    ]
    answers = _parallel(
        GUESSES,
        lambda n: forms[n][0].submit(forms[n][1], login=victim["login"], password=f"guess {n}"),
    )
    pages = [forms[n][0].follow(a).text for n, a in enumerate(answers)]
    checked = sum(NOT_RIGHT in page for page in pages)
    locked = sum(bool(LOCKED.search(page)) for page in pages)
    assert checked + locked == GUESSES, answers
    message = f"{checked} of {GUESSES} guesses from new browsers were checked"
    assert checked == NEW_CLIENT_LIMIT, message


def test_one_code_signs_in_once_when_sent_twice_at_once(server):
    account = server.accounts["demo-admin1"]
    pending = []
    for _n in range(2):
        client = Client(server.port)
        answer = client.submit(
            client.form("/login"), login=account["login"], password=account["password"]
        )
        assert answer.location == "/login/code", answer
        pending.append((client, client.form("/login/code")))
    code = server.authenticator.code(account["totp_secret"])
    barrier = threading.Barrier(2)

    def send(n):
        client, form = pending[n]
        return client.post(form.action, form.payload(code=code), barrier=barrier)

    answers = _parallel(2, send, threads=2)
    signed_in = sum(a.status == 302 and a.location == "/" for a in answers)
    message = f"one code signed in {signed_in} times: {answers}"
    assert signed_in == 1, message


def _money(value):
    """An amount read with plain SQL (SQLite gives sums as floats) to the cent."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _released(server, grant_id):
    rows = _rows(
        server,
        "SELECT COALESCE(SUM(r.amount), 0) AS total FROM releases r"
        " JOIN allocations al ON al.id = r.allocation_id WHERE al.grant_id = :g",
        g=grant_id,
    )
    return _money(rows[0].total)


def test_the_close_form_sent_twice_at_once_gives_back_once(server):
    manager = Client(server.port)
    sign_in(manager, server.accounts["demo-manager2"], server.authenticator)
    burst = _burst_allocation(server)
    row = _rows(
        server,
        f"{PAYABLE} AND g.id != :burst AND {REMAINING} > 0 ORDER BY al.id",
        burst=burst.grant_id,
    )[0]
    owed = _rows(
        server,
        f"SELECT {REMAINING} AS rest FROM allocations al WHERE al.grant_id = :g",
        g=row.grant_id,
    )
    expected = sum((_money(r.rest) for r in owed if r.rest > 0), start=Decimal("0.00"))
    before = _released(server, row.grant_id)
    case = f"/applications/{row.case_uid}"
    form = manager.form(case, f"{case}/close")

    answers = _post_twice_at_once(manager, form, {"close-reason": "Closed twice at once"})
    assert all(a.status in (302, 303) for a in answers), answers
    closed = sum(
        a.status == 302 and any(m.startswith("Grant closed") for m in a.flashes) for a in answers
    )
    released = _released(server, row.grant_id) - before
    message = f"closed {closed} times, gave back {released} of the {expected} still committed"
    assert closed == 1 and released == expected, message
    check = server.flask("hrdfund", "check", check=False)
    assert check.returncode == 0, f"{check.stdout}\n{check.stderr}"


def test_password_checks_past_the_servers_budget_are_busy_on_every_worker(server):
    """Sign-in attempts at ever new logins from ever new browsers, sent at once to every
    worker: the budget the workers share grants its burst for new browsers and what it
    earns meanwhile, no more; every other attempt is answered busy (503), nothing hashed."""
    sent = 3 * NEW_BROWSER_BURST
    forms = [
        (client, client.form("/login")) for client in (Client(server.port) for _ in range(sent))
    ]
    mark = server.log_mark()
    started = time.monotonic()
    answers = _parallel(
        sent,
        lambda n: forms[n][0].submit(
            forms[n][1], login=f"nobody-{n}-{secrets.token_hex(4)}", password="a guess at it"
        ),
    )
    elapsed = time.monotonic() - started
    workers = server.workers_since(mark, sent)
    checked = sum(
        a.status == 303 and NOT_RIGHT in forms[n][0].follow(a).text for n, a in enumerate(answers)
    )
    busy = sum(a.status == 503 and "Busy: please try again in a minute" in a.text for a in answers)
    assert checked + busy == sent, answers
    earned = int(elapsed * CHECKS_PER_MINUTE / 60) + 1
    assert 0 < checked <= NEW_BROWSER_BURST + earned, (checked, busy, round(elapsed, 1))
    assert len(set(workers)) >= 2, f"one worker answered everything: {workers}"
