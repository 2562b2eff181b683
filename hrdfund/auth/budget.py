"""The server's budget of password checks (SECURITY.md, sign-in limits).

Every password check is an Argon2id hash: about 130 ms of a core and 64 MiB. The sign-in
limits bound the guesses at one login, not the number of logins guessed at, so without this
bound a few clients sending attempts at ever new logins keep every worker hashing, and
signed-in pages wait behind them.

The budget is a generic cell rate algorithm on one row that every process shares: each
check granted moves ``spent_until`` one interval (a minute divided by
``PASSWORD_CHECKS_PER_MINUTE``) beyond the later of itself and now. A check for a browser
the login does not know is granted while that leaves ``spent_until`` at most ten seconds'
worth of checks ahead of now; for a browser that completed a sign-in to the login, at most
a minute's worth, so it is served first once new browsers have spent their share. Over
any stretch of time no more checks are granted than the rate allows, plus one burst.

An attempt first looks at the budget while it reads the account, with no write lock
(:func:`available`): past the budget it is answered at once, having written nothing, so a
flood of attempts does not queue for SQLite's write lock. It then takes its check in the
transaction that charges it to the sign-in limits (:func:`take`), after they are checked
(a locked login costs nothing) and before anything is hashed; on PostgreSQL the row is
locked from then to the commit, on SQLite the write transaction serialises it.
"""

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from ..core.columns import utcnow
from ..core.extensions import db
from .models import PasswordCheckBudget

#: The budget's one row.
ROW_ID = 1
#: How much of a minute's checks browsers a login does not know may take at once.
NEW_BROWSER_SHARE = 6


def bursts(per_minute):
    """How many checks may be granted at once: to browsers a login does not know, and to
    browsers it knows (these include the first)."""
    return max(1, per_minute // NEW_BROWSER_SHARE), max(2, per_minute)


def check_config(config):
    """Refuse to start with a budget that grants nothing."""
    if config["PASSWORD_CHECKS_PER_MINUTE"] < 1:
        raise RuntimeError("HRDFUND_PASSWORD_CHECKS_PER_MINUTE must be at least 1")


def _row(now):
    """The budget's row, created when missing; locked until the transaction ends on
    PostgreSQL."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    insert = (postgresql if postgres else sqlite).insert
    db.session.execute(
        insert(PasswordCheckBudget.__table__)
        .values(id=ROW_ID, spent_until=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    query = sa.select(PasswordCheckBudget).where(PasswordCheckBudget.id == ROW_ID)
    if postgres:
        query = query.with_for_update()
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one()


def _grants(spent_until, known, now):
    """Whether a check may be granted at ``now``, and where the budget would then stand."""
    per_minute = current_app.config["PASSWORD_CHECKS_PER_MINUTE"]
    interval = timedelta(minutes=1) / per_minute
    new_burst, known_burst = bursts(per_minute)
    if spent_until is None or spent_until - now > interval * known_burst:
        # Further ahead than any grant leaves it: the clock was set back (or the row is
        # new). The budget starts afresh rather than refusing every check until the
        # clock catches up.
        spent_until = now
    after = max(spent_until, now) + interval
    return after - now <= interval * (known_burst if known else new_burst), after


def available(known, now=None):
    """Whether a check would be granted now, read without taking it or locking anything:
    the first look of an attempt, inside ``reading()``, so that attempts past the budget
    are answered before they write anything."""
    now = now or utcnow()
    spent_until = db.session.execute(
        sa.select(PasswordCheckBudget.spent_until).where(PasswordCheckBudget.id == ROW_ID)
    ).scalar_one_or_none()
    return _grants(spent_until, known, now)[0]


def take(known, now=None):
    """Grant one password check, for a browser the login knows (``known``) or not; False,
    with nothing taken, when the budget is spent for now."""
    now = now or utcnow()
    row = _row(now)
    granted, after = _grants(row.spent_until, known, now)
    if granted:
        row.spent_until = after
        db.session.flush()
    return granted
