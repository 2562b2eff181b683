"""The crisis wave: staff keep working while defenders apply at once.

On a demo world of HRDFUND_BENCH_WAVE_SCALE applications (10,000 by default), served as
production serves it (gunicorn, 2 sync workers, on 127.0.0.1), in one server start:

1. idle: 4 staff clients (2 reviewers, 2 managers of the fund, each its own account,
   signed in with password and code) load the queue's first page, then a case listed on
   it, in a loop, for HRDFUND_BENCH_WAVE_IDLE_SECONDS (15 by default);
2. the floor: 8 signed-in applicant clients, each its own account, POST the floor route of
   `bench/floor_app.py` (the application's own signed-in request doing one INSERT) for
   the same time, with no staff;
3. the wave: the 8 applicants start and send complete applications (three requests each, as
   the submission benchmark sends them) while the 4 staff loop as in 1, for
   HRDFUND_BENCH_WAVE_SECONDS (30 by default).

It reports the staff pages' p50 and p95 idle and during the wave (every page load, queue
and case together, and each apart), the applications sent per second during the wave
against the floor, and the requests that failed. A request fails when it gets no answer
(connection error or timeout) or an answer other than the one a user would see working: a
staff page other than 200, a step of an application other than its redirect. No failed
request is retried, and none is left out of the figures: it counts as an error instead.

The server is `bench.floor_app:app`, the application with the floor's one route added, so
the three phases share one start and its warmed workers.
"""

import collections
import http.client
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse

from . import scale

WAVE_SCALE = int(os.environ.get("HRDFUND_BENCH_WAVE_SCALE", "10000"))
WAVE_SECONDS = float(os.environ.get("HRDFUND_BENCH_WAVE_SECONDS", "30"))
IDLE_SECONDS = float(os.environ.get("HRDFUND_BENCH_WAVE_IDLE_SECONDS", "15"))
APPLICANTS = 8
#: The staff clients' roles, one account each, all of the demo world's own fund.
STAFF = ("reviewer", "manager", "reviewer", "manager")
PASSWORD = secrets.token_urlsafe(18)
#: How many failed requests are kept, as method, path and status, to say what failed.
SAMPLES_KEPT = 5
CASE_LINK = re.compile(r'href="(/applications/[A-Za-z0-9_-]+)"')


class Failed(Exception):
    """A request that failed: what was asked and what came back."""


def _request(browser, method, path, form=None):
    """``browser.request``, with an error that says what failed; a connection that broke is
    opened again for the next request (the cookies are kept)."""
    try:
        return browser.request(method, path, form)
    except (OSError, http.client.HTTPException) as exc:
        browser.connection.close()
        browser.connection = http.client.HTTPConnection(
            browser.connection.host, browser.connection.port, timeout=60
        )
        raise Failed(f"{method} {path}: {type(exc).__name__}") from exc


def _expect(answer, method, path, status, location=None):
    got, where, _text = answer
    if got != status or (location is not None and not location(where)):
        raise Failed(f"{method} {path}: {got}")
    return answer


# -- accounts --------------------------------------------------------------------------


def make_accounts(password):
    """In the app's database: the wave's applicant and staff accounts, staff in the demo
    fund with their code confirmed, as the demo's own staff are. Prints them as JSON."""
    from hrdfund import create_app
    from hrdfund.auth import services
    from hrdfund.auth.models import User
    from hrdfund.core.columns import utcnow
    from hrdfund.core.extensions import db

    app = create_app()
    with open(os.path.join(app.instance_path, "demo-accounts.json")) as fh:
        demo = json.load(fh)
    accounts = []
    with app.app_context():
        reviewer = next(a for a in demo if a["role"] == "reviewer")
        fund_id = db.session.execute(
            db.select(User.fund_id).where(User.login == reviewer["login"])
        ).scalar_one()
        for index in range(APPLICANTS):
            login = f"wave-applicant{index}"
            services.create_user("applicant", login, password)
            accounts.append({"role": "applicant", "login": login, "password": password})
        for index, role in enumerate(STAFF):
            login = f"wave-{role}{index}"
            user = services.create_user(role, login, password, fund_id=fund_id)
            user.totp_confirmed_at = utcnow()
            accounts.append(
                {
                    "role": role,
                    "login": login,
                    "password": password,
                    "totp_secret": user.totp_secret,
                }
            )
        db.session.commit()
    print(json.dumps(accounts))


