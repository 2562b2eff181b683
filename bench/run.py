"""`make bench`: measure, write bench/results.json and the table in bench/README.md.

Every figure is set beside a baseline measured in the same run on the same machine, and
the targets are checked as ratios, because machines are noisy.
"""

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime

from . import databases, report, scale

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.json")
README = os.path.join(HERE, "README.md")
#: (key, what it measures, baseline key, target, check on the results)
TARGETS = [
    (
        "queue_p95_ms",
        "staff queue, first page, default sort: p95 ms",
        "queue_baseline_p95_ms",
        "at most 100 ms and 3 x baseline",
        lambda r: r["queue_p95_ms"] <= 100 and r["queue_p95_ms"] <= 3 * r["queue_baseline_p95_ms"],
    ),
    (
        "queue_filtered_p95_ms",
        "staff queue with two filters: p95 ms",
        "queue_filtered_baseline_p95_ms",
        "at most 100 ms and 3 x baseline",
        lambda r: (
            r["queue_filtered_p95_ms"] <= 100
            and r["queue_filtered_p95_ms"] <= 3 * r["queue_filtered_baseline_p95_ms"]
        ),
    ),
    (
        "pool_page_p95_ms",
        "a pool page (its six figures and the latest rows of each kind): p95 ms",
        "pool_page_baseline_p95_ms",
        "at most 100 ms and 3 x baseline, as the queue",
        lambda r: (
            r["pool_page_p95_ms"] <= 100
            and r["pool_page_p95_ms"] <= 3 * r["pool_page_baseline_p95_ms"]
        ),
    ),
    (
        "dashboard_p95_ms",
        "a manager's dashboard (its cards, stages, money by pool and charts): p95 ms",
        "dashboard_baseline_p95_ms",
        "at most 100 ms and 3 x baseline, as the queue",
        lambda r: (
            r["dashboard_p95_ms"] <= 100
            and r["dashboard_p95_ms"] <= 3 * r["dashboard_baseline_p95_ms"]
        ),
    ),
    (
        "dashboard_finance_p95_ms",
        "finance's dashboard: p95 ms",
        "dashboard_finance_baseline_p95_ms",
        "at most 100 ms and 3 x baseline, as the queue",
        lambda r: (
            r["dashboard_finance_p95_ms"] <= 100
            and r["dashboard_finance_p95_ms"] <= 3 * r["dashboard_finance_baseline_p95_ms"]
        ),
    ),
    (
        "report_seconds",
        "donor report (PDF and CSV) of a pool with 50,000 payments in an ended year, its first"
        " (deciding what the year's periods say about people): s",
        "report_baseline_seconds",
        "at most 2 x baseline",
        lambda r: r["report_seconds"] <= 2 * r["report_baseline_seconds"],
    ),
    (
        "report_peak_mb",
        "peak memory of the process building that report: MB",
        "report_baseline_peak_mb",
        "under 400 MB",
        lambda r: r["report_peak_mb"] < 400,
    ),
    (
        "submit_rps",
        "applications started and sent per second, 8 clients, gunicorn 2 workers",
        "submit_baseline_rps",
        "at least half the baseline",
        lambda r: r["submit_rps"] >= 0.5 * r["submit_baseline_rps"],
    ),
    (
        "submit_floor_rps",
        "the application's own signed-in POST doing that one INSERT, per second",
        "submit_baseline_rps",
        "none set: what every request of the application pays",
        None,
    ),
]

#: Where the README's own notes begin: everything from here on is written by hand (what
#: the figures mean, profiles, plans) and kept as it is by every run.
NOTES_HEADING = "\n## Notes\n"


def kept_notes():
    """The README's notes, as they stand, for the README this run writes."""
    try:
        with open(README) as fh:
            text = fh.read()
    except FileNotFoundError:
        return NOTES_HEADING
    at = text.find(NOTES_HEADING)
    return text[at:] if at >= 0 else NOTES_HEADING


