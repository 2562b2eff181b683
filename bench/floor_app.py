"""The submission benchmark's floor: the application itself, with one extra route that a
signed-in applicant POSTs to and that does the baseline's one INSERT and nothing else.

Everything every request of hrdfund pays is on this route: the session cookie and its
signature, loading the account and checking its session version, the CSRF token, the
idle clock, the security headers, the SQLAlchemy session and its transaction. The gap
between the bare INSERT and this floor is what those cost; the gap between the floor and
a submission is what an application itself costs. Served only by `make bench`."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import request

from app import app
from hrdfund.auth.guard import role_required
from hrdfund.auth.models import Role
from hrdfund.core.extensions import db

with app.app_context():
    try:
        db.session.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS bench_floor (id "
                + (
                    "INTEGER PRIMARY KEY"
                    if db.engine.dialect.name == "sqlite"
                    else "SERIAL PRIMARY KEY"
                )
                + ", at TEXT, body TEXT)"
            )
        )
        db.session.commit()
    except sa.exc.DBAPIError:
        # Every worker creates the table as it starts: on PostgreSQL two at the same moment
        # collide (a unique violation in its catalog) and the one that lost finds it made.
        db.session.rollback()
        if not sa.inspect(db.engine).has_table("bench_floor"):
            raise


@app.post("/bench/floor")
@role_required(Role.APPLICANT, Role.PARTNER)
def floor():
    db.session.execute(
        sa.text("INSERT INTO bench_floor (at, body) VALUES (:at, :body)"),
        {"at": datetime.now(UTC).isoformat(), "body": request.form.get("body", "")},
    )
    db.session.commit()
    return "ok"
