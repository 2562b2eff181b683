"""The benchmark on both databases: SQLite always, PostgreSQL when `bench/postgres.py`
finds or starts one; `results["databases"]` and the table with a column per database.

- `scale`: the queue, the filtered queue and a pool page against their slowest statement
  run bare. SQLite's come from the scale part `bench/run.py` runs (its figures stay at the
  top level too); on PostgreSQL the same world (HRDFUND_BENCH_SCALE applications) is built
  in a database of its own and those three pages are timed the same way (the dashboards
  and the submission benchmark stay SQLite's: `make bench PARTS=dashboard` with
  HRDFUND_BENCH_DATABASE_URL times the dashboards on PostgreSQL).
- `wave`: the crisis wave of `bench/wave.py`, on each database.

A database not measured in a run says why instead of keeping an older run's figures.
"""

import time
import traceback
from datetime import UTC, datetime

from . import postgres, scale, wave

NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
#: The scale part's pages measured on each database: key here -> (page, key at the top).
PAGES = {
    "queue": ("queue", "queue"),
    "queue_filtered": ("queue_filtered", "queue_filtered"),
    "pool": ("pool", "pool_page"),
}


def _now():
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _from_top(results):
    """SQLite's scale figures, under this section's names, from the top-level ones."""
    figures = {"scale": results["scale"], "scale_build_seconds": results["scale_build_seconds"]}
    for key, (_page, top) in PAGES.items():
        figures[f"{key}_p95_ms"] = results[f"{top}_p95_ms"]
        figures[f"{key}_baseline_p95_ms"] = results[f"{top}_baseline_p95_ms"]
    return figures