BASELINES = {
    "queue_p95_ms": "a bare Flask route running the page's slowest SQL statement",
    "queue_filtered_p95_ms": "the same, for the filtered page",
    "pool_page_p95_ms": "the same, for the pool page",
    "dashboard_p95_ms": "the same, for the dashboard",
    "dashboard_finance_p95_ms": "the same, for finance's dashboard",
    "report_seconds": "bare ReportLab writing the same rows, a page-sized table at a time",
    "report_peak_mb": "that baseline's peak",
    "submit_rps": "a bare Flask route doing one INSERT per request, same server and clients",
    "submit_floor_rps": "the same bare route",
}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = f"{names[0]}, {len(names)} logical CPUs" if names else cpu
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GB RAM"
    except (OSError, ValueError, IndexError):
        memory = "memory unknown"
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}; {memory}; {system}; Python {platform.python_version()}"


def main():
    results = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as fh:
            results = json.load(fh)
    parts = sys.argv[1:] or ["scale", "report", "wave"]
    started = time.monotonic()
    if "scale" in parts:
        results.update(scale.run(database_url=""))  # SQLite's at the top level
    elif "dashboard" in parts:
        results.update(scale.run_dashboard())
    if "report" in parts:
        results.update(report.run())
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if {"scale", "report"} & set(parts):  # `PARTS=table` only rewrites the table
        results["machine"] = machine()
        results["measured_at"] = now
    if {"scale", "wave"} & set(parts):  # both databases: bench/databases.py
        databases.run(parts, results)
        results["databases_machine"] = machine()
    if {"scale", "report", "wave", "dashboard"} & set(parts):
        results["run_parts"] = parts
        results["run_seconds"] = round(time.monotonic() - started)
    if {"scale", "dashboard"} & set(parts):
        results["dashboard_measured_at"] = now
        results["dashboard_machine"] = machine()
        if "scale" in parts:
            results["dashboard_scale"] = results["scale"]
            for key in ("statements", "queue_p95_ms", "queue_baseline_p95_ms"):
                results.pop(f"dashboard_{key}", None)
    results["targets_met"] = {
        key: check(results)
        for key, _what, _base, _target, check in TARGETS
        if key in results and check is not None
    }
    with open(RESULTS, "w") as fh:
        json.dump(results, fh, indent=2, sort_keys=True)
        fh.write("\n")
    verdict = {True: "met", False: "MISSED", None: ""}
    rows = "\n".join(
        f"| {what} | {results[key]} | {results[base]} ({BASELINES[key]}) | {target} |"
        f" {verdict[results['targets_met'].get(key)]} |"
        for key, what, base, target, _check in TARGETS
        if key in results
    )
    scale_line = ""
    if "scale" in results:
        scale_line = (
            f"Data: {results['scale']['applications']:,} applications and"
            f" {results['scale']['disbursements']:,} disbursements on"
            f" {results['scale_database']}, built by `flask hrdfund demo-data --scale"
            f" {results['scale']['applications']}` in {results['scale_build_seconds']} s.\n\n"
        )
    dashboard_line = ""
    if "dashboard_scale" in results:
        dashboard_line = (
            f"Dashboards: measured {results['dashboard_measured_at']} on"
            f" {results['dashboard_machine']}, with"
            f" {results['dashboard_scale']['applications']:,} applications and"
            f" {results['dashboard_scale']['disbursements']:,} disbursements"
            + (
                f" (`make bench PARTS=dashboard`, HRDFUND_BENCH_SCALE); the queue's first page"
                f" on that world: p95 {results['dashboard_queue_p95_ms']} ms against"
                f" {results['dashboard_queue_baseline_p95_ms']} ms"
                if "dashboard_queue_p95_ms" in results
                else ""
            )
            + ".\n\n"
        )
    notes = kept_notes()
    with open(README, "w") as fh:
        fh.write(
            "# Benchmarks\n\n"
            "`make bench` builds its own data in a temporary folder, measures each figure"
            " against a baseline in the same run, and writes `results.json` and this table"
            " (`make bench PARTS=report` or `PARTS=scale` runs one part).\n\n"
            f"Latest run: {results['measured_at']}, on {results['machine']}.\n\n"
            f"{scale_line}"
            f"{dashboard_line}"
            "| measure | result | baseline | target | |\n| --- | --- | --- | --- | --- |\n"
            f"{rows}\n"
            f"{databases.section(results)}"
            f"{notes}"
        )
    print(json.dumps(results, indent=2, sort_keys=True))
    if not all(results["targets_met"].values()) or databases.missed(results):
        raise SystemExit("a target was missed; see bench/README.md")


if __name__ == "__main__":
    main()
