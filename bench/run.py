"""`make bench`: measure, write bench/results.json and the table in bench/README.md.

Every figure is set beside a baseline measured in the same run on the same machine, and
the targets are checked as ratios, because machines are noisy.
"""

import json
import os
import platform
from datetime import UTC, datetime

from . import report

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.json")
README = os.path.join(HERE, "README.md")
#: (key, what it measures, target, check on the results)
TARGETS = [
    (
        "report_seconds",
        "donor report (PDF and CSV) of a pool with 50,000 payments in the year",
        "at most 2 x bare ReportLab",
        lambda r: r["report_seconds"] <= 2 * r["report_baseline_seconds"],
    ),
    (
        "report_peak_mb",
        "peak memory of the process building that report",
        "under 400 MB",
        lambda r: r["report_peak_mb"] < 400,
    ),
]


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
    results.update(report.run())
    results["machine"] = machine()
    results["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["targets_met"] = {key: check(results) for key, _what, _target, check in TARGETS}
    with open(RESULTS, "w") as fh:
        json.dump(results, fh, indent=2, sort_keys=True)
        fh.write("\n")
    verdict = {True: "met", False: "MISSED"}
    rows = "\n".join(
        f"| {what} | {results[key]} | {target} | {verdict[results['targets_met'][key]]} |"
        for key, what, target, _check in TARGETS
    )
    with open(README, "w") as fh:
        fh.write(
            "# Benchmarks\n\n"
            "`make bench` builds its own data in a temporary folder, measures each figure"
            " against a baseline in the same run, and writes `results.json` and this table.\n\n"
            f"Latest run: {results['measured_at']}, on {results['machine']}.\n\n"
            "| measure | result | target | |\n| --- | --- | --- | --- |\n"
            f"{rows}\n\n"
            f"Baseline for the report: bare ReportLab writing the same"
            f" {results['report_disbursements']} payment rows into tables, a page each, took"
            f" {results['report_baseline_seconds']} s and"
            f" {results['report_baseline_peak_mb']} MB at its peak.\n"
        )
    print(json.dumps(results, indent=2, sort_keys=True))
    if not all(results["targets_met"].values()):
        raise SystemExit("a target was missed; see bench/README.md")


if __name__ == "__main__":
    main()