def _scale_postgresql(database_url):
    """The scale part's world on ``database_url`` and its three pages, timed as on SQLite."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hrdfund-scale-") as instance:
        env = scale._environment(instance, database_url)
        build_seconds, world = scale._build_world(env)
        pages = json.loads(scale._run(env, "-m", "bench.scale", "pages", *PAGES).splitlines()[-1])
    figures = {"scale": world, "scale_build_seconds": build_seconds, "statements": {}}
    for key in PAGES:
        figures[f"{key}_p95_ms"] = pages[key]["p95_ms"]
        figures[f"{key}_baseline_p95_ms"] = pages[f"{key}_baseline"]["p95_ms"]
        figures["statements"][key] = pages[f"{key}_statement"]
    return figures


def run(parts, results):
    """Measure ``parts`` (of `scale` and `wave`) on each database into
    ``results["databases"]``; the top-level scale figures must be measured already."""
    found = results.setdefault("databases", {})
    sqlite = found.setdefault("sqlite", {})
    sqlite["server"] = "SQLite, a file in a temporary folder"
    if "scale" in parts:
        sqlite.update(_from_top(results), scale_measured_at=results["measured_at"])
    if "wave" in parts:
        started = time.monotonic()
        sqlite.update(wave.run(""), wave_measured_at=_now())
        sqlite["wave_part_seconds"] = round(time.monotonic() - started, 1)
    with postgres.cluster() as (cluster, what):
        if cluster is None:
            found["postgresql"] = {"measured": False, "server": what}
        else:
            known = found.get("postgresql", {})
            found["postgresql"] = entry = known if known.get("measured", True) else {}
            entry.update(server=what)
            entry.pop("measured", None)
            for part, measure in (("scale", _scale_postgresql), ("wave", wave.run)):
                if part not in parts:
                    continue
                started = time.monotonic()
                entry.pop(f"{part}_failed", None)
                try:
                    with cluster.database(part) as url:
                        entry.update(measure(url), **{f"{part}_measured_at": _now()})
                except Exception as exc:  # noqa: BLE001 (SQLite's figures are kept; said below)
                    traceback.print_exc()
                    entry[f"{part}_failed"] = str(exc).splitlines()[0][:300]
                entry[f"{part}_part_seconds"] = round(time.monotonic() - started, 1)
    for entry in found.values():
        entry["targets_met"] = {
            key: check(entry)
            for key, _what, _target, check, _cell in ROWS
            if all(entry.get(k) is not None for k in _needs(key))
        }


def missed(results):
    """The targets a database missed, and the parts that failed, as (database, key)."""
    return [
        (name, key)
        for name, entry in results.get("databases", {}).items()
        for key, met in entry.get("targets_met", {}).items()
        if not met
    ] + [
        (name, key)
        for name, entry in results.get("databases", {}).items()
        for key in entry
        if key.endswith("_failed")
    ]


def _needs(key):
    return NEEDS.get(key, (key, key.replace("_p95_ms", "_baseline_p95_ms")))


def _ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def _page(entry, key):
    p95, base = entry[key], entry[key.replace("_p95_ms", "_baseline_p95_ms")]
    return f"{p95} ms against {base} ms ({_ratio(p95, base)} x)"


NEEDS = {
    "wave_staff_p95_ms": ("wave_staff_p95_ms", "idle_staff_p95_ms"),
    "wave_submit_rps": ("wave_submit_rps", "submit_floor_rps"),
    "wave_errors": ("wave_errors",),
}

#: (key, what it measures, target, check, what the cell says)
ROWS = [
    (
        "wave_staff_p95_ms",
        "staff pages (the queue's first page, then a case on it) during the wave: p95,"
        " against the same pages idle",
        "at most 2 x idle",
        lambda e: e["wave_staff_p95_ms"] <= 2 * e["idle_staff_p95_ms"],
        lambda e: (
            f"{e['wave_staff_p95_ms']} ms against {e['idle_staff_p95_ms']} ms"
            f" ({_ratio(e['wave_staff_p95_ms'], e['idle_staff_p95_ms'])} x)"
        ),
    ),
    (
        "wave_submit_rps",
        "applications sent per second during the wave, against the signed-in floor",
        "at least 0.15 x the floor",
        lambda e: e["wave_submit_rps"] >= 0.15 * e["submit_floor_rps"],
        lambda e: (
            f"{e['wave_submit_rps']} against {e['submit_floor_rps']}"
            f" ({_ratio(e['wave_submit_rps'], e['submit_floor_rps'])} x)"
        ),
    ),
    (
        "wave_errors",
        "requests failed during the wave (of the staff's and the applicants')",
        "none",
        lambda e: e["wave_errors"] == 0,
        lambda e: str(e["wave_errors"]),
    ),
    (
        "queue_p95_ms",
        "staff queue, first page, default sort: p95, against its slowest statement run bare",
        "at most 100 ms and 3 x baseline",
        lambda e: e["queue_p95_ms"] <= 100 and e["queue_p95_ms"] <= 3 * e["queue_baseline_p95_ms"],
        lambda e: _page(e, "queue_p95_ms"),
    ),
    (
        "queue_filtered_p95_ms",
        "staff queue with two filters: p95, the same way",
        "at most 100 ms and 3 x baseline",
        lambda e: (
            e["queue_filtered_p95_ms"] <= 100
            and e["queue_filtered_p95_ms"] <= 3 * e["queue_filtered_baseline_p95_ms"]
        ),
        lambda e: _page(e, "queue_filtered_p95_ms"),
    ),
    (
        "pool_p95_ms",
        "a pool page: p95, the same way",
        "at most 100 ms and 3 x baseline",
        lambda e: e["pool_p95_ms"] <= 100 and e["pool_p95_ms"] <= 3 * e["pool_baseline_p95_ms"],
        lambda e: _page(e, "pool_p95_ms"),
    ),
]


def _cell(entry, key, cell):
    if not all(entry.get(k) is not None for k in _needs(key)):
        return "not measured"
    met = entry.get("targets_met", {}).get(key)
    return f"{cell(entry)}: {'met' if met else 'MISSED'}"


def _worlds(name, entry):
    lines = []
    if "scale" in entry:
        lines.append(
            f"queue and pool page on {entry['scale']['applications']:,} applications and"
            f" {entry['scale']['disbursements']:,} payments (built in"
            f" {entry['scale_build_seconds']} s, measured {entry['scale_measured_at']})"
        )
    if "wave_scale" in entry:
        lines.append(
            f"the wave on {entry['wave_scale']['applications']:,} applications (built in"
            f" {entry['wave_build_seconds']} s; the part took {entry['wave_part_seconds']} s,"
            f" measured {entry['wave_measured_at']}): {entry['wave_submissions']:,}"
            f" applications sent during it, staff pages {entry['idle_staff_requests']:,} idle"
            f" and {entry['wave_staff_requests']:,} during it; the queue's first page p95"
            f" {entry['idle_queue_page_p95_ms']} ms idle and {entry['wave_queue_page_p95_ms']}"
            f" ms during it, a case page {entry['idle_case_page_p95_ms']} ms and"
            f" {entry['wave_case_page_p95_ms']} ms; an application's three requests p95"
            f" {entry['wave_submit_p95_ms']} ms"
        )
    lines += [
        f"the {key.removesuffix('_failed')} part FAILED: {entry[key]}"
        for key in entry
        if key.endswith("_failed")
    ]
    return f"- {NAMES[name]}: {entry['server']}" + ("; " + "; ".join(lines) + "." if lines else ".")


def section(results):
    """The table with a column per database, and what each column was measured on."""
    found = results.get("databases")
    if not found:
        return ""
    names = [n for n in NAMES if n in found]
    head = "| measure | target | " + " | ".join(NAMES[n] for n in names) + " |\n"
    head += "| --- | --- | " + " | ".join("---" for _ in names) + " |\n"
    rows = "".join(
        f"| {what} | {target} | "
        + " | ".join(
            _cell(found[n], key, cell) if found[n].get("measured", True) else "not measured"
            for n in names
        )
        + " |\n"
        for key, what, target, _check, cell in ROWS
    )
    run_time = ""
    if "run_seconds" in results:
        run_time = (
            f' This run (`make bench PARTS="{" ".join(results["run_parts"])}"`) took'
            f" {results['run_seconds'] / 60:.1f} minutes in all."
        )
    return (
        "\n## Both databases\n\n"
        "`make bench` measures the crisis wave (`PARTS=wave`, `bench/wave.py`) and the"
        " queue and pool page of the scale part on SQLite and on PostgreSQL: the"
        " PostgreSQL HRDFUND_BENCH_DATABASE_URL names (its role creates a database beside"
        " it for each part), or else one it starts in a temporary folder when PostgreSQL is"
        " installed. Each ratio is against a baseline measured in the same run on the same"
        f" database.{run_time}\n\n"
        + "\n".join(_worlds(n, found[n]) for n in names)
        + "\n\n"
        + head
        + rows
        + WAVE_NOTES
    )


WAVE_NOTES = """
The wave: gunicorn with 2 sync workers serves the app (with the floor's one route added)
on a demo world of HRDFUND_BENCH_WAVE_SCALE applications (10,000 by default). First 4 staff
clients (2 reviewers and 2 managers of the fund, each its own account, signed in with
password and code) load the queue's first page and then a case it lists, in a loop, for
15 s (HRDFUND_BENCH_WAVE_IDLE_SECONDS): the idle figure. Then 8 signed-in applicants,
each its own account, POST the floor route for as long: the floor. Then the wave, for
30 s (HRDFUND_BENCH_WAVE_SECONDS): the 8 applicants start and send complete applications
(three requests each: choosing the kind of support, the first step, the whole form) while
the 4 staff loop as before. A request fails when it gets no answer or another answer than
a working page gives (a staff page other than 200, a step of an application other than its
redirect); failures are counted, never retried.

What the figures of each run showed is in the notes below.
"""
