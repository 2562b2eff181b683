"""The fund at scale: a demo world of 100,000 applications, then

- the staff queue (first page, default sort; and with two filters), a pool page and the
  dashboards of a manager and of finance, p50 and p95 over 200 requests through the Flask
  test client, each against a bare Flask route that runs the page's slowest SQL statement,
  as captured from the page itself, with the same parameters on the same database;
- application submission under load: gunicorn with 2 workers on 127.0.0.1, signed-in
  applicants starting and sending complete applications from several threads for 30 s,
  against the same server setup running a bare Flask route that does one INSERT, and
  against the floor between them: the application's own signed-in route doing that one
  INSERT (`bench/floor_app.py`).

SQLite by default (a temporary folder); PostgreSQL when HRDFUND_BENCH_DATABASE_URL names an
empty database the benchmark may fill. `make bench` runs :func:`run`.
"""

import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALE = int(os.environ.get("HRDFUND_BENCH_SCALE", "100000"))
REQUESTS = 200
SUBMIT_SECONDS = int(os.environ.get("HRDFUND_BENCH_SUBMIT_SECONDS", "30"))
CLIENTS = 8
WORKERS = 2
#: The load clients' password, new each run.
PASSWORD = secrets.token_urlsafe(18)
#: A complete relocation application, as the form sends it.
APPLICATION = {
    "defender_name": "Bench defender",
    "defender_work": "Documents land evictions in the valley.",
    "threat": "Followed and threatened after a hearing.",
    "urgency_reason": "Threats in the last week.",
    "other_funders": "None",
    "country": "KE",
    "urgency": "urgent",
    "details-scope": "region",
    "details-destination_country": "UG",
    "details-people": "2",
    "details-months": "3",
    "details-stay_plan": "With a host organisation.",
    "details-security_plan": "New phone, varied routes.",
    "details-exit_plan": "Return once the case is heard.",
    "details-host_organisation": "A partner shelter",
    "budget-0-description": "Rent for three months",
    "budget-0-amount": "900",
    "dependants-0-relation": "child",
    "references-0-name": "A colleague",
    "references-0-organisation": "A network",
    "references-0-contact": "Signal",
    "references-1-name": "A lawyer",
    "references-1-contact": "Office phone",
    "submit": "1",
}


def _environment(instance, database_url, production=False):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HRDFUND_ENV")}
    env.update(HRDFUND_INSTANCE_PATH=instance, FLASK_APP="app")
    if database_url:
        env["DATABASE_URL"] = database_url
    if production:
        with open(os.path.join(instance, "secrets.json")) as fh:
            env.update(json.load(fh))
        env["HRDFUND_ENV"] = "production"
        env["DATABASE_URL"] = database_url or "sqlite:///" + os.path.join(
            instance, "hrdfund.sqlite3"
        )
    else:
        env["HRDFUND_ENV"] = "development"
    return env