def _sign_in(browser, account):
    """Sign in over HTTP as a person does: the password, then the code where the role
    needs one."""
    import pyotp

    html = _expect(_request(browser, "GET", "/login"), "GET", "/login", 200)[2]
    form = {
        "login": account["login"],
        "password": account["password"],
        "csrf_token": scale._form_token(html),
    }
    answer = _expect(_request(browser, "POST", "/login", form), "POST", "/login", 302)
    if account.get("totp_secret"):
        if not answer[1].endswith("/login/code"):
            raise Failed(f"{account['login']} was not asked for a code")
        html = _expect(_request(browser, "GET", "/login/code"), "GET", "/login/code", 200)[2]
        form = {
            "code": pyotp.TOTP(account["totp_secret"]).now(),
            "csrf_token": scale._form_token(html),
        }
        _expect(_request(browser, "POST", "/login/code", form), "POST", "/login/code", 302)


# -- what each client does -------------------------------------------------------------


class Tally:
    """Samples and failures of one phase, added to from every client thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples = {"queue": [], "case": [], "submit": [], "floor": []}
        self.errors = 0
        self.failed = []

    def add(self, kind, seconds):
        with self.lock:
            self.samples[kind].append(seconds)

    def fail(self, exc):
        with self.lock:
            self.errors += 1
            if len(self.failed) < SAMPLES_KEPT:
                self.failed.append(str(exc))


def _staff_round(browser, state, tally):
    """The queue's first page, then the next case it lists."""
    start = time.perf_counter()
    html = _expect(_request(browser, "GET", "/cases"), "GET", "/cases", 200)[2]
    tally.add("queue", time.perf_counter() - start)
    links = CASE_LINK.findall(html)
    if not links:
        raise Failed("GET /cases: no case listed")
    path = links[state["turn"] % len(links)]
    state["turn"] += 1
    start = time.perf_counter()
    _expect(_request(browser, "GET", path), "GET", "/applications/<case>", 200)
    tally.add("case", time.perf_counter() - start)


def _submit_round(browser, state, tally):
    """Choose the kind of support (which stores nothing), save the first step (which opens
    the draft), then send the application complete."""
    start = time.perf_counter()
    chosen = "/apply/new?category=relocation"
    html = _expect(_request(browser, "GET", chosen), "GET", "/apply/new", 200)[2]
    location = _expect(
        _request(browser, "POST", "/apply/new", scale.first_step_form(html)),
        "POST",
        "/apply/new",
        302,
        lambda where: "/steps/" in where,
    )[1]
    edit = urllib.parse.urlparse(location).path.rsplit("/steps/", 1)[0] + "/edit"
    form = {**scale.APPLICATION, "csrf_token": state["token"]}
    _expect(
        _request(browser, "POST", edit, form),
        "POST",
        "/applications/<case>/edit",
        302,
        lambda where: not where.endswith("/edit"),
    )
    tally.add("submit", time.perf_counter() - start)


def _floor_round(browser, state, tally):
    start = time.perf_counter()
    form = {"body": "x" * 600, "csrf_token": state["token"]}
    _expect(_request(browser, "POST", "/bench/floor", form), "POST", "/bench/floor", 200)
    tally.add("floor", time.perf_counter() - start)


def _phase(seconds, clients):
    """Run each (browser, state, round) of ``clients`` in a thread of its own, all starting
    together, until ``seconds`` have passed. Returns the tally and the seconds taken."""
    tally, go = Tally(), threading.Event()
    stop_at = []

    def loop(browser, state, one_round):
        go.wait()
        while time.monotonic() < stop_at[0]:
            try:
                one_round(browser, state, tally)
            except Failed as exc:
                tally.fail(exc)

    threads = [threading.Thread(target=loop, args=client) for client in clients]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    stop_at.append(started + seconds)
    go.set()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - started


def _text(log):
    return b"".join(log).decode(errors="replace")[-4000:]


def _p(samples):
    """(p50, p95) in ms, or (None, None) when nothing was measured."""
    if len(samples) < 2:
        return None, None
    return scale._quantiles(samples)


# -- the run ---------------------------------------------------------------------------


