"""The crisis wave's driver, end to end on a tiny world (not timed: the figures of a world of
50 applications over a few seconds say nothing about speed), on SQLite and on the
PostgreSQL `make bench` uses (HRDFUND_BENCH_DATABASE_URL's cluster, or one it starts).

About a minute (a demo world, a gunicorn start, three short phases), so it is kept out of
the normal suite (`tests/`): run it with `.venv/bin/pytest bench/test_wave.py`.
"""

import os
import subprocess
import sys
import tempfile
import time

import pytest
import sqlalchemy as sa

from bench import databases, postgres, scale, wave

FLOOR_COLUMNS = "id SERIAL PRIMARY KEY, at TEXT, body TEXT"

#: What `results["databases"][...]` must hold for each database.
REQUIRED = {
    "wave_staff_p95_ms",
    "idle_staff_p95_ms",
    "wave_submit_rps",
    "submit_floor_rps",
    "wave_errors",
    "pool_p95_ms",
    "pool_baseline_p95_ms",
    "queue_p95_ms",
    "queue_baseline_p95_ms",
}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(wave, "WAVE_SCALE", 50)
    monkeypatch.setattr(wave, "WAVE_SECONDS", 3)
    monkeypatch.setattr(wave, "IDLE_SECONDS", 2)


@pytest.fixture
def postgresql_url():
    """A database of the PostgreSQL `make bench` uses, dropped afterwards."""
    with postgres.cluster() as (cluster, why):
        if cluster is None:
            if os.environ.get("CI") == "true":
                pytest.fail(why)
            pytest.skip(why)
        with cluster.database("wave_test") as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """ "" for SQLite, or a PostgreSQL database's URL."""
    return "" if request.param == "sqlite" else request.getfixturevalue("postgresql_url")


def test_the_wave_runs_end_to_end_and_gives_every_figure(tiny, database_url):
    figures = wave.run(database_url)

    assert figures["wave_errors"] == 0, figures["wave_failed_requests"]
    assert figures["idle_errors"] == 0 and figures["submit_floor_errors"] == 0
    # Every phase did its work: staff pages idle and during the wave, applications sent
    # (each one a case the staff's next queue may list), the floor's inserts.
    assert figures["idle_staff_requests"] > 4 and figures["wave_staff_requests"] > 4
    assert figures["wave_submissions"] > 0 and figures["wave_submit_rps"] > 0
    assert figures["submit_floor_rps"] > 0
    for key in ("idle", "wave"):
        assert 0 < figures[f"{key}_staff_p50_ms"] <= figures[f"{key}_staff_p95_ms"]
        assert figures[f"{key}_queue_page_p95_ms"] > 0 and figures[f"{key}_case_page_p95_ms"] > 0
    assert figures["wave_scale"]["applications"] >= 50

    # With the scale part's page figures beside them, the database's entry has every key
    # the results promise, and the table gives each a cell with its verdict.
    pages = {
        f"{page}{part}_p95_ms": 10.0
        for page in ("queue", "queue_filtered", "pool")
        for part in ("", "_baseline")
    }
    entry = {**figures, **pages, "server": "test", "wave_part_seconds": 1}
    entry["wave_measured_at"] = "now"
    assert REQUIRED <= set(entry)
    results = {"databases": {"sqlite": entry}}
    entry["targets_met"] = {
        key: check(entry) for key, _what, _target, check, _cell in databases.ROWS
    }
    table = databases.section(results)
    assert "not measured" not in table
    assert table.count(": met") + table.count(": MISSED") == len(databases.ROWS)


def test_a_request_that_fails_is_counted_not_retried_nor_timed():
    answers = iter([(200, "", "page"), (500, "", "error"), (302, "/login", "")])

    class Browser:
        def request(self, _method, _path, _form=None):
            return next(answers, (200, "", "page"))

    def one(browser, state, tally):
        wave._expect(wave._request(browser, "GET", "/cases"), "GET", "/cases", 200)
        tally.add("queue", 0.01)
        state["done"] += 1

    state = {"done": 0}
    tally, seconds = wave._phase(0.2, [(Browser(), state, one)])

    assert tally.errors == 2
    assert tally.failed == ["GET /cases: 500", "GET /cases: 302"]
    assert len(tally.samples["queue"]) == state["done"] > 1
    assert seconds >= 0.2


def test_a_database_not_measured_says_why_and_gives_no_figure():
    results = {
        "databases": {
            "sqlite": {"server": "SQLite", "wave_errors": 0, "targets_met": {"wave_errors": True}},
            "postgresql": {"measured": False, "server": "no PostgreSQL is installed"},
        }
    }

    table = databases.section(results)

    assert "- PostgreSQL: no PostgreSQL is installed." in table
    row = next(line for line in table.splitlines() if line.startswith("| requests failed"))
    assert row.endswith("| 0: met | not measured |")
    assert databases.missed(results) == []


def test_the_floor_server_starts_when_its_workers_create_its_table_at_once(postgresql_url):
    """Each gunicorn worker creates the floor's table as it starts; on PostgreSQL a worker
    whose CREATE meets another's, not yet committed, must still start."""
    engine = sa.create_engine(postgresql_url)
    with tempfile.TemporaryDirectory() as instance, engine.connect() as first:
        first.execute(sa.text(f"CREATE TABLE bench_floor ({FLOOR_COLUMNS})"))
        env = scale._environment(instance, postgresql_url)
        second = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed import)
            [sys.executable, "-c", "import bench.floor_app"],
            cwd=scale.ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'CREATE TABLE IF NOT EXISTS bench_floor%'"
        )
        deadline = time.monotonic() + 120
        with engine.connect() as watcher:
            while not watcher.execute(waiting).scalar() and second.poll() is None:
                assert time.monotonic() < deadline, "the second create never waited"
                time.sleep(0.2)
                watcher.rollback()
        first.commit()  # the second worker's create now meets a table made meanwhile
        _out, err = second.communicate(timeout=120)
    engine.dispose()

    assert second.returncode == 0, err[-2000:]
