"""The donor report of one pool with 50,000 disbursements in a year, against bare ReportLab
writing the same rows into tables with no other work. The year is last year, ended, and
each measurement is its first report: the one that decides and keeps what every period of
the year says about people (later reports serve it as kept).

Each measurement runs in a fresh process (``python -m bench.report report|baseline ...``)
so that its peak memory, the maximum resident set size, is its own. `make bench` runs
:func:`run`; the results go to bench/results.json.
"""

import io
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYMENTS = 50_000
#: Rows of the baseline's tables: what fits on an A4 page.
ROWS_PER_PAGE = 45


def _env(instance):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(HRDFUND_ENV="development", HRDFUND_INSTANCE_PATH=instance, FLASK_APP="app")
    return env


def _run(instance, *args):
    done = subprocess.run(  # noqa: S603 (this interpreter, arguments written here)
        [sys.executable, *args], cwd=ROOT, env=_env(instance), capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def add_payments(payments):
    """In the app's database: copy the payments of the pool that has most until it holds
    ``payments`` last year, each with its own code, key, date (recorded that day) and
    seal. Prints the pool's id."""
    import sqlalchemy as sa

    from hrdfund import audit, create_app
    from hrdfund.core.columns import ENCRYPTED_CLASSES, new_uid
    from hrdfund.core.extensions import db
    from hrdfund.ledger.models import Disbursement

    app = create_app()
    with app.app_context():
        rng = random.Random(7)  # noqa: S311 (made-up data, seeded to repeat)
        pool_id = db.session.execute(
            sa.select(Disbursement.pool_id)
            .where(Disbursement.reversal_of_id.is_(None))
            .group_by(Disbursement.pool_id)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).scalar_one()
        models = (
            db.session.execute(
                sa.select(Disbursement).where(
                    Disbursement.pool_id == pool_id, Disbursement.reversal_of_id.is_(None)
                )
            )
            .scalars()
            .all()
        )
        first = date(date.today().year - 1, 1, 1)
        days = (date(first.year + 1, 1, 1) - first).days
        have = db.session.execute(
            sa.select(sa.func.count())
            .select_from(Disbursement)
            .where(
                Disbursement.pool_id == pool_id,
                Disbursement.paid_on >= first,
                Disbursement.paid_on < date(first.year + 1, 1, 1),
            )
        ).scalar()
        columns = Disbursement.__mapper__.columns
        hidden = ENCRYPTED_CLASSES
        rows = []
        for _ in range(payments - have):
            model = rng.choice(models)
            # Encrypted texts and their indexes are bound to their row: the copies have none.
            row = {
                c.name: None if c.info.get("data_class") in hidden else getattr(model, c.key)
                for c in columns
                if c.name != "id"
            }
            row.update(
                uid=new_uid(),
                idempotency_key=new_uid() + new_uid(),
                payee_details=None,
                proof_document_id=None,
                reference=None,
                reference_key=None,
                paid_on=first + timedelta(days=rng.randrange(days)),
            )
            row["created_at"] = datetime.combine(row["paid_on"], datetime.min.time()) + timedelta(
                hours=rng.randrange(8, 18)
            )
            row["seal"] = audit.seal("disbursements", row)
            rows.append(row)
            if len(rows) == 5000:
                db.session.execute(Disbursement.__table__.insert(), rows)
                rows = []
        if rows:
            db.session.execute(Disbursement.__table__.insert(), rows)
        db.session.commit()
    print(pool_id)


def measure_report(pool_id, period):
    """The first donor report of the ended year, PDF and CSV, as a download builds them:
    what the year's periods say about people decided and kept, then the report built from
    it. Prints JSON."""
    import sqlalchemy as sa

    from hrdfund import create_app
    from hrdfund.core.columns import utcnow
    from hrdfund.core.extensions import db
    from hrdfund.pools.models import Pool
    from hrdfund.reports.csv_export import render_csv
    from hrdfund.reports.data import build_report
    from hrdfund.reports.issue import issue_ended
    from hrdfund.reports.models import IssuedFigures
    from hrdfund.reports.pdf import render_pdf
    from hrdfund.reports.periods import parse_period

    app = create_app()
    with app.app_context(), app.test_request_context():
        # Each measurement is a first report: what an earlier one kept goes.
        db.session.execute(sa.delete(IssuedFigures).where(IssuedFigures.pool_id == int(pool_id)))
        db.session.commit()
        pool = db.session.get(Pool, int(pool_id))
        chosen, today = parse_period(period), utcnow().date()
        start = time.perf_counter()
        issue_ended(pool, chosen, today)
        db.session.commit()
        report = build_report(pool, chosen, today=today)
        render_pdf(report)
        render_csv(report)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb()}))


def measure_baseline(db_path, pool_id, period):
    """Bare ReportLab: the pool's payment rows of the year, one query, written as tables
    of a page each (one table of 50,000 rows takes ReportLab some 90 s to split into
    pages; a page at a time is how one would write it, and the harder bar)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate, Table

    year = int(period)
    start = time.perf_counter()
    rows = (
        sqlite3.connect(db_path)
        .execute(
            "SELECT paid_on, amount, currency_paid, fee_amount FROM disbursements"
            " WHERE pool_id = ? AND paid_on >= ? AND paid_on < ?",
            (int(pool_id), f"{year}-01-01", f"{year + 1}-01-01"),
        )
        .fetchall()
    )
    cells = [list(map(str, r)) for r in rows]
    pages = [Table(cells[i : i + ROWS_PER_PAGE]) for i in range(0, len(cells), ROWS_PER_PAGE)]
    SimpleDocTemplate(io.BytesIO(), pagesize=A4).build(pages)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "rows": len(rows)}))


def run(repeat=3):
    """Build the dataset in a temporary instance, then measure each side ``repeat`` times:
    the best time, and the highest peak memory."""
    period = str(date.today().year - 1)
    with tempfile.TemporaryDirectory(prefix="hrdfund-bench-") as instance:
        _run(instance, "-m", "flask", "db", "upgrade")
        _run(instance, "-m", "flask", "hrdfund", "demo-data", "--scale", "300")
        pool_id = _run(instance, "-m", "bench.report", "payments", str(PAYMENTS))
        db_path = os.path.join(instance, "hrdfund.sqlite3")
        reports = [
            json.loads(_run(instance, "-m", "bench.report", "report", pool_id, period))
            for _ in range(repeat)
        ]
        baselines = [
            json.loads(_run(instance, "-m", "bench.report", "baseline", db_path, pool_id, period))
            for _ in range(repeat)
        ]
    return {
        "report_seconds": round(min(r["seconds"] for r in reports), 3),
        "report_peak_mb": round(max(r["peak_mb"] for r in reports), 1),
        "report_baseline_seconds": round(min(b["seconds"] for b in baselines), 3),
        "report_baseline_peak_mb": round(max(b["peak_mb"] for b in baselines), 1),
        "report_disbursements": baselines[0]["rows"],
    }


COMMANDS = {
    "payments": lambda count: add_payments(int(count)),
    "report": measure_report,
    "baseline": measure_baseline,
}

if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    COMMANDS[command](*arguments)