def measure(env, accounts):
    """Serve the app with ``env`` and run the three phases; return the figures."""
    port = scale._free_port()
    server = scale._serve(env, "bench.floor_app:app", port)
    # The server's own log, read as it comes (a full pipe would stop the workers) and
    # shown when something failed.
    log = collections.deque(maxlen=40)
    reader = threading.Thread(target=lambda: log.extend(server.stderr), daemon=True)
    reader.start()
    staff, applicants, failure = [], [], None
    try:
        for account in accounts:
            browser = scale.Browser(port)
            _sign_in(browser, account)
            if account["role"] == "applicant":
                html = _expect(_request(browser, "GET", "/apply"), "GET", "/apply", 200)[2]
                applicants.append((browser, {"token": scale._form_token(html)}))
            else:
                staff.append((browser, {"turn": len(staff)}))
        warm = Tally()  # every page once on each client before anything is timed
        for browser, state in staff:
            _staff_round(browser, state, warm)
        staff_clients = [(b, s, _staff_round) for b, s in staff]
        idle, _idle_seconds = _phase(IDLE_SECONDS, staff_clients)
        floor, floor_seconds = _phase(IDLE_SECONDS, [(b, s, _floor_round) for b, s in applicants])
        wave, wave_seconds = _phase(
            WAVE_SECONDS, staff_clients + [(b, s, _submit_round) for b, s in applicants]
        )
    except Failed as exc:  # before any phase: a client could not even sign in
        failure = exc
    finally:
        scale._stop(server)
        reader.join(timeout=10)
        server.stderr.close()
        for browser, _state in staff + applicants:
            browser.connection.close()
    if failure is not None:
        raise RuntimeError(f"{failure}; the server said:\n{_text(log)}") from failure
    if idle.errors or floor.errors or wave.errors:
        print(f"Requests failed; the server said:\n{_text(log)}", file=sys.stderr)
    results = {}
    for name, tally in (("idle", idle), ("wave", wave)):
        pages = tally.samples["queue"] + tally.samples["case"]
        results[f"{name}_staff_p50_ms"], results[f"{name}_staff_p95_ms"] = _p(pages)
        results[f"{name}_staff_requests"] = len(pages)
        for page in ("queue", "case"):
            results[f"{name}_{page}_page_p95_ms"] = _p(tally.samples[page])[1]
    results.update(
        wave_submissions=len(wave.samples["submit"]),
        wave_submit_rps=round(len(wave.samples["submit"]) / wave_seconds, 1),
        wave_submit_p95_ms=_p(wave.samples["submit"])[1],
        submit_floor_rps=round(len(floor.samples["floor"]) / floor_seconds, 1),
        wave_errors=wave.errors,
        idle_errors=idle.errors,
        submit_floor_errors=floor.errors,
        wave_failed_requests=(idle.failed + floor.failed + wave.failed)[:SAMPLES_KEPT],
    )
    return results


def run(database_url=""):
    """Build the wave's world on ``database_url`` (an empty PostgreSQL database the run may
    fill) or, when it is empty, on SQLite in a temporary folder; measure; return the
    figures."""
    with tempfile.TemporaryDirectory(prefix="hrdfund-wave-") as instance:
        env = scale._environment(instance, database_url)
        started = time.monotonic()
        scale._run(env, "-m", "flask", "db", "upgrade")
        scale._run(env, "-m", "flask", "hrdfund", "demo-data", "--scale", str(WAVE_SCALE))
        build_seconds = round(time.monotonic() - started, 1)
        world = scale._counts(env)
        accounts = json.loads(
            scale._run(env, "-m", "bench.wave", "accounts", PASSWORD).splitlines()[-1]
        )
        serving = scale._environment(instance, database_url, production=True)
        # The twelve clients sign in one after another before anything is timed: on a quiet
        # machine that is faster than the server's budget of password checks lets new
        # browsers sign in (SECURITY.md), which the wave does not measure.
        serving["HRDFUND_PASSWORD_CHECKS_PER_MINUTE"] = "6000"  # noqa: S105 (a rate)
        started = time.monotonic()
        results = measure(serving, accounts)
        results.update(
            wave_scale=world,
            wave_build_seconds=build_seconds,
            wave_measure_seconds=round(time.monotonic() - started, 1),
            wave_seconds=WAVE_SECONDS,
            wave_idle_seconds=IDLE_SECONDS,
            wave_applicants=APPLICANTS,
            wave_staff=len(STAFF),
            wave_workers=scale.WORKERS,
        )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["accounts"]:
        make_accounts(sys.argv[2])
    else:
        print(json.dumps(run(os.environ.get("HRDFUND_BENCH_DATABASE_URL", "")), indent=2))
