"""What one application costs the server: the submission's requests run in-process, in a
test client, on a demo world (``python -m bench.submission_profile [rounds]``).

Each round sends an application as the crisis wave does: choose the kind of support
(``POST /apply``, which stores nothing), save the first step (``POST /apply/new``, which
opens the draft), then send the whole form complete (``POST /applications/<uid>/edit``).
For each request it reports the CPU time of this process (``time.process_time``), the SQL
statements run, and how long the request held what makes concurrent submissions take
turns: on SQLite the write lock (from ``BEGIN IMMEDIATE`` to the commit), on PostgreSQL an
audit chain's lock (from ``pg_advisory_xact_lock`` to the commit), with the statements
run while it was held. A signed-in request that does one INSERT (the floor of
`bench/floor_app.py`) is measured the same way, for scale.

HRDFUND_BENCH_DATABASE_URL names an empty PostgreSQL database to use (SQLite in a
temporary folder otherwise); HRDFUND_BENCH_PROFILE names a file to write a cProfile of
the rounds to (``python -m pstats`` reads it); HRDFUND_BENCH_SQL=1 prints the statements
of the last round's requests.
"""

import base64
import cProfile
import json
import os
import re
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa

from . import scale

PASSWORD = "bench password of the submission profile"  # noqa: S105 (a local test world)
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _key():
    return base64.b64encode(os.urandom(32)).decode()


class Tally:
    """The statements of the request under way, and what each held."""

    def __init__(self):
        self.statements = []
        self.lock_started = None
        self.lock_statements = 0
        self.lock_seconds = 0.0

    def start(self):
        self.statements = []
        self.lock_started = None
        self.lock_statements = 0
        self.lock_seconds = 0.0

    def statement(self, text):
        self.statements.append(text)
        begins = text.startswith("BEGIN IMMEDIATE") or "pg_advisory_xact_lock" in text
        if self.lock_started is None and begins:
            self.lock_started = time.perf_counter()
        if self.lock_started is not None:
            self.lock_statements += 1

    def ended(self):
        if self.lock_started is not None:
            self.lock_seconds += time.perf_counter() - self.lock_started
            self.lock_started = None


def _listen(engine, tally):
    @sa.event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn, _cursor, statement, *_args):
        tally.statement(statement)

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _end(_conn):
        tally.ended()


def _make_app(instance, database_url):
    from hrdfund import create_app

    config = {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url
        or "sqlite:///" + os.path.join(instance, "hrdfund.sqlite3"),
        "INSTANCE_PATH": instance,
        "SECRET_KEY": _key(),
        "HRDFUND_ENCRYPTION_KEY": _key(),
        "HRDFUND_AUDIT_KEY": _key(),
        "WTF_CSRF_ENABLED": True,
        "TESTING": False,
    }
    return create_app(config)


def _build(app, applicants):
    from hrdfund.auth import services
    from hrdfund.cli.demo import after_bulk_load
    from hrdfund.core.extensions import db
    from hrdfund.demo import load_demo_data

    with app.app_context():
        db.create_all()
        load_demo_data(int(os.environ.get("HRDFUND_BENCH_PROFILE_SCALE", "300")))
        for index in range(applicants):
            services.create_user("applicant", f"profile-applicant{index}", PASSWORD)
        db.session.commit()
        after_bulk_load()
        from bench import floor

        floor.create_table()


def _sign_in(client, login):
    token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    answer = client.post("/login", data={"login": login, "password": PASSWORD, "csrf_token": token})
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return TOKEN.search(client.get("/apply").get_data(as_text=True)).group(1)


def _timed(tally, figures, name, send):
    tally.start()
    started_cpu, started = time.process_time(), time.perf_counter()
    answer = send()
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    tally.ended()
    figures.setdefault(name, []).append(
        {
            "cpu_ms": cpu * 1000,
            "wall_ms": wall * 1000,
            "statements": len(tally.statements),
            "lock_ms": tally.lock_seconds * 1000,
            "lock_statements": tally.lock_statements,
            "sql": list(tally.statements),
        }
    )
    return answer


def _submission(client, token, tally, figures):
    answer = _timed(
        tally,
        figures,
        "choose",
        lambda: client.get("/apply/new", query_string={"category": "relocation"}),
    )
    if answer.status_code != 200:
        raise RuntimeError(f"choosing answered {answer.status_code}")
    first = scale.first_step_form(answer.get_data(as_text=True))
    answer = _timed(tally, figures, "first_step", lambda: client.post("/apply/new", data=first))
    if answer.status_code != 302 or "/steps/" not in answer.location:
        raise RuntimeError(f"the first step answered {answer.status_code}")
    edit = answer.location.rsplit("/steps/", 1)[0] + "/edit"
    form = {**scale.APPLICATION, "csrf_token": token}
    answer = _timed(tally, figures, "send", lambda: client.post(edit, data=form))
    if answer.status_code != 302 or answer.location.endswith("/edit"):
        raise RuntimeError(f"sending answered {answer.status_code}")


def _summary(samples):
    out = {}
    for key in ("cpu_ms", "wall_ms", "statements", "lock_ms", "lock_statements"):
        values = [s[key] for s in samples]
        out[key] = round(statistics.median(values), 2)
    return out


def run(rounds=60):
    database_url = os.environ.get("HRDFUND_BENCH_DATABASE_URL", "")
    with tempfile.TemporaryDirectory(prefix="hrdfund-submission-") as instance:
        app = _make_app(instance, database_url)
        _build(app, 2)
        from bench import floor

        floor.add_route(app)
        tally = Tally()
        with app.app_context():
            from hrdfund.core.extensions import db

            _listen(db.engine, tally)
            dialect = db.engine.dialect.name
        client = app.test_client()
        token = _sign_in(client, "profile-applicant0")
        figures = {}
        for _ in range(5):  # warm what each process loads once
            _submission(client, token, tally, figures)
            _timed(
                tally,
                figures,
                "floor",
                lambda: client.post("/bench/floor", data={"body": "x" * 600, "csrf_token": token}),
            )
        figures = {}
        profile = os.environ.get("HRDFUND_BENCH_PROFILE")
        profiler = cProfile.Profile() if profile else None
        for _ in range(rounds):
            if profiler:
                profiler.enable()
            _submission(client, token, tally, figures)
            if profiler:
                profiler.disable()
            _timed(
                tally,
                figures,
                "floor",
                lambda: client.post("/bench/floor", data={"body": "x" * 600, "csrf_token": token}),
            )
        if os.environ.get("HRDFUND_BENCH_SQL"):
            for name in ("choose", "first_step", "send", "floor"):
                print(f"-- {name}", file=sys.stderr)
                for text in figures[name][-1]["sql"]:
                    print("  " + " ".join(text.split())[:160], file=sys.stderr)
        if profiler:
            profiler.dump_stats(profile)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    results = {"database": dialect, "rounds": rounds}
    for name, samples in figures.items():
        results[name] = _summary(samples)
    submission = [
        sum(figures[name][i][key] for name in ("choose", "first_step", "send"))
        for i in range(rounds)
        for key in ("cpu_ms",)
    ]
    results["submission_cpu_ms"] = round(statistics.median(submission), 2)
    results["submission_statements"] = sum(
        results[name]["statements"] for name in ("choose", "first_step", "send")
    )
    results["floor_to_submission"] = round(
        results["floor"]["cpu_ms"] / results["submission_cpu_ms"], 3
    )
    return results


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if sys.argv[1:] else 60), indent=2))
