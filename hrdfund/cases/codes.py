"""Short case codes: ``HRD1-26-0412``, easy to read out on a call.

A code is the letters ``HRD`` and the fund's id, the last two digits of the year the case
was sent, and the fund's count of cases sent that year (four digits at least). Funds share
a server, so the fund's id makes a code unique on the server (a unique index holds it)
while each fund counts its own cases: no fund learns another's numbers. A code says
nothing of the defender: only which fund, which year, and in what order it was sent.

A case gets its code when it is first sent, once. Each fund's count for a year is one
counter row that only goes up, added to in one statement that locks the row until the
commit (on SQLite the write lock every transaction begins with), so two submissions at
once never get the same number and a number is never given again, whatever becomes of
its case. The audit chain's lock is taken only at the commit, after every other lock a
transaction takes (``hrdfund.audit``), so waiting for the counter never closes a circle
with waiting for the chain.
"""

import re

import sqlalchemy as sa

from ..core.extensions import db
from .models import Application, CaseCodeCounter

PREFIX = "HRD"
#: A code as typed, once spaces and dashes are one dash: any case, leading zeros or not.
_TYPED = re.compile(rf"^{PREFIX}-?(\d{{1,9}})-(\d{{2}})-(\d{{1,9}})$")


def format_code(fund_id, year, number):
    """The code of the ``number``-th case ``fund_id`` sent in ``year``."""
    return f"{PREFIX}{fund_id}-{year % 100:02d}-{number:04d}"


def parse_code(text):
    """The code ``text`` names, written as ``format_code`` writes it, or None when it is not
    one: ``hrd1 26 412`` and ``HRD1-26-0412`` name the same case."""
    text = (text or "").strip().upper()
    if len(text) > 40:
        return None
    match = _TYPED.match(re.sub(r"[\s-]+", "-", text))
    if match is None:
        return None
    fund_id, year, number = (int(part) for part in match.groups())
    if number == 0:
        return None
    return f"{PREFIX}{fund_id}-{year:02d}-{number:04d}"


def _counter(fund_id, year):
    """The fund's counter row for ``year``, created at 0 if missing, locked (PostgreSQL)."""
    dialect = db.session.get_bind().dialect.name
    insert = _insert_for(dialect)
    db.session.execute(
        insert(CaseCodeCounter)
        .values(fund_id=fund_id, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["fund_id", "year"])
    )
    query = sa.select(CaseCodeCounter).where(
        CaseCodeCounter.fund_id == fund_id, CaseCodeCounter.year == year
    )
    if dialect == "postgresql":
        query = query.with_for_update()
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one()


def _insert_for(dialect):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def next_number(fund_id, year):
    """Count one more case ``fund_id`` sent in ``year`` and return its number: one
    statement that creates the counter at 1 or adds one to it, the row locked until the
    commit (PostgreSQL's ON CONFLICT DO UPDATE; on SQLite the write lock)."""
    table = CaseCodeCounter.__table__
    insert = _insert_for(db.session.get_bind().dialect.name)
    return db.session.execute(
        insert(table)
        .values(fund_id=fund_id, year=year, last_number=1)
        .on_conflict_do_update(
            index_elements=[table.c.fund_id, table.c.year],
            set_={"last_number": table.c.last_number + 1},
        )
        .returning(table.c.last_number)
    ).scalar_one()


def assign_code(application, at):
    """Give ``application`` its short code for a sending at ``at``, unless it has one.
    The case is written with its other changes at the next flush."""
    if application.code is not None:
        return application.code
    number = next_number(application.fund_id, at.year)
    application.code = format_code(application.fund_id, at.year, number)
    return application.code


def give_missing_codes():
    """Give a code to every sent case without one, in the order each fund received them
    (for rows written without the services, such as the demo's in bulk); returns how many."""
    rows = db.session.execute(
        sa.select(Application.id, Application.fund_id, Application.submitted_at)
        .where(Application.code.is_(None), Application.submitted_at.is_not(None))
        .order_by(Application.fund_id, Application.submitted_at, Application.id)
    ).all()
    if not rows:
        return 0
    counters, given = {}, []
    for row in rows:
        key = (row.fund_id, row.submitted_at.year)
        if key not in counters:
            counters[key] = _counter(*key)
        counter = counters[key]
        counter.last_number += 1
        given.append({"id": row.id, "code": format_code(*key, counter.last_number)})
    db.session.execute(sa.update(Application), given)
    db.session.flush()
    return len(given)
