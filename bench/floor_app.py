"""The submission benchmark's floor: the application itself, with one extra route that a
signed-in applicant POSTs to and that does the baseline's one INSERT and nothing else.

Everything every request of hrdfund pays is on this route: the session cookie and its
signature, loading the account and checking its session version, the CSRF token, the
idle clock, the security headers, the SQLAlchemy session and its transaction. The gap
between the bare INSERT and this floor is what those cost; the gap between the floor and
a submission is what an application itself costs. Served only by `make bench`."""

import sqlalchemy as sa

from app import app
from bench import floor
from hrdfund.core.extensions import db

with app.app_context():
    try:
        floor.create_table()
    except sa.exc.DBAPIError:
        # Every worker creates the table as it starts: on PostgreSQL two at the same moment
        # collide (a unique violation in its catalog) and the one that lost finds it made.
        db.session.rollback()
        if not sa.inspect(db.engine).has_table("bench_floor"):
            raise

floor.add_route(app)