def _run(env, *args, timeout=3600):
    done = subprocess.run(  # noqa: S603 (this interpreter, arguments written here)
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def _quantiles(samples):
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(statistics.median(samples) * 1000, 2), round(cuts[94] * 1000, 2)


# -- pages ---------------------------------------------------------------------------------


def _form_token(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html
    )
    return match.group(1)


def first_step_form(html):
    """What the first step's form sends as it comes: its hidden fields (the kind of
    support, the fund, the token) and the answers it holds."""
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if name and (kind is None or kind.group(1) not in ("submit", "checkbox", "radio")):
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


#: The last time step whose code each login used: a code works once.
_STEPS = {}


def _sign_in(client, account):
    import pyotp

    token = _form_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={"login": account["login"], "password": account["password"], "csrf_token": token},
    )
    if account.get("totp_secret"):
        token = _form_token(client.get("/login/code").get_data(as_text=True))
        while int(time.time() // 30) <= _STEPS.get(account["login"], -1):
            time.sleep(1)
        _STEPS[account["login"]] = step = int(time.time() // 30)
        code = pyotp.TOTP(account["totp_secret"]).at(step * 30)
        response = client.post("/login/code", data={"code": code, "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in of {account['role']} failed: {response.status_code}")


#: The pages :func:`measure_pages` times: name -> (address, who reads it). The pool page's
#: address is filled in with the pool that has the most payments.
PAGES = {
    "queue": ("/cases", "manager"),
    "queue_filtered": ("/cases?category=relocation&urgency=urgent", "manager"),
    "pool": ("/pools/{pool}", "manager"),
    "dashboard": ("/dashboard", "manager"),
    "dashboard_finance": ("/dashboard", "finance"),
}


def measure_pages(names=None):
    """In the app's database: time each page of ``names`` (every page of PAGES by default)
    and its bare baseline. Prints JSON."""
    import sqlalchemy as sa
    from flask import Flask

    from hrdfund import create_app
    from hrdfund.core.extensions import db
    from hrdfund.ledger.models import Disbursement
    from hrdfund.pools.models import Pool

    app = create_app()
    with open(os.path.join(app.instance_path, "demo-accounts.json")) as fh:
        accounts = json.load(fh)
    names = names or list(PAGES)
    with app.app_context():
        pool_uid = db.session.execute(
            sa.select(Pool.uid)
            .join(Disbursement, Disbursement.pool_id == Pool.id)
            .group_by(Pool.uid)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).scalar_one()
        engine = db.engine
    raw = engine.raw_connection()  # the baseline's one connection, as a pool would keep

    bare = Flask("bare")
    statements = {}

    @bare.get("/<name>")
    def run_statement(name):
        statement, parameters = statements[name]
        cursor = raw.cursor()
        cursor.execute(statement, parameters)
        rows = cursor.fetchall()
        cursor.close()
        raw.commit()
        return f"{len(rows)} rows"

    bare_client = bare.test_client()
    results = {}
    for name in names:
        path, role = PAGES[name]
        # Signed in for this page: on a large world the pages before it can take longer
        # than staff may stay idle (HRDFUND_IDLE_MINUTES_STAFF), which signs a client out.
        path, client = path.format(pool=pool_uid), app.test_client()
        _sign_in(client, next(a for a in accounts if a["role"] == role))
        statements[name] = _slowest_statement(app, client, path, sa)
        results[name] = _time_requests(client, path)
        results[name + "_baseline"] = _time_requests(bare_client, "/" + name)
        results[name + "_statement"] = statements[name][0]
    raw.close()
    print(json.dumps(results))


def _slowest_statement(app, client, path, sa):
    """The page's slowest SQL statement and its parameters, captured while it renders."""
    from hrdfund.core.extensions import db

    with app.app_context():
        engine = db.engine
    timings = []

    def before(conn, _cursor, _statement, _parameters, _context, _many):
        conn.info["bench_started"] = time.perf_counter()

    def after(conn, _cursor, statement, parameters, _context, _many):
        timings.append((time.perf_counter() - conn.info["bench_started"], statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(3):  # warm, then keep the last rendering's timings
            timings.clear()
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
    _seconds, statement, parameters = max(timings, key=lambda t: t[0])
    return statement, parameters


def _time_requests(client, path):
    for _ in range(5):
        client.get(path)
    samples = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    p50, p95 = _quantiles(samples)
    return {"p50_ms": p50, "p95_ms": p95}


# -- submission under load ------------------------------------------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One keep-alive connection with its cookies, sent back over plain http to 127.0.0.1
    whatever their Secure flag (the production cookie is Secure; this client is local)."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location") or "", text


def _serve(env, target, port):
    server = subprocess.Popen(  # noqa: S603 (this interpreter, arguments written here)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            target,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(server.stderr.read().decode()[-3000:]) from None
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError(f"{target} did not start")


def _stop(server):
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _load(port, prepare, one, seconds):
    """``CLIENTS`` threads, each ``prepare``-d once, then doing ``one`` until time is up.
    Returns (operations per second, p95 latency in ms, errors)."""
    samples, errors, lock = [], [], threading.Lock()
    ready, go = threading.Barrier(CLIENTS + 1), threading.Event()
    stop_at = []

    def client(index):
        try:
            browser = Browser(port)
            state = prepare(browser, index)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(repr(exc))
            ready.wait()
            return
        ready.wait()
        go.wait()
        mine = []
        while time.monotonic() < stop_at[0]:
            start = time.perf_counter()
            try:
                one(browser, state)
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(repr(exc))
                browser = Browser(port)
                state = prepare(browser, index)
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    ready.wait()  # every client signed in
    started = time.monotonic()
    stop_at.append(started + seconds)
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if not samples:
        raise RuntimeError(f"no operation completed: {errors[:3]}")
    return round(len(samples) / elapsed, 1), _quantiles(samples)[1], len(samples), errors


def _applicant(browser, index):
    status, _location, html = browser.request("GET", "/login")
    token = _form_token(html)
    status, location, _html = browser.request(
        "POST", "/login", {"login": f"bench{index}", "password": PASSWORD, "csrf_token": token}
    )
    if status != 302:
        raise RuntimeError(f"bench{index} could not sign in ({status})")
    _status, _location, html = browser.request("GET", "/apply")
    return {"token": _form_token(html)}


def _submit(browser, state):
    # Choosing the kind of support stores nothing; saving the first step opens the draft.
    status, _location, html = browser.request("GET", "/apply/new?category=relocation")
    if status != 200:
        raise RuntimeError(f"choosing the kind of support answered {status}")
    status, location, _html = browser.request("POST", "/apply/new", first_step_form(html))
    if status != 302 or "/steps/" not in location:
        raise RuntimeError(f"saving the first step answered {status}")
    edit = urllib.parse.urlparse(location).path.rsplit("/steps/", 1)[0] + "/edit"
    status, location, html = browser.request(
        "POST", edit, {**APPLICATION, "csrf_token": state["token"]}
    )
    if status != 302 or location.endswith("/edit"):
        raise RuntimeError(f"sending an application answered {status}: {html[-500:]}")


def _floor_insert(browser, state):
    status, _location, _text = browser.request(
        "POST", "/bench/floor", {"body": "x" * 600, "csrf_token": state["token"]}
    )
    if status != 200:
        raise RuntimeError(f"the signed-in insert answered {status}")


def _bare_insert(browser, _index):
    return {}


def _insert(browser, _state):
    status, _location, _text = browser.request("POST", "/insert", {"body": "x" * 600})
    if status != 200:
        raise RuntimeError(f"the bare insert answered {status}")


def _served_load(env, target, prepare, one):
    """:func:`_load` against gunicorn serving ``target`` on a port of its own."""
    port = _free_port()
    server = _serve(env, target, port)
    try:
        return _load(port, prepare, one, SUBMIT_SECONDS)
    finally:
        _stop(server)


def measure_submission(instance, database_url):
    env = _environment(instance, database_url, production=True)
    for index in range(CLIENTS):
        _run(
            env,
            "-m",
            "flask",
            "hrdfund",
            "create-user",
            "--role",
            "applicant",
            "--login",
            f"bench{index}",
            "--password",
            PASSWORD,
        )
    rps, p95, count, errors = _served_load(env, "app:app", _applicant, _submit)
    floor_rps, floor_p95, _count, floor_errors = _served_load(
        env, "bench.floor_app:app", _applicant, _floor_insert
    )
    base_rps, base_p95, _count, base_errors = _served_load(
        env, "bench.bare_insert:app", _bare_insert, _insert
    )
    return {
        "submit_rps": rps,
        "submit_p95_ms": p95,
        "submit_count": count,
        "submit_errors": len(errors),
        "submit_baseline_rps": base_rps,
        "submit_baseline_p95_ms": base_p95,
        "submit_baseline_errors": len(base_errors),
        "submit_floor_rps": floor_rps,
        "submit_floor_p95_ms": floor_p95,
        "submit_floor_errors": len(floor_errors),
        "submit_clients": CLIENTS,
        "submit_workers": WORKERS,
        "submit_seconds": SUBMIT_SECONDS,
    }


def _counts(env):
    script = (
        "import json, sqlalchemy as sa\n"
        "from hrdfund import create_app\n"
        "from hrdfund.core.extensions import db\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    n = lambda t: db.session.execute(sa.text(f'SELECT count(*) FROM {t}')).scalar()\n"
        "    print(json.dumps({'applications': n('applications'),"
        " 'disbursements': n('disbursements')}))\n"
    )
    return json.loads(_run(env, "-c", script).splitlines()[-1])


def _build_world(env):
    """Migrate and load the demo world of SCALE applications; return the seconds it took
    and its counts."""
    started = time.monotonic()
    _run(env, "-m", "flask", "db", "upgrade")
    _run(env, "-m", "flask", "hrdfund", "demo-data", "--scale", str(SCALE))
    return round(time.monotonic() - started, 1), _counts(env)


def run(database_url=None):
    """Every figure above on ``database_url``: an empty PostgreSQL database to fill, or
    SQLite when it is empty; HRDFUND_BENCH_DATABASE_URL's database when it is None."""
    if database_url is None:
        database_url = os.environ.get("HRDFUND_BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="hrdfund-scale-") as instance:
        env = _environment(instance, database_url)
        build_seconds, scale = _build_world(env)
        pages = json.loads(_run(env, "-m", "bench.scale", "pages").splitlines()[-1])
        submission = measure_submission(instance, database_url)
    results = {
        "scale": scale,
        "scale_database": "postgresql" if database_url else "sqlite",
        "scale_build_seconds": build_seconds,
        "queue_p50_ms": pages["queue"]["p50_ms"],
        "queue_p95_ms": pages["queue"]["p95_ms"],
        "queue_baseline_p50_ms": pages["queue_baseline"]["p50_ms"],
        "queue_baseline_p95_ms": pages["queue_baseline"]["p95_ms"],
        "queue_filtered_p50_ms": pages["queue_filtered"]["p50_ms"],
        "queue_filtered_p95_ms": pages["queue_filtered"]["p95_ms"],
        "queue_filtered_baseline_p95_ms": pages["queue_filtered_baseline"]["p95_ms"],
        "pool_page_p50_ms": pages["pool"]["p50_ms"],
        "pool_page_p95_ms": pages["pool"]["p95_ms"],
        "pool_page_baseline_p95_ms": pages["pool_baseline"]["p95_ms"],
        "baseline_statements": {
            "queue": pages["queue_statement"],
            "queue_filtered": pages["queue_filtered_statement"],
            "pool_page": pages["pool_statement"],
            "dashboard": pages["dashboard_statement"],
            "dashboard_finance": pages["dashboard_finance_statement"],
        },
        **_dashboard_results(pages),
    }
    results.update(submission)
    return results


def _dashboard_results(pages):
    return {
        "dashboard_p50_ms": pages["dashboard"]["p50_ms"],
        "dashboard_p95_ms": pages["dashboard"]["p95_ms"],
        "dashboard_baseline_p95_ms": pages["dashboard_baseline"]["p95_ms"],
        "dashboard_finance_p50_ms": pages["dashboard_finance"]["p50_ms"],
        "dashboard_finance_p95_ms": pages["dashboard_finance"]["p95_ms"],
        "dashboard_finance_baseline_p95_ms": pages["dashboard_finance_baseline"]["p95_ms"],
    }


def run_dashboard():
    """The dashboards alone, with the queue beside them, at HRDFUND_BENCH_SCALE
    applications (`make bench PARTS=dashboard`): the same ratio method as :func:`run`,
    without the submission load or the report, on a world built for this run, or on the
    one built before in the folder HRDFUND_BENCH_WORLD names."""
    database_url = os.environ.get("HRDFUND_BENCH_DATABASE_URL")
    names = ["queue", "dashboard", "dashboard_finance"]
    kept = os.environ.get("HRDFUND_BENCH_WORLD")
    if kept:
        # A world built before in a folder of one's own (`flask hrdfund demo-data`, with
        # its demo-accounts.json): brought up to the current schema, not built again.
        env = _environment(kept, database_url)
        _run(env, "-m", "flask", "db", "upgrade")
        build_seconds, scale = None, _counts(env)
        pages = json.loads(_run(env, "-m", "bench.scale", "pages", *names).splitlines()[-1])
    else:
        with tempfile.TemporaryDirectory(prefix="hrdfund-dashboard-") as instance:
            env = _environment(instance, database_url)
            build_seconds, scale = _build_world(env)
            pages = json.loads(_run(env, "-m", "bench.scale", "pages", *names).splitlines()[-1])
    return {
        "dashboard_scale": scale,
        "dashboard_scale_database": "postgresql" if database_url else "sqlite",
        "dashboard_scale_build_seconds": build_seconds,
        "dashboard_queue_p95_ms": pages["queue"]["p95_ms"],
        "dashboard_queue_baseline_p95_ms": pages["queue_baseline"]["p95_ms"],
        "dashboard_statements": {
            "dashboard": pages["dashboard_statement"],
            "dashboard_finance": pages["dashboard_finance_statement"],
        },
        **_dashboard_results(pages),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["pages"]:
        measure_pages(sys.argv[2:])
    else:
        print(json.dumps(run(), indent=2))
