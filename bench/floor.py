"""The floor's one route and its table, for every app that serves it: the served floor
(`bench/floor_app.py`) and the submission profile (`bench/submission_profile.py`)."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import request

from hrdfund.auth.guard import role_required
from hrdfund.auth.models import Role
from hrdfund.core.extensions import db


def create_table():
    """The table the floor writes to, in the app's database (kept if it is there)."""
    key = "INTEGER PRIMARY KEY" if db.engine.dialect.name == "sqlite" else "SERIAL PRIMARY KEY"
    db.session.execute(
        sa.text(f"CREATE TABLE IF NOT EXISTS bench_floor (id {key}, at TEXT, body TEXT)")
    )
    db.session.commit()


@role_required(Role.APPLICANT, Role.PARTNER)
def floor():
    """A signed-in applicant's POST doing one INSERT and nothing else."""
    db.session.execute(
        sa.text("INSERT INTO bench_floor (at, body) VALUES (:at, :body)"),
        {"at": datetime.now(UTC).isoformat(), "body": request.form.get("body", "")},
    )
    db.session.commit()
    return "ok"


def add_route(app):
    """Serve the floor at /bench/floor on ``app``."""
    app.add_url_rule("/bench/floor", "bench_floor", floor, methods=["POST"])
